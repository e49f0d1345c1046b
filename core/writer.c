/* The write path of a writer: the spool, the MD5 as bytes pass, parts cut and sent, the
 * early session, the steps of its state, cancel and status. writer_close.c seals and
 * completes it. */
#include "writer_impl.h"

#include "client.h"
#include "errors.h"
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


void up_w_latch(struct up_writer *w, int err, const char *msg)
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
/* A record exists from the session's start, once the file has a name, and from the close
 * on whether or not a session exists yet (-o async, a Files-only server). */
static bool journaled(const struct up_writer *w)
{
	return w->journal && w->upload_name && (w->upload_id[0] || !up_session_writable(w->st));
}

void up_w_journal_save(struct up_writer *w)
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
	r.replaces = w->replaces; /* borrowed for the write */
	if (!up_session_writable(w->st))
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

/* Moves the upload through the table of core/session.c (lock held): the new state, the
 * record written or removed as the transition says, and the session it drops copied into
 * drop (cancelled by the caller once the lock is released; may be NULL only where the
 * table cancels nothing). A step the table does not have is a bug: it is latched as an
 * error, never silently taken. */
int up_w_step(struct up_writer *w, enum up_sevent ev, char drop[UP_ID_MAX])
{
	struct up_transition t;
	if (drop)
		drop[0] = '\0';
	if (up_session_step(w->st, ev, &t) < 0) {
		char msg[128];
		snprintf(msg, sizeof msg, "internal error: no transition from %s on %s",
			 up_session_state_name(w->st), up_session_event_name(ev));
		if (!w->err) {
			w->err = -EIO;
			snprintf(w->errmsg, sizeof w->errmsg, "%s", msg);
		}
		return -EINVAL;
	}
	if (t.cancel_session && drop)
		memcpy(drop, w->upload_id, UP_ID_MAX);
	w->st = t.to;
	if (t.record == UP_REC_OPEN || t.record == UP_REC_CLOSED)
		up_w_journal_save(w);
	else if (t.record == UP_REC_DROP)
		journal_drop(w);
	return 0;
}

void up_w_set_meta(struct up_writer *w, const char *filename, const char *mime,
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

/* The file's MD5 over the next bytes, in order: inline for small files and while
 * finishing, else on the hasher's thread (lock held). */
static void md_update(struct up_writer *w, const char *buf, size_t n)
{
	up_hasher_update(w->md_all, buf, n, !w->finishing && w->hashed + n > HASH_INLINE);
}

/* A writer on the spool at path, opened with extra open flags. A failure never removes
 * the file: it may be another writer's, or a spool a journal still names. */
int up_w_open(const struct up_writer_config *cfg, const char *path, int flags,
		       struct up_writer **out)
{
	struct up_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	atomic_init(&w->refs, 1);
	w->cfg = *cfg;
	w->fd = -1;
	w->keep = true; /* until the file is ours */
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->spool = strdup(path);
	w->journal = dup_or_null(cfg->journal_path);
	int rc = w->spool && up_hasher_new(&w->md_all) == 0 ? 0 : -ENOMEM;
	if (rc == 0 && (w->fd = open(w->spool, O_RDWR | O_CLOEXEC | flags, 0600)) < 0)
		rc = -errno;
	if (rc < 0) {
		up_writer_free(w);
		return rc;
	}
	w->keep = false;
	*out = w;
	return 0;
}

int up_writer_new(const struct up_writer_config *cfg, struct up_writer **out)
{
	return up_w_open(cfg, cfg->spool_path, O_CREAT | O_EXCL, out);
}

void up_writer_ref(struct up_writer *w)
{
	atomic_fetch_add(&w->refs, 1);
}

void up_writer_free(struct up_writer *w)
{
	if (!w || atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	up_writer_sync(w);
	up_hasher_free(w->md_all);
	if (w->fd >= 0)
		close(w->fd);
	if (w->spool && !w->keep)
		unlink(w->spool);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->parts);
	free(w->upload_name);
	free(w->spool);
	free(w->journal);
	free(w->jmime);
	free(w->jpurpose);
	up_idlist_clear(&w->replaces);
	free(w);
}

int up_writer_keep_spool(struct up_writer *w, const char *path)
{
	if (rename(w->spool, path) < 0)
		return -errno;
	w->keep = true;
	return 0;
}

int up_w_push_part(struct up_writer *w, uint64_t len)
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
			int rc = up_w_push_part(w, ps);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/* Hashes the spool from the hashed prefix to the end: the second read that out-of-order
 * writes cost. */
int up_w_hash_spool(struct up_writer *w)
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

/* A part on its way: its bytes are read from the spool as they are sent. Nothing hashes
 * them here: the API checks no part checksum, and the file's MD5 is computed once, as the
 * bytes were written (a second pass per part cost a third of the daemon's CPU). */
struct part_ctx {
	struct up_writer *w;
	size_t index;
	int fd;
	uint64_t offset;
};

static ssize_t part_read(void *ud, uint64_t off, void *buf, size_t len)
{
	struct part_ctx *pc = ud;
	ssize_t n;
	do
		n = pread(pc->fd, buf, len, (off_t)(pc->offset + off));
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* A session past its hour: the server refuses its parts and complete. The bytes are all in
 * the spool, so a new session can take them again (lock held). */
bool up_w_session_expired(const struct up_writer *w, const struct up_error *err)
{
	if (err->status != 400 && err->status != 404)
		return false;
	return strstr(err->message, "expired") ||
	       (w->expires_at && (int64_t)time(NULL) >= w->expires_at);
}


/* An error is latched and no finish is running (lock held): the upload can no longer
 * complete, so its session is dropped now rather than left holding the server's disk until
 * it expires, and its record goes (nothing closed is lost: the file was not). Copies the
 * session to cancel, once the lock is released, into id; "" if none. */
static void abandon_locked(struct up_writer *w, char id[UP_ID_MAX])
{
	id[0] = '\0';
	if (!w->finishing && w->err && up_session_writable(w->st))
		up_w_step(w, UP_EV_FAILED, id);
}

static void part_done(void *ud, int rc, const struct up_part *part, const struct up_error *err)
{
	struct part_ctx *pc = ud;
	struct up_writer *w = pc->w;
	char drop[UP_ID_MAX] = "";
	pthread_mutex_lock(&w->mu);
	struct wpart *p = &w->parts[pc->index];
	if (rc == 0) {
		memcpy(p->id, part->id, UP_ID_MAX);
		p->sent = true;
		w->bytes_sent += p->len;
		journal_part(w, pc->index);
	} else if (w->st != UP_S_CANCELLED && up_w_session_expired(w, err)) {
		w->expired = true; /* not an error: finish starts a new session */
	} else if (w->st == UP_S_EARLY && w->rescan) {
		/* bytes under this session changed (a truncate, an overwrite), maybe under this
		 * very part: finish cancels the session and sends the file again, so a part that
		 * failed meanwhile costs nothing */
	} else if (w->st != UP_S_CANCELLED) {
		char msg[512];
		snprintf(msg, sizeof msg, "part %zu: %.480s", pc->index + 1, err->message);
		up_w_latch(w, rc, msg);
		abandon_locked(w, drop);
	}
	if (drop[0]) {
		/* while this part still counts as in flight: up_writer_sync (and so the last
		 * free) waits for the cancel too, and then the session is gone */
		pthread_mutex_unlock(&w->mu);
		up_w_cancel_remote(w, drop);
		pthread_mutex_lock(&w->mu);
	}
	w->inflight--;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	free(pc);
}

/* Hands every sealed, unqueued part to the pipeline. Called without the lock held: the
 * pipeline may block (back-pressure), and its callbacks take the lock. */
int up_w_send_sealed(struct up_writer *w)
{
	for (;;) {
		pthread_mutex_lock(&w->mu);
		size_t i = 0;
		while (i < w->nparts && w->parts[i].queued)
			i++;
		/* past the announced size the session cannot complete: finish redoes it */
		if (i == w->nparts || !up_session_has_session(w->st) || w->err || w->expired ||
		    w->size > w->announced) {
			int rc = w->err;
			pthread_mutex_unlock(&w->mu);
			return rc;
		}
		struct part_ctx *pc = malloc(sizeof *pc);
		if (!pc) {
			pthread_mutex_unlock(&w->mu);
			return -ENOMEM;
		}
		*pc = (struct part_ctx){.w = w,
					.index = i,
					.fd = w->fd,
					.offset = (uint64_t)i * w->cfg.part_size};
		struct up_source src = {.kind = UP_SRC_CB,
					.read = part_read,
					.ud = pc,
					.len = w->parts[i].len,
					.placed = true,
					.place = pc->offset};
		w->parts[i].queued = true;
		w->inflight++;
		char upload_id[UP_ID_MAX];
		memcpy(upload_id, w->upload_id, UP_ID_MAX);
		pthread_mutex_unlock(&w->mu);
		int rc = up_async_part_add(w->cfg.async, upload_id, &src, part_done, pc);
		if (rc < 0) {
			free(pc);
			pthread_mutex_lock(&w->mu);
			w->inflight--;
			up_w_latch(w, rc, "cannot queue a part");
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
	if (w->st == UP_S_CANCELLED) {
		/* like writes to an unlinked file: they succeed, and go nowhere */
		int rc = pwrite_all(w->fd, buf, len, off);
		if (rc == 0 && off + len > w->size)
			w->size = off + len;
		pthread_mutex_unlock(&w->mu);
		return rc;
	}
	int rc = w->err;
	if (rc == 0 && (w->finishing || !up_session_writable(w->st)))
		rc = -EPERM;
	if (rc == 0 && off + len > w->cfg.max_size) {
		char msg[128];
		snprintf(msg, sizeof msg, "the file would pass max_file_size (%llu bytes)",
			 (unsigned long long)w->cfg.max_size);
		up_w_latch(w, -EFBIG, msg);
		rc = -EFBIG;
	}
	if (rc == 0 && off + len > UP_FILES_MAX && up_client_files_only(w->cfg.client)) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "the server has no Uploads API, and the Files API takes at most %llu "
			 "bytes",
			 (unsigned long long)UP_FILES_MAX);
		up_w_latch(w, -EFBIG, msg);
		rc = -EFBIG;
	}
	if (rc == 0 && (rc = pwrite_all(w->fd, buf, len, off)) < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "writing the spool: %s", strerror(-rc));
		up_w_latch(w, rc, msg);
		/* a file that cannot be complete will never be sent: give its space back so
		 * the other files of the mount can go on (cache_dir full) */
		if (rc == -ENOSPC)
			(void)!ftruncate(w->fd, 0);
	}
	if (rc == 0) {
		if (off + len > w->size)
			w->size = off + len;
		if (off < w->hashed)
			w->rescan = true; /* bytes already hashed changed */
		else if (off == w->hashed && !w->rescan)
			rc = hash_on(w, buf, len);
	}
	bool send = rc == 0 && w->st == UP_S_EARLY && !w->rescan;
	char drop[UP_ID_MAX] = "";
	if (rc < 0 && rc != -EPERM)
		abandon_locked(w, drop);
	pthread_mutex_unlock(&w->mu);
	if (drop[0])
		up_w_cancel_remote(w, drop);
	if (send)
		rc = up_w_send_sealed(w);
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
	if (w->st == UP_S_CANCELLED) {
		/* as writes: an unlinked file can still be truncated, and nothing is sent */
		int rc = ftruncate(w->fd, (off_t)size) < 0 ? -errno : 0;
		if (rc == 0)
			w->size = size;
		pthread_mutex_unlock(&w->mu);
		return rc;
	}
	int rc = w->err;
	if (rc == 0 && (w->finishing || !up_session_writable(w->st)))
		rc = -EPERM;
	if (rc == 0 && size > w->cfg.max_size)
		rc = -EFBIG;
	if (rc == 0 && ftruncate(w->fd, (off_t)size) < 0)
		rc = -errno;
	if (rc == 0) {
		if (size == 0 && w->st == UP_S_OPEN) {
			/* O_TRUNC of a file still local: start over */
			w->hashed = 0;
			w->nparts = 0;
			w->rescan = false;
			up_hasher_reset(w->md_all);
		} else if (size < w->hashed) {
			w->rescan = true;
		}
		w->size = size;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void up_w_cancel_remote(struct up_writer *w, const char *upload_id)
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
	pthread_mutex_lock(&w->mu);
	if (!w->hinted)
		w->hinted = size; /* the total shown while the file is written (status) */
	pthread_mutex_unlock(&w->mu);
	if (up_client_files_only(w->cfg.client))
		return 0; /* no sessions on this server: the file goes up whole at finish */
	pthread_mutex_lock(&w->mu);
	bool fresh = w->st == UP_S_OPEN && !w->err && !w->finishing && !w->announcing;
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
	bool use = rc == 0 && w->st == UP_S_OPEN && !w->err && w->size <= size;
	if (use) {
		memcpy(w->upload_id, up.id, UP_ID_MAX);
		w->expires_at = up.expires_at;
		w->announced = size;
		up_w_set_meta(w, filename, mime_type, purpose);
		up_w_step(w, UP_EV_ANNOUNCED, NULL); /* not closed yet: a restart cancels it */
	}
	w->announcing = false;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (no_uploads)
		return 0; /* a Files-only server: the file goes up whole at finish */
	if (rc < 0)
		return rc; /* not latched: the upload will be tried again at finish */
	if (!use)
		up_w_cancel_remote(w, up.id);
	up_upload_clear(&up);
	return use ? up_w_send_sealed(w) : 0;
}

void up_w_wait_idle(struct up_writer *w)
{
	while (w->inflight)
		pthread_cond_wait(&w->cv, &w->mu);
}

int up_writer_sync(struct up_writer *w)
{
	pthread_mutex_lock(&w->mu);
	up_w_wait_idle(w);
	int rc = w->err;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int up_writer_cancel(struct up_writer *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->st == UP_S_COMPLETED || w->st == UP_S_CANCELLED) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	/* No waiting for parts in flight: they fail once the server has cancelled. */
	char id[UP_ID_MAX];
	up_w_step(w, UP_EV_CANCELLED, id);
	pthread_mutex_unlock(&w->mu);
	if (id[0])
		up_w_cancel_remote(w, id);
	return 0;
}

void up_writer_status(struct up_writer *w, struct up_writer_status *st)
{
	pthread_mutex_lock(&w->mu);
	memset(st, 0, sizeof *st);
	static const enum up_writer_state shown[UP_S_COUNT] = {
	    [UP_S_OPEN] = UP_W_PENDING,		[UP_S_EARLY] = UP_W_UPLOADING,
	    [UP_S_SEALED] = UP_W_PENDING,	[UP_S_SENDING] = UP_W_UPLOADING,
	    [UP_S_COMPLETED] = UP_W_COMPLETED, [UP_S_FAILED] = UP_W_FAILED,
	    [UP_S_CANCELLED] = UP_W_CANCELLED};
	st->state = shown[w->st];
	memcpy(st->upload_id, w->upload_id, UP_ID_MAX);
	memcpy(st->file_id, w->file_id, UP_ID_MAX);
	if (w->st == UP_S_COMPLETED)
		memcpy(st->md5, w->md5, sizeof st->md5);
	st->size = w->size;
	st->sealed = !up_session_writable(w->st);
	st->total_known = st->sealed || w->finishing || (w->hinted && w->size <= w->hinted);
	st->total = !st->total_known ? 0 : st->sealed || w->finishing ? w->size : w->hinted;
	st->bytes_sent = w->bytes_sent;
	memcpy(st->error, w->errmsg, sizeof st->error);
	st->errnum = w->err;
	st->sealed = !up_session_writable(w->st);
	st->started = w->started;
	pthread_mutex_unlock(&w->mu);
}

int up_writer_add_replaces(struct up_writer *w, const char *file_id)
{
	pthread_mutex_lock(&w->mu);
	/* no record now: only a closed file's record is resumed, and the close writes it */
	int rc = up_idlist_add(&w->replaces, file_id);
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int up_writer_replaced(struct up_writer *w, struct up_idlist *out)
{
	pthread_mutex_lock(&w->mu);
	int rc = up_idlist_copy(out, &w->replaces);
	pthread_mutex_unlock(&w->mu);
	return rc;
}
