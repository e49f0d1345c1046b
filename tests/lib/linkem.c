/* linkem: a TCP proxy that behaves like a far link, for the benchmarks and tests. Every
 * connection it accepts on 127.0.0.1 goes to the upstream port through two one-way pipes,
 * each delaying every byte by --delay-ms and pacing it to --rate bytes per second (a
 * per-connection cap, as a long path's window or a shaper gives); --cut N resets every
 * Nth connection after --cut-after bytes from the client (a lost link).
 *
 *   linkem --upstream PORT [--listen PORT] [--delay-ms MS] [--rate BYTES/S]
 *          [--cut N --cut-after BYTES]
 *
 * Prints "listening on 127.0.0.1:PORT" once ready. One thread, epoll; each pipe holds at
 * most max(rate x delay x 2, 1 MiB) in flight and stops reading beyond, so the sender's
 * TCP window feels the link as it would. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64u << 10)

struct chunk {
	struct chunk *next;
	double due; /* when its last byte reaches the other end */
	size_t len, off;
	char data[];
};

/* One direction of a connection: bytes read from `from`, written to `to` when due. */
struct pipe {
	int from, to;
	struct chunk *head, *tail;
	size_t queued;
	double free_at; /* when the paced link is free for the next byte */
	bool eof;	/* `from` is done: shut `to` down once the queue is empty */
	bool shut;
};

struct conn {
	struct pipe up, down; /* client -> upstream, upstream -> client */
	uint64_t from_client;
	uint64_t cut_at; /* 0: never */
	bool dead;
};

struct opts {
	int upstream, listen;
	double delay, rate;
	unsigned cut;
	uint64_t cut_after;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t window(const struct opts *o)
{
	double w = o->rate > 0 ? o->rate * o->delay * 2 : 0;
	return w > (1u << 20) ? (size_t)w : (1u << 20);
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void watch(int ep, int fd, uint32_t ev, void *ptr)
{
	struct epoll_event e = {.events = ev, .data.ptr = ptr};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) < 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

/* The fds of a connection are watched with the connection as their pointer; which end
 * is ready is found by trying both. */
static void rearm(int ep, struct conn *c, const struct opts *o)
{
	size_t w = window(o);
	uint32_t client = 0, server = 0;
	if (!c->up.eof && c->up.queued < w)
		client |= EPOLLIN;
	if (!c->down.eof && c->down.queued < w)
		server |= EPOLLIN;
	if (c->down.head && c->down.head->due <= now_s())
		client |= EPOLLOUT;
	if (c->up.head && c->up.head->due <= now_s())
		server |= EPOLLOUT;
	watch(ep, c->up.from, client, c);
	watch(ep, c->up.to, server, c);
}

static void conn_free(int ep, struct conn *c)
{
	struct pipe *ps[2] = {&c->up, &c->down};
	for (int i = 0; i < 2; i++)
		for (struct chunk *k = ps[i]->head, *n; k; k = n) {
			n = k->next;
			free(k);
		}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->up.from, NULL);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->up.to, NULL);
	close(c->up.from);
	close(c->up.to);
	free(c);
}

/* Reads what `from` has (up to the window) into timed chunks. -1: the connection ends. */
static int pull(struct pipe *p, const struct opts *o, struct conn *c, bool client_side)
{
	size_t w = window(o);
	while (!p->eof && p->queued < w) {
		struct chunk *k = malloc(sizeof *k + CHUNK);
		if (!k)
			return -1;
		ssize_t n = read(p->from, k->data, CHUNK);
		if (n < 0) {
			free(k);
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		}
		if (n == 0) {
			free(k);
			p->eof = true;
			break;
		}
		double t = now_s();
		double start = p->free_at > t ? p->free_at : t;
		p->free_at = start + (o->rate > 0 ? (double)n / o->rate : 0);
		*k = (struct chunk){.due = p->free_at + o->delay, .len = (size_t)n};
		if (p->tail)
			p->tail->next = k;
		else
			p->head = k;
		p->tail = k;
		p->queued += (size_t)n;
		if (client_side) {
			c->from_client += (uint64_t)n;
			if (c->cut_at && c->from_client >= c->cut_at)
				return -1; /* the link is lost: both ends get a reset */
		}
	}
	return 0;
}

/* Writes the chunks that are due. -1: the connection ends. */
static int push(struct pipe *p)
{
	double t = now_s();
	while (p->head && p->head->due <= t) {
		struct chunk *k = p->head;
		ssize_t n = write(p->to, k->data + k->off, k->len - k->off);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		k->off += (size_t)n;
		p->queued -= (size_t)n;
		if (k->off < k->len)
			return 0;
		p->head = k->next;
		if (!p->head)
			p->tail = NULL;
		free(k);
	}
	if (p->eof && !p->head && !p->shut) {
		shutdown(p->to, SHUT_WR);
		p->shut = true;
	}
	return 0;
}

static void reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--upstream") == 0)
			o.upstream = atoi(v);
		else if (strcmp(k, "--listen") == 0)
			o.listen = atoi(v);
		else if (strcmp(k, "--delay-ms") == 0)
			o.delay = atof(v) / 1000.0;
		else if (strcmp(k, "--rate") == 0)
			o.rate = atof(v);
		else if (strcmp(k, "--cut") == 0)
			o.cut = (unsigned)atoi(v);
		else if (strcmp(k, "--cut-after") == 0)
			o.cut_after = strtoull(v, NULL, 10);
		else {
			fprintf(stderr, "linkem: unknown option %s\n", k);
			return 2;
		}
	}
	if (o.upstream <= 0) {
		fprintf(stderr, "usage: linkem --upstream PORT [--listen PORT] [--delay-ms MS] "
				"[--rate BYTES/S] [--cut N --cut-after BYTES]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.listen)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &al) < 0 || nonblock(ls) < 0) {
		perror("linkem: listen");
		return 1;
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
	fflush(stdout);
	int ep = epoll_create1(0);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &le);
	struct conn **all = NULL;
	size_t nall = 0;
	unsigned accepted = 0;
	for (;;) {
		/* the next chunk due decides how long to sleep */
		double next = -1, t = now_s();
		for (size_t i = 0; i < nall; i++) {
			struct pipe *ps[2] = {&all[i]->up, &all[i]->down};
			for (int d = 0; d < 2; d++)
				if (ps[d]->head && (next < 0 || ps[d]->head->due < next))
					next = ps[d]->head->due;
		}
		int timeout = next < 0 ? -1 : next <= t ? 0 : (int)((next - t) * 1000) + 1;
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				continue; /* connections are served below, all of them */
			int cfd;
			while ((cfd = accept(ls, NULL, NULL)) >= 0) {
				int sfd = socket(AF_INET, SOCK_STREAM, 0);
				struct sockaddr_in u = {.sin_family = AF_INET,
							.sin_port = htons((uint16_t)o.upstream)};
				u.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
				struct conn *c = calloc(1, sizeof *c);
				struct conn **na = c ? realloc(all, (nall + 1) * sizeof *na) : NULL;
				if (!na || connect(sfd, (struct sockaddr *)&u, sizeof u) < 0) {
					free(c);
					close(cfd);
					close(sfd);
					continue;
				}
				all = na;
				setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				nonblock(cfd);
				nonblock(sfd);
				c->up = (struct pipe){.from = cfd, .to = sfd};
				c->down = (struct pipe){.from = sfd, .to = cfd};
				accepted++;
				if (o.cut && accepted % o.cut == 0)
					c->cut_at = o.cut_after ? o.cut_after : 1;
				all[nall++] = c;
				rearm(ep, c, &o);
			}
		}
		/* every connection: read what is there, write what is due */
		for (size_t i = 0; i < nall;) {
			struct conn *c = all[i];
			bool end = pull(&c->up, &o, c, true) < 0 || pull(&c->down, &o, c, false) < 0 ||
				   push(&c->up) < 0 || push(&c->down) < 0;
			if (c->cut_at && c->from_client >= c->cut_at) {
				reset(c->up.from);
				reset(c->up.to);
				end = true;
			}
			end = end || (c->up.shut && c->down.shut);
			if (end) {
				conn_free(ep, c);
				all[i] = all[--nall];
				continue;
			}
			rearm(ep, c, &o);
			i++;
		}
	}
}
