#include "http.h"

#include "errors.h"
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX   (32u << 20) /* a JSON answer; a 10000-file page is a few MiB */
#define IDLE_MAX   32	       /* easy handles kept for reuse */
#define LOCK_TYPES (CURL_LOCK_DATA_LAST)

struct up_http {
	char *base;
	char *auth_header; /* "Authorization: Bearer ..." */
	struct curl_slist *headers;
	char **secrets;
	int retries;
	unsigned timeout;
	unsigned retry_window;
	char *ca_file; /* NULL: libcurl's default */
	pthread_mutex_t away_mu; /* guards away; a leaf lock, never held over I/O */
	struct up_away away;
	up_log_fn log;
	void *log_ud;
	enum up_log_level level;
	CURLSH *share;
	pthread_mutex_t share_mu[LOCK_TYPES];
	pthread_mutex_t idle_mu;
	CURL *idle[IDLE_MAX];
	size_t nidle;
	atomic_uint_fast64_t seed;
};

void up_http_log(struct up_http *h, enum up_log_level level, const char *fmt, ...)
{
	if (!h->log || level > h->level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	h->log(h->log_ud, level, line);
}

const char *up_http_secret(const struct up_http *h)
{
	return h->secrets && h->secrets[0] ? h->secrets[0] : NULL;
}

static void share_lock(CURL *e, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)e;
	(void)access;
	struct up_http *h = ud;
	pthread_mutex_lock(&h->share_mu[data % LOCK_TYPES]);
}

static void share_unlock(CURL *e, curl_lock_data data, void *ud)
{
	(void)e;
	struct up_http *h = ud;
	pthread_mutex_unlock(&h->share_mu[data % LOCK_TYPES]);
}

int up_http_new(const struct up_http_opts *o, struct up_http **out)
{
	struct up_http *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->retries = o->retries;
	h->timeout = o->timeout;
	h->retry_window = o->retry_window;
	h->log = o->log;
	h->log_ud = o->log_ud;
	h->level = o->level;
	atomic_init(&h->seed, (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)h);
	pthread_mutex_init(&h->idle_mu, NULL);
	pthread_mutex_init(&h->away_mu, NULL);
	for (int i = 0; i < LOCK_TYPES; i++)
		pthread_mutex_init(&h->share_mu[i], NULL);
	int rc = 0;
	if (!(h->base = strdup(o->base)))
		rc = -ENOMEM;
	if (rc == 0 && o->ca_file && !(h->ca_file = strdup(o->ca_file)))
		rc = -ENOMEM;
	if (rc == 0 && o->bearer) {
		size_t n = strlen(o->bearer) + 32;
		if (!(h->auth_header = malloc(n)))
			rc = -ENOMEM;
		else
			snprintf(h->auth_header, n, "Authorization: Bearer %s", o->bearer);
	}
	for (const char *const *p = o->headers; rc == 0 && p && *p; p++) {
		struct curl_slist *l = curl_slist_append(h->headers, *p);
		if (!l)
			rc = -ENOMEM;
		else
			h->headers = l;
	}
	size_t ns = 0;
	while (o->secrets && o->secrets[ns])
		ns++;
	if (rc == 0 && !(h->secrets = calloc(ns + 1, sizeof *h->secrets)))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < ns; i++)
		if (!(h->secrets[i] = strdup(o->secrets[i])))
			rc = -ENOMEM;
	if (rc == 0 && !(h->share = curl_share_init()))
		rc = -ENOMEM;
	if (rc == 0) {
		curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
		curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
		curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
		curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	}
	if (rc < 0) {
		up_http_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void up_http_free(struct up_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	curl_slist_free_all(h->headers);
	if (h->auth_header) {
		explicit_bzero(h->auth_header, strlen(h->auth_header));
		free(h->auth_header);
	}
	for (char **s = h->secrets; s && *s; s++) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
	}
	free(h->secrets);
	free(h->base);
	free(h->ca_file);
	for (int i = 0; i < LOCK_TYPES; i++)
		pthread_mutex_destroy(&h->share_mu[i]);
	pthread_mutex_destroy(&h->idle_mu);
	pthread_mutex_destroy(&h->away_mu);
	free(h);
}

/* Handles are reused: each keeps its connections alive for the next request. */
static CURL *handle_get(struct up_http *h)
{
	CURL *e = NULL;
	pthread_mutex_lock(&h->idle_mu);
	if (h->nidle)
		e = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->idle_mu);
	return e ? e : curl_easy_init();
}

static void handle_put(struct up_http *h, CURL *e)
{
	curl_easy_reset(e); /* keeps live connections and caches */
	pthread_mutex_lock(&h->idle_mu);
	if (h->nidle < IDLE_MAX) {
		h->idle[h->nidle++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&h->idle_mu);
	if (e)
		curl_easy_cleanup(e);
}

void up_http_resp_free(struct up_http_resp *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof *resp);
}

/* ---- one attempt ---- */

struct source_ctx {
	const struct up_source *src;
	uint64_t pos;
	int err; /* errno of a failed read */
};

ssize_t up_source_pread(const struct up_source *src, uint64_t off, void *buf, size_t n)
{
	switch (src->kind) {
	case UP_SRC_MEM:
		memcpy(buf, (const char *)src->mem + off, n);
		return (ssize_t)n;
	case UP_SRC_FD: {
		ssize_t r;
		do
			r = pread(src->fd, buf, n, (off_t)(src->offset + off));
		while (r < 0 && errno == EINTR);
		return r < 0 ? -errno : r;
	}
	case UP_SRC_CB:
		return src->read(src->ud, off, buf, n);
	}
	return -EINVAL;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct source_ctx *s = ud;
	uint64_t left = s->src->len - s->pos;
	size_t n = size * nitems;
	if (n > left)
		n = (size_t)left;
	if (n == 0)
		return 0;
	ssize_t r = up_source_pread(s->src, s->pos, buf, n);
	if (r <= 0) {
		/* The source got shorter than it said: never send other bytes in its place. */
		s->err = r < 0 ? (int)-r : EIO;
		return CURL_READFUNC_ABORT;
	}
	s->pos += (uint64_t)r;
	return (size_t)r;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct source_ctx *s = ud;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > s->src->len)
		return CURL_SEEKFUNC_FAIL;
	s->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

struct attempt {
	struct up_http_resp *resp;
	unsigned timeout;
	double last_move; /* when a byte last moved, either way */
	curl_off_t last_dl, last_ul;
	bool stalled;
	int out_fd;
	bool too_big;
	int write_err;
	char retry_after_ms[32];
	char retry_after[64];
	char should_retry[8];
	char curl_err[CURL_ERROR_SIZE]; /* libcurl's detail of a failure ("" if none) */
	/* a download resumed: the bytes already in out_fd from earlier tries, asked for from
	 * there with a Range; restart: the server sent it all again instead (out_fd was
	 * rewound to out_start) */
	uint64_t resume;
	off_t out_start;
	bool restart;
};

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct attempt *a = ud;
	size_t n = size * nitems;
	if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue, say): forget the previous one's headers */
		a->retry_after_ms[0] = a->retry_after[0] = a->should_retry[0] = '\0';
		return n;
	}
	static const struct {
		const char *name;
		size_t off, len;
	} want[] = {
	    {"retry-after-ms:", offsetof(struct attempt, retry_after_ms), 32},
	    {"retry-after:", offsetof(struct attempt, retry_after), 64},
	    {"x-should-retry:", offsetof(struct attempt, should_retry), 8},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t k = strlen(want[i].name);
		if (n <= k || strncasecmp(buf, want[i].name, k) != 0)
			continue;
		const char *v = buf + k;
		size_t vl = n - k;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		char *dst = (char *)a + want[i].off;
		snprintf(dst, want[i].len, "%.*s", (int)vl, v);
	}
	return n;
}

static size_t on_write(char *buf, size_t size, size_t nitems, void *ud)
{
	struct attempt *a = ud;
	size_t n = size * nitems;
	if (a->out_fd >= 0 && a->resume && a->resp->status == 200 && !a->restart) {
		/* the whole file instead of the range asked for: start the target over */
		a->restart = true;
		if (a->out_start < 0 || ftruncate(a->out_fd, a->out_start) < 0 ||
		    lseek(a->out_fd, a->out_start, SEEK_SET) != a->out_start) {
			a->write_err = a->out_start < 0 ? ESPIPE : errno;
			return 0;
		}
	}
	if (a->out_fd >= 0 && a->resp->status >= 200 && a->resp->status < 300) {
		for (size_t done = 0; done < n;) {
			ssize_t w = write(a->out_fd, buf + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				a->write_err = errno;
				return 0;
			}
			done += (size_t)w;
		}
		a->resp->written += n;
		return n;
	}
	struct up_http_resp *r = a->resp;
	if (r->len + n > BODY_MAX) {
		a->too_big = true;
		return 0;
	}
	char *nb = realloc(r->body, r->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, buf, n);
	r->body = nb;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The stall timeout: no byte moved in either direction for `timeout` seconds. (libcurl's
 * LOW_SPEED averages over time, so a small body sent at once hides a silent server.) */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)ultotal;
	struct attempt *a = ud;
	double now = mono_s();
	if (dlnow != a->last_dl || ulnow != a->last_ul || a->last_move == 0) {
		a->last_dl = dlnow;
		a->last_ul = ulnow;
		a->last_move = now;
		return 0;
	}
	if (now - a->last_move >= (double)a->timeout) {
		a->stalled = true;
		return 1;
	}
	return 0;
}

/* The status is needed before the body arrives, to know where the body goes. */
static size_t on_header_status(char *buf, size_t size, size_t nitems, void *ud)
{
	struct attempt *a = ud;
	size_t n = size * nitems;
	if (n > 12 && strncmp(buf, "HTTP/", 5) == 0) {
		const char *sp = memchr(buf, ' ', n);
		if (sp)
			a->resp->status = atoi(sp + 1);
	}
	return on_header(buf, size, nitems, ud);
}

static void log_request(struct up_http *h, const struct up_http_req *r)
{
	if (!h->log || h->level < UP_LOG_DEBUG)
		return;
	char hdrs[512] = "";
	size_t off = 0;
	if (h->auth_header)
		off += (size_t)snprintf(hdrs, sizeof hdrs, " Authorization: Bearer [REDACTED];");
	for (struct curl_slist *l = h->headers; l && off < sizeof hdrs; l = l->next) {
		const char *colon = strchr(l->data, ':');
		int nlen = colon ? (int)(colon - l->data) : (int)strlen(l->data);
		bool secret = nlen >= 4 && strncasecmp(l->data + nlen - 4, "-key", 4) == 0;
		off += (size_t)snprintf(hdrs + off, sizeof hdrs - off, " %.*s: %s;", nlen, l->data,
					secret ? "[REDACTED]" : (colon ? colon + 2 : ""));
	}
	up_http_log(h, UP_LOG_DEBUG, "-> %s %s%s%s", r->method, h->base, r->path, hdrs);
}

static CURLcode perform(struct up_http *h, CURL *e, const struct up_http_req *r,
			struct curl_slist *hdrs, struct attempt *a, struct source_ctx *src)
{
	char *url = NULL;
	size_t ulen = strlen(h->base) + strlen(r->path) + 1;
	if (!(url = malloc(ulen)))
		return CURLE_OUT_OF_MEMORY;
	snprintf(url, ulen, "%s%s", h->base, r->path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_SHARE, h->share);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "uploadfs/" UP_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L); /* always: never turned off */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A stall timeout, not a total one: an 8 GiB part stream may take long, a silent
	 * peer may not. */
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)h->timeout);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, a);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_status);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);

	curl_mime *mime = NULL;
	if (r->part) {
		mime = curl_mime_init(e);
		curl_mimepart *p = curl_mime_addpart(mime);
		curl_mime_name(p, r->part_field);
		curl_mime_filename(p, r->part_filename ? r->part_filename : "part");
		curl_mime_type(p, "application/octet-stream");
		/* With its size known, the whole body gets a Content-Length (not chunked). */
		curl_mime_data_cb(p, (curl_off_t)r->part->len, on_read, on_seek, NULL, src);
		if (r->form_name) {
			curl_mimepart *f = curl_mime_addpart(mime);
			curl_mime_name(f, r->form_name);
			curl_mime_data(f, r->form_value, CURL_ZERO_TERMINATED);
		}
		curl_easy_setopt(e, CURLOPT_MIMEPOST, mime);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->json ? r->json : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(r->json ? r->json_len : 0));
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	}
	a->curl_err[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, a->curl_err);
	char range[32];
	snprintf(range, sizeof range, "%llu-", (unsigned long long)a->resume);
	curl_easy_setopt(e, CURLOPT_RANGE, a->resume ? range : NULL);
	CURLcode code = curl_easy_perform(e);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	curl_mime_free(mime);
	free(url);
	return code;
}

/* A failed transfer as one line: libcurl's detail where it has one, and for a certificate
 * that is not trusted, what to do about it. */
static int curl_error(struct up_error *err, CURLcode code, const char *detail)
{
	const char *what = detail[0] ? detail : curl_easy_strerror(code);
	bool tls = code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
		   code == CURLE_SSL_CONNECT_ERROR || code == CURLE_SSL_CERTPROBLEM;
	if (tls && strstr(what, "host name"))
		return up_error_set(err, up_errno_for_curl(code), 0,
				    "TLS: %s (the server's certificate is for another name: use "
				    "that name in the base URL)",
				    what);
	if (tls)
		return up_error_set(err, up_errno_for_curl(code), 0,
				    "TLS: %s (the server is not trusted: give its CA certificate "
				    "with ca_file or $SSL_CERT_FILE)",
				    what);
	return up_error_set(err, up_errno_for_curl(code), 0, "%s", what);
}

/* Rewinds a download target for a retry; false if it cannot be (a pipe already fed). */
static bool rewind_out(int fd, off_t start, uint64_t written)
{
	if (fd < 0 || written == 0)
		return true;
	if (start < 0)
		return false;
	return ftruncate(fd, start) == 0 && lseek(fd, start, SEEK_SET) == start;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {.tv_sec = (time_t)s,
			      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct curl_slist *request_headers(struct up_http *h, const struct up_http_req *r)
{
	struct curl_slist *l = NULL, *t;
#define ADD(s)                                                                                     \
	do {                                                                                       \
		if (!(t = curl_slist_append(l, (s)))) {                                            \
			curl_slist_free_all(l);                                                    \
			return NULL;                                                               \
		}                                                                                  \
		l = t;                                                                             \
	} while (0)
	ADD(r->out_fd >= 0 ? "Accept: application/octet-stream" : "Accept: application/json");
	/* Never `Expect: 100-continue` (libcurl's default for a body of 1 MiB or more): it
	 * costs every part a round trip before its first byte, and saves a body only when the
	 * server refuses the request, which retries and errors already handle. */
	ADD("Expect:");
	if (r->json || (!r->part && strcmp(r->method, "POST") == 0))
		ADD("Content-Type: application/json");
	if (h->auth_header)
		ADD(h->auth_header);
	for (struct curl_slist *x = h->headers; x; x = x->next)
		ADD(x->data);
#undef ADD
	return l;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A request waits `wait` s to try a server that is away again. */
static void away(struct up_http *h, double wait, const char *why)
{
	double now = wall_s();
	pthread_mutex_lock(&h->away_mu);
	if (!h->away.away) {
		h->away.away = true;
		h->away.since = now;
	}
	h->away.retry_at = now + wait;
	size_t n = strnlen(why, sizeof h->away.error - 1);
	memcpy(h->away.error, why, n);
	h->away.error[n] = '\0';
	pthread_mutex_unlock(&h->away_mu);
}

static void back(struct up_http *h)
{
	pthread_mutex_lock(&h->away_mu);
	h->away.away = false;
	pthread_mutex_unlock(&h->away_mu);
}

void up_http_away(struct up_http *h, struct up_away *out)
{
	pthread_mutex_lock(&h->away_mu);
	*out = h->away;
	pthread_mutex_unlock(&h->away_mu);
}

int up_http_do(struct up_http *h, const struct up_http_req *r, struct up_http_resp *resp,
	       struct up_error *err)
{
	memset(resp, 0, sizeof *resp);
	struct curl_slist *hdrs = request_headers(h, r);
	CURL *e = handle_get(h);
	if (!hdrs || !e) {
		curl_slist_free_all(hdrs);
		if (e)
			curl_easy_cleanup(e);
		return up_error_set(err, -ENOMEM, 0, "out of memory");
	}
	uint64_t rng = atomic_fetch_add(&h->seed, 0x9e3779b97f4a7c15ull);
	off_t out_start = r->out_fd >= 0 ? lseek(r->out_fd, 0, SEEK_CUR) : -1;
	if (out_start >= 0 && r->from) /* the target's start, where a restart begins */
		out_start = (uint64_t)out_start >= r->from ? out_start - (off_t)r->from : -1;
	log_request(h, r);

	int rc = 0;
	double first_failure = -1;
	uint64_t kept = r->from; /* a download's bytes in out_fd from the tries before */
	for (unsigned attempt = 0;; attempt++) {
		struct attempt a = {.resp = resp,
				    .out_fd = r->out_fd,
				    .timeout = h->timeout,
				    .resume = kept,
				    .out_start = out_start};
		struct source_ctx src = {.src = r->part};
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CURLcode code = perform(h, e, r, hdrs, &a, &src);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		long ms =
		    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
		bool retry, outage;
		if (code == CURLE_OK && resp->status != 502 && resp->status != 503 &&
		    resp->status != 504)
			back(h); /* it answers */
		if (code == CURLE_OK && resp->status >= 200 && resp->status < 300) {
			up_http_log(h, UP_LOG_DEBUG, "<- %d %s %s (%ld ms)", resp->status,
				    r->method, r->path, ms);
			if (!a.restart)
				resp->written += kept; /* the bytes of the tries before */
			rc = 0;
			break;
		}
		if (a.resume && code == CURLE_OK && resp->status == 416) {
			/* the range asked for is past the file's end: it changed, start over */
			if (!rewind_out(r->out_fd, out_start, kept)) {
				rc = up_error_set(err, -ESPIPE, 416,
						  "the file changed while it was downloaded");
				break;
			}
			kept = 0;
			attempt--;
			free(resp->body);
			memset(resp, 0, sizeof *resp);
			continue;
		}
		if (code == CURLE_OK) {
			rc = up_error_from_response(err, resp->status, resp->body, resp->len,
						    up_http_secret(h));
			retry = up_retry_status(resp->status,
						a.should_retry[0] ? a.should_retry : NULL);
			/* a gateway whose server is away */
			outage = resp->status == 502 || resp->status == 503 || resp->status == 504;
		} else if (a.stalled) {
			rc = up_error_set(err, -ETIMEDOUT, 0,
					  "no progress for %u s (the server stalled): timed out",
					  h->timeout);
			retry = true;
			outage = true;
		} else if (a.too_big) {
			rc = up_error_set(err, -EPROTO, resp->status,
					  "the server's answer to %s %s is larger than %u bytes",
					  r->method, r->path, BODY_MAX);
			retry = false;
			outage = false;
		} else if (a.write_err) {
			rc = up_error_set(err, -a.write_err, resp->status,
					  "writing the download: %s", strerror(a.write_err));
			retry = false;
			outage = false;
		} else if (src.err) {
			rc = up_error_set(err, -src.err, 0, "reading the part's bytes: %s",
					  strerror(src.err));
			retry = false;
			outage = false;
		} else {
			rc = curl_error(err, code, a.curl_err);
			retry = up_retry_curl(code);
			outage = retry; /* no connection, a reset: the server is away */
		}
		double wait = up_retry_after(a.retry_after_ms, a.retry_after, time(NULL));
		if (wait < 0)
			wait = up_retry_backoff(attempt, &rng);
		if (first_failure < 0)
			first_failure = mono_s();
		/* past the retries, an upload's request (a POST: create, part, complete, a
		 * file) is retried across an outage until the window closes; reads, listings,
		 * deletes and cancels fail after their retries (their callers try again later,
		 * report EIO, or let the session expire) */
		double left = first_failure + h->retry_window - mono_s();
		bool counted = attempt < (unsigned)h->retries;
		size_t plen = strlen(r->path);
		bool cancel = plen >= 7 && strcmp(r->path + plen - 7, "/cancel") == 0;
		bool windowed = outage && h->retries > 0 && left > 0 &&
				strcmp(r->method, "POST") == 0 && !cancel;
		if (!counted && windowed && wait > left)
			wait = left; /* the last try at the window's end */
		if (!retry || !(counted || windowed))
			break;
		/* a download cut short goes on from where it stopped (a Range) */
		if (r->out_fd >= 0)
			kept = (a.restart ? 0 : kept) + resp->written;
		if (kept)
			up_http_log(h, UP_LOG_DEBUG, "%s %s: resuming at byte %llu", r->method,
				    r->path, (unsigned long long)kept);
		if (counted)
			up_http_log(h, UP_LOG_WARN, "%s %s: %s; retry %u of %d in %.2f s",
				    r->method, r->path, err ? err->message : "failed", attempt + 1,
				    h->retries, wait);
		else
			up_http_log(h, UP_LOG_WARN,
				    "%s %s: %s; the server is away: retry %u in %.2f s (for %.0f s "
				    "more)",
				    r->method, r->path, err ? err->message : "failed", attempt + 1,
				    wait, left - wait);
		if (outage)
			away(h, wait, err ? err->message : "failed");
		free(resp->body);
		memset(resp, 0, sizeof *resp);
		sleep_s(wait);
	}
	if (rc < 0) {
		up_http_log(h, UP_LOG_DEBUG, "<- failed %s %s: %s", r->method, r->path,
			    err ? err->message : "");
		free(resp->body);
		memset(resp, 0, sizeof *resp);
	}
	handle_put(h, e);
	curl_slist_free_all(hdrs);
	return rc;
}
