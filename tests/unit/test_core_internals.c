/* The pieces under the public API: the retry policy, error envelopes, and parsing of
 * answers a server should never send. */
#include "api.h"
#include "check.h"
#include "errors.h"
#include "retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

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

CHECK_MAIN(T(which_failures_are_retried), T(backoff_is_full_jitter_under_a_cap),
	   T(retry_after_headers), T(error_envelopes_and_other_bodies),
	   T(malformed_answers_are_eproto_never_a_crash))
