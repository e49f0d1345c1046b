/* up_upload_file: a whole file in parts. One reader walks the file once, hashing as it reads,
 * and hands each part to the async pool; `parallel` parts are in flight while the next is
 * read, in at most parallel + 1 buffers. With a resume record, the session and each part
 * acknowledged are kept there, and a call made again sends only what is missing; without
 * one, any failure cancels the upload. */
#include "api.h"
#include "client.h"
#include "errors.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct run {
	const struct up_file_upload *o;
	const char *upload_id; /* the session the parts go to */
	bool sequential;       /* a source read in order (a pipe) */
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
	/* one append per part, with no lock held (the session id does not change while parts
	 * are in flight); a line lost to a crash costs that part sent again */
	if (rc == 0 && r->o->resume_path)
		up_journal_add_part(r->o->resume_path, r->upload_id, pj->index, part->id);
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

static int read_full(int fd, bool sequential, char *buf, uint64_t off, uint64_t len,
		     struct up_error *err)
{
	uint64_t got = 0;
	while (got < len) {
		ssize_t n = sequential ? read(fd, buf + got, (size_t)(len - got))
				       : pread(fd, buf + got, (size_t)(len - got), (off_t)(off + got));
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

/* A source read in order must end where it was said to: one byte more is an error. */
static int check_end(struct run *r, int fd, struct up_error *err)
{
	char extra;
	ssize_t n;
	while ((n = read(fd, &extra, 1)) < 0 && errno == EINTR)
		;
	if (n > 0)
		return fail(r, up_error_set(err, -EFBIG, 0,
					    "the input holds more than the %llu bytes announced",
					    (unsigned long long)r->total),
			    err);
	return 0;
}

/* Hashes a part the server already has (a resumed upload): it is read, not sent. */
static int hash_only(struct run *r, int fd, const char *mem, uint64_t off, uint64_t len,
		     EVP_MD_CTX *md)
{
	if (mem) {
		EVP_DigestUpdate(md, mem + off, (size_t)len);
		return 0;
	}
	int slot = take_slot(r);
	if (slot < 0)
		return r->rc;
	struct up_error e;
	int rc = read_full(fd, r->sequential, r->bufs[slot], off, len, &e);
	if (rc == 0)
		EVP_DigestUpdate(md, r->bufs[slot], (size_t)len);
	pthread_mutex_lock(&r->mu);
	r->busy[slot] = false;
	pthread_mutex_unlock(&r->mu);
	return rc < 0 ? fail(r, rc, &e) : 0;
}

/* Reads every part once, in order, hashing as it goes; each goes up as soon as it is read.
 * A part whose id is known already (resumed) is only hashed. */
static int send_parts(struct run *r, up_async *a, int fd, const char *mem, uint64_t psize,
		      size_t nparts, EVP_MD_CTX *md)
{
	for (size_t i = 0; i < nparts; i++) {
		uint64_t off = (uint64_t)i * psize;
		uint64_t len = r->total - off < psize ? r->total - off : psize;
		if (r->ids[i][0]) {
			int rc = hash_only(r, fd, mem, off, len, md);
			if (rc < 0)
				return rc;
			continue;
		}
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
			int rc = read_full(fd, r->sequential, r->bufs[pj->slot], off, len, &e);
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
		int rc = up_async_part_add(a, r->upload_id, &src, part_done, pj);
		if (rc < 0) {
			free(pj);
			return fail(r, rc, &(struct up_error){.message = "cannot queue a part"});
		}
	}
	return r->sequential && fd >= 0 ? check_end(r, fd, &(struct up_error){0}) : 0;
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

/* Whether a failure leaves the session worth keeping for a call made again: the server was
 * away or overloaded, not a refusal and not a local fault. */
static bool transient(int rc, const struct up_error *e)
{
	if (e->status == 429 || e->status >= 500)
		return true;
	return e->status == 0 && (rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -ECONNRESET ||
				  rc == -EHOSTUNREACH || rc == -ENETUNREACH);
}

static void cancel_quietly(up_client *c, const char *upload_id);

/* The record a call made again resumes from: the same source, name, options and size,
 * and a session that has not expired. Fills r->ids with the parts acknowledged. The
 * session of a record that does not match is cancelled. */
static bool resume_load(up_client *c, const struct up_file_upload *o,
			const struct up_journal_rec *want, struct run *r, char upload_id[UP_ID_MAX])
{
	struct up_journal_rec rec;
	if (up_journal_read(o->resume_path, &rec) < 0)
		return false;
	bool same = rec.upload_id[0] && strcmp(rec.filename, want->filename) == 0 &&
		    strcmp(rec.mime_type, want->mime_type) == 0 &&
		    strcmp(rec.purpose, want->purpose) == 0 && strcmp(rec.spool, want->spool) == 0 &&
		    rec.size == want->size && rec.part_size == want->part_size &&
		    rec.nparts == want->nparts &&
		    (rec.expires_at == 0 || rec.expires_at > (int64_t)time(NULL) + 60);
	if (same) {
		memcpy(upload_id, rec.upload_id, UP_ID_MAX);
		for (size_t i = 0; i < rec.nparts; i++) {
			memcpy(r->ids[i], rec.part_ids[i], UP_ID_MAX);
			if (rec.part_ids[i][0])
				r->sent += i + 1 < rec.nparts ? rec.part_size
							      : rec.size - i * rec.part_size;
		}
	} else if (rec.upload_id[0]) {
		cancel_quietly(c, rec.upload_id);
	}
	up_journal_rec_clear(&rec);
	return same;
}

static void cancel_quietly(up_client *c, const char *upload_id)
{
	struct up_upload cancelled = {0};
	struct up_error cerr;
	up_upload_cancel(c, upload_id, &cancelled, &cerr);
	up_upload_clear(&cancelled);
}

/* One session's worth: its parts (those not acknowledged yet), the MD5 and complete. */
static int send_and_complete(up_client *c, struct run *r, int fd, uint64_t psize,
			     size_t nparts, unsigned parallel, struct up_upload *out,
			     struct up_error *err)
{
	const struct up_file_upload *o = r->o;
	char md5[33] = "";
	up_async *a = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc;
	if (!md || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1 ||
	    (rc = up_async_new(c, parallel, &a)) < 0) {
		rc = up_error_set(err, -ENOMEM, 0, "cannot start the parts");
	} else {
		send_parts(r, a, fd, o->mem, psize, nparts, md);
		up_async_free(a); /* waits for every part in flight */
		if ((rc = r->rc) < 0 && err)
			*err = r->err;
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;
		EVP_DigestFinal_ex(md, h, &hl);
		for (unsigned i = 0; i < 16; i++)
			snprintf(md5 + 2 * i, 3, "%02x", h[i]);
	}
	EVP_MD_CTX_free(md);
	if (rc == 0 && o->md5 && strcasecmp(o->md5, md5) != 0)
		rc = up_error_set(err, -EBADMSG, 0, "the content's MD5 is %s, not the expected %s",
				  md5, o->md5);
	if (rc == 0) {
		const char **ids = calloc(nparts ? nparts : 1, sizeof *ids);
		for (size_t i = 0; ids && i < nparts; i++)
			ids[i] = r->ids[i];
		rc = ids ? up_upload_complete(c, r->upload_id, ids, nparts, md5, out, err)
			 : up_error_set(err, -ENOMEM, 0, "out of memory");
		free(ids);
	}
	return rc;
}

int up_upload_file(up_client *c, const struct up_file_upload *o, struct up_upload *out,
		   struct up_error *err)
{
	struct up_error local;
	if (!err)
		err = &local; /* its status decides what a failure keeps */
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
	const char *mime = o->mime_type ? o->mime_type : "application/octet-stream";
	const char *purpose = o->purpose ? o->purpose : "assistants";

	int fd = -1;
	bool own_fd = false;
	uint64_t total = o->bytes;
	int rc = o->mem ? 0 : file_source(o, &fd, &own_fd, &total, err);
	bool sequential = fd >= 0 && lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE;
	if (rc == 0 && sequential && !o->bytes)
		rc = up_error_set(err, -EINVAL, 0, "bytes is required for a pipe");
	if (rc == 0 && sequential && o->resume_path)
		rc = up_error_set(err, -EINVAL, 0, "a pipe cannot be resumed: no resume_path");
	if (rc == 0 && total > UP_MAX_UPLOAD)
		rc = up_error_set(err, -EFBIG, 0, "an upload holds at most %llu bytes",
				  (unsigned long long)UP_MAX_UPLOAD);
	size_t nparts = (size_t)((total + psize - 1) / psize);
	struct run r = {.o = o, .total = total, .sequential = sequential,
			.nbufs = o->mem ? 0 : parallel + 1};
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

	/* what the resume record says of this upload (its source: the path given) */
	char source[4096] = "";
	if (o->path && !realpath(o->path, source))
		snprintf(source, sizeof source, "%s", o->path);
	struct up_journal_rec want = {.filename = (char *)filename,
				      .mime_type = (char *)mime,
				      .purpose = (char *)purpose,
				      .spool = source,
				      .size = total,
				      .part_size = psize,
				      .nparts = nparts};
	char upload_id[UP_ID_MAX] = "";
	bool resumed = rc == 0 && o->resume_path && resume_load(c, o, &want, &r, upload_id);
	bool made = resumed;
	/* two rounds at most: a resumed session that is gone or no longer matches the source
	 * is cancelled, and the upload begun again in a new one */
	for (int round = 0; rc == 0 && round < 2; round++) {
		if (!upload_id[0]) {
			struct up_upload created = {0};
			rc = up_upload_create(c, total, filename, mime, purpose, &created, err);
			if (rc < 0)
				break;
			made = true;
			memcpy(upload_id, created.id, UP_ID_MAX);
			if (o->resume_path) {
				want.expires_at = created.expires_at;
				want.part_ids = r.ids; /* all empty */
				memcpy(want.upload_id, upload_id, UP_ID_MAX);
				up_journal_write(o->resume_path, &want); /* best effort */
			}
			up_upload_clear(&created);
		}
		r.upload_id = upload_id;
		if (o->progress && r.sent)
			o->progress(o->progress_ud, r.sent, total);
		rc = send_and_complete(c, &r, fd, psize, nparts, parallel, out, err);
		bool gone = rc < 0 && resumed && round == 0 && !r.sequential &&
			    (err->status == 404 || err->status == 400 || err->status == 409);
		if (!gone)
			break;
		cancel_quietly(c, upload_id);
		upload_id[0] = '\0';
		memset(r.ids, 0, (nparts ? nparts : 1) * sizeof *r.ids);
		r.rc = 0;
		r.sent = 0;
		rc = 0;
	}
	/* Never leave a half-sent upload pending on the server, unless a call made again
	 * can finish it (a resume record, and the server away rather than refusing). */
	bool keep = rc < 0 && o->resume_path && made && transient(rc, err);
	if (rc < 0 && made && !keep)
		cancel_quietly(c, upload_id);
	if (o->resume_path && !keep)
		up_journal_remove(o->resume_path);
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
