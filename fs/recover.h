/* recover: what a mount finds in its cache_dir from the run before — the lock that keeps
 * a second mount off the same cache, and the journal: closed files are finished, files
 * that were still being written are cancelled, records that cannot be finished are
 * cancelled, reported once, and removed (their spool kept in lost+found). */
#ifndef UF_RECOVER_H
#define UF_RECOVER_H

#include "mount.h"

/* Takes cache_dir's lock (m->cache_lock_fd); -EBUSY with a message on stderr if another
 * mount holds it. */
int uf_recover_lock(struct uf_mount *m);

/* Runs once at mount, after the first listing: resumes every closed upload in the
 * background, cancels the others, removes spool files no record names. */
void uf_recover(struct uf_mount *m);

#endif
