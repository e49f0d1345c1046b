/* dirlist: a directory read through the mount (ls, find, ls -l): a snapshot of its names
 * at opendir, so offsets stay valid while the namespace changes, read page by page with
 * or without each name's attributes (READDIRPLUS). */
#ifndef UF_DIRLIST_H
#define UF_DIRLIST_H

#include "mount.h"

/* How long the kernel may keep an entry or its attributes, in seconds. */
#define UF_ATTR_TIMEOUT 1.0

void uf_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void uf_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void uf_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void uf_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

#endif
