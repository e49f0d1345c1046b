/* What the commands of filecmds.c and transfer.c share: one command's options and client,
 * the common flags, messages and JSON. */
#ifndef UF_FILECMD_IMPL_H
#define UF_FILECMD_IMPL_H

#include "uploadfs.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>

struct uf_cmd {
	const char *name;      /* "put", "ls", ... */
	struct up_config cfg;  /* NULL fields: the environment's, as for the mount */
	const char *cache_dir; /* put's resume records and stdin spool; NULL: the mount's default */
	bool json, quiet, bad;
	up_client *client; /* owned; freed by uf_files_main */
};

enum {
	UF_OPT_API_BASE = 1000,
	UF_OPT_KEY_FILE,
	UF_OPT_CA_FILE,
	UF_OPT_CACHE_DIR,
	UF_OPT_RETRIES,
	UF_OPT_TIMEOUT,
	UF_OPT_RETRY_WINDOW,
	UF_OPT_JSON,
	UF_OPT_QUIET = 'q',
};

#define UF_COMMON_OPTIONS                                                                          \
	{"api-base", required_argument, NULL, UF_OPT_API_BASE},                                    \
	    {"api-key-file", required_argument, NULL, UF_OPT_KEY_FILE},                            \
	    {"ca-file", required_argument, NULL, UF_OPT_CA_FILE},                                  \
	    {"cache-dir", required_argument, NULL, UF_OPT_CACHE_DIR},                              \
	    {"retries", required_argument, NULL, UF_OPT_RETRIES},                                  \
	    {"timeout", required_argument, NULL, UF_OPT_TIMEOUT},                                  \
	    {"retry-window", required_argument, NULL, UF_OPT_RETRY_WINDOW},                        \
	    {"json", no_argument, NULL, UF_OPT_JSON}, {"quiet", no_argument, NULL, UF_OPT_QUIET}

/* Takes a common flag (true), or leaves it (false); a bad value sets cmd->bad. */
bool uf_cmd_common_opt(struct uf_cmd *cmd, int opt, const char *arg);
const char *uf_cmd_common_help(void);
/* Makes cmd->client: 0, or 1 after saying why on stderr. */
int uf_cmd_connect(struct uf_cmd *cmd);
/* "uploadfs CMD: WHAT: message (HTTP n)" on stderr; returns 1 (the exit status). */
int uf_cmd_fail(const struct uf_cmd *cmd, const char *what, int rc, const struct up_error *e);
/* A usage error with a pointer to --help; returns 2. */
int uf_cmd_usage(const struct uf_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
json_object *uf_cmd_file_json(const struct up_file *f);
/* Prints o on a line of stdout and releases it. */
void uf_cmd_print_json(json_object *o);

/* transfer.c */
int uf_cmd_put(struct uf_cmd *cmd, int argc, char **argv);
int uf_cmd_get(struct uf_cmd *cmd, int argc, char **argv);

#endif
