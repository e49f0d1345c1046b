/* download: a file's content as an HTTP answer — the whole of it or the Range asked for
 * (206, 416), sent from its fd with sendfile when it is one piece, read across its pieces
 * otherwise; the file stays open until the answer is sent, so the bytes of a file deleted
 * meanwhile are still served (srv_download_open). */
#ifndef SRV_DOWNLOAD_H
#define SRV_DOWNLOAD_H

#include "store.h"

#include <microhttpd.h>
#include <stdint.h>

/* Queues the content of file_id on c (*ret is MHD_queue_response's result, MHD_NO when
 * nothing could be queued) with *status 200, 206 or 416: 0. cut_at > 0 ends the body with
 * an error after that many bytes (fault injection). -1 and e when the file cannot be read
 * (not found, not downloadable): the caller answers e. */
int srv_download_answer(struct MHD_Connection *c, struct srv_store *st, const char *file_id,
			uint64_t cut_at, int *status, enum MHD_Result *ret, struct srv_err *e);

#endif
