#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int srv_vec_push(struct vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void **nv = realloc(v->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

ssize_t srv_vec_find(const struct vec *v, uint64_t seq)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t s = ((const struct seq_head *)v->v[mid])->seq;
		if (s == seq)
			return (ssize_t)mid;
		if (s < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* First index whose seq is > seq (for listing after a cursor). */
size_t srv_vec_upper(const struct vec *v, uint64_t seq)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (((const struct seq_head *)v->v[mid])->seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int srv_cmp_seq(const void *a, const void *b)
{
	uint64_t x = (*(const struct seq_head *const *)a)->seq;
	uint64_t y = (*(const struct seq_head *const *)b)->seq;
	return x < y ? -1 : x > y;
}

void *srv_vec_lookup(const struct vec *v, const char *prefix, const char *id)
{
	uint64_t seq;
	if (!srv_id_parse(prefix, id, &seq))
		return NULL;
	ssize_t i = srv_vec_find(v, seq);
	if (i < 0 || strcmp(((struct seq_head *)v->v[i])->id, id) != 0)
		return NULL;
	return v->v[i];
}
