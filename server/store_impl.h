/* store_impl: the store's state as its modules share it (store.c, records.c, earlyhash.c):
 * uploads with their parts and slots, files, the index, and the lock that guards them all.
 * Not for the HTTP layer, which goes through store.h. */
#ifndef SRV_STORE_IMPL_H
#define SRV_STORE_IMPL_H

#include "datadir.h"
#include "ids.h"
#include "index.h"
#include "store.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum upload_status { U_PENDING, U_COMPLETED, U_CANCELLED, U_EXPIRED };
extern const char *const srv_status_names[4]; /* as the API spells them */


struct part {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
};

enum slot_state { SLOT_OPEN, SLOT_COMMITTED, SLOT_HASHED, SLOT_GONE };
struct slot {
	enum slot_state state;
	size_t idx;	/* committed, hashed: the part's index in parts[] */
	bool placed;	/* the client said where the part sits in the file: */
	uint64_t place; /* at this offset */
};

struct upload {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at;
	char *filename;
	char *mime_type;
	char purpose[16];
	enum upload_status status;
	int64_t file_expires_after; /* 0: the purpose's default */
	struct part *parts;	    /* sorted by seq */
	size_t nparts, cap_parts;
	uint64_t parts_bytes;
	bool busy;		/* a complete is hashing and linking the content */
	/* The MD5 of the parts as they arrive, in the order their bodies began: a client
	 * sends the file's parts in order, parallel senders included, even when they finish
	 * out of it. Each part request has a slot once its body begins; the hasher reads
	 * committed parts slot by slot into early_md, waits at a slot still in flight and
	 * skips a slot whose request failed. A complete whose list begins with the parts hashed
	 * so far hashes only the rest; any other order hashes the parts from the start. */
	struct slot *slots;	/* one per part body begun, in that order */
	size_t nslots, cap_slots;
	size_t early_next;	/* the next slot to hash (placed slots: to look at first) */
	uint64_t early_bytes;	/* hashed so far: the offset of the next part (placed slots) */
	size_t *early_idx;	/* indexes in parts[] of the parts hashed, in order */
	size_t early_n, cap_early;
	EVP_MD_CTX *early_md;	/* NULL: nothing hashed yet */
	bool early_busy;	/* a thread is hashing (without the lock) */
	bool early_broken;	/* a read failed, or the parts were dropped meanwhile */
	bool early_off;		/* parts from before a restart: their start order is unknown */
	char *complete_sig;	/* the part_ids+md5 the upload was completed with */
	json_object *file_json; /* the File created at completion */
};

struct file {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at; /* 0: never */
	char *filename;
	char purpose[16];
	char upload_id[SRV_ID_MAX];
	unsigned readers; /* downloads open (srv_download_open) */
	bool removed;	  /* deleted while read: the last reader removes the content */
};

struct srv_store {
	char *dir;
	int lock_fd;
	struct srv_limits lim;
	/* The store lock: guards every field here and every upload and file. The only lock of
	 * the store (no order to keep); held over metadata and small files only, never over a
	 * part's bytes: hashing, linking and reading run without it, the upload marked busy. */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a complete clears upload->busy */
	struct srv_seq seq;
	struct vec uploads; /* struct upload *, never freed while open */
	struct vec files;   /* struct file * */
	int64_t last_sweep;
	struct vec gone;    /* char *: paths set aside, for srv_store_reap to remove */
};

/* Shared by store.c and files.c (store lock held unless said). */
int64_t srv_st_file_expiry(const char *purpose, int64_t created_at, int64_t expires_after);
/* Moves a file's content aside for srv_store_reap (or the file is out of the store). */
void srv_st_drop_content(struct srv_store *st, const struct file *f);
/* Removes files[idx]: its record, then its content, or marks it for its last reader. */
void srv_st_remove_file(struct srv_store *st, size_t idx);
/* Expires uploads and files whose time has come, at most once a second. */
void srv_st_sweep(struct srv_store *st);
/* A ".tmp-*" file in dirpath for a body streamed in; the fd is closed by srv_st_blob_close
 * (which the caller renames or aborts). */
int srv_st_blob_open(struct srv_blob *blob, const char *dirpath, struct srv_err *err);
int srv_st_blob_close(struct srv_blob *blob);
#endif
