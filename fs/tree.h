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

struct uf_dir {
	struct uf_index names; /* the kids by name: the only list of them */
};

struct uf_node { /* laid out without padding holes: 100k of these for 100k files */
	fuse_ino_t ino;
	uint64_t nlookup; /* the kernel's references */
	struct uf_node *parent;
	char *name;

	struct uf_dir *d;    /* a directory's children; NULL for a file */
	struct timespec mtime, ctime; /* atime is not kept: it reads as mtime */

	/* the remote file, once there is one: facts of the server's file, set when it is
	 * listed or when this mount completed it */
	const char *file_id;  /* "" if none; set by uf_tree_set_file_id (the id index) */
	uint64_t bytes;
	const char *purpose;  /* uf_tree_intern's; "" if not known */
	struct uf_made *made; /* the upload that made it, when this mount did; else NULL */

	/* the local side while it is written and uploaded. The upload's state is the writer's
	 * alone (fs/lifecycle.h derives the status from it); these say what the mount does. */
	struct up_writer *w; /* one reference, the node's (lifecycle.h) */
	char *x_purpose; /* user.purpose set on this node (file: its own; dir: the default) */
	char *x_mime;

	/* 32 bits: a whole listing a second, or a listing request, would take 136 years to
	 * wrap them */
	uint32_t gen;	     /* the whole listing (uf_tree.gen) that last saw it */
	uint32_t done_epoch; /* the listing epoch (uf_tree.list_epoch) its upload completed at */
	unsigned pins; /* ours: open handles, operations in progress */
	enum uf_kind kind;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	unsigned writers; /* open handles that can write */

	bool linked;	      /* in its parent's children */
	bool local_dir;	      /* made with mkdir (kept even when empty) */
	bool times_set;	      /* mtime set by the user (utimens), kept in the state store */
	bool remote;	      /* it has a remote file (above) */
	bool upload_on_close; /* created with O_EXCL or O_TRUNC, written to or resized */
	bool rsync_temp;      /* an rsync receiver's temporary, not yet given its final name */
	bool unlinked;
	bool finishing; /* its upload is being completed: renames and opens for write wait */
};

/* The upload of a file this mount made (user.upload.upload_id and md5 once its writer is
 * gone); most nodes are listed files and have none. */
struct uf_made {
	char upload_id[UP_ID_MAX];
	char md5[33];
};

#define UF_DL_LOCKS 64 /* downloads into the cache: one per file at a time, by ino */

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
	struct uf_index by_id; /* every node with a file_id, by it */
	char **interned;       /* the purposes nodes point to */
	size_t ninterned;
	pthread_mutex_t dl_mu[UF_DL_LOCKS]; /* taken without mu (fs/content.c) */
	struct uf_node **inodes; /* by ino; NULL once forgotten */
	size_t ninodes, capinodes;
	uint32_t gen;	     /* bumped by each whole listing */
	uint32_t list_epoch; /* bumped when a listing request goes out */
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
/* How many children n has (0 for a file). */
static inline size_t uf_tree_nkids(const struct uf_node *n)
{
	return n->d ? n->d->names.used : 0;
}
/* dir's children one by one: from *pos = 0 until NULL, in no particular order, with no
 * child added or removed meanwhile. */
struct uf_node *uf_tree_next_kid(const struct uf_node *dir, size_t *pos);
struct uf_node *uf_tree_new(struct uf_tree *t, struct uf_node *dir, const char *name,
			    enum uf_kind kind, mode_t mode);
void uf_tree_unlink(struct uf_tree *t, struct uf_node *n);
int uf_tree_move(struct uf_tree *t, struct uf_node *n, struct uf_node *dir, const char *name);
/* Frees n if nothing refers to it any more. */
void uf_tree_maybe_free(struct uf_tree *t, struct uf_node *n);
/* "a/b/c": the path from the root, the upload's filename. Caller frees. */
char *uf_tree_path(const struct uf_node *n);
void uf_tree_stat(const struct uf_node *n, struct stat *st);

/* Sets n's file id ("" for none) and keeps the id index right. 0 or -ENOMEM (then n's
 * id is unchanged). */
int uf_tree_set_file_id(struct uf_tree *t, struct uf_node *n, const char *id);
/* n takes the id of the file its own upload (or rename) just made. A listing merged in
 * between may have given that file a node of its own (shown as NAME~FILEID): it goes. */
int uf_tree_claim_file_id(struct uf_tree *t, struct uf_node *n, const char *id);
/* The remote file of id that pred accepts (NULL: any node with that id), or NULL. */
struct uf_node *uf_tree_by_id(struct uf_tree *t, const char *id,
			      bool (*pred)(const struct uf_node *n, const void *arg),
			      const void *arg);
/* The tree's copy of s (a purpose: a handful of distinct values), "" without memory. */
const char *uf_tree_intern(struct uf_tree *t, const char *s);
/* Records the upload that made n (user.upload.upload_id and md5). */
void uf_tree_set_made(struct uf_node *n, const char *upload_id, const char *md5);
/* The lock for downloads of n's bytes (taken without the tree lock). */
pthread_mutex_t *uf_tree_dl_lock(struct uf_tree *t, const struct uf_node *n);

/* The directory of path ("a/b/c": a/b, made where missing) and its last name in *base,
 * within *copy (the caller frees it, also on failure); NULL if the path cannot be shown
 * (a "." or ".." in it, a file where a directory would be). */
struct uf_node *uf_tree_dir_of(struct uf_tree *t, const char *path, char **copy,
			       const char **base);
/* A file node at path ("a/b/c"), with its directories; NULL if the name is taken. */
struct uf_node *uf_tree_place(struct uf_tree *t, const char *path);

/* The ids every file being written replaces (tree lock held). */
void uf_tree_replaced(struct uf_tree *t, struct up_idlist *out);

#endif
