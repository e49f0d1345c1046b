/* journal: one record per upload in progress — what a restart needs to finish it after a
 * crash: name, size, purpose and mime type, the spool file, the part size, the session id
 * and its expiry, the parts the server acknowledged, and the MD5 once the file is closed.
 * The record is written with write + fsync + rename, when a session starts or the file
 * closes. Each part acknowledged after that is appended to a log beside it
 * ("<record>.parts", a line per part, no fsync): a power cut that loses a line sends that
 * part again, and a torn line is ignored. A torn record is detected, never trusted.
 * A closed file has a record from its close on, with or without a session: a restart
 * finishes it (creating the session if there was none). */
#ifndef UP_JOURNAL_H
#define UP_JOURNAL_H

#include "uploadfs.h"

/* Remote file ids: the files an upload replaces (a file renamed onto several names in
 * turn replaces each of them). */
struct up_idlist {
	char (*ids)[UP_ID_MAX];
	size_t n;
};
/* Adds id unless it is there or empty: 0 or -ENOMEM. */
int up_idlist_add(struct up_idlist *l, const char *id);
int up_idlist_copy(struct up_idlist *dst, const struct up_idlist *src);
void up_idlist_clear(struct up_idlist *l);

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
	struct up_idlist replaces; /* remote files deleted once this one is complete */
	size_t nparts;
	char (*part_ids)[UP_ID_MAX]; /* "" where not acknowledged */
};

/* Replaces the record; its parts log is then empty (the record holds those parts). */
int up_journal_write(const char *path, const struct up_journal_rec *r);
/* Appends "part index of upload_id is part_id" to the record's parts log. */
int up_journal_add_part(const char *path, const char *upload_id, size_t index,
			const char *part_id);
/* The record with its parts log applied. -EBADMSG for a torn or foreign record. */
int up_journal_read(const char *path, struct up_journal_rec *r);
/* Removes the record and its parts log. */
void up_journal_remove(const char *path);
/* For a directory scan: true if path is a parts log, which is then removed if its record
 * is gone (set aside as damaged, or a crash between the two unlinks). */
bool up_journal_sweep_log(const char *path);
/* The parts log's path for a record path. */
int up_journal_parts_path(const char *path, char *out, size_t len);
void up_journal_rec_clear(struct up_journal_rec *r);

#endif
