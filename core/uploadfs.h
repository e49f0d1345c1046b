/* libuploadfs: a C client for OpenAI-compatible Uploads and Files APIs (OpenAI, the Portkey
 * gateway, uploadfs-server). Every call returns 0 or a negative errno and, on failure, fills
 * an up_error with the HTTP status and the server's error type, message, param and code.
 * Thread-safe: one up_client may be used from any number of threads at once. */
#ifndef UPLOADFS_H
#define UPLOADFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UP_ID_MAX	128	    /* longest id accepted from a server, plus NUL */
#define UP_DEFAULT_PART (8u << 20)  /* the seed's default part size */
#define UP_MAX_PART	(64u << 20) /* the API's largest part */
#define UP_MAX_UPLOAD	(8ull << 30)
#define UP_NO_RETRIES	(-1)

/* What went wrong, as precisely as the server said it. */
struct up_error {
	int status;    /* HTTP status; 0 when no answer came (connection, timeout) */
	int errnum;    /* the negative errno the call returned */
	char type[64]; /* "invalid_request_error", ...; "" when none */
	char code[64];
	char param[64];
	char message[512]; /* one line; never holds a key */
};

enum up_log_level { UP_LOG_ERROR, UP_LOG_WARN, UP_LOG_INFO, UP_LOG_DEBUG };
typedef void (*up_log_fn)(void *ud, enum up_log_level level, const char *line);

/* How to reach the server. NULL/0 fields take the environment's or the default value:
 * api_base: $OPENAI_BASE_URL, with Portkey $PORTKEY_BASE_URL or https://api.portkey.ai/v1,
 *           else https://api.openai.com/v1;
 * key: api_key_file, else $OPENAI_API_KEY; Portkey headers from $PORTKEY_*. */
struct up_config {
	const char *api_base;
	const char *api_key;	  /* used as given; prefer api_key_file */
	const char *api_key_file; /* must be mode 0600 or 0400 */
	int retries;		  /* retries of a failed request; 0: 5; UP_NO_RETRIES: none */
	unsigned timeout;	  /* seconds without progress before a request fails; 0: 60 */
	/* seconds a request is retried across an outage (no connection, a reset, a stall,
	 * 502/503/504) beyond `retries`, from its first failure; 0: 300; UP_NO_RETRIES:
	 * only `retries` */
	int retry_window;
	bool allow_http;	  /* plain http:// to a host other than loopback */
	/* PEM CA certificates to verify the server with; NULL: $SSL_CERT_FILE if set, else
	 * the system's */
	const char *ca_file;
	bool no_env;		  /* ignore the environment entirely */
	up_log_fn log;		  /* NULL: silent */
	void *log_ud;
	enum up_log_level log_level;
	/* Portkey, each one overriding its environment variable when non-NULL ("" sends no
	 * header): $PORTKEY_API_KEY (x-portkey-api-key), $PORTKEY_VIRTUAL_KEY,
	 * $PORTKEY_PROVIDER, $PORTKEY_CONFIG, $PORTKEY_CUSTOM_HOST (x-portkey-...). */
	const char *portkey_api_key;
	const char *portkey_virtual_key;
	const char *portkey_provider;
	const char *portkey_config;
	const char *portkey_custom_host;
};

typedef struct up_client up_client;

int up_client_new(const struct up_config *cfg, up_client **out, struct up_error *err);
void up_client_free(up_client *c);
/* The base URL in use, e.g. "http://127.0.0.1:8080/v1". */
const char *up_client_base(const up_client *c);

/* Whether the server is away: a request that failed for want of it (no connection, a reset,
 * a stall, 502/503/504) is waiting to be tried again. Cleared by the next answer the
 * server gives. Times are seconds since the epoch. */
struct up_away {
	bool away;
	double since;	 /* the first failure of this outage */
	double retry_at; /* when a request tries again next */
	char error[256]; /* the last failure */
};
void up_client_away(const up_client *c, struct up_away *out);

/* ---- objects ---- */

struct up_file {
	char id[UP_ID_MAX];
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at; /* 0: none */
	char *filename;
	char purpose[32];
	char status[16];
};

struct up_upload {
	char id[UP_ID_MAX];
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at;
	char *filename;
	char purpose[32];
	char status[16]; /* pending, completed, cancelled, expired */
	bool has_file;
	struct up_file file; /* when completed */
};

struct up_part {
	char id[UP_ID_MAX];
	char upload_id[UP_ID_MAX];
	int64_t created_at;
};

void up_file_clear(struct up_file *f);
void up_upload_clear(struct up_upload *u);

/* ---- the Uploads API ---- */

int up_upload_create(up_client *c, uint64_t bytes, const char *filename, const char *mime_type,
		     const char *purpose, struct up_upload *out, struct up_error *err);

/* Where a part's bytes come from. Every source can be read again, so a retried part
 * re-sends identical bytes. */
typedef ssize_t (*up_read_fn)(void *ud, uint64_t offset, void *buf, size_t len);
struct up_source {
	enum { UP_SRC_MEM, UP_SRC_FD, UP_SRC_CB } kind;
	uint64_t len;
	const void *mem; /* UP_SRC_MEM */
	int fd;		 /* UP_SRC_FD: read with pread from offset */
	uint64_t offset;
	up_read_fn read; /* UP_SRC_CB: read(ud, offset within the part, buf, n) */
	void *ud;
	/* Where the part sits in its file, if the caller says: sent as the part's multipart
	 * file name ("part@OFFSET"), which OpenAI ignores and uploadfs-server uses to hash the
	 * parts in the file's order as they arrive, whatever order that is. */
	bool placed;
	uint64_t place;
};

int up_part_add(up_client *c, const char *upload_id, const struct up_source *src,
		struct up_part *out, struct up_error *err);
int up_part_add_mem(up_client *c, const char *upload_id, const void *data, size_t len,
		    struct up_part *out, struct up_error *err);
int up_part_add_fd(up_client *c, const char *upload_id, int fd, uint64_t offset, uint64_t len,
		   struct up_part *out, struct up_error *err);

/* md5_hex: 32 lowercase hex digits, or NULL to send none. */
int up_upload_complete(up_client *c, const char *upload_id, const char *const *part_ids,
		       size_t nparts, const char *md5_hex, struct up_upload *out,
		       struct up_error *err);
int up_upload_cancel(up_client *c, const char *upload_id, struct up_upload *out,
		     struct up_error *err);

/* Upload a whole file in parts, the seed's upload_file_chunked done properly: parts go up
 * in parallel, each byte is read once, the MD5 is computed while reading and sent at
 * complete, and on failure the upload is cancelled. */
struct up_file_upload {
	const char *path; /* one of path, fd (>= 0) or mem */
	int fd;		  /* read from offset 0 with pread; a pipe is read in order (then
			   * `bytes` is required, and more bytes than that is an error) */
	const void *mem;
	const char *filename;  /* default: the path's last component; required otherwise */
	uint64_t bytes;	       /* default: the file's size; required for mem */
	const char *mime_type; /* default: application/octet-stream */
	const char *purpose;   /* default: assistants */
	uint64_t part_size;    /* default: UP_DEFAULT_PART; at most UP_MAX_PART */
	unsigned parallel;     /* parts in flight; default 4 */
	const char *md5;       /* expected hex MD5; checked against the computed one */
	/* progress: called after each part is acknowledged (from a worker thread) */
	void (*progress)(void *ud, uint64_t bytes_sent, uint64_t bytes_total);
	void *progress_ud;
	/* A resume record (a path the caller picks, one per source): the session and each
	 * part the server acknowledged are written there as they happen. A call interrupted
	 * (killed, or failed for want of the server: the session is then kept, not
	 * cancelled) and made again with the same source and options sends only the parts
	 * missing; a session that is gone, or whose parts no longer match the source (the
	 * MD5 at complete), is cancelled and the upload begun again once. Removed when the
	 * upload completes or fails for good. NULL: none, and any failure cancels. */
	const char *resume_path;
};
#define UP_FILE_UPLOAD_INIT                                                                        \
	{                                                                                          \
		.fd = -1                                                                           \
	}

int up_upload_file(up_client *c, const struct up_file_upload *opts, struct up_upload *out,
		   struct up_error *err);

/* Hex MD5 of a buffer (for callers that assemble parts themselves). */
void up_md5_hex(const void *data, size_t len, char out[33]);

/* ---- async: many requests in flight, the caller told on completion ---- */

typedef struct up_async up_async;

/* max_in_flight part bodies are sent at once (a part awaiting its answer no longer counts:
 * up to twice as many requests are open); as many jobs more may wait in the queue, and
 * submitting beyond that blocks until one starts (back-pressure, never an unbounded queue). */
int up_async_new(up_client *c, unsigned max_in_flight, up_async **out);
/* Waits for everything submitted, then frees. */
void up_async_free(up_async *a);
/* Blocks until every request submitted so far has finished and its callback returned. */
void up_async_wait(up_async *a);

/* Callbacks run on a worker thread; rc is 0 or a negative errno, err is valid only during
 * the call. The source's bytes must stay readable until the callback. */
typedef void (*up_part_cb)(void *ud, int rc, const struct up_part *part,
			   const struct up_error *err);
typedef void (*up_upload_cb)(void *ud, int rc, const struct up_upload *upload,
			     const struct up_error *err);

int up_async_part_add(up_async *a, const char *upload_id, const struct up_source *src,
		      up_part_cb cb, void *ud);
int up_async_create(up_async *a, uint64_t bytes, const char *filename, const char *mime_type,
		    const char *purpose, up_upload_cb cb, void *ud);
int up_async_complete(up_async *a, const char *upload_id, const char *const *part_ids,
		      size_t nparts, const char *md5_hex, up_upload_cb cb, void *ud);
int up_async_cancel(up_async *a, const char *upload_id, up_upload_cb cb, void *ud);

/* ---- the Files API ---- */

struct up_file_list {
	struct up_file *files;
	size_t n;
};
void up_file_list_clear(struct up_file_list *l);

struct up_list_query {
	const char *purpose; /* NULL: all */
	bool ascending;	     /* default: newest first */
	unsigned limit;	     /* page size, 1..10000; 0: 10000 */
	size_t max_files;    /* stop after this many; 0: every page */
};

int up_files_list(up_client *c, const struct up_list_query *q, struct up_file_list *out,
		  struct up_error *err);
int up_file_retrieve(up_client *c, const char *file_id, struct up_file *out, struct up_error *err);
int up_file_delete(up_client *c, const char *file_id, struct up_error *err);
/* Streams the content to fd (never the whole file in memory); *written gets the count.
 * A purpose the server will not serve is -EACCES. */
int up_file_content(up_client *c, const char *file_id, int fd, uint64_t *written,
		    struct up_error *err);
/* The same, resumed: fd already holds the file's first `from` bytes and is positioned
 * after them; the rest is asked for with a Range. A server that sends the whole file
 * instead, or a file now shorter than `from`, starts fd over from where its first byte
 * was. *written counts from the file's first byte. */
int up_file_content_from(up_client *c, const char *file_id, int fd, uint64_t from,
			 uint64_t *written, struct up_error *err);
/* POST /v1/files in one request (files up to the server's limit, 512 MB at OpenAI). */
int up_file_create(up_client *c, const struct up_source *src, const char *filename,
		   const char *purpose, struct up_file *out, struct up_error *err);

/* The errno a status maps to (the one table): 400 EINVAL, 401/403 EACCES, 404 ENOENT, ... */
int up_errno_for_status(int status);
const char *up_version(void);

#ifdef __cplusplus
}
#endif
#endif
