#include "index.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char tomb_byte;
#define TOMB ((struct uf_node *)(uintptr_t)&tomb_byte) /* a deleted slot */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

void uf_index_init(struct uf_index *x, const char *(*key)(const struct uf_node *n))
{
	memset(x, 0, sizeof *x);
	x->key = key;
}

void uf_index_clear(struct uf_index *x)
{
	free(x->tab);
	x->tab = NULL;
	x->cap = x->used = x->dead = 0;
}

static void insert(struct uf_node **tab, size_t cap, const char *key, struct uf_node *n)
{
	for (size_t i = hash(key) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!tab[i] || tab[i] == TOMB) {
			tab[i] = n;
			return;
		}
}

static int grow(struct uf_index *x)
{
	size_t cap = x->cap ? x->cap : 8;
	while ((x->used + 1) * 4 > cap * 3) /* at most 3/4 live */
		cap *= 2;
	struct uf_node **tab = calloc(cap, sizeof *tab);
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < x->cap; i++)
		if (x->tab[i] && x->tab[i] != TOMB)
			insert(tab, cap, x->key(x->tab[i]), x->tab[i]);
	free(x->tab);
	x->tab = tab;
	x->cap = cap;
	x->dead = 0;
	return 0;
}

int uf_index_put(struct uf_index *x, struct uf_node *n)
{
	if ((x->used + x->dead + 1) * 4 > x->cap * 3 && grow(x) < 0)
		return -ENOMEM;
	const char *key = x->key(n);
	for (size_t i = hash(key) & (x->cap - 1);; i = (i + 1) & (x->cap - 1))
		if (!x->tab[i] || x->tab[i] == TOMB) {
			if (x->tab[i] == TOMB)
				x->dead--;
			x->tab[i] = n;
			x->used++;
			return 0;
		}
}

void uf_index_del(struct uf_index *x, struct uf_node *n)
{
	if (!x->cap)
		return;
	for (size_t i = hash(x->key(n)) & (x->cap - 1); x->tab[i]; i = (i + 1) & (x->cap - 1))
		if (x->tab[i] == n) {
			x->tab[i] = TOMB;
			x->used--;
			x->dead++;
			return;
		}
}

struct uf_node *uf_index_next(const struct uf_index *x, size_t *pos)
{
	while (*pos < x->cap) {
		struct uf_node *n = x->tab[(*pos)++];
		if (n && n != TOMB)
			return n;
	}
	return NULL;
}

struct uf_node *uf_index_find(const struct uf_index *x, const char *key,
			      bool (*fn)(const struct uf_node *n, const void *arg), const void *arg)
{
	if (!x->cap)
		return NULL;
	for (size_t i = hash(key) & (x->cap - 1); x->tab[i]; i = (i + 1) & (x->cap - 1)) {
		struct uf_node *n = x->tab[i];
		if (n != TOMB && strcmp(x->key(n), key) == 0 && (!fn || fn(n, arg)))
			return n;
	}
	return NULL;
}
