/* A 1 GiB upload through up_upload_file: 8 MiB parts, 4 in flight, from a file read once,
 * verified by the server's MD5 check at complete and by the downloaded copy. */
#include "check.h"
#include "fixture.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <uploadfs.h>

#define SIZE (1ull << 30)

static void progress(void *ud, uint64_t sent, uint64_t total)
{
	uint64_t *last = ud;
	if (sent > *last && sent <= total)
		*last = sent;
}

CASE(one_gib_in_8_mib_parts_4_in_flight)
{
	struct fixture f;
	CHECK(fixture_start(&f, NULL) == 0);
	char path[128];
	snprintf(path, sizeof path, "%s/big", f.dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	char *buf = malloc(1 << 20);
	unsigned seed = 7;
	for (uint64_t off = 0; off < SIZE; off += 1 << 20) {
		for (size_t i = 0; i < (1 << 20); i += 4) {
			seed = seed * 1103515245u + 12345u;
			memcpy(buf + i, &seed, 4);
		}
		CHECK(write(fd, buf, 1 << 20) == 1 << 20);
	}
	struct up_config cfg = {.api_base = f.base, .no_env = true};
	up_client *c;
	struct up_error err;
	CHECK(up_client_new(&cfg, &c, &err) == 0);
	uint64_t last = 0;
	struct up_file_upload o = UP_FILE_UPLOAD_INIT;
	o.fd = fd;
	o.filename = "big.bin";
	o.purpose = "batch";
	o.part_size = 8u << 20;
	o.parallel = 4;
	o.progress = progress;
	o.progress_ud = &last;
	struct up_upload out;
	int rc = up_upload_file(c, &o, &out, &err);
	if (rc < 0)
		printf("# %s\n", err.message);
	CHECK(rc == 0);
	CHECK(out.file.bytes == SIZE && last == SIZE);
	/* the server checked the md5 we sent; check the bytes it kept, too */
	char dl[160];
	snprintf(dl, sizeof dl, "%s/dl", f.dir);
	int out_fd = open(dl, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t written = 0;
	CHECK(up_file_content(c, out.file.id, out_fd, &written, &err) == 0 && written == SIZE);
	char *cmp = malloc(1 << 20);
	for (uint64_t off = 0; off < SIZE; off += 1 << 20) {
		CHECK(pread(fd, buf, 1 << 20, (off_t)off) == 1 << 20);
		CHECK(pread(out_fd, cmp, 1 << 20, (off_t)off) == 1 << 20);
		CHECK(memcmp(buf, cmp, 1 << 20) == 0);
	}
	free(cmp);
	free(buf);
	close(out_fd);
	close(fd);
	up_upload_clear(&out);
	up_client_free(c);
	fixture_stop(&f);
}

CHECK_MAIN(T(one_gib_in_8_mib_parts_4_in_flight))
