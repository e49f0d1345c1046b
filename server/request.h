/* request: the API's request bodies checked into typed requests, with the error OpenAI
 * answers for what is wrong in them (JSON create and complete, the Files form). No state:
 * the store takes the typed requests and owns the transitions. */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include "errors.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* POST /v1/uploads. The strings point into the JSON object it was parsed from. */
struct srv_create_req {
	uint64_t bytes;
	const char *filename;
	size_t filename_len;
	const char *mime_type;
	const char *purpose;
	int64_t expires_after; /* the file's expiry in seconds; 0: the purpose's default */
};
int srv_parse_create(json_object *req, uint64_t max_bytes, struct srv_create_req *out,
		     struct srv_err *err);

/* POST /v1/uploads/{id}/complete: ordered part ids (strings in ids), an optional
 * lowercase md5, and sig, the request's signature (malloc'd; the caller frees it), by which
 * a retried complete (a lost answer) gets the same answer. */
struct srv_complete_req {
	json_object *ids;
	size_t n;
	char md5[33];
	char *sig;
};
int srv_parse_complete(json_object *req, struct srv_complete_req *c, struct srv_err *err);

/* POST /v1/files: the form's fields other than the bytes, as strings. */
struct srv_file_form {
	const char *filename;
	const char *purpose;
	const char *expires_anchor;
	const char *expires_seconds;
};
/* Checks the form: a file field with a name, a purpose, an expiry if any. */
int srv_check_file_form(const struct srv_file_form *form, int64_t *expires_after,
			struct srv_err *err);

#endif
