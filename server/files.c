/* The Files API of the store: POST /v1/files, list, get, delete, and the downloads that
 * hold a file open. */
#include "store.h"

#include "content.h"
#include "purpose.h"
#include "records.h"
#include "request.h"
#include "store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int srv_file_begin(struct srv_store *st, struct srv_blob *blob, struct srv_err *err)
{
	blob->fd = -1;
	blob->path[0] = '\0';
	blob->placed = false;
	blob->place = 0;
	blob->owner[0] = '\0';
	char dir[4096];
	int rc = srv_pathf(dir, sizeof dir, st->dir, "content");
	if (rc < 0)
		return srv_disk_err(err, -rc, "create a temporary file");
	return srv_st_blob_open(blob, dir, err);
}

int srv_file_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes,
		    const struct srv_file_form *form, json_object **out, struct srv_err *err)
{
	int rc = srv_st_blob_close(blob);
	if (rc < 0)
		rc = srv_disk_err(err, -rc, "store the file");
	int64_t expires_after = 0;
	if (rc == 0)
		rc = srv_check_file_form(form, &expires_after, err);
	if (rc == 0 && bytes > st->lim.max_file_bytes)
		rc = srv_err_set(err, EFBIG, 400, "file", "File is too large.");
	struct file *f = NULL;
	if (rc == 0) {
		f = calloc(1, sizeof *f);
		if (!f || !(f->filename = strdup(form->filename)))
			rc = srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	if (rc < 0) {
		srv_file_free(f);
		srv_blob_abort(blob);
		return rc;
	}
	f->bytes = bytes;
	snprintf(f->purpose, sizeof f->purpose, "%s", form->purpose);

	pthread_mutex_lock(&st->mu);
	srv_st_sweep(st);
	f->seq = srv_seq_next(&st->seq);
	f->created_at = srv_now();
	f->expires_at = srv_st_file_expiry(f->purpose, f->created_at, expires_after);
	char path[4096];
	rc = srv_id_make("file-", f->seq, f->id);
	if (rc == 0)
		rc = srv_pathf(path, sizeof path, st->dir, "content/%s", f->id);
	if (rc == 0 && rename(blob->path, path) < 0)
		rc = -errno;
	if (rc == 0) {
		blob->path[0] = '\0';
		if ((rc = srv_persist_file(st, f)) < 0 || (rc = srv_vec_push(&st->files, f)) < 0)
			unlink(path);
	}
	if (rc == 0)
		*out = srv_file_json(f, false);
	pthread_mutex_unlock(&st->mu);
	if (rc < 0) {
		srv_blob_abort(blob);
		srv_file_free(f);
		return srv_disk_err(err, -rc, "record the file");
	}
	return 0;
}

static int file_lookup(struct srv_store *st, const char *id, struct file **out, ssize_t *idx,
		       struct srv_err *err)
{
	srv_st_sweep(st);
	uint64_t seq;
	ssize_t i = srv_id_parse("file-", id, &seq) ? srv_vec_find(&st->files, seq) : -1;
	if (i < 0 || strcmp(((struct file *)st->files.v[i])->id, id) != 0)
		return srv_err_set(err, ENOENT, 404, "id", "No such File object: %.64s", id);
	*out = st->files.v[i];
	if (idx)
		*idx = i;
	return 0;
}

int srv_files_list(struct srv_store *st, const struct srv_list_query *q, json_object **out,
		   struct srv_err *err)
{
	uint64_t after = 0;
	if (q->after && !srv_id_parse("file-", q->after, &after))
		return srv_err_set(err, EINVAL, 400, "after", "Invalid 'after' cursor: %.64s",
				   q->after);
	json_object *data = json_object_new_array();
	bool has_more = false;
	pthread_mutex_lock(&st->mu);
	srv_st_sweep(st);
	const struct vec *v = &st->files;
	/* Walk in the requested order from just past the cursor. */
	size_t start = q->ascending ? (q->after ? srv_vec_upper(v, after) : 0)
				    : (q->after ? srv_vec_upper(v, after - 1) : v->n);
	size_t taken = 0;
	for (size_t k = 0;; k++) {
		size_t i;
		if (q->ascending) {
			if (start + k >= v->n)
				break;
			i = start + k;
		} else {
			if (k >= start)
				break;
			i = start - 1 - k;
		}
		const struct file *f = v->v[i];
		if (q->purpose && strcmp(q->purpose, f->purpose) != 0)
			continue;
		if (taken == q->limit) {
			has_more = true;
			break;
		}
		json_object_array_add(data, srv_file_json(f, false));
		taken++;
	}
	pthread_mutex_unlock(&st->mu);

	json_object *o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	size_t n = json_object_array_length(data);
	json_object *first = n ? json_object_array_get_idx(data, 0) : NULL;
	json_object *last = n ? json_object_array_get_idx(data, n - 1) : NULL;
	json_object *fid = NULL, *lid = NULL;
	if (first) {
		json_object_object_get_ex(first, "id", &fid);
		json_object_object_get_ex(last, "id", &lid);
	}
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "first_id", fid ? json_object_get(fid) : NULL);
	json_object_object_add(o, "last_id", lid ? json_object_get(lid) : NULL);
	json_object_object_add(o, "has_more", json_object_new_boolean(has_more));
	*out = o;
	return 0;
}

int srv_file_get(struct srv_store *st, const char *file_id, json_object **out, struct srv_err *err)
{
	struct file *f;
	pthread_mutex_lock(&st->mu);
	int rc = file_lookup(st, file_id, &f, NULL, err);
	if (rc == 0)
		*out = srv_file_json(f, false);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int srv_file_delete(struct srv_store *st, const char *file_id, json_object **out,
		    struct srv_err *err)
{
	struct file *f;
	ssize_t idx;
	pthread_mutex_lock(&st->mu);
	int rc = file_lookup(st, file_id, &f, &idx, err);
	if (rc == 0) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(f->id));
		json_object_object_add(o, "object", json_object_new_string("file"));
		json_object_object_add(o, "deleted", json_object_new_boolean(1));
		*out = o;
		srv_st_remove_file(st, (size_t)idx);
	}
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int srv_download_open(struct srv_store *st, const char *file_id, struct srv_download *d,
		      struct srv_err *err)
{
	struct file *f;
	d->content = NULL;
	d->file = NULL;
	pthread_mutex_lock(&st->mu);
	int rc = file_lookup(st, file_id, &f, NULL, err);
	if (rc == 0 && !st->lim.allow_downloads && !up_purpose_downloadable(f->purpose))
		rc = srv_err_set(err, EACCES, 400, NULL,
				 "Not allowed to download files of purpose: %s", f->purpose);
	char path[4096];
	if (rc == 0 && (rc = srv_pathf(path, sizeof path, st->dir, "content/%s", f->id)) < 0)
		rc = srv_disk_err(err, -rc, "open the file");
	if (rc == 0)
		f->readers++; /* its content stays while read, even if the file is deleted */
	pthread_mutex_unlock(&st->mu);
	if (rc == 0 && (rc = srv_content_open(path, &d->content)) < 0) {
		rc = srv_disk_err(err, -rc, "open the file");
		d->file = f;
		srv_download_close(st, d);
		return rc;
	}
	if (rc == 0)
		d->file = f;
	return rc;
}

void srv_download_close(struct srv_store *st, struct srv_download *d)
{
	srv_content_close(d->content);
	d->content = NULL;
	struct file *f = d->file;
	d->file = NULL;
	if (!f)
		return;
	pthread_mutex_lock(&st->mu);
	bool last = --f->readers == 0 && f->removed;
	if (last)
		srv_st_drop_content(st, f);
	pthread_mutex_unlock(&st->mu);
	if (last)
		srv_file_free(f);
}

