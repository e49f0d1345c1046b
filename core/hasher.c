#include "hasher.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING (1u << 20) /* bytes waiting for the thread, at most */

struct up_hasher {
	EVP_MD_CTX *md; /* the thread's while it runs; the caller's once it is stopped */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* bytes arrived, bytes were taken, or stop */
	char *ring;	   /* [head, head + bytes) waits for the thread */
	size_t head, bytes;
	bool stop, running;
	pthread_t thr;
};

int up_hasher_new(struct up_hasher **out)
{
	struct up_hasher *h = calloc(1, sizeof *h);
	if (!h || !(h->md = EVP_MD_CTX_new())) {
		free(h);
		return -ENOMEM;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	EVP_DigestInit_ex(h->md, EVP_md5(), NULL);
	*out = h;
	return 0;
}

void up_hasher_free(struct up_hasher *h)
{
	if (!h)
		return;
	up_hasher_stop(h);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	EVP_MD_CTX_free(h->md);
	free(h);
}

static void *hasher_main(void *arg)
{
	struct up_hasher *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->bytes && !h->stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if (!h->bytes)
			break; /* stopped, and nothing left */
		size_t pos = h->head;
		size_t n = h->bytes < RING - pos ? h->bytes : RING - pos;
		pthread_mutex_unlock(&h->mu);
		/* the caller only fills the ring past head + bytes: these bytes stay */
		EVP_DigestUpdate(h->md, h->ring + pos, n);
		pthread_mutex_lock(&h->mu);
		h->head = (pos + n) % RING;
		h->bytes -= n;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

void up_hasher_stop(struct up_hasher *h)
{
	if (!h->running)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thr, NULL);
	free(h->ring);
	h->ring = NULL;
	h->head = 0;
	h->running = false;
	h->stop = false;
}

static void start(struct up_hasher *h)
{
	if (!(h->ring = malloc(RING)))
		return; /* hashed inline instead */
	h->running = pthread_create(&h->thr, NULL, hasher_main, h) == 0;
	if (!h->running) {
		free(h->ring);
		h->ring = NULL;
	}
}

void up_hasher_update(struct up_hasher *h, const void *data, size_t n, bool threaded)
{
	const char *buf = data;
	if (threaded && !h->running)
		start(h);
	if (!threaded)
		up_hasher_stop(h);
	if (!h->running) {
		EVP_DigestUpdate(h->md, buf, n);
		return;
	}
	while (n) {
		pthread_mutex_lock(&h->mu);
		while (h->bytes == RING) /* back-pressure */
			pthread_cond_wait(&h->cv, &h->mu);
		size_t tail = (h->head + h->bytes) % RING;
		size_t room = RING - h->bytes;
		size_t k = n < room ? n : room;
		if (k > RING - tail)
			k = RING - tail;
		pthread_mutex_unlock(&h->mu);
		memcpy(h->ring + tail, buf, k); /* past what the thread may read */
		pthread_mutex_lock(&h->mu);
		h->bytes += k;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		buf += k;
		n -= k;
	}
}

void up_hasher_reset(struct up_hasher *h)
{
	up_hasher_stop(h);
	EVP_DigestInit_ex(h->md, EVP_md5(), NULL);
}

void up_hasher_hex(struct up_hasher *h, char out[33])
{
	up_hasher_stop(h);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(h->md, d, &n);
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}
