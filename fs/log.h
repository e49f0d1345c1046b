/* log: where the daemon's lines go — stderr (-f), syslog (daemonized), or a file
 * (-o log=FILE, or cache_dir/uploadfs.log for a daemon with no syslog) that SIGHUP
 * reopens, so logrotate can move it away. */
#ifndef UF_LOG_H
#define UF_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

enum uf_level { UF_ERROR, UF_WARN, UF_INFO, UF_DEBUG };

struct uf_logger {
	pthread_mutex_t mu;
	enum { UF_TO_STDERR, UF_TO_SYSLOG, UF_TO_FILE } to;
	char *path; /* UF_TO_FILE: absolute */
	int fd;
	pthread_t hup;
	bool hup_running;
	atomic_bool stopping;
};

void uf_logger_init(struct uf_logger *lg);
/* Lines go to path (opened now, O_APPEND, mode 0600; relative to the current directory). */
int uf_logger_to_file(struct uf_logger *lg, const char *path);
/* The daemon leaves the terminal: unless a file was chosen, lines go to syslog when a
 * syslog daemon answers on /dev/log, else to the file fallback (as uf_logger_to_file).
 * Returns 0 (syslog, or the file chosen before), 1 (the fallback file), or -errno when
 * the fallback cannot be opened (lines then go to stderr, which the daemon closes). */
int uf_logger_daemonized(struct uf_logger *lg, const char *fallback);
/* With a file: SIGHUP reopens it. Blocks SIGHUP in the calling thread, so call it before
 * any other thread starts (they inherit the mask); a thread of its own waits for it. */
int uf_logger_start(struct uf_logger *lg);
int uf_logger_reopen(struct uf_logger *lg);
void uf_logger_write(struct uf_logger *lg, enum uf_level level, const char *line);
void uf_logger_close(struct uf_logger *lg);

#endif
