/* lifecycle: the upload life of a file node. The node holds one reference to its writer
 * (core/writer.h), the one source of the upload's state; the status every reader sees is
 * derived from it here; the close rule and the completion of an upload live here too. */
#ifndef UF_LIFECYCLE_H
#define UF_LIFECYCLE_H

#include "mount.h"

/* A new writer on a new spool file (an empty file), made without the tree lock (it
 * creates a file); set_writer gives it to n (tree lock held; n's old one goes). */
int uf_life_make_writer(struct uf_mount *m, struct up_writer **out);
void uf_life_set_writer(struct uf_mount *m, struct uf_node *n, struct up_writer *w);

/* A reference to n's writer for use after the unlock, or NULL (tree lock held). The caller
 * drops it with up_writer_free, with no lock held. */
struct up_writer *uf_life_writer(struct uf_node *n);

/* The status of n, derived from its writer (whose status lands in ws, zeroed if none) or
 * from the remote file (tree lock held). */
enum uf_status uf_life_status(const struct uf_node *n, struct up_writer_status *ws);
const char *uf_life_status_name(enum uf_status s);
/* Whether the upload n will make can still change: a writer whose bytes are not sealed
 * (still open for writing, or an rsync temporary awaiting its name), so the attributes it
 * goes up with (user.purpose, user.mime_type) can still be set. Tree lock held. */
bool uf_life_unsealed(const struct uf_node *n);
/* Whether n is a copy being made: unsealed, and written through a handle still open or an
 * rsync temporary. A copy (mv, cp -a, rsync -X) sets its source's attributes, the
 * read-only user.upload.* among them, which then have no effect. Tree lock held. */
bool uf_life_copying(const struct uf_node *n);

/* The close rule, its one place (docs/SEMANTICS.md "Close"): a file's upload completes
 * when its last writer closes it. A flush by the opener completes it when this is the
 * file's only open write handle and the opener keeps no other way to write it (a
 * descriptor open for writing, a shared writable mapping); otherwise the release of the
 * last write handle does. An rsync temporary waits for its final name. Whoever reads the
 * attributes meanwhile changes nothing. Tree lock held. */
bool uf_life_due(const struct uf_node *n);
/* Whether a flush by process tgid of a write handle of n completes the upload. Takes the
 * tree lock; reads /proc without it. */
bool uf_life_flush_completes(struct uf_mount *m, struct uf_node *n, pid_t tgid);

/* Completes n's upload: seals it (the journal record exists before this returns), then
 * waits for the server, or in the background (-o async, recovery) lets a thread wait. Returns the
 * upload's result; -ECANCELED if it was removed meanwhile. No lock held; n is pinned. */
int uf_life_close(struct uf_mount *m, struct uf_node *n, bool background);

/* The final size is known: create the upload now (no lock held; n pinned). */
void uf_life_announce(struct uf_mount *m, struct uf_node *n, uint64_t size, const char *why);
/* truncate/fallocate to size (no lock held; n pinned). */
int uf_life_set_size(struct uf_mount *m, struct uf_node *n, uint64_t size);

/* Waits while n is finishing (tree lock held; released while waiting). */
void uf_life_wait_idle(struct uf_mount *m, struct uf_node *n);

/* Drops a pin (tree lock held): a completed or cancelled upload needs no writer once
 * nobody uses the file. */
void uf_life_unpin(struct uf_mount *m, struct uf_node *n);

/* mode, owner and mtime of a remote file, or a directory of ours, to the state store. */
void uf_life_persist_attrs(struct uf_mount *m, struct uf_node *n);

#endif
