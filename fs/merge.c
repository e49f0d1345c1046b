/* merge: the remote listing into the tree. A whole listing is merged in steps (the tree
 * lock released between them) and removes what it no longer has; the newest page adds the
 * files not known yet. The newest file of a name has it plainly, older ones NAME~FILEID. */
#include "merge.h"

#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	char *path;
	const char *base;
	struct uf_node *dir = uf_tree_dir_of(t, f->filename, &path, &base), *made = NULL;
	if (!dir) {
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
	return k->kind == UF_DIR ? !k->local_dir && uf_tree_nkids(k) == 0
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
	struct uf_node *k;
	for (size_t pos = 0; (k = uf_tree_next_kid(dir, &pos));) {
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
	char *path;
	const char *base;
	struct uf_node *dir = uf_tree_dir_of(t, f->filename, &path, &base), *n = NULL;
	if (!dir) {
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
