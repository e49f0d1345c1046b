#include "listing.h"

#include "journal.h"
#include "merge.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Newest files asked for per poll; a page of new files only means more: a whole listing. */
#define POLL_PAGE 100

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply_one(struct uf_mount *m, struct uf_node *k)
{
	struct uf_attrs a;
	if (k->kind == UF_FILE && k->remote && !k->w && uf_state_file_get(m->state, k->file_id, &a)) {
		k->mode = S_IFREG | (a.mode & 07777);
		k->uid = a.uid;
		k->gid = a.gid;
		k->mtime = a.mtime;
	}
}

/* Kept for a listed file whose attributes this mount set (chmod, touch -d, cp -a). */
static bool shown(const struct uf_node *n, const void *arg)
{
	(void)arg;
	return n->remote && n->linked;
}

static bool in_tree(const char *file_id, void *tree)
{
	return uf_tree_by_id(tree, file_id, shown, NULL) != NULL;
}

/* Files of a whole listing merged per step, the lock released between steps: no request
 * waits on more than one step. */
#define MERGE_STEP 4096

/* Merges a whole listing whose request went out at epoch (no lock held); the state store
 * forgets the files that are gone. */
static void merge_all(struct uf_mount *m, const struct up_file_list *l, uint64_t epoch)
{
	double t0 = now_s(), longest = 0;
	struct uf_merge mg;
	bool done = false;
	for (int step = 0; !done; step++) {
		double s0 = now_s();
		pthread_mutex_lock(&m->tree.mu);
		if (step == 0)
			uf_tree_merge_begin(&m->tree, &mg, l, epoch);
		struct uf_node **added;
		size_t nadded;
		done = uf_tree_merge_step(&m->tree, &mg, MERGE_STEP, &added, &nadded);
		for (size_t i = 0; i < nadded; i++)
			apply_one(m, added[i]);
		uf_tree_unlock(&m->tree);
		free(added);
		if (now_s() - s0 > longest)
			longest = now_s() - s0;
	}
	double t1 = now_s();
	if (uf_state_file_count(m->state) > 0) {
		pthread_mutex_lock(&m->tree.mu);
		uf_state_files_retain(m->state, in_tree, &m->tree);
		uf_tree_unlock(&m->tree);
	}
	uf_log(m, UF_DEBUG, "whole listing of %zu files merged in %.0f ms (longest step %.1f ms, "
	       "state store %.0f ms)", l->n, (t1 - t0) * 1e3, longest * 1e3, (now_s() - t1) * 1e3);
}

/* A whole listing's strings, freed: given back to the system rather than kept by malloc
 * (at 100k files they weigh more than the namespace they were merged into). */
static void list_free(struct up_file_list *l)
{
	up_file_list_clear(l);
	malloc_trim(0);
}

void uf_listing_first(struct uf_mount *m, struct up_file_list *l)
{
	pthread_mutex_lock(&m->tree.mu);
	uint64_t epoch = ++m->tree.list_epoch;
	uf_tree_unlock(&m->tree);
	merge_all(m, l, epoch);
	list_free(l);
	m->swept_at = now_s();
}

int uf_listing_refresh(struct uf_mount *m)
{
	pthread_mutex_lock(&m->list_mu);
	pthread_mutex_lock(&m->tree.mu);
	uint64_t epoch = ++m->tree.list_epoch;
	uf_tree_unlock(&m->tree);
	struct up_file_list l;
	struct up_error err;
	int rc = up_files_list(m->client, NULL, &l, &err);
	if (rc == 0) {
		merge_all(m, &l, epoch);
		list_free(&l);
	} else {
		uf_log(m, UF_WARN, "listing the remote files failed: %s", err.message);
	}
	m->swept_at = now_s(); /* a failure too: the next try after the interval */
	pthread_mutex_unlock(&m->list_mu);
	return rc;
}

/* The newest page: files this mount does not know yet. A page of nothing but new files
 * may hide more: then the whole listing. */
static int poll_new(struct uf_mount *m)
{
	pthread_mutex_lock(&m->list_mu);
	pthread_mutex_lock(&m->tree.mu);
	uint64_t epoch = ++m->tree.list_epoch;
	uf_tree_unlock(&m->tree);
	struct up_list_query q = {.limit = POLL_PAGE, .max_files = POLL_PAGE};
	struct up_file_list l;
	struct up_error err;
	int rc = up_files_list(m->client, &q, &l, &err);
	bool whole = false;
	if (rc == 0) {
		pthread_mutex_lock(&m->tree.mu);
		struct up_idlist hidden = {0};
		uf_tree_replaced(&m->tree, &hidden);
		struct uf_node **added = NULL;
		size_t nadded = 0;
		bool known = uf_tree_add_new(&m->tree, &l, epoch, &hidden, &added, &nadded);
		for (size_t i = 0; i < nadded; i++)
			apply_one(m, added[i]);
		uf_tree_unlock(&m->tree);
		free(added);
		up_idlist_clear(&hidden);
		whole = !known && l.n >= POLL_PAGE;
		up_file_list_clear(&l);
	} else {
		uf_log(m, UF_DEBUG, "listing the newest files failed: %s", err.message);
	}
	pthread_mutex_unlock(&m->list_mu);
	return whole ? uf_listing_refresh(m) : rc;
}

static void *refresher(void *arg)
{
	struct uf_mount *m = arg;
	pthread_mutex_lock(&m->lister_mu);
	while (!m->lister_stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		double t = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + m->cfg.list_interval;
		until.tv_sec = (time_t)t;
		until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
		int rc = 0;
		while (!m->lister_stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&m->lister_cv, &m->lister_mu, &until);
		if (m->lister_stop)
			break;
		pthread_mutex_unlock(&m->lister_mu);
		if (now_s() - m->swept_at >= m->cfg.sweep_interval)
			uf_listing_refresh(m);
		else
			poll_new(m);
		pthread_mutex_lock(&m->lister_mu);
	}
	pthread_mutex_unlock(&m->lister_mu);
	return NULL;
}

int uf_listing_start(struct uf_mount *m)
{
	m->lister_stop = false;
	int rc = pthread_create(&m->lister, NULL, refresher, m);
	if (rc != 0)
		return -rc;
	m->lister_running = true;
	return 0;
}

void uf_listing_stop(struct uf_mount *m)
{
	if (!m->lister_running)
		return;
	pthread_mutex_lock(&m->lister_mu);
	m->lister_stop = true;
	pthread_cond_broadcast(&m->lister_cv);
	pthread_mutex_unlock(&m->lister_mu);
	pthread_join(m->lister, NULL);
	m->lister_running = false;
}
