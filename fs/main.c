/* uploadfs: mount an OpenAI-compatible Uploads API; every file written in the mount becomes
 * an upload. main is the sequence: parse, connect, mount, daemonize, loop. */
#include "mount.h"
#include "args.h"
#include "meta.h"
#include "parse.h"
#include "listing.h"
#include "purpose.h"
#include "recover.h"
#include "statuscmd.h"
#include "filecmds.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void client_log(void *ud, enum up_log_level level, const char *line)
{
	static const enum uf_level map[] = {UF_ERROR, UF_WARN, UF_INFO, UF_DEBUG};
	uf_log(ud, map[level], "%s", line);
}

/* ---- options ---- */

struct raw_opts {
	char *api_base, *api_key_file, *ca_file, *purpose, *part_size, *parallel, *cache_dir, *retries,
	    *timeout, *max_file_size, *uid, *gid, *umask, *api_key, *log, *size_hint, *cache_size, *list_interval,
	    *sweep_interval, *retry_window, *log_level;
	int async_close, allow_http, allow_other, no_delete;
};

enum { KEY_ALLOW_OTHER = 1 };

#define OPT(t, f)                                                                                  \
	{                                                                                          \
		t, offsetof(struct raw_opts, f), 0                                                 \
	}
static const struct fuse_opt opt_table[] = {
    OPT("api_base=%s", api_base),
    OPT("api_key_file=%s", api_key_file),
    OPT("ca_file=%s", ca_file),
    OPT("api_key=%s", api_key),
    OPT("purpose=%s", purpose),
    OPT("part_size=%s", part_size),
    OPT("parallel=%s", parallel),
    OPT("cache_dir=%s", cache_dir),
    OPT("retries=%s", retries),
    OPT("timeout=%s", timeout),
    OPT("retry_window=%s", retry_window),
    OPT("max_file_size=%s", max_file_size),
    OPT("uid=%s", uid),
    OPT("gid=%s", gid),
    OPT("umask=%s", umask),
    OPT("log=%s", log),
    OPT("log_level=%s", log_level),
    OPT("size_hint=%s", size_hint),
    OPT("cache_size=%s", cache_size),
    OPT("list_interval=%s", list_interval),
    OPT("sweep_interval=%s", sweep_interval),
    {"async", offsetof(struct raw_opts, async_close), 1},
    {"allow_http", offsetof(struct raw_opts, allow_http), 1},
    {"no_delete", offsetof(struct raw_opts, no_delete), 1},
    FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
    FUSE_OPT_END,
};

/* allow_other is kept for libfuse, and noted: others may then see the mount, so the
 * kernel must check permissions (default_permissions). An option neither uploadfs nor
 * libfuse knows is refused now, before any network access. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)outargs;
	if (key == KEY_ALLOW_OTHER)
		((struct raw_opts *)data)->allow_other = 1;
	if (key == FUSE_OPT_KEY_OPT && !uf_args_fuse_known(arg)) {
		char why[512];
		uf_args_unknown(arg, why, sizeof why);
		fprintf(stderr, "uploadfs: %s\n", why);
		return -1;
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n"
	       "       %s status [--json] [--watch] MOUNTPOINT\n"
	       "       %s put|ls|rm|get|cancel ...  (no FUSE needed; %s put --help)\n"
	       "Mount an OpenAI-compatible Uploads API: every file written becomes an upload.\n\n"
	       "  -f, --foreground       stay in the foreground\n"
	       "  -d, --debug            debug log to stderr (implies -f)\n"
	       "  -s                     single-threaded\n"
	       "  -V, --version          the version\n"
	       "  -o api_base=URL        base URL ending in /v1 ($OPENAI_BASE_URL, "
	       "https://api.openai.com/v1)\n"
	       "  -o api_key_file=PATH   file with the key, mode 0600 ($OPENAI_API_KEY)\n"
	       "  -o purpose=P           purpose of files with no xattr (assistants)\n"
	       "  -o part_size=SIZE      part size, 1M to 64M (8M)\n"
	       "  -o parallel=N          part uploads in flight (4)\n"
	       "  -o cache_dir=DIR       spool and state (~/.cache/uploadfs); --cache-dir DIR\n"
	       "  -o retries=N           retries of a failed request (5)\n"
	       "  -o timeout=SECONDS     stall timeout of a request (60)\n"
	       "  -o retry_window=SECONDS how long an outage is retried past the retries (300)\n"
	       "  -o max_file_size=SIZE  larger writes fail with EFBIG (8G)\n"
	       "  -o list_interval=S     seconds between polls of the newest remote files (2)\n"
	       "  -o sweep_interval=S    seconds between whole listings (deletions) (30)\n"
	       "  -o cache_size=SIZE     budget of the local content cache (4G, bounded by\n"
	       "                         the free space)\n"
	       "  -o async               close() returns before the upload completes\n"
	       "  -o allow_http          plain http:// to a host that is not loopback\n"
	       "  -o ca_file=PATH        CA certificates (PEM) to verify the server with\n"
	       "                         ($SSL_CERT_FILE; else the system's)\n"
	       "  -o log=FILE            log to FILE (SIGHUP reopens it); --log-file FILE.\n"
	       "                         Otherwise -f logs to stderr, a daemon to syslog, or\n"
	       "                         to cache_dir/uploadfs.log when there is no syslog\n"
	       "  -o log_level=L         error, warn, info or debug (info); --log-level L\n"
	       "  -o no_delete           never delete a remote file: rm, and mv, truncate or\n"
	       "                         edits that would replace one, fail with EPERM\n"
	       "  -o size_hint=auto|off  auto: a new file's size is taken from the file cp\n"
	       "                         copies from, so its upload starts at once (auto)\n"
	       "  -o allow_other, default_permissions, uid=N, gid=N, umask=M, ro\n"
	       "                         (--allow-other, --read-only)\n"
	       "Portkey: PORTKEY_API_KEY, PORTKEY_VIRTUAL_KEY, PORTKEY_PROVIDER, PORTKEY_CONFIG,\n"
	       "PORTKEY_CUSTOM_HOST, PORTKEY_BASE_URL.\n",
	       prog, prog, prog, prog);
}

static int refuse(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "uploadfs: invalid -o %s=%s: %s\n", opt, val, why);
	return -EINVAL;
}

static int check_options(struct raw_opts *r, struct uf_config *c)
{
	uint64_t v;
	if (r->api_key)
		return refuse("api_key", "...",
			      "a key never goes on the command line; use "
			      "api_key_file=PATH (mode 0600) or $OPENAI_API_KEY");
	c->purpose = strdup(r->purpose ? r->purpose : "assistants");
	char names[UP_PURPOSE_NAMES_MAX];
	if (!up_purpose_valid(c->purpose))
		return refuse("purpose", c->purpose, up_purpose_names(names, false));
	c->part_size = UP_DEFAULT_PART;
	if (r->part_size) {
		if (up_parse_size(r->part_size, &v) < 0 || v < (1u << 20) || v > UP_MAX_PART)
			return refuse("part_size", r->part_size, "expected 1M to 64M");
		c->part_size = v;
	}
	c->parallel = 4;
	if (r->parallel) {
		if (up_parse_u64(r->parallel, &v) < 0 || v < 1 || v > 64)
			return refuse("parallel", r->parallel, "expected 1 to 64");
		c->parallel = (unsigned)v;
	}
	c->retries = 5;
	if (r->retries) {
		if (up_parse_u64(r->retries, &v) < 0 || v > 100)
			return refuse("retries", r->retries, "expected 0 to 100");
		c->retries = v == 0 ? UP_NO_RETRIES : (int)v;
	}
	c->timeout = 60;
	if (r->timeout) {
		if (up_parse_u64(r->timeout, &v) < 0 || v < 1 || v > 86400)
			return refuse("timeout", r->timeout, "expected 1 to 86400 seconds");
		c->timeout = (unsigned)v;
	}
	c->retry_window = 300;
	if (r->retry_window) {
		if (up_parse_u64(r->retry_window, &v) < 0 || v > 86400)
			return refuse("retry_window", r->retry_window, "expected 0 to 86400 seconds");
		c->retry_window = v == 0 ? UP_NO_RETRIES : (int)v;
	}
	c->max_file_size = 8ull << 30;
	if (r->max_file_size) {
		if (up_parse_size(r->max_file_size, &v) < 0 || v > UP_MAX_UPLOAD)
			return refuse("max_file_size", r->max_file_size,
				      "expected a size up to 8G");
		c->max_file_size = v;
	}
	c->cache_size = 4ull << 30;
	if (r->cache_size) {
		if (up_parse_size(r->cache_size, &v) < 0)
			return refuse("cache_size", r->cache_size, "expected a size (0, 512M, 4G...)");
		c->cache_size = v;
	}
	c->uid = getuid();
	c->gid = getgid();
	c->umask = 022;
	if (r->uid) {
		if (up_parse_u64(r->uid, &v) < 0 || v > UINT32_MAX)
			return refuse("uid", r->uid, "expected a number");
		c->uid = (uid_t)v;
	}
	if (r->gid) {
		if (up_parse_u64(r->gid, &v) < 0 || v > UINT32_MAX)
			return refuse("gid", r->gid, "expected a number");
		c->gid = (gid_t)v;
	}
	if (r->umask) {
		char *end;
		unsigned long u = strtoul(r->umask, &end, 8);
		if (!*r->umask || *end || u > 0777)
			return refuse("umask", r->umask, "expected an octal mask");
		c->umask = (mode_t)u;
	}
	c->api_base = r->api_base ? strdup(r->api_base) : NULL;
	c->api_key_file = r->api_key_file ? strdup(r->api_key_file) : NULL;
	c->ca_file = r->ca_file ? strdup(r->ca_file) : NULL;
	c->cache_dir = r->cache_dir ? strdup(r->cache_dir) : uf_default_cache_dir();
	c->log_file = r->log ? strdup(r->log) : NULL;
	c->async_close = r->async_close;
	c->allow_http = r->allow_http;
	c->list_interval = 2.0;
	if (r->list_interval) {
		if (up_parse_u64(r->list_interval, &v) < 0 || v < 1 || v > 86400)
			return refuse("list_interval", r->list_interval, "expected 1 to 86400 seconds");
		c->list_interval = (double)v;
	}
	c->sweep_interval = 30.0;
	if (r->sweep_interval) {
		if (up_parse_u64(r->sweep_interval, &v) < 0 || v < 1 || v > 86400)
			return refuse("sweep_interval", r->sweep_interval,
				      "expected 1 to 86400 seconds");
		c->sweep_interval = (double)v;
	}
	c->log_level = UF_INFO;
	if (r->log_level) {
		static const char *const levels[] = {"error", "warn", "info", "debug"};
		size_t i = 0;
		while (i < 4 && strcmp(r->log_level, levels[i]) != 0)
			i++;
		if (i == 4)
			return refuse("log_level", r->log_level, "expected error, warn, info or debug");
		c->log_level = (enum uf_level)i;
	}
	c->no_delete = r->no_delete;
	c->size_hint = true;
	if (r->size_hint) {
		if (strcmp(r->size_hint, "off") != 0 && strcmp(r->size_hint, "auto") != 0)
			return refuse("size_hint", r->size_hint, "expected auto or off");
		c->size_hint = strcmp(r->size_hint, "auto") == 0;
	}
	return 0;
}

static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void restore_dir(void *ud, const struct uf_dir_rec *d)
{
	struct uf_mount *m = ud;
	struct uf_node *dir = m->tree.root;
	char *copy = strdup(d->path), *save = NULL;
	for (char *seg = copy ? strtok_r(copy, "/", &save) : NULL; seg && dir;
	     seg = strtok_r(NULL, "/", &save)) {
		struct uf_node *k = uf_tree_child(dir, seg);
		if (!k)
			k = uf_tree_new(&m->tree, dir, seg, UF_DIR, 0777);
		if (k && k->kind != UF_DIR)
			k = NULL;
		if (k)
			k->local_dir = true;
		dir = k;
	}
	if (dir && dir != m->tree.root) {
		if (d->mode)
			dir->mode = S_IFDIR | (d->mode & 07777);
		if (d->purpose)
			dir->x_purpose = strdup(d->purpose);
		if (d->mime)
			dir->x_mime = strdup(d->mime);
	}
	free(copy);
}

/* Where the key came from, for a 401 at start: never the key itself. */
static void key_source(const struct uf_mount *m, char *out, size_t len)
{
	const char *openai = getenv("OPENAI_API_KEY"), *portkey = getenv("PORTKEY_API_KEY");
	if (m->cfg.api_key_file)
		snprintf(out, len, "api_key_file %s", m->cfg.api_key_file);
	else
		snprintf(out, len, "%s",
			 openai && *openai     ? "$OPENAI_API_KEY"
			 : portkey && *portkey ? "$PORTKEY_API_KEY"
					       : "none (no api_key_file, $OPENAI_API_KEY or "
						 "$PORTKEY_API_KEY)");
}

/* A base URL without /v1 that gets a 404 or "Invalid URL": the URL it likely meant. */
static void v1_hint(const char *base, const struct up_error *err, char *out, size_t len)
{
	size_t n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	bool v1 = n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0;
	out[0] = '\0';
	if (!v1 && (err->status == 404 || strstr(err->message, "Invalid URL")))
		snprintf(out, len, "; did you mean %.*s/v1?", (int)n, base);
}

static int setup(struct uf_mount *m)
{
	int rc;
	if ((rc = mkdirs(m->cfg.cache_dir)) < 0) {
		fprintf(stderr, "uploadfs: cannot create cache_dir %s: %s\n", m->cfg.cache_dir,
			strerror(-rc));
		return rc;
	}
	chmod(m->cfg.cache_dir, 0700);
	if ((rc = uf_recover_lock(m)) < 0)
		return rc;
	snprintf(m->spool_dir, sizeof m->spool_dir, "%s/spool", m->cfg.cache_dir);
	snprintf(m->content_dir, sizeof m->content_dir, "%s/content", m->cfg.cache_dir);
	snprintf(m->journal_dir, sizeof m->journal_dir, "%s/journal", m->cfg.cache_dir);
	if ((rc = mkdirs(m->spool_dir)) < 0 || (rc = mkdirs(m->content_dir)) < 0 ||
	    (rc = mkdirs(m->journal_dir)) < 0) {
		fprintf(stderr, "uploadfs: cannot create %s: %s\n", m->spool_dir, strerror(-rc));
		return rc;
	}
	char *torn = NULL;
	if ((rc = uf_state_open(m->cfg.cache_dir, &m->state, &torn)) < 0) {
		fprintf(stderr, "uploadfs: cannot open the state store in %s: %s\n",
			m->cfg.cache_dir, strerror(-rc));
		return rc;
	}
	if (torn)
		uf_log(m, UF_WARN, "%s was damaged; set aside as %s.corrupt", torn, torn);
	free(torn);
	if ((rc = uf_cache_new(m->content_dir, m->cfg.cache_size, &m->cache)) < 0) {
		fprintf(stderr, "uploadfs: cannot read %s: %s\n", m->content_dir, strerror(-rc));
		return rc;
	}
	if ((rc = uf_tree_init(&m->tree, m->cfg.uid, m->cfg.gid, m->cfg.umask)) < 0)
		return rc;
	uf_state_dirs(m->state, restore_dir, m);

	struct up_config uc = {.api_base = m->cfg.api_base,
			       .api_key_file = m->cfg.api_key_file,
			       .ca_file = m->cfg.ca_file,
			       .retries = m->cfg.retries,
			       .timeout = m->cfg.timeout,
			       .retry_window = m->cfg.retry_window,
			       .allow_http = m->cfg.allow_http,
			       .log = client_log,
			       .log_ud = m,
			       .log_level = m->cfg.log_level == UF_DEBUG   ? UP_LOG_DEBUG
					    : m->cfg.log_level == UF_ERROR ? UP_LOG_ERROR
									   : UP_LOG_WARN};
	struct up_error err;
	if ((rc = up_client_new(&uc, &m->client, &err)) < 0) {
		fprintf(stderr, "uploadfs: %s\n", err.message);
		return rc;
	}
	/* The first listing doubles as the check that the server answers, with this key. */
	struct up_file_list l;
	if ((rc = up_files_list(m->client, NULL, &l, &err)) < 0) {
		const char *base = up_client_base(m->client);
		char more[PATH_MAX + 64];
		if (err.status == 401) {
			key_source(m, more, sizeof more);
			fprintf(stderr, "uploadfs: %s: the server refused the key from %s: %s\n",
				base, more, err.message);
			return rc;
		}
		v1_hint(base, &err, more, sizeof more);
		fprintf(stderr, "uploadfs: %s %s: %s%s\n", base,
			err.status ? "does not answer as an Uploads/Files API" : "cannot be reached",
			err.message, more);
		return rc;
	}
	uf_listing_first(m, &l);
	return 0;
}

static void teardown(struct uf_mount *m)
{
	uf_listing_stop(m);
	/* -o async: uploads still completing in the background finish before we go */
	pthread_mutex_lock(&m->bg_mu);
	if (m->bg_running)
		uf_log(m, UF_INFO, "waiting for %u uploads to complete", m->bg_running);
	while (m->bg_running)
		pthread_cond_wait(&m->bg_cv, &m->bg_mu);
	pthread_mutex_unlock(&m->bg_mu);
	if (m->async)
		up_async_free(m->async); /* waits for parts in flight */
	uf_tree_destroy(&m->tree);
	up_client_free(m->client);
	uf_state_close(m->state);
	uf_cache_free(m->cache);
	free(m->cfg.api_base);
	free(m->cfg.api_key_file);
	free(m->cfg.ca_file);
	free(m->cfg.purpose);
	free(m->cfg.cache_dir);
	free(m->cfg.log_file);
	uf_logger_close(&m->log);
	if (m->cache_lock_fd >= 0)
		close(m->cache_lock_fd);
	pthread_mutex_destroy(&m->list_mu);
	pthread_mutex_destroy(&m->lister_mu);
	pthread_cond_destroy(&m->lister_cv);
	pthread_mutex_destroy(&m->bg_mu);
	pthread_cond_destroy(&m->bg_cv);
}

int main(int argc, char *argv[])
{
	/* `uploadfs status MOUNTPOINT` (a mountpoint named "status" is ./status) */
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return uf_status_main(argc - 1, argv + 1);
	/* the commands of the Files and Uploads APIs, on the mount's engine without FUSE */
	if (argc >= 2 && uf_files_is_command(argv[1]))
		return uf_files_main(argc - 1, argv + 1);
	struct stat first;
	if (argc >= 3 && argv[1][0] != '-' && !strchr(argv[1], '/') && stat(argv[1], &first) < 0) {
		/* `uploadfs upload FILE`: a word that is neither a command nor a directory */
		fprintf(stderr,
			"uploadfs: '%s' is not a command, and no directory of that name exists to "
			"mount on (commands: status, put, ls, rm, get, cancel; uploadfs --help)\n",
			argv[1]);
		return 2;
	}
	/* the long flags become -o forms; an unknown one stops here, before the network */
	struct uf_args ua = {0};
	char why[512];
	int arc = uf_args_normalize(argc, argv, &ua, why, sizeof why);
	if (arc < 0) {
		fprintf(stderr, "uploadfs: %s\n", arc == -EINVAL ? why : strerror(-arc));
		return 2;
	}
	struct fuse_args args = FUSE_ARGS_INIT(ua.argc, ua.argv);
	struct raw_opts raw = {0};
	struct fuse_cmdline_opts cl = {0};
	struct uf_mount m = {0};
	struct fuse_session *se = NULL;
	bool handlers = false;
	int status = 1;
	uf_logger_init(&m.log);
	m.cache_lock_fd = -1;
	pthread_mutex_init(&m.list_mu, NULL);
	pthread_mutex_init(&m.lister_mu, NULL);
	pthread_cond_init(&m.lister_cv, NULL);
	pthread_mutex_init(&m.bg_mu, NULL);
	pthread_cond_init(&m.bg_cv, NULL);

	if (fuse_opt_parse(&args, &raw, opt_table, opt_proc) < 0 ||
	    fuse_parse_cmdline(&args, &cl) != 0) {
		status = 2;
		goto out;
	}
	if (cl.show_help) {
		usage(argv[0]);
		status = 0;
		goto out;
	}
	if (cl.show_version) {
		printf("uploadfs %s (libfuse %s)\n", UP_VERSION, fuse_pkgversion());
		status = 0;
		goto out;
	}
	if (!cl.mountpoint) {
		fprintf(stderr, "uploadfs: no mountpoint given (uploadfs [options] MOUNTPOINT)\n");
		status = 2;
		goto out;
	}
	struct stat sb;
	if (stat(cl.mountpoint, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "uploadfs: mountpoint %s is not a directory\n", cl.mountpoint);
		status = 2;
		goto out;
	}
	if (!realpath(cl.mountpoint, m.mount_abs)) {
		fprintf(stderr, "uploadfs: mountpoint %s: %s\n", cl.mountpoint, strerror(errno));
		status = 2;
		goto out;
	}
	if (check_options(&raw, &m.cfg) < 0) {
		status = 2;
		goto out;
	}
	if (m.cfg.log_file) {
		int rc = uf_logger_to_file(&m.log, m.cfg.log_file);
		if (rc < 0) {
			fprintf(stderr, "uploadfs: cannot open the log file %s: %s\n",
				m.cfg.log_file, strerror(-rc));
			status = 2;
			goto out;
		}
	}
	m.cfg.debug = cl.debug;
	if (cl.debug)
		m.cfg.log_level = UF_DEBUG;
	m.cfg.foreground = cl.foreground || cl.debug;
	m.cfg.single_thread = cl.singlethread;
	/* shows as "uploadfs ... fuse.uploadfs" in /proc/mounts, like mount -t fuse.uploadfs */
	if (fuse_opt_add_arg(&args, "-osubtype=uploadfs,fsname=uploadfs") < 0 ||
	    (raw.allow_other && fuse_opt_add_arg(&args, "-odefault_permissions") < 0))
		goto out;
	/* libfuse's options are checked here too, before the network (no I/O yet) */
	se = fuse_session_new(&args, &uf_ops, sizeof uf_ops, &m);
	if (!se) {
		status = 2;
		goto out; /* libfuse said why (an unknown option, ...) */
	}
	if (setup(&m) < 0)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = true;
	if (fuse_session_mount(se, cl.mountpoint) != 0)
		goto out;
	if (!m.cfg.foreground) {
		/* no syslog socket here (a container, a minimal system): a file in cache_dir */
		char path[PATH_MAX + 16];
		snprintf(path, sizeof path, "%s/uploadfs.log", m.cfg.cache_dir);
		int rc = uf_logger_daemonized(&m.log, path);
		if (rc == 1)
			fprintf(stderr, "uploadfs: no syslog (/dev/log does not answer): logging to %s\n",
				path);
		else if (rc < 0)
			fprintf(stderr, "uploadfs: no syslog, and %s cannot be opened (%s): nothing "
					"will be logged\n", path, strerror(-rc));
	}
	fuse_daemonize(m.cfg.foreground);
	/* worker threads only after daemonizing (fork keeps one thread), and after SIGHUP
	 * is blocked for them all */
	if (uf_logger_start(&m.log) < 0 || uf_state_start(m.state) < 0 ||
	    uf_listing_start(&m) < 0 ||
	    up_async_new(m.client, m.cfg.parallel, &m.async) < 0) {
		uf_log(&m, UF_ERROR, "cannot start the part pipeline");
		fuse_session_unmount(se);
		goto out;
	}
	uf_log(&m, UF_INFO, "mounted %s on %s", up_client_base(m.client), cl.mountpoint);
	uf_recover(&m);
	if (m.cfg.single_thread) {
		status = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, 64);
		status = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	status = status != 0;
	fuse_session_unmount(se);
	uf_log(&m, UF_INFO, "unmounted %s", cl.mountpoint);
out:
	if (se) {
		if (handlers)
			fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	teardown(&m);
	free(cl.mountpoint);
	fuse_opt_free_args(&args);
	free(raw.api_base);
	free(raw.api_key_file);
	free(raw.ca_file);
	free(raw.api_key);
	free(raw.purpose);
	free(raw.part_size);
	free(raw.parallel);
	free(raw.cache_dir);
	free(raw.retries);
	free(raw.timeout);
	free(raw.retry_window);
	free(raw.max_file_size);
	free(raw.uid);
	free(raw.gid);
	free(raw.umask);
	free(raw.log);
	free(raw.size_hint);
	free(raw.cache_size);
	free(raw.list_interval);
	free(raw.sweep_interval);
	free(raw.log_level);
	uf_args_free(&ua);
	return status;
}
