/* The FUSE operations. They keep the namespace under the tree lock and leave every network
 * request to core/ (writer, api), made without that lock held. Each rule is written down
 * in docs/SEMANTICS.md. */
#include "mount.h"

#include "journal.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define ATTR_TIMEOUT 1.0

struct handle {
	struct uf_node *n;
	bool write;
	pid_t tgid;   /* the opener's process */
	int cache_fd; /* downloaded content, for reads of remote files */
};

struct dirent_snap {
	char *name;
	fuse_ino_t ino;
	mode_t mode;
};

struct dir_handle {
	struct dirent_snap *ents;
	size_t n;
};

static struct uf_mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The kernel gives the thread; openers are compared by process. */
/* rsync writes ".NAME.XXXXXX" and renames it to NAME after close: such a file is uploaded
 * when it gets its final name, never under the temporary one. */
static bool is_temp_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 9 || name[0] != '.' || name[n - 7] != '.')
		return false;
	for (size_t i = n - 6; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* ---- the remote listing ---- */

static void apply_state(struct uf_mount *m, struct uf_node *dir)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct uf_node *k = dir->kids[i];
		if (k->kind == UF_DIR) {
			apply_state(m, k);
			continue;
		}
		struct uf_attrs a;
		if (k->remote && !k->w && uf_state_file_get(m->state, k->file_id, &a)) {
			k->mode = S_IFREG | (a.mode & 07777);
			k->uid = a.uid;
			k->gid = a.gid;
			k->mtime = a.mtime;
		}
	}
}

/* Fetches the remote listing when it is older than list_ttl (or when forced). A failure
 * keeps the last listing. */
static int refresh(struct uf_mount *m, bool force)
{
	if (!force && now_s() - m->listed_at < m->cfg.list_ttl)
		return 0;
	pthread_mutex_lock(&m->list_mu);
	if (!force && now_s() - m->listed_at < m->cfg.list_ttl) {
		pthread_mutex_unlock(&m->list_mu);
		return 0;
	}
	pthread_mutex_lock(&m->tree.mu);
	uint64_t epoch = ++m->tree.list_epoch;
	pthread_mutex_unlock(&m->tree.mu);
	struct up_file_list l;
	struct up_error err;
	int rc = up_files_list(m->client, NULL, &l, &err);
	if (rc == 0) {
		pthread_mutex_lock(&m->tree.mu);
		uf_tree_merge(&m->tree, &l, epoch);
		apply_state(m, m->tree.root);
		pthread_mutex_unlock(&m->tree.mu);
		up_file_list_clear(&l);
		m->listed_at = now_s();
	} else {
		uf_log(m, UF_WARN, "listing the remote files failed: %s", err.message);
		m->listed_at = now_s(); /* keep the last listing; try again after the TTL */
	}
	pthread_mutex_unlock(&m->list_mu);
	return rc;
}

/* ---- helpers ---- */

static void reply_entry(fuse_req_t req, struct uf_node *n)
{
	struct fuse_entry_param e = {
	    .ino = n->ino, .attr_timeout = ATTR_TIMEOUT, .entry_timeout = ATTR_TIMEOUT};
	uf_tree_stat(n, &e.attr);
	n->nlookup++;
	fuse_reply_entry(req, &e);
}

static void persist_attrs(struct uf_mount *m, struct uf_node *n)
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

static int new_writer(struct uf_mount *m, struct uf_node *n)
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
	int rc = up_writer_new(&wc, &n->w);
	if (rc < 0) {
		uf_log(m, UF_ERROR, "cannot create a spool file in %s: %s", m->spool_dir,
		       strerror(-rc));
		return rc;
	}
	n->status = UF_PENDING;
	clock_gettime(CLOCK_MONOTONIC, &n->started);
	n->error[0] = '\0';
	n->errnum = 0;
	n->upload_id[0] = '\0';
	n->md5[0] = '\0';
	n->bytes_sent = 0;
	return 0;
}

/* Completes n's upload: blocks until the server says it is done. Tree lock not held. */
static int finish(struct uf_mount *m, struct uf_node *n)
{
	pthread_mutex_lock(&m->tree.mu);
	if (n->finishing || !n->w || n->status == UF_COMPLETED || n->unlinked) {
		int rc = n->errnum;
		pthread_mutex_unlock(&m->tree.mu);
		return rc;
	}
	n->finishing = true;
	n->status = UF_UPLOADING;
	n->pins++;
	char *path = uf_tree_path(n);
	char purpose[32], mime[256];
	snprintf(purpose, sizeof purpose, "%s", uf_effective_purpose(m, n));
	uf_effective_mime(n, mime, sizeof mime);
	struct up_writer *w = n->w;
	pthread_mutex_unlock(&m->tree.mu);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct up_upload up = {0};
	struct up_error err = {0};
	int rc = -ENOMEM;
	if (path)
		rc = up_writer_finish(w, path, mime, purpose, &up, &err);
	else
		snprintf(err.message, sizeof err.message, "out of memory");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct up_writer_status ws;
	up_writer_status(w, &ws);

	char old[UP_ID_MAX] = "";
	pthread_mutex_lock(&m->tree.mu);
	n->finishing = false;
	snprintf(n->upload_id, sizeof n->upload_id, "%s", ws.upload_id);
	n->bytes_sent = ws.bytes_sent;
	if (rc == 0) {
		n->status = UF_COMPLETED;
		n->remote = true;
		n->done_epoch = m->tree.list_epoch; /* listings already under way do not know it */
		snprintf(n->file_id, sizeof n->file_id, "%s", up.file.id);
		snprintf(n->purpose, sizeof n->purpose, "%s", up.file.purpose);
		snprintf(n->md5, sizeof n->md5, "%s", ws.md5);
		n->bytes = up.file.bytes;
		n->error[0] = '\0';
		n->errnum = 0;
		if (n->replaces[0] && strcmp(n->replaces, n->file_id) != 0)
			memcpy(old, n->replaces, sizeof old);
		n->replaces[0] = '\0';
		persist_attrs(m, n);
	} else {
		n->status = n->unlinked || rc == -ECANCELED ? UF_CANCELLED : UF_FAILED;
		snprintf(n->error, sizeof n->error, "%s", err.message);
		n->errnum = rc;
	}
	pthread_mutex_unlock(&m->tree.mu);

	if (rc == 0 && n->unlinked) {
		/* rm came while complete was under way: the file it made goes too */
		struct up_error derr;
		up_file_delete(m->client, up.file.id, &derr);
		pthread_mutex_lock(&m->tree.mu);
		n->status = UF_CANCELLED;
		n->remote = false;
		pthread_mutex_unlock(&m->tree.mu);
		rc = -ECANCELED;
	} else if (rc == 0) {
		uf_log(m, UF_INFO, "uploaded %s (%llu bytes, %.2f s) as %s", path,
		       (unsigned long long)up.file.bytes, secs, up.file.id);
		if (old[0]) {
			struct up_error derr;
			if (up_file_delete(m->client, old, &derr) < 0 && derr.status != 404)
				uf_log(m, UF_WARN, "%s: could not delete the replaced %s: %s", path,
				       old, derr.message);
			uf_state_file_del(m->state, old);
		}
	} else if (rc != -ECANCELED) {
		uf_log(m, UF_ERROR, "upload of %s failed: %s", path ? path : "?", err.message);
	}
	up_upload_clear(&up);
	free(path);
	pthread_mutex_lock(&m->tree.mu);
	n->pins--;
	uf_tree_maybe_free(&m->tree, n);
	pthread_mutex_unlock(&m->tree.mu);
	return rc;
}

struct async_finish {
	struct uf_mount *m;
	struct uf_node *n;
};

static void *finish_thread(void *arg)
{
	struct async_finish *af = arg;
	struct uf_mount *m = af->m;
	finish(m, af->n);
	pthread_mutex_lock(&m->tree.mu);
	af->n->pins--;
	if (af->n->pins == 0 && af->n->w && af->n->status == UF_COMPLETED) {
		up_writer_free(af->n->w);
		af->n->w = NULL;
	}
	uf_tree_maybe_free(&m->tree, af->n);
	pthread_mutex_unlock(&m->tree.mu);
	free(af);
	pthread_mutex_lock(&m->bg_mu);
	if (--m->bg_running == 0)
		pthread_cond_broadcast(&m->bg_cv);
	pthread_mutex_unlock(&m->bg_mu);
	return NULL;
}

/* -o async: close returns at once, the upload completes in the background. */
static int finish_async(struct uf_mount *m, struct uf_node *n)
{
	struct async_finish *af = malloc(sizeof *af);
	pthread_t t;
	if (!af)
		return finish(m, n);
	*af = (struct async_finish){.m = m, .n = n};
	pthread_mutex_lock(&m->tree.mu);
	n->pins++;
	pthread_mutex_unlock(&m->tree.mu);
	pthread_mutex_lock(&m->bg_mu);
	m->bg_running++;
	pthread_mutex_unlock(&m->bg_mu);
	if (pthread_create(&t, NULL, finish_thread, af) != 0) {
		pthread_mutex_lock(&m->bg_mu);
		m->bg_running--;
		pthread_mutex_unlock(&m->bg_mu);
		pthread_mutex_lock(&m->tree.mu);
		n->pins--;
		pthread_mutex_unlock(&m->tree.mu);
		free(af);
		return finish(m, n);
	}
	pthread_detach(t);
	return 0;
}

/* ---- operations ---- */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	conn->max_write = 1u << 20; /* the kernel's limit (256 pages); parts are built from these */
	conn->max_readahead = 1u << 20;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* close must see every byte */
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir && dir->kind == UF_DIR ? uf_tree_child(dir, name) : NULL;
	if (n)
		reply_entry(req, n);
	else
		fuse_reply_err(req, dir ? ENOENT : ESTALE);
	pthread_mutex_unlock(&m->tree.mu);
}

static void forget_one(struct uf_mount *m, fuse_ino_t ino, uint64_t nlookup)
{
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	if (!n)
		return;
	n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
	uf_tree_maybe_free(&m->tree, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	forget_one(m, ino, nlookup);
	pthread_mutex_unlock(&m->tree.mu);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	for (size_t i = 0; i < count; i++)
		forget_one(m, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&m->tree.mu);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	struct stat st;
	if (n)
		uf_tree_stat(n, &st);
	pthread_mutex_unlock(&m->tree.mu);
	if (n)
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
	else
		fuse_reply_err(req, ESTALE);
}

static void set_time(struct timespec *dst, const struct timespec *src, bool now)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, dst);
	else
		*dst = *src;
}

/* The final size of a file still local is known: create its upload now, so each part goes
 * up as it fills. The node is pinned by the caller; no lock held. */
static void announce(struct uf_mount *m, struct uf_node *n, uint64_t size, const char *why)
{
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = n->w;
	struct up_writer_status ws = {0};
	if (w)
		up_writer_status(w, &ws);
	bool go = w && size > 0 && ws.state == UP_W_PENDING && !n->unlinked &&
		  !is_temp_name(n->name);
	char *path = go ? uf_tree_path(n) : NULL;
	char purpose[32], mime[256];
	if (path) {
		snprintf(purpose, sizeof purpose, "%s", uf_effective_purpose(m, n));
		uf_effective_mime(n, mime, sizeof mime);
	}
	pthread_mutex_unlock(&m->tree.mu);
	if (!path)
		return;
	struct up_error err;
	if (up_writer_announce(w, size, path, mime, purpose, &err) < 0)
		uf_log(m, UF_WARN, "%s: could not start the upload early (%s); it will start at close",
		       path, err.message);
	else
		uf_log(m, UF_DEBUG, "%s: %llu bytes announced by %s", path,
		       (unsigned long long)size, why);
	free(path);
}

/* ftruncate of a new, empty file to its final size: the upload can start now. */
static int set_size(struct uf_mount *m, struct uf_node *n, uint64_t size)
{
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = n->w;
	bool remote_only = !w && n->kind == UF_FILE;
	uint64_t bytes = n->bytes;
	struct up_writer_status ws = {0};
	if (w)
		up_writer_status(w, &ws);
	bool first = w && ws.size == 0 && ws.state == UP_W_PENDING;
	pthread_mutex_unlock(&m->tree.mu);
	if (remote_only)
		return size == bytes ? 0 : -EPERM;
	int rc = up_writer_truncate(w, size);
	if (rc == 0 && first)
		announce(m, n, size, "its first truncate");
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	if (!n) {
		pthread_mutex_unlock(&m->tree.mu);
		fuse_reply_err(req, ESTALE);
		return;
	}
	n->pins++;
	pthread_mutex_unlock(&m->tree.mu);
	int rc = 0;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = n->kind == UF_DIR ? -EISDIR : set_size(m, n, (uint64_t)attr->st_size);
		if (rc == -EPERM)
			uf_log(m, UF_WARN,
			       "%s: a completed file cannot be truncated; open it "
			       "with O_TRUNC to replace it",
			       n->name);
	}
	pthread_mutex_lock(&m->tree.mu);
	if (rc == 0) {
		if (to_set & FUSE_SET_ATTR_MODE)
			n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
		if (to_set & FUSE_SET_ATTR_UID)
			n->uid = attr->st_uid;
		if (to_set & FUSE_SET_ATTR_GID)
			n->gid = attr->st_gid;
		if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
			set_time(&n->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
			n->times_set = true;
		}
		if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW))
			set_time(&n->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
		clock_gettime(CLOCK_REALTIME, &n->ctime);
		if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
			      FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
			persist_attrs(m, n);
	}
	struct stat st;
	uf_tree_stat(n, &st);
	n->pins--;
	pthread_mutex_unlock(&m->tree.mu);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	struct dir_handle *d = n && n->kind == UF_DIR ? calloc(1, sizeof *d) : NULL;
	if (d && (d->ents = calloc(n->nkids + 2, sizeof *d->ents))) {
		/* a snapshot: readdir offsets stay valid while the namespace changes */
		d->ents[d->n++] = (struct dirent_snap){strdup("."), n->ino, S_IFDIR};
		d->ents[d->n++] = (struct dirent_snap){
		    strdup(".."), n->parent ? n->parent->ino : n->ino, S_IFDIR};
		for (size_t i = 0; i < n->nkids; i++)
			d->ents[d->n++] = (struct dirent_snap){strdup(n->kids[i]->name),
							       n->kids[i]->ino, n->kids[i]->mode};
	}
	pthread_mutex_unlock(&m->tree.mu);
	if (!n || n->kind != UF_DIR) {
		free(d);
		fuse_reply_err(req, n ? ENOTDIR : ESTALE);
		return;
	}
	if (!d || !d->ents) {
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = {.st_ino = d->ents[i].ino, .st_mode = d->ents[i].mode};
		size_t len = fuse_add_direntry(req, buf + used, size - used, d->ents[i].name, &st,
					       (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent), *n = NULL;
	int err = !dir			     ? ESTALE
		  : dir->kind != UF_DIR	     ? ENOTDIR
		  : uf_tree_child(dir, name) ? EEXIST
					     : 0;
	if (!err && !(n = uf_tree_new(&m->tree, dir, name, UF_DIR, mode)))
		err = ENOMEM;
	if (!err) {
		n->local_dir = true;
		for (struct uf_node *p = dir; p && p != m->tree.root; p = p->parent)
			p->local_dir = true; /* an implied parent now holds a directory of ours */
		persist_attrs(m, n);
		reply_entry(req, n);
	} else {
		fuse_reply_err(req, err);
	}
	pthread_mutex_unlock(&m->tree.mu);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir ? uf_tree_child(dir, name) : NULL;
	int err = !n ? ENOENT : n->kind != UF_DIR ? ENOTDIR : n->nkids ? ENOTEMPTY : 0;
	if (!err) {
		char *path = uf_tree_path(n);
		if (path)
			uf_state_dir_del(m->state, path);
		free(path);
		uf_tree_unlink(&m->tree, n);
	}
	pthread_mutex_unlock(&m->tree.mu);
	fuse_reply_err(req, err);
}

/* Drops a pin (tree lock held). A completed upload needs no spool any more once nobody
 * has it open. */
static void unpin(struct uf_mount *m, struct uf_node *n)
{
	n->pins--;
	if (n->pins == 0 && n->w && !n->finishing &&
	    (n->status == UF_COMPLETED || n->status == UF_CANCELLED)) {
		up_writer_free(n->w);
		n->w = NULL;
	}
	uf_tree_maybe_free(&m->tree, n);
}

static struct handle *handle_new(fuse_req_t req, struct uf_node *n, int flags)
{
	struct handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->n = n;
	h->write = (flags & O_ACCMODE) != O_RDONLY;
	h->tgid = uf_proc_tgid(fuse_req_ctx(req)->pid);
	h->cache_fd = -1;
	n->pins++;
	return h;
}

/* A write-only handle (cp, rsync, tar, `>`) bypasses the kernel's page cache: its bytes
 * go from the writer's buffer to the daemon in one copy, not through the cache first, and
 * a copied file does not stay in memory twice. Such a handle can neither read nor mmap, so
 * nothing it does depends on the cache. */
static bool write_only(const struct fuse_file_info *fi)
{
	return (fi->flags & O_ACCMODE) == O_WRONLY;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	/* cp opened its source before it created this file: that file's size is this one's, so
	 * the upload can start now rather than at close. Looked up before the reply, while the
	 * source is still at offset 0; the upload is created after it. A wrong guess costs an
	 * upload that close cancels and redoes with the right size, never the bytes. */
	uint64_t hint = 0;
	if (m->cfg.size_hint && (fi->flags & O_ACCMODE) != O_RDONLY && !is_temp_name(name) &&
	    (uf_proc_source_size(fuse_req_ctx(req)->pid, name, m->cfg.part_size, &hint) < 0 ||
	     hint > m->cfg.max_file_size))
		hint = 0;
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent), *n = NULL;
	struct handle *h = NULL;
	int err = !dir			     ? ESTALE
		  : dir->kind != UF_DIR	     ? ENOTDIR
		  : uf_tree_child(dir, name) ? EEXIST
					     : 0;
	if (!err && !(n = uf_tree_new(&m->tree, dir, name, UF_FILE, mode)))
		err = ENOMEM;
	if (!err && new_writer(m, n) < 0) {
		uf_tree_unlink(&m->tree, n);
		err = EIO;
	}
	if (!err && !(h = handle_new(req, n, fi->flags))) {
		uf_tree_unlink(&m->tree, n);
		err = ENOMEM;
	}
	if (err) {
		pthread_mutex_unlock(&m->tree.mu);
		fuse_reply_err(req, err);
		return;
	}
	/* cp, tar, rsync (O_EXCL) and `> f` (O_TRUNC) make a file even when it stays empty;
	 * touch does not, and leaves a local pending file. */
	n->upload_on_close = fi->flags & (O_EXCL | O_TRUNC);
	fi->fh = (uintptr_t)h;
	fi->direct_io = write_only(fi);
	struct fuse_entry_param e = {
	    .ino = n->ino, .attr_timeout = ATTR_TIMEOUT, .entry_timeout = ATTR_TIMEOUT};
	uf_tree_stat(n, &e.attr);
	n->nlookup++;
	if (hint)
		n->pins++; /* for the announcement, after the reply */
	pthread_mutex_unlock(&m->tree.mu);
	fuse_reply_create(req, &e, fi);
	if (!hint)
		return;
	announce(m, n, hint, "the writer's source file");
	pthread_mutex_lock(&m->tree.mu);
	unpin(m, n);
	pthread_mutex_unlock(&m->tree.mu);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	bool trunc = fi->flags & O_TRUNC;
	int err = n ? 0 : ESTALE;
	if (!err && write) {
		if (n->finishing) {
			err = EBUSY; /* its upload is completing right now */
		} else if (n->w && (n->status == UF_PENDING || n->status == UF_UPLOADING)) {
			/* still being written; an early upload that O_TRUNC voids is redone at
			 * close (and the writer stays: other handles may be using it) */
			bool early = n->status == UF_UPLOADING;
			if ((early || trunc) && (!trunc || up_writer_truncate(n->w, 0) == 0))
				n->upload_on_close = true;
		} else if (trunc) {
			/* a completed, failed or cancelled file is replaced by a new upload; a
			 * completed one is deleted once the new one is complete */
			if (n->remote && n->file_id[0])
				memcpy(n->replaces, n->file_id, UP_ID_MAX);
			if (n->w) {
				up_writer_free(n->w);
				n->w = NULL;
			}
			if (new_writer(m, n) < 0)
				err = EIO;
			else
				n->upload_on_close = true;
		} else if (n->status == UF_FAILED) {
			err = EIO; /* its upload failed: see user.upload.error; O_TRUNC retries */
		} else {
			err = EPERM;
			uf_log(m, UF_WARN,
			       "%s: a completed upload cannot be modified; open it with O_TRUNC "
			       "to replace it",
			       n->name);
		}
	}
	struct handle *h = err ? NULL : handle_new(req, n, fi->flags);
	if (!err && !h)
		err = ENOMEM;
	pthread_mutex_unlock(&m->tree.mu);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = write_only(fi);
	fuse_reply_open(req, fi);
}

/* Downloads a remote file into the content cache (once), and opens it. */
static int cache_open(struct uf_mount *m, struct uf_node *n, int *fd)
{
	char path[4200], tmp[4300], id[UP_ID_MAX];
	pthread_mutex_lock(&m->tree.mu);
	memcpy(id, n->file_id, UP_ID_MAX);
	uint64_t bytes = n->bytes;
	pthread_mutex_unlock(&m->tree.mu);
	snprintf(path, sizeof path, "%s/%s", m->content_dir, id);
	pthread_mutex_lock(&n->dl_mu);
	struct stat sb;
	int rc = 0;
	if (stat(path, &sb) < 0 || (uint64_t)sb.st_size != bytes) {
		snprintf(tmp, sizeof tmp, "%s.part", path);
		int out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		struct up_error err;
		uint64_t got = 0;
		if (out < 0) {
			rc = -errno;
			uf_log(m, UF_ERROR, "cannot create %s: %s", tmp, strerror(errno));
		} else if ((rc = up_file_content(m->client, id, out, &got, &err)) < 0) {
			if (rc == -EACCES)
				uf_log(m, UF_WARN,
				       "cannot read %s: %s (the API does not allow "
				       "downloading files of this purpose)",
				       n->name, err.message);
			else
				uf_log(m, UF_ERROR, "downloading %s failed: %s", n->name,
				       err.message);
		} else if (got != bytes) {
			rc = -EIO;
			uf_log(m, UF_ERROR, "downloading %s: got %llu bytes, expected %llu",
			       n->name, (unsigned long long)got, (unsigned long long)bytes);
		}
		if (out >= 0)
			close(out);
		if (rc == 0 && rename(tmp, path) < 0)
			rc = -errno;
		if (rc < 0)
			unlink(tmp);
	}
	pthread_mutex_unlock(&n->dl_mu);
	if (rc == 0 && (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = -errno;
	return rc;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = M(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = n->w;
	pthread_mutex_unlock(&m->tree.mu);
	int rc = 0;
	size_t got = 0;
	if (w) {
		rc = up_writer_read(w, buf, size, (uint64_t)off, &got);
	} else {
		if (h->cache_fd < 0)
			rc = cache_open(m, n, &h->cache_fd);
		if (rc == 0) {
			ssize_t r = pread(h->cache_fd, buf, size, off);
			rc = r < 0 ? -errno : 0;
			got = r < 0 ? 0 : (size_t)r;
		}
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = M(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = n->w;
	pthread_mutex_unlock(&m->tree.mu);
	if (!h->write || !w) {
		fuse_reply_err(req, EBADF);
		return;
	}
	int rc = up_writer_write(w, buf, size, (uint64_t)off);
	pthread_mutex_lock(&m->tree.mu);
	if (rc == 0) {
		n->upload_on_close = true;
		clock_gettime(CLOCK_REALTIME, &n->mtime);
		n->ctime = n->mtime;
	} else {
		struct up_writer_status ws;
		up_writer_status(w, &ws);
		if (ws.errnum) {
			/* latched: the file is failed, and says why */
			n->status = n->status == UF_CANCELLED ? UF_CANCELLED : UF_FAILED;
			snprintf(n->error, sizeof n->error, "%s", ws.error);
			n->errnum = ws.errnum;
		}
	}
	pthread_mutex_unlock(&m->tree.mu);
	if (rc < 0) {
		if (rc != -ECANCELED)
			uf_log(m, UF_ERROR, "write to %s failed: %s", n->name, strerror(-rc));
		fuse_reply_err(req, -rc);
	} else {
		fuse_reply_write(req, size);
	}
}

/* Whether closing this handle should complete the upload (tree lock held). */
static bool due(const struct uf_node *n)
{
	return n->w && n->upload_on_close && !n->unlinked && !n->finishing &&
	       (n->status == UF_PENDING || n->status == UF_UPLOADING) && !is_temp_name(n->name);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = M(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	if (!h->write) {
		fuse_reply_err(req, 0);
		return;
	}
	/* Only the opener's last close of the file completes the upload. A flush from a forked
	 * child, or of one of several descriptors (the shell opens, dup2()s and closes around
	 * each command), does not; the upload then completes at a later flush or at release. */
	pid_t tgid = uf_proc_tgid(fuse_req_ctx(req)->pid);
	pthread_mutex_lock(&m->tree.mu);
	bool go = tgid == h->tgid && due(n);
	int latched = n->errnum;
	char *rel = go ? uf_tree_path(n) : NULL;
	pthread_mutex_unlock(&m->tree.mu);
	if (go && rel) {
		char abs[PATH_MAX * 2];
		snprintf(abs, sizeof abs, "%s/%s", m->mount_abs, rel);
		go = !uf_proc_has_open(tgid, abs);
	}
	free(rel);
	int rc = latched;
	if (go)
		rc = m->cfg.async_close ? finish_async(m, n) : finish(m, n);
	fuse_reply_err(req, rc == -ECANCELED ? 0 : -rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = M(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	if (h->cache_fd >= 0)
		close(h->cache_fd);
	/* The check and the unpin are one hold of the lock. A rename (rsync's, of a closed
	 * temporary) that comes between them would see this handle still pinning the file and
	 * leave the upload to this release, which had already judged the old name: the file
	 * would stay pending. Now a rename sees either this handle, and this release uploads
	 * under the new name, or no handle, and the rename uploads. */
	pthread_mutex_lock(&m->tree.mu);
	bool go = h->write && due(n) && n->status == UF_PENDING;
	if (!go)
		unpin(m, n);
	pthread_mutex_unlock(&m->tree.mu);
	if (go) {
		if (m->cfg.async_close)
			finish_async(m, n);
		else
			finish(m, n);
		pthread_mutex_lock(&m->tree.mu);
		unpin(m, n);
		pthread_mutex_unlock(&m->tree.mu);
	}
	free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	struct uf_mount *m = M(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = h->n->w;
	pthread_mutex_unlock(&m->tree.mu);
	/* the parts in flight reach the server; the rest waits for close */
	int rc = w ? up_writer_sync(w) : 0;
	fuse_reply_err(req, rc == -ECANCELED ? 0 : -rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = M(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	struct up_writer_status ws = {0};
	if (n && n->w)
		up_writer_status(n->w, &ws);
	if (n)
		n->pins++;
	pthread_mutex_unlock(&m->tree.mu);
	int rc;
	if (!n)
		rc = -ESTALE;
	else if (!n->w)
		rc = -EPERM;
	else if (mode == FALLOC_FL_KEEP_SIZE)
		rc = 0; /* a hint (rsync --preallocate gives size-1): the size is not announced */
	else if (mode != 0)
		rc = -EOPNOTSUPP;
	else if ((uint64_t)(off + len) > ws.size)
		rc = set_size(m, n, (uint64_t)(off + len)); /* the size is announced */
	else
		rc = 0;
	if (n) {
		pthread_mutex_lock(&m->tree.mu);
		n->pins--;
		pthread_mutex_unlock(&m->tree.mu);
	}
	fuse_reply_err(req, -rc);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = M(req);
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir ? uf_tree_child(dir, name) : NULL;
	if (!n || n->kind == UF_DIR) {
		pthread_mutex_unlock(&m->tree.mu);
		fuse_reply_err(req, !n ? ENOENT : EISDIR);
		return;
	}
	n->pins++;
	struct up_writer *w = n->w;
	char id[UP_ID_MAX] = "", old[UP_ID_MAX] = "";
	if (n->remote)
		memcpy(id, n->file_id, UP_ID_MAX);
	if (n->replaces[0])
		memcpy(old, n->replaces, UP_ID_MAX);
	pthread_mutex_unlock(&m->tree.mu);

	int rc = 0;
	struct up_error err;
	/* rm of a file still uploading cancels its upload */
	if (w)
		up_writer_cancel(w);
	for (int i = 0; i < 2; i++) {
		const char *fid = i == 0 ? id : old;
		if (!fid[0] || (i == 1 && strcmp(old, id) == 0))
			continue;
		if (up_file_delete(m->client, fid, &err) < 0 && err.status != 404) {
			rc = err.errnum;
			uf_log(m, UF_ERROR, "cannot delete %s (%s): %s", name, fid, err.message);
		} else {
			uf_state_file_del(m->state, fid);
		}
	}
	pthread_mutex_lock(&m->tree.mu);
	if (rc == 0) {
		n->unlinked = true;
		if (w)
			n->status = UF_CANCELLED;
		uf_tree_unlink(&m->tree, n);
	}
	n->pins--;
	uf_tree_maybe_free(&m->tree, n);
	pthread_mutex_unlock(&m->tree.mu);
	fuse_reply_err(req, -rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct uf_mount *m = M(req);
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *ndir = uf_tree_get(&m->tree, newparent);
	struct uf_node *n = dir ? uf_tree_child(dir, name) : NULL;
	struct uf_node *dst = ndir ? uf_tree_child(ndir, newname) : NULL;
	int err = 0;
	if (!n || !ndir)
		err = ENOENT;
	else if (ndir->kind != UF_DIR)
		err = ENOTDIR;
	else if (dst && (flags & RENAME_NOREPLACE))
		err = EEXIST;
	else if (dst == n)
		err = 0;
	else if (n->kind == UF_DIR && (n->nkids || dst))
		err = n->nkids ? EXDEV : EEXIST; /* remote names cannot move: mv copies */
	else if (n->kind == UF_FILE && n->remote && !n->w) {
		err = EXDEV;
		uf_log(m, UF_INFO, "%s: the API cannot rename a completed file", name);
	} else if (dst && dst->kind == UF_DIR)
		err = EISDIR;
	if (!err && dst && dst != n) {
		/* the replaced file goes once this one is complete */
		if (dst->remote && dst->file_id[0] && !n->replaces[0])
			memcpy(n->replaces, dst->file_id, UP_ID_MAX);
		if (dst->w)
			up_writer_cancel(dst->w);
		dst->unlinked = true;
		uf_tree_unlink(&m->tree, dst);
	}
	if (!err && dst != n)
		err = -uf_tree_move(&m->tree, n, ndir, newname);
	if (!err && n->kind == UF_DIR && n->local_dir)
		persist_attrs(m, n);
	/* a closed temporary file that now has its final name goes up now */
	bool go = !err && n->kind == UF_FILE && n->pins == 0 && due(n) && n->status == UF_PENDING;
	if (go)
		n->pins++;
	pthread_mutex_unlock(&m->tree.mu);
	if (go) {
		err = -finish(m, n);
		pthread_mutex_lock(&m->tree.mu);
		n->pins--;
		if (n->status == UF_COMPLETED && n->pins == 0 && n->w) {
			up_writer_free(n->w);
			n->w = NULL;
		}
		pthread_mutex_unlock(&m->tree.mu);
	}
	fuse_reply_err(req, err);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv = {.f_bsize = 1 << 20,
			     .f_frsize = 1 << 20,
			     .f_blocks = 1ull << 23,
			     .f_bfree = 1ull << 23,
			     .f_bavail = 1ull << 23,
			     .f_files = 1u << 20,
			     .f_ffree = 1u << 20,
			     .f_favail = 1u << 20,
			     .f_namemax = 255};
	fuse_reply_statfs(req, &sv);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	(void)mask;
	fuse_reply_err(req, 0);
}

/* ---- after a crash ---- */

static bool in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Resumes one journal record; returns the spool it keeps, or NULL. */
static char *recover_one(struct uf_mount *m, const char *record)
{
	struct up_journal_rec r;
	if (up_journal_read(record, &r) < 0) {
		char aside[4500];
		snprintf(aside, sizeof aside, "%s.corrupt", record);
		rename(record, aside);
		up_journal_remove(record); /* its parts log names a session no record describes */
		uf_log(m, UF_WARN, "damaged journal record %s set aside", record);
		return NULL;
	}
	if (!r.md5[0]) {
		/* the file was still being written when the daemon stopped: it never closed,
		 * so nothing of it was promised; its session must not linger on the server */
		if (r.upload_id[0]) {
			struct up_upload u = {0};
			struct up_error e;
			up_upload_cancel(m->client, r.upload_id, &u, &e);
			up_upload_clear(&u);
		}
		uf_log(m, UF_WARN,
		       "%s was still being written when uploadfs stopped; its "
		       "upload %s is cancelled",
		       r.filename, r.upload_id[0] ? r.upload_id : "");
		unlink(r.spool);
		up_journal_remove(record);
		up_journal_rec_clear(&r);
		return NULL;
	}
	struct up_writer_config wc = {.client = m->client,
				      .async = m->async,
				      .spool_path = r.spool,
				      .part_size = r.part_size,
				      .max_size = m->cfg.max_file_size,
				      .journal_path = record};
	struct up_writer *w = NULL;
	int rc = up_writer_restore(&wc, &r, &w);
	if (rc < 0) {
		uf_log(m, UF_ERROR, "cannot resume the upload of %s: %s", r.filename,
		       strerror(-rc));
		up_journal_rec_clear(&r);
		return NULL;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_place(&m->tree, r.filename);
	if (n) {
		n->w = w;
		n->upload_on_close = true;
		n->status = UF_UPLOADING;
		clock_gettime(CLOCK_MONOTONIC, &n->started);
		n->x_purpose = strdup(r.purpose);
		n->x_mime = strdup(r.mime_type);
	}
	pthread_mutex_unlock(&m->tree.mu);
	if (!n) {
		uf_log(m, UF_ERROR, "cannot resume %s: the name is taken", r.filename);
		up_writer_free(w);
		up_journal_rec_clear(&r);
		return NULL;
	}
	uf_log(m, UF_INFO, "resuming the upload of %s (%llu bytes)", r.filename,
	       (unsigned long long)r.size);
	finish_async(m, n);
	char *keep = strdup(r.spool);
	up_journal_rec_clear(&r);
	return keep;
}

void uf_recover(struct uf_mount *m)
{
	char **kept = NULL;
	size_t nkept = 0;
	DIR *d = opendir(m->journal_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char record[4400];
		snprintf(record, sizeof record, "%s/%s", m->journal_dir, de->d_name);
		if (up_journal_sweep_log(record) || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		char *spool = recover_one(m, record);
		char **nk = spool ? realloc(kept, (nkept + 1) * sizeof *kept) : NULL;
		if (nk) {
			kept = nk;
			kept[nkept++] = spool;
		} else {
			free(spool);
		}
	}
	if (d)
		closedir(d);
	/* spool files no record names: files never closed, nothing promised */
	if ((d = opendir(m->spool_dir))) {
		while ((de = readdir(d))) {
			char path[4400];
			snprintf(path, sizeof path, "%s/%s", m->spool_dir, de->d_name);
			if (de->d_name[0] != '.' && !in_list(kept, nkept, path))
				unlink(path);
		}
		closedir(d);
	}
	for (size_t i = 0; i < nkept; i++)
		free(kept[i]);
	free(kept);
}

const struct fuse_lowlevel_ops uf_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .create = op_create,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .fallocate = op_fallocate,
    .unlink = op_unlink,
    .rename = op_rename,
    .statfs = op_statfs,
    .access = op_access,
    .getxattr = uf_getxattr,
    .setxattr = uf_setxattr,
    .listxattr = uf_listxattr,
    .removexattr = uf_removexattr,
};
