#include "earlyhash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Per read of a part being hashed. */
#define HASH_BUF (128u << 10)

/* Forgets the early hash (lock held, no hashing running). */
void srv_early_reset(struct upload *u)
{
	EVP_MD_CTX_free(u->early_md);
	u->early_md = NULL;
	u->early_n = 0;
	u->early_next = 0;
	u->early_bytes = 0;
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i].state == SLOT_HASHED)
			u->slots[i].state = SLOT_COMMITTED;
	u->early_broken = false;
}

/* Hashes one part's n bytes from fd into md (no lock: parts are immutable). */
static int hash_fd(int fd, uint64_t n, EVP_MD_CTX *md, char *buf)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (n) {
		ssize_t r = read(fd, buf, n < HASH_BUF ? n : HASH_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		if (EVP_DigestUpdate(md, buf, (size_t)r) != 1)
			return -ENOMEM;
		n -= (uint64_t)r;
	}
	return 0;
}

static int hash_part(struct srv_store *st, const char *upload_id, const struct part *p,
		     EVP_MD_CTX *md, char *buf)
{
	char path[4096];
	int rc = srv_pathf(path, sizeof path, st->dir, "parts/%s/%s", upload_id, p->id);
	int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return rc < 0 ? rc : -errno;
	rc = hash_fd(fd, p->bytes, md, buf);
	close(fd);
	return rc;
}

/* The slot whose part is hashed next, or -1 to wait for more (lock held). Parts the client
 * placed go by their offset: the committed part at the offset hashed so far, whatever the
 * order they arrived in. Others go in the order their bodies began, waiting at a part still
 * in flight and stepping over a request that failed (a retry has a slot of its own). */
static ssize_t next_to_hash(struct upload *u)
{
	if (u->nslots && u->slots[0].placed) {
		/* from where the last one was found: parts mostly come in about their order */
		for (size_t k = 0; k < u->nslots; k++) {
			size_t i = (u->early_next + k) % u->nslots;
			if (u->slots[i].state == SLOT_COMMITTED && u->slots[i].placed &&
			    u->slots[i].place == u->early_bytes) {
				u->early_next = i + 1;
				return (ssize_t)i;
			}
		}
		return -1;
	}
	while (u->early_next < u->nslots && u->slots[u->early_next].state == SLOT_GONE)
		u->early_next++;
	if (u->early_next >= u->nslots || u->slots[u->early_next].state != SLOT_COMMITTED)
		return -1;
	return (ssize_t)u->early_next++;
}

/* Brings the early hash up to the parts committed so far. One thread at a time per upload
 * hashes; the others leave it the work. Called without the lock. */
void srv_early_advance(struct srv_store *st, struct upload *u)
{
	char *buf = NULL;
	pthread_mutex_lock(&st->mu);
	if (u->early_off && !u->early_busy && !u->busy)
		srv_early_reset(u);
	if (u->early_busy || u->busy || u->status != U_PENDING || u->early_broken ||
	    u->early_off) {
		pthread_mutex_unlock(&st->mu);
		return;
	}
	if (!u->early_md) {
		u->early_md = EVP_MD_CTX_new();
		if (!u->early_md || EVP_DigestInit_ex(u->early_md, EVP_md5(), NULL) != 1) {
			u->early_broken = true;
			pthread_mutex_unlock(&st->mu);
			return;
		}
	}
	u->early_busy = true;
	ssize_t next;
	while ((next = next_to_hash(u)) >= 0 && !u->early_broken && !u->early_off &&
	       u->status == U_PENDING && !u->busy) {
		struct slot sl = u->slots[next];
		if (u->early_n == u->cap_early) {
			size_t cap = u->cap_early ? u->cap_early * 2 : 16;
			size_t *ni = realloc(u->early_idx, cap * sizeof *ni);
			if (!ni) {
				u->early_broken = true;
				break;
			}
			u->early_idx = ni;
			u->cap_early = cap;
		}
		struct part p = u->parts[sl.idx];
		EVP_MD_CTX *md = u->early_md;
		pthread_mutex_unlock(&st->mu);
		int rc = buf ? 0 : -ENOMEM;
		if (!buf && (buf = malloc(HASH_BUF)))
			rc = 0;
		if (rc == 0)
			rc = hash_part(st, u->id, &p, md, buf);
		pthread_mutex_lock(&st->mu);
		if (rc < 0) {
			u->early_broken = true;
			break;
		}
		u->early_idx[u->early_n++] = sl.idx;
		u->early_bytes += p.bytes;
		if ((size_t)next < u->nslots)
			u->slots[next].state = SLOT_HASHED;
	}
	u->early_busy = false;
	if (u->early_broken || u->early_off || u->status != U_PENDING)
		srv_early_reset(u); /* a later part starts over; complete hashes from the parts */
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	free(buf);
}

/* Hashes the parts from..n-1 into md, reading each once. */
int srv_hash_parts(struct srv_store *st, const char *upload_id, const struct part *parts,
		      size_t from, size_t n, EVP_MD_CTX *md, struct srv_err *err)
{
	char *buf = malloc(HASH_BUF);
	int rc = buf ? 0 : srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	for (size_t i = from; rc == 0 && i < n; i++)
		if ((rc = hash_part(st, upload_id, &parts[i], md, buf)) < 0)
			rc = srv_disk_err(err, -rc, "read a part");
	free(buf);
	return rc;
}

