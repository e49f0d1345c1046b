/* libuploadfs through its public API against a real uploadfs-server. */
#include "check.h"
#include "fixture.h"

#include <uploadfs.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

static up_client *client_for(const struct fixture *f, const char *key)
{
	struct up_config cfg = {.api_base = f->base, .api_key = key, .no_env = true};
	up_client *c = NULL;
	struct up_error err;
	if (up_client_new(&cfg, &c, &err) < 0) {
		printf("# client: %s\n", err.message);
		return NULL;
	}
	return c;
}

static void fill(char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (char)(seed >> 16);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int temp_file(const char *data, size_t n, char path[64])
{
	snprintf(path, 64, "/tmp/uploadfs-core-XXXXXX");
	int fd = mkstemp(path);
	if (fd >= 0 && write(fd, data, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Downloads file_id and compares it with want. */
static bool content_is(up_client *c, const char *file_id, const char *want, size_t n)
{
	char path[64];
	int fd = temp_file("", 0, path);
	uint64_t written = 0;
	struct up_error err;
	bool ok = fd >= 0 && up_file_content(c, file_id, fd, &written, &err) == 0 && written == n;
	char *got = malloc(n + 1);
	ok = ok && got && pread(fd, got, n, 0) == (ssize_t)n && memcmp(got, want, n) == 0;
	free(got);
	close(fd);
	unlink(path);
	return ok;
}

static ssize_t read_cb(void *ud, uint64_t off, void *buf, size_t len)
{
	memcpy(buf, (const char *)ud + off, len);
	return (ssize_t)len;
}

CASE(parts_from_memory_fd_and_callback_in_any_order)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	up_client *c = client_for(&f, NULL);
	CHECK(c);
	static char data[300000];
	fill(data, sizeof data, 1);
	struct up_error err;
	struct up_upload up, done;
	CHECK(up_upload_create(c, sizeof data, "x/y.bin", "application/octet-stream", "batch", &up,
			       &err) == 0);
	CHECK(strcmp(up.status, "pending") == 0 && up.bytes == sizeof data);
	CHECK(strcmp(up.filename, "x/y.bin") == 0 && up.expires_at > up.created_at);
	char path[64];
	int fd = temp_file(data, sizeof data, path);
	CHECK(fd >= 0);
	struct up_part p[3];
	struct up_source cb = {
	    .kind = UP_SRC_CB, .len = 100000, .read = read_cb, .ud = data + 200000};
	/* sent last part first: the order is decided at complete */
	CHECK(up_part_add(c, up.id, &cb, &p[2], &err) == 0);
	CHECK(up_part_add_fd(c, up.id, fd, 100000, 100000, &p[1], &err) == 0);
	CHECK(up_part_add_mem(c, up.id, data, 100000, &p[0], &err) == 0);
	CHECK(strcmp(p[0].upload_id, up.id) == 0);
	close(fd);
	unlink(path);
	const char *ids[] = {p[0].id, p[1].id, p[2].id};
	char md5[33];
	up_md5_hex(data, sizeof data, md5);
	CHECK(up_upload_complete(c, up.id, ids, 3, md5, &done, &err) == 0);
	CHECK(strcmp(done.status, "completed") == 0 && done.has_file);
	CHECK(done.file.bytes == sizeof data && strcmp(done.file.purpose, "batch") == 0);
	CHECK(content_is(c, done.file.id, data, sizeof data));
	struct up_file fi;
	CHECK(up_file_retrieve(c, done.file.id, &fi, &err) == 0 && fi.bytes == sizeof data);
	up_file_clear(&fi);
	CHECK(up_file_delete(c, done.file.id, &err) == 0);
	CHECK(up_file_retrieve(c, done.file.id, &fi, &err) == -ENOENT && err.status == 404);
	up_upload_clear(&up);
	up_upload_clear(&done);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(cancel_and_then_no_more_parts)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	up_client *c = client_for(&f, NULL);
	struct up_error err;
	struct up_upload up, cancelled;
	struct up_part p;
	CHECK(up_upload_create(c, 10, "a", "text/plain", "assistants", &up, &err) == 0);
	CHECK(up_upload_cancel(c, up.id, &cancelled, &err) == 0);
	CHECK(strcmp(cancelled.status, "cancelled") == 0);
	CHECK(up_part_add_mem(c, up.id, "0123456789", 10, &p, &err) == -EINVAL);
	CHECK(err.status == 400 && strstr(err.message, "cancelled"));
	CHECK(strcmp(err.type, "invalid_request_error") == 0);
	CHECK(up_upload_cancel(c, "../etc", &cancelled, &err) == -EINVAL);
	up_upload_clear(&up);
	up_upload_clear(&cancelled);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(upload_file_from_path_fd_and_memory)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	up_client *c = client_for(&f, NULL);
	size_t n = 5u << 20;
	char *data = malloc(n);
	fill(data, n, 2);
	char path[64];
	int fd = temp_file(data, n, path);
	struct up_error err;
	struct up_upload out;
	struct up_file_upload o = UP_FILE_UPLOAD_INIT;
	o.path = path;
	o.part_size = 1u << 20;
	o.parallel = 3;
	o.purpose = "batch";
	CHECK(up_upload_file(c, &o, &out, &err) == 0);
	CHECK(strcmp(out.filename, strrchr(path, '/') + 1) == 0 && out.file.bytes == n);
	CHECK(content_is(c, out.file.id, data, n));
	up_upload_clear(&out);

	o = (struct up_file_upload)UP_FILE_UPLOAD_INIT;
	o.fd = fd;
	o.filename = "from-fd";
	o.purpose = "vision";
	o.part_size = 2u << 20; /* 5 MiB: 2 + 2 + 1 */
	CHECK(up_upload_file(c, &o, &out, &err) == 0);
	CHECK(strcmp(out.file.filename, "from-fd") == 0);
	CHECK(content_is(c, out.file.id, data, n));
	up_upload_clear(&out);

	o = (struct up_file_upload)UP_FILE_UPLOAD_INIT;
	o.mem = data;
	o.bytes = n;
	o.filename = "from-mem";
	o.purpose = "batch";
	CHECK(up_upload_file(c, &o, &out, &err) == 0);
	CHECK(content_is(c, out.file.id, data, n));
	up_upload_clear(&out);

	/* an empty file is zero parts and a complete */
	o = (struct up_file_upload)UP_FILE_UPLOAD_INIT;
	o.mem = "";
	o.bytes = 0;
	o.filename = "empty";
	CHECK(up_upload_file(c, &o, &out, &err) == 0 && out.file.bytes == 0);
	up_upload_clear(&out);
	close(fd);
	unlink(path);
	free(data);
	up_client_free(c);
	fixture_stop(&f);
}

static int count_status(const struct fixture *f, const char *status)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "grep -l '\"status\":\"%s\"' %s/data/uploads/*.json | wc -l",
		 status, f->dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

CASE(upload_file_failures_cancel_the_upload)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--max-part-bytes", "1M", NULL) == 0);
	up_client *c = client_for(&f, NULL);
	static char data[3u << 20];
	fill(data, sizeof data, 3);
	struct up_error err;
	struct up_upload out;
	struct up_file_upload o = UP_FILE_UPLOAD_INIT;
	o.mem = data;
	o.bytes = sizeof data;
	o.filename = "big-parts";
	o.part_size = 2u << 20; /* over the server's limit */
	CHECK(up_upload_file(c, &o, &out, &err) == -EINVAL);
	CHECK(err.status == 400 && strcmp(err.param, "data") == 0);
	CHECK(count_status(&f, "cancelled") == 1 && count_status(&f, "pending") == 0);
	/* the caller's md5 is checked before complete */
	o.part_size = 1u << 20;
	o.md5 = "00000000000000000000000000000000";
	CHECK(up_upload_file(c, &o, &out, &err) == -EBADMSG);
	CHECK(count_status(&f, "cancelled") == 2 && count_status(&f, "pending") == 0);
	struct up_file_list l;
	CHECK(up_files_list(c, NULL, &l, &err) == 0 && l.n == 0);
	up_file_list_clear(&l);
	/* a path that does not exist */
	o = (struct up_file_upload)UP_FILE_UPLOAD_INIT;
	o.path = "/nonexistent/file";
	CHECK(up_upload_file(c, &o, &out, &err) == -ENOENT);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(retries_carry_an_upload_through_a_30_percent_failure_rate)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--fail-rate", "0.3", "--seed", "11", NULL) == 0);
	struct up_config cfg = {.api_base = f.base, .no_env = true, .retries = 10};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	size_t n = 24u << 20;
	char *data = malloc(n);
	fill(data, n, 4);
	struct up_upload out;
	struct up_file_upload o = UP_FILE_UPLOAD_INIT;
	o.mem = data;
	o.bytes = n;
	o.filename = "flaky";
	o.purpose = "batch";
	o.part_size = 1u << 20;
	o.parallel = 4;
	int rc = up_upload_file(c, &o, &out, &err);
	if (rc < 0)
		printf("# %s\n", err.message);
	CHECK(rc == 0);
	CHECK(content_is(c, out.file.id, data, n));
	up_upload_clear(&out);
	free(data);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(a_429_with_retry_after_is_waited_for)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--fail-first", "2", "--fail-kind", "429", NULL) == 0);
	up_client *c = client_for(&f, NULL);
	struct up_error err;
	struct up_upload up;
	struct up_part p;
	CHECK(up_upload_create(c, 3, "a", "text/plain", "batch", &up, &err) == 0);
	double t0 = now();
	CHECK(up_part_add_mem(c, up.id, "abc", 3, &p, &err) == 0);
	/* two answers said retry-after-ms: 200 */
	CHECK(now() - t0 >= 0.38);
	up_upload_clear(&up);
	up_client_free(c);
	fixture_stop(&f);

	/* out of retries, the 429 itself is the answer */
	CHECK(fixture_start(&f, "--fail-first", "5", "--fail-kind", "429", NULL) == 0);
	struct up_config cfg = {.api_base = f.base, .no_env = true, .retries = 2};
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	CHECK(up_upload_create(c, 3, "a", "text/plain", "batch", &up, &err) == 0);
	CHECK(up_part_add_mem(c, up.id, "abc", 3, &p, &err) == -EAGAIN && err.status == 429);
	CHECK(strcmp(err.code, "rate_limit_exceeded") == 0);
	up_upload_clear(&up);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(every_error_status_maps_to_an_errno)
{
	static const int table[][2] = {
	    {400, -EINVAL}, {401, -EACCES}, {403, -EACCES}, {404, -ENOENT}, {408, -ETIMEDOUT},
	    {409, -EBUSY},  {413, -EFBIG},  {422, -EINVAL}, {429, -EAGAIN}, {500, -EIO},
	    {502, -EIO},    {503, -EIO},    {200, 0},	    {302, -EPROTO}};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		CHECK(up_errno_for_status(table[i][0]) == table[i][1]);

	struct fixture f;
	CHECK(fixture_start(&f, "--fail-first", "100", "--fail-kind", "500", NULL) == 0);
	struct up_config cfg = {.api_base = f.base, .no_env = true, .retries = UP_NO_RETRIES};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_upload up;
	struct up_part p;
	CHECK(up_upload_create(c, 1, "a", "x", "nonsense", &up, &err) == -EINVAL);
	CHECK(err.status == 400 && strcmp(err.param, "purpose") == 0 && err.errnum == -EINVAL);
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == 0);
	CHECK(up_part_add_mem(c, up.id, "a", 1, &p, &err) == -EIO && err.status == 500);
	CHECK(up_part_add_mem(c, "upload_0000000000000000000000000", "a", 1, &p, &err) == -ENOENT);
	CHECK(err.status == 404);
	up_upload_clear(&up);
	fixture_stop(&f);
	/* nobody listening any more */
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == -ECONNREFUSED);
	CHECK(err.status == 0);
	up_client_free(c);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

CASE(an_upload_is_retried_across_an_outage_for_the_window_and_a_listing_is_not)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	char base[256];
	snprintf(base, sizeof base, "%s", f.base);
	fixture_stop(&f); /* nobody listening: an outage */
	struct up_config cfg = {.api_base = base, .no_env = true, .retries = 1, .retry_window = 3};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_upload up;
	double t0 = mono();
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == -ECONNREFUSED);
	double post = mono() - t0;
	struct up_file_list l;
	t0 = mono();
	CHECK(up_files_list(c, NULL, &l, &err) == -ECONNREFUSED);
	double get = mono() - t0;
	printf("# POST failed after %.2f s, GET after %.2f s\n", post, get);
	CHECK(post >= 2.9 && post < 6); /* retried on until the 3 s window closed, then failed */
	CHECK(get < 1.5);		   /* one retry, no window */
	up_client_free(c);
}

CASE(a_wrong_key_is_eacces_with_the_servers_message)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--api-key", "sk-right", NULL) == 0);
	up_client *c = client_for(&f, "sk-wrong-key");
	struct up_error err;
	struct up_upload up;
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == -EACCES);
	CHECK(err.status == 401 && strstr(err.message, "Incorrect API key"));
	CHECK(strstr(err.message, "sk-wrong-key") == NULL);
	up_client_free(c);
	c = client_for(&f, "sk-right");
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == 0);
	up_upload_clear(&up);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(a_key_file_must_be_0600)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--api-key", "sk-from-file", NULL) == 0);
	char path[64];
	int fd = temp_file("sk-from-file\n", 13, path);
	CHECK(fd >= 0);
	close(fd);
	chmod(path, 0644);
	struct up_config cfg = {.api_base = f.base, .api_key_file = path, .no_env = true};
	up_client *c = NULL;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == -EPERM && c == NULL);
	CHECK(strstr(err.message, "0600") && !strstr(err.message, "sk-from-file"));
	chmod(path, 0600);
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_file_list l;
	CHECK(up_files_list(c, NULL, &l, &err) == 0);
	up_file_list_clear(&l);
	up_client_free(c);
	unlink(path);
	fixture_stop(&f);
}

static int log_lines(const char *path, const char *needle)
{
	FILE *in = fopen(path, "r");
	char line[4096];
	int n = 0;
	while (in && fgets(line, sizeof line, in))
		n += strstr(line, needle) != NULL;
	if (in)
		fclose(in);
	return n;
}

CASE(files_list_follows_every_page)
{
	struct fixture f;
	char logpath[128];
	snprintf(logpath, sizeof logpath, "/tmp/uploadfs-core-list-%d.log", getpid());
	CHECK(fixture_start(&f, "--log-requests", logpath, NULL) == 0);
	up_client *c = client_for(&f, NULL);
	struct up_error err;
	for (int i = 0; i < 25; i++) {
		char name[16];
		snprintf(name, sizeof name, "f%02d", i);
		struct up_source src = {.kind = UP_SRC_MEM, .len = 3, .mem = "abc"};
		struct up_file out;
		CHECK(up_file_create(c, &src, name, i % 5 ? "batch" : "vision", &out, &err) == 0);
		CHECK(strcmp(out.filename, name) == 0 && out.bytes == 3);
		up_file_clear(&out);
	}
	struct up_list_query q = {.limit = 10};
	struct up_file_list l;
	CHECK(up_files_list(c, &q, &l, &err) == 0);
	CHECK(l.n == 25);
	CHECK(strcmp(l.files[0].filename, "f24") == 0 && strcmp(l.files[24].filename, "f00") == 0);
	up_file_list_clear(&l);
	q = (struct up_list_query){.limit = 4, .ascending = true, .purpose = "vision"};
	CHECK(up_files_list(c, &q, &l, &err) == 0 && l.n == 5);
	CHECK(strcmp(l.files[0].filename, "f00") == 0 && strcmp(l.files[4].filename, "f20") == 0);
	up_file_list_clear(&l);
	q = (struct up_list_query){.limit = 10, .max_files = 12};
	CHECK(up_files_list(c, &q, &l, &err) == 0 && l.n == 12);
	up_file_list_clear(&l);
	up_client_free(c);
	fixture_stop(&f);
	/* 25 files in pages of 10: three requests; then 2 pages of 4 for vision; then 2 pages */
	CHECK(log_lines(logpath, "\"GET\"") == 3 + 2 + 2);
	unlink(logpath);
}

CASE(content_the_api_forbids_is_eacces)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	up_client *c = client_for(&f, NULL);
	struct up_error err;
	struct up_source src = {.kind = UP_SRC_MEM, .len = 3, .mem = "abc"};
	struct up_file out;
	CHECK(up_file_create(c, &src, "secret", "assistants", &out, &err) == 0);
	CHECK(up_file_content(c, out.id, 1, NULL, &err) == -EACCES);
	CHECK(strstr(err.message, "Not allowed to download"));
	up_file_clear(&out);
	up_client_free(c);
	fixture_stop(&f);
}

struct tally {
	pthread_mutex_t mu;
	int ok, failed;
	char ids[8][UP_ID_MAX];
	char status[16];
};

static void on_part(void *ud, int rc, const struct up_part *p, const struct up_error *err)
{
	(void)err;
	struct tally *t = ud;
	pthread_mutex_lock(&t->mu);
	if (rc == 0)
		snprintf(t->ids[t->ok++], UP_ID_MAX, "%s", p->id);
	else
		t->failed++;
	pthread_mutex_unlock(&t->mu);
}

static void on_upload(void *ud, int rc, const struct up_upload *u, const struct up_error *err)
{
	(void)err;
	struct tally *t = ud;
	pthread_mutex_lock(&t->mu);
	snprintf(t->status, sizeof t->status, "%s", rc == 0 ? u->status : "error");
	pthread_mutex_unlock(&t->mu);
}

CASE(async_requests_run_in_parallel_and_call_back)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--latency-ms", "200", NULL) == 0);
	up_client *c = client_for(&f, NULL);
	up_async *a;
	CHECK(up_async_new(c, 4, &a) == 0);
	struct tally t = {.mu = PTHREAD_MUTEX_INITIALIZER};
	CHECK(up_async_create(a, 8000, "async.bin", "x", "batch", on_upload, &t) == 0);
	up_async_wait(a);
	CHECK(strcmp(t.status, "pending") == 0);
	/* the upload id comes from the server's list: there is no GET upload */
	char uid[UP_ID_MAX];
	FILE *p = NULL;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "ls %s/data/uploads | sed 's/.json$//'", f.dir);
	CHECK((p = popen(cmd, "r")) && fscanf(p, "%127s", uid) == 1);
	pclose(p);
	static char data[8000];
	fill(data, sizeof data, 5);
	double t0 = now();
	for (int i = 0; i < 8; i++) {
		struct up_source src = {.kind = UP_SRC_MEM, .len = 1000, .mem = data + i * 1000};
		CHECK(up_async_part_add(a, uid, &src, on_part, &t) == 0);
	}
	up_async_wait(a);
	double took = now() - t0;
	CHECK(t.ok == 8 && t.failed == 0);
	/* 8 requests of 200 ms, 4 at a time: about 0.4 s, never the 1.6 s of one at a time */
	CHECK(took < 1.4);
	CHECK(up_async_cancel(a, uid, on_upload, &t) == 0);
	up_async_free(a);
	CHECK(strcmp(t.status, "cancelled") == 0);
	up_client_free(c);
	fixture_stop(&f);
}

/* Part bodies being read, counted by the source: the pool reads a body only with a sending
 * slot, from its first byte to its last; and requests open, from that first byte to the
 * answer. */
struct body_meter {
	pthread_mutex_t mu;
	const char *data;
	unsigned sending, most;
	unsigned open, most_open;
};

struct ordered_part {
	char id[UP_ID_MAX];
	int rc;
	struct body_meter *m;
};

static void on_ordered_part(void *ud, int rc, const struct up_part *p, const struct up_error *err)
{
	(void)err;
	struct ordered_part *o = ud;
	o->rc = rc;
	if (rc == 0)
		snprintf(o->id, sizeof o->id, "%s", p->id);
	pthread_mutex_lock(&o->m->mu);
	o->m->open--;
	pthread_mutex_unlock(&o->m->mu);
}

struct metered_part {
	struct body_meter *m;
	size_t index;
	bool begun;
};

static ssize_t metered_read(void *ud, uint64_t off, void *buf, size_t len)
{
	struct metered_part *p = ud;
	struct body_meter *m = p->m;
	pthread_mutex_lock(&m->mu);
	if (!p->begun) {
		p->begun = true;
		if (++m->sending > m->most)
			m->most = m->sending;
		if (++m->open > m->most_open)
			m->most_open = m->open;
	}
	if (off + len >= (1u << 20))
		m->sending--;
	pthread_mutex_unlock(&m->mu);
	if (off + len > (1u << 20))
		len = (size_t)((1u << 20) - off);
	memcpy(buf, m->data + p->index * (1u << 20) + off, len);
	usleep(2000); /* a body takes a moment to send */
	return (ssize_t)len;
}

/* parallel=4 bounds the bodies being sent, not the requests open: with the answers 150 ms
 * away, 12 parts take about two rounds, not three; the file arrives whole. */
CASE(async_sends_four_bodies_at_once_and_does_not_wait_for_answers)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--latency-ms", "150", NULL) == 0);
	up_client *c = client_for(&f, NULL);
	enum { PARTS = 12, PART = 1 << 20 };
	static char data[PARTS * PART];
	fill(data, sizeof data, 9);
	struct up_error err;
	struct up_upload up, done;
	CHECK(up_upload_create(c, sizeof data, "order.bin", "x", "batch", &up, &err) == 0);
	up_async *a;
	CHECK(up_async_new(c, 4, &a) == 0);
	struct body_meter m = {.mu = PTHREAD_MUTEX_INITIALIZER, .data = data};
	struct metered_part mp[PARTS];
	struct ordered_part parts[PARTS] = {0};
	double t0 = now();
	for (int i = 0; i < PARTS; i++) {
		mp[i] = (struct metered_part){.m = &m, .index = (size_t)i};
		parts[i].m = &m;
		struct up_source src = {
		    .kind = UP_SRC_CB, .len = PART, .read = metered_read, .ud = &mp[i]};
		CHECK(up_async_part_add(a, up.id, &src, on_ordered_part, &parts[i]) == 0);
	}
	up_async_wait(a);
	double took = now() - t0;
	up_async_free(a);
	for (int i = 0; i < PARTS; i++)
		CHECK(parts[i].rc == 0);
	fprintf(stderr, "# 12 parts, answers 150 ms away: %.2f s, %u bodies and %u requests at once\n",
		took, m.most, m.most_open);
	CHECK(m.most >= 2 && m.most <= 4);
	CHECK(m.most_open > 4 && m.most_open <= 8); /* parts awaiting answers did not count */
	CHECK(took < 1.5);
	const char *ids[PARTS];
	for (int i = 0; i < PARTS; i++)
		ids[i] = parts[i].id;
	char md5[33];
	up_md5_hex(data, sizeof data, md5);
	CHECK(up_upload_complete(c, up.id, ids, PARTS, md5, &done, &err) == 0);
	CHECK(strcmp(done.status, "completed") == 0 && done.has_file);
	up_upload_clear(&up);
	up_upload_clear(&done);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(plain_http_only_to_loopback)
{
	struct up_config cfg = {.api_base = "http://example.com/v1", .no_env = true};
	up_client *c = NULL;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == -EPERM && strstr(err.message, "allow_http"));
	cfg.allow_http = true;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	up_client_free(c);
	cfg = (struct up_config){.api_base = "https://example.com/v1/", .no_env = true};
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	CHECK(strcmp(up_client_base(c), "https://example.com/v1") == 0);
	up_client_free(c);
	cfg.api_base = "ftp://example.com/v1";
	CHECK(up_client_new(&cfg, &c, &err) == -EINVAL);
	cfg.api_base = "http://localhost:8080/v1";
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	up_client_free(c);
	cfg = (struct up_config){.no_env = true};
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	CHECK(strcmp(up_client_base(c), "https://api.openai.com/v1") == 0);
	up_client_free(c);
}

struct logbuf {
	pthread_mutex_t mu;
	char text[16384];
	size_t len;
};

static void collect(void *ud, enum up_log_level level, const char *line)
{
	(void)level;
	struct logbuf *b = ud;
	pthread_mutex_lock(&b->mu);
	b->len += (size_t)snprintf(b->text + b->len, sizeof b->text - b->len, "%s\n", line);
	if (b->len >= sizeof b->text)
		b->len = sizeof b->text - 1;
	pthread_mutex_unlock(&b->mu);
}

CASE(portkey_environment_and_a_redacted_debug_log)
{
	struct fixture f;
	char logpath[128];
	snprintf(logpath, sizeof logpath, "/tmp/uploadfs-core-pk-%d.log", getpid());
	CHECK(fixture_start(&f, "--log-requests", logpath, NULL) == 0);
	setenv("PORTKEY_API_KEY", "pk-secret-123", 1);
	setenv("PORTKEY_PROVIDER", "openai", 1);
	setenv("PORTKEY_CUSTOM_HOST", f.base, 1);
	unsetenv("OPENAI_API_KEY");
	setenv("OPENAI_BASE_URL", f.base, 1);
	struct logbuf lb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct up_config cfg = {.log = collect, .log_ud = &lb, .log_level = UP_LOG_DEBUG};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_file_list l;
	CHECK(up_files_list(c, NULL, &l, &err) == 0);
	up_file_list_clear(&l);
	up_client_free(c);
	unsetenv("PORTKEY_API_KEY");
	unsetenv("PORTKEY_PROVIDER");
	unsetenv("PORTKEY_CUSTOM_HOST");
	unsetenv("OPENAI_BASE_URL");
	/* the server writes a request's log line once the request is done: read it after
	 * the server stopped */
	fixture_stop(&f);
	/* the server saw the Portkey headers and, with no OpenAI key, no Authorization */
	CHECK(log_lines(logpath, "\"x-portkey-api-key\":\"[REDACTED]\"") == 1);
	CHECK(log_lines(logpath, "\"x-portkey-provider\":\"openai\"") == 1);
	CHECK(log_lines(logpath, "x-portkey-custom-host") == 1);
	CHECK(log_lines(logpath, "authorization") == 0);
	CHECK(log_lines(logpath, "\"user-agent\":\"uploadfs\\/") == 1);
	/* the debug log shows the request, never the key */
	CHECK(strstr(lb.text, "-> GET"));
	CHECK(strstr(lb.text, "x-portkey-api-key: [REDACTED]"));
	CHECK(!strstr(lb.text, "pk-secret-123"));
	unlink(logpath);
}

/* The Portkey fields of up_config win over the environment; "" sends no header. */
CASE(portkey_fields_override_the_environment)
{
	struct fixture f;
	char logpath[128];
	snprintf(logpath, sizeof logpath, "/tmp/uploadfs-core-pkf-%d.log", getpid());
	CHECK(fixture_start(&f, "--log-requests", logpath, NULL) == 0);
	setenv("PORTKEY_API_KEY", "pk-env-secret", 1);
	setenv("PORTKEY_PROVIDER", "env-provider", 1);
	setenv("PORTKEY_CONFIG", "env-config", 1);
	setenv("PORTKEY_VIRTUAL_KEY", "vk-env-secret", 1);
	unsetenv("OPENAI_API_KEY");
	struct logbuf lb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	/* a: the environment's virtual key; the key and the config taken away, the provider
	 * and the custom host given */
	struct up_config a = {.api_base = f.base,
			      .portkey_api_key = "",
			      .portkey_provider = "openai",
			      .portkey_config = "",
			      .portkey_custom_host = f.base,
			      .log = collect,
			      .log_ud = &lb,
			      .log_level = UP_LOG_DEBUG};
	/* b: no environment, every Portkey setting from the fields */
	struct up_config b = {.api_base = f.base,
			      .no_env = true,
			      .portkey_api_key = "pk-field-secret",
			      .portkey_virtual_key = "vk-field-secret",
			      .portkey_config = "{\"retry\":{\"attempts\":1}}",
			      .log = collect,
			      .log_ud = &lb,
			      .log_level = UP_LOG_DEBUG};
	up_client *c;
	struct up_error err;
	struct up_file_list l;
	CHECK(up_client_new(&a, &c, &err) == 0);
	CHECK(up_files_list(c, NULL, &l, &err) == 0);
	up_file_list_clear(&l);
	up_client_free(c);
	CHECK(up_client_new(&b, &c, &err) == 0);
	struct up_file file;
	CHECK(up_file_retrieve(c, "file-nope", &file, &err) == -ENOENT && err.status == 404);
	CHECK(!strstr(err.message, "secret"));
	up_client_free(c);
	unsetenv("PORTKEY_API_KEY");
	unsetenv("PORTKEY_PROVIDER");
	unsetenv("PORTKEY_CONFIG");
	unsetenv("PORTKEY_VIRTUAL_KEY");
	fixture_stop(&f);
	CHECK(log_lines(logpath, "\"path\":\"\\/v1\\/files\"") == 1);
	CHECK(log_lines(logpath, "file-nope") == 1);
	/* the key only from b's field; a's "" took the environment's away */
	CHECK(log_lines(logpath, "\"x-portkey-api-key\":\"[REDACTED]\"") == 1);
	CHECK(log_lines(logpath, "\"x-portkey-provider\":\"openai\"") == 1);
	CHECK(log_lines(logpath, "env-provider") == 0);
	CHECK(log_lines(logpath, "env-config") == 0);
	CHECK(log_lines(logpath, "\"x-portkey-config\":\"{\\\"retry\\\"") == 1);
	CHECK(log_lines(logpath, "\"x-portkey-virtual-key\":\"[REDACTED]\"") == 2);
	CHECK(log_lines(logpath, "x-portkey-custom-host") == 1);
	CHECK(log_lines(logpath, "authorization") == 0);
	CHECK(log_lines(logpath, "secret") == 0);
	/* neither the debug log shows a key */
	CHECK(strstr(lb.text, "x-portkey-api-key: [REDACTED]"));
	CHECK(strstr(lb.text, "x-portkey-provider: openai"));
	CHECK(!strstr(lb.text, "secret"));
	unlink(logpath);
}

CASE(the_debug_log_never_shows_the_openai_key)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--api-key", "sk-do-not-log", "--fail-first", "1", "--fail-kind",
			    "500", NULL) == 0);
	struct logbuf lb = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct up_config cfg = {.api_base = f.base,
				.api_key = "sk-do-not-log",
				.no_env = true,
				.log = collect,
				.log_ud = &lb,
				.log_level = UP_LOG_DEBUG};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_upload up;
	struct up_part p;
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == 0);
	CHECK(up_part_add_mem(c, up.id, "a", 1, &p, &err) == 0);
	CHECK(strstr(lb.text, "Authorization: Bearer [REDACTED]"));
	CHECK(strstr(lb.text, "retry 1 of 5"));
	CHECK(!strstr(lb.text, "sk-do-not-log"));
	up_upload_clear(&up);
	up_client_free(c);
	fixture_stop(&f);
}

CASE(a_silent_server_is_a_stall_timeout)
{
	struct fixture f;
	CHECK(fixture_start(&f, "--latency-ms", "4000", NULL) == 0);
	struct up_config cfg = {
	    .api_base = f.base, .no_env = true, .timeout = 1, .retries = UP_NO_RETRIES};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	struct up_file_list l;
	double t0 = now();
	CHECK(up_files_list(c, NULL, &l, &err) == -ETIMEDOUT);
	CHECK(now() - t0 < 3.5);
	/* a POST whose small body went out at once is caught too */
	struct up_upload up;
	t0 = now();
	CHECK(up_upload_create(c, 1, "a", "x", "batch", &up, &err) == -ETIMEDOUT);
	CHECK(now() - t0 < 3.5 && strstr(err.message, "stalled"));
	up_client_free(c);
	fixture_stop(&f);
}

CHECK_MAIN(T(parts_from_memory_fd_and_callback_in_any_order), T(cancel_and_then_no_more_parts),
	   T(upload_file_from_path_fd_and_memory), T(upload_file_failures_cancel_the_upload),
	   T(retries_carry_an_upload_through_a_30_percent_failure_rate),
	   T(an_upload_is_retried_across_an_outage_for_the_window_and_a_listing_is_not),
	   T(a_429_with_retry_after_is_waited_for), T(every_error_status_maps_to_an_errno),
	   T(a_wrong_key_is_eacces_with_the_servers_message), T(a_key_file_must_be_0600),
	   T(files_list_follows_every_page), T(content_the_api_forbids_is_eacces),
	   T(async_requests_run_in_parallel_and_call_back),
	   T(async_sends_four_bodies_at_once_and_does_not_wait_for_answers), T(plain_http_only_to_loopback),
	   T(portkey_environment_and_a_redacted_debug_log),
	   T(portkey_fields_override_the_environment),
	   T(the_debug_log_never_shows_the_openai_key), T(a_silent_server_is_a_stall_timeout))
