#include "mount.h"

#include <limits.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void uf_log(struct uf_mount *m, enum uf_level level, const char *fmt, ...)
{
	if (level > m->cfg.log_level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	uf_logger_write(&m->log, level, line);
}

char *uf_default_cache_dir(void)
{
	char buf[PATH_MAX];
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (getuid() == 0)
		snprintf(buf, sizeof buf, "/var/cache/uploadfs");
	else if (xdg && *xdg)
		snprintf(buf, sizeof buf, "%s/uploadfs", xdg);
	else if (home && *home)
		snprintf(buf, sizeof buf, "%s/.cache/uploadfs", home);
	else
		snprintf(buf, sizeof buf, "/tmp/uploadfs-%u", (unsigned)getuid());
	return strdup(buf);
}

int uf_no_delete(struct uf_mount *m, const char *what, const char *name, const char *file_id)
{
	if (!m->cfg.no_delete)
		return 0;
	uf_log(m, UF_WARN, "%s %s refused: it would delete %s on the server, and no_delete is set",
	       what, name, file_id && *file_id ? file_id : "a remote file");
	return -EPERM;
}
