/* libFuzzer: whole HTTP requests — request line, headers, JSON and multipart bodies — into the
 * real server (libmicrohttpd, routing, auth, the multipart iterator, the store), through a
 * socketpair handed to a daemon that listens nowhere. */
#include "http.h"
#include "store.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/uploadfs-fuzz-http-XXXXXX";

static void cleanup(void)
{
	char cmd[80];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static struct srv_http *server(void)
{
	static struct srv_http *h;
	if (h)
		return h;
	struct srv_limits lim = {.max_part_bytes = 1 << 20,
				 .max_upload_bytes = 1 << 24,
				 .max_file_bytes = 1 << 20,
				 .expire_seconds = 3600};
	struct srv_err err;
	struct srv_store *st;
	if (!mkdtemp(dir) || srv_store_open(dir, &lim, &st, &err) < 0)
		abort();
	atexit(cleanup);
	struct srv_http_config cfg = {.log_fd = -1,
				      .max_part_bytes = lim.max_part_bytes,
				      .max_file_bytes = lim.max_file_bytes};
	unsigned port;
	if (srv_http_start(&cfg, st, &h, &port) < 0)
		abort();
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_http *h = server();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (srv_http_add_connection(h, sv[1]) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	/* the server reads while we write; a large input must not fill the socket buffer
	 * before it does */
	for (size_t off = 0; off < size;) {
		ssize_t n = write(sv[0], data + off, size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sv[0], SHUT_WR);
	char buf[65536];
	struct pollfd p = {.fd = sv[0], .events = POLLIN};
	while (poll(&p, 1, 2000) > 0 && read(sv[0], buf, sizeof buf) > 0)
		;
	close(sv[0]);
	return 0;
}
