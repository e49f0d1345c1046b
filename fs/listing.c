#include "listing.h"

#include "journal.h"

#include <stdio.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply_state(struct uf_mount *m, struct uf_node *dir)
{
	for (size_t i = 0; i < dir->nkids; i++) {
		struct uf_node *k = dir->kids[i];
		if (k->kind == UF_DIR) {
			apply_state(m, k);
			continue;
		}
		struct uf_attrs a;
		if (k->remote && !k->w && uf_state_file_get(m->state, k->file_id, &a)) {
			k->mode = S_IFREG | (a.mode & 07777);
			k->uid = a.uid;
			k->gid = a.gid;
			k->mtime = a.mtime;
		}
	}
}

int uf_listing_refresh(struct uf_mount *m, bool force)
{
	if (!force && now_s() - m->listed_at < m->cfg.list_ttl)
		return 0;
	pthread_mutex_lock(&m->list_mu);
	if (!force && now_s() - m->listed_at < m->cfg.list_ttl) {
		pthread_mutex_unlock(&m->list_mu);
		return 0;
	}
	pthread_mutex_lock(&m->tree.mu);
	uint64_t epoch = ++m->tree.list_epoch;
	uf_tree_unlock(&m->tree);
	struct up_file_list l;
	struct up_error err;
	int rc = up_files_list(m->client, NULL, &l, &err);
	if (rc == 0) {
		pthread_mutex_lock(&m->tree.mu);
		struct up_idlist hidden = {0};
		uf_tree_replaced(&m->tree, &hidden);
		uf_tree_merge(&m->tree, &l, epoch, &hidden);
		up_idlist_clear(&hidden);
		apply_state(m, m->tree.root);
		uf_tree_unlock(&m->tree);
		up_file_list_clear(&l);
		m->listed_at = now_s();
	} else {
		uf_log(m, UF_WARN, "listing the remote files failed: %s", err.message);
		m->listed_at = now_s(); /* keep the last listing; try again after the TTL */
	}
	pthread_mutex_unlock(&m->list_mu);
	return rc;
}

