/* retry: which failures are tried again and how long to wait first — exponential backoff
 * with full jitter, and the server's retry-after-ms / Retry-After when it gives one. */
#ifndef UP_RETRY_H
#define UP_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define UP_RETRY_BASE_S	     0.5
#define UP_RETRY_CAP_S	     8.0
#define UP_RETRY_AFTER_MAX_S 60.0

/* 408, 409, 429 and every 5xx. should_retry is the x-should-retry header or NULL. */
bool up_retry_status(int status, const char *should_retry);
/* Connection failures, resets, stalls: the request may not have arrived. */
bool up_retry_curl(int curl_code);

/* Seconds to wait before retry number attempt (0-based): uniform in
 * [0, min(cap, base * 2^attempt)]. rng is the caller's generator state. */
double up_retry_backoff(unsigned attempt, uint64_t *rng);

/* The server's wait in seconds from retry-after-ms (float ms) or else Retry-After (seconds
 * or an HTTP date), capped at UP_RETRY_AFTER_MAX_S; -1 when neither is usable. */
double up_retry_after(const char *after_ms, const char *after, time_t now);

#endif
