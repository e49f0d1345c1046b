#include "errors.h"

#include <stdio.h>

int srv_err_vset(struct srv_err *err, int errno_code, int status, const char *param,
		 const char *fmt, va_list ap)
{
	err->status = status;
	err->type = status >= 500 ? "server_error" : "invalid_request_error";
	snprintf(err->param, sizeof err->param, "%s", param ? param : "");
	err->code = NULL;
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	return -errno_code;
}

int srv_err_set(struct srv_err *err, int errno_code, int status, const char *param, const char *fmt,
		...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = srv_err_vset(err, errno_code, status, param, fmt, ap);
	va_end(ap);
	return rc;
}

json_object *srv_err_json(const struct srv_err *err)
{
	json_object *e = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(err->message));
	json_object_object_add(e, "type", json_object_new_string(err->type));
	json_object_object_add(e, "param",
			       err->param[0] ? json_object_new_string(err->param) : NULL);
	json_object_object_add(e, "code", err->code ? json_object_new_string(err->code) : NULL);
	json_object *root = json_object_new_object();
	json_object_object_add(root, "error", e);
	return root;
}
