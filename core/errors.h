/* errors: the one table from HTTP statuses and libcurl results to errno, and filling an
 * up_error from a server's OpenAI error envelope. */
#ifndef UP_ERRORS_H
#define UP_ERRORS_H

#include "uploadfs.h"

#include <stddef.h>

/* Sets err (if non-NULL) and returns errnum (a negative errno). */
int up_error_set(struct up_error *err, int errnum, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills err from a failed response: status, and the envelope's type/code/param/message
 * when the body has one (any other body is summarised). Never copies `secret` (the key)
 * into the message. Returns the negative errno for the status. */
int up_error_from_response(struct up_error *err, int status, const char *body, size_t len,
			   const char *secret);

/* The errno for a libcurl result (an int so that curl.h stays out of this header). */
int up_errno_for_curl(int curl_code);

#endif
