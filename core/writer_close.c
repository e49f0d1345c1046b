/* The close of a writer: seal (the bytes final, the record fsynced), complete (the session
 * made if none, the parts sent, complete with the ordered ids and the MD5), and the writer
 * a journal record restores after a crash. */
#include "writer_impl.h"

#include "client.h"
#include "errors.h"
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Drops an upload begun under another name or size, or before bytes it sent changed. */
static void restart_locked(struct up_writer *w)
{
	char id[UP_ID_MAX];
	w->bytes_sent = 0;
	for (size_t i = 0; i < w->nparts; i++)
		w->parts[i].queued = w->parts[i].sent = false;
	w->expired = false;
	memcpy(id, w->upload_id, UP_ID_MAX); /* the table's cancel, done here */
	w->upload_id[0] = '\0';
	up_w_step(w, UP_EV_VOIDED, NULL); /* EARLY -> OPEN, SENDING -> SEALED (record rewritten) */
	pthread_mutex_unlock(&w->mu);
	if (id[0])
		up_w_cancel_remote(w, id);
	pthread_mutex_lock(&w->mu);
}

/* The upload failed for good (lock held, finishing): latched, its session dropped and its
 * record removed as the table says; the lock is released around the cancel. */
static int fail_locked(struct up_writer *w, int rc, const char *msg)
{
	up_w_latch(w, rc, msg);
	char drop[UP_ID_MAX] = "";
	if (w->st != UP_S_FAILED && w->st != UP_S_CANCELLED && w->st != UP_S_COMPLETED)
		up_w_step(w, UP_EV_FAILED, drop);
	if (drop[0]) {
		pthread_mutex_unlock(&w->mu);
		up_w_cancel_remote(w, drop);
		pthread_mutex_lock(&w->mu);
	}
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

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The close of the last writer (lock held): from here on no byte changes. Hashes what did
 * not come in order, cuts the tail part, and writes the record from which a restart
 * finishes the upload, session or not. An early upload begun under another size or name,
 * or before bytes it sent changed, is cancelled here. */
static int seal_locked(struct up_writer *w, const char *filename, const char *mime_type,
		       const char *purpose, struct up_error *err)
{
	if (!up_session_writable(w->st))
		return 0;
	bool was = w->finishing;
	w->finishing = true; /* no writes while the lock is dropped below */
	up_hasher_stop(w->md_all); /* from here on the file's MD5 is hashed inline */
	while (w->announcing) /* its session is about to exist: use it, not a second one */
		pthread_cond_wait(&w->cv, &w->mu);
	up_w_wait_idle(w);
	int rc = w->err;
	if (rc < 0) {
		w->finishing = was;
		return up_error_set(err, rc, 0, "%s", w->errmsg);
	}
	if (w->st == UP_S_EARLY &&
	    (w->announced != w->size || w->rescan || strcmp(w->upload_name, filename) != 0 ||
	     !same_text(w->jmime, mime_type) || !same_text(w->jpurpose, purpose)))
		restart_locked(w); /* a purpose or MIME type set while the file was written */
	if (w->rescan) {
		w->hashed = 0;
		w->nparts = 0;
		w->rescan = false;
		up_hasher_reset(w->md_all);
	}
	if ((rc = up_w_hash_spool(w)) < 0) {
		w->finishing = was;
		return up_error_set(err, rc, 0, "reading the spool: %s", strerror(-rc));
	}
	/* the bytes the parts cover: whole parts, and a tail if one was cut already */
	uint64_t covered = w->nparts ? (uint64_t)(w->nparts - 1) * w->cfg.part_size +
					   w->parts[w->nparts - 1].len
				     : 0;
	if (w->size > covered && (rc = up_w_push_part(w, w->size - covered)) < 0) {
		w->finishing = was;
		return up_error_set(err, rc, 0, "out of memory");
	}
	if (!w->md5_known)
		up_hasher_hex(w->md_all, w->md5);
	w->finishing = was;
	up_w_set_meta(w, filename, mime_type, purpose);
	up_w_step(w, UP_EV_SEALED, NULL); /* the closed record: a restart can finish it */
	return 0;
}

/* rm came while finish talked to the server (lock held; released here): what finish made
 * there goes too, the file (Files API) or the session, and finish ends ECANCELED. */
static int cancelled_meanwhile(struct up_writer *w, const char *file_id, const char *upload_id,
			       struct up_error *err)
{
	w->finishing = false;
	pthread_mutex_unlock(&w->mu);
	struct up_error e;
	if (file_id && file_id[0])
		up_file_delete(w->cfg.client, file_id, &e);
	if (upload_id && upload_id[0])
		up_w_cancel_remote(w, upload_id);
	return up_error_set(err, -ECANCELED, 0, "the upload was cancelled");
}

int up_writer_close(struct up_writer *w, const char *filename, const char *mime_type,
		    const char *purpose, struct up_error *err)
{
	struct up_error local;
	if (!err)
		err = &local;
	pthread_mutex_lock(&w->mu);
	int rc = 0;
	if (w->st == UP_S_CANCELLED)
		rc = up_error_set(err, -ECANCELED, 0, "the upload was cancelled");
	else if (!w->finishing)
		rc = seal_locked(w, filename, mime_type, purpose, err);
	if (rc < 0 && rc != -ECANCELED) {
		w->finishing = true;
		fail_locked(w, rc, err->message);
		w->finishing = false;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int up_writer_finish(struct up_writer *w, const char *filename, const char *mime_type,
		     const char *purpose, struct up_upload *out, struct up_error *err)
{
	pthread_mutex_lock(&w->mu);
	if (w->st == UP_S_COMPLETED || w->finishing || w->st == UP_S_CANCELLED) {
		int rc = w->st == UP_S_CANCELLED ? -ECANCELED : -EALREADY;
		pthread_mutex_unlock(&w->mu);
		return up_error_set(err, rc, 0, "the upload is already %s",
				    rc == -ECANCELED ? "cancelled" : "finished");
	}
	w->finishing = true;
	int rc = w->err;
	if (rc < 0) {
		up_error_set(err, rc, 0, "%s", w->errmsg);
		goto fail;
	}
	if ((rc = seal_locked(w, filename, mime_type, purpose, err)) < 0)
		goto fail;
	if (strcmp(w->upload_name, filename) != 0) {
		/* renamed between its close and now (-o async): the session's name is wrong */
		up_w_set_meta(w, filename, mime_type, purpose);
		if (w->st == UP_S_SENDING)
			restart_locked(w);
		else
			up_w_journal_save(w);
	}
	uint64_t size = w->size;
	/* A session that expires meanwhile is replaced, and every part sent again from the
	 * spool: up to three sessions. */
	for (int round = 0;; round++) {
		if (w->expired)
			restart_locked(w); /* SENDING -> SEALED: a new session below */
		bool need_create = w->st == UP_S_SEALED;
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
				if (w->st == UP_S_CANCELLED) /* rm while the file went up */
					return cancelled_meanwhile(w, out->file.id, NULL, err);
				w->bytes_sent = size;
				goto completed;
			}
			pthread_mutex_lock(&w->mu);
			if (rc < 0)
				goto fail;
			if (w->st == UP_S_CANCELLED) { /* rm while the session was created */
				rc = cancelled_meanwhile(w, NULL, up.id, err);
				up_upload_clear(&up);
				return rc;
			}
			memcpy(w->upload_id, up.id, UP_ID_MAX);
			w->expires_at = up.expires_at;
			w->announced = size;
			up_upload_clear(&up);
			up_w_step(w, UP_EV_CREATED, NULL); /* the record names the session */
			pthread_mutex_unlock(&w->mu);
		}
		rc = up_w_send_sealed(w);
		pthread_mutex_lock(&w->mu);
		up_w_wait_idle(w);
		if (rc == 0 && w->err)
			rc = w->err;
		if (w->st == UP_S_CANCELLED) {
			/* rm while the parts went up: maybe before the session existed, so cancel
			 * the one made here too (cancelling twice is harmless) */
			char id[UP_ID_MAX];
			memcpy(id, w->upload_id, UP_ID_MAX);
			return cancelled_meanwhile(w, NULL, id, err);
		}
		if (rc < 0) {
			up_error_set(err, rc, 0, "%s",
				     w->errmsg[0] ? w->errmsg : "sending parts failed");
			goto fail;
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
		if (rc < 0 && round < 2 && err && up_w_session_expired(w, err)) {
			w->expired = true;
			continue;
		}
		break;
	}
	if (rc == 0 && !out->has_file)
		rc = up_error_set(err, -EPROTO, 200, "complete answered without a file");
	if (rc < 0)
		goto fail;
completed:
	memcpy(w->file_id, out->file.id, UP_ID_MAX);
	up_w_step(w, UP_EV_COMPLETED, NULL); /* the record goes */
	w->finishing = false;
	pthread_mutex_unlock(&w->mu);
	return 0;

fail: /* failed for good: the session cancelled, the record removed (session.c) */
	fail_locked(w, rc, err ? err->message : "upload failed");
	w->finishing = false;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int up_writer_restore(const struct up_writer_config *cfg, const struct up_journal_rec *rec,
		      struct up_writer **out)
{
	enum up_sstate st;
	if (rec->part_size != cfg->part_size ||
	    up_session_restored(rec->md5[0], rec->upload_id[0], &st) < 0)
		return -EINVAL;
	struct up_writer *w;
	int rc = up_w_open(cfg, rec->spool, 0, &w);
	if (rc < 0)
		return rc;
	struct stat sb;
	if (fstat(w->fd, &sb) < 0 || (uint64_t)sb.st_size != rec->size)
		rc = -EBADMSG; /* the spool is not what the record says */
	if (rc == 0) {
		w->size = w->hashed = rec->size;
		memcpy(w->md5, rec->md5, sizeof w->md5);
		rc = up_idlist_copy(&w->replaces, &rec->replaces);
		w->md5_known = true;
		w->st = st; /* the crash point the record describes: SEALED or SENDING */
		for (size_t i = 0; rc == 0 && i < rec->nparts; i++) {
			uint64_t off = (uint64_t)i * rec->part_size;
			uint64_t len =
			    rec->size - off < rec->part_size ? rec->size - off : rec->part_size;
			if ((rc = up_w_push_part(w, len)) < 0)
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
		w->announced = rec->size;
		/* a session past its hour is replaced at finish */
		w->expired = (int64_t)time(NULL) >= rec->expires_at;
	}
	if (rc == 0)
		up_w_set_meta(w, rec->filename, rec->mime_type, rec->purpose);
	if (rc < 0) {
		w->keep = true; /* never delete a spool we could not use */
		up_writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}
