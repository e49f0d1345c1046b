#include "writer.h"

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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_BUF (1u << 20)
#define HASH_INLINE (1u << 20) /* files up to this size hash on the write path */
#define HQ_MAX (1u << 20)      /* the hasher's ring: bytes waiting for the file's MD5 */

struct wpart {
	char id[UP_ID_MAX];
	char md5[33];
	uint64_t len;
	bool queued; /* handed to the pipeline (in flight or done) */
	bool sent;   /* acknowledged */
};

struct up_writer {
	struct up_writer_config cfg;
	char *spool;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a part finished */

	uint64_t size;	     /* logical size */
	uint64_t hashed;     /* the contiguous prefix hashed so far */
	bool rescan;	     /* bytes behind `hashed` changed: hash the spool again at finish */
	EVP_MD_CTX *md_all;  /* the file's MD5, as the bytes pass in order */
	struct wpart *parts; /* sealed parts, in file order */
	size_t nparts, cap;
	unsigned inflight;

	enum up_writer_state state;
	bool finishing;
	char upload_id[UP_ID_MAX];
	int64_t expires_at; /* of the upload session (server time) */
	bool expired;	    /* the session expired: finish makes a new one */
	uint64_t announced; /* the size the upload was created with */
	bool announcing;    /* announce is creating the upload: finish waits for it */
	char *upload_name;  /* and the name */
	uint64_t bytes_sent;
	int err; /* latched: negative errno */
	char errmsg[512];
	char file_id[UP_ID_MAX];
	char md5[33];
	bool md5_known; /* restored from a journal: the spool is not hashed again */
	bool keep;
	char *journal;		/* the record's path, or NULL */
	char *jmime, *jpurpose; /* for the record */

	/* Past HASH_INLINE the file's MD5 runs on a thread of its own: write() hands it a copy
	 * of the bytes and returns, so hashing overlaps the writer's next write. md_all is the
	 * hasher's while it runs; everyone else stops it first (hasher_stop). */
	pthread_mutex_t hq_mu;
	pthread_cond_t hq_cv;
	char *hq_buf;		/* a ring of HQ_MAX bytes: [hq_head, hq_head + hq_bytes) waits */
	size_t hq_head, hq_bytes;
	bool hq_stop, hq_running;
	pthread_t hq_thr;
};

static void latch(struct up_writer *w, int err, const char *msg)
{
	if (w->err)
		return;
	w->err = err;
	snprintf(w->errmsg, sizeof w->errmsg, "%s", msg);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Records what a restart needs to finish the upload (lock held): the whole record when a
 * session starts or the file closes; a part acknowledged after that is a line appended to
 * its log (journal.h), with no fsync under the writer's lock. */
/* A record exists from the session's start, once the file has a name. */
static bool journaled(const struct up_writer *w)
{
	return w->journal && w->upload_id[0] && w->upload_name;
}

static void journal_save(struct up_writer *w)
{
	if (!journaled(w))
		return;
	uint64_t ps = w->cfg.part_size;
	size_t nparts = (size_t)((w->size + ps - 1) / ps);
	struct up_journal_rec r = {
	    .filename = w->upload_name,
	    .mime_type = w->jmime ? w->jmime : "application/octet-stream",
	    .purpose = w->jpurpose ? w->jpurpose : "assistants",
	    .spool = w->spool,
	    .size = w->size,
	    .part_size = ps,
	    .expires_at = w->expires_at,
	    .nparts = nparts,
	};
	memcpy(r.upload_id, w->upload_id, UP_ID_MAX);
	if (w->finishing || w->md5_known)
		memcpy(r.md5, w->md5, sizeof r.md5);
	r.part_ids = calloc(nparts ? nparts : 1, sizeof *r.part_ids);
	if (!r.part_ids)
		return;
	for (size_t i = 0; i < nparts && i < w->nparts; i++)
		if (w->parts[i].sent)
			memcpy(r.part_ids[i], w->parts[i].id, UP_ID_MAX);
	up_journal_write(w->journal, &r);
	free(r.part_ids);
}

static void journal_part(struct up_writer *w, size_t index)
{
	if (journaled(w))
		up_journal_add_part(w->journal, w->upload_id, index, w->parts[index].id);
}

static void journal_drop(struct up_writer *w)
{
	if (w->journal)
		up_journal_remove(w->journal);
}

static void set_meta(struct up_writer *w, const char *filename, const char *mime,
		     const char *purpose)
{
	if (!w->upload_name || strcmp(w->upload_name, filename) != 0) {
		free(w->upload_name);
		w->upload_name = strdup(filename);
	}
	free(w->jmime);
	free(w->jpurpose);
	w->jmime = dup_or_null(mime);
	w->jpurpose = dup_or_null(purpose);
}

static void *hasher_main(void *arg)
{
	struct up_writer *w = arg;
	pthread_mutex_lock(&w->hq_mu);
	for (;;) {
		while (!w->hq_bytes && !w->hq_stop)
			pthread_cond_wait(&w->hq_cv, &w->hq_mu);
		if (!w->hq_bytes)
			break; /* stopped, and nothing left */
		size_t pos = w->hq_head;
		size_t n = w->hq_bytes < HQ_MAX - pos ? w->hq_bytes : HQ_MAX - pos;
		pthread_mutex_unlock(&w->hq_mu);
		/* the writer only fills the ring past hq_head + hq_bytes: these bytes stay */
		EVP_DigestUpdate(w->md_all, w->hq_buf + pos, n);
		pthread_mutex_lock(&w->hq_mu);
		w->hq_head = (pos + n) % HQ_MAX;
		w->hq_bytes -= n;
		pthread_cond_broadcast(&w->hq_cv);
	}
	pthread_mutex_unlock(&w->hq_mu);
	return NULL;
}

/* Waits until the hasher has taken in every byte handed to it, and ends it: md_all is the
 * caller's again. */
static void hasher_stop(struct up_writer *w)
{
	if (!w->hq_running)
		return;
	pthread_mutex_lock(&w->hq_mu);
	w->hq_stop = true;
	pthread_cond_broadcast(&w->hq_cv);
	pthread_mutex_unlock(&w->hq_mu);
	pthread_join(w->hq_thr, NULL);
	free(w->hq_buf);
	w->hq_buf = NULL;
	w->hq_head = 0;
	w->hq_running = false;
	w->hq_stop = false;
}

static void hasher_start(struct up_writer *w)
{
	if (!(w->hq_buf = malloc(HQ_MAX)))
		return;
	w->hq_running = pthread_create(&w->hq_thr, NULL, hasher_main, w) == 0;
	if (!w->hq_running) {
		free(w->hq_buf);
		w->hq_buf = NULL;
	}
}

/* The file's MD5 over the next bytes, in order: inline for small files and while
 * finishing, else by the hasher thread from a copy in its ring (lock held). */
static void md_update(struct up_writer *w, const char *buf, size_t n)
{
	if (!w->finishing && !w->hq_running && w->hashed + n > HASH_INLINE)
		hasher_start(w);
	if (w->finishing || !w->hq_running) {
		EVP_DigestUpdate(w->md_all, buf, n);
		return;
	}
	while (n) {
		pthread_mutex_lock(&w->hq_mu);
		while (w->hq_bytes == HQ_MAX) /* back-pressure */
			pthread_cond_wait(&w->hq_cv, &w->hq_mu);
		size_t tail = (w->hq_head + w->hq_bytes) % HQ_MAX;
		size_t room = HQ_MAX - w->hq_bytes;
		size_t k = n < room ? n : room;
		if (k > HQ_MAX - tail)
			k = HQ_MAX - tail;
		pthread_mutex_unlock(&w->hq_mu);
		memcpy(w->hq_buf + tail, buf, k); /* past what the hasher may read */
		pthread_mutex_lock(&w->hq_mu);
		w->hq_bytes += k;
		pthread_cond_broadcast(&w->hq_cv);
		pthread_mutex_unlock(&w->hq_mu);
		buf += k;
		n -= k;
	}
}

static void md_reset(struct up_writer *w)
{
	hasher_stop(w);
	EVP_DigestInit_ex(w->md_all, EVP_md5(), NULL);
}

static void hex(EVP_MD_CTX *md, char out[33])
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(md, h, &n);
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* A writer on the spool at path, opened with extra open flags. A failure never removes
 * the file: it may be another writer's, or a spool a journal still names. */
static int writer_open(const struct up_writer_config *cfg, const char *path, int flags,
		       struct up_writer **out)
{
	struct up_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	w->cfg = *cfg;
	w->fd = -1;
	w->keep = true; /* until the file is ours */
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_mutex_init(&w->hq_mu, NULL);
	pthread_cond_init(&w->hq_cv, NULL);
	w->md_all = EVP_MD_CTX_new();
	w->spool = strdup(path);
	w->journal = dup_or_null(cfg->journal_path);
	int rc = (w->md_all && w->spool) ? 0 : -ENOMEM;
	if (rc == 0 && (w->fd = open(w->spool, O_RDWR | O_CLOEXEC | flags, 0600)) < 0)
		rc = -errno;
	if (rc < 0) {
		up_writer_free(w);
		return rc;
	}
	w->keep = false;
	md_reset(w);
	*out = w;
	return 0;
}

int up_writer_new(const struct up_writer_config *cfg, struct up_writer **out)
{
	return writer_open(cfg, cfg->spool_path, O_CREAT | O_EXCL, out);
}

void up_writer_free(struct up_writer *w)
{
	if (!w)
		return;
	up_writer_sync(w);
	hasher_stop(w);
	pthread_mutex_destroy(&w->hq_mu);
	pthread_cond_destroy(&w->hq_cv);
	if (w->fd >= 0)
		close(w->fd);
	if (w->spool && !w->keep)
		unlink(w->spool);
	EVP_MD_CTX_free(w->md_all);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->parts);
	free(w->upload_name);
	free(w->spool);
	free(w->journal);
	free(w->jmime);
	free(w->jpurpose);
	free(w);
}

int up_writer_keep_spool(struct up_writer *w, const char *path)
{
	if (rename(w->spool, path) < 0)
		return -errno;
	w->keep = true;
	return 0;
}

static int push_part(struct up_writer *w, uint64_t len)
{
	if (w->nparts == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct wpart *np = realloc(w->parts, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		w->parts = np;
		w->cap = cap;
	}
	struct wpart *p = &w->parts[w->nparts++];
	memset(p, 0, sizeof *p);
	p->len = len;
	return 0;
}

/* Hashes bytes that continue the hashed prefix, sealing a part at each boundary. */
static int hash_on(struct up_writer *w, const char *buf, size_t len)
{
	uint64_t ps = w->cfg.part_size;
	while (len) {
		uint64_t in_part = w->hashed - (uint64_t)w->nparts * ps;
		size_t n = (size_t)(ps - in_part < len ? ps - in_part : len);
		md_update(w, buf, n);
		w->hashed += n;
		buf += n;
		len -= n;
		if (w->hashed == (uint64_t)(w->nparts + 1) * ps) {
			int rc = push_part(w, ps);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Hashes the spool from the hashed prefix to the end: the second read that out-of-order
 * writes cost. */
static int hash_spool(struct up_writer *w)
{
	char *buf = malloc(HASH_BUF);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	while (rc == 0 && w->hashed < w->size) {
		uint64_t want = w->size - w->hashed < HASH_BUF ? w->size - w->hashed : HASH_BUF;
		ssize_t n = pread(w->fd, buf, (size_t)want, (off_t)w->hashed);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
		} else if (n == 0) {
			/* a hole at the end of a sparse spool reads as nothing: it is zeros */
			memset(buf, 0, (size_t)want);
			n = (ssize_t)want;
		}
		if (rc == 0)
			rc = hash_on(w, buf, (size_t)n);
	}
	free(buf);
	return rc;
}

/* A part on its way: its bytes are read from the spool as they are sent, and hashed as
 * they pass (the part's MD5), on the pipeline's worker, in parallel with the others; the
 * write path hashes only the file's MD5, which has to be sequential. */
struct part_ctx {
	struct up_writer *w;
	size_t index;
	int fd;
	uint64_t offset;
	EVP_MD_CTX *md;
};

static ssize_t part_read(void *ud, uint64_t off, void *buf, size_t len)
{
	struct part_ctx *pc = ud;
	if (off == 0) /* the first read of an attempt: a retry hashes the same bytes again */
		EVP_DigestInit_ex(pc->md, EVP_md5(), NULL);
	ssize_t n;
	do
		n = pread(pc->fd, buf, len, (off_t)(pc->offset + off));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	EVP_DigestUpdate(pc->md, buf, (size_t)n);
	return n;
}

/* A session past its hour: the server refuses its parts and complete. The bytes are all in
 * the spool, so a new session can take them again (lock held). */
static bool session_expired(const struct up_writer *w, const struct up_error *err)
{
	if (err->status != 400 && err->status != 404)
		return false;
	return strstr(err->message, "expired") ||
	       (w->expires_at && (int64_t)time(NULL) >= w->expires_at);
}

static void part_done(void *ud, int rc, const struct up_part *part, const struct up_error *err)
{
	struct part_ctx *pc = ud;
	struct up_writer *w = pc->w;
	pthread_mutex_lock(&w->mu);
	struct wpart *p = &w->parts[pc->index];
	if (rc == 0) {
		memcpy(p->id, part->id, UP_ID_MAX);
		hex(pc->md, p->md5);
		p->sent = true;
		w->bytes_sent += p->len;
		journal_part(w, pc->index);
	} else if (w->state != UP_W_CANCELLED && session_expired(w, err)) {
		w->expired = true; /* not an error: finish starts a new session */
	} else if (w->state == UP_W_UPLOADING && w->rescan) {
		/* bytes under this session changed (a truncate, an overwrite), maybe under this
		 * very part: finish cancels the session and sends the file again, so a part that
		 * failed meanwhile costs nothing */
	} else if (w->state != UP_W_CANCELLED) {
		char msg[512];
		snprintf(msg, sizeof msg, "part %zu: %.480s", pc->index + 1, err->message);
		latch(w, rc, msg);
	}
	w->inflight--;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	EVP_MD_CTX_free(pc->md);
	free(pc);
}

/* Hands every sealed, unqueued part to the pipeline. Called without the lock held: the
 * pipeline may block (back-pressure), and its callbacks take the lock. */
static int send_sealed(struct up_writer *w)
{
	for (;;) {
		pthread_mutex_lock(&w->mu);
		size_t i = 0;
		while (i < w->nparts && w->parts[i].queued)
			i++;
		/* past the announced size the session cannot complete: finish redoes it */
		if (i == w->nparts || w->state != UP_W_UPLOADING || w->err || w->expired ||
		    w->size > w->announced) {
			int rc = w->err;
			pthread_mutex_unlock(&w->mu);
			return rc;
		}
		struct part_ctx *pc = malloc(sizeof *pc);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		if (!pc || !md) {
			free(pc);
			EVP_MD_CTX_free(md);
			pthread_mutex_unlock(&w->mu);
			return -ENOMEM;
		}
		*pc = (struct part_ctx){.w = w,
					.index = i,
					.fd = w->fd,
					.offset = (uint64_t)i * w->cfg.part_size,
					.md = md};
		struct up_source src = {
		    .kind = UP_SRC_CB, .read = part_read, .ud = pc, .len = w->parts[i].len};
		w->parts[i].queued = true;
		w->inflight++;
		char upload_id[UP_ID_MAX];
		memcpy(upload_id, w->upload_id, UP_ID_MAX);
		pthread_mutex_unlock(&w->mu);
		int rc = up_async_part_add(w->cfg.async, upload_id, &src, part_done, pc);
		if (rc < 0) {
			EVP_MD_CTX_free(pc->md);
			free(pc);
			pthread_mutex_lock(&w->mu);
			w->inflight--;
			latch(w, rc, "cannot queue a part");
			pthread_mutex_unlock(&w->mu);
			return rc;
		}
	}
}

/* The spool is written at most this much per call. The page cache sizes a new folio by
 * the write: a 1 MiB write gets one 1 MiB folio. On the 2-core VM of bench/results.md,
 * filling folios of 512 KiB or more made a 2 GiB cp take a third more CPU than folios of
 * 64-256 KiB, for the same bytes (A/B). Eight calls per MiB cost next to nothing. */
#define SPOOL_WRITE_MAX ((size_t)128 << 10)

static int pwrite_all(int fd, const char *buf, size_t len, uint64_t off)
{
	while (len) {
		size_t chunk = len < SPOOL_WRITE_MAX ? len : SPOOL_WRITE_MAX;
		ssize_t n = pwrite(fd, buf, chunk, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int up_writer_write(struct up_writer *w, const void *buf, size_t len, uint64_t off)
{
	pthread_mutex_lock(&w->mu);
	if (w->state == UP_W_CANCELLED) {
		/* like writes to an unlinked file: they succeed, and go nowhere */
		int rc = pwrite_all(w->fd, buf, len, off);
		if (rc == 0 && off + len > w->size)
			w->size = off + len;
		pthread_mutex_unlock(&w->mu);
		return rc;
	}
	int rc = w->err;
	if (rc == 0 && (w->finishing || w->state == UP_W_COMPLETED))
		rc = -EPERM;
	if (rc == 0 && off + len > w->cfg.max_size) {
		char msg[128];
		snprintf(msg, sizeof msg, "the file would pass max_file_size (%llu bytes)",
			 (unsigned long long)w->cfg.max_size);
		latch(w, -EFBIG, msg);
		rc = -EFBIG;
	}
	if (rc == 0 && off + len > UP_FILES_MAX && up_client_files_only(w->cfg.client)) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "the server has no Uploads API, and the Files API takes at most %llu "
			 "bytes",
			 (unsigned long long)UP_FILES_MAX);
		latch(w, -EFBIG, msg);
		rc = -EFBIG;
	}
	if (rc == 0 && (rc = pwrite_all(w->fd, buf, len, off)) < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "writing the spool: %s", strerror(-rc));
		latch(w, rc, msg);
		/* a file that cannot be complete will never be sent: give its space back so
		 * the other files of the mount can go on (cache_dir full) */
		if (rc == -ENOSPC && ftruncate(w->fd, 0) == 0)
			w->state = w->state == UP_W_PENDING ? UP_W_FAILED : w->state;
	}
	if (rc == 0) {
		if (off + len > w->size)
			w->size = off + len;
		if (off < w->hashed)
			w->rescan = true; /* bytes already hashed changed */
		else if (off == w->hashed && !w->rescan)
			rc = hash_on(w, buf, len);
	}
	bool send = rc == 0 && w->state == UP_W_UPLOADING && !w->rescan;
	pthread_mutex_unlock(&w->mu);
	if (send)
		rc = send_sealed(w);
	return rc;
}

int up_writer_read(struct up_writer *w, void *buf, size_t len, uint64_t off, size_t *got)
{
	pthread_mutex_lock(&w->mu);
	uint64_t size = w->size;
	pthread_mutex_unlock(&w->mu);
	*got = 0;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	ssize_t n = pread(w->fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	/* a sparse tail reads short: the rest is zeros */
	if ((size_t)n < len)
		memset((char *)buf + n, 0, len - (size_t)n);
	*got = len;
	return 0;
}

int up_writer_truncate(struct up_writer *w, uint64_t size)
{
	pthread_mutex_lock(&w->mu);
	int rc = w->err;
	if (rc == 0 && (w->finishing || w->state == UP_W_COMPLETED))
		rc = -EPERM;
	if (rc == 0 && size > w->cfg.max_size)
		rc = -EFBIG;
	if (rc == 0 && ftruncate(w->fd, (off_t)size) < 0)
		rc = -errno;
	if (rc == 0) {
		if (size == 0 && w->state == UP_W_PENDING) {
			/* O_TRUNC of a file still local: start over */
			w->hashed = 0;
			w->nparts = 0;
			w->rescan = false;
			md_reset(w);
		} else if (size < w->hashed) {
			w->rescan = true;
		}
		w->size = size;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static void cancel_remote(struct up_writer *w, const char *upload_id)
{
	struct up_upload u = {0};
	struct up_error e;
	up_upload_cancel(w->cfg.client, upload_id, &u, &e);
	up_upload_clear(&u);
}

int up_writer_announce(struct up_writer *w, uint64_t size, const char *filename,
		       const char *mime_type, const char *purpose, struct up_error *err)
{
	if (size > w->cfg.max_size)
		return up_error_set(err, -EFBIG, 0, "the announced size passes max_file_size");
	if (up_client_files_only(w->cfg.client))
		return 0; /* no sessions on this server: the file goes up whole at finish */
	pthread_mutex_lock(&w->mu);
	bool fresh = w->state == UP_W_PENDING && !w->err && !w->finishing && !w->announcing;
	w->announcing = fresh;
	pthread_mutex_unlock(&w->mu);
	if (!fresh)
		return 0; /* only the first announcement starts an upload */
	struct up_upload up;
	int rc = up_upload_create(w->cfg.client, size, filename, mime_type, purpose, &up, err);
	bool no_uploads = rc == -ENOENT && err && err->status == 404;
	if (no_uploads)
		up_client_mark_files_only(w->cfg.client);
	pthread_mutex_lock(&w->mu);
	/* a cancel, an error or more bytes than announced may have come first: then the
	 * session is of no use. A finish waiting for it decides for itself. */
	bool use = rc == 0 && w->state == UP_W_PENDING && !w->err && w->size <= size;
	if (use) {
		memcpy(w->upload_id, up.id, UP_ID_MAX);
		w->expires_at = up.expires_at;
		w->announced = size;
		set_meta(w, filename, mime_type, purpose);
		w->state = UP_W_UPLOADING;
		journal_save(w); /* not closed yet: a restart cancels this session */
	}
	w->announcing = false;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (no_uploads)
		return 0; /* a Files-only server: the file goes up whole at finish */
	if (rc < 0)
		return rc; /* not latched: the upload will be tried again at finish */
	if (!use)
		cancel_remote(w, up.id);
	up_upload_clear(&up);
	return use ? send_sealed(w) : 0;
}

static void wait_idle_locked(struct up_writer *w)
{
	while (w->inflight)
		pthread_cond_wait(&w->cv, &w->mu);
}

int up_writer_sync(struct up_writer *w)
{
	pthread_mutex_lock(&w->mu);
	wait_idle_locked(w);
	int rc = w->err;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Drops an upload begun under another name or size, or before bytes it sent changed. */
static void restart_locked(struct up_writer *w)
{
	char id[UP_ID_MAX];
	memcpy(id, w->upload_id, UP_ID_MAX);
	w->upload_id[0] = '\0';
	w->state = UP_W_PENDING;
	w->bytes_sent = 0;
	for (size_t i = 0; i < w->nparts; i++)
		w->parts[i].queued = w->parts[i].sent = false;
	pthread_mutex_unlock(&w->mu);
	cancel_remote(w, id);
	pthread_mutex_lock(&w->mu);
}

static int fail_locked(struct up_writer *w, int rc, const char *msg)
{
	latch(w, rc, msg);
	w->state = UP_W_FAILED;
	return w->err;
}

/* A Files-only server: the whole spool in one POST /files (lock not held). The Files API
 * checks no MD5, so the byte count the server reports is checked instead. */
static int files_only_upload(struct up_writer *w, uint64_t size, const char *filename,
			     const char *purpose, struct up_upload *out, struct up_error *err)
{
	if (size > UP_FILES_MAX)
		return up_error_set(err, -EFBIG, 404,
				    "the server has no Uploads API (404), and %llu bytes pass the "
				    "Files API's limit of %llu",
				    (unsigned long long)size, (unsigned long long)UP_FILES_MAX);
	struct up_source src = {.kind = UP_SRC_FD, .len = size, .fd = w->fd, .offset = 0};
	memset(out, 0, sizeof *out);
	int rc = up_file_create(w->cfg.client, &src, filename, purpose, &out->file, err);
	if (rc < 0)
		return rc;
	out->has_file = true;
	out->bytes = size;
	if (out->file.bytes != size) {
		struct up_error e;
		up_file_delete(w->cfg.client, out->file.id, &e);
		return up_error_set(err, -EIO, 200, "the server stored %llu bytes of %llu",
				    (unsigned long long)out->file.bytes,
				    (unsigned long long)size);
	}
	return 0;
}

int up_writer_finish(struct up_writer *w, const char *filename, const char *mime_type,
		     const char *purpose, struct up_upload *out, struct up_error *err)
{
	pthread_mutex_lock(&w->mu);
	if (w->state == UP_W_COMPLETED || w->finishing || w->state == UP_W_CANCELLED) {
		int rc = w->state == UP_W_CANCELLED ? -ECANCELED : -EALREADY;
		pthread_mutex_unlock(&w->mu);
		return up_error_set(err, rc, 0, "the upload is already %s",
				    rc == -ECANCELED ? "cancelled" : "finished");
	}
	w->finishing = true;
	hasher_stop(w); /* from here on the file's MD5 is hashed inline */
	while (w->announcing) /* its session is about to exist: use it, not a second one */
		pthread_cond_wait(&w->cv, &w->mu);
	wait_idle_locked(w);
	int rc = w->err;
	if (rc < 0) {
		up_error_set(err, rc, 0, "%s", w->errmsg);
		goto fail;
	}
	if (w->state == UP_W_UPLOADING &&
	    (w->announced != w->size || w->rescan || strcmp(w->upload_name, filename) != 0))
		restart_locked(w);
	if (w->rescan) {
		w->hashed = 0;
		w->nparts = 0;
		w->rescan = false;
		md_reset(w);
	}
	if ((rc = hash_spool(w)) < 0) {
		up_error_set(err, rc, 0, "reading the spool: %s", strerror(-rc));
		goto fail;
	}
	uint64_t tail = w->size - (uint64_t)w->nparts * w->cfg.part_size;
	if (tail > 0 && (rc = push_part(w, tail)) < 0) {
		up_error_set(err, rc, 0, "out of memory");
		goto fail;
	}
	if (!w->md5_known)
		hex(w->md_all, w->md5);
	set_meta(w, filename, mime_type, purpose);
	journal_save(w); /* closed: from here on a restart can finish it */
	uint64_t size = w->size;
	/* A session that expires meanwhile is replaced, and every part sent again from the
	 * spool: up to three sessions. */
	for (int round = 0;; round++) {
		if (w->expired) {
			restart_locked(w);
			w->expired = false;
		}
		bool need_create = w->state != UP_W_UPLOADING;
		pthread_mutex_unlock(&w->mu);

		if (need_create) {
			struct up_upload up;
			rc = -ENOENT;
			if (!up_client_files_only(w->cfg.client)) {
				rc = up_upload_create(w->cfg.client, size, filename, mime_type,
						      purpose, &up, err);
				if (rc == -ENOENT && err && err->status == 404)
					up_client_mark_files_only(w->cfg.client);
			}
			if (up_client_files_only(w->cfg.client)) {
				rc = files_only_upload(w, size, filename, purpose, out, err);
				pthread_mutex_lock(&w->mu);
				if (rc < 0)
					goto fail;
				if (w->state == UP_W_CANCELLED) {
					/* rm while the file went up: it goes */
					w->finishing = false;
					pthread_mutex_unlock(&w->mu);
					struct up_error e;
					up_file_delete(w->cfg.client, out->file.id, &e);
					return up_error_set(err, -ECANCELED, 0,
							    "the upload was cancelled");
				}
				w->bytes_sent = size;
				goto completed;
			}
			pthread_mutex_lock(&w->mu);
			if (rc < 0)
				goto fail;
			memcpy(w->upload_id, up.id, UP_ID_MAX);
			w->expires_at = up.expires_at;
			w->announced = size;
			up_upload_clear(&up);
			journal_save(w);
			if (w->state == UP_W_CANCELLED) {
				/* cancelled (rm) while the upload was being created */
				w->finishing = false;
				pthread_mutex_unlock(&w->mu);
				cancel_remote(w, w->upload_id);
				return up_error_set(err, -ECANCELED, 0, "the upload was cancelled");
			}
			w->state = UP_W_UPLOADING;
			pthread_mutex_unlock(&w->mu);
		}
		rc = send_sealed(w);
		pthread_mutex_lock(&w->mu);
		wait_idle_locked(w);
		if (rc == 0 && w->err)
			rc = w->err;
		if (w->state == UP_W_CANCELLED) {
			/* cancelled (rm) while this ran: maybe before the upload existed, so cancel
			 * the one made here too (cancelling twice is harmless) */
			char id[UP_ID_MAX];
			memcpy(id, w->upload_id, UP_ID_MAX);
			w->finishing = false;
			pthread_mutex_unlock(&w->mu);
			if (id[0])
				cancel_remote(w, id);
			return up_error_set(err, -ECANCELED, 0, "the upload was cancelled");
		}
		if (rc < 0) {
			up_error_set(err, rc, 0, "%s",
				     w->errmsg[0] ? w->errmsg : "sending parts failed");
			goto cancel;
		}
		if (w->expired) {
			if (round < 2)
				continue;
			rc = up_error_set(err, -ETIMEDOUT, 400,
					  "the upload session expired three "
					  "times");
			goto fail;
		}
		size_t n = w->nparts;
		const char **ids = calloc(n ? n : 1, sizeof *ids);
		char md5[33], upload_id[UP_ID_MAX];
		memcpy(md5, w->md5, sizeof md5);
		memcpy(upload_id, w->upload_id, UP_ID_MAX);
		for (size_t i = 0; ids && i < n; i++)
			ids[i] = w->parts[i].id;
		pthread_mutex_unlock(&w->mu);
		/* the part array is stable: no writes and no parts while finishing */
		rc = ids ? up_upload_complete(w->cfg.client, upload_id, ids, n, md5, out, err)
			 : up_error_set(err, -ENOMEM, 0, "out of memory");
		free(ids);
		pthread_mutex_lock(&w->mu);
		if (rc < 0 && round < 2 && err && session_expired(w, err)) {
			w->expired = true;
			continue;
		}
		break;
	}
	if (rc < 0)
		goto cancel;
	if (!out->has_file) {
		rc = up_error_set(err, -EPROTO, 200, "complete answered without a file");
		goto cancel;
	}
completed:
	memcpy(w->file_id, out->file.id, UP_ID_MAX);
	w->state = UP_W_COMPLETED;
	w->finishing = false;
	journal_drop(w);
	pthread_mutex_unlock(&w->mu);
	return 0;

cancel:
	if (w->upload_id[0] && w->state != UP_W_CANCELLED) {
		char id[UP_ID_MAX];
		memcpy(id, w->upload_id, UP_ID_MAX);
		pthread_mutex_unlock(&w->mu);
		cancel_remote(w, id);
		pthread_mutex_lock(&w->mu);
	}
fail:
	fail_locked(w, rc, err ? err->message : "upload failed");
	w->finishing = false;
	journal_drop(w); /* failed for good, and cancelled on the server */
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int up_writer_cancel(struct up_writer *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->state == UP_W_COMPLETED || w->state == UP_W_CANCELLED) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	/* No waiting for parts in flight: they fail once the server has cancelled. */
	w->state = UP_W_CANCELLED;
	journal_drop(w);
	char id[UP_ID_MAX];
	memcpy(id, w->upload_id, UP_ID_MAX);
	pthread_mutex_unlock(&w->mu);
	if (id[0])
		cancel_remote(w, id);
	return 0;
}

void up_writer_status(struct up_writer *w, struct up_writer_status *st)
{
	pthread_mutex_lock(&w->mu);
	memset(st, 0, sizeof *st);
	st->state = w->state;
	memcpy(st->upload_id, w->upload_id, UP_ID_MAX);
	memcpy(st->file_id, w->file_id, UP_ID_MAX);
	if (w->state == UP_W_COMPLETED)
		memcpy(st->md5, w->md5, sizeof st->md5);
	st->size = w->size;
	st->bytes_sent = w->bytes_sent;
	memcpy(st->error, w->errmsg, sizeof st->error);
	st->errnum = w->err;
	pthread_mutex_unlock(&w->mu);
}

bool up_writer_started(struct up_writer *w)
{
	pthread_mutex_lock(&w->mu);
	bool s = w->state != UP_W_PENDING || w->finishing;
	pthread_mutex_unlock(&w->mu);
	return s;
}

int up_writer_restore(const struct up_writer_config *cfg, const struct up_journal_rec *rec,
		      struct up_writer **out)
{
	if (rec->part_size != cfg->part_size || !rec->md5[0])
		return -EINVAL;
	struct up_writer *w;
	int rc = writer_open(cfg, rec->spool, 0, &w);
	if (rc < 0)
		return rc;
	struct stat sb;
	if (fstat(w->fd, &sb) < 0 || (uint64_t)sb.st_size != rec->size)
		rc = -EBADMSG; /* the spool is not what the record says */
	if (rc == 0) {
		w->size = w->hashed = rec->size;
		memcpy(w->md5, rec->md5, sizeof w->md5);
		w->md5_known = true;
		for (size_t i = 0; rc == 0 && i < rec->nparts; i++) {
			uint64_t off = (uint64_t)i * rec->part_size;
			uint64_t len =
			    rec->size - off < rec->part_size ? rec->size - off : rec->part_size;
			if ((rc = push_part(w, len)) < 0)
				break;
			struct wpart *p = &w->parts[w->nparts - 1];
			if (rec->part_ids[i][0]) {
				memcpy(p->id, rec->part_ids[i], UP_ID_MAX);
				p->sent = p->queued = true;
				w->bytes_sent += len;
			}
		}
	}
	if (rc == 0 && rec->upload_id[0]) {
		memcpy(w->upload_id, rec->upload_id, UP_ID_MAX);
		w->expires_at = rec->expires_at;
		w->state = UP_W_UPLOADING;
		w->announced = rec->size;
		/* a session past its hour is replaced at finish */
		w->expired = (int64_t)time(NULL) >= rec->expires_at;
	}
	if (rc == 0)
		set_meta(w, rec->filename, rec->mime_type, rec->purpose);
	if (rc < 0) {
		w->keep = true; /* never delete a spool we could not use */
		up_writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}
