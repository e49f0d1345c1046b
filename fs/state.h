/* state: what the API cannot keep but tools expect — mode, owner and mtime of each remote
 * file (so a second rsync -a sees equal sizes and times), and the mount's own directories
 * with their user.purpose / user.mime_type defaults. One JSON document under cache_dir,
 * written with tmp + fsync + rename by a saver thread of its own, never under the caller's
 * locks; changes that come while it writes go out together in its next round. */
#ifndef UF_STATE_H
#define UF_STATE_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct uf_state;

struct uf_attrs {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
};

struct uf_dir_rec {
	const char *path;
	mode_t mode;
	const char *purpose; /* NULL: none */
	const char *mime;
};

/* A missing file is an empty state; a torn one is set aside (path.corrupt) and logged by
 * the caller through *torn. */
int uf_state_open(const char *path, struct uf_state **out, bool *torn);
/* Starts the saver (after daemonizing: fork keeps one thread). Until then changes are
 * written at once. */
int uf_state_start(struct uf_state *s);
/* Writes what is left, and frees. */
void uf_state_close(struct uf_state *s);

bool uf_state_file_get(struct uf_state *s, const char *file_id, struct uf_attrs *out);
int uf_state_file_put(struct uf_state *s, const char *file_id, const struct uf_attrs *a);
int uf_state_file_del(struct uf_state *s, const char *file_id);

int uf_state_dir_put(struct uf_state *s, const struct uf_dir_rec *d);
int uf_state_dir_del(struct uf_state *s, const char *path);
/* Calls fn for every directory record. */
void uf_state_dirs(struct uf_state *s, void (*fn)(void *ud, const struct uf_dir_rec *d), void *ud);

#endif
