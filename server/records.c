#include "records.h"

#include "atomicfile.h"
#include "purpose.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const srv_status_names[4] = {"pending", "completed", "cancelled", "expired"};

/* Writes a JSON document so that readers see the old or the new one, never a torn one. Not
 * fsynced: a process crash loses nothing, a power cut may (docs/SERVER.md). */
static int write_json_atomic(const char *path, json_object *obj)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	return up_write_file_atomic(path, s, len, false);
}

int srv_part_push(struct upload *u, const struct part *p)
{
	if (u->nparts == u->cap_parts) {
		size_t cap = u->cap_parts ? u->cap_parts * 2 : 16;
		struct part *np = realloc(u->parts, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		u->parts = np;
		u->cap_parts = cap;
	}
	u->parts[u->nparts++] = *p;
	return 0;
}

json_object *srv_file_json(const struct file *f, bool record)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(f->id));
	json_object_object_add(o, "object", json_object_new_string("file"));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)f->bytes));
	json_object_object_add(o, "created_at", json_object_new_int64(f->created_at));
	json_object_object_add(o, "expires_at",
			       f->expires_at ? json_object_new_int64(f->expires_at) : NULL);
	json_object_object_add(o, "filename", json_object_new_string(f->filename));
	json_object_object_add(o, "purpose", json_object_new_string(f->purpose));
	json_object_object_add(o, "status", json_object_new_string("processed"));
	json_object_object_add(o, "status_details", NULL);
	if (record && f->upload_id[0])
		json_object_object_add(o, "upload_id", json_object_new_string(f->upload_id));
	return o;
}

json_object *srv_upload_json(const struct upload *u, bool record)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "object", json_object_new_string("upload"));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)u->bytes));
	json_object_object_add(o, "created_at", json_object_new_int64(u->created_at));
	json_object_object_add(o, "expires_at", json_object_new_int64(u->expires_at));
	json_object_object_add(o, "filename", json_object_new_string(u->filename));
	json_object_object_add(o, "purpose", json_object_new_string(u->purpose));
	json_object_object_add(o, "status", json_object_new_string(srv_status_names[u->status]));
	json_object_object_add(o, "file", u->file_json ? json_object_get(u->file_json) : NULL);
	if (record) {
		json_object_object_add(o, "mime_type", json_object_new_string(u->mime_type));
		if (u->file_expires_after)
			json_object_object_add(o, "file_expires_after",
					       json_object_new_int64(u->file_expires_after));
		if (u->complete_sig)
			json_object_object_add(o, "complete_sig",
					       json_object_new_string(u->complete_sig));
	}
	return o;
}

/* Writes obj (taken) as the record sub/<id>.json. */
static int persist(struct srv_store *st, const char *sub, const char *id, json_object *obj)
{
	char path[4096];
	int rc = srv_pathf(path, sizeof path, st->dir, "%s/%s.json", sub, id);
	if (rc == 0)
		rc = obj ? write_json_atomic(path, obj) : -ENOMEM;
	json_object_put(obj);
	return rc;
}

int srv_persist_upload(struct srv_store *st, const struct upload *u)
{
	return persist(st, "uploads", u->id, srv_upload_json(u, true));
}

int srv_persist_file(struct srv_store *st, const struct file *f)
{
	return persist(st, "files", f->id, srv_file_json(f, true));
}

void srv_upload_free(struct upload *u)
{
	if (!u)
		return;
	EVP_MD_CTX_free(u->early_md);
	free(u->filename);
	free(u->mime_type);
	free(u->parts);
	free(u->slots);
	free(u->early_idx);
	free(u->complete_sig);
	json_object_put(u->file_json);
	free(u);
}

void srv_file_free(struct file *f)
{
	if (!f)
		return;
	free(f->filename);
	free(f);
}

json_object *srv_part_json(const struct part *p, const char *upload_id)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(p->id));
	json_object_object_add(o, "object", json_object_new_string("upload.part"));
	json_object_object_add(o, "created_at", json_object_new_int64(p->created_at));
	json_object_object_add(o, "upload_id", json_object_new_string(upload_id));
	return o;
}


static json_object *read_json(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat sb;
	json_object *o = NULL;
	if (fstat(fd, &sb) == 0 && sb.st_size > 0 && sb.st_size < (64 << 20)) {
		char *buf = malloc((size_t)sb.st_size + 1);
		ssize_t r = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
		if (r == sb.st_size) {
			buf[r] = '\0';
			o = json_tokener_parse(buf);
		}
		free(buf);
	}
	close(fd);
	return o;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool jint(json_object *o, const char *key, int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static struct file *file_from_json(json_object *o)
{
	const char *id = jstr(o, "id"), *fn = jstr(o, "filename"), *purpose = jstr(o, "purpose");
	int64_t bytes, created;
	struct file *f = NULL;
	if (!id || !fn || !purpose || !up_purpose_valid(purpose) || !jint(o, "bytes", &bytes) ||
	    bytes < 0 || !jint(o, "created_at", &created) || !(f = calloc(1, sizeof *f)))
		return NULL;
	if (!srv_id_parse("file-", id, &f->seq) || !(f->filename = strdup(fn))) {
		srv_file_free(f);
		return NULL;
	}
	snprintf(f->id, sizeof f->id, "%s", id);
	snprintf(f->purpose, sizeof f->purpose, "%s", purpose);
	const char *uid = jstr(o, "upload_id");
	snprintf(f->upload_id, sizeof f->upload_id, "%s", uid ? uid : "");
	f->bytes = (uint64_t)bytes;
	f->created_at = created;
	jint(o, "expires_at", &f->expires_at);
	return f;
}

static struct upload *upload_from_json(json_object *o)
{
	const char *id = jstr(o, "id"), *fn = jstr(o, "filename"), *purpose = jstr(o, "purpose");
	const char *mime = jstr(o, "mime_type"), *status = jstr(o, "status");
	int64_t bytes, created, expires;
	struct upload *u = NULL;
	if (!id || !fn || !purpose || !up_purpose_valid(purpose) || !mime || !status ||
	    !jint(o, "bytes", &bytes) || bytes < 0 || !jint(o, "created_at", &created) ||
	    !jint(o, "expires_at", &expires) || !(u = calloc(1, sizeof *u)))
		return NULL;
	int s = -1;
	for (int i = 0; i < 4; i++)
		if (strcmp(status, srv_status_names[i]) == 0)
			s = i;
	if (s < 0 || !srv_id_parse("upload_", id, &u->seq) || !(u->filename = strdup(fn)) ||
	    !(u->mime_type = strdup(mime))) {
		srv_upload_free(u);
		return NULL;
	}
	snprintf(u->id, sizeof u->id, "%s", id);
	snprintf(u->purpose, sizeof u->purpose, "%s", purpose);
	u->status = (enum upload_status)s;
	u->bytes = (uint64_t)bytes;
	u->created_at = created;
	u->expires_at = expires;
	jint(o, "file_expires_after", &u->file_expires_after);
	const char *sig = jstr(o, "complete_sig");
	if (sig)
		u->complete_sig = strdup(sig);
	json_object *fj;
	if (json_object_object_get_ex(o, "file", &fj) && json_object_is_type(fj, json_type_object))
		u->file_json = json_object_get(fj);
	return u;
}

/* Loads every "<id>.json" record of a directory with parse(); drops tmp files. */
static int load_records(struct srv_store *st, const char *sub, struct vec *v,
			void *(*parse)(json_object *))
{
	char path[4096];
	int rc = srv_pathf(path, sizeof path, st->dir, "%s", sub);
	if (rc < 0)
		return rc;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (ends_with(de->d_name, ".tmp")) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!ends_with(de->d_name, ".json"))
			continue;
		json_object *o = read_json(dirfd(d), de->d_name);
		struct seq_head *obj = o ? parse(o) : NULL;
		json_object_put(o);
		if (!obj) {
			fprintf(stderr, "uploadfs-server: ignoring unreadable record %s/%s\n", sub,
				de->d_name);
			continue;
		}
		srv_seq_observe(&st->seq, obj->seq);
		if ((rc = srv_vec_push(v, obj)) < 0) {
			free(obj);
			break;
		}
	}
	closedir(d);
	if (v->n)
		qsort(v->v, v->n, sizeof v->v[0], srv_cmp_seq);
	return rc;
}

static void *parse_file(json_object *o)
{
	return file_from_json(o);
}

static void *parse_upload(json_object *o)
{
	return upload_from_json(o);
}

static int cmp_part(const void *a, const void *b)
{
	const struct part *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads a pending upload's parts from its directory, dropping unfinished ones. */
int srv_load_parts(struct srv_store *st, struct upload *u)
{
	char path[4096];
	int rc = srv_pathf(path, sizeof path, st->dir, "parts/%s", u->id);
	if (rc < 0)
		return rc;
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct part p = {0};
		struct stat sb;
		if (strncmp(de->d_name, ".tmp-", 5) == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!srv_id_parse("part_", de->d_name, &p.seq) ||
		    fstatat(dirfd(d), de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode))
			continue;
		memcpy(p.id, de->d_name, strlen(de->d_name) + 1); /* parse checked its length */
		p.bytes = (uint64_t)sb.st_size;
		p.created_at = (int64_t)sb.st_mtime;
		srv_seq_observe(&st->seq, p.seq);
		if ((rc = srv_part_push(u, &p)) < 0)
			break;
		u->parts_bytes += p.bytes;
	}
	closedir(d);
	if (u->nparts)
		qsort(u->parts, u->nparts, sizeof *u->parts, cmp_part);
	u->early_off = u->nparts > 0; /* their start order is unknown: complete hashes them */
	return rc;
}

int srv_load_files(struct srv_store *st)
{
	return load_records(st, "files", &st->files, parse_file);
}

int srv_load_uploads(struct srv_store *st)
{
	return load_records(st, "uploads", &st->uploads, parse_upload);
}
