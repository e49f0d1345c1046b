/* The async interface: a fixed set of worker threads, each running one request at a time on
 * the client's shared connections, fed by a bounded queue (back-pressure on submit). */
#include "client.h"
#include "errors.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum job_kind { J_PART, J_CREATE, J_COMPLETE, J_CANCEL };

struct job {
	struct job *next;
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
	struct job *head, *tail;
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

static void job_run(up_client *c, struct job *j)
{
	struct up_error err = {0};
	int rc;
	if (j->kind == J_PART) {
		struct up_part part = {0};
		rc = up_part_add(c, j->upload_id, &j->src, &part, &err);
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
		pthread_mutex_unlock(&a->mu);
		job_run(a->c, j);
		job_free(j);
		pthread_mutex_lock(&a->mu);
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
