#include "errors.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int up_errno_for_status(int status)
{
	switch (status) {
	case 400:
	case 422:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 408:
		return -ETIMEDOUT;
	case 409:
		return -EBUSY;
	case 413:
		return -EFBIG;
	case 429:
		return -EAGAIN;
	default:
		if (status >= 500)
			return -EIO;
		return status >= 200 && status < 300 ? 0 : -EPROTO;
	}
}

int up_errno_for_curl(int code)
{
	switch ((CURLcode)code) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return -EPROTO;
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		return -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int up_error_set(struct up_error *err, int errnum, int status, const char *fmt, ...)
{
	if (!err)
		return errnum;
	memset(err, 0, sizeof *err);
	err->status = status;
	err->errnum = errnum;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return errnum;
}

static void copy_field(char *dst, size_t len, json_object *o, const char *key)
{
	json_object *v;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(dst, len, "%s", json_object_get_string(v));
}

/* One line, printable, with the key (if it is there at all) cut out. */
static void sanitize(char *s, const char *secret)
{
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (!secret || strlen(secret) < 4)
		return;
	size_t n = strlen(secret);
	char *hit;
	while ((hit = strstr(s, secret))) {
		static const char mark[] = "[REDACTED]";
		memmove(hit + sizeof mark - 1, hit + n, strlen(hit + n) + 1);
		memcpy(hit, mark, sizeof mark - 1);
	}
}

int up_error_from_response(struct up_error *err, int status, const char *body, size_t len,
			   const char *secret)
{
	int errnum = up_errno_for_status(status);
	if (errnum == 0)
		errnum = -EPROTO;
	if (!err)
		return errnum;
	memset(err, 0, sizeof *err);
	err->status = status;
	err->errnum = errnum;
	json_object *root = NULL, *e = NULL;
	if (body && len && len < (1u << 20))
		root = json_tokener_parse(body);
	if (root && json_object_object_get_ex(root, "error", &e) &&
	    json_object_is_type(e, json_type_object)) {
		copy_field(err->message, sizeof err->message, e, "message");
		copy_field(err->type, sizeof err->type, e, "type");
		copy_field(err->code, sizeof err->code, e, "code");
		copy_field(err->param, sizeof err->param, e, "param");
	} else if (root && json_object_object_get_ex(root, "message", &e)) {
		/* gateways: {"status": "failure", "message": ...} or {"message", "ok": false} */
		copy_field(err->message, sizeof err->message, root, "message");
	} else if (body && len) {
		snprintf(err->message, sizeof err->message, "%.*s", (int)(len < 200 ? len : 200),
			 body);
	}
	if (!err->message[0])
		snprintf(err->message, sizeof err->message, "HTTP %d", status);
	sanitize(err->message, secret);
	json_object_put(root);
	return errnum;
}
