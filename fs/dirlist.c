#include "dirlist.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

struct dirent_snap {
	char *name;
	fuse_ino_t ino;
	mode_t mode;
};

struct dir_handle {
	struct dirent_snap *ents;
	size_t n;
};

void uf_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct uf_mount *m = uf_mount_of(req);
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	int err = !n ? ESTALE : n->kind != UF_DIR ? ENOTDIR : 0;
	struct dir_handle *d = err ? NULL : calloc(1, sizeof *d);
	if (d && (d->ents = calloc(uf_tree_nkids(n) + 2, sizeof *d->ents))) {
		/* a snapshot: readdir offsets stay valid while the namespace changes */
		d->ents[d->n++] = (struct dirent_snap){strdup("."), n->ino, S_IFDIR};
		d->ents[d->n++] = (struct dirent_snap){
		    strdup(".."), n->parent ? n->parent->ino : n->ino, S_IFDIR};
		struct uf_node *k;
		for (size_t pos = 0; (k = uf_tree_next_kid(n, &pos));)
			d->ents[d->n++] = (struct dirent_snap){strdup(k->name), k->ino, k->mode};
	}
	uf_tree_unlock(&m->tree);
	if (err) {
		fuse_reply_err(req, err);
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

/* A page of the snapshot from off, with each entry's attributes when plus: entries given
 * with their inode count as lookups (libfuse: the kernel forgets them later), except "."
 * and ".."; a name changed since opendir goes without them (ino 0). */
static void reply_page(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct uf_mount *m = uf_mount_of(req);
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	if (plus)
		pthread_mutex_lock(&m->tree.mu);
	for (size_t i = (size_t)off; i < d->n; i++) {
		const struct dirent_snap *de = &d->ents[i];
		struct fuse_entry_param e = {.attr = {.st_ino = de->ino, .st_mode = de->mode},
					     .attr_timeout = UF_ATTR_TIMEOUT,
					     .entry_timeout = UF_ATTR_TIMEOUT};
		struct uf_node *n = plus && i >= 2 ? uf_tree_get(&m->tree, de->ino) : NULL;
		bool live = n && n->linked && n->parent && n->parent->ino == ino &&
			    strcmp(n->name, de->name) == 0;
		if (live) {
			e.ino = n->ino;
			uf_tree_stat(n, &e.attr);
		}
		size_t room = size - used, len;
		if (plus)
			len = fuse_add_direntry_plus(req, buf + used, room, de->name, &e,
						     (off_t)(i + 1));
		else
			len = fuse_add_direntry(req, buf + used, room, de->name, &e.attr,
						(off_t)(i + 1));
		if (len > room)
			break;
		used += len;
		if (live)
			n->nlookup++;
	}
	if (plus)
		uf_tree_unlock(&m->tree);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void uf_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	reply_page(req, ino, size, off, fi, false);
}

/* readdir with each entry's attributes (ls -l): one request per page of entries instead
 * of a lookup and a getattr per name. */
void uf_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	reply_page(req, ino, size, off, fi, true);
}

void uf_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	if (d->n > 10000)
		malloc_trim(0); /* the snapshot of a big directory: back to the system */
	free(d);
	fuse_reply_err(req, 0);
}
