/* route: what a request line asks for, parsed with no state: the route and the id of
 * METHOD + path, whether a Content-Type is a given one, and the span a Range header asks. */
#ifndef SRV_ROUTE_H
#define SRV_ROUTE_H

#include "ids.h"

#include <stdbool.h>
#include <stdint.h>

enum srv_route {
	SRV_R_UPLOAD_CREATE,
	SRV_R_PART,
	SRV_R_COMPLETE,
	SRV_R_CANCEL,
	SRV_R_FILES_LIST,
	SRV_R_FILE_CREATE,
	SRV_R_FILE_GET,
	SRV_R_FILE_CONTENT,
	SRV_R_FILE_DELETE,
	SRV_R_NONE,
};

/* The route of METHOD + path (a trailing '/' allowed) and the id in the path (letters,
 * digits, '_' and '-'); SRV_R_NONE for anything else. no_uploads: /v1/uploads* is none. */
enum srv_route srv_route_of(const char *method, const char *url, char id[SRV_ID_MAX],
			    bool no_uploads);
/* Whether the route's body is JSON (create, complete, cancel). */
bool srv_route_json(enum srv_route r);
/* Whether the Content-Type ct is want, parameters aside (case-insensitive). */
bool srv_ctype_is(const char *ct, const char *want);
/* A single range of a Range header, as RFC 9110 says: "bytes=A-B", "bytes=A-", "bytes=-N",
 * for a file of size bytes. 1: [*a, *b] to send; 0: no usable range (absent, several,
 * malformed: send it all); -1: none of it is in the file (416). */
int srv_parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b);

#endif
