/* getfile BASE FILE_ID OUT: downloads a file's content with the public API (up_file_content)
 * into OUT; for tests of what the library does with a download that breaks. */
#include <uploadfs.h>

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: getfile BASE FILE_ID OUT\n");
		return 2;
	}
	struct up_config cfg = {.api_base = argv[1], .no_env = true};
	struct up_error err;
	up_client *c = NULL;
	if (up_client_new(&cfg, &c, &err) < 0) {
		fprintf(stderr, "getfile: %s\n", err.message);
		return 1;
	}
	int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint64_t n = 0;
	int rc = fd < 0 ? -1 : up_file_content(c, argv[2], fd, &n, &err);
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "getfile: %s\n", fd < 0 ? "cannot open the output" : err.message);
	else
		printf("%llu bytes\n", (unsigned long long)n);
	up_client_free(c);
	return rc < 0;
}
