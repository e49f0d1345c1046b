/* writer_impl: the writer's state and the helpers its two files share — core/writer.c
 * (the write path, parts, announce, cancel, status) and core/writer_close.c (seal,
 * complete, restore from the journal). Not for use outside them. */
#ifndef UP_WRITER_IMPL_H
#define UP_WRITER_IMPL_H

#include "hasher.h"
#include "journal.h"
#include "session.h"
#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>

#define HASH_BUF (1u << 20)
#define HASH_INLINE (1u << 20) /* files up to this size hash on the write path */

struct wpart {
	char id[UP_ID_MAX];
	uint64_t len;
	bool queued; /* handed to the pipeline (in flight or done) */
	bool sent;   /* acknowledged */
};

struct up_writer {
	atomic_uint refs; /* the owner's and each operation's in progress; the last frees */
	struct up_writer_config cfg;
	char *spool;
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a part finished */

	struct timespec started; /* CLOCK_MONOTONIC, when made (status) */
	uint64_t size;	     /* logical size */
	uint64_t hashed;     /* the contiguous prefix hashed so far */
	bool rescan;	     /* bytes behind `hashed` changed: hash the spool again at finish */
	struct up_hasher *md_all; /* the file's MD5, as the bytes pass in order */
	struct wpart *parts; /* sealed parts, in file order */
	size_t nparts, cap;
	unsigned inflight;

	enum up_sstate st; /* changed by step() only: the table in core/session.c */
	bool finishing;	   /* finish (or the seal) is running: no byte may change */
	char upload_id[UP_ID_MAX];
	int64_t expires_at; /* of the upload session (server time) */
	bool expired;	    /* the session expired: finish makes a new one */
	uint64_t announced; /* the size the upload was created with */
	uint64_t hinted;    /* the first size announced, kept even when no session came of it */
	bool announcing;    /* announce is creating the upload: finish waits for it */
	char *upload_name;  /* and the name */
	uint64_t bytes_sent;
	int err; /* latched: negative errno */
	char errmsg[512];
	char file_id[UP_ID_MAX];
	char md5[33];
	bool md5_known; /* restored from a journal: the spool is not hashed again */
	struct up_idlist replaces; /* remote files to delete once this one completes */
	bool keep;
	char *journal;		/* the record's path, or NULL */
	char *jmime, *jpurpose; /* for the record */
};

/* All with the writer's lock held, except where it says. */
void up_w_latch(struct up_writer *w, int err, const char *msg);
void up_w_journal_save(struct up_writer *w);
int up_w_step(struct up_writer *w, enum up_sevent ev, char drop[UP_ID_MAX]);
void up_w_set_meta(struct up_writer *w, const char *filename, const char *mime,
		   const char *purpose);
int up_w_hash_spool(struct up_writer *w);
int up_w_push_part(struct up_writer *w, uint64_t len);
void up_w_wait_idle(struct up_writer *w);
bool up_w_session_expired(const struct up_writer *w, const struct up_error *err);
/* Lock not held: */
int up_w_send_sealed(struct up_writer *w);
void up_w_cancel_remote(struct up_writer *w, const char *upload_id);
int up_w_open(const struct up_writer_config *cfg, const char *path, int flags,
	      struct up_writer **out);

#endif
