/* The async interface: a fixed set of worker threads, each running one request at a time on
 * the client's shared connections, fed by a bounded queue (back-pressure on submit).
 * The parts of one upload start in the order they were queued: a part's request waits
 * until the one queued before it has begun its body (a server that answers 100 Continue
 * has taken its headers by then), so a server that assembles parts as they come sees
 * them in the order the client will list them. */
#include "client.h"
#include "errors.h"
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum job_kind { J_PART, J_CREATE, J_COMPLETE, J_CANCEL };

/* How long a part waits at most for the one before it to begin: past that it goes anyway. */
enum { TURN_WAIT_S = 2 };

struct job {
	struct job *next;
	struct job *rnext, *rprev; /* in the running list */
	struct up_async *a;
	uint64_t seq;
	atomic_bool begun; /* a part's body was first read, or its request ended */
	enum job_kind kind;
	char upload_id[UP_ID_MAX];
	struct up_source src;
	uint64_t bytes;
	char *filename, *mime_type, *purpose;
	char **part_ids;
	size_t nparts;
	char md5[33];
	up_part_cb part_cb;
	up_upload_cb upload_cb;
	void *ud;
};

struct up_async {
	up_client *c;
	pthread_t *threads;
	unsigned nthreads;
	pthread_mutex_t mu;
	pthread_cond_t work;  /* a job was queued, or stop */
	pthread_cond_t space; /* the queue has room */
	pthread_cond_t idle;  /* nothing queued or running */
	pthread_cond_t begun; /* a part began its body, or ended */
	struct job *head, *tail;
	struct job *run; /* the jobs running */
	uint64_t seq;
	unsigned queued, running;
	bool stop;
};

static void job_free(struct job *j)
{
	free(j->filename);
	free(j->mime_type);
	free(j->purpose);
	for (size_t i = 0; i < j->nparts; i++)
		free(j->part_ids[i]);
	free(j->part_ids);
	free(j);
}

static void mark_begun(struct job *j)
{
	if (atomic_load(&j->begun))
		return;
	pthread_mutex_lock(&j->a->mu);
	atomic_store(&j->begun, true);
	pthread_cond_broadcast(&j->a->begun);
	pthread_mutex_unlock(&j->a->mu);
}

/* The part's source, read through the job: the first read tells the next part it may start. */
static ssize_t gated_read(void *ud, uint64_t off, void *buf, size_t len)
{
	struct job *j = ud;
	mark_begun(j);
	return up_source_pread(&j->src, off, buf, len);
}

/* Waits (lock held) while a part of the same upload queued before j is running and has not
 * begun its body. Bounded: the order only saves the server work, it is never needed. */
static void wait_turn(struct up_async *a, struct job *j)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += TURN_WAIT_S;
	for (;;) {
		bool before = false;
		for (struct job *k = a->run; k && !before; k = k->rnext)
			before = k->kind == J_PART && k->seq < j->seq && !atomic_load(&k->begun) &&
				 strcmp(k->upload_id, j->upload_id) == 0;
		if (!before || pthread_cond_timedwait(&a->begun, &a->mu, &until) == ETIMEDOUT)
			return;
	}
}

static void job_run(up_client *c, struct job *j)
{
	struct up_error err = {0};
	int rc;
	if (j->kind == J_PART) {
		struct up_part part = {0};
		struct up_source src = {
		    .kind = UP_SRC_CB, .len = j->src.len, .read = gated_read, .ud = j};
		rc = up_part_add(c, j->upload_id, &src, &part, &err);
		mark_begun(j);
		j->part_cb(j->ud, rc, rc == 0 ? &part : NULL, &err);
		return;
	}
	struct up_upload up = {0};
	switch (j->kind) {
	case J_CREATE:
		rc =
		    up_upload_create(c, j->bytes, j->filename, j->mime_type, j->purpose, &up, &err);
		break;
	case J_COMPLETE:
		rc = up_upload_complete(c, j->upload_id, (const char *const *)j->part_ids,
					j->nparts, j->md5[0] ? j->md5 : NULL, &up, &err);
		break;
	default:
		rc = up_upload_cancel(c, j->upload_id, &up, &err);
		break;
	}
	j->upload_cb(j->ud, rc, rc == 0 ? &up : NULL, &err);
	up_upload_clear(&up);
}

static void *worker(void *arg)
{
	struct up_async *a = arg;
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->work, &a->mu);
		if (!a->head)
			break;
		struct job *j = a->head;
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->queued--;
		a->running++;
		pthread_cond_signal(&a->space);
		j->rnext = a->run;
		if (a->run)
			a->run->rprev = j;
		a->run = j;
		if (j->kind == J_PART)
			wait_turn(a, j);
		pthread_mutex_unlock(&a->mu);
		job_run(a->c, j);
		pthread_mutex_lock(&a->mu);
		if (j->rprev)
			j->rprev->rnext = j->rnext;
		else
			a->run = j->rnext;
		if (j->rnext)
			j->rnext->rprev = j->rprev;
		job_free(j);
		a->running--;
		if (!a->queued && !a->running)
			pthread_cond_broadcast(&a->idle);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int up_async_new(up_client *c, unsigned max_in_flight, up_async **out)
{
	if (max_in_flight == 0 || max_in_flight > 256)
		return -EINVAL;
	struct up_async *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	a->c = c;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->space, NULL);
	pthread_cond_init(&a->idle, NULL);
	pthread_cond_init(&a->begun, NULL);
	if (!(a->threads = calloc(max_in_flight, sizeof *a->threads))) {
		up_async_free(a);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < max_in_flight; i++) {
		int rc = pthread_create(&a->threads[i], NULL, worker, a);
		if (rc != 0) {
			up_async_free(a);
			return -rc;
		}
		a->nthreads++;
	}
	*out = a;
	return 0;
}

void up_async_wait(up_async *a)
{
	pthread_mutex_lock(&a->mu);
	while (a->queued || a->running)
		pthread_cond_wait(&a->idle, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

void up_async_free(up_async *a)
{
	if (!a)
		return;
	up_async_wait(a);
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->work);
	pthread_mutex_unlock(&a->mu);
	for (unsigned i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	free(a->threads);
	pthread_cond_destroy(&a->work);
	pthread_cond_destroy(&a->space);
	pthread_cond_destroy(&a->idle);
	pthread_cond_destroy(&a->begun);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static bool on_worker(const struct up_async *a)
{
	for (unsigned i = 0; i < a->nthreads; i++)
		if (pthread_equal(a->threads[i], pthread_self()))
			return true;
	return false;
}

static int submit(struct up_async *a, struct job *j)
{
	pthread_mutex_lock(&a->mu);
	/* Wait for room, except on a worker (a callback chaining a request): blocking there
	 * could leave every worker waiting on the others. */
	while (a->queued >= a->nthreads && !a->stop && !on_worker(a))
		pthread_cond_wait(&a->space, &a->mu);
	if (a->stop) {
		pthread_mutex_unlock(&a->mu);
		job_free(j);
		return -ESHUTDOWN;
	}
	j->a = a;
	j->seq = ++a->seq;
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	a->queued++;
	pthread_cond_signal(&a->work);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

static struct job *job_new(enum job_kind kind, const char *upload_id)
{
	struct job *j = calloc(1, sizeof *j);
	if (j) {
		j->kind = kind;
		if (upload_id)
			snprintf(j->upload_id, sizeof j->upload_id, "%s", upload_id);
	}
	return j;
}

int up_async_part_add(up_async *a, const char *upload_id, const struct up_source *src,
		      up_part_cb cb, void *ud)
{
	struct job *j = job_new(J_PART, upload_id);
	if (!j)
		return -ENOMEM;
	j->src = *src;
	j->part_cb = cb;
	j->ud = ud;
	return submit(a, j);
}

int up_async_create(up_async *a, uint64_t bytes, const char *filename, const char *mime_type,
		    const char *purpose, up_upload_cb cb, void *ud)
{
	struct job *j = job_new(J_CREATE, NULL);
	if (!j)
		return -ENOMEM;
	j->bytes = bytes;
	j->filename = strdup(filename ? filename : "");
	j->mime_type = strdup(mime_type ? mime_type : "");
	j->purpose = strdup(purpose ? purpose : "");
	j->upload_cb = cb;
	j->ud = ud;
	if (!j->filename || !j->mime_type || !j->purpose) {
		job_free(j);
		return -ENOMEM;
	}
	return submit(a, j);
}

int up_async_complete(up_async *a, const char *upload_id, const char *const *part_ids,
		      size_t nparts, const char *md5_hex, up_upload_cb cb, void *ud)
{
	struct job *j = job_new(J_COMPLETE, upload_id);
	if (!j || !(j->part_ids = calloc(nparts ? nparts : 1, sizeof *j->part_ids))) {
		free(j);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nparts; i++) {
		if (!(j->part_ids[i] = strdup(part_ids[i]))) {
			job_free(j);
			return -ENOMEM;
		}
		j->nparts++;
	}
	if (md5_hex)
		snprintf(j->md5, sizeof j->md5, "%s", md5_hex);
	j->upload_cb = cb;
	j->ud = ud;
	return submit(a, j);
}

int up_async_cancel(up_async *a, const char *upload_id, up_upload_cb cb, void *ud)
{
	struct job *j = job_new(J_CANCEL, upload_id);
	if (!j)
		return -ENOMEM;
	j->upload_cb = cb;
	j->ud = ud;
	return submit(a, j);
}
