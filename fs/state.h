/* state: what the API cannot keep but tools expect — mode, owner and mtime of each remote
 * file (so a second rsync -a sees equal sizes and times), and the mount's own directories
 * with their user.purpose / user.mime_type defaults. SQLite (cache_dir/state.db, WAL): a
 * change is one record, written by a saver thread of its own in one transaction with the
 * changes that came meanwhile, never under the caller's locks; reads come from memory. */
#ifndef UF_STATE_H
#define UF_STATE_H

#include <stdbool.h>
#include <stddef.h>
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

/* The store in dir (state.db; an earlier version's state.json is taken in once and kept as
 * state.json.imported). A missing store is empty; a damaged one is set aside (.corrupt) and
 * *torn names it (caller frees) for the caller's log. */
int uf_state_open(const char *dir, struct uf_state **out, char **torn);
/* Starts the saver (after daemonizing: fork keeps one thread). Until then changes are
 * written at once. */
int uf_state_start(struct uf_state *s);
/* Writes what is left, and frees. */
void uf_state_close(struct uf_state *s);

bool uf_state_file_get(struct uf_state *s, const char *file_id, struct uf_attrs *out);
int uf_state_file_put(struct uf_state *s, const char *file_id, const struct uf_attrs *a);
int uf_state_file_del(struct uf_state *s, const char *file_id);
/* Drops the records of files for which keep says no (files deleted elsewhere). */
void uf_state_files_retain(struct uf_state *s, bool (*keep)(const char *file_id, void *ud),
			   void *ud);
size_t uf_state_file_count(struct uf_state *s);

int uf_state_dir_put(struct uf_state *s, const struct uf_dir_rec *d);
int uf_state_dir_del(struct uf_state *s, const char *path);
/* Calls fn for every directory record. */
void uf_state_dirs(struct uf_state *s, void (*fn)(void *ud, const struct uf_dir_rec *d), void *ud);

#endif
