#include "state.h"

#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct uf_state {
	pthread_mutex_t mu; /* a leaf: taken under the tree lock, never held over the disk */
	pthread_cond_t cv;  /* dirty, or stop */
	char *path;
	json_object *root; /* {"files": {id: {...}}, "dirs": {path: {...}}} */
	bool dirty;	   /* root has changes the file has not */
	bool stop, running;
	pthread_t saver;
};

static json_object *section(struct uf_state *s, const char *name)
{
	json_object *o;
	if (!json_object_object_get_ex(s->root, name, &o) ||
	    !json_object_is_type(o, json_type_object)) {
		o = json_object_new_object();
		json_object_object_add(s->root, name, o);
	}
	return o;
}

int uf_state_open(const char *path, struct uf_state **out, bool *torn)
{
	struct uf_state *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	*torn = false;
	if (access(path, F_OK) == 0) {
		s->root = json_object_from_file(path);
		if (!s->root || !json_object_is_type(s->root, json_type_object)) {
			json_object_put(s->root);
			s->root = NULL;
			*torn = true;
			char aside[4200];
			snprintf(aside, sizeof aside, "%s.corrupt", path);
			rename(path, aside);
		}
	}
	if (!s->root)
		s->root = json_object_new_object();
	section(s, "files");
	section(s, "dirs");
	*out = s;
	return 0;
}

/* The saver: writes the document (tmp + fsync + rename) after changes, outside the lock;
 * changes made meanwhile are written by the next round, together. */
static void *saver_main(void *arg)
{
	struct uf_state *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->dirty && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->dirty)
			break;
		s->dirty = false;
		size_t len;
		const char *txt =
		    json_object_to_json_string_length(s->root, JSON_C_TO_STRING_PLAIN, &len);
		char *copy = malloc(len + 1);
		if (copy)
			memcpy(copy, txt, len + 1);
		else
			s->dirty = true; /* try again with the next change */
		pthread_mutex_unlock(&s->mu);
		if (copy)
			up_write_file_atomic(s->path, copy, len, true);
		free(copy);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int uf_state_start(struct uf_state *s)
{
	if (pthread_create(&s->saver, NULL, saver_main, s) != 0)
		return -EAGAIN;
	s->running = true;
	return 0;
}

void uf_state_close(struct uf_state *s)
{
	if (!s)
		return;
	if (s->running) { /* the last changes are written before we go */
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->saver, NULL);
	}
	json_object_put(s->root);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->path);
	free(s);
}

/* Lock held: the change goes to the saver; before it runs (at mount), to the disk. */
static int save(struct uf_state *s)
{
	if (s->running) {
		s->dirty = true;
		pthread_cond_broadcast(&s->cv);
		return 0;
	}
	size_t len;
	const char *txt = json_object_to_json_string_length(s->root, JSON_C_TO_STRING_PLAIN, &len);
	return up_write_file_atomic(s->path, txt, len, true);
}

static int64_t geti(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

bool uf_state_file_get(struct uf_state *s, const char *file_id, struct uf_attrs *out)
{
	pthread_mutex_lock(&s->mu);
	json_object *o;
	bool found = json_object_object_get_ex(section(s, "files"), file_id, &o) &&
		     json_object_is_type(o, json_type_object);
	if (found) {
		out->mode = (mode_t)geti(o, "mode");
		out->uid = (uid_t)geti(o, "uid");
		out->gid = (gid_t)geti(o, "gid");
		out->mtime.tv_sec = (time_t)geti(o, "mtime");
		out->mtime.tv_nsec = (long)geti(o, "mtime_ns");
	}
	pthread_mutex_unlock(&s->mu);
	return found;
}

int uf_state_file_put(struct uf_state *s, const char *file_id, const struct uf_attrs *a)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "mode", json_object_new_int64(a->mode));
	json_object_object_add(o, "uid", json_object_new_int64(a->uid));
	json_object_object_add(o, "gid", json_object_new_int64(a->gid));
	json_object_object_add(o, "mtime", json_object_new_int64(a->mtime.tv_sec));
	json_object_object_add(o, "mtime_ns", json_object_new_int64(a->mtime.tv_nsec));
	pthread_mutex_lock(&s->mu);
	json_object_object_add(section(s, "files"), file_id, o);
	int rc = save(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int uf_state_file_del(struct uf_state *s, const char *file_id)
{
	pthread_mutex_lock(&s->mu);
	json_object_object_del(section(s, "files"), file_id);
	int rc = save(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int uf_state_dir_put(struct uf_state *s, const struct uf_dir_rec *d)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "mode", json_object_new_int64(d->mode));
	if (d->purpose)
		json_object_object_add(o, "purpose", json_object_new_string(d->purpose));
	if (d->mime)
		json_object_object_add(o, "mime_type", json_object_new_string(d->mime));
	pthread_mutex_lock(&s->mu);
	json_object_object_add(section(s, "dirs"), d->path, o);
	int rc = save(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int uf_state_dir_del(struct uf_state *s, const char *path)
{
	pthread_mutex_lock(&s->mu);
	json_object_object_del(section(s, "dirs"), path);
	int rc = save(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void uf_state_dirs(struct uf_state *s, void (*fn)(void *ud, const struct uf_dir_rec *d), void *ud)
{
	pthread_mutex_lock(&s->mu);
	json_object_object_foreach(section(s, "dirs"), key, val)
	{
		json_object *p = NULL, *m = NULL;
		json_object_object_get_ex(val, "purpose", &p);
		json_object_object_get_ex(val, "mime_type", &m);
		struct uf_dir_rec d = {.path = key,
				       .mode = (mode_t)geti(val, "mode"),
				       .purpose = p ? json_object_get_string(p) : NULL,
				       .mime = m ? json_object_get_string(m) : NULL};
		fn(ud, &d);
	}
	pthread_mutex_unlock(&s->mu);
}
