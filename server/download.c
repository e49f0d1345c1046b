#include "download.h"

#include "content.h"
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One answer's reader: its file held open (srv_download_open) until the answer is sent. */
struct reading {
	struct srv_store *st;
	struct srv_download d;
	uint64_t start;	  /* the first byte sent (a range) */
	uint64_t cut_at; /* 0: never; else the body ends with an error after this many bytes */
};

static ssize_t read_content(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reading *rd = cls;
	if (rd->cut_at) {
		if (pos >= rd->cut_at)
			return MHD_CONTENT_READER_END_WITH_ERROR; /* injected: a lost connection */
		if (max > rd->cut_at - pos)
			max = (size_t)(rd->cut_at - pos);
	}
	ssize_t n = srv_content_pread(rd->d.content, buf, max, rd->start + pos);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0) {
		fprintf(stderr, "uploadfs-server: read a file: %s\n", strerror((int)-n));
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return n;
}

static void end_reading(void *cls)
{
	struct reading *rd = cls;
	srv_download_close(rd->st, &rd->d);
	srv_store_reap(rd->st); /* the content of a file deleted while it was read */
	free(rd);
}

int srv_download_answer(struct MHD_Connection *c, struct srv_store *st, const char *file_id,
			uint64_t cut_at, int *status, enum MHD_Result *ret, struct srv_err *e)
{
	struct reading *rd = calloc(1, sizeof *rd);
	*ret = MHD_NO;
	if (!rd)
		return 0;
	rd->st = st;
	if (srv_download_open(rd->st, file_id, &rd->d, e) < 0) {
		free(rd);
		return -1;
	}
	uint64_t size = srv_content_bytes(rd->d.content), a = 0, b = size ? size - 1 : 0;
	int ranged = srv_parse_range(
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE), size, &a, &b);
	char cr[96];
	if (ranged < 0) {
		end_reading(rd);
		struct MHD_Response *resp =
		    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return 0;
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		*status = 416;
		*ret = MHD_queue_response(c, 416, resp);
		MHD_destroy_response(resp);
		return 0;
	}
	uint64_t len = ranged ? b - a + 1 : size;
	rd->start = ranged ? a : 0;
	rd->cut_at = cut_at;
	/* One piece is sent from its fd with sendfile: no copy through this process. */
	int fd = rd->cut_at ? -1 : srv_content_one_fd(rd->d.content);
	struct MHD_Response *resp;
	if (fd >= 0) {
		end_reading(rd);
		resp = MHD_create_response_from_fd_at_offset64(len, fd, (int64_t)(ranged ? a : 0));
		if (!resp)
			close(fd);
	} else {
		resp = MHD_create_response_from_callback(len, 256 << 10, read_content, rd,
							 end_reading);
		if (!resp)
			end_reading(rd);
	}
	if (!resp)
		return 0;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (ranged) {
		snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)a,
			 (unsigned long long)b, (unsigned long long)size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	*status = ranged ? 206 : 200;
	*ret = MHD_queue_response(c, (unsigned)*status, resp);
	MHD_destroy_response(resp);
	return 0;
}
