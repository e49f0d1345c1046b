/* content: a remote file's bytes, from the content cache (fs/cache.h) or downloaded into
 * it once (streamed, checked against the listed size). */
#ifndef UF_CONTENT_H
#define UF_CONTENT_H

#include "mount.h"

/* Downloads n's content into the cache unless it is there, and opens it for reading. A
 * purpose the API serves no content of is -EACCES, with one log line: "cannot DOING
 * NAME: ...". No lock held. */
int uf_content_open(struct uf_mount *m, struct uf_node *n, const char *doing, int *fd);

#endif
