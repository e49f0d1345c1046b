/* errors: the OpenAI error envelope every failed request answers ({"error": {"message",
 * "type", "param", "code"}}), filled by the store and the HTTP layer alike. */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H

#include <json-c/json.h>
#include <stdarg.h>

struct srv_err {
	int status;	  /* HTTP status */
	const char *type; /* "invalid_request_error", "server_error" */
	const char *code;
	char param[64]; /* "" when none */
	char message[768];
};

/* Fills err; returns -errno_code so callers can `return` it. */
int srv_err_set(struct srv_err *err, int errno_code, int status, const char *param, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));
int srv_err_vset(struct srv_err *err, int errno_code, int status, const char *param,
		 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
json_object *srv_err_json(const struct srv_err *err);

#endif
