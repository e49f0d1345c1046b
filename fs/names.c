/* Namespace changes that reach the server: unlink (delete or cancel) and rename (files
 * that are not yet completed, directories of them, replace-by-rename). */
#include "names.h"

#include "journal.h"
#include "lifecycle.h"
#include "merge.h"
#include "version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void uf_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *dir = uf_tree_get(&m->tree, parent);
	struct uf_node *n = dir ? uf_tree_child(dir, name) : NULL;
	if (!n || n->kind == UF_DIR) {
		uf_tree_unlock(&m->tree);
		fuse_reply_err(req, !n ? ENOENT : EISDIR);
		return;
	}
	n->pins++;
	struct up_writer *w = uf_life_writer(n);
	/* the file's remote version and every file a new version was to replace */
	struct up_idlist gone = {0};
	if (n->remote)
		up_idlist_add(&gone, n->file_id);
	if (w)
		up_writer_replaced(w, &gone);
	uf_tree_unlock(&m->tree);

	/* -o no_delete: nothing changes, here or on the server */
	int rc = gone.n ? uf_no_delete(m, "rm of", name, gone.ids[0]) : 0;
	if (rc < 0) {
		up_idlist_clear(&gone);
		up_writer_free(w);
		pthread_mutex_lock(&m->tree.mu);
		uf_life_unpin(m, n);
		uf_tree_unlock(&m->tree);
		fuse_reply_err(req, -rc);
		return;
	}
	struct up_error err;
	/* rm of a file still uploading cancels its upload */
	if (w)
		up_writer_cancel(w);
	up_writer_free(w);
	for (size_t i = 0; i < gone.n; i++) {
		const char *fid = gone.ids[i];
		if (up_file_delete(m->client, fid, &err) < 0 && err.status != 404) {
			rc = err.errnum;
			uf_log(m, UF_ERROR, "cannot delete %s (%s): %s", name, fid, err.message);
		} else {
			uf_state_file_del(m->state, fid);
			uf_cache_drop(m->cache, fid);
			pthread_mutex_lock(&m->tree.mu);
			uf_tree_deleted(&m->tree, fid);
			uf_tree_unlock(&m->tree);
		}
	}
	up_idlist_clear(&gone);
	pthread_mutex_lock(&m->tree.mu);
	if (rc == 0) {
		n->unlinked = true;
		uf_tree_unlink(&m->tree, n);
	}
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
	fuse_reply_err(req, -rc);
}

/* A file in dir's subtree being completed right now, or NULL (tree lock held). */
static struct uf_node *busy_below(struct uf_node *dir)
{
	struct uf_node *k;
	for (size_t pos = 0; (k = uf_tree_next_kid(dir, &pos));) {
		struct uf_node *b = k->kind == UF_DIR ? busy_below(k) : NULL;
		if (b)
			return b;
		if (k->kind == UF_FILE && k->finishing)
			return k;
	}
	return NULL;
}

/* Whether n is on the server under its name with no new version being written: a rename
 * must upload it again (tree lock held). */
static bool settled(const struct uf_node *n)
{
	struct up_writer_status ws;
	enum uf_status st = uf_life_status(n, &ws);
	return n->kind == UF_FILE && n->remote && st != UF_PENDING && st != UF_UPLOADING;
}

static bool settled_below(const struct uf_node *dir)
{
	struct uf_node *k;
	for (size_t pos = 0; (k = uf_tree_next_kid(dir, &pos));)
		if (k->kind == UF_DIR ? settled_below(k) : settled(k))
			return true;
	return false;
}

/* The state store's directory records of dir's subtree, dropped (add false) or written
 * (add true): a renamed directory keeps its records under its new path only. */
static void dir_records(struct uf_mount *m, struct uf_node *dir, bool add)
{
	if (dir->local_dir && dir != m->tree.root) {
		char *path = uf_tree_path(dir);
		if (add)
			uf_life_persist_attrs(m, dir);
		else if (path)
			uf_state_dir_del(m->state, path);
		free(path);
	}
	struct uf_node *k;
	for (size_t pos = 0; (k = uf_tree_next_kid(dir, &pos));)
		if (k->kind == UF_DIR)
			dir_records(m, k, add);
}

/* The checks of a rename (tree lock held): 0, or the errno; *wait says a file involved is
 * being completed, and the rename must wait for it and look again; *again says files on
 * the server must be uploaded again under their new names. */
static int rename_check(struct uf_node *n, struct uf_node *ndir, struct uf_node *dst,
			unsigned flags, struct uf_node **wait, bool *again)
{
	*wait = NULL;
	*again = false;
	if (!n || !ndir)
		return ENOENT;
	if (ndir->kind != UF_DIR)
		return ENOTDIR;
	if (dst && (flags & RENAME_NOREPLACE))
		return EEXIST;
	if (dst == n)
		return 0;
	if (n->finishing || (dst && dst->finishing)) {
		*wait = n->finishing ? n : dst;
		return 0;
	}
	if (n->kind == UF_DIR) {
		if (dst && (dst->kind != UF_DIR || uf_tree_nkids(dst)))
			return dst->kind != UF_DIR ? ENOTDIR : ENOTEMPTY;
		for (struct uf_node *p = ndir; p; p = p->parent)
			if (p == n)
				return EINVAL; /* into itself */
		if ((*wait = busy_below(n)))
			return 0;
		*again = settled_below(n);
		return 0;
	}
	if (dst && dst->kind == UF_DIR)
		return EISDIR;
	*again = settled(n); /* a new version being written moves freely */
	return 0;
}

/* The files of a rename that go up again (tree lock held): n itself, or the settled files
 * below it, each pinned and finishing (other renames and writes wait for them), with the
 * path it will have once n is ndir/newname. */
static int moving_add(struct uf_node *k, const char *path, struct uf_moving **mv, size_t *count)
{
	struct uf_moving *nm = realloc(*mv, (*count + 1) * sizeof *nm);
	if (!nm)
		return -ENOMEM;
	*mv = nm;
	struct uf_moving *e = &nm[*count];
	memset(e, 0, sizeof *e);
	if (!(e->path = strdup(path)))
		return -ENOMEM;
	e->n = k;
	snprintf(e->old_id, sizeof e->old_id, "%s", k->file_id);
	k->finishing = true;
	k->pins++;
	(*count)++;
	return 0;
}

static int moving_below(struct uf_node *dir, const char *path, struct uf_moving **mv,
			size_t *count)
{
	int rc = 0;
	struct uf_node *k;
	for (size_t pos = 0; rc == 0 && (k = uf_tree_next_kid(dir, &pos));) {
		char *sub = malloc(strlen(path) + strlen(k->name) + 2);
		if (!sub)
			return -ENOMEM;
		sprintf(sub, "%s/%s", path, k->name);
		if (k->kind == UF_DIR)
			rc = moving_below(k, sub, mv, count);
		else if (settled(k))
			rc = moving_add(k, sub, mv, count);
		free(sub);
	}
	return rc;
}

/* Ends the renames' hold on the files (tree lock held). */
static void moving_end(struct uf_mount *m, struct uf_moving *mv, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		mv[i].n->finishing = false;
		uf_life_unpin(m, mv[i].n);
		free(mv[i].path);
	}
	free(mv);
	pthread_cond_broadcast(&m->tree.idle_cv);
}

static int by_id(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Nodes a listing made meanwhile for the files the rename uploaded (tree lock held): one
 * pass over the inodes, each looked up among the new ids (sorted). */
static void forget_listed(struct uf_mount *m, const struct uf_moving *mv, size_t count)
{
	char(*ids)[UP_ID_MAX] = malloc(count * sizeof *ids);
	if (!ids)
		return; /* at worst the listing's copy shows until the next one */
	for (size_t j = 0; j < count; j++)
		memcpy(ids[j], mv[j].new_id, UP_ID_MAX);
	qsort(ids, count, sizeof *ids, by_id);
	for (size_t i = 0; i < m->tree.ninodes; i++) {
		struct uf_node *k = m->tree.inodes[i];
		if (!k || k->kind != UF_FILE || !k->linked || k->w || k->finishing || !k->file_id[0] ||
		    !bsearch(k->file_id, ids, count, sizeof *ids, by_id))
			continue;
		struct uf_node *p = k->parent;
		uf_tree_unlink(&m->tree, k);
		/* and a directory that only the listing had made */
		while (p && p != m->tree.root && !p->local_dir && !uf_tree_nkids(p) && p->linked) {
			struct uf_node *up = p->parent;
			uf_tree_unlink(&m->tree, p);
			p = up;
		}
	}
	free(ids);
}

/* Deletes the remote files a rename has replaced (no lock held). */
static void delete_ids(struct uf_mount *m, const struct up_idlist *ids)
{
	for (size_t i = 0; i < ids->n; i++) {
		struct up_error err;
		if (up_file_delete(m->client, ids->ids[i], &err) < 0 && err.status != 404) {
			uf_log(m, UF_WARN, "could not delete %s, which a rename replaced: %s",
			       ids->ids[i], err.message);
			continue;
		}
		uf_state_file_del(m->state, ids->ids[i]);
		uf_cache_drop(m->cache, ids->ids[i]);
		pthread_mutex_lock(&m->tree.mu);
		uf_tree_deleted(&m->tree, ids->ids[i]);
		uf_tree_unlock(&m->tree);
	}
}

/* The files a rename of n to ndir/newname uploads again: n, or the settled files below
 * it (tree lock held). */
static int moving_collect(struct uf_node *n, struct uf_node *ndir, const char *newname,
			  struct uf_moving **mv, size_t *count)
{
	char *dpath = uf_tree_path(ndir);
	char *path = dpath ? malloc(strlen(dpath) + strlen(newname) + 2) : NULL;
	int rc = path ? 0 : -ENOMEM;
	if (path) {
		sprintf(path, "%s%s%s", dpath, *dpath ? "/" : "", newname);
		rc = n->kind == UF_FILE ? moving_add(n, path, mv, count)
					: moving_below(n, path, mv, count);
	}
	free(dpath);
	free(path);
	return rc;
}

/* The uploads of a rename are done and its names still fit: the nodes take their new
 * files; the old ones land in gone (tree lock held). */
static void moving_install(struct uf_mount *m, struct uf_moving *mv, size_t count,
			   struct up_idlist *gone)
{
	for (size_t i = 0; i < count; i++) {
		struct uf_node *k = mv[i].n;
		if (k->w)
			uf_tree_drop_writer(&m->tree, k); /* a completed (or failed) version */
		if (uf_tree_claim_file_id(&m->tree, k, mv[i].new_id) < 0)
			uf_log(m, UF_WARN, "%s: out of memory for its file id", k->name);
		uf_tree_set_made(k, mv[i].upload_id, mv[i].md5);
		k->bytes = mv[i].bytes;
		k->done_epoch = m->tree.list_epoch;
		uf_life_persist_attrs(m, k);
		up_idlist_add(gone, mv[i].old_id);
		uf_tree_deleted(&m->tree, mv[i].old_id); /* listings under way still hold it */
	}
}

/* Looks up a rename's nodes and checks it, waiting for files being completed (tree lock
 * held). */
static int rename_lookup(struct uf_mount *m, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned flags,
			 struct uf_node **n, struct uf_node **ndir, struct uf_node **dst, bool *again)
{
	for (;;) {
		/* a file whose upload is being completed keeps its name until the server has
		 * answered: wait, then look again (the names may have changed meanwhile) */
		struct uf_node *dir = uf_tree_get(&m->tree, parent), *wait;
		*ndir = uf_tree_get(&m->tree, newparent);
		*n = dir && dir->kind == UF_DIR ? uf_tree_child(dir, name) : NULL;
		*dst = *ndir && (*ndir)->kind == UF_DIR ? uf_tree_child(*ndir, newname) : NULL;
		int err = rename_check(*n, *ndir, *dst, flags, &wait, again);
		if (err || !wait)
			return err;
		uf_life_wait_idle(m, wait);
	}
}

/* After a rename's uploads: the same checks on the names as they are now, with the files
 * it moves taken as idle (tree lock held, never released). */
static int recheck(struct uf_mount *m, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned flags, struct uf_node *n, struct uf_node **ndir,
		   struct uf_node **dst, struct uf_moving *mv, size_t count)
{
	struct uf_node *dir = uf_tree_get(&m->tree, parent), *wait;
	*ndir = uf_tree_get(&m->tree, newparent);
	struct uf_node *n2 = dir && dir->kind == UF_DIR ? uf_tree_child(dir, name) : NULL;
	*dst = *ndir && (*ndir)->kind == UF_DIR ? uf_tree_child(*ndir, newname) : NULL;
	if (n2 != n)
		return ENOENT;
	for (size_t i = 0; i < count; i++)
		mv[i].n->finishing = false;
	bool again;
	int err = rename_check(n, *ndir, *dst, flags, &wait, &again);
	for (size_t i = 0; i < count; i++)
		mv[i].n->finishing = true;
	return err ? err : wait ? EBUSY : 0;
}

/* -o no_delete: a rename that would delete a remote file — the one moved (the API cannot
 * rename: it goes up again under the new name and the old is deleted), or the one its
 * new name replaces — is refused (tree lock held): 0 or -EPERM. */
static int no_delete_check(struct uf_mount *m, struct uf_node *n, struct uf_node *dst,
			   bool again, const char *name)
{
	if (again)
		return uf_no_delete(m, "mv of", name, n->kind == UF_FILE ? n->file_id : NULL);
	if (!dst || dst == n)
		return 0;
	struct up_idlist ids = {0};
	if (dst->remote)
		up_idlist_add(&ids, dst->file_id);
	if (dst->w)
		up_writer_replaced(dst->w, &ids);
	int rc = ids.n ? uf_no_delete(m, "mv onto", dst->name, ids.ids[0]) : 0;
	up_idlist_clear(&ids);
	return rc;
}

void uf_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct uf_mount *m = uf_mount_of(req);
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n, *dst, *ndir;
	struct up_writer *replaced = NULL;
	struct uf_moving *mv = NULL;
	size_t count = 0;
	struct up_idlist gone = {0}; /* remote files to delete once the tree has the new names */
	struct up_idlist also = {0};
	bool again;
	int err = rename_lookup(m, parent, name, newparent, newname, flags, &n, &ndir, &dst,
				&again);
	if (!err && m->cfg.no_delete)
		err = -no_delete_check(m, n, dst, again, name);
	if (!err && again) {
		/* files on the server: the API cannot rename, so they go up again under their
		 * new names before anything changes here; the old ones are deleted after */
		err = -moving_collect(n, ndir, newname, &mv, &count);
		if (!err && n->kind == UF_FILE && dst) {
			/* the record names the name's file too: a crash replaces it at remount */
			if (dst->remote)
				up_idlist_add(&also, dst->file_id);
			if (dst->w)
				up_writer_replaced(dst->w, &also);
			mv[0].also = &also;
		}
		if (!err) {
			n->pins++;
			uf_tree_unlock(&m->tree);
			err = -uf_version_reupload(m, mv, count);
			pthread_mutex_lock(&m->tree.mu);
			uf_life_unpin(m, n);
		}
		/* a listing may have shown the new files already: those nodes go first (the
		 * new name must not look taken by the file this rename made); then the names,
		 * which may have changed meanwhile, are checked again without letting go of
		 * the lock (the files moving are this rename's) */
		if (!err)
			forget_listed(m, mv, count);
		if (!err)
			err = recheck(m, parent, name, newparent, newname, flags, n, &ndir, &dst,
				      mv, count);
		if (!err)
			moving_install(m, mv, count, &gone);
		else
			for (size_t i = 0; i < count; i++)
				if (mv[i].new_id[0])
					up_idlist_add(&gone, mv[i].new_id); /* made for nothing */
		moving_end(m, mv, count);
		up_idlist_clear(&also);
	}
	if (!err && dst && dst != n) {
		/* the replaced file goes once this one is complete; a replaced directory is
		 * empty */
		replaced = uf_life_writer(dst); /* its upload is cancelled after the unlock */
		/* the name's remote file, and whatever dst itself was to replace */
		struct up_idlist ids = {0};
		if (dst->remote)
			up_idlist_add(&ids, dst->file_id);
		if (replaced)
			up_writer_replaced(replaced, &ids);
		for (size_t i = 0; i < ids.n; i++) {
			if (n->kind == UF_FILE && n->w)
				up_writer_add_replaces(n->w, ids.ids[i]);
			else if (count)
				up_idlist_add(&gone, ids.ids[i]); /* n is on the server already */
		}
		up_idlist_clear(&ids);
		if (dst->kind == UF_DIR)
			dir_records(m, dst, false);
		dst->unlinked = true;
		uf_tree_unlink(&m->tree, dst);
	}
	if (!err && dst != n) {
		if (n->kind == UF_DIR)
			dir_records(m, n, false);
		err = -uf_tree_move(&m->tree, n, ndir, newname);
		if (n->kind == UF_DIR)
			dir_records(m, n, true);
		/* its final name; but rsync --delay-updates first gathers its files in
		 * ".~tmp~/" and moves them to their names at the end */
		n->rsync_temp = n->rsync_temp && strcmp(ndir->name, ".~tmp~") == 0;
	}
	/* a closed temporary file that now has its final name goes up now */
	bool go = !err && n->kind == UF_FILE && n->writers == 0 && uf_life_due(n);
	if (go)
		n->pins++;
	uf_tree_unlock(&m->tree);
	if (replaced) {
		up_writer_cancel(replaced);
		up_writer_free(replaced);
	}
	delete_ids(m, &gone);
	up_idlist_clear(&gone);
	if (go) {
		err = -uf_life_close(m, n, m->cfg.async_close);
		if (err == ECANCELED)
			err = 0;
		pthread_mutex_lock(&m->tree.mu);
		uf_life_unpin(m, n);
		uf_tree_unlock(&m->tree);
	}
	fuse_reply_err(req, err);
}
