/* ids: object ids that carry their creation order ("file-" + 9 base62 digits of a sequence
 * number + 15 random base62 characters), so any id, even a deleted one, can be placed in a
 * listing, and an object is found by binary search on its sequence number. */
#ifndef SRV_IDS_H
#define SRV_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_ID_MAX 48 /* longest id plus NUL */

/* Hands out strictly increasing sequence numbers, at least the wall clock in microseconds,
 * so ids keep their order across restarts. */
struct srv_seq {
	uint64_t last;
};

uint64_t srv_seq_next(struct srv_seq *seq);
/* Raises seq->last to at least v (used while loading ids from disk). */
void srv_seq_observe(struct srv_seq *seq, uint64_t v);

/* Writes prefix + encoded seq + random into out (SRV_ID_MAX bytes). Returns 0 or -EIO. */
int srv_id_make(const char *prefix, uint64_t seq, char out[SRV_ID_MAX]);

/* Checks that id is prefix + 24 base62 characters and returns its sequence number. */
bool srv_id_parse(const char *prefix, const char *id, uint64_t *seq);

#endif
