#include "http.h"

#include "content.h"
#include "download.h"
#include "ids.h"
#include "route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define JSON_BODY_MAX	(8u << 20) /* complete with 8 GiB of 1 MiB parts is ~330 KiB */
#define FORM_FIELD_MAX	256
#define MULTIPART_SLACK (1u << 20) /* boundaries and headers around a part's bytes */
#define PP_BUFFER	(64u << 10)

enum fault {
	F_NONE,
	F_500 = SRV_FAIL_500,
	F_429 = SRV_FAIL_429,
	F_DROP = SRV_FAIL_DROP,
	F_DROP_AFTER = SRV_FAIL_DROP_AFTER,
};

struct srv_http {
	struct MHD_Daemon *d;
	struct srv_store *st;
	struct srv_http_config cfg;
	unsigned char key_hash[32];
	pthread_mutex_t mu; /* guards rng and fail_first */
	uint64_t rng;
	unsigned fail_first;
};

/* One request, across the handler's calls. */
struct req {
	struct srv_http *h;
	enum srv_route route;
	char id[SRV_ID_MAX];
	char *method, *path;
	json_object *log_headers;
	int status;
	bool dropped; /* by fault injection, on purpose */
	int64_t hashed_early; /* complete: the bytes hashed before it (-1: not a complete) */
	double start; /* when its headers had arrived (seconds since the epoch) */

	bool failed; /* answer err once the body is drained */
	struct srv_err err;

	char *body; /* JSON routes */
	size_t len, cap;

	struct MHD_PostProcessor *pp; /* multipart routes */
	struct srv_blob blob;
	uint64_t nbytes;
	unsigned nblob_fields;
	char *filename;
	char purpose[FORM_FIELD_MAX];
	char anchor[FORM_FIELD_MAX];
	char seconds[FORM_FIELD_MAX];
};

static int fail(struct req *r, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct req *r, int status, const char *param, const char *fmt, ...)
{
	if (r->failed)
		return -EINVAL; /* the first failure is the one answered */
	r->failed = true;
	va_list ap;
	va_start(ap, fmt);
	srv_err_vset(&r->err, EINVAL, status, param, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- responses ---- */

static enum MHD_Result respond(struct req *r, struct MHD_Connection *c, int status,
			       json_object *body, const char *const *extra_headers)
{
	size_t len;
	const char *s = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, (void *)s, MHD_RESPMEM_MUST_COPY);
	json_object_put(body);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	for (const char *const *hdr = extra_headers; hdr && hdr[0]; hdr += 2)
		MHD_add_response_header(resp, hdr[0], hdr[1]);
	r->status = status;
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result respond_err(struct req *r, struct MHD_Connection *c,
				   const struct srv_err *err)
{
	return respond(r, c, err->status, srv_err_json(err), NULL);
}

/* ---- faults ---- */

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: small, seedable, good enough to pick faults */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static enum fault pick_fault(struct srv_http *h)
{
	if (h->cfg.fail_rate <= 0 && h->cfg.fail_first == 0)
		return F_NONE;
	pthread_mutex_lock(&h->mu);
	bool forced = h->fail_first > 0;
	if (forced)
		h->fail_first--;
	double roll = (double)(rng_next(&h->rng) >> 11) / (double)(1ull << 53);
	uint64_t kind = rng_next(&h->rng);
	pthread_mutex_unlock(&h->mu);
	if (!forced && roll >= h->cfg.fail_rate)
		return F_NONE;
	if (h->cfg.fail_kind != SRV_FAIL_MIXED)
		return (enum fault)h->cfg.fail_kind;
	switch (kind % 4) {
	case 0:
		return F_500;
	case 1:
		return F_429;
	case 2:
		return F_DROP; /* before the request takes effect */
	default:
		return F_DROP_AFTER; /* it takes effect, the response is lost */
	}
}

static enum MHD_Result answer_fault(struct req *r, struct MHD_Connection *c, enum fault f)
{
	struct srv_err e;
	if (f == F_429) {
		srv_err_set(&e, EAGAIN, 429, NULL, "Rate limit reached (injected fault).");
		e.code = "rate_limit_exceeded";
		static const char *const hdrs[] = {"Retry-After", "1", "retry-after-ms", "200",
						   NULL};
		return respond(r, c, 429, srv_err_json(&e), hdrs);
	}
	srv_err_set(&e, EIO, 500, NULL,
		    "The server had an error processing your request "
		    "(injected fault).");
	return respond(r, c, 500, srv_err_json(&e), NULL);
}

/* ---- auth ---- */

static void sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned n = 32;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static bool authorized(struct srv_http *h, struct MHD_Connection *c, struct req *r)
{
	if (!h->cfg.api_key)
		return true;
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
		fail(r, 401, NULL,
		     "You didn't provide an API key. You need to provide your API key in an "
		     "Authorization header using Bearer auth (i.e. Authorization: Bearer "
		     "YOUR_KEY).");
		return false;
	}
	/* Compare digests in constant time: neither the key nor its length leaks. */
	unsigned char got[32];
	sha256(auth + 7, strlen(auth + 7), got);
	if (CRYPTO_memcmp(got, h->key_hash, 32) != 0) {
		fail(r, 401, NULL, "Incorrect API key provided.");
		r->err.code = "invalid_api_key";
		return false;
	}
	return true;
}

/* ---- request log ---- */

/* key is lower case. "x-portkey-provider" is not a secret; "x-portkey-api-key" is. */
static bool secret_header(const char *key)
{
	size_t n = strlen(key);
	return strcmp(key, "authorization") == 0 || strcmp(key, "proxy-authorization") == 0 ||
	       strcmp(key, "cookie") == 0 || strcmp(key, "api-key") == 0 ||
	       (n > 4 && (strcmp(key + n - 4, "-key") == 0 || strcmp(key + n - 4, "_key") == 0)) ||
	       strstr(key, "token") || strstr(key, "secret");
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	(void)kind;
	json_object *o = cls;
	char lower[128];
	size_t i = 0;
	for (; key[i] && i < sizeof lower - 1; i++)
		lower[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
	lower[i] = '\0';
	json_object_object_add(
	    o, lower,
	    json_object_new_string(secret_header(lower) ? "[REDACTED]" : (value ? value : "")));
	return MHD_YES;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_request(struct req *r, enum MHD_RequestTerminationCode toe)
{
	if (r->h->cfg.log_fd < 0)
		return;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "path", json_object_new_string(r->path));
	json_object_object_add(o, "status", json_object_new_int(r->status));
	/* when it began and ended: the log shows which requests overlapped */
	json_object_object_add(o, "start", json_object_new_double(r->start));
	json_object_object_add(o, "end", json_object_new_double(wall_s()));
	if (r->hashed_early >= 0)
		json_object_object_add(o, "hashed_early", json_object_new_int64(r->hashed_early));
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		json_object_object_add(o, r->dropped ? "injected_drop" : "dropped",
				       json_object_new_boolean(1));
	json_object_object_add(o, "headers", json_object_get(r->log_headers));
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	char *line = malloc(len + 1);
	if (line) {
		memcpy(line, s, len);
		line[len] = '\n';
		/* One write per line on an O_APPEND fd: lines never interleave. */
		if (write(r->h->cfg.log_fd, line, len + 1) < 0)
			fprintf(stderr, "uploadfs-server: request log: %s\n", strerror(errno));
		free(line);
	}
	json_object_put(o);
}

/* ---- multipart ---- */

static void form_field(struct req *r, char *dst, const char *data, uint64_t off, size_t size,
		       const char *key)
{
	if (off + size >= FORM_FIELD_MAX) {
		fail(r, 400, key, "Form field '%s' is too long", key);
		return;
	}
	memcpy(dst + off, data, size);
	dst[off + size] = '\0';
}

static void blob_data(struct req *r, const char *data, uint64_t off, size_t size, uint64_t max,
		      const char *param)
{
	/* A field begins at offset 0; libmicrohttpd may call more than once at offset 0 for
	 * one field (with no bytes first) when its bytes arrive in separate reads, so only an
	 * offset 0 after bytes were taken is a second field. */
	if (off == 0 && (r->nblob_fields == 0 || r->nbytes > 0) && ++r->nblob_fields > 1) {
		fail(r, 400, param, "Exactly one '%s' field is allowed", param);
		return;
	}
	if (r->nbytes == 0 && size > 0 && r->route == SRV_R_PART)
		srv_part_body(r->h->st, &r->blob);
	r->nbytes += size;
	if (r->nbytes > max) {
		fail(r, 400, param,
		     r->route == SRV_R_PART ? "Part is too large (the maximum is %llu bytes)"
					: "File is too large (the maximum is %llu bytes).",
		     (unsigned long long)max);
		return;
	}
	for (size_t done = 0; done < size;) {
		ssize_t w = write(r->blob.fd, data + done, size - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "uploadfs-server: writing %s: %s\n", param,
				strerror(errno));
			fail(r, 500, NULL, "The server could not store the data: %s",
			     strerror(errno));
			return;
		}
		done += (size_t)w;
	}
}

static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *filename, const char *content_type,
				const char *transfer_encoding, const char *data, uint64_t off,
				size_t size)
{
	(void)kind;
	(void)content_type;
	(void)transfer_encoding;
	struct req *r = cls;
	if (r->failed)
		return MHD_YES; /* drain the rest, answer the error at the end */
	if (!key) {
		/* a part whose Content-Disposition has no name (found by fuzz_server_http) */
		fail(r, 400, NULL, "A multipart/form-data field has no name.");
		return MHD_YES;
	}
	if (r->route == SRV_R_PART) {
		/* "part@OFFSET": where the part sits in its file, from uploadfs's client; any
		 * other name (or none) says nothing */
		unsigned long long place;
		int end = 0;
		if (off == 0 && filename && !r->blob.placed &&
		    sscanf(filename, "part@%llu%n", &place, &end) == 1 && filename[end] == '\0' &&
		    filename[5] >= '0' && filename[5] <= '9') {
			r->blob.placed = true;
			r->blob.place = place;
		}
		if (strcmp(key, "data") == 0)
			blob_data(r, data, off, size, r->h->cfg.max_part_bytes, "data");
		else
			fail(r, 400, key, "Unrecognized request argument supplied: %.64s", key);
		return MHD_YES;
	}
	if (strcmp(key, "file") == 0) {
		if (off == 0 && filename && !r->filename)
			r->filename = strdup(filename);
		blob_data(r, data, off, size, r->h->cfg.max_file_bytes, "file");
	} else if (strcmp(key, "purpose") == 0) {
		form_field(r, r->purpose, data, off, size, key);
	} else if (strcmp(key, "expires_after[anchor]") == 0) {
		form_field(r, r->anchor, data, off, size, key);
	} else if (strcmp(key, "expires_after[seconds]") == 0) {
		form_field(r, r->seconds, data, off, size, key);
	} else {
		fail(r, 400, key, "Unrecognized request argument supplied: %.64s", key);
	}
	return MHD_YES;
}

/* ---- the request's first call: route, auth, and how to take the body ---- */

static uint64_t content_length(struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	return cl ? strtoull(cl, NULL, 10) : 0;
}

static void begin_body(struct req *r, struct MHD_Connection *c)
{
	struct srv_http *h = r->h;
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (r->route == SRV_R_UPLOAD_CREATE || r->route == SRV_R_COMPLETE) {
		if (ct && !srv_ctype_is(ct, "application/json"))
			fail(r, 400, NULL,
			     "Invalid Content-Type header (%.64s); expected application/json.", ct);
		return;
	}
	if (r->route != SRV_R_PART && r->route != SRV_R_FILE_CREATE)
		return;
	if (!srv_ctype_is(ct, "multipart/form-data")) {
		fail(r, 400, NULL,
		     "Invalid Content-Type header (%.64s); expected "
		     "multipart/form-data.",
		     ct ? ct : "none");
		return;
	}
	uint64_t max = r->route == SRV_R_PART ? h->cfg.max_part_bytes : h->cfg.max_file_bytes;
	if (content_length(c) > max + MULTIPART_SLACK) {
		fail(r, 400, r->route == SRV_R_PART ? "data" : "file",
		     "Request body is too large (the maximum is %llu bytes of data)",
		     (unsigned long long)max);
		return;
	}
	r->pp = MHD_create_post_processor(c, PP_BUFFER, on_field, r);
	if (!r->pp) {
		fail(r, 400, NULL, "Malformed multipart/form-data Content-Type (no boundary?).");
		return;
	}
	struct srv_err e;
	int rc = r->route == SRV_R_PART ? srv_part_begin(h->st, r->id, &r->blob, &e)
				    : srv_file_begin(h->st, &r->blob, &e);
	if (rc < 0) {
		r->failed = true;
		r->err = e;
	}
}

static struct req *req_new(struct srv_http *h, struct MHD_Connection *c, const char *url,
			   const char *method)
{
	struct req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->start = wall_s();
	r->h = h;
	r->blob.fd = -1;
	r->hashed_early = -1;
	r->method = strdup(method);
	r->path = strdup(url);
	if (!r->method || !r->path) {
		free(r->method);
		free(r->path);
		free(r);
		return NULL;
	}
	if (h->cfg.log_fd >= 0) {
		r->log_headers = json_object_new_object();
		MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r->log_headers);
	}
	r->route = srv_route_of(method, url, r->id, h->cfg.no_uploads);
	if (!authorized(h, c, r))
		return r;
	if (r->route == SRV_R_NONE) {
		fail(r, 404, NULL, "Invalid URL (%.16s %.256s)", method, url);
		return r;
	}
	begin_body(r, c);
	return r;
}

/* ---- the body ---- */

static void take_body(struct req *r, const char *data, size_t size)
{
	if (r->failed)
		return;
	if (r->pp) {
		if (MHD_post_process(r->pp, data, size) != MHD_YES)
			fail(r, 400, NULL, "Malformed multipart/form-data body.");
		return;
	}
	if (!srv_route_json(r->route)) {
		fail(r, 400, NULL, "This endpoint takes no request body.");
		return;
	}
	if (r->len + size > JSON_BODY_MAX) {
		fail(r, 400, NULL, "Request body is too large (the maximum is %u bytes).",
		     JSON_BODY_MAX);
		return;
	}
	if (r->len + size + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + size + 1)
			cap *= 2;
		char *nb = realloc(r->body, cap);
		if (!nb) {
			fail(r, 500, NULL, "out of memory");
			return;
		}
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, size);
	r->len += size;
	r->body[r->len] = '\0';
}

static json_object *parse_json_body(struct req *r)
{
	if (r->len == 0) {
		fail(r, 400, NULL, "The request body must be a JSON object.");
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new();
	if (!tok) {
		fail(r, 500, NULL, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, r->body, (int)r->len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success || used != r->len) {
		json_object_put(o);
		fail(r, 400, NULL,
		     "We could not parse the JSON body of your request. (HINT: This likely means "
		     "you aren't using your HTTP library correctly.)");
		return NULL;
	}
	return o;
}

/* ---- the final call: do it and answer ---- */

static int list_query(struct req *r, struct MHD_Connection *c, struct srv_list_query *q)
{
	q->purpose = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "purpose");
	q->after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *order = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "order");
	q->limit = 10000;
	q->ascending = false;
	if (q->purpose && !*q->purpose)
		q->purpose = NULL;
	if (q->after && !*q->after)
		q->after = NULL;
	if (limit) {
		char *end = NULL;
		unsigned long long v = strtoull(limit, &end, 10);
		if (!*limit || *end || limit[0] == '-' || v < 1 || v > 10000)
			return fail(r, 400, "limit", "limit must be an integer from 1 to 10000");
		q->limit = v;
	}
	if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		return fail(r, 400, "order", "order must be 'asc' or 'desc'");
	q->ascending = order && strcmp(order, "asc") == 0;
	return 0;
}

static int run_json_route(struct req *r, json_object **out, struct srv_err *e)
{
	struct srv_store *st = r->h->st;
	if (r->route == SRV_R_CANCEL) {
		/* cancel takes no body; an SDK may send "{}" or an empty JSON body */
		if (r->len) {
			json_object *o = parse_json_body(r);
			bool obj = o && json_object_is_type(o, json_type_object);
			json_object_put(o);
			if (!obj)
				return fail(r, 400, NULL,
					    "The cancel body must be empty or a JSON "
					    "object.");
		}
		return srv_upload_cancel(st, r->id, out, e);
	}
	json_object *req = parse_json_body(r);
	if (!req)
		return -EINVAL;
	int rc;
	if (r->route == SRV_R_UPLOAD_CREATE) {
		rc = srv_upload_create(st, req, out, e);
	} else {
		uint64_t early = 0;
		rc = srv_upload_complete(st, r->id, req, out, &early, e);
		r->hashed_early = (int64_t)early;
	}
	json_object_put(req);
	return rc;
}

/* A download read through this process: content in several pieces, a range of it, or
 * one to cut short (--cut-downloads). */
static enum MHD_Result answer_content(struct req *r, struct MHD_Connection *c)
{
	struct srv_err e;
	enum MHD_Result ret;
	if (srv_download_answer(c, r->h->st, r->id, r->h->cfg.cut_downloads, &r->status, &ret,
				&e) < 0)
		return respond_err(r, c, &e);
	return ret;
}

/* An injected dropped connection: the client sees the connection close, no answer. */
static enum MHD_Result drop(struct req *r)
{
	r->dropped = true;
	return MHD_NO;
}

static enum MHD_Result finish(struct req *r, struct MHD_Connection *c)
{
	struct srv_http *h = r->h;
	if (r->pp) {
		if (MHD_destroy_post_processor(r->pp) != MHD_YES)
			fail(r, 400, NULL, "Malformed or truncated multipart/form-data body.");
		r->pp = NULL;
	}
	if (r->route == SRV_R_PART && !r->failed && r->nblob_fields == 0)
		fail(r, 400, "data", "Missing required parameter: 'data'.");
	if (h->cfg.latency_ms)
		usleep(h->cfg.latency_ms * 1000u);
	if (r->failed) {
		srv_blob_abort(&r->blob);
		return respond_err(r, c, &r->err);
	}

	enum fault f = (r->route == SRV_R_PART || r->route == SRV_R_COMPLETE) ? pick_fault(h) : F_NONE;
	if (f == F_500 || f == F_429 || f == F_DROP) {
		srv_blob_abort(&r->blob);
		return f == F_DROP ? drop(r) : answer_fault(r, c, f);
	}

	json_object *out = NULL;
	struct srv_err e;
	int rc = 0;
	switch (r->route) {
	case SRV_R_PART:
		rc = srv_part_commit(h->st, &r->blob, r->nbytes, &out, &e);
		break;
	case SRV_R_FILE_CREATE: {
		struct srv_file_form form = {
		    .filename = r->filename,
		    .purpose = r->purpose[0] ? r->purpose : NULL,
		    .expires_anchor = r->anchor[0] ? r->anchor : NULL,
		    .expires_seconds = r->seconds[0] ? r->seconds : NULL,
		};
		rc = srv_file_commit(h->st, &r->blob, r->nbytes, &form, &out, &e);
		break;
	}
	case SRV_R_FILES_LIST: {
		struct srv_list_query q;
		if (list_query(r, c, &q) < 0)
			return respond_err(r, c, &r->err);
		rc = srv_files_list(h->st, &q, &out, &e);
		break;
	}
	case SRV_R_FILE_GET:
		rc = srv_file_get(h->st, r->id, &out, &e);
		break;
	case SRV_R_FILE_DELETE:
		rc = srv_file_delete(h->st, r->id, &out, &e);
		break;
	case SRV_R_FILE_CONTENT:
		return answer_content(r, c);
	default:
		rc = run_json_route(r, &out, &e);
		if (rc < 0 && r->failed)
			return respond_err(r, c, &r->err);
		break;
	}
	if (rc < 0)
		return respond_err(r, c, &e);
	if (f == F_DROP_AFTER) {
		json_object_put(out);
		return drop(r);
	}
	return respond(r, c, 200, out, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version;
	struct req *r = *req_cls;
	if (!r) {
		r = req_new(cls, c, url, method);
		*req_cls = r;
		if (!r)
			fprintf(stderr, "uploadfs-server: out of memory, closing a connection\n");
		return r ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size) {
		take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	return finish(r, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	struct req *r = *req_cls;
	if (!r)
		return;
	log_request(r, toe);
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	if (r->route == SRV_R_PART)
		srv_part_end(r->h->st, &r->blob);
	else
		srv_blob_abort(&r->blob);
	if (r->route == SRV_R_COMPLETE || r->route == SRV_R_CANCEL || r->route == SRV_R_FILE_DELETE)
		srv_store_reap(r->h->st);
	json_object_put(r->log_headers);
	free(r->body);
	free(r->filename);
	free(r->method);
	free(r->path);
	free(r);
	*req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	/* Said by libmicrohttpd whenever the handler returns MHD_NO: that is an injected drop
	 * or an allocation failure, each of which is told where it happens. */
	char buf[512];
	vsnprintf(buf, sizeof buf, fmt, ap);
	if (strncmp(buf, "Application reported internal error", 35) == 0)
		return;
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fprintf(stderr, "uploadfs-server: http: %s\n", buf);
}

int srv_http_start(const struct srv_http_config *cfg, struct srv_store *st, struct srv_http **out,
		   unsigned *port)
{
	struct srv_http *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->st = st;
	h->cfg = *cfg;
	h->rng = cfg->seed;
	h->fail_first = cfg->fail_first;
	pthread_mutex_init(&h->mu, NULL);
	if (cfg->api_key)
		sha256(cfg->api_key, strlen(cfg->api_key), h->key_hash);
	unsigned flags =
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	if (!cfg->addr)
		flags |=
		    MHD_USE_NO_LISTEN_SOCKET; /* connections come from srv_http_add_connection */
	else if (cfg->addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	bool tls = cfg->tls_cert && cfg->tls_key;
	if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		pthread_mutex_destroy(&h->mu);
		free(h);
		return -EPROTO;
	}
	if (tls)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem opts[] = {
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
	    {MHD_OPTION_CONNECTION_TIMEOUT, 300, NULL},
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 256 << 10, NULL},
	    {MHD_OPTION_CONNECTION_LIMIT, 1000, NULL},
	    {MHD_OPTION_END, 0, NULL}, /* the listening address, if any */
	    {MHD_OPTION_END, 0, NULL}, /* the certificate */
	    {MHD_OPTION_END, 0, NULL}, /* its key */
	    {MHD_OPTION_END, 0, NULL},
	};
	size_t n = 5;
	if (cfg->addr)
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)cfg->addr};
	if (tls) {
		/* libmicrohttpd hands the PEM text to GnuTLS, which keeps its own copy */
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
						    (void *)cfg->tls_cert};
		opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
						    (void *)cfg->tls_key};
	}
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (!h->d) {
		int e = tls ? EPROTO : errno ? errno : EADDRINUSE;
		pthread_mutex_destroy(&h->mu);
		free(h);
		return -e;
	}
	const union MHD_DaemonInfo *info =
	    cfg->addr ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	*port = info ? info->port : 0;
	*out = h;
	return 0;
}

void srv_http_stop(struct srv_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

int srv_http_add_connection(struct srv_http *h, int fd)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	return MHD_add_connection(h->d, fd, (const struct sockaddr *)&peer, sizeof peer) == MHD_YES
		   ? 0
		   : -EIO;
}
