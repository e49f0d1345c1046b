#include "statuscmd.h"
#include "mount.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

/* What the refreshes saw of one upload: its rate is an exponentially weighted average of
 * the bytes acknowledged between refreshes (parts are acknowledged in bursts: the rate of
 * one interval swings between 0 and the link's speed). */
struct track {
	char *name;
	uint64_t sent;
	double at;   /* CLOCK_MONOTONIC of the sample */
	double ewma; /* bytes per second, smoothed from 0... */
	double wsum; /* ...with this weight: ewma / wsum is the average, also while young */
	bool seen;   /* in the last refresh */
};

/* How many seconds the average remembers: about that long for a change to show fully. */
#define RATE_TAU 4.0

struct view {
	bool json, tty, utf8;
	int width; /* columns of the terminal; lines stay shorter */
	struct track *tr;
	size_t ntr;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void uf_fmt_bytes(uint64_t b, char *out, size_t len)
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

void uf_fmt_duration(double s, char *out, size_t len)
{
	if (!(s >= 0) || s > 359999) {
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

static bool flag(json_object *o, const char *key, bool dflt)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_boolean(v) : dflt;
}

/* The smoothed rate of name, now that it has sent bytes at t: the first refresh takes the
 * average since the upload started; a restarted upload (fewer bytes) starts over. */
static double rate_of(struct view *v, const char *name, uint64_t sent, double secs, double t)
{
	struct track *k = NULL;
	for (size_t i = 0; i < v->ntr && !k; i++)
		if (strcmp(v->tr[i].name, name) == 0)
			k = &v->tr[i];
	double first = secs > 0 ? (double)sent / secs : 0;
	if (!k) {
		struct track *nt = realloc(v->tr, (v->ntr + 1) * sizeof *nt);
		char *nm = strdup(name);
		if (!nt || !nm) {
			free(nm);
			if (nt)
				v->tr = nt;
			return first;
		}
		v->tr = nt;
		k = &v->tr[v->ntr++];
		*k = (struct track){.name = nm, .sent = sent, .at = t};
	} else if (sent < k->sent) {
		k->ewma = k->wsum = 0;
	} else if (t > k->at) {
		double dt = t - k->at, inst = (double)(sent - k->sent) / dt;
		double a = 1 - exp(-dt / RATE_TAU);
		k->ewma += a * (inst - k->ewma);
		k->wsum += a * (1 - k->wsum);
	}
	k->sent = sent;
	k->at = t;
	k->seen = true;
	return k->wsum > 0 ? k->ewma / k->wsum : first;
}

/* Drops the uploads the last refresh did not show. */
static void prune(struct view *v)
{
	size_t j = 0;
	for (size_t i = 0; i < v->ntr; i++) {
		if (v->tr[i].seen) {
			v->tr[i].seen = false;
			v->tr[j++] = v->tr[i];
		} else {
			free(v->tr[i].name);
		}
	}
	v->ntr = j;
}

/* Columns of s on the terminal (UTF-8 aware when the locale is). */
static size_t cols(const struct view *v, const char *s, size_t bytes)
{
	if (!v->utf8)
		return bytes;
	mbstate_t ps = {0};
	size_t c = 0;
	for (size_t i = 0; i < bytes;) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s + i, bytes - i, &ps);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			memset(&ps, 0, sizeof ps);
			n = 1;
			wc = '?';
		}
		int w = wcwidth(wc);
		c += w < 0 ? 1 : (size_t)w;
		i += n;
	}
	return c;
}

/* s cut to at most width columns (the cut marked with an ellipsis), padded with spaces to
 * width when pad. */
static void fit(const struct view *v, const char *s, size_t width, bool pad, char *out,
		size_t len)
{
	const char *mark = v->utf8 ? "\xe2\x80\xa6" : "~";
	size_t n = strlen(s), o = 0, c = cols(v, s, n);
	if (c > width) {
		/* the longest prefix of width - 1 columns, then the mark */
		size_t end = 0;
		while (end < n) {
			size_t next = end + 1;
			while (v->utf8 && next < n && ((unsigned char)s[next] & 0xC0) == 0x80)
				next++;
			if (cols(v, s, next) > width - 1)
				break;
			end = next;
		}
		o = (size_t)snprintf(out, len, "%.*s%s", (int)end, s, width ? mark : "");
		c = width;
	} else {
		o = (size_t)snprintf(out, len, "%s", s);
	}
	for (; pad && c < width && o + 1 < len; c++)
		out[o++] = ' ';
	if (o < len)
		out[o] = '\0';
}

/* Prints one line, cut to the terminal's width there. */
static void line(const struct view *v, const char *s)
{
	char buf[1024];
	if (v->tty) {
		fit(v, s, (size_t)v->width - 1, false, buf, sizeof buf);
		s = buf;
	}
	printf("%s\n", s);
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

/* One upload, as shown: its columns are aligned across rows. */
struct row {
	const char *name;
	bool failed, known;
	double frac;
	char pct[8], sent[24], total[24], rate[32], eta[24], phase[16];
	const char *error;
};

/* The facts of one upload; adds it to the overall line's sums. */
struct sums {
	unsigned files;
	uint64_t sent, total;
	bool known;
	double rate, elapsed;
};

static void row_of(struct view *v, json_object *e, double t, struct row *r, struct sums *sum)
{
	memset(r, 0, sizeof *r);
	r->name = str(e, "name");
	const char *status = str(e, "status");
	r->failed = status && strcmp(status, "failed") == 0;
	r->error = str(e, "error");
	uint64_t bytes = u64(e, "bytes"), sent = u64(e, "bytes_sent");
	json_object *o;
	double secs = json_object_object_get_ex(e, "seconds", &o) ? json_object_get_double(o) : 0;
	/* an older mount sends no size_known: its size is final once the file is closed */
	bool writing = flag(e, "writing", status && strcmp(status, "pending") == 0);
	r->known = flag(e, "size_known", !writing);
	uf_fmt_bytes(sent, r->sent, sizeof r->sent);
	uf_fmt_bytes(bytes, r->total, sizeof r->total);
	if (!r->known)
		strcat(r->total, "+"); /* growing: the bytes written so far */
	snprintf(r->phase, sizeof r->phase, "%s",
		 r->failed ? "failed" : writing ? "writing" : "uploading");
	if (r->failed)
		return;
	double rate = rate_of(v, r->name ? r->name : "", sent, secs, t);
	char hr[24];
	uf_fmt_bytes((uint64_t)rate, hr, sizeof hr);
	snprintf(r->rate, sizeof r->rate, "%s/s", hr);
	uint64_t left = bytes > sent ? bytes - sent : 0;
	double eta = r->known && rate > 0 ? (double)left / rate : r->known && !left ? 0 : -1;
	uf_fmt_duration(eta, r->eta, sizeof r->eta);
	r->frac = bytes ? (double)sent / (double)bytes : 0;
	if (r->frac > 1)
		r->frac = 1;
	if (r->known)
		snprintf(r->pct, sizeof r->pct, "%d%%", (int)(r->frac * 100));
	else
		snprintf(r->pct, sizeof r->pct, "?%%");
	sum->files++;
	sum->sent += sent;
	sum->total += bytes;
	sum->known = sum->known && r->known;
	sum->rate += rate;
	if (secs > sum->elapsed)
		sum->elapsed = secs;
}

static size_t widest(const struct row *rows, size_t n, size_t off, size_t w)
{
	for (size_t i = 0; i < n; i++) {
		if (rows[i].failed)
			continue;
		size_t l = strlen((const char *)&rows[i] + off);
		w = l > w ? l : w;
	}
	return w;
}

static void print_rows(const struct view *v, const struct row *rows, size_t n)
{
	char buf[1024], nm[512];
	/* at least as wide as usual values, so that the columns do not move at each refresh */
	size_t wp = widest(rows, n, offsetof(struct row, pct), 4);
	size_t ws = widest(rows, n, offsetof(struct row, sent), 8);
	size_t wt = widest(rows, n, offsetof(struct row, total), 8);
	size_t wr = widest(rows, n, offsetof(struct row, rate), 10);
	size_t we = widest(rows, n, offsetof(struct row, eta), 4);
	size_t wph = widest(rows, n, offsetof(struct row, phase), 9);
	/* PCT  SENT / TOTAL  RATE  ETA E  PHASE */
	size_t tail = wp + 2 + ws + 3 + wt + 2 + wr + 6 + we + 2 + wph;
	size_t namew = 0;
	for (size_t i = 0; i < n; i++) {
		size_t c = rows[i].name ? cols(v, rows[i].name, strlen(rows[i].name)) : 0;
		namew = c > namew ? c : namew;
	}
	size_t budget = (size_t)v->width - 1;
	if (namew > 28)
		namew = 28;
	if (namew < 8)
		namew = 8;
	/* the bar takes what is left once the name has its column, if that is enough */
	size_t room = budget > namew + 1 + tail + 1 ? budget - namew - 1 - tail - 1 : 0;
	int bw = room >= 8 ? (int)(room > 42 ? 40 : room - 2) : 0;
	if (!bw && budget > tail + 1 + 8)
		namew = budget - tail - 1 < namew ? budget - tail - 1 : namew;
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		if (!r->name)
			continue;
		if (!v->tty) {
			if (r->failed)
				printf("%s  failed  %s of %s sent  %s\n", r->name, r->sent, r->total,
				       r->error ? r->error : "");
			else
				printf("%s  %s  %s of %s  %s  ETA %s\n", r->name, r->phase, r->sent,
				       r->total, r->rate, r->eta);
			continue;
		}
		fit(v, r->name, namew, true, nm, sizeof nm);
		if (r->failed) {
			snprintf(buf, sizeof buf, "%s failed: %s of %s sent: %s", nm, r->sent, r->total,
				 r->error ? r->error : "");
			line(v, buf);
			continue;
		}
		char b[64] = "";
		if (bw)
			bar(b, bw, r->known ? r->frac : 0);
		snprintf(buf, sizeof buf, "%s %s%s%*s  %*s / %-*s  %*s  ETA %-*s  %s", nm, b,
			 bw ? " " : "", (int)wp, r->pct, (int)ws, r->sent, (int)wt, r->total, (int)wr,
			 r->rate, (int)we, r->eta, r->phase);
		line(v, buf);
	}
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
		json_object_put(root);
		fflush(stdout);
		return 0;
	}
	size_t n = json_object_array_length(list);
	struct row *rows = calloc(n ? n : 1, sizeof *rows);
	if (!rows) {
		json_object_put(root);
		return -ENOMEM;
	}
	struct sums sum = {.known = true};
	unsigned writing = 0, uploading = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		row_of(v, json_object_array_get_idx(list, i), t, &rows[i], &sum);
		if (!rows[i].name)
			continue;
		if (rows[i].failed)
			failed++;
		else if (strcmp(rows[i].phase, "writing") == 0)
			writing++;
		else
			uploading++;
	}
	prune(v);
	char buf[1024], where[800], counts[128];
	/* the counts are the rows': each row is in exactly one. On a terminal, a long
	 * mountpoint or URL is cut rather than the counts. */
	snprintf(counts, sizeof counts, "%u uploading, %u being written, %u failed", uploading,
		 writing, failed);
	snprintf(buf, sizeof buf, "%s (%s)", str(root, "mount") ? str(root, "mount") : "?",
		 str(root, "server") ? str(root, "server") : "?");
	size_t room = (size_t)v->width - 1 - strlen(counts) - 2;
	fit(v, buf, v->tty ? (room > 12 ? room : 12) : sizeof where, false, where, sizeof where);
	snprintf(buf, sizeof buf, "%s: %s", where, counts);
	line(v, buf);
	json_object *aw;
	if (json_object_object_get_ex(root, "server_away", &aw) && aw) {
		struct timespec ts; /* the mount's times are wall-clock */
		clock_gettime(CLOCK_REALTIME, &ts);
		double wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
		json_object *x;
		double since = json_object_object_get_ex(aw, "since", &x) ? json_object_get_double(x)
									  : wall;
		double at = json_object_object_get_ex(aw, "retry_at", &x) ? json_object_get_double(x)
									   : wall;
		snprintf(buf, sizeof buf, "waiting for the server, retry in %.0f s (away for %.0f s: %s)",
			 at > wall ? at - wall : 0.0, wall > since ? wall - since : 0.0,
			 str(aw, "error") ? str(aw, "error") : "?");
		line(v, buf);
	}
	if (sum.files) {
		/* the overall line: every upload in flight together */
		char hs[24], ht[24], hr[24], eta[24], el[24];
		uf_fmt_bytes(sum.sent, hs, sizeof hs);
		uf_fmt_bytes(sum.total, ht, sizeof ht);
		uf_fmt_bytes((uint64_t)sum.rate, hr, sizeof hr);
		uint64_t left = sum.total > sum.sent ? sum.total - sum.sent : 0;
		uf_fmt_duration(sum.known && sum.rate > 0 ? (double)left / sum.rate : -1, eta,
				sizeof eta);
		uf_fmt_duration(sum.elapsed, el, sizeof el);
		snprintf(buf, sizeof buf, "%u file%s: %s / %s%s  %s/s  ETA %s  elapsed %s", sum.files,
			 sum.files == 1 ? "" : "s", hs, ht, sum.known ? "" : "+", hr, eta, el);
		line(v, buf);
	}
	print_rows(v, rows, n);
	if (u64(root, "more")) {
		snprintf(buf, sizeof buf, "... and %llu more", (unsigned long long)u64(root, "more"));
		line(v, buf);
	}
	if (n == 0)
		line(v, "no uploads in flight or failed");
	free(rows);
	json_object_put(root);
	fflush(stdout);
	return 0;
}

/* The terminal's columns: the terminal's own, else $COLUMNS, else 80. */
static int term_width(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	const char *c = getenv("COLUMNS");
	long w = c ? strtol(c, NULL, 10) : 0;
	return w >= 20 && w <= 1000 ? (int)w : 80;
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
	setlocale(LC_CTYPE, "");
	v.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
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
		v.width = v.tty ? term_width() : 1000; /* a resized terminal: the new width */
		rc = render(&v, buf, now_s());
		if (!watch)
			break;
	}
	for (size_t i = 0; i < v.ntr; i++)
		free(v.tr[i].name);
	free(v.tr);
	free(buf);
	return rc < 0 ? 1 : 0;
}
