#include "filecmds.h"

#include "filecmd_impl.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool uf_files_is_command(const char *name)
{
	static const char *const names[] = {"put", "ls", "rm", "get", "cancel"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/* ---- what every command shares: the server, the key, the messages ---- */

static void to_stderr(void *ud, enum up_log_level level, const char *line)
{
	const struct uf_cmd *cmd = ud;
	fprintf(stderr, "uploadfs %s: %s%s\n", cmd->name, level == UP_LOG_ERROR ? "error: " : "",
		line);
}

int uf_cmd_fail(const struct uf_cmd *cmd, const char *what, int rc, const struct up_error *e)
{
	if (e && e->message[0] && e->status)
		fprintf(stderr, "uploadfs %s: %s: %s (HTTP %d)\n", cmd->name, what, e->message,
			e->status);
	else if (e && e->message[0])
		fprintf(stderr, "uploadfs %s: %s: %s\n", cmd->name, what, e->message);
	else
		fprintf(stderr, "uploadfs %s: %s: %s\n", cmd->name, what, strerror(-rc));
	return 1;
}

int uf_cmd_usage(const struct uf_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "uploadfs %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (uploadfs %s --help)\n", cmd->name);
	return 2;
}

bool uf_cmd_common_opt(struct uf_cmd *cmd, int opt, const char *arg)
{
	uint64_t v;
	switch (opt) {
	case UF_OPT_API_BASE:
		cmd->cfg.api_base = arg;
		return true;
	case UF_OPT_KEY_FILE:
		cmd->cfg.api_key_file = arg;
		return true;
	case UF_OPT_CA_FILE:
		cmd->cfg.ca_file = arg;
		return true;
	case UF_OPT_CACHE_DIR:
		cmd->cache_dir = arg;
		return true;
	case UF_OPT_RETRIES:
		if (up_parse_u64(arg, &v) < 0 || v > 100) {
			cmd->bad = true;
			uf_cmd_usage(cmd, "--retries: '%s' is not a count from 0 to 100", arg);
		} else {
			cmd->cfg.retries = v ? (int)v : UP_NO_RETRIES;
		}
		return true;
	case UF_OPT_TIMEOUT:
		if (up_parse_u64(arg, &v) < 0 || v == 0 || v > 86400) {
			cmd->bad = true;
			uf_cmd_usage(cmd, "--timeout: '%s' is not a number of seconds", arg);
		} else {
			cmd->cfg.timeout = (unsigned)v;
		}
		return true;
	case UF_OPT_RETRY_WINDOW:
		if (up_parse_u64(arg, &v) < 0 || v > 86400) {
			cmd->bad = true;
			uf_cmd_usage(cmd, "--retry-window: '%s' is not a number of seconds", arg);
		} else {
			cmd->cfg.retry_window = v ? (int)v : UP_NO_RETRIES;
		}
		return true;
	case UF_OPT_JSON:
		cmd->json = true;
		return true;
	case UF_OPT_QUIET:
		cmd->quiet = true;
		return true;
	}
	return false;
}

const char *uf_cmd_common_help(void)
{
	return "  --api-base URL         base URL ending in /v1 ($OPENAI_BASE_URL; with\n"
	       "                         $PORTKEY_API_KEY, Portkey's; else OpenAI's)\n"
	       "  --api-key-file PATH    file with the key, mode 0600 ($OPENAI_API_KEY)\n"
	       "  --ca-file PATH         CA certificates to verify the server with\n"
	       "  --retries N            retries of a failed request (5)\n"
	       "  --timeout SECONDS      stall timeout of a request (60)\n"
	       "  --retry-window SECONDS how long an upload's request is retried while the\n"
	       "                         server is away, past the retries (300; 0: none)\n"
	       "  --json                 JSON on stdout, for scripts\n"
	       "  -q, --quiet            no progress or notes on stderr\n"
	       "The environment and key rules are the mount's: see uploadfs(1).\n";
}

int uf_cmd_connect(struct uf_cmd *cmd)
{
	cmd->cfg.log = to_stderr;
	cmd->cfg.log_ud = cmd;
	cmd->cfg.log_level = cmd->quiet ? UP_LOG_ERROR : UP_LOG_WARN;
	struct up_error err;
	int rc = up_client_new(&cmd->cfg, &cmd->client, &err);
	if (rc < 0)
		return uf_cmd_fail(cmd, "cannot use the server", rc, &err);
	return 0;
}

json_object *uf_cmd_file_json(const struct up_file *f)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(f->id));
	json_object_object_add(o, "object", json_object_new_string("file"));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)f->bytes));
	json_object_object_add(o, "created_at", json_object_new_int64(f->created_at));
	json_object_object_add(o, "filename", json_object_new_string(f->filename ? f->filename : ""));
	json_object_object_add(o, "purpose", json_object_new_string(f->purpose));
	if (f->status[0])
		json_object_object_add(o, "status", json_object_new_string(f->status));
	if (f->expires_at)
		json_object_object_add(o, "expires_at", json_object_new_int64(f->expires_at));
	return o;
}

void uf_cmd_print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ---- ls ---- */

static int cmd_ls(struct uf_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
	    UF_COMMON_OPTIONS, {"purpose", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *purpose = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "hqp:", opts, NULL)) != -1) {
		if (uf_cmd_common_opt(cmd, opt, optarg))
			continue;
		if (opt == 'p') {
			purpose = optarg;
		} else if (opt == 'h') {
			printf("usage: uploadfs ls [--purpose P] [--json] [options]\n"
			       "The remote files, newest first: id, bytes, created, purpose, name.\n\n%s",
			       uf_cmd_common_help());
			return 0;
		} else {
			return uf_cmd_usage(cmd, "unknown option");
		}
	}
	if (cmd->bad)
		return 2;
	if (optind < argc)
		return uf_cmd_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (uf_cmd_connect(cmd))
		return 1;
	struct up_list_query q = {.purpose = purpose};
	struct up_file_list l = {0};
	struct up_error err;
	int rc = up_files_list(cmd->client, &q, &l, &err);
	if (rc < 0)
		return uf_cmd_fail(cmd, "listing the files", rc, &err);
	if (cmd->json) {
		json_object *a = json_object_new_array_ext((int)l.n);
		for (size_t i = 0; i < l.n; i++)
			json_object_array_add(a, uf_cmd_file_json(&l.files[i]));
		uf_cmd_print_json(a);
	}
	for (size_t i = 0; !cmd->json && i < l.n; i++) {
		const struct up_file *f = &l.files[i];
		char when[32] = "-";
		time_t t = (time_t)f->created_at;
		struct tm tm;
		if (localtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
		printf("%-32s %12llu  %s  %-10s %s\n", f->id, (unsigned long long)f->bytes, when,
		       f->purpose, f->filename ? f->filename : "");
	}
	up_file_list_clear(&l);
	return 0;
}

/* ---- rm and cancel: ids on the command line ---- */

/* The flags of a command that takes only ids, then the client: -1 to go on (ids from
 * optind), else the exit status (--help, a usage error, no connection). */
static int ids_command(struct uf_cmd *cmd, int argc, char **argv, const char *usage,
		       const char *what)
{
	static const struct option opts[] = {UF_COMMON_OPTIONS, {"help", no_argument, NULL, 'h'}, {0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		if (uf_cmd_common_opt(cmd, opt, optarg))
			continue;
		if (opt == 'h') {
			printf("%s\n%s", usage, uf_cmd_common_help());
			return 0;
		}
		return uf_cmd_usage(cmd, "unknown option");
	}
	if (cmd->bad)
		return 2;
	if (optind >= argc)
		return uf_cmd_usage(cmd, "no %s given", what);
	return uf_cmd_connect(cmd) ? 1 : -1;
}

static int cmd_rm(struct uf_cmd *cmd, int argc, char **argv)
{
	int go = ids_command(cmd, argc, argv,
			     "usage: uploadfs rm FILE_ID... [options]\n"
			     "Deletes remote files by id (uploadfs ls shows them).\n",
			     "file id");
	if (go >= 0)
		return go;
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct up_error err;
		int rc = up_file_delete(cmd->client, argv[i], &err);
		if (rc < 0)
			status = uf_cmd_fail(cmd, argv[i], rc, &err);
		else if (cmd->json)
			printf("{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}\n", argv[i]);
	}
	return status;
}

static int cmd_cancel(struct uf_cmd *cmd, int argc, char **argv)
{
	int go = ids_command(cmd, argc, argv,
			     "usage: uploadfs cancel UPLOAD_ID... [options]\n"
			     "Cancels upload sessions: their parts are dropped, no file is made.\n",
			     "upload id");
	if (go >= 0)
		return go;
	int status = 0;
	for (int i = optind; i < argc; i++) {
		struct up_upload u = {0};
		struct up_error err;
		int rc = up_upload_cancel(cmd->client, argv[i], &u, &err);
		if (rc < 0) {
			status = uf_cmd_fail(cmd, argv[i], rc, &err);
		} else if (cmd->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "id", json_object_new_string(u.id));
			json_object_object_add(o, "object", json_object_new_string("upload"));
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)u.bytes));
			json_object_object_add(o, "filename",
					       json_object_new_string(u.filename ? u.filename : ""));
			json_object_object_add(o, "purpose", json_object_new_string(u.purpose));
			json_object_object_add(o, "status", json_object_new_string(u.status));
			uf_cmd_print_json(o);
		} else {
			printf("%s %s\n", u.id, u.status);
		}
		up_upload_clear(&u);
	}
	return status;
}

/* ---- the dispatch ---- */

int uf_files_main(int argc, char **argv)
{
	struct uf_cmd cmd = {.name = argv[0]};
	optind = 1;
	opterr = 1;
	int status;
	if (strcmp(argv[0], "put") == 0)
		status = uf_cmd_put(&cmd, argc, argv);
	else if (strcmp(argv[0], "get") == 0)
		status = uf_cmd_get(&cmd, argc, argv);
	else if (strcmp(argv[0], "ls") == 0)
		status = cmd_ls(&cmd, argc, argv);
	else if (strcmp(argv[0], "rm") == 0)
		status = cmd_rm(&cmd, argc, argv);
	else
		status = cmd_cancel(&cmd, argc, argv);
	up_client_free(cmd.client);
	return status;
}
