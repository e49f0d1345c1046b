#include "mount.h"

#include <stdarg.h>
#include <stdio.h>

void uf_log(struct uf_mount *m, enum uf_level level, const char *fmt, ...)
{
	if (level == UF_DEBUG && !m->cfg.debug)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	uf_logger_write(&m->log, level, line);
}
