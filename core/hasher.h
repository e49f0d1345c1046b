/* hasher: a file's MD5 over bytes given in order. Small inputs are hashed by the caller;
 * past a threshold a thread of its own hashes copies handed to it through a 1 MiB ring, so
 * the caller's next write overlaps the hashing. Not thread-safe: one caller at a time (the
 * writer's lock). */
#ifndef UP_HASHER_H
#define UP_HASHER_H

#include <stdbool.h>
#include <stddef.h>

struct up_hasher;

int up_hasher_new(struct up_hasher **out);
void up_hasher_free(struct up_hasher *h);

/* Hashes the next n bytes. With threaded, a thread takes them (started on first use);
 * otherwise they are hashed here, after the thread has taken what it was given. */
void up_hasher_update(struct up_hasher *h, const void *buf, size_t n, bool threaded);
/* Waits until the thread has hashed everything handed to it, and ends it. */
void up_hasher_stop(struct up_hasher *h);
/* Starts over with no bytes. */
void up_hasher_reset(struct up_hasher *h);
/* The MD5 of everything given, in hex; the hasher must be reset before it is used again. */
void up_hasher_hex(struct up_hasher *h, char out[33]);

#endif
