/* content: a file's bytes under --data/content. Either one regular file (POST /v1/files, and
 * data directories from before manifests) or a directory of the upload's parts hard-linked
 * in the file's order, named by index ("0000000000", ...): the directory is the manifest. */
#ifndef SRV_CONTENT_H
#define SRV_CONTENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Makes dir (absent before) holding the n files srcs[] as its pieces, in that order: a hard
 * link each, or a copy where the filesystem refuses links. On failure dir is removed. */
int srv_content_make(const char *dir, const char *const *srcs, size_t n);

/* Removes a content entry of either form; 0 or a negative errno (-ENOENT when absent). */
int srv_content_remove(const char *path);

/* A reader over the content, whatever its form. It keeps the directory open and opens one
 * piece at a time: the store must not remove the content while a reader is open. */
struct srv_content;
int srv_content_open(const char *path, struct srv_content **out);
uint64_t srv_content_bytes(const struct srv_content *c);
/* Up to len bytes at off, never across a piece boundary: >0, 0 at the end, or -errno. */
ssize_t srv_content_pread(struct srv_content *c, void *buf, size_t len, uint64_t off);
/* A new fd holding all the bytes when the content is one file or one piece (the caller
 * closes it; a later delete of the content does not disturb it); -ENOTUNIQ otherwise. */
int srv_content_one_fd(struct srv_content *c);
void srv_content_close(struct srv_content *c);

#endif
