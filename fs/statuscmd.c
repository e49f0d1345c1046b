#include "statuscmd.h"
#include "mount.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* What the previous refresh saw of one upload, for a rate over the last interval. */
struct sample {
	char *name;
	uint64_t sent;
	double at;
};

struct view {
	bool json, tty;
	int width;
	struct sample *prev;
	size_t nprev;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(uint64_t b, char *out, size_t len)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void duration(double s, char *out, size_t len)
{
	if (s < 0 || s > 359999) {
		snprintf(out, len, "--:--");
		return;
	}
	unsigned t = (unsigned)(s + 0.5);
	if (t >= 3600)
		snprintf(out, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, len, "%u:%02u", t / 60, t % 60);
}

/* Reads the status attribute; prints why on failure. */
static int fetch(const char *mnt, char *buf, size_t len)
{
	ssize_t n = getxattr(mnt, UF_STATUS_XATTR, buf, len - 1);
	if (n >= 0) {
		buf[n] = '\0';
		return 0;
	}
	int e = errno;
	if (e == ENODATA || e == ENOTSUP)
		fprintf(stderr, "uploadfs status: %s is not an uploadfs mount\n", mnt);
	else if (e == ENOTCONN)
		fprintf(stderr, "uploadfs status: %s: the uploadfs daemon is gone (%s)\n", mnt,
			strerror(e));
	else
		fprintf(stderr, "uploadfs status: %s: %s\n", mnt, strerror(e));
	return -e;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static uint64_t u64(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_uint64(v) : 0;
}

/* Bytes per second: over the last refresh when there was one, else since the start. */
static double rate_of(struct view *v, const char *name, uint64_t sent, double secs, double t)
{
	for (size_t i = 0; i < v->nprev; i++)
		if (strcmp(v->prev[i].name, name) == 0 && t > v->prev[i].at &&
		    sent >= v->prev[i].sent)
			return (double)(sent - v->prev[i].sent) / (t - v->prev[i].at);
	return secs > 0 ? (double)sent / secs : 0;
}

static void remember(struct view *v, json_object *list, double t)
{
	for (size_t i = 0; i < v->nprev; i++)
		free(v->prev[i].name);
	free(v->prev);
	v->nprev = 0;
	size_t n = json_object_array_length(list);
	v->prev = calloc(n ? n : 1, sizeof *v->prev);
	for (size_t i = 0; v->prev && i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);
		const char *name = str(e, "name");
		if (!name || !(v->prev[v->nprev].name = strdup(name)))
			continue;
		v->prev[v->nprev].sent = u64(e, "bytes_sent");
		v->prev[v->nprev].at = t;
		v->nprev++;
	}
}

static void bar(char *out, int width, double frac)
{
	int full = (int)(frac * width + 0.5);
	out[0] = '[';
	for (int i = 0; i < width; i++)
		out[1 + i] = i < full ? '#' : '-';
	out[width + 1] = ']';
	out[width + 2] = '\0';
}

static void render_one(struct view *v, json_object *e, double t)
{
	const char *name = str(e, "name"), *status = str(e, "status"), *err = str(e, "error");
	uint64_t bytes = u64(e, "bytes"), sent = u64(e, "bytes_sent");
	json_object *o;
	double secs = json_object_object_get_ex(e, "seconds", &o) ? json_object_get_double(o) : 0;
	bool finishing = json_object_object_get_ex(e, "finishing", &o) && json_object_get_boolean(o);
	char hs[32], hb[32], hr[32], eta[32];
	human(sent, hs, sizeof hs);
	human(bytes, hb, sizeof hb);
	if (!name || !status)
		return;
	if (strcmp(status, "failed") == 0) {
		printf("%s  failed  %s of %s sent  %s\n", name, hs, hb, err ? err : "");
		return;
	}
	double rate = rate_of(v, name, sent, secs, t);
	human((uint64_t)rate, hr, sizeof hr);
	/* a file still being written has no final size yet: no ETA */
	bool writing = strcmp(status, "pending") == 0 || !finishing;
	duration(rate > 0 && !writing ? (double)(bytes - (sent < bytes ? sent : bytes)) / rate : -1,
		 eta, sizeof eta);
	double frac = bytes ? (double)sent / (double)bytes : 0;
	if (frac > 1)
		frac = 1;
	const char *phase = writing ? (strcmp(status, "pending") == 0 ? "writing" : "writing+uploading")
				    : "uploading";
	if (!v->tty) {
		printf("%s  %s  %s of %s  %s/s  ETA %s\n", name, phase, hs, hb, hr, eta);
		return;
	}
	/* NAME [#####-----] 45%  SENT / TOTAL  RATE/s  ETA  (phase) */
	int bw = v->width - 70;
	if (bw < 10)
		bw = 10;
	if (bw > 40)
		bw = 40;
	char b[64];
	bar(b, bw, frac);
	printf("%-24.24s %s %3d%%  %10s / %-10s %10s/s  ETA %-8s %s\n", name, b,
	       (int)(frac * 100), hs, hb, hr, eta, phase);
}

static int render(struct view *v, const char *txt, double t)
{
	json_object *root = json_tokener_parse(txt), *list;
	if (!root || !json_object_object_get_ex(root, "uploads", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		fprintf(stderr, "uploadfs status: the mount answered something that is not its "
				"status\n");
		json_object_put(root);
		return -EPROTO;
	}
	if (v->json) {
		printf("%s\n", txt);
	} else {
		size_t n = json_object_array_length(list);
		printf("%s (%s): %llu uploading, %llu being written, %llu failed\n",
		       str(root, "mount") ? str(root, "mount") : "?",
		       str(root, "server") ? str(root, "server") : "?",
		       (unsigned long long)u64(root, "uploading"),
		       (unsigned long long)u64(root, "pending"),
		       (unsigned long long)u64(root, "failed"));
		json_object *aw;
		if (json_object_object_get_ex(root, "server_away", &aw) && aw) {
			struct timespec ts; /* the mount's times are wall-clock */
			clock_gettime(CLOCK_REALTIME, &ts);
			double wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
			json_object *x;
			double since = json_object_object_get_ex(aw, "since", &x)
					   ? json_object_get_double(x) : wall;
			double at = json_object_object_get_ex(aw, "retry_at", &x)
					? json_object_get_double(x) : wall;
			printf("waiting for the server, retry in %.0f s (away for %.0f s: %s)\n",
			       at > wall ? at - wall : 0.0, wall > since ? wall - since : 0.0,
			       str(aw, "error") ? str(aw, "error") : "?");
		}
		for (size_t i = 0; i < n; i++)
			render_one(v, json_object_array_get_idx(list, i), t);
		if (u64(root, "more"))
			printf("... and %llu more\n", (unsigned long long)u64(root, "more"));
		if (n == 0)
			printf("no uploads in flight or failed\n");
	}
	remember(v, list, t);
	json_object_put(root);
	fflush(stdout);
	return 0;
}

static void usage(void)
{
	printf("usage: uploadfs status [--json] [--watch] [--interval SECONDS] MOUNTPOINT\n"
	       "Shows every upload in flight or failed on an uploadfs mount.\n\n"
	       "  --json            JSON (one object per refresh with --watch)\n"
	       "  -w, --watch       refresh until interrupted\n"
	       "  -n, --interval S  seconds between refreshes (1)\n");
}

int uf_status_main(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
					     {"watch", no_argument, NULL, 'w'},
					     {"interval", required_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct view v = {0};
	bool watch = false;
	double interval = 1.0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "wn:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'j':
			v.json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'n':
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "uploadfs status: --interval takes 0.1 to 3600 "
						"seconds\n");
				return 2;
			}
			break;
		case 'h':
			usage();
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage();
		return 2;
	}
	const char *mnt = argv[optind];
	v.tty = isatty(STDOUT_FILENO);
	struct winsize ws;
	v.width = v.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col ? ws.ws_col : 80;
	char *buf = malloc(1u << 16);
	int rc = buf ? 0 : -ENOMEM;
	for (bool first = true; rc == 0; first = false) {
		if (!first) {
			struct timespec d = {(time_t)interval,
					     (long)((interval - (double)(time_t)interval) * 1e9)};
			nanosleep(&d, NULL);
		}
		if ((rc = fetch(mnt, buf, 1u << 16)) < 0)
			break;
		if (watch && v.tty && !v.json)
			printf("\033[H\033[J"); /* redraw in place */
		else if (!first && !v.json)
			printf("\n");
		rc = render(&v, buf, now_s());
		if (!watch)
			break;
	}
	for (size_t i = 0; i < v.nprev; i++)
		free(v.prev[i].name);
	free(v.prev);
	free(buf);
	return rc < 0 ? 1 : 0;
}
