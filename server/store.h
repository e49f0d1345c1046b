/* store: the local server's persistent state under --data — uploads, their parts and files —
 * and its transitions, under one lock. Metadata lives in memory, mirrored to one JSON file
 * per object (records.h); part and file bytes stream to disk and are never held in memory
 * (content.h). No HTTP here. */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include "errors.h"
#include "request.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct srv_store;

struct srv_limits {
	uint64_t max_part_bytes;   /* one part */
	uint64_t max_upload_bytes; /* one upload (bytes at create, and all parts added) */
	uint64_t max_file_bytes;   /* one POST /v1/files */
	int64_t expire_seconds;	   /* upload session lifetime */
	bool allow_downloads;	   /* serve content of every purpose */
};

/* A body being streamed to a temporary file in the store (a part, or a POST /v1/files). */
struct srv_blob {
	int fd;
	char path[4096];
	char owner[64]; /* the upload id, for parts */
	uint64_t start_no; /* parts: the how-manieth part body of its upload to begin */
	bool placed;	   /* parts: the client said where the part sits in its file ... */
	uint64_t place;	   /* ... at this offset (its multipart file name "part@OFFSET") */
};
#define SRV_NO_PLACE UINT64_MAX /* start_no of a part whose body has not begun */

int srv_store_open(const char *dir, const struct srv_limits *lim, struct srv_store **out,
		   struct srv_err *err);
void srv_store_close(struct srv_store *st);

/* POST /v1/uploads: req is the parsed JSON body. *out is the Upload object. */
int srv_upload_create(struct srv_store *st, json_object *req, json_object **out,
		      struct srv_err *err);

/* POST /v1/uploads/{id}/parts: begin opens a temporary file for the part's bytes (checks that
 * the upload exists and takes parts); commit turns it into a part; abort drops it. */
int srv_part_begin(struct srv_store *st, const char *upload_id, struct srv_blob *blob,
		   struct srv_err *err);
int srv_part_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes, json_object **out,
		    struct srv_err *err);
void srv_blob_abort(struct srv_blob *blob);
/* The part's body has begun: it takes its place in the order parts are hashed in as they
 * arrive (the order bodies begin, which a client sending parts in order keeps even when
 * their requests started out of it). */
void srv_part_body(struct srv_store *st, struct srv_blob *blob);
/* A part request is over (answered or dropped): its part is hashed into the file's MD5 as
 * parts arrive; a part it did not commit leaves a gap that the hash steps over. Aborts the
 * blob. */
void srv_part_end(struct srv_store *st, struct srv_blob *blob);
/* Frees the parts of cancelled and expired uploads and the content of deleted files (called
 * after a response is sent: the request that dropped them does not wait for the disk). */
void srv_store_reap(struct srv_store *st);

/* POST /v1/uploads/{id}/complete and /cancel. */
/* *hashed_early: the bytes of the file hashed as its parts arrived, before the complete. */
int srv_upload_complete(struct srv_store *st, const char *upload_id, json_object *req,
			json_object **out, uint64_t *hashed_early, struct srv_err *err);
int srv_upload_cancel(struct srv_store *st, const char *upload_id, json_object **out,
		      struct srv_err *err);

/* POST /v1/files: begin, stream the "file" field into blob, then commit with the form's
 * other fields (purpose, expires_after[...]) as strings. */
int srv_file_begin(struct srv_store *st, struct srv_blob *blob, struct srv_err *err);
int srv_file_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes,
		    const struct srv_file_form *form, json_object **out, struct srv_err *err);

struct srv_list_query {
	const char *purpose; /* NULL: all */
	const char *after;   /* NULL: from the start */
	uint64_t limit;	     /* 1..10000 */
	bool ascending;
};
int srv_files_list(struct srv_store *st, const struct srv_list_query *q, json_object **out,
		   struct srv_err *err);
int srv_file_get(struct srv_store *st, const char *file_id, json_object **out, struct srv_err *err);
int srv_file_delete(struct srv_store *st, const char *file_id, json_object **out,
		    struct srv_err *err);
/* GET /v1/files/{id}/content: the content read with srv_content_* (content.h); it stays
 * readable until closed, even if the file is deleted meanwhile. */
struct srv_download {
	struct srv_content *content;
	struct file *file; /* private to the store */
};
int srv_download_open(struct srv_store *st, const char *file_id, struct srv_download *d,
		      struct srv_err *err);
void srv_download_close(struct srv_store *st, struct srv_download *d);

#endif
