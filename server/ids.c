#include "ids.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#define SEQ_DIGITS  9
#define RAND_DIGITS 15

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int b62_value(char c)
{
	const char *p = c ? strchr(b62, c) : NULL;
	return p ? (int)(p - b62) : -1;
}

uint64_t srv_seq_next(struct srv_seq *seq)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	seq->last = now > seq->last ? now : seq->last + 1;
	return seq->last;
}

void srv_seq_observe(struct srv_seq *seq, uint64_t v)
{
	if (v > seq->last)
		seq->last = v;
}

int srv_id_make(const char *prefix, uint64_t seq, char out[SRV_ID_MAX])
{
	size_t plen = strlen(prefix);
	if (plen + SEQ_DIGITS + RAND_DIGITS + 1 > SRV_ID_MAX)
		return -EINVAL;
	memcpy(out, prefix, plen);
	char *p = out + plen;
	for (int i = SEQ_DIGITS - 1; i >= 0; i--) {
		p[i] = b62[seq % 62];
		seq /= 62;
	}
	p += SEQ_DIGITS;
	/* Rejection sampling keeps the random characters uniform. */
	int n = 0;
	while (n < RAND_DIGITS) {
		unsigned char buf[32];
		if (RAND_bytes(buf, sizeof buf) != 1)
			return -EIO;
		for (size_t i = 0; i < sizeof buf && n < RAND_DIGITS; i++)
			if (buf[i] < 248)
				p[n++] = b62[buf[i] % 62];
	}
	p[n] = '\0';
	return 0;
}

bool srv_id_parse(const char *prefix, const char *id, uint64_t *seq)
{
	size_t plen = strlen(prefix);
	if (!id || strncmp(id, prefix, plen) != 0 || strlen(id) != plen + SEQ_DIGITS + RAND_DIGITS)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < SEQ_DIGITS + RAND_DIGITS; i++) {
		int d = b62_value(id[plen + i]);
		if (d < 0)
			return false;
		if (i < SEQ_DIGITS)
			v = v * 62 + (uint64_t)d;
	}
	*seq = v;
	return true;
}
