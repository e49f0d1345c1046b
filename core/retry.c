#include "retry.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool up_retry_status(int status, const char *should_retry)
{
	if (should_retry) {
		if (strcasecmp(should_retry, "true") == 0)
			return true;
		if (strcasecmp(should_retry, "false") == 0)
			return false;
	}
	return status == 408 || status == 409 || status == 429 || status >= 500;
}

bool up_retry_curl(int code)
{
	switch ((CURLcode)code) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static double rand01(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) / (double)(1ull << 53);
}

double up_retry_backoff(unsigned attempt, uint64_t *rng)
{
	double ceiling = UP_RETRY_BASE_S * ldexp(1.0, attempt > 30 ? 30 : (int)attempt);
	if (ceiling > UP_RETRY_CAP_S)
		ceiling = UP_RETRY_CAP_S;
	return ceiling * rand01(rng);
}

double up_retry_after(const char *after_ms, const char *after, time_t now)
{
	double s = -1;
	char *end;
	if (after_ms && *after_ms) {
		double ms = strtod(after_ms, &end);
		if (end != after_ms && *end == '\0' && isfinite(ms) && ms >= 0)
			s = ms / 1000.0;
	}
	if (s < 0 && after && *after) {
		double v = strtod(after, &end);
		if (end != after && *end == '\0' && isfinite(v) && v >= 0) {
			s = v;
		} else {
			time_t when = curl_getdate(after, NULL);
			if (when != -1)
				s = when > now ? (double)(when - now) : 0;
		}
	}
	if (s > UP_RETRY_AFTER_MAX_S)
		s = UP_RETRY_AFTER_MAX_S;
	return s;
}
