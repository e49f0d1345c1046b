/* client: the up_client object — configuration resolved from options, the environment
 * (OPENAI_*, PORTKEY_*) and key files, checked once, and the HTTP layer it owns. */
#ifndef UP_CLIENT_H
#define UP_CLIENT_H

#include "http.h"
#include "uploadfs.h"

struct up_client {
	char *base;
	struct up_http *http;
};

/* The loopback rule: plain http:// only to 127.0.0.0/8, ::1 or localhost. */
bool up_url_is_loopback(const char *url);

#endif
