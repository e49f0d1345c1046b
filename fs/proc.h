/* proc: what /proc tells about the process that called an operation — its thread group,
 * its name, whether it can still write a file of the mount, and the size of the file it is copying
 * from. Reads only; never follows a link into a filesystem that could call back into us. */
#ifndef UF_PROC_H
#define UF_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The thread group (process) of a thread id, as FUSE gives the caller's; pid if unknown. */
pid_t uf_proc_tgid(pid_t pid);

/* Whether process tgid, or one of its descendants (a forked job holds the descriptors it
 * inherited), can still write the file at path (absolute, in the mount): a descriptor open
 * for writing on it, or a shared writable mapping of it. /proc/PID/fd, fdinfo, maps and
 * task/TID/children never call into FUSE. */
bool uf_proc_can_write(pid_t tgid, const char *path);

/* Whether process pid's command name (/proc/PID/comm) is comm. */
bool uf_proc_is(pid_t pid, const char *comm);

/* The size of the file process pid is copying into a new file called name: cp, install,
 * mv across filesystems and dd open their source, read-only, before they create the target.
 * The candidates are the process's regular files open read-only at offset 0 on a local
 * filesystem (never FUSE or a network filesystem, whose stat could block or come back to
 * this mount), larger than min. The one whose name is name wins; else a single candidate;
 * else there is no answer. Returns 0 and the size, or -ENOENT (no answer) or -errno. */
int uf_proc_source_size(pid_t pid, const char *name, uint64_t min, uint64_t *size);

#endif
