/* index: the store's objects (uploads, files) in arrays sorted by their sequence number,
 * which their ids embed: found by binary search, listed in creation order. */
#ifndef SRV_INDEX_H
#define SRV_INDEX_H

#include "ids.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Pointers kept sorted by their object's sequence number. */
struct vec {
	void **v;
	size_t n, cap;
};

/* Every indexed object starts so. */
struct seq_head {
	char id[SRV_ID_MAX];
	uint64_t seq;
};

int srv_vec_push(struct vec *v, void *p);
/* The index of the object of sequence number seq, or -1. */
ssize_t srv_vec_find(const struct vec *v, uint64_t seq);
/* The first index whose seq is > seq (listing after a cursor). */
size_t srv_vec_upper(const struct vec *v, uint64_t seq);
/* For qsort of an array of pointers to objects. */
int srv_cmp_seq(const void *a, const void *b);
/* The object whose id is id ("<prefix><seq...>"), or NULL. */
void *srv_vec_lookup(const struct vec *v, const char *prefix, const char *id);

#endif
