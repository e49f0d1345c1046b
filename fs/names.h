/* names: the FUSE unlink and rename of a mount (fs/names.c): rm deletes a remote file or
 * cancels an upload; rename moves files not yet completed and directories of them, waits
 * for a completing close, and replaces a file once the moved one completes. */
#ifndef UF_NAMES_H
#define UF_NAMES_H

#include "mount.h"

void uf_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void uf_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);

#endif
