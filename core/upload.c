/* up_upload_file: a whole file in parts. One reader walks the file once, hashing as it reads,
 * and hands each part to the async pool; `parallel` parts are in flight while the next is
 * read, in at most parallel + 1 buffers. Any failure cancels the upload. */
#include "api.h"
#include "client.h"
#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct run {
	const struct up_file_upload *o;
	uint64_t total;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a buffer came free, or a part failed */
	char (*ids)[UP_ID_MAX];
	char **bufs;
	bool *busy;
	unsigned nbufs;
	int rc;
	struct up_error err;
	uint64_t sent;
};

struct part_job {
	struct run *run;
	size_t index;
	int slot; /* buffer in use, -1 for memory sources */
	uint64_t len;
};

static void part_done(void *ud, int rc, const struct up_part *part, const struct up_error *err)
{
	struct part_job *pj = ud;
	struct run *r = pj->run;
	pthread_mutex_lock(&r->mu);
	if (rc < 0 && r->rc == 0) {
		r->rc = rc;
		r->err = *err;
	} else if (rc == 0) {
		memcpy(r->ids[pj->index], part->id, UP_ID_MAX);
		r->sent += pj->len;
	}
	if (pj->slot >= 0)
		r->busy[pj->slot] = false;
	uint64_t sent = r->sent;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (rc == 0 && r->o->progress)
		r->o->progress(r->o->progress_ud, sent, r->total);
	free(pj);
}

/* Waits for a free buffer; -1 if a part failed meanwhile. */
static int take_slot(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	int slot = -1;
	while (r->rc == 0) {
		for (unsigned i = 0; i < r->nbufs && slot < 0; i++)
			if (!r->busy[i])
				slot = (int)i;
		if (slot >= 0) {
			r->busy[slot] = true;
			break;
		}
		pthread_cond_wait(&r->cv, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return slot;
}

static int fail(struct run *r, int rc, const struct up_error *err)
{
	pthread_mutex_lock(&r->mu);
	if (r->rc == 0) {
		r->rc = rc;
		r->err = *err;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int read_full(int fd, char *buf, uint64_t off, uint64_t len, struct up_error *err)
{
	uint64_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, (size_t)(len - got), (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return up_error_set(err, -errno, 0, "reading the file: %s",
					    strerror(errno));
		if (n == 0)
			return up_error_set(err, -EIO, 0,
					    "the file ended at byte %llu, before the %llu bytes "
					    "announced (was it truncated while being uploaded?)",
					    (unsigned long long)(off + got),
					    (unsigned long long)(off + len));
		got += (uint64_t)n;
	}
	return 0;
}

/* Reads every part once, in order, hashing as it goes; each goes up as soon as it is read. */
static int send_parts(struct run *r, up_async *a, const char *upload_id, int fd, const char *mem,
		      uint64_t psize, size_t nparts, EVP_MD_CTX *md)
{
	for (size_t i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * psize;
		uint64_t len = r->total - off < psize ? r->total - off : psize;
		struct part_job *pj = calloc(1, sizeof *pj);
		struct up_error e;
		if (!pj)
			return fail(r, -ENOMEM, &(struct up_error){.message = "out of memory"});
		*pj = (struct part_job){.run = r, .index = i, .slot = -1, .len = len};
		struct up_source src = {.kind = UP_SRC_MEM, .len = len, .placed = true, .place = off};
		if (mem) {
			src.mem = mem + off;
		} else {
			if ((pj->slot = take_slot(r)) < 0) {
				free(pj);
				return r->rc;
			}
			int rc = read_full(fd, r->bufs[pj->slot], off, len, &e);
			if (rc < 0) {
				pthread_mutex_lock(&r->mu);
				r->busy[pj->slot] = false;
				pthread_mutex_unlock(&r->mu);
				free(pj);
				return fail(r, rc, &e);
			}
			src.mem = r->bufs[pj->slot];
		}
		EVP_DigestUpdate(md, src.mem, (size_t)len);
		int rc = up_async_part_add(a, upload_id, &src, part_done, pj);
		if (rc < 0) {
			free(pj);
			return fail(r, rc, &(struct up_error){.message = "cannot queue a part"});
		}
	}
	return 0;
}

static int file_source(const struct up_file_upload *o, int *fd, bool *own, uint64_t *bytes,
		       struct up_error *err)
{
	*own = false;
	*fd = o->fd;
	if (o->path) {
		*fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return up_error_set(err, -errno, 0, "cannot open %s: %s", o->path,
					    strerror(errno));
		*own = true;
	}
	if (o->bytes) {
		*bytes = o->bytes;
	} else if (*fd >= 0) {
		struct stat sb;
		if (fstat(*fd, &sb) < 0)
			return up_error_set(err, -errno, 0, "cannot stat: %s", strerror(errno));
		*bytes = (uint64_t)sb.st_size;
	} else {
		*bytes = 0;
	}
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path;
}

int up_upload_file(up_client *c, const struct up_file_upload *o, struct up_upload *out,
		   struct up_error *err)
{
	if (!o || (!o->path && o->fd < 0 && !o->mem))
		return up_error_set(err, -EINVAL, 0, "one of path, fd or mem is required");
	if (o->mem && !o->filename)
		return up_error_set(err, -EINVAL, 0,
				    "filename is required for an upload from memory");
	uint64_t psize = o->part_size ? o->part_size : UP_DEFAULT_PART;
	if (psize > UP_MAX_PART)
		return up_error_set(err, -EINVAL, 0, "part_size is at most %u bytes", UP_MAX_PART);
	const char *filename = o->filename ? o->filename : base_name(o->path);
	if (!filename || !*filename)
		return up_error_set(err, -EINVAL, 0, "filename is required");
	unsigned parallel = o->parallel ? o->parallel : 4;

	int fd = -1;
	bool own_fd = false;
	uint64_t total = o->bytes;
	int rc = o->mem ? 0 : file_source(o, &fd, &own_fd, &total, err);
	if (rc == 0 && total > UP_MAX_UPLOAD)
		rc = up_error_set(err, -EFBIG, 0, "an upload holds at most %llu bytes",
				  (unsigned long long)UP_MAX_UPLOAD);
	size_t nparts = (size_t)((total + psize - 1) / psize);
	struct run r = {.o = o, .total = total, .nbufs = o->mem ? 0 : parallel + 1};
	unsigned nalloc = r.nbufs;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (rc == 0) {
		r.ids = calloc(nparts ? nparts : 1, sizeof *r.ids);
		r.bufs = calloc(r.nbufs ? r.nbufs : 1, sizeof *r.bufs);
		r.busy = calloc(r.nbufs ? r.nbufs : 1, sizeof *r.busy);
		if (!r.ids || !r.bufs || !r.busy)
			rc = up_error_set(err, -ENOMEM, 0, "out of memory");
		for (unsigned i = 0; rc == 0 && i < r.nbufs && i < nparts; i++)
			if (!(r.bufs[i] = malloc(psize)))
				rc = up_error_set(err, -ENOMEM, 0, "out of memory");
		if (nparts < r.nbufs) /* a small file needs no more buffers than parts */
			r.nbufs = (unsigned)nparts;
	}

	struct up_upload created = {0};
	if (rc == 0)
		rc = up_upload_create(c, total, filename,
				      o->mime_type ? o->mime_type : "application/octet-stream",
				      o->purpose ? o->purpose : "assistants", &created, err);
	bool made = rc == 0;
	char md5[33] = "";
	if (rc == 0) {
		up_async *a = NULL;
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (!md || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1 ||
		    (rc = up_async_new(c, parallel, &a)) < 0) {
			rc = up_error_set(err, rc < 0 ? rc : -ENOMEM, 0, "cannot start the parts");
		} else {
			send_parts(&r, a, created.id, fd, o->mem, psize, nparts, md);
			up_async_free(a); /* waits for every part in flight */
			if ((rc = r.rc) < 0 && err)
				*err = r.err;
			unsigned char h[EVP_MAX_MD_SIZE];
			unsigned hl = 0;
			EVP_DigestFinal_ex(md, h, &hl);
			for (unsigned i = 0; i < 16; i++)
				snprintf(md5 + 2 * i, 3, "%02x", h[i]);
		}
		EVP_MD_CTX_free(md);
	}
	if (rc == 0 && o->md5 && strcasecmp(o->md5, md5) != 0)
		rc = up_error_set(err, -EBADMSG, 0, "the content's MD5 is %s, not the expected %s",
				  md5, o->md5);
	if (rc == 0) {
		const char **ids = calloc(nparts ? nparts : 1, sizeof *ids);
		for (size_t i = 0; ids && i < nparts; i++)
			ids[i] = r.ids[i];
		rc = ids ? up_upload_complete(c, created.id, ids, nparts, md5, out, err)
			 : up_error_set(err, -ENOMEM, 0, "out of memory");
		free(ids);
	}
	if (rc < 0 && made) {
		/* Never leave a half-sent upload pending on the server. */
		struct up_upload cancelled = {0};
		struct up_error cerr;
		up_upload_cancel(c, created.id, &cancelled, &cerr);
		up_upload_clear(&cancelled);
	}
	up_upload_clear(&created);
	for (unsigned i = 0; r.bufs && i < nalloc; i++)
		free(r.bufs[i]);
	free(r.bufs);
	free(r.busy);
	free(r.ids);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	if (own_fd)
		close(fd);
	return rc;
}
