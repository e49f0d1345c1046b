#include "route.h"

#include <string.h>
#include <strings.h>

static bool take_id(const char *seg, size_t n, char out[SRV_ID_MAX])
{
	if (n == 0 || n >= SRV_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = seg[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return false;
	}
	memcpy(out, seg, n);
	out[n] = '\0';
	return true;
}

enum srv_route srv_route_of(const char *method, const char *url, char id[SRV_ID_MAX],
			   bool no_uploads)
{
	size_t n = strlen(url);
	if (n > 1 && url[n - 1] == '/')
		n--;
	const char *p;
	bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
	if (n >= 11 && strncmp(url, "/v1/uploads", 11) == 0 && (n == 11 || url[11] == '/')) {
		if (no_uploads)
			return SRV_R_NONE;
		if (n == 11)
			return post ? SRV_R_UPLOAD_CREATE : SRV_R_NONE;
		p = url + 12;
		const char *slash = memchr(p, '/', (size_t)(url + n - p));
		if (!slash || !take_id(p, (size_t)(slash - p), id) || !post)
			return SRV_R_NONE;
		size_t rest = (size_t)(url + n - slash);
		if (rest == 6 && strncmp(slash, "/parts", 6) == 0)
			return SRV_R_PART;
		if (rest == 9 && strncmp(slash, "/complete", 9) == 0)
			return SRV_R_COMPLETE;
		if (rest == 7 && strncmp(slash, "/cancel", 7) == 0)
			return SRV_R_CANCEL;
		return SRV_R_NONE;
	}
	if (n >= 9 && strncmp(url, "/v1/files", 9) == 0 && (n == 9 || url[9] == '/')) {
		if (n == 9)
			return get ? SRV_R_FILES_LIST : post ? SRV_R_FILE_CREATE : SRV_R_NONE;
		p = url + 10;
		const char *slash = memchr(p, '/', (size_t)(url + n - p));
		size_t idlen = slash ? (size_t)(slash - p) : (size_t)(url + n - p);
		if (!take_id(p, idlen, id))
			return SRV_R_NONE;
		if (!slash)
			return get			       ? SRV_R_FILE_GET
			       : strcmp(method, "DELETE") == 0 ? SRV_R_FILE_DELETE
							       : SRV_R_NONE;
		if ((size_t)(url + n - slash) == 8 && strncmp(slash, "/content", 8) == 0 && get)
			return SRV_R_FILE_CONTENT;
	}
	return SRV_R_NONE;
}

bool srv_route_json(enum srv_route r)
{
	return r == SRV_R_UPLOAD_CREATE || r == SRV_R_COMPLETE || r == SRV_R_CANCEL;
}

bool srv_ctype_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int srv_parse_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6, *dash = strchr(p, '-');
	if (!dash)
		return 0;
	uint64_t x = 0, y = 0;
	bool hx = false, hy = false;
	for (const char *q = p; q < dash; q++, hx = true) {
		if (*q < '0' || *q > '9' || x > (UINT64_MAX - 9) / 10)
			return 0;
		x = x * 10 + (uint64_t)(*q - '0');
	}
	for (const char *q = dash + 1; *q; q++, hy = true) {
		if (*q < '0' || *q > '9' || y > (UINT64_MAX - 9) / 10)
			return 0;
		y = y * 10 + (uint64_t)(*q - '0');
	}
	if (!hx && !hy)
		return 0;
	if (!hx) { /* the last y bytes */
		if (y == 0 || size == 0)
			return -1;
		*a = y >= size ? 0 : size - y;
		*b = size - 1;
		return 1;
	}
	if (hy && y < x)
		return 0;
	if (x >= size)
		return -1;
	*a = x;
	*b = hy && y < size ? y : size - 1;
	return 1;
}
