/* fixture: a real uploadfs-server on a free loopback port for a C test, with its own data
 * directory. The server binary comes from $UPLOADFS_SERVER (set by meson test). */
#ifndef UP_FIXTURE_H
#define UP_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct fixture {
	pid_t pid;
	char base[128];
	char dir[64];
};

/* Servers still running when the test exits (a failed CHECK skips fixture_stop). */
static pid_t fixture_pids[64];

static inline void fixture_reap(void)
{
	for (size_t i = 0; i < 64; i++)
		if (fixture_pids[i] > 0) {
			kill(fixture_pids[i], SIGKILL);
			waitpid(fixture_pids[i], NULL, 0);
			fixture_pids[i] = 0;
		}
}

/* Starts the server with the given extra flags (NULL-terminated). */
static inline int fixture_start(struct fixture *f, ...)
{
	const char *server = getenv("UPLOADFS_SERVER");
	if (!server)
		return -ENOENT;
	snprintf(f->dir, sizeof f->dir, "/tmp/uploadfs-fixture-XXXXXX");
	if (!mkdtemp(f->dir))
		return -errno;
	char data[128];
	snprintf(data, sizeof data, "%s/data", f->dir);
	const char *argv[32] = {server, "--listen", "127.0.0.1:0", "--data", data};
	int n = 5;
	va_list ap;
	va_start(ap, f);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = a;
	va_end(ap);
	int fds[2];
	if (pipe(fds) < 0)
		return -errno;
	char errlog[128];
	snprintf(errlog, sizeof errlog, "%s/server.log", f->dir);
	static bool registered;
	if (!registered && atexit(fixture_reap) == 0)
		registered = true;
	f->pid = fork();
	if (f->pid == 0) {
		dup2(fds[1], 1);
		int e = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (e >= 0)
			dup2(e, 2);
		close(fds[0]);
		execv(server, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (size_t i = 0; i < 64; i++)
		if (fixture_pids[i] == 0) {
			fixture_pids[i] = f->pid;
			break;
		}
	FILE *in = fdopen(fds[0], "r");
	char line[256] = "";
	int rc = fgets(line, sizeof line, in) && sscanf(line, "listening on %127s", f->base) == 1
		     ? 0
		     : -EIO;
	fclose(in);
	return rc;
}

/* Stops the server; if it did not exit cleanly (a sanitizer report, a crash), its log is
 * printed as TAP comments, where tests/run-all.sh looks for sanitizer reports. */
static inline void fixture_stop(struct fixture *f)
{
	if (f->pid > 0) {
		int st = 0;
		kill(f->pid, SIGTERM);
		waitpid(f->pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			char cmd[160];
			printf("# uploadfs-server exited with status %d:\n", st);
			fflush(stdout);
			snprintf(cmd, sizeof cmd, "sed 's/^/# /' '%s/server.log'", f->dir);
			if (system(cmd) != 0)
				printf("# (no server log)\n");
		}
		for (size_t i = 0; i < 64; i++)
			if (fixture_pids[i] == f->pid)
				fixture_pids[i] = 0;
		f->pid = 0;
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove %s\n", f->dir);
}

#endif
