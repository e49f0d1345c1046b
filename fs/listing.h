/* listing: the remote listing kept fresh beside the FUSE operations, which never wait for
 * it. A refresher thread asks for the newest page every list_interval (new files: the list
 * is newest first, so it stops at the first file it knows) and for the whole listing every
 * sweep_interval (files deleted elsewhere); the state store's mode, owner and mtime are
 * applied to the files a listing brings. */
#ifndef UF_LISTING_H
#define UF_LISTING_H

#include "mount.h"

/* The whole listing now, merged (deletions too). A failure keeps the last listing and is
 * logged. No lock held on entry; one refresh at a time (list_mu). */
int uf_listing_refresh(struct uf_mount *m);
/* Merges a whole listing fetched at mount (it counts as fresh), and frees it. */
void uf_listing_first(struct uf_mount *m, struct up_file_list *l);

/* The refresher thread: started after daemonizing, stopped before the tree goes. */
int uf_listing_start(struct uf_mount *m);
void uf_listing_stop(struct uf_mount *m);

#endif
