/* args: the mount's command line as users type it. The long flags (--foreground,
 * --cache-dir DIR, --log-level=L, ...) become the -o forms libfuse parses, and any option
 * neither uploadfs nor libfuse knows is refused here, before anything else runs: no
 * network, no DNS. Owns the rewritten argument vector; nothing else. */
#ifndef UF_ARGS_H
#define UF_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct uf_args {
	int argc;
	char **argv; /* argv[0] is the program; each string owned */
};

/* Rewrites argv's long flags into their -o forms. On an unknown flag or a missing value,
 * writes one line saying which into why and returns -EINVAL; -ENOMEM. */
int uf_args_normalize(int argc, char **argv, struct uf_args *out, char *why, size_t len);
void uf_args_free(struct uf_args *a);

/* Whether arg, an option libfuse's parser handed back unmatched by uploadfs's own table
 * (a flag such as "-f", or one -o item such as "nosuid" or "max_read=4096"), is one that
 * libfuse takes (its command line and mount options). */
bool uf_args_fuse_known(const char *arg);

/* The line for an option no one knows. */
void uf_args_unknown(const char *arg, char *why, size_t len);

#endif
