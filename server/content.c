#include "content.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE_DIGITS 10
#define PIECE_NAME   24

struct srv_content {
	int dirfd;	/* -1: the content is one regular file, held in fd */
	int fd;		/* the piece open now (-1: none) */
	size_t cur;	/* which piece fd holds */
	size_t n;	/* pieces */
	uint64_t *ends; /* ends[i]: the offset just past piece i */
};

static void piece_name(char out[PIECE_NAME], size_t i)
{
	snprintf(out, PIECE_NAME, "%0*zu", PIECE_DIGITS, i);
}

/* Copies src to a new file name in dirfd (where links are refused). */
static int copy_piece(const char *src, int dirfd, const char *name)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = out < 0 ? -errno : 0;
	while (rc == 0) {
		ssize_t w = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : 0;
			break;
		}
	}
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

int srv_content_make(const char *dir, const char *const *srcs, size_t n)
{
	if (mkdir(dir, 0700) < 0)
		return -errno;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = dfd < 0 ? -errno : 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char name[PIECE_NAME];
		piece_name(name, i);
		if (linkat(AT_FDCWD, srcs[i], dfd, name, 0) == 0)
			continue;
		if (errno == EPERM || errno == EXDEV || errno == EOPNOTSUPP || errno == EMLINK)
			rc = copy_piece(srcs[i], dfd, name);
		else
			rc = -errno;
	}
	if (dfd >= 0)
		close(dfd);
	if (rc < 0)
		srv_content_remove(dir);
	return rc;
}

int srv_content_remove(const char *path)
{
	if (unlink(path) == 0)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return rmdir(path) < 0 ? -errno : 0;
}

/* Reads the pieces' sizes in order; a missing or extra piece is -EBADMSG. */
static int scan_pieces(struct srv_content *c)
{
	int dup_fd = dup(c->dirfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return -errno;
	}
	size_t cap = 0;
	uint64_t *sizes = NULL;
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		errno = 0;
		unsigned long long i = strtoull(de->d_name, &end, 10);
		struct stat sb;
		if (*end || errno || strlen(de->d_name) != PIECE_DIGITS || i >= (1u << 24) ||
		    fstatat(c->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode)) {
			rc = -EBADMSG;
			break;
		}
		if (i >= cap) {
			size_t ncap = cap ? cap : 16;
			while (ncap <= i)
				ncap *= 2;
			uint64_t *ns = realloc(sizes, ncap * sizeof *ns);
			if (!ns) {
				rc = -ENOMEM;
				break;
			}
			for (size_t k = cap; k < ncap; k++)
				ns[k] = UINT64_MAX; /* not seen */
			sizes = ns;
			cap = ncap;
		}
		if (sizes[i] != UINT64_MAX)
			rc = -EBADMSG;
		sizes[i] = (uint64_t)sb.st_size;
		if (i + 1 > c->n)
			c->n = (size_t)i + 1;
	}
	closedir(d);
	uint64_t total = 0;
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		if (sizes[i] == UINT64_MAX)
			rc = -EBADMSG; /* a hole in the numbering */
		else
			sizes[i] = total += sizes[i];
	}
	if (rc < 0)
		free(sizes);
	else
		c->ends = sizes;
	return rc;
}

int srv_content_open(const char *path, struct srv_content **out)
{
	struct srv_content *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->dirfd = c->fd = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	int rc = fd < 0 || fstat(fd, &sb) < 0 ? -errno : 0;
	if (rc == 0 && S_ISDIR(sb.st_mode)) {
		c->dirfd = fd;
		fd = -1;
		rc = scan_pieces(c);
	} else if (rc == 0 && S_ISREG(sb.st_mode)) {
		c->fd = fd;
		fd = -1;
		c->n = 1;
		c->ends = malloc(sizeof *c->ends);
		rc = c->ends ? 0 : -ENOMEM;
		if (rc == 0)
			c->ends[0] = (uint64_t)sb.st_size;
	} else if (rc == 0) {
		rc = -EBADMSG;
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		srv_content_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

uint64_t srv_content_bytes(const struct srv_content *c)
{
	return c->n ? c->ends[c->n - 1] : 0;
}

/* Makes c->fd the piece i. */
static int open_piece(struct srv_content *c, size_t i)
{
	if (c->dirfd < 0 || (c->fd >= 0 && c->cur == i))
		return 0;
	if (c->fd >= 0)
		close(c->fd);
	char name[PIECE_NAME];
	piece_name(name, i);
	c->fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	c->cur = i;
	return 0;
}

ssize_t srv_content_pread(struct srv_content *c, void *buf, size_t len, uint64_t off)
{
	if (off >= srv_content_bytes(c) || len == 0)
		return 0;
	size_t lo = 0, hi = c->n - 1; /* the first piece whose end is past off */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->ends[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	int rc = open_piece(c, lo);
	if (rc < 0)
		return rc;
	uint64_t start = lo ? c->ends[lo - 1] : 0;
	uint64_t left = c->ends[lo] - off;
	for (;;) {
		ssize_t r = pread(c->fd, buf, len < left ? len : (size_t)left, (off_t)(off - start));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		return r ? r : -EIO; /* the piece is shorter than when it was opened */
	}
}

int srv_content_one_fd(struct srv_content *c)
{
	if (c->n > 1)
		return -ENOTUNIQ;
	if (c->n == 1) {
		int rc = open_piece(c, 0);
		if (rc < 0)
			return rc;
		int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* no pieces: no bytes */
	return fd < 0 ? -errno : fd;
}

void srv_content_close(struct srv_content *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->ends);
	free(c);
}
