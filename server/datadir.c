#include "datadir.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int srv_pathf(char *out, size_t len, const char *dir, const char *fmt, ...)
{
	int n = snprintf(out, len, "%s/", dir);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(out + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int srv_disk_err(struct srv_err *err, int e, const char *what)
{
	fprintf(stderr, "uploadfs-server: %s: %s\n", what, strerror(e));
	return srv_err_set(err, e, 500, NULL, "The server could not %s", what);
}

int64_t srv_now(void)
{
	return (int64_t)time(NULL);
}
