/* meta: the purpose and MIME type a file's upload gets — its own user.purpose /
 * user.mime_type, else (purpose) the remote file's it is a new version of, else its
 * nearest directory's, else the mount's default (the MIME type from the name's
 * extension) — and which purposes exist. */
#ifndef UF_META_H
#define UF_META_H

#include "mount.h"

/* Tree lock held for both. */
const char *uf_effective_purpose(struct uf_mount *m, const struct uf_node *n);
const char *uf_effective_mime(const struct uf_node *n, char *buf, size_t len);
/* The MIME type of a name (a path's last component) by its extension. */
const char *uf_mime_of_name(const char *name, char *buf, size_t len);

#endif
