/* libFuzzer: the server's handling of request bodies (create, complete) and list cursors,
 * on a real store in a temporary directory. */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/uploadfs-fuzz-XXXXXX";

static void cleanup(void)
{
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static struct srv_store *store(void)
{
	static struct srv_store *st;
	if (!st) {
		atexit(cleanup);
		struct srv_limits lim = {.max_part_bytes = 1 << 20,
					 .max_upload_bytes = 1 << 24,
					 .max_file_bytes = 1 << 20,
					 .expire_seconds = 3600};
		struct srv_err err;
		if (!mkdtemp(dir) || srv_store_open(dir, &lim, &st, &err) < 0)
			abort();
	}
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_store *st = store();
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	json_object *req = json_tokener_parse(s), *out = NULL;
	struct srv_err err;
	uint64_t early;
	if (srv_upload_create(st, req, &out, &err) == 0) {
		json_object *id;
		if (json_object_object_get_ex(out, "id", &id)) {
			json_object *done = NULL;
			/* the same body as a complete of the upload it made */
			if (srv_upload_complete(st, json_object_get_string(id), req, &done, &early, &err) ==
			    0)
				json_object_put(done);
		}
		json_object_put(out);
		out = NULL;
	}
	if (srv_upload_complete(st, "upload_000000000000000000000000", req, &out, &early, &err) == 0)
		json_object_put(out);
	out = NULL;
	struct srv_list_query q = {.after = s, .limit = 3, .purpose = s};
	if (srv_files_list(st, &q, &out, &err) == 0)
		json_object_put(out);
	out = NULL;
	if (srv_file_get(st, s, &out, &err) == 0)
		json_object_put(out);
	json_object_put(req);
	free(s);
	return 0;
}
