/* libFuzzer: what a user or a crash hands us — sizes, counts and fractions as typed in
 * options, and journal records as a torn write may leave them. */
#include "journal.h"
#include "parse.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	uint64_t v;
	double d;
	up_parse_size(s, &v);
	up_parse_u64(s, &v);
	up_parse_double(s, &d);
	char path[64];
	snprintf(path, sizeof path, "/tmp/uploadfs-fuzz-journal-%d.json", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0 && write(fd, data, size) == (ssize_t)size) {
		struct up_journal_rec r;
		if (up_journal_read(path, &r) == 0)
			up_journal_rec_clear(&r);
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(s);
	return 0;
}
