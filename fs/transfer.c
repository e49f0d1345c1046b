/* `uploadfs put` and `uploadfs get`: a file up in parts through up_upload_file (with a resume
 * record under cache_dir/put), and a file's content down (resumed with a Range). */
#include "filecmd_impl.h"

#include "errors.h"
#include "meta.h"
#include "mount.h"
#include "parse.h"
#include "purpose.h"
#include "statuscmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the progress bar (stderr, a terminal only) ---- */

struct bar {
	pthread_mutex_t mu;
	struct timespec start, last;
	const char *name;
	bool drawn;
};

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Called from the library's worker threads after each part. */
static void bar_draw(void *ud, uint64_t sent, uint64_t total)
{
	struct bar *b = ud;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&b->mu);
	if (sent < total && b->drawn && since(&b->last, &now) < 0.1) {
		pthread_mutex_unlock(&b->mu);
		return;
	}
	b->last = now;
	b->drawn = true;
	double secs = since(&b->start, &now);
	double rate = secs > 0 ? (double)sent / secs : 0;
	char s[16], t[16], r[16], eta[16];
	uf_fmt_bytes(sent, s, sizeof s);
	uf_fmt_bytes(total, t, sizeof t);
	uf_fmt_bytes((uint64_t)rate, r, sizeof r);
	uf_fmt_duration(rate > 0 && total >= sent ? (double)(total - sent) / rate : -1, eta,
			sizeof eta);
	int pct = total ? (int)(sent * 100 / total) : 100;
	char fill[17];
	for (int i = 0; i < 16; i++)
		fill[i] = i < pct * 16 / 100 ? '#' : '.';
	fill[16] = '\0';
	/* 14 + 20 + 5 + 20 + 12 + 8 = 79 columns at most: the name gives way */
	fprintf(stderr, "\r%-14.14s [%s] %3d%% %9s/%-9s %9s/s %7s", b->name, fill, pct, s, t, r,
		eta);
	pthread_mutex_unlock(&b->mu);
}

static void bar_end(struct bar *b)
{
	if (b->drawn)
		fputc('\n', stderr);
}

/* ---- put ---- */

struct put_args {
	const char *src, *purpose, *mime, *filename, *md5;
	uint64_t bytes, part_size;
	unsigned parallel;
	bool no_resume;
};

static int put_help(void)
{
	printf("usage: uploadfs put FILE|- [options]\n"
	       "Uploads FILE (or stdin) in parts, in parallel, its MD5 computed as it is read and\n"
	       "checked by the server at complete. Prints the file's id (the File object with\n"
	       "--json). An interrupted put (killed, or the server away past the retries) is\n"
	       "resumed by the same command: only the missing parts are sent.\n\n"
	       "  --purpose P            %s (assistants)\n"
	       "  --mime-type T          the MIME type (from the name's extension)\n"
	       "  --filename NAME        the name on the server (FILE's last component)\n"
	       "  --bytes N              the size (FILE's own; stdin is streamed when given,\n"
	       "                         spooled under --cache-dir first otherwise)\n"
	       "  --part-size SIZE       part size, 1M to 64M (8M)\n"
	       "  --md5 HEX              the expected MD5: a mismatch fails before complete\n"
	       "  --parallel N           part bodies sent at once (4)\n"
	       "  --no-resume            neither resume nor keep a record to resume from\n"
	       "  --cache-dir DIR        where resume records and stdin's spool go (the mount's)\n"
	       "%s",
	       "assistants|batch|fine-tune|vision|user_data|evals", uf_cmd_common_help());
	return 0;
}

static int put_parse(struct uf_cmd *cmd, int argc, char **argv, struct put_args *a)
{
	enum { O_PURPOSE = 2000, O_MIME, O_FILENAME, O_BYTES, O_PART, O_MD5, O_PAR, O_NORESUME };
	static const struct option opts[] = {UF_COMMON_OPTIONS,
					     {"purpose", required_argument, NULL, O_PURPOSE},
					     {"mime-type", required_argument, NULL, O_MIME},
					     {"filename", required_argument, NULL, O_FILENAME},
					     {"bytes", required_argument, NULL, O_BYTES},
					     {"part-size", required_argument, NULL, O_PART},
					     {"md5", required_argument, NULL, O_MD5},
					     {"parallel", required_argument, NULL, O_PAR},
					     {"no-resume", no_argument, NULL, O_NORESUME},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	int opt;
	uint64_t v;
	while ((opt = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		if (uf_cmd_common_opt(cmd, opt, optarg))
			continue;
		switch (opt) {
		case O_PURPOSE:
			if (!up_purpose_valid(optarg)) {
				char names[UP_PURPOSE_NAMES_MAX];
				return uf_cmd_usage(cmd, "--purpose: '%s' is not one of %s", optarg,
						    up_purpose_names(names, false));
			}
			a->purpose = optarg;
			break;
		case O_MIME:
			a->mime = optarg;
			break;
		case O_FILENAME:
			a->filename = optarg;
			break;
		case O_BYTES:
			if (up_parse_size(optarg, &a->bytes) < 0 || a->bytes == 0)
				return uf_cmd_usage(cmd, "--bytes: '%s' is not a size", optarg);
			break;
		case O_PART:
			if (up_parse_size(optarg, &a->part_size) < 0 || a->part_size < (1u << 20) ||
			    a->part_size > UP_MAX_PART)
				return uf_cmd_usage(cmd, "--part-size: '%s' is not from 1M to 64M",
						    optarg);
			break;
		case O_MD5:
			if (strlen(optarg) != 32 || strspn(optarg, "0123456789abcdefABCDEF") != 32)
				return uf_cmd_usage(cmd, "--md5: '%s' is not 32 hex digits", optarg);
			a->md5 = optarg;
			break;
		case O_PAR:
			if (up_parse_u64(optarg, &v) < 0 || v == 0 || v > 64)
				return uf_cmd_usage(cmd, "--parallel: '%s' is not from 1 to 64", optarg);
			a->parallel = (unsigned)v;
			break;
		case O_NORESUME:
			a->no_resume = true;
			break;
		case 'h':
			return put_help() - 1; /* -1: stop, with status 0 */
		default:
			return uf_cmd_usage(cmd, "unknown option");
		}
	}
	if (cmd->bad)
		return 2;
	if (optind + 1 != argc)
		return uf_cmd_usage(cmd, optind >= argc ? "no file given (FILE, or - for stdin)"
							: "one file at a time");
	a->src = argv[optind];
	if (strcmp(a->src, "-") == 0 && !a->filename)
		return uf_cmd_usage(cmd, "--filename is required for stdin");
	return 0;
}

static int mkdirs(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* stdin of unknown size into an unlinked file under dir: its size is then known. */
static int spool_stdin(const struct uf_cmd *cmd, const char *dir, int *fd_out, uint64_t *size)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/stdin-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "uploadfs %s: cannot spool stdin in %s: %s\n", cmd->name, dir,
			strerror(errno));
		return -1;
	}
	unlink(path);
	static char buf[1 << 17];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "uploadfs %s: reading stdin: %s\n", cmd->name, strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(fd, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fprintf(stderr, "uploadfs %s: spooling stdin in %s: %s\n", cmd->name,
					dir, strerror(errno));
				close(fd);
				return -1;
			}
			done += w;
		}
		total += (uint64_t)n;
	}
	*fd_out = fd;
	*size = total;
	return 0;
}

int uf_cmd_put(struct uf_cmd *cmd, int argc, char **argv)
{
	struct put_args a = {.purpose = "assistants"};
	int rc = put_parse(cmd, argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	bool from_stdin = strcmp(a.src, "-") == 0;
	const char *slash = strrchr(a.src, '/');
	const char *name = a.filename ? a.filename : slash ? slash + 1 : a.src;
	if (!*name)
		return uf_cmd_usage(cmd, "'%s' has no file name: give --filename", a.src);
	char mime[128];
	if (!a.mime)
		a.mime = uf_mime_of_name(name, mime, sizeof mime);

	char *cache = cmd->cache_dir ? strdup(cmd->cache_dir) : uf_default_cache_dir();
	char dir[PATH_MAX], record[PATH_MAX + 64] = "";
	snprintf(dir, sizeof dir, "%s/put", cache ? cache : ".");
	free(cache);
	bool spool = from_stdin && !a.bytes;
	bool resume = !from_stdin && !a.no_resume;
	if ((spool || resume) && (rc = mkdirs(dir)) < 0) {
		fprintf(stderr, "uploadfs put: cannot create %s: %s\n", dir, strerror(-rc));
		return 1;
	}
	struct up_file_upload fu = UP_FILE_UPLOAD_INIT;
	fu.filename = name;
	fu.mime_type = a.mime;
	fu.purpose = a.purpose;
	fu.bytes = a.bytes;
	fu.part_size = a.part_size;
	fu.parallel = a.parallel;
	fu.md5 = a.md5;
	int spool_fd = -1;
	if (from_stdin && spool) {
		if (spool_stdin(cmd, dir, &spool_fd, &fu.bytes) < 0)
			return 1;
		fu.fd = spool_fd;
	} else if (from_stdin) {
		fu.fd = STDIN_FILENO;
	} else {
		fu.path = a.src;
		char real[PATH_MAX], key_src[PATH_MAX + 256], key[33];
		if (!realpath(a.src, real)) {
			fprintf(stderr, "uploadfs put: %s: %s\n", a.src, strerror(errno));
			return 1;
		}
		/* one record per source and name: the record itself checks the rest */
		snprintf(key_src, sizeof key_src, "%s\n%s", real, name);
		up_md5_hex(key_src, strlen(key_src), key);
		if (resume)
			snprintf(record, sizeof record, "%s/%s.json", dir, key);
	}
	fu.resume_path = record[0] ? record : NULL;
	if ((rc = uf_cmd_connect(cmd))) {
		if (spool_fd >= 0)
			close(spool_fd);
		return rc;
	}
	struct bar bar = {.name = name};
	pthread_mutex_init(&bar.mu, NULL);
	clock_gettime(CLOCK_MONOTONIC, &bar.start);
	if (!cmd->quiet && isatty(STDERR_FILENO)) {
		fu.progress = bar_draw;
		fu.progress_ud = &bar;
	}
	struct up_upload out = {0};
	struct up_error err;
	rc = up_upload_file(cmd->client, &fu, &out, &err);
	bar_end(&bar);
	pthread_mutex_destroy(&bar.mu);
	if (spool_fd >= 0)
		close(spool_fd);
	if (rc < 0) {
		uf_cmd_fail(cmd, a.src, rc, &err);
		if (fu.resume_path && access(fu.resume_path, F_OK) == 0 && !cmd->quiet)
			fprintf(stderr, "uploadfs put: the parts sent are kept on the server: run the "
					"same command again to send the rest\n");
		up_upload_clear(&out);
		return 1;
	}
	if (cmd->json && out.has_file)
		uf_cmd_print_json(uf_cmd_file_json(&out.file));
	else
		printf("%s\n", out.has_file ? out.file.id : out.id);
	up_upload_clear(&out);
	return 0;
}

/* ---- get ---- */

int uf_cmd_get(struct uf_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {UF_COMMON_OPTIONS,
					     {"output", required_argument, NULL, 'o'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *target = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "hqo:", opts, NULL)) != -1) {
		if (uf_cmd_common_opt(cmd, opt, optarg))
			continue;
		if (opt == 'o') {
			target = optarg;
		} else if (opt == 'h') {
			printf("usage: uploadfs get FILE_ID [-o FILE] [options]\n"
			       "Downloads a file's content to FILE (by way of FILE.part, which a\n"
			       "get interrupted leaves, and the same command resumes with a Range),\n"
			       "or to stdout without -o (or with -o -).\n\n%s",
			       uf_cmd_common_help());
			return 0;
		} else {
			return uf_cmd_usage(cmd, "unknown option");
		}
	}
	if (cmd->bad)
		return 2;
	if (optind + 1 != argc)
		return uf_cmd_usage(cmd, optind >= argc ? "no file id given" : "one file at a time");
	const char *id = argv[optind];
	if (target && strcmp(target, "-") == 0)
		target = NULL;
	if (uf_cmd_connect(cmd))
		return 1;
	struct up_error err;
	int rc;
	if (!target) {
		uint64_t n = 0;
		rc = up_file_content(cmd->client, id, STDOUT_FILENO, &n, &err);
		return rc < 0 ? uf_cmd_fail(cmd, id, rc, &err) : 0;
	}
	struct up_file f = {0};
	if ((rc = up_file_retrieve(cmd->client, id, &f, &err)) < 0)
		return uf_cmd_fail(cmd, id, rc, &err);
	uint64_t want = f.bytes;
	up_file_clear(&f);
	char part[PATH_MAX + 8];
	snprintf(part, sizeof part, "%s.part", target);
	int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "uploadfs get: %s: %s\n", part, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	uint64_t have = (uint64_t)sb.st_size;
	if (have > want) /* not this file's beginning */
		have = ftruncate(fd, 0) == 0 ? 0 : have;
	if (have && !cmd->quiet)
		fprintf(stderr, "uploadfs get: resuming %s at byte %llu of %llu\n", part,
			(unsigned long long)have, (unsigned long long)want);
	uint64_t got = have;
	rc = 0;
	if (lseek(fd, (off_t)have, SEEK_SET) != (off_t)have)
		rc = up_error_set(&err, -errno, 0, "%s", strerror(errno));
	else if (have < want || want == 0)
		rc = up_file_content_from(cmd->client, id, fd, have, &got, &err);
	if (rc == 0 && fsync(fd) < 0)
		rc = up_error_set(&err, -errno, 0, "writing %s: %s", part, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = up_error_set(&err, -errno, 0, "writing %s: %s", part, strerror(errno));
	if (rc == 0 && got != want)
		rc = up_error_set(&err, -EIO, 0, "the server sent %llu bytes of %llu",
				  (unsigned long long)got, (unsigned long long)want);
	if (rc == 0 && rename(part, target) < 0)
		rc = up_error_set(&err, -errno, 0, "renaming %s: %s", part, strerror(errno));
	if (rc < 0) {
		uf_cmd_fail(cmd, id, rc, &err);
		if (!cmd->quiet && access(part, F_OK) == 0)
			fprintf(stderr, "uploadfs get: %s is kept: the same command resumes it\n", part);
		return 1;
	}
	return 0;
}
