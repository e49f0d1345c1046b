/* The pieces under the public API: the retry policy, error envelopes, parsing of answers a
 * server should never send, and the crash journal. */
#include "api.h"
#include "check.h"
#include "errors.h"
#include "journal.h"
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

CASE(which_failures_are_retried)
{
	int yes[] = {408, 409, 429, 500, 502, 503, 504, 599};
	int no[] = {200, 400, 401, 403, 404, 413, 422};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		CHECK(up_retry_status(yes[i], NULL));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		CHECK(!up_retry_status(no[i], NULL));
	CHECK(!up_retry_status(500, "false"));
	CHECK(up_retry_status(400, "true"));
	CHECK(up_retry_curl(CURLE_COULDNT_CONNECT) && up_retry_curl(CURLE_OPERATION_TIMEDOUT));
	CHECK(up_retry_curl(CURLE_GOT_NOTHING) && up_retry_curl(CURLE_RECV_ERROR));
	CHECK(!up_retry_curl(CURLE_PEER_FAILED_VERIFICATION) && !up_retry_curl(CURLE_OK));
}

CASE(backoff_is_full_jitter_under_a_cap)
{
	uint64_t rng = 42;
	for (unsigned attempt = 0; attempt < 12; attempt++) {
		double ceiling = 0.5 * (double)(1u << attempt);
		if (ceiling > 8)
			ceiling = 8;
		double lo = 1e9, hi = 0;
		for (int i = 0; i < 2000; i++) {
			double d = up_retry_backoff(attempt, &rng);
			CHECK(d >= 0 && d <= ceiling);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* full jitter spans the whole range */
		CHECK(lo < ceiling * 0.05 && hi > ceiling * 0.95);
	}
}

CASE(retry_after_headers)
{
	CHECK(up_retry_after("250", "7", 0) == 0.25); /* retry-after-ms first */
	CHECK(up_retry_after(NULL, "3", 0) == 3);
	CHECK(up_retry_after(NULL, "1.5", 0) == 1.5);
	CHECK(up_retry_after(NULL, "600", 0) == 60); /* capped */
	CHECK(up_retry_after("bogus", "bogus", 0) == -1);
	CHECK(up_retry_after(NULL, NULL, 0) == -1);
	time_t now = curl_getdate("Sun, 06 Nov 1994 08:49:37 GMT", NULL);
	CHECK(up_retry_after(NULL, "Sun, 06 Nov 1994 08:49:47 GMT", now) == 10);
	CHECK(up_retry_after(NULL, "Sun, 06 Nov 1994 08:49:27 GMT", now) == 0);
}

CASE(error_envelopes_and_other_bodies)
{
	struct up_error e;
	const char *env = "{\"error\":{\"message\":\"Bad thing sk-secret here\",\"type\":"
			  "\"invalid_request_error\",\"param\":\"purpose\",\"code\":null}}";
	CHECK(up_error_from_response(&e, 400, env, strlen(env), "sk-secret") == -EINVAL);
	CHECK(e.status == 400 && strcmp(e.param, "purpose") == 0);
	CHECK(strcmp(e.type, "invalid_request_error") == 0 && e.code[0] == '\0');
	CHECK(strstr(e.message, "sk-secret") == NULL && strstr(e.message, "[REDACTED]"));
	const char *gw = "{\"status\":\"failure\",\"message\":\"Proxy error\"}";
	CHECK(up_error_from_response(&e, 500, gw, strlen(gw), NULL) == -EIO);
	CHECK(strcmp(e.message, "Proxy error") == 0);
	CHECK(up_error_from_response(&e, 502, "<html>bad\ngateway</html>", 25, NULL) == -EIO);
	CHECK(strchr(e.message, '\n') == NULL && strstr(e.message, "gateway"));
	CHECK(up_error_from_response(&e, 418, NULL, 0, NULL) == -EPROTO);
	CHECK(strcmp(e.message, "HTTP 418") == 0);
}

static int parse_upload(const char *json)
{
	json_object *o = json ? json_tokener_parse(json) : NULL;
	struct up_upload u;
	struct up_error e;
	int rc = up_upload_from_json(o, &u, &e);
	if (rc == 0)
		up_upload_clear(&u);
	json_object_put(o);
	return rc;
}

CASE(malformed_answers_are_eproto_never_a_crash)
{
	const char *good = "{\"id\":\"upload_1\",\"bytes\":5,\"created_at\":1,\"expires_at\":2,"
			   "\"filename\":\"f\",\"purpose\":\"batch\",\"status\":\"pending\"}";
	CHECK(parse_upload(good) == 0);
	const char *bad[] = {
	    "[]",
	    "{}",
	    "{\"id\":\"../../etc\",\"bytes\":5,\"created_at\":1,\"filename\":\"f\","
	    "\"purpose\":\"batch\",\"status\":\"pending\"}",
	    "{\"id\":\"upload/x\",\"bytes\":5,\"created_at\":1,\"filename\":\"f\","
	    "\"purpose\":\"batch\",\"status\":\"pending\"}",
	    "{\"id\":\"upload_1\",\"bytes\":\"5\",\"created_at\":1,\"filename\":\"f\","
	    "\"purpose\":\"batch\",\"status\":\"pending\"}",
	    "{\"id\":\"upload_1\",\"bytes\":-5,\"created_at\":1,\"filename\":\"f\","
	    "\"purpose\":\"batch\",\"status\":\"pending\"}",
	    "{\"id\":\"upload_1\",\"bytes\":5,\"created_at\":1,\"filename\":7,"
	    "\"purpose\":\"batch\",\"status\":\"pending\"}",
	    "{\"id\":\"upload_1\",\"bytes\":5,\"created_at\":1,\"filename\":\"f\","
	    "\"purpose\":\"batch\",\"status\":\"completed\",\"file\":{\"id\":\"..\"}}",
	    "{\"id\":\"\",\"bytes\":5,\"created_at\":1,\"filename\":\"f\",\"purpose\":\"batch\","
	    "\"status\":\"pending\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(parse_upload(bad[i]) == -EPROTO);
	CHECK(parse_upload(NULL) == -EPROTO);
	char longid[300] = "{\"id\":\"";
	memset(longid + 7, 'a', 200);
	strcpy(longid + 207, "\",\"bytes\":5,\"created_at\":1,\"filename\":\"f\",\"purpose\":\"b\","
			     "\"status\":\"pending\"}");
	CHECK(parse_upload(longid) == -EPROTO);
	CHECK(up_id_valid("file-abc_DEF-123") && !up_id_valid("a.b") && !up_id_valid(""));
}

static void append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		ssize_t n = write(fd, text, strlen(text));
		(void)n;
		close(fd);
	}
}

CASE(journal_parts_log_adds_parts_and_skips_torn_or_foreign_lines)
{
	char dir[] = "/tmp/uploadfs-journal-XXXXXX", path[128], log[160];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/rec.json", dir);
	CHECK(up_journal_parts_path(path, log, sizeof log) == 0);
	char ids[4][UP_ID_MAX] = {"part_a", "", "", ""};
	struct up_journal_rec w = {.filename = "f", .mime_type = "m", .purpose = "batch",
				   .spool = "/s", .size = 40, .part_size = 10,
				   .upload_id = "upload_1", .md5 = "0123456789abcdef0123456789abcdef",
				   .nparts = 4, .part_ids = ids};
	CHECK(up_journal_write(path, &w) == 0);
	CHECK(access(log, F_OK) < 0); /* no log until a part is added */

	CHECK(up_journal_add_part(path, "upload_1", 2, "part_c") == 0);
	CHECK(up_journal_add_part(path, "upload_0", 1, "part_old") == 0); /* another session */
	CHECK(up_journal_add_part(path, "upload_1", 9, "part_far") == 0); /* out of range */
	append(log, "upload_1 x part_x\nupload_1 -1 part_neg\nupload_1 1 ../etc\n");
	append(log, "upload_1 3 part_d"); /* torn: no newline */
	struct up_journal_rec r;
	CHECK(up_journal_read(path, &r) == 0);
	CHECK(r.nparts == 4);
	if (r.nparts == 4) {
		CHECK(strcmp(r.part_ids[0], "part_a") == 0);
		CHECK(r.part_ids[1][0] == '\0');
		CHECK(strcmp(r.part_ids[2], "part_c") == 0);
		CHECK(r.part_ids[3][0] == '\0');
	}
	up_journal_rec_clear(&r);

	/* a new record holds everything: its log starts empty */
	snprintf(ids[2], UP_ID_MAX, "part_c");
	CHECK(up_journal_write(path, &w) == 0);
	CHECK(access(log, F_OK) < 0);
	CHECK(up_journal_add_part(path, "upload_1", 3, "part_d") == 0);
	CHECK(up_journal_read(path, &r) == 0);
	CHECK(r.nparts == 4 && strcmp(r.part_ids[3], "part_d") == 0);
	up_journal_rec_clear(&r);

	/* a log is kept while its record is there, and swept once it is gone */
	CHECK(!up_journal_sweep_log(path));
	CHECK(up_journal_sweep_log(log) && access(log, F_OK) == 0);
	char aside[160];
	snprintf(aside, sizeof aside, "%s/aside", dir);
	CHECK(rename(path, aside) == 0);
	CHECK(up_journal_sweep_log(log) && access(log, F_OK) < 0);
	CHECK(rename(aside, path) == 0);

	CHECK(up_journal_add_part(path, "upload_1", 3, "part_d") == 0);
	up_journal_remove(path);
	CHECK(access(path, F_OK) < 0 && access(log, F_OK) < 0);
	CHECK(rmdir(dir) == 0);
}

CHECK_MAIN(T(which_failures_are_retried), T(backoff_is_full_jitter_under_a_cap),
	   T(retry_after_headers), T(error_envelopes_and_other_bodies),
	   T(malformed_answers_are_eproto_never_a_crash),
	   T(journal_parts_log_adds_parts_and_skips_torn_or_foreign_lines))
