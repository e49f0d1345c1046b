/* client: the up_client object — configuration resolved from options, the environment
 * (OPENAI_*, PORTKEY_*) and key files, checked once, and the HTTP layer it owns. */
#ifndef UP_CLIENT_H
#define UP_CLIENT_H

#include "http.h"
#include "uploadfs.h"

#include <stdatomic.h>

struct up_client {
	char *base;
	struct up_http *http;
	atomic_bool files_only; /* the server answered /v1/uploads with 404 */
};

/* A Files-only server (Azure OpenAI, ...): once /v1/uploads answers 404, files go up with
 * one POST /v1/files. mark logs that once per client. */
bool up_client_files_only(up_client *c);
void up_client_mark_files_only(up_client *c);

/* The loopback rule: plain http:// only to 127.0.0.0/8, ::1 or localhost. */
bool up_url_is_loopback(const char *url);

#endif
