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
		free(n->d->kids);
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
	if (dir->d->nkids == dir->d->capkids) {
		size_t cap = dir->d->capkids ? dir->d->capkids * 2 : 16;
		struct uf_node **nk = realloc(dir->d->kids, cap * sizeof *nk);
		if (!nk)
			return -ENOMEM;
		dir->d->kids = nk;
		dir->d->capkids = cap;
	}
	if (uf_index_put(&dir->d->names, n) < 0)
		return -ENOMEM;
	n->slot = dir->d->nkids;
	dir->d->kids[dir->d->nkids++] = n;
	n->parent = dir;
	n->linked = true;
	return 0;
}

static void del_kid(struct uf_node *dir, struct uf_node *n)
{
	if (n->slot < dir->d->nkids && dir->d->kids[n->slot] == n) {
		uf_index_del(&dir->d->names, n);
		struct uf_node *last = dir->d->kids[--dir->d->nkids];
		dir->d->kids[n->slot] = last;
		last->slot = n->slot;
	}
	n->linked = false;
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
	    (!n->d || n->d->nkids == 0))
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

/* ---- merging the remote listing ---- */

static struct uf_node *dir_for(struct uf_tree *t, char *path)
{
	struct uf_node *d = t->root;
	char *save = NULL;
	for (char *seg = strtok_r(path, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
			return NULL; /* such a name cannot be shown as a path */
		struct uf_node *k = uf_tree_child(d, seg);
		if (k && k->kind != UF_DIR)
			return NULL;
		if (!k && !(k = uf_tree_new(t, d, seg, UF_DIR, 0777)))
			return NULL;
		k->gen = t->gen;
		d = k;
	}
	return d;
}

struct uf_node *uf_tree_place(struct uf_tree *t, const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return NULL;
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	struct uf_node *dir = t->root, *n = NULL;
	if (slash) {
		*slash = '\0';
		dir = dir_for(t, copy);
	}
	if (dir && *base && !uf_tree_child(dir, base))
		n = uf_tree_new(t, dir, base, UF_FILE, 0644);
	free(copy);
	return n;
}

struct claim {
	uint64_t gen;
	const struct uf_node *self;
};

static bool claims(const struct uf_node *k, const void *arg)
{
	const struct claim *c = arg;
	return k != c->self && k->gen == c->gen;
}

/* Whether another node of dir this listing has seen already holds name. */
static bool claimed(const struct uf_node *dir, const char *name, uint64_t gen,
		    const struct uf_node *self)
{
	struct claim c = {gen, self};
	return uf_index_find(&dir->d->names, name, claims, &c) != NULL;
}

static bool remote_file_in(const struct uf_node *k, const void *dir)
{
	return k->kind == UF_FILE && k->remote && k->linked && k->parent == dir;
}

/* dir's remote file of id. */
static struct uf_node *by_file_id(struct uf_tree *t, struct uf_node *dir, const char *id)
{
	return uf_tree_by_id(t, id, remote_file_in, dir);
}

/* Shows remote file f (tree lock held); returns its node if this made it. */
static struct uf_node *merge_one(struct uf_tree *t, const struct up_file *f)
{
	/* filename "a/b.jsonl" is b.jsonl in a/ */
	char *path = strdup(f->filename);
	if (!path)
		return NULL;
	char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct uf_node *dir = t->root, *made = NULL;
	if (slash) {
		*slash = '\0';
		dir = dir_for(t, path);
	}
	if (!dir || !*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		free(path);
		return NULL;
	}
	struct uf_node *n = by_file_id(t, dir, f->id);
	/* the newest file of a name has it plainly; the others are NAME~FILEID */
	char *want = NULL;
	if (claimed(dir, base, t->gen, n)) {
		size_t len = strlen(base) + strlen(f->id) + 2;
		if ((want = malloc(len)))
			snprintf(want, len, "%s~%s", base, f->id);
	} else {
		want = strdup(base);
	}
	if (!want) {
		free(path);
		return NULL;
	}
	if (!n) {
		n = made = uf_tree_new(t, dir, want, UF_FILE, 0644);
		if (n && uf_tree_set_file_id(t, n, f->id) < 0) {
			uf_tree_unlink(t, n); /* unindexed, it would be made again at every merge */
			n = made = NULL;
		}
		if (n) {
			n->remote = true;
			n->mtime.tv_sec = f->created_at;
			n->mtime.tv_nsec = 0;
			n->ctime = n->mtime;
		}
	} else if (strcmp(n->name, want) != 0) {
		uf_tree_move(t, n, dir, want);
	}
	if (n) {
		n->gen = t->gen;
		if (!n->w)
			n->bytes = f->bytes;
		n->purpose = uf_tree_intern(t, f->purpose);
	}
	free(want);
	free(path);
	return made;
}

static bool stale(const struct uf_tree *t, const struct uf_node *k, uint64_t epoch)
{
	if (!k->linked || k == t->root || k->gen == t->gen || k->done_epoch >= epoch)
		return false;
	return k->kind == UF_DIR ? !k->local_dir && k->d->nkids == 0
				 : k->remote && !k->w && !k->finishing;
}

/* k, which the listing no longer has, goes; and so do the directories that only existed
 * because of it. */
static void sweep_one(struct uf_tree *t, struct uf_node *k, uint64_t epoch)
{
	while (k && stale(t, k, epoch)) {
		struct uf_node *p = k->parent;
		uf_tree_unlink(t, k);
		k = p;
	}
}

static void mark_local(struct uf_tree *t, struct uf_node *dir)
{
	for (size_t i = 0; i < dir->d->nkids; i++) {
		struct uf_node *k = dir->d->kids[i];
		if (k->kind == UF_DIR)
			mark_local(t, k);
		else if (!k->remote || k->w || k->finishing)
			k->gen = t->gen; /* files being written keep their names */
	}
}

static bool listed_in(const struct up_idlist *l, const char *id)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (strcmp(l->ids[i], id) == 0)
			return true;
	return false;
}

void uf_tree_deleted(struct uf_tree *t, const char *id)
{
	struct uf_deleted *d = realloc(t->deleted, (t->ndeleted + 1) * sizeof *d);
	if (!d)
		return; /* a ghost until the next listing, at worst */
	t->deleted = d;
	snprintf(d[t->ndeleted].id, UP_ID_MAX, "%s", id);
	d[t->ndeleted++].epoch = t->list_epoch;
}

/* Deleted by this mount after the listing of epoch went out: the listing may hold it. */
static bool deleted_since(struct uf_tree *t, const char *id, uint64_t epoch)
{
	for (size_t i = 0; i < t->ndeleted; i++)
		if (t->deleted[i].epoch >= epoch && strcmp(t->deleted[i].id, id) == 0)
			return true;
	return false;
}

void uf_tree_merge_begin(struct uf_tree *t, struct uf_merge *mg, const struct up_file_list *l,
			 uint64_t epoch)
{
	*mg = (struct uf_merge){.l = l, .epoch = epoch};
	t->gen++;
	mark_local(t, t->root);
}

bool uf_tree_merge_step(struct uf_tree *t, struct uf_merge *mg, size_t budget,
			struct uf_node ***added, size_t *nadded)
{
	*added = NULL;
	*nadded = 0;
	/* what files being written replace, as it is now: their names are the new versions' */
	struct up_idlist hidden = {0};
	uf_tree_replaced(t, &hidden);
	const struct up_file_list *l = mg->l;
	size_t cap = 0;
	for (; mg->next < l->n && budget; mg->next++, budget--) {
		const struct up_file *f = &l->files[mg->next];
		if (listed_in(&hidden, f->id) || deleted_since(t, f->id, mg->epoch))
			continue;
		struct uf_node *n = merge_one(t, f);
		if (!n)
			continue;
		if (*nadded == cap) {
			cap = cap ? cap * 2 : 64;
			struct uf_node **na = realloc(*added, cap * sizeof *na);
			if (!na)
				continue; /* listed without its kept attributes, at worst */
			*added = na;
		}
		(*added)[(*nadded)++] = n;
	}
	up_idlist_clear(&hidden);
	/* then the nodes the listing no longer has, by inode, the same budget per step */
	for (; mg->next == l->n && mg->swept < t->ninodes && budget; mg->swept++, budget--) {
		struct uf_node *k = t->inodes[mg->swept];
		if (k)
			sweep_one(t, k, mg->epoch);
	}
	if (mg->next < l->n || mg->swept < t->ninodes)
		return false;
	/* deletes before this listing went out are in it already */
	size_t k = 0;
	for (size_t i = 0; i < t->ndeleted; i++)
		if (t->deleted[i].epoch >= mg->epoch)
			t->deleted[k++] = t->deleted[i];
	t->ndeleted = k;
	return true;
}

static bool any(const struct uf_node *k, const void *arg)
{
	(void)arg;
	return k->kind == UF_FILE && k->remote && k->linked;
}

/* One new remote file f into the tree (tree lock held): NULL if it cannot be shown. */
static struct uf_node *add_one(struct uf_tree *t, const struct up_file *f)
{
	char *path = strdup(f->filename);
	if (!path)
		return NULL;
	char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	struct uf_node *dir = t->root, *n = NULL;
	if (slash) {
		*slash = '\0';
		dir = dir_for(t, path);
	}
	if (!dir || !*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		free(path);
		return NULL;
	}
	struct uf_node *holder = uf_tree_child(dir, base);
	char *want = NULL;
	if (holder && holder->kind == UF_FILE && holder->remote && !holder->w &&
	    !holder->finishing) {
		/* an older file of the name: it becomes NAME~FILEID, the new one the name */
		size_t len = strlen(base) + strlen(holder->file_id) + 2;
		char *older = malloc(len);
		if (older) {
			snprintf(older, len, "%s~%s", base, holder->file_id);
			/* else it keeps the name, and the new one is NAME~FILEID */
			if (!uf_tree_child(dir, older) && uf_tree_move(t, holder, dir, older) == 0)
				holder = NULL;
			free(older);
		}
	}
	if (!holder) {
		want = strdup(base);
	} else {
		size_t len = strlen(base) + strlen(f->id) + 2;
		if ((want = malloc(len)))
			snprintf(want, len, "%s~%s", base, f->id);
	}
	if (want && !uf_tree_child(dir, want) && (n = uf_tree_new(t, dir, want, UF_FILE, 0644)) &&
	    uf_tree_set_file_id(t, n, f->id) < 0) {
		uf_tree_unlink(t, n);
		n = NULL;
	}
	if (n) {
		n->remote = true;
		n->purpose = uf_tree_intern(t, f->purpose);
		n->bytes = f->bytes;
		n->mtime.tv_sec = f->created_at;
		n->mtime.tv_nsec = 0;
		n->ctime = n->mtime;
	}
	free(want);
	free(path);
	return n;
}

bool uf_tree_add_new(struct uf_tree *t, const struct up_file_list *l, uint64_t epoch,
		     const struct up_idlist *hidden, struct uf_node ***added, size_t *nadded)
{
	*added = NULL;
	*nadded = 0;
	bool known = false;
	for (size_t i = 0; i < l->n && !known; i++) {
		const struct up_file *f = &l->files[i];
		if (uf_tree_by_id(t, f->id, any, NULL)) {
			known = true;
			break;
		}
		if (listed_in(hidden, f->id) || deleted_since(t, f->id, epoch))
			continue;
		struct uf_node *n = add_one(t, f);
		struct uf_node **na = n ? realloc(*added, (*nadded + 1) * sizeof *na) : NULL;
		if (na) {
			na[(*nadded)++] = n;
			*added = na;
		}
	}
	return known;
}

void uf_tree_replaced(struct uf_tree *t, struct up_idlist *out)
{
	for (size_t i = 0; i < t->ninodes; i++)
		if (t->inodes[i] && t->inodes[i]->w)
			up_writer_replaced(t->inodes[i]->w, out);
}
