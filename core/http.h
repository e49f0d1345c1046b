/* http: requests to the API over libcurl — reusable handles that share connections, DNS and
 * TLS sessions across threads; auth and Portkey headers; a stall timeout; retries with
 * backoff; parts as multipart/form-data with a Content-Length; redacted debug logging. */
#ifndef UP_HTTP_H
#define UP_HTTP_H

#include "uploadfs.h"

#include <stddef.h>

struct up_http;

struct up_http_opts {
	const char *base;	    /* ".../v1", no trailing slash */
	const char *bearer;	    /* Authorization: Bearer value; NULL: none */
	const char *const *headers; /* NULL-terminated "Name: value" lines (Portkey) */
	const char *const *secrets; /* NULL-terminated strings never to log */
	int retries;
	unsigned timeout;
	unsigned retry_window; /* seconds an outage is retried beyond retries; 0: not */
	const char *ca_file;   /* PEM CA certificates; NULL: the system's */
	up_log_fn log;
	void *log_ud;
	enum up_log_level level;
};

int up_http_new(const struct up_http_opts *o, struct up_http **out);
/* The outage the retries are waiting out, if any (uploadfs.h: up_client_away). */
void up_http_away(struct up_http *h, struct up_away *out);
void up_http_free(struct up_http *h);

/* Reads n bytes at off (within the part) from any kind of source: the count, or -errno. */
ssize_t up_source_pread(const struct up_source *src, uint64_t off, void *buf, size_t n);

struct up_http_req {
	const char *method; /* GET, POST, DELETE */
	const char *path;   /* after the base: "/uploads", "/files?limit=10" */
	const char *json;   /* a JSON body, or NULL */
	size_t json_len;
	const struct up_source *part; /* a multipart file field, or NULL */
	const char *part_field;	      /* "data", "file" */
	const char *part_filename;
	const char *form_name; /* one more text field, or NULL */
	const char *form_value;
	int out_fd; /* >= 0: a 2xx body is written here instead of kept */
	uint64_t from; /* a download resumed: out_fd holds the bytes before this one */
};

struct up_http_resp {
	int status;
	char *body; /* NUL-terminated; NULL when streamed to out_fd */
	size_t len;
	uint64_t written; /* bytes written to out_fd */
};

/* Performs the request, retrying what the retry policy allows. 0 on a 2xx answer (resp
 * filled, free it with up_http_resp_free); otherwise a negative errno and err. */
int up_http_do(struct up_http *h, const struct up_http_req *req, struct up_http_resp *resp,
	       struct up_error *err);
void up_http_resp_free(struct up_http_resp *resp);

/* Logs through the client's log function at level, if enabled. */
void up_http_log(struct up_http *h, enum up_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The first secret, for scrubbing messages (NULL if none). */
const char *up_http_secret(const struct up_http *h);

#endif
