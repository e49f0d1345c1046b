#include "request.h"

#include "purpose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX_NAME 4096
#define EXPIRY_MIN    3600
#define EXPIRY_MAX    2592000

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}


static bool valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* A filename is data: any UTF-8 text without control characters, up to 4 KiB. It is kept
 * in JSON records and never used to build a path. */
static int check_filename(const char *name, size_t len, const char *param, struct srv_err *err)
{
	if (len == 0)
		return srv_err_set(err, EINVAL, 400, param, "filename must not be empty");
	if (len > FILE_MAX_NAME)
		return srv_err_set(err, EINVAL, 400, param,
				   "filename is too long (%zu bytes; the maximum is %d)", len,
				   FILE_MAX_NAME);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return srv_err_set(err, EINVAL, 400, param,
					   "filename must not contain control characters");
	if (!valid_utf8((const unsigned char *)name, len))
		return srv_err_set(err, EINVAL, 400, param, "filename must be valid UTF-8");
	return 0;
}

static int check_purpose(const char *p, struct srv_err *err)
{
	if (!p)
		return srv_err_set(err, EINVAL, 400, "purpose",
				   "Missing required parameter: 'purpose'.");
	char names[UP_PURPOSE_NAMES_MAX];
	if (!up_purpose_valid(p))
		return srv_err_set(err, EINVAL, 400, "purpose", "'%.64s' is not one of [%s] - 'purpose'",
				   p, up_purpose_names(names, true));
	return 0;
}

static int check_expiry(const char *anchor, int64_t seconds, struct srv_err *err)
{
	if (!anchor || strcmp(anchor, "created_at") != 0)
		return srv_err_set(err, EINVAL, 400, "expires_after.anchor",
				   "expires_after.anchor must be 'created_at'");
	if (seconds < EXPIRY_MIN || seconds > EXPIRY_MAX)
		return srv_err_set(err, EINVAL, 400, "expires_after.seconds",
				   "expires_after.seconds must be between %d and %d", EXPIRY_MIN,
				   EXPIRY_MAX);
	return 0;
}

static int json_unknown_key(json_object *req, const char *const *known, size_t n,
			    struct srv_err *err)
{
	json_object_object_foreach(req, key, val)
	{
		(void)val;
		if (!in_list(key, known, n))
			return srv_err_set(err, EINVAL, 400, key,
					   "Unrecognized request argument supplied: %.64s", key);
	}
	return 0;
}

static int json_req_string(json_object *req, const char *key, const char **out, size_t *len,
			   struct srv_err *err)
{
	json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !v)
		return srv_err_set(err, EINVAL, 400, key, "Missing required parameter: '%s'.", key);
	if (!json_object_is_type(v, json_type_string))
		return srv_err_set(err, EINVAL, 400, key,
				   "Invalid type for '%s': expected a string.", key);
	*out = json_object_get_string(v);
	if (len)
		*len = (size_t)json_object_get_string_len(v);
	return 0;
}

static int parse_expires_after(json_object *req, int64_t *seconds, struct srv_err *err)
{
	json_object *ea;
	*seconds = 0;
	if (!json_object_object_get_ex(req, "expires_after", &ea) || !ea)
		return 0;
	json_object *anchor = NULL, *secs = NULL;
	if (!json_object_is_type(ea, json_type_object) ||
	    !json_object_object_get_ex(ea, "anchor", &anchor) ||
	    !json_object_object_get_ex(ea, "seconds", &secs) ||
	    !json_object_is_type(anchor, json_type_string) ||
	    !json_object_is_type(secs, json_type_int))
		return srv_err_set(err, EINVAL, 400, "expires_after",
				   "expires_after must be {\"anchor\": \"created_at\", "
				   "\"seconds\": N}");
	*seconds = json_object_get_int64(secs);
	return check_expiry(json_object_get_string(anchor), *seconds, err);
}

int srv_parse_create(json_object *req, uint64_t max_bytes, struct srv_create_req *out,
		     struct srv_err *err)
{
	static const char *const known[] = {"bytes", "filename", "mime_type", "purpose",
					    "expires_after"};
	if (!json_object_is_type(req, json_type_object))
		return srv_err_set(err, EINVAL, 400, NULL,
				   "The request body must be a JSON object.");
	int rc = json_unknown_key(req, known, 5, err);
	if (rc < 0)
		return rc;

	json_object *jb;
	if (!json_object_object_get_ex(req, "bytes", &jb) || !jb)
		return srv_err_set(err, EINVAL, 400, "bytes",
				   "Missing required parameter: 'bytes'.");
	if (!json_object_is_type(jb, json_type_int) || json_object_get_int64(jb) < 0)
		return srv_err_set(err, EINVAL, 400, "bytes",
				   "Invalid value for 'bytes': expected a non-negative integer.");
	errno = 0;
	uint64_t bytes = json_object_get_uint64(jb);
	if (bytes > max_bytes || errno == ERANGE)
		return srv_err_set(err, EFBIG, 400, "bytes",
				   "bytes exceeds the maximum upload size of %llu bytes",
				   (unsigned long long)max_bytes);

	const char *filename, *mime, *purpose;
	size_t flen, mlen;
	if ((rc = json_req_string(req, "filename", &filename, &flen, err)) < 0 ||
	    (rc = check_filename(filename, flen, "filename", err)) < 0 ||
	    (rc = json_req_string(req, "mime_type", &mime, &mlen, err)) < 0 ||
	    (rc = json_req_string(req, "purpose", &purpose, NULL, err)) < 0 ||
	    (rc = check_purpose(purpose, err)) < 0)
		return rc;
	/* OpenAI does not enumerate mime types; like the SDK examples ("txt"), accept any
	 * short printable token. */
	if (mlen == 0 || mlen > 255 || strlen(mime) != mlen)
		return srv_err_set(err, EINVAL, 400, "mime_type", "Invalid mime_type.");
	int64_t expires = 0;
	if ((rc = parse_expires_after(req, &expires, err)) < 0)
		return rc;
	*out = (struct srv_create_req){.bytes = bytes,
				       .filename = filename,
				       .filename_len = flen,
				       .mime_type = mime,
				       .purpose = purpose,
				       .expires_after = expires};
	return 0;

}

int srv_parse_complete(json_object *req, struct srv_complete_req *c, struct srv_err *err)
{
	static const char *const known[] = {"part_ids", "md5"};
	if (!json_object_is_type(req, json_type_object))
		return srv_err_set(err, EINVAL, 400, NULL,
				   "The request body must be a JSON object.");
	int rc = json_unknown_key(req, known, 2, err);
	if (rc < 0)
		return rc;
	if (!json_object_object_get_ex(req, "part_ids", &c->ids) || !c->ids)
		return srv_err_set(err, EINVAL, 400, "part_ids",
				   "Missing required parameter: 'part_ids'.");
	if (!json_object_is_type(c->ids, json_type_array))
		return srv_err_set(err, EINVAL, 400, "part_ids",
				   "Invalid type for 'part_ids': expected an array of strings.");
	c->n = json_object_array_length(c->ids);
	size_t siglen = 40;
	for (size_t i = 0; i < c->n; i++) {
		json_object *e = json_object_array_get_idx(c->ids, i);
		if (!json_object_is_type(e, json_type_string))
			return srv_err_set(err, EINVAL, 400, "part_ids",
					   "Invalid type for 'part_ids[%zu]': expected a string.",
					   i);
		siglen += (size_t)json_object_get_string_len(e) + 1;
	}
	json_object *m;
	c->md5[0] = '\0';
	if (json_object_object_get_ex(req, "md5", &m) && m) {
		const char *s = json_object_get_string(m);
		if (!json_object_is_type(m, json_type_string) || strlen(s) != 32 ||
		    strspn(s, "0123456789abcdefABCDEF") != 32)
			return srv_err_set(err, EINVAL, 400, "md5",
					   "md5 must be the hex MD5 of the file (32 hex digits).");
		for (int i = 0; i < 32; i++)
			c->md5[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] + 32 : s[i]);
		c->md5[32] = '\0';
	}
	/* The signature lets a retried complete (lost response) get the same answer. */
	c->sig = malloc(siglen);
	if (!c->sig)
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	size_t off = (size_t)snprintf(c->sig, siglen, "%s|", c->md5);
	for (size_t i = 0; i < c->n; i++)
		off +=
		    (size_t)snprintf(c->sig + off, siglen - off, "%s,",
				     json_object_get_string(json_object_array_get_idx(c->ids, i)));
	return 0;
}

int srv_check_file_form(const struct srv_file_form *form, int64_t *expires_after,
			struct srv_err *err)
{
	int rc = 0;
	*expires_after = 0;
	if (!form->filename)
		rc = srv_err_set(err, EINVAL, 400, "file",
				 "Missing required parameter: 'file' (a form field with a "
				 "filename).");
	if (rc == 0)
		rc = check_filename(form->filename, strlen(form->filename), "file", err);
	if (rc == 0)
		rc = check_purpose(form->purpose, err);
	if (rc == 0 && (form->expires_anchor || form->expires_seconds)) {
		char *end = NULL;
		const char *s = form->expires_seconds ? form->expires_seconds : "";
		long long v = strtoll(s, &end, 10);
		if (!*s || *end)
			rc = srv_err_set(err, EINVAL, 400, "expires_after.seconds",
					 "expires_after[seconds] must be an integer");
		else
			rc = check_expiry(form->expires_anchor, v, err);
		*expires_after = v;
	}
	return rc;
}
