/* The async interface: 2 x max_in_flight worker threads, each running one request at a time
 * on the client's shared connections, fed by a bounded queue (back-pressure on submit).
 * Jobs start in the order they were queued.
 *
 * max_in_flight bounds the part bodies being *sent*, not the requests open. A part request
 * starts as soon as a worker is free: it connects and sends its headers, then waits for a
 * sending slot before its body's first byte (slots go to the waiting parts in the order they were queued);
 * the read of its last byte gives the slot back, and it waits a round trip for its answer
 * while the next part's body goes out on another connection. So max_in_flight connections'
 * worth of bytes stay on the link, and neither a connection's set-up nor an answer's round
 * trip leaves it idle (bench/wan.sh: they cost a third of the link at 200 ms). */
#include "client.h"
#include "errors.h"
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum job_kind { J_PART, J_CREATE, J_COMPLETE, J_CANCEL };

struct job {
	struct job *next;
	struct up_async *a;
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
	uint64_t seq;	     /* the order it was queued in */
	bool sending;	     /* a part holding one of the sending slots */
	bool had_slot;	     /* ... or that held one (a retry sends again without) */
	struct job *wnext;   /* in the list of parts waiting for a slot */
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
	unsigned limit;	  /* max_in_flight: parts being sent, and jobs queued */
	unsigned sending; /* parts whose body is not all sent yet */
	struct job *whead;	   /* parts waiting for a slot, in the order they were queued */
	uint64_t seq;		   /* jobs queued so far */
	pthread_cond_t slot;	   /* a slot was granted */
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

/* Grants free slots to the parts waiting longest (lock held). */
static void grant_slots(struct up_async *a)
{
	bool any = false;
	while (a->whead && a->sending < a->limit) {
		struct job *j = a->whead;
		a->whead = j->wnext;
		j->sending = j->had_slot = true;
		a->sending++;
		any = true;
	}
	if (any)
		pthread_cond_broadcast(&a->slot);
}

static void take_slot(struct job *j)
{
	struct up_async *a = j->a;
	pthread_mutex_lock(&a->mu);
	struct job **at = &a->whead; /* the file's order: a server hashing parts as their
				      * bodies arrive sees them in the order they are listed */
	while (*at && (*at)->seq < j->seq)
		at = &(*at)->wnext;
	j->wnext = *at;
	*at = j;
	grant_slots(a);
	while (!j->sending)
		pthread_cond_wait(&a->slot, &a->mu);
	pthread_mutex_unlock(&a->mu);
}

/* Gives the part's sending slot back (once): its body is out, or its request is over. */
static void release_slot(struct job *j)
{
	struct up_async *a = j->a;
	pthread_mutex_lock(&a->mu);
	if (j->sending) {
		j->sending = false;
		a->sending--;
		grant_slots(a);
	}
	pthread_mutex_unlock(&a->mu);
}

/* The part's source, read through the job: its first read waits for a sending slot, the
 * read of its last byte gives it back. */
static ssize_t slot_read(void *ud, uint64_t off, void *buf, size_t len)
{
	struct job *j = ud;
	if (!j->had_slot)
		take_slot(j);
	ssize_t n = up_source_pread(&j->src, off, buf, len);
	if (n > 0 && off + (uint64_t)n >= j->src.len && j->sending)
		release_slot(j);
	return n;
}

static void job_run(up_client *c, struct job *j)
{
	struct up_error err = {0};
	int rc;
	if (j->kind == J_PART) {
		struct up_part part = {0};
		struct up_source src = {.kind = UP_SRC_CB,
					.len = j->src.len,
					.read = slot_read,
					.ud = j,
					.placed = j->src.placed,
					.place = j->src.place};
		rc = up_part_add(c, j->upload_id, &src, &part, &err);
		release_slot(j);
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
	a->limit = max_in_flight;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->work, NULL);
	pthread_cond_init(&a->space, NULL);
	pthread_cond_init(&a->idle, NULL);
	pthread_cond_init(&a->slot, NULL);
	/* as many again, for the parts awaiting their answer, and creates and completes */
	unsigned nthreads = 2 * max_in_flight;
	if (!(a->threads = calloc(nthreads, sizeof *a->threads))) {
		up_async_free(a);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
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
	pthread_cond_destroy(&a->slot);
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
	while (a->queued >= a->limit && !a->stop && !on_worker(a))
		pthread_cond_wait(&a->space, &a->mu);
	if (a->stop) {
		pthread_mutex_unlock(&a->mu);
		job_free(j);
		return -ESHUTDOWN;
	}
	j->a = a;
	j->seq = a->seq++;
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
