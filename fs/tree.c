#include "tree.h"

#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *name_of(const struct uf_node *n)
{
	return n->name;
}

static const char *id_of(const struct uf_node *n)
{
	return n->file_id;
}

static struct uf_node *node_alloc(struct uf_tree *t, enum uf_kind kind, const char *name,
				  mode_t mode)
{
	struct uf_node *n = calloc(1, sizeof *n);
	if (!n || !(n->name = strdup(name)) ||
	    (kind == UF_DIR && !(n->d = calloc(1, sizeof *n->d)))) {
		if (n)
			free(n->name);
		free(n);
		return NULL;
	}
	if (t->ninodes == t->capinodes) {
		size_t cap = t->capinodes ? t->capinodes * 2 : 1024;
		struct uf_node **ni = realloc(t->inodes, cap * sizeof *ni);
		if (!ni) {
			free(n->d);
			free(n->name);
			free(n);
			return NULL;
		}
		t->inodes = ni;
		t->capinodes = cap;
	}
	n->ino = t->ninodes;
	t->inodes[t->ninodes++] = n;
	n->kind = kind;
	n->mode = (kind == UF_DIR ? S_IFDIR : S_IFREG) | (mode & 07777 & ~t->umask);
	n->uid = t->uid;
	n->gid = t->gid;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->ctime = n->mtime;
	n->gen = t->gen;
	n->file_id = n->purpose = "";
	if (n->d)
		uf_index_init(&n->d->names, name_of);
	return n;
}

void uf_tree_drop_writer(struct uf_tree *t, struct uf_node *n)
{
	if (!n->w)
		return;
	if (t->ndead == t->capdead) {
		size_t cap = t->capdead ? t->capdead * 2 : 16;
		struct up_writer **nd = realloc(t->dead, cap * sizeof *nd);
		if (!nd)
			return; /* kept by the node: freed with it, or at the next drop */
		t->dead = nd;
		t->capdead = cap;
	}
	t->dead[t->ndead++] = n->w;
	n->w = NULL;
}

void uf_tree_unlock(struct uf_tree *t)
{
	struct up_writer *batch[16];
	size_t n = 0;
	while (t->ndead && n < 16)
		batch[n++] = t->dead[--t->ndead];
	bool more = t->ndead > 0;
	pthread_mutex_unlock(&t->mu);
	for (size_t i = 0; i < n; i++)
		up_writer_free(batch[i]);
	if (more) {
		pthread_mutex_lock(&t->mu);
		uf_tree_unlock(t);
	}
}

static void node_free(struct uf_tree *t, struct uf_node *n)
{
	if (n->ino < t->ninodes)
		t->inodes[n->ino] = NULL;
	uf_tree_drop_writer(t, n);
	if (n->w) /* no memory for the list: freed here, late rather than never */
		up_writer_free(n->w);
	if (n->file_id[0]) {
		uf_index_del(&t->by_id, n);
		free((char *)n->file_id);
	}
	free(n->made);
	if (n->d) {
		uf_index_clear(&n->d->names);
		free(n->d);
	}
	free(n->name);
	free(n->x_purpose);
	free(n->x_mime);
	free(n);
}

int uf_tree_init(struct uf_tree *t, uid_t uid, gid_t gid, mode_t umask)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->idle_cv, NULL);
	t->uid = uid;
	t->gid = gid;
	t->umask = umask;
	t->gen = 1;
	uf_index_init(&t->by_id, id_of);
	for (size_t i = 0; i < UF_DL_LOCKS; i++)
		pthread_mutex_init(&t->dl_mu[i], NULL);
	/* ino 0 is no inode; the root is FUSE_ROOT_ID (1) */
	if (!node_alloc(t, UF_DIR, "", 0) || !(t->root = node_alloc(t, UF_DIR, "", 0777)))
		return -ENOMEM;
	node_free(t, t->inodes[0]); /* ino 0 taken, and freed */
	t->root->linked = true;
	t->root->local_dir = true;
	t->root->nlookup = 1;
	return 0;
}

void uf_tree_destroy(struct uf_tree *t)
{
	for (size_t i = 0; i < t->ninodes; i++)
		if (t->inodes[i])
			node_free(t, t->inodes[i]);
	free(t->inodes);
	uf_index_clear(&t->by_id);
	for (size_t i = 0; i < t->ninterned; i++)
		free(t->interned[i]);
	free(t->interned);
	for (size_t i = 0; i < UF_DL_LOCKS; i++)
		pthread_mutex_destroy(&t->dl_mu[i]);
	for (size_t i = 0; i < t->ndead; i++)
		up_writer_free(t->dead[i]);
	free(t->dead);
	free(t->deleted);
	pthread_cond_destroy(&t->idle_cv);
	pthread_mutex_destroy(&t->mu);
}

int uf_tree_set_file_id(struct uf_tree *t, struct uf_node *n, const char *id)
{
	if (strcmp(n->file_id, id) == 0)
		return 0;
	char *copy = NULL;
	if (id[0] && !(copy = strdup(id)))
		return -ENOMEM;
	if (n->file_id[0]) {
		uf_index_del(&t->by_id, n);
		free((char *)n->file_id);
	}
	n->file_id = copy ? copy : "";
	if (copy && uf_index_put(&t->by_id, n) < 0) {
		free(copy);
		n->file_id = "";
		return -ENOMEM;
	}
	return 0;
}

static bool phantom(const struct uf_node *p, const void *arg)
{
	return p != arg && p->kind == UF_FILE && !p->w && !p->finishing;
}

int uf_tree_claim_file_id(struct uf_tree *t, struct uf_node *n, const char *id)
{
	struct uf_node *p;
	while ((p = uf_index_find(&t->by_id, id, phantom, n))) {
		uf_tree_set_file_id(t, p, ""); /* out of the index: the loop ends */
		p->remote = false;
		uf_tree_unlink(t, p);
	}
	return uf_tree_set_file_id(t, n, id);
}

struct uf_node *uf_tree_by_id(struct uf_tree *t, const char *id,
			      bool (*pred)(const struct uf_node *n, const void *arg),
			      const void *arg)
{
	return uf_index_find(&t->by_id, id, pred, arg);
}

const char *uf_tree_intern(struct uf_tree *t, const char *s)
{
	for (size_t i = 0; i < t->ninterned; i++)
		if (strcmp(t->interned[i], s) == 0)
			return t->interned[i];
	if (t->ninterned == 64)
		return ""; /* a server with more purposes than the API has: not shown */
	char *copy = strdup(s);
	char **ni = copy ? realloc(t->interned, (t->ninterned + 1) * sizeof *ni) : NULL;
	if (!ni) {
		free(copy);
		return "";
	}
	t->interned = ni;
	return t->interned[t->ninterned++] = copy;
}

void uf_tree_set_made(struct uf_node *n, const char *upload_id, const char *md5)
{
	if (!n->made && !(n->made = calloc(1, sizeof *n->made)))
		return; /* the xattrs say nothing of it, at worst */
	snprintf(n->made->upload_id, sizeof n->made->upload_id, "%s", upload_id);
	snprintf(n->made->md5, sizeof n->made->md5, "%s", md5);
}

pthread_mutex_t *uf_tree_dl_lock(struct uf_tree *t, const struct uf_node *n)
{
	return &t->dl_mu[n->ino % UF_DL_LOCKS];
}

struct uf_node *uf_tree_get(struct uf_tree *t, fuse_ino_t ino)
{
	return ino < t->ninodes ? t->inodes[ino] : NULL;
}

struct uf_node *uf_tree_child(struct uf_node *dir, const char *name)
{
	if (!dir->d)
		return NULL; /* a file has no children */
	return uf_index_find(&dir->d->names, name, NULL, NULL);
}

static int add_kid(struct uf_node *dir, struct uf_node *n)
{
	if (uf_index_put(&dir->d->names, n) < 0)
		return -ENOMEM;
	n->parent = dir;
	n->linked = true;
	return 0;
}

/* n, linked in dir under its name as it is now, out of it. */
static void del_kid(struct uf_node *dir, struct uf_node *n)
{
	if (n->linked && n->parent == dir)
		uf_index_del(&dir->d->names, n);
	n->linked = false;
}

struct uf_node *uf_tree_next_kid(const struct uf_node *dir, size_t *pos)
{
	return dir->d ? uf_index_next(&dir->d->names, pos) : NULL;
}

struct uf_node *uf_tree_new(struct uf_tree *t, struct uf_node *dir, const char *name,
			    enum uf_kind kind, mode_t mode)
{
	struct uf_node *n = node_alloc(t, kind, name, mode);
	if (!n)
		return NULL;
	if (add_kid(dir, n) < 0) {
		node_free(t, n);
		return NULL;
	}
	dir->mtime = n->mtime;
	return n;
}

void uf_tree_maybe_free(struct uf_tree *t, struct uf_node *n)
{
	if (n && n != t->root && !n->linked && n->nlookup == 0 && n->pins == 0 &&
	    uf_tree_nkids(n) == 0)
		node_free(t, n);
}

void uf_tree_unlink(struct uf_tree *t, struct uf_node *n)
{
	if (n->linked && n->parent)
		del_kid(n->parent, n);
	uf_tree_maybe_free(t, n);
}

int uf_tree_move(struct uf_tree *t, struct uf_node *n, struct uf_node *dir, const char *name)
{
	(void)t;
	char *nn = strdup(name);
	if (!nn)
		return -ENOMEM;
	/* out under the old name, in under the new one */
	bool was = n->linked;
	struct uf_node *from = n->parent;
	if (!was && from == dir) { /* not in the namespace: a new name only */
		free(n->name);
		n->name = nn;
		return 0;
	}
	if (was)
		del_kid(from, n);
	char *old = n->name;
	n->name = nn;
	int rc = add_kid(dir, n);
	if (rc < 0) {
		n->name = old;
		free(nn);
		if (was && add_kid(from, n) < 0)
			n->linked = false; /* no memory to put it back: gone from the namespace */
		return rc;
	}
	free(old);
	return 0;
}

char *uf_tree_path(const struct uf_node *n)
{
	size_t len = 0, parts = 0;
	for (const struct uf_node *p = n; p && p->parent; p = p->parent, parts++)
		len += strlen(p->name);
	len += parts ? parts - 1 : 0; /* the slashes between names */
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	s[len] = '\0';
	size_t end = len;
	for (const struct uf_node *p = n; p && p->parent; p = p->parent) {
		size_t l = strlen(p->name);
		end -= l;
		memcpy(s + end, p->name, l);
		if (end > 0)
			s[--end] = '/';
	}
	return s;
}

void uf_tree_stat(const struct uf_node *n, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = n->kind == UF_DIR ? 2 : 1;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_blksize = 1 << 20;
	if (n->kind == UF_FILE) {
		if (n->w) {
			struct up_writer_status ws;
			up_writer_status(n->w, &ws);
			st->st_size = (off_t)ws.size;
		} else {
			st->st_size = (off_t)n->bytes;
		}
		st->st_blocks = (st->st_size + 511) / 512;
	}
	st->st_mtim = n->mtime;
	st->st_atim = n->mtime;
	st->st_ctim = n->ctime;
}

/* ---- names as paths ---- */

static bool dots(const char *s, size_t len)
{
	return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

struct uf_node *uf_tree_dir_of(struct uf_tree *t, const char *path, char **copy,
			       const char **base)
{
	*base = NULL;
	if (!(*copy = strdup(path)))
		return NULL;
	char *slash = strrchr(*copy, '/');
	*base = slash ? slash + 1 : *copy;
	if (!**base || dots(*base, strlen(*base)))
		return NULL;
	struct uf_node *d = t->root;
	if (slash) {
		*slash = '\0';
		/* such a name cannot be shown as a path: no directory is made for it */
		for (const char *s = *copy; *s;) {
			size_t len = strcspn(s, "/");
			if (dots(s, len))
				return NULL;
			s += len + (s[len] == '/');
		}
		char *save = NULL;
		for (char *seg = strtok_r(*copy, "/", &save); d && seg;
		     seg = strtok_r(NULL, "/", &save)) {
			struct uf_node *k = uf_tree_child(d, seg);
			if (k && k->kind != UF_DIR)
				return NULL;
			if (!k && !(k = uf_tree_new(t, d, seg, UF_DIR, 0777)))
				return NULL;
			k->gen = t->gen;
			d = k;
		}
	}
	return d;
}

struct uf_node *uf_tree_place(struct uf_tree *t, const char *path)
{
	char *copy;
	const char *base;
	struct uf_node *dir = uf_tree_dir_of(t, path, &copy, &base), *n = NULL;
	if (dir && !uf_tree_child(dir, base))
		n = uf_tree_new(t, dir, base, UF_FILE, 0644);
	free(copy);
	return n;
}

void uf_tree_replaced(struct uf_tree *t, struct up_idlist *out)
{
	for (size_t i = 0; i < t->ninodes; i++)
		if (t->inodes[i] && t->inodes[i]->w)
			up_writer_replaced(t->inodes[i]->w, out);
}
