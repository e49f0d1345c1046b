#include "content.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int uf_content_open(struct uf_mount *m, struct uf_node *n, int *fd)
{
	char path[4200], tmp[4300], id[UP_ID_MAX];
	pthread_mutex_lock(&m->tree.mu);
	memcpy(id, n->file_id, UP_ID_MAX);
	uint64_t bytes = n->bytes;
	uf_tree_unlock(&m->tree);
	snprintf(path, sizeof path, "%s/%s", m->content_dir, id);
	pthread_mutex_lock(&n->dl_mu);
	struct stat sb;
	int rc = 0;
	if (stat(path, &sb) < 0 || (uint64_t)sb.st_size != bytes) {
		snprintf(tmp, sizeof tmp, "%s.part", path);
		int out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		struct up_error err;
		uint64_t got = 0;
		if (out < 0) {
			rc = -errno;
			uf_log(m, UF_ERROR, "cannot create %s: %s", tmp, strerror(errno));
		} else if ((rc = up_file_content(m->client, id, out, &got, &err)) < 0) {
			if (rc == -EACCES)
				uf_log(m, UF_WARN,
				       "cannot read %s: %s (the API does not allow "
				       "downloading files of this purpose)",
				       n->name, err.message);
			else
				uf_log(m, UF_ERROR, "downloading %s failed: %s", n->name,
				       err.message);
		} else if (got != bytes) {
			rc = -EIO;
			uf_log(m, UF_ERROR, "downloading %s: got %llu bytes, expected %llu",
			       n->name, (unsigned long long)got, (unsigned long long)bytes);
		}
		if (out >= 0)
			close(out);
		if (rc == 0 && rename(tmp, path) < 0)
			rc = -errno;
		if (rc < 0)
			unlink(tmp);
	}
	pthread_mutex_unlock(&n->dl_mu);
	if (rc == 0 && (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = -errno;
	return rc;
}

