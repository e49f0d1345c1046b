/* mount: the mount context — configuration, the API client and part pipeline, the
 * namespace, the state store and the log. Everything an operation needs hangs off it;
 * there is no other mutable state. */
#ifndef UF_MOUNT_H
#define UF_MOUNT_H

#include "cache.h"
#include "log.h"
#include "state.h"
#include "tree.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct uf_config {
	char *mountpoint;
	char *api_base;
	char *api_key_file;
	char *ca_file; /* NULL: $SSL_CERT_FILE, else the system's */
	char *purpose;
	char *cache_dir;
	char *log_file; /* -o log=FILE */
	uint64_t part_size;
	uint64_t max_file_size;
	uint64_t cache_size; /* budget of the content cache */
	unsigned parallel;
	int retries;
	unsigned timeout;
	int retry_window; /* seconds; UP_NO_RETRIES: none past the retries */
	bool async_close;
	bool size_hint; /* take a new file's size from the writer's source (fs/proc) */
	bool allow_http;
	bool foreground;
	bool debug;
	bool single_thread;
	bool read_only;
	bool no_delete;		/* -o no_delete: nothing deletes a remote file (EPERM) */
	enum uf_level log_level; /* lines above it are dropped (-d: UF_DEBUG) */
	uid_t uid;
	gid_t gid;
	mode_t umask;
	double list_interval;  /* seconds between polls of the newest files */
	double sweep_interval; /* seconds between whole listings (deletions elsewhere) */
};

struct uf_mount {
	struct uf_config cfg;
	up_client *client;
	up_async *async; /* the mount-wide part pipeline: `parallel` parts in flight */
	struct uf_tree tree;
	struct uf_state *state;
	struct uf_cache *cache; /* content of completed files */
	char mount_abs[4096]; /* the mountpoint's absolute path */
	char spool_dir[4096];
	char content_dir[4096];
	char journal_dir[4096];
	atomic_uint_fast64_t spool_seq;
	int cache_lock_fd;	 /* flock of cache_dir/lock: one mount per cache */
	pthread_mutex_t list_mu; /* one listing refresh at a time; taken before tree.mu */
	double swept_at;	 /* CLOCK_MONOTONIC of the last whole listing (list_mu) */
	pthread_t lister;	 /* the refresher (fs/listing.h) */
	pthread_mutex_t lister_mu; /* lister_stop; a leaf lock */
	pthread_cond_t lister_cv;
	bool lister_stop, lister_running;
	pthread_mutex_t bg_mu;	 /* background completions still running; a leaf lock */
	pthread_cond_t bg_cv;
	unsigned bg_running;
	struct uf_logger log;
};

/* cache_dir when none is given (fs/mount.c): /var/cache/uploadfs for root, else
 * $XDG_CACHE_HOME/uploadfs or ~/.cache/uploadfs. The caller frees it; NULL: no memory. */
char *uf_default_cache_dir(void);

/* One log line (fs/mount.c): lines up to -o log_level (debug with -d). */
void uf_log(struct uf_mount *m, enum uf_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -o no_delete: 0 when it is off; else logs one line (what was refused on name, and the
 * remote file it would delete) and returns -EPERM. */
int uf_no_delete(struct uf_mount *m, const char *what, const char *name, const char *file_id);

/* The FUSE operations (fs/ops.c). */
extern const struct fuse_lowlevel_ops uf_ops;

/* The mount root's hidden attribute (not in listxattr) that `uploadfs status` reads: JSON
 * of the uploads in flight or failed. */
#define UF_STATUS_XATTR "user.uploadfs.status"

/* xattrs (fs/xattr.c); tree lock held by none of them on entry. */
void uf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void uf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags);
void uf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void uf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* The mount a FUSE request is for. */
static inline struct uf_mount *uf_mount_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

#endif
