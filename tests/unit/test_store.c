/* The server's store through its C API: ids, the upload state machine, concurrent
 * completes, listing order, and repair after a crash. */
#include "check.h"
#include "content.h"
#include "ids.h"
#include "route.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct srv_limits lim = {.max_part_bytes = 1 << 20,
				      .max_upload_bytes = 4 << 20,
				      .max_file_bytes = 1 << 20,
				      .expire_seconds = 3600};

/* Every case's directory, removed when the test exits. */
static char dirs[8][64];
static int ndirs;

static void remove_dirs(void)
{
	for (int i = 0; i < ndirs; i++) {
		char cmd[640];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dirs[i]);
	}
}

static char *new_dir(void)
{
	if (ndirs == 0)
		atexit(remove_dirs);
	if (ndirs == 8)
		abort();
	char *d = dirs[ndirs++];
	snprintf(d, 64, "/tmp/uploadfs-store-XXXXXX");
	return mkdtemp(d);
}

static json_object *create_req(long long bytes)
{
	char buf[256];
	snprintf(buf, sizeof buf,
		 "{\"bytes\":%lld,\"filename\":\"a/b.txt\",\"mime_type\":\"text/plain\","
		 "\"purpose\":\"batch\"}",
		 bytes);
	return json_tokener_parse(buf);
}

static const char *jget(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* Adds a part holding len bytes of ch; writes its id into id. */
static int add_part(struct srv_store *st, const char *up, char ch, size_t len, char *id)
{
	struct srv_blob blob;
	struct srv_err err;
	int rc = srv_part_begin(st, up, &blob, &err);
	if (rc < 0)
		return rc;
	char *buf = malloc(len);
	memset(buf, ch, len);
	if (write(blob.fd, buf, len) != (ssize_t)len)
		abort();
	free(buf);
	json_object *out = NULL;
	rc = srv_part_commit(st, &blob, len, &out, &err);
	if (rc == 0)
		snprintf(id, SRV_ID_MAX, "%s", jget(out, "id"));
	json_object_put(out);
	return rc;
}

static json_object *complete_req(const char *a, const char *b)
{
	json_object *o = json_object_new_object();
	json_object *ids = json_object_new_array();
	json_object_array_add(ids, json_object_new_string(a));
	if (b)
		json_object_array_add(ids, json_object_new_string(b));
	json_object_object_add(o, "part_ids", ids);
	return o;
}

CASE(ids_carry_their_order)
{
	struct srv_seq seq = {0};
	char a[SRV_ID_MAX], b[SRV_ID_MAX];
	uint64_t s1 = srv_seq_next(&seq), s2 = srv_seq_next(&seq), got;
	CHECK(s2 > s1);
	CHECK(srv_id_make("file-", s1, a) == 0 && srv_id_make("file-", s2, b) == 0);
	CHECK(strncmp(a, "file-", 5) == 0 && strlen(a) == 29);
	CHECK(strncmp(a, b, 14) < 0); /* base62 sorts like ASCII: ids sort by creation */
	CHECK(srv_id_parse("file-", a, &got) && got == s1);
	CHECK(!srv_id_parse("upload_", a, &got));
	CHECK(!srv_id_parse("file-", "file-short", &got));
	CHECK(!srv_id_parse("file-", "file-../../../../../../../etc", &got));
	srv_seq_observe(&seq, s2 + 1000);
	CHECK(srv_seq_next(&seq) > s2 + 1000);
}

CASE(upload_state_machine)
{
	struct srv_store *st;
	struct srv_err err;
	char *dir = new_dir();
	CHECK(srv_store_open(dir, &lim, &st, &err) == 0);
	json_object *req = create_req(300), *up = NULL;
	CHECK(srv_upload_create(st, req, &up, &err) == 0);
	json_object_put(req);
	char uid[SRV_ID_MAX], p1[SRV_ID_MAX], p2[SRV_ID_MAX];
	snprintf(uid, sizeof uid, "%s", jget(up, "id"));
	CHECK(strcmp(jget(up, "status"), "pending") == 0);
	json_object_put(up);
	CHECK(add_part(st, uid, 'b', 200, p2) == 0);
	CHECK(add_part(st, uid, 'a', 100, p1) == 0);
	/* wrong order gives the same byte count, so it is accepted; a wrong count is not */
	json_object *out = NULL, *c = complete_req(p1, NULL);
	uint64_t early;
	CHECK(srv_upload_complete(st, uid, c, &out, &early, &err) == -EINVAL && err.status == 400);
	CHECK(strcmp(err.param, "bytes") == 0);
	json_object_put(c);
	c = complete_req(p1, p2);
	CHECK(srv_upload_complete(st, uid, c, &out, &early, &err) == 0);
	json_object_put(c);
	CHECK(strcmp(jget(out, "status"), "completed") == 0);
	json_object *file;
	CHECK(json_object_object_get_ex(out, "file", &file));
	char fid[SRV_ID_MAX];
	snprintf(fid, sizeof fid, "%s", jget(file, "id"));
	json_object_put(out);
	/* the content is the two parts in the listed order, read across their boundary */
	struct srv_download d;
	CHECK(srv_download_open(st, fid, &d, &err) == 0 && srv_content_bytes(d.content) == 300);
	CHECK(srv_content_one_fd(d.content) == -ENOTUNIQ);
	char buf[300];
	CHECK(srv_content_pread(d.content, buf, sizeof buf, 0) == 100); /* up to the boundary */
	CHECK(srv_content_pread(d.content, buf + 100, 200, 100) == 200);
	CHECK(buf[0] == 'a' && buf[99] == 'a' && buf[100] == 'b' && buf[299] == 'b');
	CHECK(srv_content_pread(d.content, buf, 10, 95) == 5);
	CHECK(srv_content_pread(d.content, buf, 10, 300) == 0);
	/* deleted while read: the reader keeps its bytes; the last close frees them */
	CHECK(srv_file_delete(st, fid, &out, &err) == 0);
	json_object_put(out);
	srv_store_reap(st);
	CHECK(srv_content_pread(d.content, buf, 200, 100) == 200 && buf[199] == 'b');
	srv_download_close(st, &d);
	srv_store_reap(st);
	char path[512];
	snprintf(path, sizeof path, "%s/content/%s", dir, fid);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof path, "%s/content/.gone-%s", dir, fid);
	CHECK(access(path, F_OK) < 0);
	CHECK(add_part(st, uid, 'c', 10, p1) == -EINVAL);
	CHECK(srv_upload_cancel(st, uid, &out, &err) == -EINVAL);
	CHECK(srv_upload_cancel(st, "upload_nope", &out, &err) == -ENOENT && err.status == 404);
	srv_store_close(st);
}

struct racer {
	struct srv_store *st;
	const char *uid;
	json_object *req;
	char fid[SRV_ID_MAX];
	int rc;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	json_object *out = NULL;
	struct srv_err err;
	uint64_t early;
	r->rc = srv_upload_complete(r->st, r->uid, r->req, &out, &early, &err);
	json_object *file;
	if (r->rc == 0 && json_object_object_get_ex(out, "file", &file))
		snprintf(r->fid, sizeof r->fid, "%s", jget(file, "id"));
	json_object_put(out);
	return NULL;
}

CASE(concurrent_completes_make_one_file)
{
	struct srv_store *st;
	struct srv_err err;
	CHECK(srv_store_open(new_dir(), &lim, &st, &err) == 0);
	json_object *req = create_req(2 << 20), *up = NULL;
	CHECK(srv_upload_create(st, req, &up, &err) == 0);
	json_object_put(req);
	char uid[SRV_ID_MAX], p1[SRV_ID_MAX], p2[SRV_ID_MAX];
	snprintf(uid, sizeof uid, "%s", jget(up, "id"));
	json_object_put(up);
	CHECK(add_part(st, uid, 'x', 1 << 20, p1) == 0);
	CHECK(add_part(st, uid, 'y', 1 << 20, p2) == 0);
	struct racer r[4];
	pthread_t t[4];
	json_object *c = complete_req(p1, p2);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.st = st, .uid = uid, .req = c};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	json_object_put(c);
	for (int i = 0; i < 4; i++)
		CHECK(r[i].rc == 0 && strcmp(r[i].fid, r[0].fid) == 0);
	struct srv_list_query q = {.limit = 100};
	json_object *list = NULL, *data;
	CHECK(srv_files_list(st, &q, &list, &err) == 0);
	CHECK(json_object_object_get_ex(list, "data", &data));
	CHECK(json_object_array_length(data) == 1);
	json_object_put(list);
	srv_store_close(st);
}

CASE(reopen_repairs_what_a_crash_leaves)
{
	char *dir = new_dir();
	struct srv_store *st;
	struct srv_err err;
	CHECK(srv_store_open(dir, &lim, &st, &err) == 0);
	json_object *req = create_req(100), *up = NULL;
	CHECK(srv_upload_create(st, req, &up, &err) == 0);
	json_object_put(req);
	char uid[SRV_ID_MAX], p1[SRV_ID_MAX], path[512];
	snprintf(uid, sizeof uid, "%s", jget(up, "id"));
	json_object_put(up);
	CHECK(add_part(st, uid, 'q', 100, p1) == 0);
	/* a second open of the same directory is refused while the first holds it */
	struct srv_store *other = NULL;
	CHECK(srv_store_open(dir, &lim, &other, &err) == -EBUSY);
	srv_store_close(st);
	/* what a kill -9 leaves: a half-written part, a half-assembled file, a tmp record */
	snprintf(path, sizeof path, "%s/parts/%s/.tmp-half", dir, uid);
	CHECK(close(open(path, O_CREAT | O_WRONLY, 0600)) == 0);
	snprintf(path, sizeof path, "%s/content/.tmp-%s", dir, uid);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof path, "%s/content/.tmp-%s/0000000000", dir, uid);
	CHECK(close(open(path, O_CREAT | O_WRONLY, 0600)) == 0);
	snprintf(path, sizeof path, "%s/uploads/%s.json.tmp", dir, uid);
	CHECK(close(open(path, O_CREAT | O_WRONLY, 0600)) == 0);
	CHECK(srv_store_open(dir, &lim, &st, &err) == 0);
	snprintf(path, sizeof path, "%s/parts/%s/.tmp-half", dir, uid);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof path, "%s/content/.tmp-%s", dir, uid);
	CHECK(access(path, F_OK) < 0);
	snprintf(path, sizeof path, "%s/uploads/%s.json.tmp", dir, uid);
	CHECK(access(path, F_OK) < 0);
	/* the part that was committed before the crash is still there */
	json_object *out = NULL, *c = complete_req(p1, NULL);
	uint64_t early;
	CHECK(srv_upload_complete(st, uid, c, &out, &early, &err) == 0);
	CHECK(early == 0); /* parts from before a restart are hashed at complete */
	json_object_put(c);
	json_object_put(out);
	srv_store_close(st);
}

CASE(routes_and_ranges)
{
	char id[SRV_ID_MAX];
	CHECK(srv_route_of("POST", "/v1/uploads", id, false) == SRV_R_UPLOAD_CREATE);
	CHECK(srv_route_of("POST", "/v1/uploads/", id, false) == SRV_R_UPLOAD_CREATE);
	CHECK(srv_route_of("POST", "/v1/uploads", id, true) == SRV_R_NONE);
	CHECK(srv_route_of("POST", "/v1/uploads/upload_a-B9/parts", id, false) == SRV_R_PART &&
	      strcmp(id, "upload_a-B9") == 0);
	CHECK(srv_route_of("GET", "/v1/uploads/upload_a/parts", id, false) == SRV_R_NONE);
	CHECK(srv_route_of("POST", "/v1/uploads/../complete", id, false) == SRV_R_NONE);
	CHECK(srv_route_of("POST", "/v1/uploads/upload_a/completeX", id, false) == SRV_R_NONE);
	CHECK(srv_route_of("GET", "/v1/files", id, false) == SRV_R_FILES_LIST);
	CHECK(srv_route_of("DELETE", "/v1/files/file-x", id, false) == SRV_R_FILE_DELETE);
	CHECK(srv_route_of("GET", "/v1/files/file-x/content", id, false) == SRV_R_FILE_CONTENT &&
	      strcmp(id, "file-x") == 0);
	CHECK(srv_route_of("GET", "/v1/filesx", id, false) == SRV_R_NONE);
	CHECK(srv_route_json(SRV_R_COMPLETE) && !srv_route_json(SRV_R_PART));
	CHECK(srv_ctype_is("application/JSON; charset=utf-8", "application/json"));
	CHECK(!srv_ctype_is("application/jsonl", "application/json") && !srv_ctype_is(NULL, "x"));

	uint64_t a = 7, b = 7;
	CHECK(srv_parse_range(NULL, 10, &a, &b) == 0);
	CHECK(srv_parse_range("bytes=2-5", 10, &a, &b) == 1 && a == 2 && b == 5);
	CHECK(srv_parse_range("bytes=2-", 10, &a, &b) == 1 && a == 2 && b == 9);
	CHECK(srv_parse_range("bytes=2-99", 10, &a, &b) == 1 && a == 2 && b == 9);
	CHECK(srv_parse_range("bytes=-3", 10, &a, &b) == 1 && a == 7 && b == 9);
	CHECK(srv_parse_range("bytes=-30", 10, &a, &b) == 1 && a == 0 && b == 9);
	CHECK(srv_parse_range("bytes=10-", 10, &a, &b) == -1);
	CHECK(srv_parse_range("bytes=-0", 10, &a, &b) == -1);
	CHECK(srv_parse_range("bytes=5-2", 10, &a, &b) == 0);
	CHECK(srv_parse_range("bytes=1-2,4-5", 10, &a, &b) == 0);
	CHECK(srv_parse_range("bytes=x-2", 10, &a, &b) == 0);
	CHECK(srv_parse_range("bytes=99999999999999999999-", 10, &a, &b) == 0);
	CHECK(srv_parse_range("items=1-2", 10, &a, &b) == 0);
}

CHECK_MAIN(T(ids_carry_their_order), T(upload_state_machine), T(concurrent_completes_make_one_file),
	   T(reopen_repairs_what_a_crash_leaves), T(routes_and_ranges))
