/* journal: one record per upload in progress — what a restart needs to finish it after a
 * crash: name, size, purpose and mime type, the spool file, the part size, the session id
 * and its expiry, the parts the server acknowledged, and the MD5 once the file is closed.
 * Written with write + rename, and an fsync before the rename when durable; a torn record is
 * detected, never trusted. */
#ifndef UP_JOURNAL_H
#define UP_JOURNAL_H

#include "uploadfs.h"

struct up_journal_rec {
	char *filename;
	char *mime_type;
	char *purpose;
	char *spool;
	uint64_t size;
	uint64_t part_size;
	char upload_id[UP_ID_MAX]; /* "" before the session exists */
	int64_t expires_at;
	char md5[33]; /* "" until the file was closed */
	size_t nparts;
	char (*part_ids)[UP_ID_MAX]; /* "" where not acknowledged */
};

/* durable: fsync before the rename. A record that only adds acknowledged parts need not
 * be: if a power cut loses it, the older record re-sends those parts, nothing worse. */
int up_journal_write(const char *path, const struct up_journal_rec *r, bool durable);
/* -EBADMSG for a torn or foreign record. */
int up_journal_read(const char *path, struct up_journal_rec *r);
void up_journal_rec_clear(struct up_journal_rec *r);

#endif
