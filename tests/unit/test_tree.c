/* The namespace and its merge (fs/tree.c, fs/merge.c): a whole listing merged in small
 * steps with changes to the tree between them ends as one merge at once would; files are
 * found by id whatever happens to their ids; nodes the listing no longer has go, with the
 * directories that only held them, and local ones stay. */
#include "../../fs/merge.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A listing, newest first: file i is "fileid-i" named names[i], created at 1000 - i. */
static void listing(struct up_file_list *l, const char *const *names, size_t n, size_t first)
{
	l->n = n;
	l->files = calloc(n, sizeof *l->files);
	for (size_t i = 0; i < n; i++) {
		struct up_file *f = &l->files[i];
		snprintf(f->id, sizeof f->id, "fileid-%zu", first + i);
		f->filename = strdup(names[i]);
		f->bytes = first + i;
		f->created_at = 1000 - (int64_t)(first + i);
		snprintf(f->purpose, sizeof f->purpose, "%s", i % 2 ? "batch" : "assistants");
	}
}

static void free_listing(struct up_file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->files[i].filename);
	free(l->files);
}

/* The merge of l in steps of budget, with between(t, step) called between them. */
static void merge(struct uf_tree *t, const struct up_file_list *l, size_t budget,
		  void (*between)(struct uf_tree *t, int step))
{
	struct uf_merge mg;
	uf_tree_merge_begin(t, &mg, l, ++t->list_epoch);
	for (int step = 0;; step++) {
		struct uf_node **added;
		size_t nadded;
		bool done = uf_tree_merge_step(t, &mg, budget, &added, &nadded);
		free(added);
		if (done)
			break;
		if (between)
			between(t, step);
	}
}

static struct uf_node *at(struct uf_tree *t, const char *path)
{
	char *copy = strdup(path), *save = NULL;
	struct uf_node *n = t->root;
	for (char *seg = strtok_r(copy, "/", &save); n && seg; seg = strtok_r(NULL, "/", &save))
		n = uf_tree_child(n, seg);
	free(copy);
	return n;
}

static const char *const first_names[] = {
    "a.txt", "d/b.txt", "d/e/c.txt", "a.txt", "gone/x.txt", "gone/deep/y.txt", "z.bin",
    "d/e/f.txt", "d/b.txt", "w.txt",
};
#define NFIRST (sizeof first_names / sizeof *first_names)

CASE(steps_of_one_end_as_a_whole_merge)
{
	struct uf_tree t;
	CHECK(uf_tree_init(&t, 0, 0, 022) == 0);
	struct up_file_list l;
	listing(&l, first_names, NFIRST, 0);
	merge(&t, &l, 1, NULL);
	/* the newest of a name plainly, the older as NAME~FILEID */
	CHECK(at(&t, "a.txt") && strcmp(at(&t, "a.txt")->file_id, "fileid-0") == 0);
	CHECK(at(&t, "a.txt~fileid-3") != NULL);
	CHECK(at(&t, "d/b.txt") && strcmp(at(&t, "d/b.txt")->file_id, "fileid-1") == 0);
	CHECK(at(&t, "d/b.txt~fileid-8") != NULL);
	CHECK(at(&t, "gone/deep/y.txt") && at(&t, "gone/deep/y.txt")->bytes == 5);
	CHECK(strcmp(at(&t, "z.bin")->purpose, "assistants") == 0);
	CHECK(strcmp(at(&t, "d/e/f.txt")->purpose, "batch") == 0);
	/* every file by its id */
	for (size_t i = 0; i < NFIRST; i++) {
		char id[32];
		snprintf(id, sizeof id, "fileid-%zu", i);
		struct uf_node *n = uf_tree_by_id(&t, id, NULL, NULL);
		CHECK(n && n->remote && n->linked && n->bytes == i);
	}
	/* merged again, nothing moves */
	fuse_ino_t ino = at(&t, "d/e/c.txt")->ino;
	merge(&t, &l, 3, NULL);
	CHECK(at(&t, "d/e/c.txt")->ino == ino);
	CHECK(at(&t, "a.txt~fileid-3") != NULL);
	free_listing(&l);
	uf_tree_destroy(&t);
}

/* Between steps: a local file and a directory made (mkdir), a listed file's name taken
 * away from it by a rename, and a file given a new id (a new version completed). */
static void changes(struct uf_tree *t, int step)
{
	if (step == 0) {
		uf_tree_new(t, t->root, "local.txt", UF_FILE, 0644);
		struct uf_node *d = uf_tree_new(t, t->root, "made", UF_DIR, 0755);
		d->local_dir = true;
	}
	if (step == 1) {
		struct uf_node *w = at(t, "w.txt");
		uf_tree_set_file_id(t, w, "fileid-new");
		w->done_epoch = t->list_epoch; /* completed after the listing went out */
	}
}

CASE(a_second_listing_in_steps_removes_what_is_gone_and_keeps_local_files)
{
	struct uf_tree t;
	CHECK(uf_tree_init(&t, 0, 0, 022) == 0);
	struct up_file_list l1, l2;
	listing(&l1, first_names, NFIRST, 0);
	merge(&t, &l1, 100, NULL);
	CHECK(at(&t, "gone/deep/y.txt") != NULL);
	/* the second listing: without gone/..., z.bin, the older a.txt and w.txt's old id */
	static const char *const second[] = {"a.txt", "d/b.txt", "d/e/c.txt", "d/e/f.txt",
					     "d/b.txt"};
	listing(&l2, second, 5, 0);
	snprintf(l2.files[3].id, sizeof l2.files[3].id, "fileid-7");
	snprintf(l2.files[4].id, sizeof l2.files[4].id, "fileid-8");
	merge(&t, &l2, 2, changes);
	CHECK(at(&t, "gone") == NULL); /* its files went, and so did the directories */
	CHECK(at(&t, "z.bin") == NULL);
	CHECK(at(&t, "a.txt~fileid-3") == NULL);
	CHECK(uf_tree_by_id(&t, "fileid-4", NULL, NULL) == NULL); /* freed: out of the index */
	CHECK(at(&t, "a.txt") && at(&t, "d/b.txt~fileid-8") && at(&t, "d/e/f.txt"));
	CHECK(at(&t, "local.txt") != NULL); /* made during the merge: kept */
	CHECK(at(&t, "made") != NULL);	   /* mkdir: kept though empty */
	/* completed after the listing went out: the listing could not know it */
	CHECK(at(&t, "w.txt") && uf_tree_by_id(&t, "fileid-new", NULL, NULL) == at(&t, "w.txt"));
	CHECK(uf_tree_by_id(&t, "fileid-9", NULL, NULL) == NULL);
	free_listing(&l1);
	free_listing(&l2);
	uf_tree_destroy(&t);
}

CASE(names_that_cannot_be_paths_are_left_out)
{
	struct uf_tree t;
	CHECK(uf_tree_init(&t, 0, 0, 022) == 0);
	static const char *const odd[] = {"../up.txt", "a/./b", "dir/", "ok.txt", "ok.txt/sub"};
	struct up_file_list l;
	listing(&l, odd, 5, 0);
	merge(&t, &l, 2, NULL);
	CHECK(at(&t, "ok.txt") && at(&t, "ok.txt")->kind == UF_FILE);
	CHECK(uf_tree_nkids(t.root) == 1); /* ok.txt only: "dir" is made only if a file is in it */
	free_listing(&l);
	uf_tree_destroy(&t);
}

/* The mount's own upload of up.txt completes; a listing that went out after the server
 * completed it is merged before the mount installs the new id: the listing gives that file
 * a node of its own, up.txt~fileid-0. The install claims the id: one node, one name. */
CASE(a_file_listed_before_its_upload_is_installed_has_one_node)
{
	struct uf_tree t;
	CHECK(uf_tree_init(&t, 0, 0, 022) == 0);
	struct uf_node *n = uf_tree_new(&t, t.root, "up.txt", UF_FILE, 0644); /* being written */
	CHECK(n != NULL);
	static const char *const names[] = {"up.txt"};
	struct up_file_list l;
	listing(&l, names, 1, 0);
	merge(&t, &l, 100, NULL);
	struct uf_node *phantom = at(&t, "up.txt~fileid-0");
	CHECK(phantom != NULL && phantom != n);
	CHECK(uf_tree_claim_file_id(&t, n, "fileid-0") == 0);
	n->remote = true; /* as the install does */
	CHECK(at(&t, "up.txt~fileid-0") == NULL);
	CHECK(at(&t, "up.txt") == n && uf_tree_by_id(&t, "fileid-0", NULL, NULL) == n);
	CHECK(uf_tree_nkids(t.root) == 1);
	/* the next listing finds it by id: still one node */
	merge(&t, &l, 100, NULL);
	CHECK(uf_tree_nkids(t.root) == 1 && at(&t, "up.txt") == n);
	free_listing(&l);
	uf_tree_destroy(&t);
}

CHECK_MAIN(T(steps_of_one_end_as_a_whole_merge), T(a_file_listed_before_its_upload_is_installed_has_one_node),
	   T(a_second_listing_in_steps_removes_what_is_gone_and_keeps_local_files),
	   T(names_that_cannot_be_paths_are_left_out))
