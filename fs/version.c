#include "version.h"

#include "content.h"
#include "journal.h"
#include "lifecycle.h"
#include "merge.h"
#include "meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool uf_version_needed(const struct uf_node *n)
{
	if (n->kind != UF_FILE || !n->remote || n->unlinked || n->finishing)
		return false;
	struct up_writer_status ws;
	return !n->w || uf_life_status(n, &ws) == UF_COMPLETED;
}

/* A new writer holding the bytes of n's remote file id (bytes long): the file's MD5 is
 * computed as they are copied in, like any write. No lock held. */
static int seed(struct uf_mount *m, struct uf_node *n, const char *doing, uint64_t bytes,
		struct up_writer **out)
{
	int fd = -1;
	int rc = uf_content_open(m, n, doing, &fd);
	if (rc < 0)
		return rc;
	struct up_writer *w = NULL;
	char *buf = malloc(1u << 20);
	if (!buf)
		rc = -ENOMEM;
	else
		rc = uf_life_make_writer(m, &w);
	uint64_t off = 0;
	while (rc == 0) {
		ssize_t r = pread(fd, buf, 1u << 20, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		rc = up_writer_write(w, buf, (size_t)r, off);
		off += (uint64_t)r;
	}
	if (rc == 0 && off != bytes)
		rc = -EIO; /* the content changed size under us */
	free(buf);
	close(fd);
	if (rc < 0) {
		if (rc != -EACCES)
			uf_log(m, UF_ERROR, "cannot %s %s: copying its bytes failed: %s", doing,
			       n->name, strerror(-rc));
		up_writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int uf_version_begin(struct uf_mount *m, struct uf_node *n)
{
	pthread_mutex_lock(&m->tree.mu);
	uf_life_wait_idle(m, n); /* its upload completing right now: that version first */
	bool need = uf_version_needed(n);
	char id[UP_ID_MAX];
	snprintf(id, sizeof id, "%s", n->file_id);
	uint64_t bytes = n->bytes;
	char *path = need && m->cfg.no_delete ? uf_tree_path(n) : NULL;
	uf_tree_unlock(&m->tree);
	if (!need)
		return 0;
	/* -o no_delete: a new version would delete this one once complete */
	int rc = uf_no_delete(m, "a change to", path ? path : n->file_id, id);
	free(path);
	if (rc < 0)
		return rc;
	struct up_writer *w = NULL;
	rc = seed(m, n, "change", bytes, &w);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->tree.mu);
	/* another writer may have made one meanwhile: theirs is the version */
	if (uf_version_needed(n) && strcmp(n->file_id, id) == 0) {
		uf_life_set_writer(m, n, w);
		w = NULL;
		if (up_writer_add_replaces(n->w, id) < 0)
			rc = -ENOMEM;
		uf_log(m, UF_DEBUG, "%s: a new version of %s (%llu bytes)", n->name, id,
		       (unsigned long long)bytes);
	}
	uf_tree_unlock(&m->tree);
	up_writer_free(w);
	return rc;
}

int uf_version_orphan(struct uf_mount *m, struct uf_node *n)
{
	pthread_mutex_lock(&m->tree.mu);
	uint64_t bytes = n->bytes;
	bool need = n->kind == UF_FILE && n->unlinked && !n->w;
	uf_tree_unlock(&m->tree);
	if (!need)
		return 0;
	struct up_writer *w = NULL;
	int rc = uf_life_make_writer(m, &w);
	if (rc == 0)
		rc = up_writer_truncate(w, bytes);
	if (rc == 0)
		rc = up_writer_cancel(w);
	pthread_mutex_lock(&m->tree.mu);
	if (rc == 0 && !n->w) {
		uf_life_set_writer(m, n, w);
		w = NULL;
	}
	uf_tree_unlock(&m->tree);
	up_writer_free(w);
	return rc;
}

/* One file of a rename, uploaded again under mv->path (no lock held). */
static int reupload_one(struct uf_mount *m, struct uf_moving *mv)
{
	struct uf_node *n = mv->n;
	char purpose[32], mime[256];
	pthread_mutex_lock(&m->tree.mu);
	uint64_t bytes = n->bytes;
	snprintf(purpose, sizeof purpose, "%s", uf_effective_purpose(m, n));
	if (n->x_mime)
		snprintf(mime, sizeof mime, "%s", n->x_mime);
	else
		uf_mime_of_name(mv->path, mime, sizeof mime);
	uf_tree_unlock(&m->tree);

	struct up_writer *w = NULL;
	int rc = seed(m, n, "rename", bytes, &w);
	if (rc < 0)
		return rc;
	/* the record names the files this one replaces: a crash from here on ends with the
	 * rename done at the next mount */
	rc = up_writer_add_replaces(w, mv->old_id);
	for (size_t i = 0; rc == 0 && mv->also && i < mv->also->n; i++)
		rc = up_writer_add_replaces(w, mv->also->ids[i]);
	struct up_error err = {0};
	struct up_upload up = {0};
	if (rc == 0)
		rc = up_writer_close(w, mv->path, mime, purpose, &err);
	if (rc == 0)
		rc = up_writer_finish(w, mv->path, mime, purpose, &up, &err);
	if (rc == 0) {
		struct up_writer_status ws;
		up_writer_status(w, &ws);
		snprintf(mv->new_id, sizeof mv->new_id, "%s", up.file.id);
		snprintf(mv->upload_id, sizeof mv->upload_id, "%s", ws.upload_id);
		snprintf(mv->md5, sizeof mv->md5, "%s", ws.md5);
		mv->bytes = up.file.bytes;
		char cpath[4200];
		uf_cache_path(m->cache, up.file.id, cpath, sizeof cpath);
		if (up_writer_keep_spool(w, cpath) == 0)
			uf_cache_added(m->cache, up.file.id);
	} else {
		uf_log(m, UF_ERROR, "cannot rename %s to %s: its upload under the new name failed: %s",
		       n->name, mv->path, err.message[0] ? err.message : strerror(-rc));
	}
	up_upload_clear(&up);
	up_writer_free(w);
	return rc;
}

/* The files of one rename, shared by its workers. */
struct batch {
	struct uf_mount *m;
	struct uf_moving *mv;
	size_t count;
	atomic_size_t next;
	atomic_int err; /* the first failure: the others take no new file */
};

static void *reupload_worker(void *arg)
{
	struct batch *b = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->count || atomic_load(&b->err))
			break;
		int rc = reupload_one(b->m, &b->mv[i]);
		int none = 0;
		if (rc < 0)
			atomic_compare_exchange_strong(&b->err, &none, rc);
	}
	return NULL;
}

int uf_version_reupload(struct uf_mount *m, struct uf_moving *mv, size_t count)
{
	/* the files of a directory go up side by side (each is a few round trips), as many
	 * at a time as parts may be in flight */
	struct batch b = {.m = m, .mv = mv, .count = count};
	atomic_init(&b.next, 0);
	atomic_init(&b.err, 0);
	size_t nthreads = count < m->cfg.parallel ? count : m->cfg.parallel;
	pthread_t tids[64];
	size_t started = 0;
	while (started + 1 < nthreads &&
	       pthread_create(&tids[started], NULL, reupload_worker, &b) == 0)
		started++;
	reupload_worker(&b);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	int rc = atomic_load(&b.err);
	if (rc == 0)
		return 0;
	/* all or nothing: the copies already made go */
	for (size_t i = 0; i < count; i++) {
		if (!mv[i].new_id[0])
			continue;
		struct up_error err;
		if (up_file_delete(m->client, mv[i].new_id, &err) < 0 && err.status != 404) {
			uf_log(m, UF_ERROR, "could not delete %s (%s), made for a rename that failed: %s",
			       mv[i].path, mv[i].new_id, err.message);
		} else {
			pthread_mutex_lock(&m->tree.mu);
			uf_tree_deleted(&m->tree, mv[i].new_id); /* a listing may hold it */
			uf_tree_unlock(&m->tree);
		}
		uf_cache_drop(m->cache, mv[i].new_id);
		mv[i].new_id[0] = '\0';
	}
	return rc;
}
