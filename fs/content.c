#include "content.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Downloads id into the cache; fd is the downloaded file, open (its download lock held). */
static int download(struct uf_mount *m, const char *doing, const char *name, const char *id,
		    uint64_t bytes, int *fd)
{
	char path[4200], tmp[4300];
	uf_cache_path(m->cache, id, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.part", path);
	int out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		int rc = -errno;
		uf_log(m, UF_ERROR, "cannot create %s: %s", tmp, strerror(errno));
		return rc;
	}
	struct up_error err;
	uint64_t got = 0;
	int rc = up_file_content(m->client, id, out, &got, &err);
	if (rc == -EACCES)
		uf_log(m, UF_WARN,
		       "cannot %s %s: %s (the API does not allow downloading files of this "
		       "purpose, and its bytes are not in the local cache)",
		       doing, name, err.message);
	else if (rc < 0)
		uf_log(m, UF_ERROR, "downloading %s failed: %s", name, err.message);
	else if (got != bytes) {
		rc = -EIO;
		uf_log(m, UF_ERROR, "downloading %s: got %llu bytes, expected %llu", name,
		       (unsigned long long)got, (unsigned long long)bytes);
	}
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		close(out);
		unlink(tmp);
		return rc;
	}
	*fd = out; /* whatever the budget evicts next, this reader has the bytes */
	uf_cache_added(m->cache, id);
	return 0;
}

int uf_content_open(struct uf_mount *m, struct uf_node *n, const char *doing, int *fd)
{
	char id[UP_ID_MAX], name[256];
	pthread_mutex_lock(&m->tree.mu);
	snprintf(id, sizeof id, "%s", n->file_id);
	snprintf(name, sizeof name, "%s", n->name);
	uint64_t bytes = n->bytes;
	uf_tree_unlock(&m->tree);
	if (uf_cache_open(m->cache, id, bytes, fd) == 0)
		return 0;
	pthread_mutex_t *dl = uf_tree_dl_lock(&m->tree, n); /* one download of a file at a time */
	pthread_mutex_lock(dl);
	int rc = uf_cache_open(m->cache, id, bytes, fd);
	if (rc < 0)
		rc = download(m, doing, name, id, bytes, fd);
	pthread_mutex_unlock(dl);
	return rc;
}
