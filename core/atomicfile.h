/* atomicfile: replacing a file so that readers, and a crash, see the old or the new
 * contents, never a torn mix: write a temporary beside it, optionally fsync, rename (and
 * then fsync the directory, so the rename itself survives a power cut). */
#ifndef UP_ATOMICFILE_H
#define UP_ATOMICFILE_H

#include <stdbool.h>
#include <stddef.h>

/* 0 or a negative errno; the temporary is "<path>.tmp" and is removed on failure. */
int up_write_file_atomic(const char *path, const void *data, size_t len, bool sync);

#endif
