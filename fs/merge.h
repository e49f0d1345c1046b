/* merge: the remote listing into the tree (fs/merge.c). A whole listing is merged in
 * steps, the tree lock released between them, and removes what it no longer has; the
 * newest page adds the files the tree does not know yet. */
#ifndef UF_MERGE_H
#define UF_MERGE_H

#include "tree.h"

/* A whole listing (newest first) merged in steps, the tree lock released between them:
 * begin, then steps until one returns true, each under the lock. epoch is the value
 * uf_tree->list_epoch was bumped to when its request went out. Files completed since are
 * kept: it cannot know them. Files that a file being written replaces (a new version, a
 * rename) are left out: their names belong to the new version. */
struct uf_merge {
	const struct up_file_list *l; /* borrowed until the last step */
	uint64_t epoch;
	size_t next;  /* the next listed file to merge */
	size_t swept; /* then the next inode to check for files the listing no longer has */
};
void uf_tree_merge_begin(struct uf_tree *t, struct uf_merge *mg, const struct up_file_list *l,
			 uint64_t epoch);
/* Up to budget files; *added lists the nodes this step made (caller frees). Returns
 * whether the merge is done. */
bool uf_tree_merge_step(struct uf_tree *t, struct uf_merge *mg, size_t budget,
			struct uf_node ***added, size_t *nadded);
struct up_idlist;
/* Adds the files of the newest page of the listing (newest first) that the tree does not
 * know, up to the first it knows; *added lists the new nodes (caller frees). Returns
 * whether it reached a known file (if not, older ones may be missing too). A new file
 * takes the plain name from an older remote file of that name, as a whole merge would. */
bool uf_tree_add_new(struct uf_tree *t, const struct up_file_list *l, uint64_t epoch,
		     const struct up_idlist *hidden, struct uf_node ***added, size_t *nadded);
/* This mount deleted file id: listings already under way leave it out (tree lock held). */
void uf_tree_deleted(struct uf_tree *t, const char *id);

#endif
