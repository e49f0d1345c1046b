/* writer: one file being written becomes one upload. Bytes go to a spool file as they
 * arrive; the file's MD5 is computed as they pass (no second read when writes come in
 * order; past 1 MiB on a hashing thread of its own, fed with copies), and each part's as
 * it is read for sending; the data is cut into parts of
 * part_size. When the size is
 * announced first, the upload is created at once and each part goes up as soon as it is
 * sealed; otherwise every part goes up, in parallel, at finish. */
#ifndef UP_WRITER_H
#define UP_WRITER_H

#include "uploadfs.h"

#include <stdint.h>
#include <time.h>

struct up_writer;

/* The Files API's limit (POST /files), for a server without the Uploads API. */
#define UP_FILES_MAX (512ull << 20)

struct up_writer_config {
	up_client *client;
	up_async *async;	/* shared part pipeline (the mount's global budget) */
	const char *spool_path; /* created (O_EXCL) and owned by the writer */
	uint64_t part_size;
	uint64_t max_size;	  /* writes past it are -EFBIG */
	const char *journal_path; /* its crash record; NULL: none */
};

enum up_writer_state {
	UP_W_PENDING,	/* local data only */
	UP_W_UPLOADING, /* an upload exists on the server */
	UP_W_COMPLETED,
	UP_W_FAILED,
	UP_W_CANCELLED,
};

struct up_writer_status {
	enum up_writer_state state;
	char upload_id[UP_ID_MAX];
	char file_id[UP_ID_MAX];
	char md5[33]; /* once completed */
	uint64_t size;	     /* bytes written so far (the final size once sealed) */
	uint64_t total;	     /* the final size when known: size once sealed, else the size
				announced (while the bytes written stay within it); 0 if not */
	bool total_known;
	uint64_t bytes_sent; /* acknowledged by the server */
	char error[512];     /* the last error, "" when none */
	int errnum;	     /* its errno (negative), 0 when none */
	bool sealed;		  /* closed: its bytes can no longer change */
	struct timespec started;  /* CLOCK_MONOTONIC: when the writer was made or restored */
};

int up_writer_new(const struct up_writer_config *cfg, struct up_writer **out);

struct up_journal_rec;
/* A writer for an upload a crash interrupted after its file was closed: the spool named in
 * the record, its MD5, its session and the parts the server had acknowledged. finish then
 * sends only the rest (or everything again in a new session if that one expired). */
int up_writer_restore(const struct up_writer_config *cfg, const struct up_journal_rec *rec,
		      struct up_writer **out);
/* A writer is counted: its owner holds one reference, and so does each operation that
 * uses it without its owner's lock. The last free waits for its parts in flight, then
 * frees; the spool file is removed unless kept. Never call the last free under a lock
 * that a part's completion or a network request could need. */
void up_writer_ref(struct up_writer *w);
void up_writer_free(struct up_writer *w);

/* Writes at off (the spool grows as needed). After a failure, returns the latched error. */
int up_writer_write(struct up_writer *w, const void *buf, size_t len, uint64_t off);
int up_writer_read(struct up_writer *w, void *buf, size_t len, uint64_t off, size_t *got);
/* Sets the size (truncate). Bytes already hashed beyond it force a rescan at finish. */
int up_writer_truncate(struct up_writer *w, uint64_t size);

/* The final size is known before the data: create the upload now, so parts go up while the
 * writer is still writing. A finish with another size falls back to a fresh upload. */
int up_writer_announce(struct up_writer *w, uint64_t size, const char *filename,
		       const char *mime_type, const char *purpose, struct up_error *err);

/* The last writer closed the file: no byte changes after this. Hashes what is left, cuts
 * the last part, and writes the journal record (before it returns, so a crash from here
 * on never loses the file), without waiting for the server. finish does it if not done. */
int up_writer_close(struct up_writer *w, const char *filename, const char *mime_type,
		    const char *purpose, struct up_error *err);

/* Sends what is left, waits for every part, completes with the ordered part ids and the
 * MD5. Blocks. An upload started under another name or size is cancelled and redone. */
int up_writer_finish(struct up_writer *w, const char *filename, const char *mime_type,
		     const char *purpose, struct up_upload *out, struct up_error *err);

/* Cancels the upload on the server if one exists; later writes still land in the spool
 * (as writes to an unlinked file do) and are never sent. */
int up_writer_cancel(struct up_writer *w);

/* Waits until no part of this writer is in flight; returns the latched error, if any. */
int up_writer_sync(struct up_writer *w);

void up_writer_status(struct up_writer *w, struct up_writer_status *st);

/* A remote file this one replaces (a name it was renamed onto, the file it truncates):
 * the record written at close names them all, so a restart knows them too; the caller
 * deletes them once this upload has completed. replaced copies the list (0, -ENOMEM). */
struct up_idlist;
int up_writer_add_replaces(struct up_writer *w, const char *file_id);
int up_writer_replaced(struct up_writer *w, struct up_idlist *out);

/* Keeps the spool file (renamed to path) instead of removing it at free. */
int up_writer_keep_spool(struct up_writer *w, const char *path);

#endif
