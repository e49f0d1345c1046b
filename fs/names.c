/* Namespace changes that reach the server: unlink (delete or cancel) and rename (files
 * that are not yet completed, directories of them, replace-by-rename). */
#include "names.h"

#include "lifecycle.h"
#include "journal.h"
#include "listing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct uf_mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

void uf_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct uf_mount *m = M(req);
	uf_listing_refresh(m, false);
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

	int rc = 0;
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

/* Whether dir's subtree holds a file being completed, or a remote one (tree lock held). */
static struct uf_node *busy_below(struct uf_node *dir, bool *remote)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct uf_node *k = dir->kids[i];
		struct uf_node *b = k->kind == UF_DIR ? busy_below(k, remote) : NULL;
		if (b)
			return b;
		if (k->kind == UF_FILE && (k->finishing || k->remote)) {
			*remote = !k->finishing;
			return k;
		}
	}
	return NULL;
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
	for (size_t i = 0; i < dir->nkids; i++)
		if (dir->kids[i]->kind == UF_DIR)
			dir_records(m, dir->kids[i], add);
}

/* The checks of a rename (tree lock held): 0, or the errno; *wait says a file involved is
 * being completed, and the rename must wait for it and look again. */
static int rename_check(struct uf_mount *m, struct uf_node *n, struct uf_node *ndir,
			struct uf_node *dst, unsigned flags, struct uf_node **wait)
{
	*wait = NULL;
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
		if (dst && (dst->kind != UF_DIR || dst->nkids))
			return dst->kind != UF_DIR ? ENOTDIR : ENOTEMPTY;
		for (struct uf_node *p = ndir; p; p = p->parent)
			if (p == n)
				return EINVAL; /* into itself */
		bool remote = false;
		struct uf_node *b = busy_below(n, &remote);
		if (b && !remote) {
			*wait = b;
			return 0;
		}
		if (b) {
			/* not EXDEV: mv would copy the tree and delete it, file by file */
			uf_log(m, UF_WARN,
			       "cannot rename directory %s: %s in it is on the server, and the API "
			       "cannot rename a file",
			       n->name, b->name);
			return EPERM;
		}
		return 0;
	}
	struct up_writer_status ws;
	enum uf_status st = uf_life_status(n, &ws);
	if (n->remote && st != UF_PENDING && st != UF_UPLOADING) {
		/* on the server under its name (a new version being written moves freely) */
		uf_log(m, UF_INFO, "%s: the API cannot rename a completed file", n->name);
		return EXDEV; /* mv copies it, then deletes it */
	}
	if (dst && dst->kind == UF_DIR)
		return EISDIR;
	return 0;
}

void uf_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct uf_mount *m = M(req);
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	uf_listing_refresh(m, false);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n, *dst, *ndir, *wait;
	struct up_writer *replaced = NULL;
	int err;
	for (;;) {
		/* a file whose upload is being completed keeps its name until the server has
		 * answered: wait, then look again (the names may have changed meanwhile) */
		struct uf_node *dir = uf_tree_get(&m->tree, parent);
		ndir = uf_tree_get(&m->tree, newparent);
		n = dir && dir->kind == UF_DIR ? uf_tree_child(dir, name) : NULL;
		dst = ndir && ndir->kind == UF_DIR ? uf_tree_child(ndir, newname) : NULL;
		err = rename_check(m, n, ndir, dst, flags, &wait);
		if (err || !wait)
			break;
		uf_life_wait_idle(m, wait);
	}
	if (!err && dst && dst != n) {
		/* the replaced file goes once this one is complete; a replaced directory is
		 * empty */
		replaced = uf_life_writer(dst); /* its upload is cancelled after the unlock */
		if (n->kind == UF_FILE && n->w) {
			/* the name's remote file, and whatever dst itself was to replace */
			struct up_idlist ids = {0};
			if (dst->remote)
				up_idlist_add(&ids, dst->file_id);
			if (replaced)
				up_writer_replaced(replaced, &ids);
			for (size_t i = 0; i < ids.n; i++)
				up_writer_add_replaces(n->w, ids.ids[i]);
			up_idlist_clear(&ids);
		}
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

