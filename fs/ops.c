/* The FUSE operations: a thin adapter. Each keeps the namespace under the tree lock and
 * leaves the upload's life to lifecycle.h and downloads to content.h; none waits for a
 * listing (listing.h keeps it fresh beside them); no network request or fsync under the
 * lock. Each rule is written down in
 * docs/SEMANTICS.md; docs/ARCHITECTURE.md maps them to these functions. */
#include "content.h"
#include "journal.h"
#include "lifecycle.h"
#include "dirlist.h"
#include "names.h"
#include "version.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>


struct handle {
	struct uf_node *n;
	bool write;
	pid_t tgid;   /* the opener's process */
	pthread_mutex_t mu; /* cache_fd and cache_id; a leaf lock, held over a read */
	int cache_fd;	    /* the remote file's content, for reads */
	char cache_id[UP_ID_MAX]; /* the file it is of: a new version since means another */
};

/* rsync's receiver writes ".NAME.XXXXXX" (O_EXCL) and renames it to NAME after close:
 * such a file is uploaded when it gets its final name, never under the temporary one. The
 * name's shape alone is not enough (".env.sample" has it): the creator must be rsync. */
static bool rsync_temp_name(const char *name)
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

/* ---- helpers ---- */

static void reply_entry(fuse_req_t req, struct uf_node *n)
{
	struct fuse_entry_param e = {
	    .ino = n->ino, .attr_timeout = UF_ATTR_TIMEOUT, .entry_timeout = UF_ATTR_TIMEOUT};
	uf_tree_stat(n, &e.attr);
	n->nlookup++;
	fuse_reply_entry(req, &e);
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
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir && dir->kind == UF_DIR ? uf_tree_child(dir, name) : NULL;
	if (n)
		reply_entry(req, n);
	else
		fuse_reply_err(req, dir ? ENOENT : ESTALE);
	uf_tree_unlock(&m->tree);
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
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	forget_one(m, ino, nlookup);
	uf_tree_unlock(&m->tree);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	for (size_t i = 0; i < count; i++)
		forget_one(m, forgets[i].ino, forgets[i].nlookup);
	uf_tree_unlock(&m->tree);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	struct stat st;
	if (n)
		uf_tree_stat(n, &st);
	uf_tree_unlock(&m->tree);
	if (n)
		fuse_reply_attr(req, &st, UF_ATTR_TIMEOUT);
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

/* truncate: a completed file of another size gets a new version first. *changed says a
 * writer took the size (lifecycle marks it to upload at its last close). No lock held; n
 * pinned. */
static int resize(struct uf_mount *m, struct uf_node *n, uint64_t size, bool *changed)
{
	pthread_mutex_lock(&m->tree.mu);
	bool need = uf_version_needed(n) && size != n->bytes;
	bool orphan = n->unlinked && !n->w;
	uf_tree_unlock(&m->tree);
	int rc = need ? uf_version_begin(m, n) : orphan ? uf_version_orphan(m, n) : 0;
	if (rc == 0)
		rc = uf_life_set_size(m, n, size);
	pthread_mutex_lock(&m->tree.mu);
	*changed = rc == 0 && n->w;
	uf_tree_unlock(&m->tree);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	if (!n) {
		uf_tree_unlock(&m->tree);
		fuse_reply_err(req, ESTALE);
		return;
	}
	n->pins++;
	uf_tree_unlock(&m->tree);
	int rc = 0;
	bool sized = false;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = n->kind == UF_DIR ? -EISDIR : resize(m, n, (uint64_t)attr->st_size, &sized);
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
		/* an atime alone is accepted and not kept (it reads as mtime, as noatime) */
		clock_gettime(CLOCK_REALTIME, &n->ctime);
		if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
			      FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW))
			uf_life_persist_attrs(m, n);
	}
	/* truncate(2) with no handle open (a completed file's new version, a touched file):
	 * no close will come, so it goes up now */
	bool go = rc == 0 && sized && n->writers == 0 && uf_life_due(n);
	uf_tree_unlock(&m->tree);
	if (go && (rc = uf_life_close(m, n, m->cfg.async_close)) == -ECANCELED)
		rc = 0;
	pthread_mutex_lock(&m->tree.mu);
	struct stat st;
	uf_tree_stat(n, &st);
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, UF_ATTR_TIMEOUT);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct uf_mount *m = uf_mount_of(req);
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
		uf_life_persist_attrs(m, n);
		reply_entry(req, n);
	} else {
		fuse_reply_err(req, err);
	}
	uf_tree_unlock(&m->tree);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir ? uf_tree_child(dir, name) : NULL;
	int err = !n ? ENOENT : n->kind != UF_DIR ? ENOTDIR : uf_tree_nkids(n) ? ENOTEMPTY : 0;
	if (!err) {
		char *path = uf_tree_path(n);
		if (path)
			uf_state_dir_del(m->state, path);
		free(path);
		uf_tree_unlink(&m->tree, n);
	}
	uf_tree_unlock(&m->tree);
	fuse_reply_err(req, err);
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
	pthread_mutex_init(&h->mu, NULL);
	n->pins++;
	if (h->write)
		n->writers++;
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
	struct uf_mount *m = uf_mount_of(req);
	pid_t pid = fuse_req_ctx(req)->pid;
	bool temp = (fi->flags & O_EXCL) && rsync_temp_name(name) && uf_proc_is(pid, "rsync");
	/* cp opened its source before it created this file: that file's size is this one's, so
	 * the upload can start now rather than at close. Looked up before the reply, while the
	 * source is still at offset 0; the upload is created after it. A wrong guess costs an
	 * upload that close cancels and redoes with the right size, never the bytes. */
	uint64_t hint = 0;
	if (m->cfg.size_hint && (fi->flags & O_ACCMODE) != O_RDONLY && !temp &&
	    (uf_proc_source_size(pid, name, m->cfg.part_size, &hint) < 0 ||
	     hint > m->cfg.max_file_size))
		hint = 0;
	struct up_writer *w = NULL; /* its spool is made before the tree lock is taken */
	if (uf_life_make_writer(m, &w) < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent), *n = NULL;
	struct handle *h = NULL;
	int err = !dir			     ? ESTALE
		  : dir->kind != UF_DIR	     ? ENOTDIR
		  : uf_tree_child(dir, name) ? EEXIST
					     : 0;
	if (!err && !(n = uf_tree_new(&m->tree, dir, name, UF_FILE, mode)))
		err = ENOMEM;
	if (!err) {
		uf_life_set_writer(m, n, w);
		w = NULL;
	}
	if (!err && !(h = handle_new(req, n, fi->flags))) {
		uf_tree_unlink(&m->tree, n);
		err = ENOMEM;
	}
	if (err) {
		uf_tree_unlock(&m->tree);
		up_writer_free(w); /* never given to a node: its spool goes */
		fuse_reply_err(req, err);
		return;
	}
	/* cp, tar, rsync (O_EXCL) and `> f` (O_TRUNC) make a file even when it stays empty;
	 * touch does not, and leaves a local pending file. */
	n->upload_on_close = fi->flags & (O_EXCL | O_TRUNC);
	n->rsync_temp = temp;
	fi->fh = (uintptr_t)h;
	fi->direct_io = write_only(fi);
	struct fuse_entry_param e = {
	    .ino = n->ino, .attr_timeout = UF_ATTR_TIMEOUT, .entry_timeout = UF_ATTR_TIMEOUT};
	uf_tree_stat(n, &e.attr);
	n->nlookup++;
	if (hint)
		n->pins++; /* for the announcement, after the reply */
	uf_tree_unlock(&m->tree);
	fuse_reply_create(req, &e, fi);
	if (!hint)
		return;
	uf_life_announce(m, n, hint, "the writer's source file");
	pthread_mutex_lock(&m->tree.mu);
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
}

/* open for writing (tree lock held): 0, or the errno. *trunc_w gets a reference to a writer
 * the caller truncates to 0 once the lock is released. */
static int open_for_write(struct uf_mount *m, struct uf_node *n, bool trunc,
			  struct up_writer **trunc_w, struct up_writer **fresh)
{
	uf_life_wait_idle(m, n); /* a close completing it right now: wait for its end */
	if (!n->linked && !n->unlinked)
		return ESTALE;
	struct up_writer_status ws;
	enum uf_status st = uf_life_status(n, &ws);
	if (n->w && (st == UF_PENDING || st == UF_UPLOADING)) {
		/* still being written; an early upload that O_TRUNC voids is redone at close
		 * (and the writer stays: other handles may be using it) */
		if (st == UF_UPLOADING || trunc)
			n->upload_on_close = true;
		if (trunc)
			*trunc_w = uf_life_writer(n);
		return 0;
	}
	if (trunc) {
		/* a completed, failed or cancelled file is replaced by a new upload; a
		 * completed one is deleted once the new one is complete (the writer's journal
		 * record says which, so a restart knows too) */
		struct up_idlist old = {0};
		if (n->remote)
			up_idlist_add(&old, n->file_id);
		if (n->w) /* a failed or cancelled version's targets stay to be replaced */
			up_writer_replaced(n->w, &old);
		if (old.n && uf_no_delete(m, "O_TRUNC of", n->name, old.ids[0]) < 0) {
			up_idlist_clear(&old);
			return EPERM; /* -o no_delete */
		}
		if (!*fresh) {
			up_idlist_clear(&old);
			return EIO; /* no spool could be made */
		}
		uf_life_set_writer(m, n, *fresh);
		*fresh = NULL;
		for (size_t i = 0; i < old.n; i++)
			up_writer_add_replaces(n->w, old.ids[i]);
		up_idlist_clear(&old);
		n->upload_on_close = true;
		return 0;
	}
	if (st == UF_FAILED)
		return EIO; /* its upload failed: see user.upload.error; O_TRUNC retries */
	/* a completed file: its first write makes a new version (fs/version.h), so an open
	 * that only reads, or touch, costs nothing */
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct uf_mount *m = uf_mount_of(req);
	/* O_TRUNC may replace a completed file: the new version's spool is made first,
	 * without the tree lock, and dropped if it is not needed */
	struct up_writer *fresh = NULL;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (fi->flags & O_TRUNC) &&
	    uf_life_make_writer(m, &fresh) < 0)
		fresh = NULL;
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	int err = n ? 0 : ESTALE;
	struct up_writer *trunc_w = NULL;
	if (!err && write) {
		n->pins++; /* waiting below may drop the lock */
		err = open_for_write(m, n, fi->flags & O_TRUNC, &trunc_w, &fresh);
		n->pins--;
	}
	struct handle *h = err ? NULL : handle_new(req, n, fi->flags);
	if (!err && !h)
		err = ENOMEM;
	if (n && err)
		uf_tree_maybe_free(&m->tree, n);
	uf_tree_unlock(&m->tree);
	up_writer_free(fresh); /* made for a replacement that was not needed */
	if (trunc_w) {
		/* O_TRUNC of a file still being written: it starts over (the spool is not
		 * truncated under the tree lock) */
		if (!err && up_writer_truncate(trunc_w, 0) < 0)
			err = EIO;
		up_writer_free(trunc_w);
	}
	if (err) {
		if (h) {
			h->write = false; /* counted as a writer by handle_new */
			pthread_mutex_lock(&m->tree.mu);
			n->writers--;
			uf_life_unpin(m, n);
			uf_tree_unlock(&m->tree);
			pthread_mutex_destroy(&h->mu);
			free(h);
		}
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = write_only(fi);
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = uf_mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = uf_life_writer(n);
	uf_tree_unlock(&m->tree);
	int rc = 0;
	size_t got = 0;
	if (w) {
		rc = up_writer_read(w, buf, size, (uint64_t)off, &got);
		up_writer_free(w);
	} else {
		char id[UP_ID_MAX];
		pthread_mutex_lock(&m->tree.mu);
		snprintf(id, sizeof id, "%s", n->file_id);
		uf_tree_unlock(&m->tree);
		pthread_mutex_lock(&h->mu);
		if (h->cache_fd >= 0 && strcmp(h->cache_id, id) != 0) {
			close(h->cache_fd); /* the file has a new version since */
			h->cache_fd = -1;
		}
		if (h->cache_fd < 0 && (rc = uf_content_open(m, n, "read", &h->cache_fd)) == 0)
			memcpy(h->cache_id, id, UP_ID_MAX);
		if (rc == 0) {
			ssize_t r = pread(h->cache_fd, buf, size, off);
			rc = r < 0 ? -errno : 0;
			got = r < 0 ? 0 : (size_t)r;
		}
		pthread_mutex_unlock(&h->mu);
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

/* The writer a write to n goes to: a completed file gets a new version first, holding its
 * bytes, and one removed while open a writer of nowhere (fs/version.h). *w is NULL if
 * there is none (no lock held). */
static int writer_of(struct uf_mount *m, struct uf_node *n, struct up_writer **w)
{
	pthread_mutex_lock(&m->tree.mu);
	uf_life_wait_idle(m, n); /* a close completing it, a rename uploading it again */
	bool need = uf_version_needed(n), orphan = n->unlinked && !n->w;
	*w = need || orphan ? NULL : uf_life_writer(n);
	uf_tree_unlock(&m->tree);
	if (!need && !orphan)
		return 0;
	int rc = need ? uf_version_begin(m, n) : uf_version_orphan(m, n);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->tree.mu);
	*w = uf_version_needed(n) ? NULL : uf_life_writer(n);
	uf_tree_unlock(&m->tree);
	return 0;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = uf_mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	struct up_writer *w = NULL;
	int rc = 0;
	if (h->write)
		rc = writer_of(m, n, &w);
	if (!w) {
		fuse_reply_err(req, rc ? -rc : EBADF);
		return;
	}
	rc = up_writer_write(w, buf, size, (uint64_t)off);
	up_writer_free(w);
	if (rc == 0) {
		pthread_mutex_lock(&m->tree.mu);
		n->upload_on_close = true;
		clock_gettime(CLOCK_REALTIME, &n->mtime);
		n->ctime = n->mtime;
		uf_tree_unlock(&m->tree);
		fuse_reply_write(req, size);
		return;
	}
	if (rc != -ECANCELED)
		uf_log(m, UF_ERROR, "write to %s failed: %s", n->name, strerror(-rc));
	fuse_reply_err(req, -rc);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = uf_mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	if (!h->write) {
		fuse_reply_err(req, 0);
		return;
	}
	/* The kernel gives the thread; openers are compared by process. Only the opener's
	 * last way to write the file completes the upload (lifecycle.h): a flush from a
	 * forked child, or of one of several descriptors, does not. */
	pid_t tgid = uf_proc_tgid(fuse_req_ctx(req)->pid);
	int rc;
	if (tgid == h->tgid && uf_life_flush_completes(m, n, tgid)) {
		rc = uf_life_close(m, n, m->cfg.async_close);
	} else {
		struct up_writer_status ws;
		pthread_mutex_lock(&m->tree.mu);
		uf_life_status(n, &ws);
		uf_tree_unlock(&m->tree);
		rc = ws.errnum;
	}
	fuse_reply_err(req, rc == -ECANCELED ? 0 : -rc);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct uf_mount *m = uf_mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct uf_node *n = h->n;
	if (h->cache_fd >= 0)
		close(h->cache_fd);
	pthread_mutex_destroy(&h->mu);
	/* The last write handle gone completes the upload if no flush did. The count and the
	 * check are one hold of the lock: a rename (rsync's, of a closed temporary) sees
	 * either this handle, and this release uploads under the new name, or none, and the
	 * rename uploads. */
	pthread_mutex_lock(&m->tree.mu);
	if (h->write)
		n->writers--;
	bool go = h->write && n->writers == 0 && uf_life_due(n);
	if (h->write && n->writers == 0 && n->remote && n->w && !n->upload_on_close &&
	    uf_life_status(n, &(struct up_writer_status){0}) == UF_PENDING)
		uf_tree_drop_writer(&m->tree, n); /* a new version that nothing changed */
	uf_tree_unlock(&m->tree);
	if (go)
		uf_life_close(m, n, m->cfg.async_close);
	pthread_mutex_lock(&m->tree.mu);
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
	free(h);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	struct uf_mount *m = uf_mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&m->tree.mu);
	struct up_writer *w = uf_life_writer(h->n);
	uf_tree_unlock(&m->tree);
	/* the parts in flight reach the server; the rest waits for close */
	int rc = w ? up_writer_sync(w) : 0;
	up_writer_free(w);
	fuse_reply_err(req, rc == -ECANCELED ? 0 : -rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	struct up_writer_status ws = {0};
	bool local = n && n->w;
	if (local)
		up_writer_status(n->w, &ws);
	if (n)
		n->pins++;
	uf_tree_unlock(&m->tree);
	int rc;
	if (!n)
		rc = -ESTALE;
	else if (!local)
		rc = -EPERM;
	else if (mode == FALLOC_FL_KEEP_SIZE)
		rc = 0; /* a hint (rsync --preallocate gives size-1): the size is not announced */
	else if (mode != 0)
		rc = -EOPNOTSUPP;
	else if ((uint64_t)(off + len) > ws.size)
		rc = uf_life_set_size(m, n, (uint64_t)(off + len)); /* the size is announced */
	else
		rc = 0;
	if (n) {
		pthread_mutex_lock(&m->tree.mu);
		uf_life_unpin(m, n);
		uf_tree_unlock(&m->tree);
	}
	fuse_reply_err(req, -rc);
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

const struct fuse_lowlevel_ops uf_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .opendir = uf_op_opendir,
    .readdir = uf_op_readdir,
    .readdirplus = uf_op_readdirplus,
    .releasedir = uf_op_releasedir,
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
    .unlink = uf_op_unlink,
    .rename = uf_op_rename,
    .statfs = op_statfs,
    .access = op_access,
    .getxattr = uf_getxattr,
    .setxattr = uf_setxattr,
    .listxattr = uf_listxattr,
    .removexattr = uf_removexattr,
};
