/* datadir: paths under the server's --data directory, the answer a disk error gets, and the
 * clock the store's records use. */
#ifndef SRV_DATADIR_H
#define SRV_DATADIR_H

#include "errors.h"

#include <stddef.h>
#include <stdint.h>

/* "<dir>/<fmt...>" into out; -ENAMETOOLONG if it does not fit. */
int srv_pathf(char *out, size_t len, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A disk error: logged, and err set to a 500 saying what could not be done. */
int srv_disk_err(struct srv_err *err, int e, const char *what);
/* Seconds since the epoch. */
int64_t srv_now(void);

#endif
