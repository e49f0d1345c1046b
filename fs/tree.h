/* tree: the mount's namespace — inodes for directories, remote files and files being
 * written; remote names with '/' as nested directories; duplicates as NAME~FILEID; the
 * remote listing merged in without changing the inode of anything that stays. */
#ifndef UF_TREE_H
#define UF_TREE_H

#define FUSE_USE_VERSION 312 /* the 3.12 loop config: fuse_loop_cfg_*() */
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "index.h"
#include "uploadfs.h"
#include "writer.h"

enum uf_kind { UF_DIR, UF_FILE };

/* Status of a file as user.upload.status tells it (derived: fs/lifecycle.h). */
enum uf_status { UF_PENDING, UF_UPLOADING, UF_COMPLETED, UF_FAILED, UF_CANCELLED };

struct uf_node {
	fuse_ino_t ino;
	uint64_t nlookup; /* the kernel's references */
	unsigned pins;	  /* ours: open handles, operations in progress */
	enum uf_kind kind;
	struct uf_node *parent;
	char *name;
	bool linked;	     /* in its parent's children */
	uint64_t gen;	     /* listing generation that last saw it */
	uint64_t done_epoch; /* the listing epoch when its upload completed */

	struct uf_node **kids; /* directories */
	size_t nkids, capkids;
	struct uf_index names; /* the kids by name */
	size_t slot;	       /* this node's index in its parent's kids */
	bool local_dir; /* made with mkdir (kept even when empty) */

	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime, atime, ctime;
	bool times_set; /* mtime set by the user (utimens), kept in the state store */

	/* the remote file, once there is one: facts of the server's file, set when it is
	 * listed or when this mount completed it */
	bool remote;
	char file_id[UP_ID_MAX];
	uint64_t bytes;
	char purpose[32];
	char upload_id[UP_ID_MAX]; /* the upload that made it, when this mount did */
	char md5[33];		   /* likewise */

	/* the local side while it is written and uploaded. The upload's state is the writer's
	 * alone (fs/lifecycle.h derives the status from it); these say what the mount does. */
	struct up_writer *w; /* one reference, the node's (lifecycle.h) */
	char *x_purpose; /* user.purpose set on this node (file: its own; dir: the default) */
	char *x_mime;
	unsigned writers;     /* open handles that can write */
	bool upload_on_close; /* created with O_EXCL or O_TRUNC, written to or resized */
	bool rsync_temp;      /* an rsync receiver's temporary, not yet given its final name */
	bool unlinked;
	bool finishing; /* its upload is being completed: renames and opens for write wait */
	struct timespec started; /* CLOCK_MONOTONIC, when its writer was made */
	pthread_mutex_t dl_mu; /* one download into the cache at a time */
};

/* Lock order: tree.mu, then a writer's own lock (core/writer.c), never the reverse; a
 * node's dl_mu is taken without tree.mu. No network request or fsync of a spool under
 * tree.mu: writers whose nodes go are freed by uf_tree_unlock, after the unlock. */
struct uf_tree {
	pthread_mutex_t mu;
	pthread_cond_t idle_cv; /* a node's finishing ended */
	struct up_writer **dead; /* writers of freed nodes, freed after the unlock */
	size_t ndead, capdead;
	struct uf_deleted { /* files this mount deleted while a listing may still hold them */
		char id[UP_ID_MAX];
		uint64_t epoch; /* list_epoch at the delete */
	} *deleted;
	size_t ndeleted;
	struct uf_node *root;
	struct uf_node **inodes; /* by ino; NULL once forgotten */
	size_t ninodes, capinodes;
	uint64_t gen;
	uint64_t list_epoch; /* bumped when a listing request goes out */
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

int uf_tree_init(struct uf_tree *t, uid_t uid, gid_t gid, mode_t umask);
void uf_tree_destroy(struct uf_tree *t);

/* Unlocks, then frees the writers of nodes freed meanwhile (their last free may wait for
 * parts in flight). */
void uf_tree_unlock(struct uf_tree *t);
/* Detaches n's writer; it is freed at the unlock (tree lock held). */
void uf_tree_drop_writer(struct uf_tree *t, struct uf_node *n);

/* All below: tree lock held. */
struct uf_node *uf_tree_get(struct uf_tree *t, fuse_ino_t ino);
struct uf_node *uf_tree_child(struct uf_node *dir, const char *name);
struct uf_node *uf_tree_new(struct uf_tree *t, struct uf_node *dir, const char *name,
			    enum uf_kind kind, mode_t mode);
void uf_tree_unlink(struct uf_tree *t, struct uf_node *n);
int uf_tree_move(struct uf_tree *t, struct uf_node *n, struct uf_node *dir, const char *name);
/* Frees n if nothing refers to it any more. */
void uf_tree_maybe_free(struct uf_tree *t, struct uf_node *n);
/* "a/b/c": the path from the root, the upload's filename. Caller frees. */
char *uf_tree_path(const struct uf_node *n);
void uf_tree_stat(const struct uf_node *n, struct stat *st);

/* A file node at path ("a/b/c"), with its directories; NULL if the name is taken. */
struct uf_node *uf_tree_place(struct uf_tree *t, const char *path);

/* Merges the remote listing (newest first) whose request went out at epoch (the value
 * uf_tree->list_epoch was bumped to). Files completed since are kept: it cannot know them.
 * Files in hidden (ids a new version replaces once it completes) are left out: their
 * names belong to the new version. */
struct up_idlist;
void uf_tree_merge(struct uf_tree *t, const struct up_file_list *l, uint64_t epoch,
		   const struct up_idlist *hidden);
/* Adds the files of the newest page of the listing (newest first) that the tree does not
 * know, up to the first it knows; *added lists the new nodes (caller frees). Returns
 * whether it reached a known file (if not, older ones may be missing too). A new file
 * takes the plain name from an older remote file of that name, as a whole merge would. */
bool uf_tree_add_new(struct uf_tree *t, const struct up_file_list *l, uint64_t epoch,
		     const struct up_idlist *hidden, struct uf_node ***added, size_t *nadded);
/* Every remote file in the namespace by id, in ids (the caller clears it; tree lock held). */
void uf_tree_index_ids(struct uf_tree *t, struct uf_index *ids);
/* This mount deleted file id: listings already under way leave it out (tree lock held). */
void uf_tree_deleted(struct uf_tree *t, const char *id);
/* The ids every file being written replaces (tree lock held). */
void uf_tree_replaced(struct uf_tree *t, struct up_idlist *out);

#endif
