#include "state.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct uf_state {
	pthread_mutex_t mu; /* a leaf: taken under the tree lock, never held over the disk */
	pthread_cond_t cv;  /* changes pending, or stop */
	sqlite3 *db;	    /* the saver's (before it starts and after it stops: the opener's) */
	json_object *files, *dirs; /* what the store holds, for reads: id/path -> record */
	json_object *pend_files, *pend_dirs; /* changes not yet written: record, or null (gone) */
	bool stop, running;
	pthread_t saver;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, mode INTEGER, uid INTEGER,"
    " gid INTEGER, mtime INTEGER, mtime_ns INTEGER) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS dirs (path TEXT PRIMARY KEY, mode INTEGER, purpose TEXT,"
    " mime_type TEXT) WITHOUT ROWID;";

static int64_t geti(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

/* Writes the pending changes in one transaction (no lock held: they were taken out). */
static int write_changes(sqlite3 *db, json_object *files, json_object *dirs)
{
	sqlite3_stmt *fput = NULL, *fdel = NULL, *dput = NULL, *ddel = NULL;
	int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)", -1,
					&fput, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "DELETE FROM files WHERE id = ?", -1, &fdel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO dirs VALUES (?,?,?,?)", -1, &dput,
					NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "DELETE FROM dirs WHERE path = ?", -1, &ddel, NULL);
	if (rc == SQLITE_OK) {
		json_object_object_foreach(files, id, rec)
		{
			sqlite3_stmt *st = rec ? fput : fdel;
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			if (rec) {
				sqlite3_bind_int64(st, 2, geti(rec, "mode"));
				sqlite3_bind_int64(st, 3, geti(rec, "uid"));
				sqlite3_bind_int64(st, 4, geti(rec, "gid"));
				sqlite3_bind_int64(st, 5, geti(rec, "mtime"));
				sqlite3_bind_int64(st, 6, geti(rec, "mtime_ns"));
			}
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = SQLITE_ERROR;
			sqlite3_reset(st);
		}
	}
	if (rc == SQLITE_OK) {
		json_object_object_foreach(dirs, path, rec)
		{
			sqlite3_stmt *st = rec ? dput : ddel;
			sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
			if (rec) {
				sqlite3_bind_int64(st, 2, geti(rec, "mode"));
				sqlite3_bind_text(st, 3, get_str(rec, "purpose"), -1, SQLITE_STATIC);
				sqlite3_bind_text(st, 4, get_str(rec, "mime_type"), -1, SQLITE_STATIC);
			}
			if (sqlite3_step(st) != SQLITE_DONE)
				rc = SQLITE_ERROR;
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(fput);
	sqlite3_finalize(fdel);
	sqlite3_finalize(dput);
	sqlite3_finalize(ddel);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* Every row into the read model. */
static int load(struct uf_state *s)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(s->db, "SELECT id, mode, uid, gid, mtime, mtime_ns FROM files", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "mode", json_object_new_int64(sqlite3_column_int64(st, 1)));
		json_object_object_add(o, "uid", json_object_new_int64(sqlite3_column_int64(st, 2)));
		json_object_object_add(o, "gid", json_object_new_int64(sqlite3_column_int64(st, 3)));
		json_object_object_add(o, "mtime", json_object_new_int64(sqlite3_column_int64(st, 4)));
		json_object_object_add(o, "mtime_ns",
				       json_object_new_int64(sqlite3_column_int64(st, 5)));
		json_object_object_add(s->files, (const char *)sqlite3_column_text(st, 0), o);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(s->db, "SELECT path, mode, purpose, mime_type FROM dirs", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "mode", json_object_new_int64(sqlite3_column_int64(st, 1)));
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			json_object_object_add(
			    o, "purpose", json_object_new_string((const char *)sqlite3_column_text(st, 2)));
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			json_object_object_add(
			    o, "mime_type",
			    json_object_new_string((const char *)sqlite3_column_text(st, 3)));
		json_object_object_add(s->dirs, (const char *)sqlite3_column_text(st, 0), o);
	}
	sqlite3_finalize(st);
	return 0;
}

/* Opens dir/state.db: WAL, checked; 0 or -EIO (then it is not usable). */
static int open_db(struct uf_state *s, const char *path)
{
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		goto bad;
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_stmt *st;
	bool ok = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
		  sqlite3_step(st) == SQLITE_ROW &&
		  strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	/* WAL: a change is one appended frame, not a rewrite; FULL: a commit survives power
	 * loss, and a crash never leaves a torn store */
	if (ok && sqlite3_exec(s->db,
			       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
			       NULL) == SQLITE_OK &&
	    sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) == SQLITE_OK && load(s) == 0)
		return 0;
bad:
	sqlite3_close(s->db);
	s->db = NULL;
	json_object_put(s->files);
	json_object_put(s->dirs);
	s->files = json_object_new_object();
	s->dirs = json_object_new_object();
	return -EIO;
}

static void set_aside(const char *path)
{
	char aside[4300];
	snprintf(aside, sizeof aside, "%s.corrupt", path);
	rename(path, aside);
	char p[4300];
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

/* The JSON document of earlier versions (state.json), taken in once. */
static int import_json(struct uf_state *s, const char *dir, char **torn)
{
	char path[4200], done[4300];
	snprintf(path, sizeof path, "%s/state.json", dir);
	if (access(path, F_OK) != 0)
		return 0;
	json_object *root = json_object_from_file(path);
	json_object *files = NULL, *dirs = NULL;
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		snprintf(done, sizeof done, "%s.corrupt", path);
		rename(path, done);
		*torn = strdup(path);
		return 0;
	}
	if (json_object_object_get_ex(root, "files", &files) &&
	    json_object_is_type(files, json_type_object)) {
		json_object_object_foreach(files, id, rec)
		{
			json_object_object_add(s->pend_files, id, json_object_get(rec));
		}
	}
	if (json_object_object_get_ex(root, "dirs", &dirs) &&
	    json_object_is_type(dirs, json_type_object)) {
		json_object_object_foreach(dirs, dpath, drec)
		{
			json_object_object_add(s->pend_dirs, dpath, json_object_get(drec));
		}
	}
	json_object_put(root);
	int rc = write_changes(s->db, s->pend_files, s->pend_dirs);
	if (rc == 0) {
		json_object_put(s->files);
		json_object_put(s->dirs);
		s->files = json_object_new_object();
		s->dirs = json_object_new_object();
		rc = load(s);
		snprintf(done, sizeof done, "%s.imported", path);
		rename(path, done);
	}
	json_object_put(s->pend_files);
	json_object_put(s->pend_dirs);
	s->pend_files = json_object_new_object();
	s->pend_dirs = json_object_new_object();
	return rc;
}

int uf_state_open(const char *dir, struct uf_state **out, char **torn)
{
	*torn = NULL;
	struct uf_state *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->files = json_object_new_object();
	s->dirs = json_object_new_object();
	s->pend_files = json_object_new_object();
	s->pend_dirs = json_object_new_object();
	char path[4200];
	snprintf(path, sizeof path, "%s/state.db", dir);
	int rc = open_db(s, path);
	if (rc < 0) {
		set_aside(path);
		*torn = strdup(path);
		rc = open_db(s, path);
	}
	if (rc == 0)
		rc = import_json(s, dir, torn);
	if (rc < 0) {
		uf_state_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* The saver: takes the pending changes out under the lock and writes them in one
 * transaction without it; changes made meanwhile go in the next round, together. */
static void *saver_main(void *arg)
{
	struct uf_state *s = arg;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!json_object_object_length(s->pend_files) &&
		       !json_object_object_length(s->pend_dirs) && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!json_object_object_length(s->pend_files) &&
		    !json_object_object_length(s->pend_dirs))
			break;
		json_object *files = s->pend_files, *dirs = s->pend_dirs;
		s->pend_files = json_object_new_object();
		s->pend_dirs = json_object_new_object();
		pthread_mutex_unlock(&s->mu);
		write_changes(s->db, files, dirs);
		json_object_put(files);
		json_object_put(dirs);
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
	} else if (s->db) {
		write_changes(s->db, s->pend_files, s->pend_dirs);
	}
	sqlite3_close(s->db);
	json_object_put(s->files);
	json_object_put(s->dirs);
	json_object_put(s->pend_files);
	json_object_put(s->pend_dirs);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Lock held: rec (NULL: gone) under key in the read model and in the pending changes; the
 * saver writes it, or, before the saver runs (at mount), this call. */
static int change(struct uf_state *s, json_object *model, json_object *pend, const char *key,
		  json_object *rec)
{
	if (rec)
		json_object_object_add(model, key, json_object_get(rec));
	else
		json_object_object_del(model, key);
	json_object_object_add(pend, key, rec);
	if (s->running) {
		pthread_cond_broadcast(&s->cv);
		return 0;
	}
	int rc = s->db ? write_changes(s->db, s->pend_files, s->pend_dirs) : -EIO;
	json_object_object_del(pend, key);
	return rc;
}

bool uf_state_file_get(struct uf_state *s, const char *file_id, struct uf_attrs *out)
{
	pthread_mutex_lock(&s->mu);
	json_object *o;
	bool found = json_object_object_get_ex(s->files, file_id, &o) &&
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
	int rc = change(s, s->files, s->pend_files, file_id, o);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int uf_state_file_del(struct uf_state *s, const char *file_id)
{
	pthread_mutex_lock(&s->mu);
	int rc = change(s, s->files, s->pend_files, file_id, NULL);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void uf_state_files_retain(struct uf_state *s, bool (*keep)(const char *file_id, void *ud),
			   void *ud)
{
	pthread_mutex_lock(&s->mu);
	/* the ids first: deleting while iterating would break the iteration */
	size_t n = 0, cap = (size_t)json_object_object_length(s->files);
	char **gone = cap ? calloc(cap, sizeof *gone) : NULL;
	json_object_object_foreach(s->files, id, rec)
	{
		(void)rec;
		if (gone && n < cap && !keep(id, ud))
			gone[n++] = strdup(id);
	}
	for (size_t i = 0; i < n; i++) {
		if (gone[i])
			change(s, s->files, s->pend_files, gone[i], NULL);
		free(gone[i]);
	}
	free(gone);
	pthread_mutex_unlock(&s->mu);
}

size_t uf_state_file_count(struct uf_state *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = (size_t)json_object_object_length(s->files);
	pthread_mutex_unlock(&s->mu);
	return n;
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
	int rc = change(s, s->dirs, s->pend_dirs, d->path, o);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int uf_state_dir_del(struct uf_state *s, const char *path)
{
	pthread_mutex_lock(&s->mu);
	int rc = change(s, s->dirs, s->pend_dirs, path, NULL);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void uf_state_dirs(struct uf_state *s, void (*fn)(void *ud, const struct uf_dir_rec *d), void *ud)
{
	pthread_mutex_lock(&s->mu);
	json_object_object_foreach(s->dirs, key, val)
	{
		struct uf_dir_rec d = {.path = key,
				       .mode = (mode_t)geti(val, "mode"),
				       .purpose = get_str(val, "purpose"),
				       .mime = get_str(val, "mime_type")};
		fn(ud, &d);
	}
	pthread_mutex_unlock(&s->mu);
}
