#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A long flag and the -o item (or short flag) it stands for; value: it takes one. */
struct flag {
	const char *name, *to;
	bool value;
};

static const struct flag flags[] = {
    {"--foreground", "-f", false},   {"--debug", "-d", false},
    {"--allow-other", "allow_other", false}, {"--read-only", "ro", false},
    {"--cache-dir", "cache_dir=", true},     {"--log-file", "log=", true},
    {"--log-level", "log_level=", true},
};

/* Flags libfuse's own parser takes, kept as they are. */
static const char *const passed[] = {"-f", "-d", "-s", "-h", "-V", "--help", "--version"};

void uf_args_free(struct uf_args *a)
{
	for (int i = 0; a->argv && i < a->argc; i++)
		free(a->argv[i]);
	free(a->argv);
	a->argv = NULL;
	a->argc = 0;
}

static int push(struct uf_args *a, const char *s)
{
	char *c = strdup(s);
	if (!c)
		return -ENOMEM;
	a->argv[a->argc++] = c;
	a->argv[a->argc] = NULL;
	return 0;
}

/* "-o" and "name=value" with the commas and backslashes of value escaped (libfuse splits
 * -o on commas). */
static int push_opt(struct uf_args *a, const char *to, const char *value)
{
	size_t n = strlen(to) + 2 * strlen(value) + 1;
	char *s = malloc(n);
	if (!s)
		return -ENOMEM;
	char *p = s + sprintf(s, "%s", to);
	for (const char *v = value; *v; v++) {
		if (*v == ',' || *v == '\\')
			*p++ = '\\';
		*p++ = *v;
	}
	*p = '\0';
	int rc = push(a, "-o");
	if (rc == 0)
		rc = push(a, s);
	free(s);
	return rc;
}

void uf_args_unknown(const char *arg, char *why, size_t len)
{
	snprintf(why, len, "unknown option %s%s (uploadfs --help lists the options)",
		 arg[0] == '-' ? "" : "-o ", arg);
}

static int one(struct uf_args *a, int argc, char **argv, int *i, char *why, size_t len)
{
	const char *arg = argv[*i];
	for (size_t k = 0; k < sizeof passed / sizeof passed[0]; k++)
		if (strcmp(arg, passed[k]) == 0)
			return push(a, arg);
	if (strncmp(arg, "-o", 2) == 0) {
		if (arg[2])
			return push(a, arg);
		if (*i + 1 >= argc) {
			snprintf(why, len, "-o needs a value (uploadfs --help lists the options)");
			return -EINVAL;
		}
		int rc = push(a, arg);
		return rc < 0 ? rc : push(a, argv[++*i]);
	}
	for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
		const struct flag *f = &flags[k];
		size_t n = strlen(f->name);
		if (strncmp(arg, f->name, n) != 0 || (arg[n] && arg[n] != '='))
			continue;
		if (!f->value) {
			if (arg[n]) {
				snprintf(why, len, "%s takes no value (uploadfs --help)", f->name);
				return -EINVAL;
			}
			return f->to[0] == '-' ? push(a, f->to) : push_opt(a, f->to, "");
		}
		const char *v = arg[n] == '=' ? arg + n + 1 : *i + 1 < argc ? argv[++*i] : NULL;
		if (!v || !*v) {
			snprintf(why, len, "%s needs a value (uploadfs --help)", f->name);
			return -EINVAL;
		}
		return push_opt(a, f->to, v);
	}
	uf_args_unknown(arg, why, len);
	return -EINVAL;
}

int uf_args_normalize(int argc, char **argv, struct uf_args *out, char *why, size_t len)
{
	/* a long flag with a value may become two strings: at most twice as many */
	out->argc = 0;
	out->argv = calloc(2 * (size_t)argc + 2, sizeof *out->argv);
	if (!out->argv)
		return -ENOMEM;
	int rc = argc > 0 ? push(out, argv[0]) : push(out, "uploadfs");
	bool rest = false; /* after "--": every argument is a name */
	for (int i = 1; rc == 0 && i < argc; i++) {
		const char *arg = argv[i];
		if (rest || arg[0] != '-' || arg[1] == '\0')
			rc = push(out, arg);
		else if (strcmp(arg, "--") == 0)
			rest = true, rc = push(out, arg);
		else
			rc = one(out, argc, argv, &i, why, len);
	}
	if (rc < 0)
		uf_args_free(out);
	return rc;
}

/* libfuse 3's command line (fuse_parse_cmdline), session (fuse_session_new) and mount
 * options (mount.c): a name alone, or a prefix that ends with '='. */
static const char *const fuse_opts[] = {
    "-h", "--help", "-V", "--version", "-d", "--debug", "debug", "-f", "-s", "clone_fd",
    "max_idle_threads=", "max_threads=", "fsname=", "subtype=", "allow_root", "allow_other",
    "blkdev", "auto_unmount", "max_read=", "blksize=", "default_permissions", "context=",
    "fscontext=", "defcontext=", "rootcontext=", "user=", "-n", "-r", "ro", "rw", "suid",
    "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync", "dirsync", "atime",
    "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
    "nostrictatime", "lazytime", "nolazytime", "symfollow", "nosymfollow",
};

bool uf_args_fuse_known(const char *arg)
{
	for (size_t k = 0; k < sizeof fuse_opts / sizeof fuse_opts[0]; k++) {
		const char *o = fuse_opts[k];
		size_t n = strlen(o);
		if (o[n - 1] == '=' ? strncmp(arg, o, n) == 0 : strcmp(arg, o) == 0)
			return true;
	}
	return false;
}
