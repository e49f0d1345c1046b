#include "journal.h"

#include "api.h"
#include "atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTS_SUFFIX ".parts"

int up_journal_parts_path(const char *path, char *out, size_t len)
{
	return snprintf(out, len, "%s" PARTS_SUFFIX, path) >= (int)len ? -ENAMETOOLONG : 0;
}

void up_journal_remove(const char *path)
{
	char log[4400];
	/* the log first: a crash in between leaves a record without its log (those parts
	 * are sent again), never a log without its record */
	if (up_journal_parts_path(path, log, sizeof log) == 0)
		unlink(log);
	unlink(path);
}

bool up_journal_sweep_log(const char *path)
{
	size_t len = strlen(path), n = strlen(PARTS_SUFFIX);
	if (len <= n || strcmp(path + len - n, PARTS_SUFFIX) != 0)
		return false;
	char record[4400];
	if (len - n < sizeof record) {
		memcpy(record, path, len - n);
		record[len - n] = '\0';
		if (access(record, F_OK) < 0 && errno == ENOENT)
			unlink(path);
	}
	return true;
}

int up_journal_add_part(const char *path, const char *upload_id, size_t index,
			const char *part_id)
{
	char log[4400], line[2 * UP_ID_MAX + 32];
	int rc = up_journal_parts_path(path, log, sizeof log);
	if (rc < 0)
		return rc;
	int n = snprintf(line, sizeof line, "%s %zu %s\n", upload_id, index, part_id);
	if (n < 0 || (size_t)n >= sizeof line)
		return -EINVAL;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, line, (size_t)n); /* one append: a crash tears at most this line */
	rc = w == n ? 0 : w < 0 ? -errno : -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int up_idlist_add(struct up_idlist *l, const char *id)
{
	if (!id || !id[0])
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->ids[i], id) == 0)
			return 0;
	char(*ids)[UP_ID_MAX] = realloc(l->ids, (l->n + 1) * sizeof *ids);
	if (!ids)
		return -ENOMEM;
	l->ids = ids;
	snprintf(l->ids[l->n++], UP_ID_MAX, "%s", id);
	return 0;
}

int up_idlist_copy(struct up_idlist *dst, const struct up_idlist *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (up_idlist_add(dst, src->ids[i]) < 0)
			return -ENOMEM;
	return 0;
}

void up_idlist_clear(struct up_idlist *l)
{
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

int up_journal_write(const char *path, const struct up_journal_rec *r)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "filename", json_object_new_string(r->filename));
	json_object_object_add(o, "mime_type", json_object_new_string(r->mime_type));
	json_object_object_add(o, "purpose", json_object_new_string(r->purpose));
	json_object_object_add(o, "spool", json_object_new_string(r->spool));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)r->size));
	json_object_object_add(o, "part_size", json_object_new_int64((int64_t)r->part_size));
	json_object_object_add(o, "upload_id", json_object_new_string(r->upload_id));
	json_object_object_add(o, "expires_at", json_object_new_int64(r->expires_at));
	json_object_object_add(o, "md5", json_object_new_string(r->md5));
	if (r->replaces.n) {
		json_object *old = json_object_new_array_ext((int)r->replaces.n);
		for (size_t i = 0; i < r->replaces.n; i++)
			json_object_array_add(old, json_object_new_string(r->replaces.ids[i]));
		json_object_object_add(o, "replaces", old);
	}
	json_object *parts = json_object_new_array_ext((int)r->nparts);
	for (size_t i = 0; i < r->nparts; i++)
		json_object_array_add(parts, json_object_new_string(r->part_ids[i]));
	json_object_object_add(o, "parts", parts);

	size_t len = 0;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	int rc = up_write_file_atomic(path, s, len, true);
	json_object_put(o);
	char log[4400];
	if (rc == 0 && up_journal_parts_path(path, log, sizeof log) == 0)
		unlink(log); /* the record holds its lines now */
	return rc;
}

static char *dup_str(json_object *o, const char *k)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static bool get_u64(json_object *o, const char *k, uint64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return false;
	*out = (uint64_t)json_object_get_int64(v);
	return true;
}

/* Applies the parts log: a line is "upload_id index part_id"; one that is torn, of another
 * session or out of range is skipped. */
static void apply_parts_log(const char *path, struct up_journal_rec *r)
{
	char log[4400], line[2 * UP_ID_MAX + 32];
	FILE *f = up_journal_parts_path(path, log, sizeof log) == 0 ? fopen(log, "re") : NULL;
	while (f && fgets(line, sizeof line, f)) {
		size_t len = strlen(line);
		if (len == 0 || line[len - 1] != '\n')
			continue;
		line[len - 1] = '\0';
		char *idx = strchr(line, ' '), *id = idx ? strchr(idx + 1, ' ') : NULL, *end;
		if (!id)
			continue;
		*idx++ = '\0';
		*id++ = '\0';
		errno = 0;
		unsigned long long i = strtoull(idx, &end, 10);
		if (errno || end == idx || *end || idx[0] == '-' || i >= r->nparts ||
		    strcmp(line, r->upload_id) != 0 || !up_id_valid(id))
			continue;
		snprintf(r->part_ids[i], UP_ID_MAX, "%s", id);
	}
	if (f)
		fclose(f);
}

int up_journal_read(const char *path, struct up_journal_rec *r)
{
	memset(r, 0, sizeof *r);
	json_object *o = json_object_from_file(path), *v, *parts;
	int rc = -EBADMSG;
	uint64_t exp = 0;
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	r->filename = dup_str(o, "filename");
	r->mime_type = dup_str(o, "mime_type");
	r->purpose = dup_str(o, "purpose");
	r->spool = dup_str(o, "spool");
	char *id = dup_str(o, "upload_id"), *md5 = dup_str(o, "md5");
	json_object *old = NULL; /* optional: absent in records of older versions */
	bool old_ok = !json_object_object_get_ex(o, "replaces", &old) ||
		      json_object_is_type(old, json_type_array);
	for (size_t i = 0; old_ok && old && i < json_object_array_length(old); i++) {
		json_object *e = json_object_array_get_idx(old, i);
		old_ok = json_object_is_type(e, json_type_string) &&
			 up_id_valid(json_object_get_string(e)) &&
			 up_idlist_add(&r->replaces, json_object_get_string(e)) == 0;
	}
	bool ok = r->filename && r->mime_type && r->purpose && r->spool && id && md5 &&
		  get_u64(o, "size", &r->size) && get_u64(o, "part_size", &r->part_size) &&
		  r->part_size > 0 && get_u64(o, "expires_at", &exp) &&
		  (!id[0] || up_id_valid(id)) && (strlen(md5) == 0 || strlen(md5) == 32) &&
		  old_ok &&
		  json_object_object_get_ex(o, "parts", &parts) &&
		  json_object_is_type(parts, json_type_array);
	if (ok) {
		snprintf(r->upload_id, sizeof r->upload_id, "%s", id);
		snprintf(r->md5, sizeof r->md5, "%s", md5);
		r->expires_at = (int64_t)exp;
		r->nparts = json_object_array_length(parts);
		/* the record must describe exactly the parts of its size */
		ok = r->nparts == (r->size + r->part_size - 1) / r->part_size;
	}
	free(id);
	free(md5);
	if (ok && !(r->part_ids = calloc(r->nparts ? r->nparts : 1, sizeof *r->part_ids)))
		ok = false;
	for (size_t i = 0; ok && i < r->nparts; i++) {
		v = json_object_array_get_idx(parts, i);
		const char *p = json_object_get_string(v);
		if (!json_object_is_type(v, json_type_string) || (p[0] && !up_id_valid(p)))
			ok = false;
		else
			snprintf(r->part_ids[i], UP_ID_MAX, "%s", p);
	}
	if (ok && r->upload_id[0])
		apply_parts_log(path, r);
	if (ok)
		rc = 0;
out:
	json_object_put(o);
	if (rc < 0)
		up_journal_rec_clear(r);
	return rc;
}

void up_journal_rec_clear(struct up_journal_rec *r)
{
	free(r->filename);
	free(r->mime_type);
	free(r->purpose);
	free(r->spool);
	free(r->part_ids);
	up_idlist_clear(&r->replaces);
	memset(r, 0, sizeof *r);
}
