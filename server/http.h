/* http: the server's HTTP face (libmicrohttpd) — routing, auth, request bodies, multipart
 * streaming into the store, fault injection, latency and the request log. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct srv_http;

/* What an injected fault does. */
enum srv_fail_kind {
	SRV_FAIL_MIXED,	     /* one of the below, chosen by the seeded generator */
	SRV_FAIL_500,	     /* 500 with an error envelope */
	SRV_FAIL_429,	     /* 429 with Retry-After and retry-after-ms */
	SRV_FAIL_DROP,	     /* connection closed, nothing done */
	SRV_FAIL_DROP_AFTER, /* the request takes effect, then the connection is closed */
};

struct srv_http_config {
	const struct sockaddr *addr; /* where to listen (port 0: any free port); NULL: nowhere */
	socklen_t addrlen;
	const char *api_key; /* NULL: no key required */
	double fail_rate;    /* fraction of part/complete requests that fail */
	uint64_t seed;
	unsigned fail_first; /* the first N part/complete requests fail, whatever the rate */
	enum srv_fail_kind fail_kind;
	unsigned latency_ms;
	bool no_uploads;
	uint64_t cut_downloads; /* >0: every content response ends, cut, after this many bytes */
	int log_fd; /* -1: no request log */
	uint64_t max_part_bytes;
	uint64_t max_file_bytes;
	const char *tls_cert; /* PEM text: serve HTTPS (GnuTLS); NULL: plain HTTP */
	const char *tls_key;  /* PEM text of its private key */
};

/* Starts serving; *port is the port actually bound. -EPROTO: TLS material refused, or a
 * libmicrohttpd built without TLS. */
int srv_http_start(const struct srv_http_config *cfg, struct srv_store *st, struct srv_http **out,
		   unsigned *port);
void srv_http_stop(struct srv_http *h);

/* Serves a connection made elsewhere (a socketpair: the fuzz harness). */
int srv_http_add_connection(struct srv_http *h, int fd);

#endif
