/* index: tree nodes by a string key (a directory's children by name; during a merge, remote
 * files by id), in an open-addressing hash table. A key may be held by several nodes at
 * once (a merge renames in steps): lookups see every one, a delete removes one node. */
#ifndef UF_INDEX_H
#define UF_INDEX_H

#include <stdbool.h>
#include <stddef.h>

struct uf_node;

struct uf_index {
	struct uf_node **tab; /* NULL: free; the tombstone: deleted */
	size_t cap;	      /* a power of two, or 0 */
	size_t used, dead;
	const char *(*key)(const struct uf_node *n);
};

void uf_index_init(struct uf_index *x, const char *(*key)(const struct uf_node *n));
void uf_index_clear(struct uf_index *x);
/* 0 or -ENOMEM (the index is unchanged then). */
int uf_index_put(struct uf_index *x, struct uf_node *n);
/* Removes n, found by its key as it is now. */
void uf_index_del(struct uf_index *x, struct uf_node *n);
/* The nodes one by one: from *pos = 0 until NULL, in table order, with no put or delete
 * meanwhile. */
struct uf_node *uf_index_next(const struct uf_index *x, size_t *pos);
/* The first node under key for which fn(node, arg) is true (fn NULL: the first), or NULL. */
struct uf_node *uf_index_find(const struct uf_index *x, const char *key,
			      bool (*fn)(const struct uf_node *n, const void *arg), const void *arg);

#endif
