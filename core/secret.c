#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 4096

static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int why_set(char *why, size_t len, int rc, const char *fmt, ...)
{
	if (why && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int up_secret_read_file(const char *path, char **out, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		return why_set(why, whylen, -e, "cannot open key file %s: %s", path, strerror(e));
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return why_set(why, whylen, -EINVAL, "key file %s is not a regular file", path);
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return why_set(why, whylen, -EPERM,
			       "key file %s must be mode 0600 or 0400 (chmod 600 it)", path);
	}
	char *buf = calloc(1, KEY_FILE_MAX + 1);
	ssize_t n = buf ? read(fd, buf, KEY_FILE_MAX + 1) : -1;
	int e = errno;
	close(fd);
	if (n < 0 || n > KEY_FILE_MAX) {
		up_secret_free(buf);
		return why_set(why, whylen, n < 0 ? -e : -EINVAL, "cannot read key file %s", path);
	}
	size_t start = 0, end = (size_t)n;
	while (start < end && strchr(" \t\r\n", buf[start]))
		start++;
	while (end > start && strchr(" \t\r\n", buf[end - 1]))
		end--;
	for (size_t i = start; i < end; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			up_secret_free(buf);
			return why_set(why, whylen, -EINVAL,
				       "key file %s must hold one key on one line", path);
		}
	}
	if (start == end) {
		up_secret_free(buf);
		return why_set(why, whylen, -EINVAL, "key file %s is empty", path);
	}
	memmove(buf, buf + start, end - start);
	memset(buf + (end - start), 0, (size_t)n - (end - start));
	*out = buf;
	return 0;
}

void up_secret_free(char *key)
{
	if (!key)
		return;
	explicit_bzero(key, strlen(key));
	free(key);
}
