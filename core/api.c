#include "api.h"

#include "client.h"
#include "errors.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_PAGE_MAX 10000

bool up_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n >= UP_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

void up_md5_hex(const void *data, size_t len, char out[33])
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl = 0;
	EVP_Digest(data, len, h, &hl, EVP_md5(), NULL);
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* ---- parsing what a server says ---- */

static int malformed(struct up_error *err, const char *what, const char *field)
{
	return up_error_set(err, -EPROTO, 200, "malformed %s from the server: bad or missing '%s'",
			    what, field);
}

static bool get_str(json_object *o, const char *k, const char **out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return false;
	*out = json_object_get_string(v);
	return true;
}

static bool get_int(json_object *o, const char *k, int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

/* Optional integer: absent or null is 0. */
static bool get_opt_int(json_object *o, const char *k, int64_t *out)
{
	json_object *v;
	*out = 0;
	if (!json_object_object_get_ex(o, k, &v) || !v)
		return true;
	return get_int(o, k, out);
}

static bool copy_id(char *dst, const char *src)
{
	if (!up_id_valid(src))
		return false;
	snprintf(dst, UP_ID_MAX, "%s", src);
	return true;
}

/* The fields Files and Uploads share, checked the same way for both. */
struct common {
	const char *id, *filename, *purpose, *status;
	int64_t bytes, created_at, expires_at;
};

static int parse_common(json_object *o, const char *what, bool status_required, struct common *c,
			char id_out[UP_ID_MAX], struct up_error *err)
{
	if (!json_object_is_type(o, json_type_object))
		return malformed(err, what, "(object)");
	if (!get_str(o, "id", &c->id) || !copy_id(id_out, c->id))
		return malformed(err, what, "id");
	if (!get_int(o, "bytes", &c->bytes) || c->bytes < 0)
		return malformed(err, what, "bytes");
	if (!get_int(o, "created_at", &c->created_at))
		return malformed(err, what, "created_at");
	if (!get_opt_int(o, "expires_at", &c->expires_at))
		return malformed(err, what, "expires_at");
	if (!get_str(o, "filename", &c->filename))
		return malformed(err, what, "filename");
	if (!get_str(o, "purpose", &c->purpose))
		return malformed(err, what, "purpose");
	if (!get_str(o, "status", &c->status) && status_required)
		return malformed(err, what, "status");
	return 0;
}

int up_file_from_json(json_object *o, struct up_file *out, struct up_error *err)
{
	memset(out, 0, sizeof *out);
	struct common c = {.status = "processed"};
	int rc = parse_common(o, "file", false, &c, out->id, err);
	if (rc < 0)
		return rc;
	if (!(out->filename = strdup(c.filename)))
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	out->bytes = (uint64_t)c.bytes;
	out->created_at = c.created_at;
	out->expires_at = c.expires_at;
	snprintf(out->purpose, sizeof out->purpose, "%s", c.purpose);
	snprintf(out->status, sizeof out->status, "%s", c.status);
	return 0;
}

int up_upload_from_json(json_object *o, struct up_upload *out, struct up_error *err)
{
	memset(out, 0, sizeof *out);
	struct common c = {0};
	int rc = parse_common(o, "upload", true, &c, out->id, err);
	if (rc < 0)
		return rc;
	json_object *file;
	if (json_object_object_get_ex(o, "file", &file) && file) {
		if ((rc = up_file_from_json(file, &out->file, err)) < 0)
			return rc;
		out->has_file = true;
	}
	if (!(out->filename = strdup(c.filename))) {
		up_upload_clear(out);
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	}
	out->bytes = (uint64_t)c.bytes;
	out->created_at = c.created_at;
	out->expires_at = c.expires_at;
	snprintf(out->purpose, sizeof out->purpose, "%s", c.purpose);
	snprintf(out->status, sizeof out->status, "%s", c.status);
	return 0;
}

int up_part_from_json(json_object *o, struct up_part *out, struct up_error *err)
{
	memset(out, 0, sizeof *out);
	const char *id, *upload_id = NULL;
	if (!json_object_is_type(o, json_type_object))
		return malformed(err, "part", "(object)");
	if (!get_str(o, "id", &id) || !copy_id(out->id, id))
		return malformed(err, "part", "id");
	if (get_str(o, "upload_id", &upload_id) && !copy_id(out->upload_id, upload_id))
		return malformed(err, "part", "upload_id");
	get_opt_int(o, "created_at", &out->created_at);
	return 0;
}

void up_file_clear(struct up_file *f)
{
	if (!f)
		return;
	free(f->filename);
	memset(f, 0, sizeof *f);
}

void up_upload_clear(struct up_upload *u)
{
	if (!u)
		return;
	free(u->filename);
	up_file_clear(&u->file);
	memset(u, 0, sizeof *u);
}

void up_file_list_clear(struct up_file_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		up_file_clear(&l->files[i]);
	free(l->files);
	memset(l, 0, sizeof *l);
}

/* ---- calls ---- */

/* Sends req and parses a JSON object answer into *out (caller puts it). */
static int call_json(up_client *c, const struct up_http_req *req, json_object **out,
		     struct up_error *err)
{
	struct up_http_resp resp;
	int rc = up_http_do(c->http, req, &resp, err);
	if (rc < 0)
		return rc;
	json_object *o = resp.body ? json_tokener_parse(resp.body) : NULL;
	up_http_resp_free(&resp);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return up_error_set(err, -EPROTO, 200,
				    "the server's answer to %s %s is not a JSON object",
				    req->method, req->path);
	}
	*out = o;
	return 0;
}

static int bad_id(struct up_error *err, const char *what, const char *id)
{
	return up_error_set(err, -EINVAL, 0, "invalid %s id '%.64s'", what, id ? id : "");
}

int up_upload_create(up_client *c, uint64_t bytes, const char *filename, const char *mime_type,
		     const char *purpose, struct up_upload *out, struct up_error *err)
{
	if (!filename || !mime_type || !purpose)
		return up_error_set(err, -EINVAL, 0,
				    "filename, mime_type and purpose are required");
	json_object *body = json_object_new_object();
	json_object_object_add(body, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(body, "filename", json_object_new_string(filename));
	json_object_object_add(body, "mime_type", json_object_new_string(mime_type));
	json_object_object_add(body, "purpose", json_object_new_string(purpose));
	size_t len;
	const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	struct up_http_req req = {
	    .method = "POST", .path = "/uploads", .json = s, .json_len = len, .out_fd = -1};
	json_object *o = NULL;
	int rc = call_json(c, &req, &o, err);
	json_object_put(body);
	if (rc == 0)
		rc = up_upload_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

int up_part_add(up_client *c, const char *upload_id, const struct up_source *src,
		struct up_part *out, struct up_error *err)
{
	if (!up_id_valid(upload_id))
		return bad_id(err, "upload", upload_id);
	if (src->len > UP_MAX_PART)
		return up_error_set(err, -EFBIG, 0, "a part holds at most %u bytes", UP_MAX_PART);
	char path[UP_ID_MAX + 32];
	snprintf(path, sizeof path, "/uploads/%s/parts", upload_id);
	char name[32];
	snprintf(name, sizeof name, "part@%llu", (unsigned long long)src->place);
	struct up_http_req req = {.method = "POST",
				  .path = path,
				  .part = src,
				  .part_field = "data",
				  .part_filename = src->placed ? name : NULL,
				  .out_fd = -1};
	json_object *o = NULL;
	int rc = call_json(c, &req, &o, err);
	if (rc == 0)
		rc = up_part_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

int up_part_add_mem(up_client *c, const char *upload_id, const void *data, size_t len,
		    struct up_part *out, struct up_error *err)
{
	struct up_source src = {.kind = UP_SRC_MEM, .len = len, .mem = data};
	return up_part_add(c, upload_id, &src, out, err);
}

int up_part_add_fd(up_client *c, const char *upload_id, int fd, uint64_t offset, uint64_t len,
		   struct up_part *out, struct up_error *err)
{
	struct up_source src = {.kind = UP_SRC_FD, .len = len, .fd = fd, .offset = offset};
	return up_part_add(c, upload_id, &src, out, err);
}

static int upload_action(up_client *c, const char *upload_id, const char *action, json_object *body,
			 struct up_upload *out, struct up_error *err)
{
	if (!up_id_valid(upload_id))
		return bad_id(err, "upload", upload_id);
	char path[UP_ID_MAX + 32];
	snprintf(path, sizeof path, "/uploads/%s/%s", upload_id, action);
	size_t len = 0;
	const char *s =
	    body ? json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len) : NULL;
	struct up_http_req req = {
	    .method = "POST", .path = path, .json = s, .json_len = len, .out_fd = -1};
	json_object *o = NULL;
	int rc = call_json(c, &req, &o, err);
	if (rc == 0)
		rc = up_upload_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

int up_upload_complete(up_client *c, const char *upload_id, const char *const *part_ids,
		       size_t nparts, const char *md5_hex, struct up_upload *out,
		       struct up_error *err)
{
	json_object *body = json_object_new_object();
	json_object *ids = json_object_new_array_ext((int)nparts);
	for (size_t i = 0; i < nparts; i++)
		json_object_array_add(ids, json_object_new_string(part_ids[i]));
	json_object_object_add(body, "part_ids", ids);
	if (md5_hex)
		json_object_object_add(body, "md5", json_object_new_string(md5_hex));
	int rc = upload_action(c, upload_id, "complete", body, out, err);
	json_object_put(body);
	return rc;
}

int up_upload_cancel(up_client *c, const char *upload_id, struct up_upload *out,
		     struct up_error *err)
{
	return upload_action(c, upload_id, "cancel", NULL, out, err);
}

/* ---- files ---- */

int up_file_retrieve(up_client *c, const char *file_id, struct up_file *out, struct up_error *err)
{
	if (!up_id_valid(file_id))
		return bad_id(err, "file", file_id);
	char path[UP_ID_MAX + 16];
	snprintf(path, sizeof path, "/files/%s", file_id);
	struct up_http_req req = {.method = "GET", .path = path, .out_fd = -1};
	json_object *o = NULL;
	int rc = call_json(c, &req, &o, err);
	if (rc == 0)
		rc = up_file_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

int up_file_delete(up_client *c, const char *file_id, struct up_error *err)
{
	if (!up_id_valid(file_id))
		return bad_id(err, "file", file_id);
	char path[UP_ID_MAX + 16];
	snprintf(path, sizeof path, "/files/%s", file_id);
	struct up_http_req req = {.method = "DELETE", .path = path, .out_fd = -1};
	json_object *o = NULL, *v;
	int rc = call_json(c, &req, &o, err);
	if (rc == 0 &&
	    (!json_object_object_get_ex(o, "deleted", &v) || !json_object_get_boolean(v)))
		rc = up_error_set(err, -EIO, 200, "the server did not delete %s", file_id);
	json_object_put(o);
	return rc;
}

int up_file_content(up_client *c, const char *file_id, int fd, uint64_t *written,
		    struct up_error *err)
{
	return up_file_content_from(c, file_id, fd, 0, written, err);
}

int up_file_content_from(up_client *c, const char *file_id, int fd, uint64_t from,
			 uint64_t *written, struct up_error *err)
{
	if (!up_id_valid(file_id))
		return bad_id(err, "file", file_id);
	char path[UP_ID_MAX + 24];
	snprintf(path, sizeof path, "/files/%s/content", file_id);
	struct up_http_req req = {.method = "GET", .path = path, .out_fd = fd, .from = from};
	struct up_http_resp resp;
	int rc = up_http_do(c->http, &req, &resp, err);
	if (rc == 0 && written)
		*written = resp.written;
	/* OpenAI refuses some purposes with a 400 that means "not allowed", not "bad request". */
	if (rc == -EINVAL && err && strncmp(err->message, "Not allowed to download", 23) == 0)
		rc = err->errnum = -EACCES;
	up_http_resp_free(&resp);
	return rc;
}

int up_file_create(up_client *c, const struct up_source *src, const char *filename,
		   const char *purpose, struct up_file *out, struct up_error *err)
{
	if (!filename || !purpose)
		return up_error_set(err, -EINVAL, 0, "filename and purpose are required");
	struct up_http_req req = {.method = "POST",
				  .path = "/files",
				  .part = src,
				  .part_field = "file",
				  .part_filename = filename,
				  .form_name = "purpose",
				  .form_value = purpose,
				  .out_fd = -1};
	json_object *o = NULL;
	int rc = call_json(c, &req, &o, err);
	if (rc == 0)
		rc = up_file_from_json(o, out, err);
	json_object_put(o);
	return rc;
}

static int list_push(struct up_file_list *l, size_t *cap, struct up_file *f)
{
	if (l->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct up_file *nf = realloc(l->files, nc * sizeof *nf);
		if (!nf)
			return -ENOMEM;
		l->files = nf;
		*cap = nc;
	}
	l->files[l->n++] = *f;
	return 0;
}

/* One page: appends its files, and says where the next page starts. */
static int list_page(up_client *c, const char *path, struct up_file_list *l, size_t *cap,
		     size_t max, char next[UP_ID_MAX], bool *more, struct up_error *err)
{
	struct up_http_req req = {.method = "GET", .path = path, .out_fd = -1};
	json_object *o = NULL, *data, *hm;
	int rc = call_json(c, &req, &o, err);
	if (rc < 0)
		return rc;
	if (!json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array)) {
		json_object_put(o);
		return malformed(err, "file list", "data");
	}
	size_t n = json_object_array_length(data);
	*more =
	    json_object_object_get_ex(o, "has_more", &hm) && json_object_get_boolean(hm) && n > 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct up_file f;
		rc = up_file_from_json(json_object_array_get_idx(data, i), &f, err);
		if (rc == 0 && (max == 0 || l->n < max)) {
			snprintf(next, UP_ID_MAX, "%s", f.id);
			if (list_push(l, cap, &f) < 0) {
				up_file_clear(&f);
				rc = up_error_set(err, -ENOMEM, 0, "out of memory");
			}
		} else if (rc == 0) {
			up_file_clear(&f);
			*more = false;
		}
	}
	json_object_put(o);
	return rc;
}

int up_files_list(up_client *c, const struct up_list_query *q_in, struct up_file_list *out,
		  struct up_error *err)
{
	struct up_list_query q = q_in ? *q_in : (struct up_list_query){0};
	unsigned limit = q.limit ? q.limit : LIST_PAGE_MAX;
	if (limit > LIST_PAGE_MAX)
		return up_error_set(err, -EINVAL, 0, "limit must be 1..%d", LIST_PAGE_MAX);
	char *purpose = NULL;
	if (q.purpose && !(purpose = curl_easy_escape(NULL, q.purpose, 0)))
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	memset(out, 0, sizeof *out);
	size_t cap = 0;
	char after[UP_ID_MAX] = "";
	int rc = 0;
	for (bool more = true; rc == 0 && more;) {
		char path[512];
		char prev[UP_ID_MAX];
		snprintf(prev, sizeof prev, "%s", after);
		snprintf(path, sizeof path, "/files?limit=%u&order=%s%s%s%s%s", limit,
			 q.ascending ? "asc" : "desc", purpose ? "&purpose=" : "",
			 purpose ? purpose : "", after[0] ? "&after=" : "", after);
		rc = list_page(c, path, out, &cap, q.max_files, after, &more, err);
		/* A server that keeps saying has_more without moving on would loop forever. */
		if (rc == 0 && more && strcmp(prev, after) == 0)
			rc = up_error_set(err, -EPROTO, 200,
					  "the file list does not advance past '%s'", after);
	}
	curl_free(purpose);
	if (rc < 0)
		up_file_list_clear(out);
	return rc;
}
