/* cache: the local content cache — the bytes of completed files (a spool kept when its
 * upload completes, a download) in cache_dir/content, one file per file id, under a
 * budget (-o cache_size, never more than the disk's free space allows); the least
 * recently used goes first. */
#ifndef UF_CACHE_H
#define UF_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct uf_cache;

/* Takes in what dir already holds (a previous mount's cache), oldest use first. */
int uf_cache_new(const char *dir, uint64_t budget, struct uf_cache **out);
void uf_cache_free(struct uf_cache *c);

/* Where id's content lives (whether or not it is there). */
void uf_cache_path(const struct uf_cache *c, const char *id, char *buf, size_t len);

/* id's content, if it is cached whole (bytes long): opened read-only and marked used.
 * 0, or -ENOENT. */
int uf_cache_open(struct uf_cache *c, const char *id, uint64_t bytes, int *fd);

/* The file at uf_cache_path(id) was just put there (a kept spool, a finished download):
 * it is counted, and older content goes if the budget is passed. */
void uf_cache_added(struct uf_cache *c, const char *id);

/* Evicts what the budget no longer allows, the free space having shrunk (a new spool is
 * about to grow: spools of files being written come before cached content). */
void uf_cache_trim(struct uf_cache *c);

/* id is gone from the server: its content goes too. */
void uf_cache_drop(struct uf_cache *c, const char *id);

/* Bytes held, and how many files (for tests and the status). */
void uf_cache_usage(struct uf_cache *c, uint64_t *bytes, size_t *files);

#endif
