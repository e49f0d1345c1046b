/* listing: the remote listing merged into the namespace — fetched when it is older than
 * list_ttl, with the state store's mode, owner and mtime applied to the files it names. */
#ifndef UF_LISTING_H
#define UF_LISTING_H

#include "mount.h"

/* Fetches the listing when it is older than list_ttl (or when forced). A failure keeps the
 * last listing and is logged. No lock held on entry. */
int uf_listing_refresh(struct uf_mount *m, bool force);

#endif
