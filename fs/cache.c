#include "cache.h"

#include "uploadfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct entry {
	char id[UP_ID_MAX];
	uint64_t bytes;
	uint64_t used; /* the cache's clock at its last use: the smallest goes first */
};

struct uf_cache {
	char *dir;
	uint64_t budget;
	pthread_mutex_t mu; /* the entries; a leaf lock, never held over the disk */
	struct entry *e;
	size_t n, cap;
	uint64_t held; /* sum of bytes */
	uint64_t clock;
};

static struct entry *find(struct uf_cache *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].id, id) == 0)
			return &c->e[i];
	return NULL;
}

static int put(struct uf_cache *c, const char *id, uint64_t bytes, uint64_t used)
{
	struct entry *e = find(c, id);
	if (!e) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 64;
			struct entry *ne = realloc(c->e, cap * sizeof *ne);
			if (!ne)
				return -ENOMEM;
			c->e = ne;
			c->cap = cap;
		}
		e = &c->e[c->n++];
		snprintf(e->id, sizeof e->id, "%s", id);
		e->bytes = 0;
	}
	c->held = c->held - e->bytes + bytes;
	e->bytes = bytes;
	e->used = used;
	return 0;
}

static void take_out(struct uf_cache *c, struct entry *e)
{
	c->held -= e->bytes;
	*e = c->e[--c->n];
}

void uf_cache_path(const struct uf_cache *c, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", c->dir, id);
}

static int by_mtime(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->used < y->used ? -1 : x->used > y->used;
}

int uf_cache_new(const char *dir, uint64_t budget, struct uf_cache **out)
{
	struct uf_cache *c = calloc(1, sizeof *c);
	if (!c || !(c->dir = strdup(dir))) {
		free(c);
		return -ENOMEM;
	}
	c->budget = budget;
	pthread_mutex_init(&c->mu, NULL);
	DIR *d = opendir(dir);
	if (!d) {
		int rc = -errno;
		uf_cache_free(c);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) >= UP_ID_MAX)
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		size_t len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".part") == 0) {
			unlinkat(dirfd(d), de->d_name, 0); /* a download a crash cut short */
			continue;
		}
		uint64_t t = (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec;
		if (put(c, de->d_name, (uint64_t)sb.st_size, t) < 0)
			break;
	}
	closedir(d);
	/* the clock restarts: the order of the last uses is kept */
	if (c->n) /* c->e is NULL while empty */
		qsort(c->e, c->n, sizeof *c->e, by_mtime);
	for (size_t i = 0; i < c->n; i++)
		c->e[i].used = ++c->clock;
	*out = c;
	return 0;
}

void uf_cache_free(struct uf_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->e);
	free(c->dir);
	free(c);
}

int uf_cache_open(struct uf_cache *c, const char *id, uint64_t bytes, int *fd)
{
	char path[4200];
	uf_cache_path(c, id, path, sizeof path);
	pthread_mutex_lock(&c->mu);
	struct entry *e = find(c, id);
	bool whole = e && e->bytes == bytes;
	if (whole)
		e->used = ++c->clock;
	pthread_mutex_unlock(&c->mu);
	if (!whole)
		return -ENOENT;
	/* evicted meanwhile: then it is not there */
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -ENOENT;
	struct stat sb;
	if (fstat(*fd, &sb) < 0 || (uint64_t)sb.st_size != bytes) {
		close(*fd);
		*fd = -1;
		return -ENOENT;
	}
	futimens(*fd, NULL); /* the order of use survives a remount */
	return 0;
}

/* What the budget allows now: never more than the disk's free space leaves, keeping a
 * reserve for the spools of files being written (a twentieth of the disk, at most 1 GiB). */
static uint64_t allowed(struct uf_cache *c, uint64_t held)
{
	struct statvfs sv;
	if (statvfs(c->dir, &sv) < 0)
		return c->budget;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t reserve = total / 20 < (1ull << 30) ? total / 20 : (1ull << 30);
	uint64_t room = held + avail > reserve ? held + avail - reserve : 0;
	return room < c->budget ? room : c->budget;
}

/* Takes out the least recently used until held fits limit; their ids land in out (the
 * caller unlinks them without the lock). Lock held. */
static size_t evict_locked(struct uf_cache *c, uint64_t limit, const char *keep,
			   char (**out)[UP_ID_MAX])
{
	size_t nv = 0;
	*out = NULL;
	while (c->held > limit && c->n > 0) {
		struct entry *old = NULL;
		for (size_t i = 0; i < c->n; i++)
			if ((limit == 0 || strcmp(c->e[i].id, keep) != 0) && (!old || c->e[i].used < old->used))
				old = &c->e[i];
		if (!old)
			break; /* only the newest is left: it stays over a budget that is not 0 */
		char(*nvict)[UP_ID_MAX] = realloc(*out, (nv + 1) * sizeof **out);
		if (!nvict)
			break;
		*out = nvict;
		memcpy((*out)[nv++], old->id, UP_ID_MAX);
		take_out(c, old);
	}
	return nv;
}

void uf_cache_added(struct uf_cache *c, const char *id)
{
	char path[4200];
	uf_cache_path(c, id, path, sizeof path);
	struct stat sb;
	if (stat(path, &sb) < 0)
		return;
	pthread_mutex_lock(&c->mu);
	uint64_t held = c->held;
	pthread_mutex_unlock(&c->mu);
	uint64_t limit = allowed(c, held);
	pthread_mutex_lock(&c->mu);
	char(*victims)[UP_ID_MAX] = NULL;
	size_t nv = 0;
	if (put(c, id, (uint64_t)sb.st_size, ++c->clock) == 0)
		nv = evict_locked(c, limit, id, &victims);
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; i < nv; i++) {
		uf_cache_path(c, victims[i], path, sizeof path);
		unlink(path); /* a reader that has it open keeps its bytes */
	}
	free(victims);
}

void uf_cache_trim(struct uf_cache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t held = c->held;
	pthread_mutex_unlock(&c->mu);
	if (held == 0)
		return;
	uint64_t limit = allowed(c, held);
	char(*victims)[UP_ID_MAX] = NULL;
	pthread_mutex_lock(&c->mu);
	size_t nv = evict_locked(c, limit, "", &victims);
	pthread_mutex_unlock(&c->mu);
	char path[4200];
	for (size_t i = 0; i < nv; i++) {
		uf_cache_path(c, victims[i], path, sizeof path);
		unlink(path);
	}
	free(victims);
}

void uf_cache_drop(struct uf_cache *c, const char *id)
{
	char path[4200];
	pthread_mutex_lock(&c->mu);
	struct entry *e = find(c, id);
	if (e)
		take_out(c, e);
	pthread_mutex_unlock(&c->mu);
	if (e) {
		uf_cache_path(c, id, path, sizeof path);
		unlink(path);
	}
}

void uf_cache_usage(struct uf_cache *c, uint64_t *bytes, size_t *files)
{
	pthread_mutex_lock(&c->mu);
	*bytes = c->held;
	*files = c->n;
	pthread_mutex_unlock(&c->mu);
}
