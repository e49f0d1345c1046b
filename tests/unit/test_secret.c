/* Key files: only their owner may read them, and one key on one line. */
#include "check.h"
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) < 0)
		abort();
	close(fd);
	chmod(path, mode);
}

static char dir[] = "/tmp/uploadfs-secret-XXXXXX";

CASE(reads_a_0600_key_trimmed)
{
	char path[256], *key = NULL;
	snprintf(path, sizeof path, "%s/k", dir);
	put(path, "  sk-abc123\n", 0600);
	CHECK(up_secret_read_file(path, &key, NULL, 0) == 0);
	CHECK(strcmp(key, "sk-abc123") == 0);
	up_secret_free(key);
	put(path, "sk-ro", 0400);
	CHECK(up_secret_read_file(path, &key, NULL, 0) == 0);
	CHECK(strcmp(key, "sk-ro") == 0);
	up_secret_free(key);
}

CASE(refuses_a_readable_key_file_without_printing_the_key)
{
	char path[256], why[256], *key = NULL;
	snprintf(path, sizeof path, "%s/k", dir);
	put(path, "sk-visible\n", 0644);
	CHECK(up_secret_read_file(path, &key, why, sizeof why) == -EPERM);
	CHECK(key == NULL);
	CHECK(strstr(why, "0600") != NULL);
	CHECK(strstr(why, "sk-visible") == NULL);
	put(path, "sk-visible\n", 0660);
	CHECK(up_secret_read_file(path, &key, why, sizeof why) == -EPERM);
}

CASE(refuses_empty_multiline_and_missing)
{
	char path[256], why[256], *key = NULL;
	snprintf(path, sizeof path, "%s/k", dir);
	put(path, "\n \n", 0600);
	CHECK(up_secret_read_file(path, &key, why, sizeof why) == -EINVAL);
	put(path, "a\nb\n", 0600);
	CHECK(up_secret_read_file(path, &key, why, sizeof why) == -EINVAL);
	CHECK(strstr(why, "a\nb") == NULL);
	snprintf(path, sizeof path, "%s/missing", dir);
	CHECK(up_secret_read_file(path, &key, why, sizeof why) == -ENOENT);
	CHECK(up_secret_read_file(dir, &key, why, sizeof why) == -EINVAL);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
}

static void teardown(void) __attribute__((destructor));
static void teardown(void)
{
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

CHECK_MAIN(T(reads_a_0600_key_trimmed), T(refuses_a_readable_key_file_without_printing_the_key),
	   T(refuses_empty_multiline_and_missing))
