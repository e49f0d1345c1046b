/* earlyhash: the MD5 of an upload's parts as they arrive, before its complete — in the
 * file's order where the client placed its parts (part@OFFSET), else in the order their
 * bodies began — and the hashing of listed parts that complete does for the rest. */
#ifndef SRV_EARLYHASH_H
#define SRV_EARLYHASH_H

#include "store_impl.h"

/* Forgets the early hash (lock held, no hashing running). */
void srv_early_reset(struct upload *u);
/* Brings the early hash up to the parts committed so far; called without the lock. */
void srv_early_advance(struct srv_store *st, struct upload *u);
/* Hashes parts[from..n-1] into md, reading each once (no lock: parts are immutable). */
int srv_hash_parts(struct srv_store *st, const char *upload_id, const struct part *parts,
		   size_t from, size_t n, EVP_MD_CTX *md, struct srv_err *err);

#endif
