/* version: new versions of completed files. The API cannot modify or rename a file: a
 * change is a new upload of the whole content under the name, then the delete of the old
 * file. The bytes come from the content cache (fs/cache.h) or a download. */
#ifndef UF_VERSION_H
#define UF_VERSION_H

#include "mount.h"

/* Whether a write to n must first make a new version of it: n is a completed remote file
 * with no version being written (tree lock held). */
bool uf_version_needed(const struct uf_node *n);

/* Gives n (a completed file) a new version holding its current bytes, to which writes
 * then apply; it uploads when its last writer closes, and the old file is deleted once it
 * has completed. 0 also when another writer made one first. -EACCES (logged) when the
 * bytes are neither cached nor downloadable. No lock held; n pinned. */
int uf_version_begin(struct uf_mount *m, struct uf_node *n);

/* Gives n, a completed file removed while open, a writer whose writes succeed and go
 * nowhere, as on a disk (its bytes are deleted already: they read as zeros). 0 also when
 * it has one already. No lock held; n pinned. */
int uf_version_orphan(struct uf_mount *m, struct uf_node *n);

/* One file of a rename: the node and the path it is to have. */
struct uf_moving {
	struct uf_node *n; /* pinned and finishing (the caller's) */
	char *path;
	char old_id[UP_ID_MAX];
	struct up_idlist *also; /* files the new one replaces, besides the old (may be NULL) */
	char new_id[UP_ID_MAX];	/* out */
	char upload_id[UP_ID_MAX], md5[33];
	uint64_t bytes;
};

/* Uploads each file again under its new path (the journal records them first, so a crash
 * finishes them at the next mount). All or nothing: on failure the new files already made
 * are deleted and the errno is returned. No lock held. */
int uf_version_reupload(struct uf_mount *m, struct uf_moving *mv, size_t count);

#endif
