#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <paths.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

void uf_logger_init(struct uf_logger *lg)
{
	memset(lg, 0, sizeof *lg);
	pthread_mutex_init(&lg->mu, NULL);
	lg->to = UF_TO_STDERR;
	lg->fd = -1;
}

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	return fd < 0 ? -errno : fd;
}

int uf_logger_to_file(struct uf_logger *lg, const char *path)
{
	char abs[PATH_MAX];
	if (path[0] != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			return -errno;
		if (snprintf(abs, sizeof abs, "%s/%s", cwd, path) >= (int)sizeof abs)
			return -ENAMETOOLONG;
		path = abs; /* the daemon changes to / */
	}
	int fd = open_log(path);
	if (fd < 0)
		return fd;
	char *p = strdup(path);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	lg->path = p;
	lg->fd = fd;
	lg->to = UF_TO_FILE;
	return 0;
}

/* Whether a syslog daemon listens on /dev/log (datagram or stream, as syslog(3) tries). */
static bool syslog_answers(void)
{
	static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", _PATH_LOG);
	for (size_t i = 0; i < 2; i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
		close(fd);
		if (rc == 0)
			return true;
	}
	return false;
}

int uf_logger_daemonized(struct uf_logger *lg, const char *fallback)
{
	if (lg->to == UF_TO_FILE)
		return 0;
	if (!syslog_answers()) {
		int rc = uf_logger_to_file(lg, fallback);
		return rc < 0 ? rc : 1;
	}
	openlog("uploadfs", LOG_PID, LOG_DAEMON);
	lg->to = UF_TO_SYSLOG;
	return 0;
}

int uf_logger_reopen(struct uf_logger *lg)
{
	if (lg->to != UF_TO_FILE)
		return 0;
	int fd = open_log(lg->path);
	if (fd < 0)
		return fd; /* keep writing to the old one */
	pthread_mutex_lock(&lg->mu);
	int old = lg->fd;
	lg->fd = fd;
	pthread_mutex_unlock(&lg->mu);
	close(old);
	return 0;
}

static void *hup_main(void *arg)
{
	struct uf_logger *lg = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0 || atomic_load(&lg->stopping))
			break;
		int rc = uf_logger_reopen(lg);
		uf_logger_write(lg, rc < 0 ? UF_ERROR : UF_INFO,
				rc < 0 ? "SIGHUP: cannot reopen the log file; still writing to the "
					 "old one"
				       : "SIGHUP: log file reopened");
	}
	return NULL;
}

int uf_logger_start(struct uf_logger *lg)
{
	if (lg->to != UF_TO_FILE)
		return 0; /* SIGHUP keeps libfuse's meaning: unmount */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rc == 0)
		rc = pthread_create(&lg->hup, NULL, hup_main, lg);
	if (rc != 0)
		return -rc;
	lg->hup_running = true;
	return 0;
}

void uf_logger_write(struct uf_logger *lg, enum uf_level level, const char *line)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	if (lg->to == UF_TO_SYSLOG) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
		syslog(prio[level], "%s", line);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char buf[1200];
	int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ uploadfs %s: %s\n",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, names[level], line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf) {
		n = sizeof buf - 1;
		buf[n - 1] = '\n';
	}
	/* one write per line: lines from many threads never interleave */
	pthread_mutex_lock(&lg->mu);
	ssize_t w = write(lg->to == UF_TO_FILE ? lg->fd : STDERR_FILENO, buf, (size_t)n);
	pthread_mutex_unlock(&lg->mu);
	(void)w; /* nowhere left to report a failed log write */
}

void uf_logger_close(struct uf_logger *lg)
{
	if (lg->hup_running) {
		atomic_store(&lg->stopping, true);
		pthread_kill(lg->hup, SIGHUP);
		pthread_join(lg->hup, NULL);
		lg->hup_running = false;
	}
	if (lg->to == UF_TO_SYSLOG)
		closelog();
	if (lg->fd >= 0)
		close(lg->fd);
	free(lg->path);
	pthread_mutex_destroy(&lg->mu);
}
