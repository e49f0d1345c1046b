/* Extended attributes: user.purpose and user.mime_type (writable until the upload starts;
 * on a directory, the default below it), and the read-only user.upload.* status. */
#include "lifecycle.h"
#include "meta.h"
#include "purpose.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* The value of name on n into out; -ENODATA if it has none (tree lock held). */
static int value_of(struct uf_mount *m, struct uf_node *n, const char *name, char *out, size_t len)
{
	if (strcmp(name, "user.purpose") == 0) {
		snprintf(out, len, "%s",
			 n->kind == UF_DIR && !n->x_purpose	    ? uf_effective_purpose(m, n)
			 : n->kind == UF_FILE && n->remote && !n->w ? n->purpose
								    : uf_effective_purpose(m, n));
		return 0;
	}
	if (strcmp(name, "user.mime_type") == 0) {
		uf_effective_mime(n, out, len);
		return 0;
	}
	if (n->kind == UF_DIR || strncmp(name, "user.upload.", 12) != 0)
		return -ENODATA;
	/* read from the writer while there is one, else from the remote file; reading
	 * changes nothing */
	struct up_writer_status ws;
	enum uf_status st = uf_life_status(n, &ws);
	const char *k = name + 12;
	const char *id = n->w ? ws.upload_id : n->made ? n->made->upload_id : "";
	const char *md5 = n->w ? ws.md5 : n->made ? n->made->md5 : "";
	bool done = st == UF_COMPLETED;
	if (strcmp(k, "status") == 0)
		snprintf(out, len, "%s", uf_life_status_name(st));
	else if (strcmp(k, "id") == 0 && id[0])
		snprintf(out, len, "%s", id);
	else if (strcmp(k, "file_id") == 0 && done && n->remote && n->file_id[0])
		snprintf(out, len, "%s", n->file_id);
	else if (strcmp(k, "md5") == 0 && md5[0])
		snprintf(out, len, "%s", md5);
	else if (strcmp(k, "bytes_sent") == 0)
		snprintf(out, len, "%llu", (unsigned long long)(n->w ? ws.bytes_sent : n->bytes));
	else if (strcmp(k, "error") == 0 && ws.error[0] && st != UF_COMPLETED)
		snprintf(out, len, "%s", ws.error);
	else
		return -ENODATA;
	return 0;
}

/* The uploads in flight or failed, as JSON for `uploadfs status` (tree lock held). The
 * kernel passes at most XATTR_SIZE_MAX (64 KiB): entries past STATUS_MAX are counted in
 * "more", in-flight ones first. */
#define STATUS_MAX 60000
static char *mount_status(struct uf_mount *m)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	json_object *root = json_object_new_object(), *list = json_object_new_array();
	if (!root || !list) {
		json_object_put(root);
		json_object_put(list);
		return NULL;
	}
	size_t used = 200 + strlen(m->mount_abs) + strlen(up_client_base(m->client));
	size_t more = 0, counts[5] = {0}, writing = 0;
	for (int pass = 0; pass < 2; pass++) { /* in flight first, then failed */
		for (size_t i = 0; i < m->tree.ninodes; i++) {
			struct uf_node *n = m->tree.inodes[i];
			if (!n || n->kind != UF_FILE || n->unlinked || !n->linked)
				continue;
			struct up_writer_status ws;
			enum uf_status st = uf_life_status(n, &ws);
			bool failed = st == UF_FAILED;
			bool active = (st == UF_PENDING && n->w) || st == UF_UPLOADING;
			if (pass == 0 ? !active : !failed)
				continue;
			counts[st]++;
			/* still open for writing: its bytes may grow; else they are final */
			bool is_open = !failed && !ws.sealed && !n->finishing;
			writing += is_open;
			char *path = uf_tree_path(n);
			json_object *e = json_object_new_object();
			if (!path || !e) {
				free(path);
				json_object_put(e);
				more++;
				continue;
			}
			double secs = (double)(now.tv_sec - ws.started.tv_sec) +
				      (double)(now.tv_nsec - ws.started.tv_nsec) / 1e9;
			json_object_object_add(e, "name", json_object_new_string(path));
			json_object_object_add(e, "status",
					       json_object_new_string(uf_life_status_name(st)));
			/* bytes: the final size when known (announced by the size hint, ftruncate
			 * or fallocate, or the file closed), else the bytes written so far */
			json_object_object_add(e, "bytes", json_object_new_uint64(
							       ws.total_known ? ws.total : ws.size));
			json_object_object_add(e, "bytes_written", json_object_new_uint64(ws.size));
			json_object_object_add(e, "size_known",
					       json_object_new_boolean(ws.total_known));
			json_object_object_add(e, "writing", json_object_new_boolean(is_open));
			json_object_object_add(e, "bytes_sent",
					       json_object_new_uint64(ws.bytes_sent));
			json_object_object_add(e, "seconds", json_object_new_double(secs));
			json_object_object_add(e, "finishing", json_object_new_boolean(n->finishing));
			if (ws.upload_id[0])
				json_object_object_add(e, "upload_id",
						       json_object_new_string(ws.upload_id));
			if (ws.error[0])
				json_object_object_add(e, "error", json_object_new_string(ws.error));
			free(path);
			size_t len = strlen(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			if (used + len + 1 > STATUS_MAX) {
				json_object_put(e);
				more++;
				continue;
			}
			used += len + 1;
			json_object_array_add(list, e);
		}
	}
	json_object_object_add(root, "mount", json_object_new_string(m->mount_abs));
	json_object_object_add(root, "server", json_object_new_string(up_client_base(m->client)));
	json_object_object_add(root, "pending", json_object_new_uint64(counts[UF_PENDING]));
	json_object_object_add(root, "uploading", json_object_new_uint64(counts[UF_UPLOADING]));
	json_object_object_add(root, "failed", json_object_new_uint64(counts[UF_FAILED]));
	json_object_object_add(root, "writing", json_object_new_uint64(writing));
	json_object_object_add(root, "more", json_object_new_uint64(more));
	struct up_away aw;
	up_client_away(m->client, &aw);
	if (aw.away) {
		/* the retries are waiting the server out: since when, the next try, and why */
		json_object *w = json_object_new_object();
		json_object_object_add(w, "since", json_object_new_double(aw.since));
		json_object_object_add(w, "retry_at", json_object_new_double(aw.retry_at));
		json_object_object_add(w, "error", json_object_new_string(aw.error));
		json_object_object_add(root, "server_away", w);
	}
	json_object_object_add(root, "uploads", list);
	const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	char *out = txt ? strdup(txt) : NULL;
	json_object_put(root);
	return out;
}

/* Answers a getxattr or listxattr: the size when asked for it, ERANGE when the caller's
 * buffer is too small, else the bytes; rc < 0 is the error. */
static void reply_xattr(fuse_req_t req, int rc, const char *val, size_t len, size_t size)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

void uf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	/* Asked before every write by the kernel: answered at once, no lock, no network. */
	if (strcmp(name, "security.capability") == 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	struct uf_mount *m = uf_mount_of(req);
	if (ino == FUSE_ROOT_ID && strcmp(name, UF_STATUS_XATTR) == 0) {
		pthread_mutex_lock(&m->tree.mu);
		char *st = mount_status(m);
		uf_tree_unlock(&m->tree);
		reply_xattr(req, st ? 0 : -ENOMEM, st, st ? strlen(st) : 0, size);
		free(st);
		return;
	}
	char val[1024];
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	int rc = n ? value_of(m, n, name, val, sizeof val) : -ESTALE;
	uf_tree_unlock(&m->tree);
	reply_xattr(req, rc, val, rc == 0 ? strlen(val) : 0, size);
}

void uf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct uf_mount *m = uf_mount_of(req);
	static const char *const names[] = {"user.purpose",	      "user.mime_type",
					    "user.upload.status",     "user.upload.id",
					    "user.upload.file_id",    "user.upload.md5",
					    "user.upload.bytes_sent", "user.upload.error"};
	char list[512];
	size_t len = 0;
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	for (size_t i = 0; n && i < sizeof names / sizeof names[0]; i++) {
		char val[1024];
		if (value_of(m, n, names[i], val, sizeof val) == 0) {
			size_t l = strlen(names[i]) + 1;
			memcpy(list + len, names[i], l);
			len += l;
		}
	}
	uf_tree_unlock(&m->tree);
	reply_xattr(req, n ? 0 : -ESTALE, list, len, size);
}

/* Sets (value) or removes (value NULL) user.purpose / user.mime_type (tree lock held). */
static int set_meta(struct uf_mount *m, struct uf_node *n, const char *name, const char *value,
		    size_t size, int flags)
{
	bool purpose = strcmp(name, "user.purpose") == 0;
	char **slot = purpose ? &n->x_purpose : &n->x_mime;
	if (n->kind == UF_FILE && !uf_life_unsealed(n)) {
		uf_log(m, UF_WARN, "%s: %s cannot change once the file is closed and its upload "
				   "has begun", n->name, name);
		return -EPERM;
	}
	if ((flags & XATTR_CREATE) && *slot)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !*slot)
		return -ENODATA;
	char *v = NULL;
	if (value) {
		if (size == 0 || size > 255 || memchr(value, '\0', size)) {
			uf_log(m, UF_WARN, "%s: invalid %s value", n->name, name);
			return -EINVAL;
		}
		if (!(v = strndup(value, size)))
			return -ENOMEM;
		char names[UP_PURPOSE_NAMES_MAX];
		if (purpose && !up_purpose_valid(v)) {
			uf_log(m, UF_WARN, "%s: '%s' is not a purpose (%s)", n->name, v,
			       up_purpose_names(names, false));
			free(v);
			return -EINVAL;
		}
		for (char *c = v; !purpose && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == ';' || *c == ' ') {
				uf_log(m, UF_WARN, "%s: invalid mime type '%s'", n->name, v);
				free(v);
				return -EINVAL;
			}
	} else if (!*slot) {
		return -ENODATA;
	}
	free(*slot);
	*slot = v;
	if (n->kind == UF_DIR) {
		n->local_dir = true; /* its defaults are kept in the state store */
		char *path = uf_tree_path(n);
		struct uf_dir_rec d = {
		    .path = path, .mode = n->mode, .purpose = n->x_purpose, .mime = n->x_mime};
		if (path && n != m->tree.root)
			uf_state_dir_put(m->state, &d);
		free(path);
	}
	return 0;
}

/* setxattr and removexattr (value NULL): only user.purpose and user.mime_type change. */
static void change(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		   int flags)
{
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	struct uf_mount *m = uf_mount_of(req);
	int rc;
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = uf_tree_get(&m->tree, ino);
	if (!n)
		rc = -ESTALE;
	else if (strncmp(name, "user.upload.", 12) == 0)
		/* a copy being made brings its source's values: they describe another
		 * upload, and this file's own replace them when it goes up */
		rc = n->kind == UF_FILE && uf_life_copying(n) ? 0 : -EPERM;
	else if (strcmp(name, "user.purpose") == 0 || strcmp(name, "user.mime_type") == 0)
		rc = set_meta(m, n, name, value, size, flags);
	else
		rc = value ? -ENOTSUP : -ENODATA;
	uf_tree_unlock(&m->tree);
	if (rc == -EPERM && strncmp(name, "user.upload.", 12) == 0)
		uf_log(m, UF_WARN, "%s is read-only", name);
	fuse_reply_err(req, -rc);
}

void uf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags)
{
	/* a value of size 0 is still a value: only removal passes NULL */
	change(req, ino, name, value ? value : "", size, flags);
}

void uf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	change(req, ino, name, NULL, 0, 0);
}
