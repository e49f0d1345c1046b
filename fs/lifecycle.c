#include "lifecycle.h"

#include "journal.h"
#include "merge.h"
#include "meta.h"
#include "proc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int uf_life_make_writer(struct uf_mount *m, struct up_writer **out)
{
	/* unique across restarts too: the journal of an earlier run may still name a spool */
	char name[96], path[4200], journal[4300];
	uint64_t seq = atomic_fetch_add(&m->spool_seq, 1);
	snprintf(name, sizeof name, "%llx-%d-%llu", (unsigned long long)time(NULL), (int)getpid(),
		 (unsigned long long)seq);
	snprintf(path, sizeof path, "%s/%s", m->spool_dir, name);
	snprintf(journal, sizeof journal, "%s/%s.json", m->journal_dir, name);
	struct up_writer_config wc = {.client = m->client,
				      .async = m->async,
				      .spool_path = path,
				      .part_size = m->cfg.part_size,
				      .max_size = m->cfg.max_file_size,
				      .journal_path = journal};
	uf_cache_trim(m->cache); /* a spool comes before cached content */
	int rc = up_writer_new(&wc, out);
	if (rc < 0)
		uf_log(m, UF_ERROR, "cannot create a spool file in %s: %s", m->spool_dir,
		       strerror(-rc));
	return rc;
}

void uf_life_set_writer(struct uf_mount *m, struct uf_node *n, struct up_writer *w)
{
	uf_tree_drop_writer(&m->tree, n);
	n->w = w;
}

struct up_writer *uf_life_writer(struct uf_node *n)
{
	if (n->w)
		up_writer_ref(n->w);
	return n->w;
}

const char *uf_life_status_name(enum uf_status s)
{
	static const char *const names[] = {"pending", "uploading", "completed", "failed",
					    "cancelled"};
	return names[s];
}

/* The status as a table of the writer's state (and the node's unlink and close):
 *   no writer:           remote -> completed; else pending (a file not yet written)
 *   unlinked / CANCELLED -> cancelled
 *   COMPLETED            -> completed
 *   an error latched, FAILED -> failed
 *   UPLOADING, sealed or finishing -> uploading
 *   PENDING              -> pending */
enum uf_status uf_life_status(const struct uf_node *n, struct up_writer_status *ws)
{
	memset(ws, 0, sizeof *ws);
	if (!n->w)
		return n->unlinked ? UF_CANCELLED : n->remote ? UF_COMPLETED : UF_PENDING;
	up_writer_status(n->w, ws);
	if (n->unlinked || ws->state == UP_W_CANCELLED)
		return UF_CANCELLED;
	if (ws->state == UP_W_COMPLETED)
		return UF_COMPLETED;
	if (ws->errnum || ws->state == UP_W_FAILED)
		return UF_FAILED;
	if (ws->state == UP_W_UPLOADING || ws->sealed || n->finishing)
		return UF_UPLOADING;
	return UF_PENDING;
}

bool uf_life_unsealed(const struct uf_node *n)
{
	if (!n->w || n->finishing)
		return false;
	struct up_writer_status ws;
	enum uf_status s = uf_life_status(n, &ws);
	return !ws.sealed && (s == UF_PENDING || s == UF_UPLOADING);
}

bool uf_life_copying(const struct uf_node *n)
{
	return uf_life_unsealed(n) && (n->rsync_temp || (n->writers > 0 && n->upload_on_close));
}

bool uf_life_due(const struct uf_node *n)
{
	if (!n->w || !n->upload_on_close || n->unlinked || n->finishing || n->rsync_temp)
		return false;
	struct up_writer_status ws;
	enum uf_status s = uf_life_status(n, &ws);
	return s == UF_PENDING || s == UF_UPLOADING;
}

bool uf_life_flush_completes(struct uf_mount *m, struct uf_node *n, pid_t tgid)
{
	pthread_mutex_lock(&m->tree.mu);
	bool go = n->writers == 1 && uf_life_due(n);
	char *rel = go ? uf_tree_path(n) : NULL;
	uf_tree_unlock(&m->tree);
	if (!rel)
		return false;
	/* the descriptor being closed is gone from the table by the time its flush comes */
	char abs[PATH_MAX * 2];
	snprintf(abs, sizeof abs, "%s/%s", m->mount_abs, rel);
	free(rel);
	return !uf_proc_can_write(tgid, abs);
}

void uf_life_persist_attrs(struct uf_mount *m, struct uf_node *n)
{
	if (n->kind == UF_FILE && n->remote && n->file_id[0]) {
		struct uf_attrs a = {
		    .mode = n->mode, .uid = n->uid, .gid = n->gid, .mtime = n->mtime};
		if (uf_state_file_put(m->state, n->file_id, &a) < 0)
			uf_log(m, UF_WARN, "could not record the attributes of %s", n->name);
	} else if (n->kind == UF_DIR && n->local_dir && n != m->tree.root) {
		char *path = uf_tree_path(n);
		struct uf_dir_rec d = {
		    .path = path, .mode = n->mode, .purpose = n->x_purpose, .mime = n->x_mime};
		if (path && uf_state_dir_put(m->state, &d) < 0)
			uf_log(m, UF_WARN, "could not record directory %s", path);
		free(path);
	}
}

void uf_life_unpin(struct uf_mount *m, struct uf_node *n)
{
	n->pins--;
	if (n->pins == 0 && n->w && !n->finishing) {
		struct up_writer_status ws;
		enum uf_status s = uf_life_status(n, &ws);
		if (s == UF_COMPLETED || s == UF_CANCELLED)
			uf_tree_drop_writer(&m->tree, n);
	}
	uf_tree_maybe_free(&m->tree, n);
}

void uf_life_wait_idle(struct uf_mount *m, struct uf_node *n)
{
	if (!n->finishing)
		return;
	n->pins++;
	while (n->finishing)
		pthread_cond_wait(&m->tree.idle_cv, &m->tree.mu);
	n->pins--;
	uf_tree_maybe_free(&m->tree, n);
}

/* A completion under way: what finish needs, taken under the lock at its start. */
struct closing {
	struct uf_mount *m;
	struct uf_node *n;
	struct up_writer *w; /* a reference */
	char *path;
	char purpose[32], mime[256];
};

/* The start of a completion (tree lock held): n is finishing and pinned until end(). */
static int begin(struct uf_mount *m, struct uf_node *n, struct closing *c)
{
	*c = (struct closing){.m = m, .n = n};
	if (!uf_life_due(n))
		return -EALREADY;
	if (!(c->path = uf_tree_path(n)))
		return -ENOMEM;
	n->finishing = true;
	n->pins++;
	c->w = uf_life_writer(n);
	snprintf(c->purpose, sizeof c->purpose, "%s", uf_effective_purpose(m, n));
	uf_effective_mime(n, c->mime, sizeof c->mime);
	return 0;
}

/* The end of a completion, whatever its result (no lock held): the node learns the remote
 * file, a replaced file is deleted, the node is released. */
static int end(struct closing *c, int rc, struct up_upload *up, double secs)
{
	struct uf_mount *m = c->m;
	struct uf_node *n = c->n;
	struct up_writer_status ws;
	up_writer_status(c->w, &ws);
	struct up_idlist old = {0};
	if (rc == 0)
		up_writer_replaced(c->w, &old);
	pthread_mutex_lock(&m->tree.mu);
	bool gone = n->unlinked;
	if (rc == 0 && !gone) {
		n->remote = true;
		n->done_epoch = m->tree.list_epoch; /* listings already under way do not know it */
		if (uf_tree_claim_file_id(&m->tree, n, up->file.id) < 0)
			uf_log(m, UF_WARN, "%s: out of memory for its file id", c->path);
		n->purpose = uf_tree_intern(&m->tree, up->file.purpose);
		uf_tree_set_made(n, ws.upload_id, ws.md5);
		n->bytes = up->file.bytes;
		uf_life_persist_attrs(m, n);
	}
	n->finishing = false;
	pthread_cond_broadcast(&m->tree.idle_cv);
	uf_tree_unlock(&m->tree);

	if (rc == 0 && gone) {
		/* rm came while complete was under way: the file it made goes too */
		struct up_error derr;
		if (up_file_delete(m->client, up->file.id, &derr) == 0 || derr.status == 404) {
			pthread_mutex_lock(&m->tree.mu);
			uf_tree_deleted(&m->tree, up->file.id); /* a listing may hold it */
			uf_tree_unlock(&m->tree);
		}
		rc = -ECANCELED;
	} else if (rc == 0) {
		uf_log(m, UF_INFO, "uploaded %s (%llu bytes, %.2f s) as %s", c->path,
		       (unsigned long long)up->file.bytes, secs, up->file.id);
		/* its bytes stay in the content cache: a later read, edit or rename of the
		 * file needs no download */
		char cpath[4200];
		uf_cache_path(m->cache, up->file.id, cpath, sizeof cpath);
		if (up_writer_keep_spool(c->w, cpath) == 0)
			uf_cache_added(m->cache, up->file.id);
		for (size_t i = 0; i < old.n; i++) {
			struct up_error derr;
			if (strcmp(old.ids[i], up->file.id) == 0)
				continue;
			if (up_file_delete(m->client, old.ids[i], &derr) < 0 && derr.status != 404) {
				uf_log(m, UF_WARN, "%s: could not delete the replaced %s: %s",
				       c->path, old.ids[i], derr.message);
				continue;
			}
			uf_state_file_del(m->state, old.ids[i]);
			uf_cache_drop(m->cache, old.ids[i]);
			pthread_mutex_lock(&m->tree.mu);
			uf_tree_deleted(&m->tree, old.ids[i]);
			uf_tree_unlock(&m->tree);
		}
	} else if (rc != -ECANCELED) {
		uf_log(m, UF_ERROR, "upload of %s failed: %s", c->path, ws.error);
	}
	up_idlist_clear(&old);
	up_writer_free(c->w);
	free(c->path);
	pthread_mutex_lock(&m->tree.mu);
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
	return rc;
}

/* The server's part of a completion (no lock held). */
static int complete(struct closing *c)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct up_upload up = {0};
	struct up_error err = {0};
	int rc = up_writer_finish(c->w, c->path, c->mime, c->purpose, &up, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	rc = end(c, rc, &up, secs);
	up_upload_clear(&up);
	return rc;
}

static void *complete_thread(void *arg)
{
	struct closing *c = arg;
	struct uf_mount *m = c->m;
	complete(c);
	free(c);
	pthread_mutex_lock(&m->bg_mu);
	if (--m->bg_running == 0)
		pthread_cond_broadcast(&m->bg_cv);
	pthread_mutex_unlock(&m->bg_mu);
	return NULL;
}

int uf_life_close(struct uf_mount *m, struct uf_node *n, bool background)
{
	struct closing *c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	pthread_mutex_lock(&m->tree.mu);
	int rc = begin(m, n, c);
	uf_tree_unlock(&m->tree);
	if (rc == -EALREADY) {
		/* not (or no longer) this close's to complete: it returns the latched error */
		struct up_writer_status ws;
		pthread_mutex_lock(&m->tree.mu);
		uf_life_status(n, &ws);
		uf_tree_unlock(&m->tree);
		rc = ws.errnum;
	}
	if (rc < 0 || !c->w) {
		free(c);
		return rc;
	}
	/* sealed before close returns: the journal record exists, whatever happens next */
	struct up_error err = {0};
	rc = up_writer_close(c->w, c->path, c->mime, c->purpose, &err);
	if (rc < 0) {
		struct up_upload none = {0};
		rc = end(c, rc, &none, 0);
		free(c);
		return rc;
	}
	if (background) {
		pthread_t t;
		pthread_mutex_lock(&m->bg_mu);
		m->bg_running++;
		pthread_mutex_unlock(&m->bg_mu);
		if (pthread_create(&t, NULL, complete_thread, c) == 0) {
			pthread_detach(t);
			return 0;
		}
		pthread_mutex_lock(&m->bg_mu);
		m->bg_running--;
		pthread_mutex_unlock(&m->bg_mu);
	}
	rc = complete(c);
	free(c);
	return rc;
}

void uf_life_announce(struct uf_mount *m, struct uf_node *n, uint64_t size, const char *why)
{
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer_status ws;
	bool go = n->w && size > 0 && !n->unlinked && !n->rsync_temp && !n->finishing &&
		  uf_life_status(n, &ws) == UF_PENDING;
	char *path = go ? uf_tree_path(n) : NULL;
	struct up_writer *w = path ? uf_life_writer(n) : NULL;
	char purpose[32], mime[256];
	if (path) {
		snprintf(purpose, sizeof purpose, "%s", uf_effective_purpose(m, n));
		uf_effective_mime(n, mime, sizeof mime);
	}
	uf_tree_unlock(&m->tree);
	if (!path)
		return;
	struct up_error err;
	if (up_writer_announce(w, size, path, mime, purpose, &err) < 0)
		uf_log(m, UF_WARN, "%s: could not start the upload early (%s); it will start at close",
		       path, err.message);
	else
		uf_log(m, UF_DEBUG, "%s: %llu bytes announced by %s", path,
		       (unsigned long long)size, why);
	up_writer_free(w);
	free(path);
}

int uf_life_set_size(struct uf_mount *m, struct uf_node *n, uint64_t size)
{
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = uf_life_writer(n);
	bool remote_only = !w && n->kind == UF_FILE;
	uint64_t bytes = n->bytes;
	struct up_writer_status ws;
	bool first = w && uf_life_status(n, &ws) == UF_PENDING && ws.size == 0;
	uf_tree_unlock(&m->tree);
	if (remote_only)
		return size == bytes ? 0 : -EPERM;
	int rc = up_writer_truncate(w, size);
	up_writer_free(w);
	if (rc == 0) {
		/* a size set is a change, as a write is: the file uploads at its last close
		 * (ftruncate or fallocate of a file opened without O_TRUNC, then close) */
		pthread_mutex_lock(&m->tree.mu);
		n->upload_on_close = true;
		uf_tree_unlock(&m->tree);
	}
	if (rc == 0 && first)
		uf_life_announce(m, n, size, "its first truncate");
	return rc;
}
