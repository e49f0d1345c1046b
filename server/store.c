#include "store.h"

#include "content.h"
#include "datadir.h"
#include "earlyhash.h"
#include "purpose.h"
#include "records.h"
#include "request.h"
#include "store_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Layout under --data:
 *   uploads/<upload_id>.json     one Upload (status, limits, completion record)
 *   parts/<upload_id>/<part_id>  one part's bytes; ".tmp-*" while it streams in
 *   files/<file_id>.json         one File
 *   content/<file_id>            its bytes: one file (POST /v1/files), or a directory of its
 *                                upload's parts linked in order (content.h); ".tmp-*" while
 *                                made or streamed in
 * A record is written after the bytes it describes, so a crash leaves at worst an orphan
 * blob or tmp file, which the next start removes. */

#define BATCH_EXPIRY 2592000 /* 30 days: OpenAI's default for purpose=batch */


/* ---- small helpers ---- */

int64_t srv_st_file_expiry(const char *purpose, int64_t created_at, int64_t expires_after)
{
	if (expires_after > 0)
		return created_at + expires_after;
	if (strcmp(purpose, "batch") == 0)
		return created_at + BATCH_EXPIRY;
	return 0;
}

/* ---- state transitions (store lock held) ---- */

/* Moves where/id out of the way at once (store lock held); its bytes are freed later by
 * srv_store_reap, off the request's path: unlinking a GiB of pages still being written back
 * waits for the disk, and no answer must. What a crash leaves is removed at the next start. */
static void set_aside(struct srv_store *st, const char *where, const char *id)
{
	char path[4096], gone[4096];
	if (srv_pathf(path, sizeof path, st->dir, "%s/%s", where, id) < 0)
		return;
	char *g = NULL;
	if (srv_pathf(gone, sizeof gone, st->dir, "%s/.gone-%s", where, id) == 0 && (g = strdup(gone)) &&
	    rename(path, gone) == 0 && srv_vec_push(&st->gone, g) == 0)
		return;
	if (g && access(g, F_OK) == 0)
		srv_content_remove(g); /* renamed, but no room to remember it */
	free(g);
	srv_content_remove(path);
}

/* The parts of an upload that is over. Those its file was made of stay linked there. */
static void drop_parts(struct srv_store *st, struct upload *u)
{
	set_aside(st, "parts", u->id);
	free(u->parts);
	u->parts = NULL;
	u->nparts = u->cap_parts = 0;
	free(u->slots);
	u->slots = NULL;
	u->nslots = u->cap_slots = 0;
	if (u->early_busy)
		u->early_broken = true; /* the hashing thread cleans up */
	else
		srv_early_reset(u);
}

/* Moves a pending upload past its expiry to "expired"; returns true if it is pending. */
static bool upload_live(struct srv_store *st, struct upload *u, int64_t now)
{
	if (u->status == U_PENDING && !u->busy && now >= u->expires_at) {
		u->status = U_EXPIRED;
		if (srv_persist_upload(st, u) < 0)
			fprintf(stderr, "uploadfs-server: could not record expiry of %s\n", u->id);
		drop_parts(st, u);
	}
	return u->status == U_PENDING;
}

static int not_pending(const struct upload *u, struct srv_err *err)
{
	return srv_err_set(err, EINVAL, 400, NULL, "Upload %s is %s and can no longer be modified",
			   u->id, srv_status_names[u->status]);
}

static int upload_lookup(struct srv_store *st, const char *id, struct upload **out,
			 struct srv_err *err)
{
	struct upload *u = srv_vec_lookup(&st->uploads, "upload_", id);
	if (!u)
		return srv_err_set(err, ENOENT, 404, NULL, "No such Upload object: %.64s", id);
	*out = u;
	return 0;
}

/* Moves a file's content aside, to be freed by srv_store_reap off the request's path (store
 * lock held, or the file out of the store). */
void srv_st_drop_content(struct srv_store *st, const struct file *f)
{
	set_aside(st, "content", f->id);
}

void srv_st_remove_file(struct srv_store *st, size_t idx)
{
	struct file *f = st->files.v[idx];
	char path[4096];
	/* Record first: a crash in between leaves an orphan blob, never a record without bytes. */
	if (srv_pathf(path, sizeof path, st->dir, "files/%s.json", f->id) == 0)
		unlink(path);
	memmove(&st->files.v[idx], &st->files.v[idx + 1],
		(st->files.n - idx - 1) * sizeof st->files.v[0]);
	st->files.n--;
	if (f->readers) {
		f->removed = true; /* the last reader drops the content and frees f */
		return;
	}
	srv_st_drop_content(st, f);
	srv_file_free(f);
}

/* Expires uploads and files whose time has come, at most once a second. */
void srv_st_sweep(struct srv_store *st)
{
	int64_t now = srv_now();
	if (now == st->last_sweep)
		return;
	st->last_sweep = now;
	for (size_t i = 0; i < st->uploads.n; i++)
		upload_live(st, st->uploads.v[i], now);
	for (size_t i = 0; i < st->files.n;) {
		struct file *f = st->files.v[i];
		if (f->expires_at && now >= f->expires_at)
			srv_st_remove_file(st, i);
		else
			i++;
	}
}

/* ---- uploads ---- */

int srv_upload_create(struct srv_store *st, json_object *req, json_object **out,
		      struct srv_err *err)
{
	struct srv_create_req c;
	int rc = srv_parse_create(req, st->lim.max_upload_bytes, &c, err);
	if (rc < 0)
		return rc;

	struct upload *u = calloc(1, sizeof *u);
	if (!u)
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	u->filename = strndup(c.filename, c.filename_len);
	u->mime_type = strdup(c.mime_type);
	if (!u->filename || !u->mime_type) {
		srv_upload_free(u);
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	snprintf(u->purpose, sizeof u->purpose, "%s", c.purpose);
	u->bytes = c.bytes;
	u->file_expires_after = c.expires_after;
	u->status = U_PENDING;

	pthread_mutex_lock(&st->mu);
	srv_st_sweep(st);
	u->seq = srv_seq_next(&st->seq);
	u->created_at = srv_now();
	u->expires_at = u->created_at + st->lim.expire_seconds;
	rc = srv_id_make("upload_", u->seq, u->id);
	if (rc == 0)
		rc = srv_persist_upload(st, u);
	if (rc == 0)
		rc = srv_vec_push(&st->uploads, u);
	if (rc < 0) {
		pthread_mutex_unlock(&st->mu);
		srv_upload_free(u);
		return srv_disk_err(err, -rc, "record the upload");
	}
	*out = srv_upload_json(u, false);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int srv_st_blob_open(struct srv_blob *blob, const char *dirpath, struct srv_err *err)
{
	char rnd[SRV_ID_MAX];
	int rc = srv_id_make(".tmp-", 0, rnd);
	if (rc < 0)
		return srv_disk_err(err, -rc, "create a temporary file");
	if (snprintf(blob->path, sizeof blob->path, "%s/%s", dirpath, rnd) >=
	    (int)sizeof blob->path)
		return srv_disk_err(err, ENAMETOOLONG, "create a temporary file");
	blob->fd = open(blob->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (blob->fd < 0)
		return srv_disk_err(err, errno, "create a temporary file");
	return 0;
}

void srv_blob_abort(struct srv_blob *blob)
{
	if (blob->fd >= 0)
		close(blob->fd);
	if (blob->path[0])
		unlink(blob->path);
	blob->fd = -1;
	blob->path[0] = '\0';
}

/* Closes the blob's fd; the caller renames or aborts it. */
int srv_st_blob_close(struct srv_blob *blob)
{
	int rc = close(blob->fd) < 0 ? -errno : 0;
	blob->fd = -1;
	return rc;
}

int srv_part_begin(struct srv_store *st, const char *upload_id, struct srv_blob *blob,
		   struct srv_err *err)
{
	blob->fd = -1;
	blob->path[0] = '\0';
	blob->placed = false; /* until its field says where it sits */
	blob->place = 0;
	struct upload *u = NULL;
	pthread_mutex_lock(&st->mu);
	int rc = upload_lookup(st, upload_id, &u, err);
	if (rc == 0 && !upload_live(st, u, srv_now()))
		rc = not_pending(u, err);
	char dir[4096];
	if (rc == 0 && (rc = srv_pathf(dir, sizeof dir, st->dir, "parts/%s", u->id)) < 0)
		rc = srv_disk_err(err, -rc, "create the part directory");
	if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		rc = srv_disk_err(err, errno, "create the part directory");
	if (rc == 0)
		rc = srv_st_blob_open(blob, dir, err);
	if (rc == 0)
		snprintf(blob->owner, sizeof blob->owner, "%s", u->id);
	blob->start_no = SRV_NO_PLACE; /* taken when its body begins */
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* Gives the part request its place in the early hash's order (lock held). Without one
 * (out of memory) its part is hashed at complete. */
static void take_place(struct upload *u, struct srv_blob *blob)
{
	if (blob->start_no != SRV_NO_PLACE)
		return;
	if (u->nslots == u->cap_slots) {
		size_t cap = u->cap_slots ? u->cap_slots * 2 : 16;
		struct slot *ns = realloc(u->slots, cap * sizeof *ns);
		if (!ns)
			return;
		u->slots = ns;
		u->cap_slots = cap;
	}
	blob->start_no = u->nslots;
	u->slots[u->nslots++] =
	    (struct slot){.state = SLOT_OPEN, .placed = blob->placed, .place = blob->place};
}

void srv_part_body(struct srv_store *st, struct srv_blob *blob)
{
	struct upload *u = NULL;
	struct srv_err err;
	pthread_mutex_lock(&st->mu);
	if (blob->start_no == SRV_NO_PLACE && upload_lookup(st, blob->owner, &u, &err) == 0 &&
	    u->status == U_PENDING)
		take_place(u, blob);
	pthread_mutex_unlock(&st->mu);
}

int srv_part_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes, json_object **out,
		    struct srv_err *err)
{
	int rc = srv_st_blob_close(blob);
	if (rc < 0) {
		srv_blob_abort(blob);
		return srv_disk_err(err, -rc, "store the part");
	}
	if (bytes > st->lim.max_part_bytes) {
		srv_blob_abort(blob);
		return srv_err_set(err, EFBIG, 400, "data",
				   "Part is too large (%llu bytes; the maximum is %llu bytes)",
				   (unsigned long long)bytes,
				   (unsigned long long)st->lim.max_part_bytes);
	}
	struct upload *u = NULL;
	pthread_mutex_lock(&st->mu);
	rc = upload_lookup(st, blob->owner, &u, err);
	if (rc == 0 && !upload_live(st, u, srv_now()))
		rc = not_pending(u, err);
	if (rc == 0 && u->parts_bytes + bytes > st->lim.max_upload_bytes)
		rc = srv_err_set(err, EFBIG, 400, "data",
				 "Adding this part would exceed the maximum upload size of %llu "
				 "bytes",
				 (unsigned long long)st->lim.max_upload_bytes);
	struct part p = {.bytes = bytes, .created_at = srv_now()};
	char path[4096];
	if (rc == 0) {
		p.seq = srv_seq_next(&st->seq);
		if ((rc = srv_id_make("part_", p.seq, p.id)) < 0 ||
		    (rc = srv_pathf(path, sizeof path, st->dir, "parts/%s/%s", u->id, p.id)) < 0)
			rc = srv_disk_err(err, -rc, "store the part");
	}
	if (rc == 0 && rename(blob->path, path) < 0)
		rc = srv_disk_err(err, errno, "store the part");
	if (rc == 0 && srv_part_push(u, &p) < 0) {
		unlink(path);
		rc = srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	if (rc == 0) {
		blob->path[0] = '\0';
		u->parts_bytes += bytes;
		take_place(u, blob); /* an empty body never began */
		if (blob->start_no < u->nslots) {
			u->slots[blob->start_no].state = SLOT_COMMITTED;
			u->slots[blob->start_no].idx = u->nparts - 1;
		}
		*out = srv_part_json(&p, u->id);
	}
	pthread_mutex_unlock(&st->mu);
	if (rc < 0)
		srv_blob_abort(blob);
	/* the part is hashed early by srv_part_end, once it is answered */
	return rc;
}

void srv_store_reap(struct srv_store *st)
{
	for (;;) {
		pthread_mutex_lock(&st->mu);
		char *path = st->gone.n ? st->gone.v[--st->gone.n] : NULL;
		pthread_mutex_unlock(&st->mu);
		if (!path)
			return;
		srv_content_remove(path);
		free(path);
	}
}

void srv_part_end(struct srv_store *st, struct srv_blob *blob)
{
	srv_blob_abort(blob);
	if (!blob->owner[0])
		return;
	struct upload *u = NULL;
	struct srv_err err;
	pthread_mutex_lock(&st->mu);
	bool found = upload_lookup(st, blob->owner, &u, &err) == 0;
	if (found && blob->start_no < u->nslots && u->slots[blob->start_no].state == SLOT_OPEN)
		u->slots[blob->start_no].state = SLOT_GONE;
	pthread_mutex_unlock(&st->mu);
	blob->owner[0] = '\0';
	/* its part, or the parts waiting behind its gap: uploads are never freed while the
	 * store is open */
	if (found)
		srv_early_advance(st, u);
}

static const struct part *part_find(const struct upload *u, const char *id)
{
	uint64_t seq;
	if (!srv_id_parse("part_", id, &seq))
		return NULL;
	size_t lo = 0, hi = u->nparts;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (u->parts[mid].seq == seq)
			return strcmp(u->parts[mid].id, id) == 0 ? &u->parts[mid] : NULL;
		if (u->parts[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Resolves the listed parts in order, checks ids and the byte count (store lock held). */
static int resolve_parts(const struct upload *u, const struct srv_complete_req *c,
			 const struct part ***out, struct srv_err *err)
{
	const struct part **list = calloc(c->n ? c->n : 1, sizeof *list);
	bool *seen = calloc(u->nparts ? u->nparts : 1, 1);
	int rc = (list && seen) ? 0 : srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	uint64_t total = 0;
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(c->ids, i));
		const struct part *p = part_find(u, id);
		if (!p) {
			rc = srv_err_set(err, EINVAL, 400, "part_ids",
					 "Part %.64s does not exist in upload %s", id, u->id);
			break;
		}
		size_t idx = (size_t)(p - u->parts);
		if (seen[idx]) {
			rc = srv_err_set(err, EINVAL, 400, "part_ids",
					 "Part %s is listed more than once", p->id);
			break;
		}
		seen[idx] = true;
		list[i] = p;
		total += p->bytes;
	}
	if (rc == 0 && total != u->bytes)
		rc = srv_err_set(err, EINVAL, 400, "bytes",
				 "The listed parts hold %llu bytes, but the upload was created "
				 "with bytes=%llu",
				 (unsigned long long)total, (unsigned long long)u->bytes);
	free(seen);
	if (rc < 0)
		free(list);
	else
		*out = list;
	return rc;
}

/* Links the listed parts, in order, as the pieces of the content directory dir. */
static int link_parts(struct srv_store *st, const char *upload_id, const struct part *parts,
		      size_t n, const char *dir, struct srv_err *err)
{
	char *paths = malloc(n ? n * 4096 : 1);
	const char **srcs = calloc(n ? n : 1, sizeof *srcs);
	int rc = paths && srcs ? 0 : srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		srcs[i] = paths + i * 4096;
		if ((rc = srv_pathf(paths + i * 4096, 4096, st->dir, "parts/%s/%s", upload_id,
				parts[i].id)) < 0)
			rc = srv_disk_err(err, -rc, "store the file");
	}
	if (rc == 0 && (rc = srv_content_make(dir, srcs, n)) < 0)
		rc = srv_disk_err(err, -rc, "store the file");
	free(srcs);
	free(paths);
	return rc;
}

/* Creates the File for a completed upload and records both (store lock held). */
static int finish_upload(struct srv_store *st, struct upload *u, const char *tmp_path, char **sig,
			 struct srv_err *err)
{
	struct file *f = calloc(1, sizeof *f);
	if (!f || !(f->filename = strdup(u->filename))) {
		srv_file_free(f);
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	f->seq = srv_seq_next(&st->seq);
	f->bytes = u->bytes;
	f->created_at = srv_now();
	snprintf(f->purpose, sizeof f->purpose, "%s", u->purpose);
	snprintf(f->upload_id, sizeof f->upload_id, "%s", u->id);
	f->expires_at = srv_st_file_expiry(f->purpose, f->created_at, u->file_expires_after);
	char path[4096];
	int rc = srv_id_make("file-", f->seq, f->id);
	if (rc == 0)
		rc = srv_pathf(path, sizeof path, st->dir, "content/%s", f->id);
	if (rc == 0 && rename(tmp_path, path) < 0)
		rc = -errno;
	if (rc == 0 && (rc = srv_persist_file(st, f)) < 0)
		srv_content_remove(path);
	if (rc == 0 && (rc = srv_vec_push(&st->files, f)) < 0) {
		char rec[4096];
		if (srv_pathf(rec, sizeof rec, st->dir, "files/%s.json", f->id) == 0)
			unlink(rec);
		srv_content_remove(path);
	}
	if (rc < 0) {
		srv_file_free(f);
		return srv_disk_err(err, -rc, "record the file");
	}
	u->status = U_COMPLETED;
	u->complete_sig = *sig;
	*sig = NULL;
	u->file_json = srv_file_json(f, false);
	/* The file record names its upload, so a crash before this write is repaired at load. */
	if (srv_persist_upload(st, u) < 0)
		fprintf(stderr, "uploadfs-server: could not record completion of %s\n", u->id);
	drop_parts(st, u);
	return 0;
}

int srv_upload_complete(struct srv_store *st, const char *upload_id, json_object *req,
			json_object **out, uint64_t *hashed_early, struct srv_err *err)
{
	struct srv_complete_req c = {0};
	*hashed_early = 0;
	int rc = srv_parse_complete(req, &c, err);
	if (rc < 0)
		return rc;

	struct upload *u = NULL;
	const struct part **list = NULL;
	struct part *parts = NULL; /* the listed parts, copied: u->parts may grow meanwhile */
	EVP_MD_CTX *md = NULL;
	size_t from = 0; /* the listed parts before this one are in md already */
	char tmp[4096] = "";

	/* parts answered whose request has not ended yet are hashed first */
	pthread_mutex_lock(&st->mu);
	rc = upload_lookup(st, upload_id, &u, err);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		srv_early_advance(st, u);
	pthread_mutex_lock(&st->mu);
	/* a concurrent complete (a client's retry), or parts still being hashed */
	while (rc == 0 && (u->busy || u->early_busy))
		pthread_cond_wait(&st->cv, &st->mu);
	if (rc == 0 && u->status == U_COMPLETED) {
		if (u->complete_sig && strcmp(u->complete_sig, c.sig) == 0)
			*out = srv_upload_json(u, false);
		else
			rc = not_pending(u, err);
		pthread_mutex_unlock(&st->mu);
		free(c.sig);
		return rc;
	}
	if (rc == 0 && !upload_live(st, u, srv_now()))
		rc = not_pending(u, err);
	if (rc == 0)
		rc = resolve_parts(u, &c, &list, err);
	if (rc == 0 && !(parts = calloc(c.n ? c.n : 1, sizeof *parts)))
		rc = srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	for (size_t i = 0; rc == 0 && i < c.n; i++)
		parts[i] = *list[i];
	/* The early hash serves when the list begins with the parts it holds, in its order; a
	 * copy of it is finished, so a refused md5 keeps it for the next complete. */
	bool early = rc == 0 && u->early_md && !u->early_broken && u->early_n <= c.n;
	for (size_t i = 0; early && i < u->early_n; i++)
		early = list[i] == &u->parts[u->early_idx[i]];
	if (rc == 0) {
		md = EVP_MD_CTX_new();
		if (!md || (early ? EVP_MD_CTX_copy_ex(md, u->early_md)
				  : EVP_DigestInit_ex(md, EVP_md5(), NULL)) != 1)
			rc = srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
		from = early ? u->early_n : 0;
	}
	if (rc == 0 && (rc = srv_pathf(tmp, sizeof tmp, st->dir, "content/.tmp-%s", u->id)) < 0)
		rc = srv_disk_err(err, -rc, "store the file");
	if (rc == 0)
		u->busy = true;
	pthread_mutex_unlock(&st->mu);
	free(list);
	for (size_t i = 0; rc == 0 && i < from; i++)
		*hashed_early += parts[i].bytes;

	/* The long part, without the lock: parts are immutable and nothing removes them while
	 * the upload is busy. One read of the bytes not hashed yet, and no copy: the content
	 * is the parts, linked in order. */
	if (rc == 0) {
		char md5[33] = "";
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;
		rc = srv_hash_parts(st, u->id, parts, from, c.n, md, err);
		if (rc == 0 && (EVP_DigestFinal_ex(md, h, &hl) != 1 || hl != 16))
			rc = srv_err_set(err, ENOMEM, 500, NULL, "could not hash the file");
		for (unsigned i = 0; rc == 0 && i < 16; i++)
			snprintf(md5 + 2 * i, 3, "%02x", h[i]);
		if (rc == 0 && c.md5[0] && strcmp(c.md5, md5) != 0)
			rc = srv_err_set(err, EBADMSG, 400, "md5",
					 "md5 mismatch: the request says %s, the uploaded bytes "
					 "hash to %s",
					 c.md5, md5);
		if (rc == 0) {
			srv_content_remove(tmp); /* a former try's, cut short */
			rc = link_parts(st, u->id, parts, c.n, tmp, err);
		}

		pthread_mutex_lock(&st->mu);
		u->busy = false;
		pthread_cond_broadcast(&st->cv);
		if (rc == 0)
			rc = finish_upload(st, u, tmp, &c.sig, err);
		if (rc == 0)
			*out = srv_upload_json(u, false);
		pthread_mutex_unlock(&st->mu);
		if (rc < 0)
			srv_content_remove(tmp);
	}
	EVP_MD_CTX_free(md);
	free(parts);
	free(c.sig);
	return rc;
}

int srv_upload_cancel(struct srv_store *st, const char *upload_id, json_object **out,
		      struct srv_err *err)
{
	struct upload *u = NULL;
	pthread_mutex_lock(&st->mu);
	int rc = upload_lookup(st, upload_id, &u, err);
	while (rc == 0 && u->busy)
		pthread_cond_wait(&st->cv, &st->mu);
	if (rc == 0 && u->status == U_PENDING && upload_live(st, u, srv_now())) {
		u->status = U_CANCELLED;
		if ((rc = srv_persist_upload(st, u)) < 0) {
			u->status = U_PENDING;
			rc = srv_disk_err(err, -rc, "record the cancellation");
		} else {
			drop_parts(st, u);
		}
	} else if (rc == 0 && u->status != U_CANCELLED) {
		rc = not_pending(u, err);
	}
	/* Cancelling a cancelled upload answers the same object: a retry is harmless. */
	if (rc == 0)
		*out = srv_upload_json(u, false);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- open, load, repair ---- */

/* Removes what a crash can leave behind: tmp files, content with no record, records whose
 * content is gone, part directories of finished uploads. */
static void repair(struct srv_store *st)
{
	char path[4096];
	for (size_t i = 0; i < st->files.n;) {
		struct file *f = st->files.v[i];
		struct srv_content *c = NULL;
		bool whole = srv_pathf(path, sizeof path, st->dir, "content/%s", f->id) == 0 &&
			     srv_content_open(path, &c) == 0 && srv_content_bytes(c) == f->bytes;
		srv_content_close(c);
		if (!whole) {
			fprintf(stderr, "uploadfs-server: dropping %s: its content is missing\n",
				f->id);
			srv_st_remove_file(st, i);
			continue;
		}
		/* The File exists, so its upload completed even if that record was not written. */
		struct upload *u =
		    f->upload_id[0] ? srv_vec_lookup(&st->uploads, "upload_", f->upload_id) : NULL;
		if (u && u->status != U_COMPLETED) {
			u->status = U_COMPLETED;
			json_object_put(u->file_json);
			u->file_json = srv_file_json(f, false);
			srv_persist_upload(st, u);
		}
		i++;
	}
	for (size_t i = 0; i < st->uploads.n; i++) {
		struct upload *u = st->uploads.v[i];
		if (u->status == U_PENDING)
			srv_load_parts(st, u);
		else
			drop_parts(st, u);
	}
	DIR *d;
	struct dirent *de;
	if (srv_pathf(path, sizeof path, st->dir, "content") == 0 && (d = opendir(path))) {
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char sub[4096];
			if (!srv_vec_lookup(&st->files, "file-", de->d_name) &&
			    srv_pathf(sub, sizeof sub, st->dir, "content/%s", de->d_name) == 0)
				srv_content_remove(sub);
		}
		closedir(d);
	}
	if (srv_pathf(path, sizeof path, st->dir, "parts") == 0 && (d = opendir(path))) {
		while ((de = readdir(d))) {
			bool gone = strncmp(de->d_name, ".gone-", 6) == 0;
			if (!gone && (de->d_name[0] == '.' ||
				      srv_vec_lookup(&st->uploads, "upload_", de->d_name)))
				continue;
			char sub[4096];
			if (srv_pathf(sub, sizeof sub, st->dir, "parts/%s", de->d_name) == 0)
				srv_content_remove(sub);
		}
		closedir(d);
	}
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int srv_store_open(const char *dir, const struct srv_limits *lim, struct srv_store **out,
		   struct srv_err *err)
{
	struct srv_store *st = calloc(1, sizeof *st);
	if (!st)
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	st->lock_fd = -1;
	st->lim = *lim;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	int rc = 0;
	if (!(st->dir = strdup(dir)))
		rc = srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	static const char *const subs[] = {"", "uploads", "parts", "files", "content"};
	char path[4096];
	for (size_t i = 0; rc == 0 && i < 5; i++) {
		if ((rc = srv_pathf(path, sizeof path, st->dir, "%s", subs[i])) == 0)
			rc = mkdir_p(path, 0700);
		if (rc < 0)
			rc = srv_err_set(err, -rc, 500, NULL, "cannot create %s: %s", path,
					 strerror(-rc));
	}
	if (rc == 0 && srv_pathf(path, sizeof path, st->dir, "LOCK") == 0) {
		st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
			rc = srv_err_set(err, EBUSY, 500, NULL,
					 "%s is in use by another uploadfs-server", dir);
	}
	if (rc == 0 && (rc = srv_load_files(st)) < 0)
		rc = srv_err_set(err, -rc, 500, NULL, "cannot load files: %s", strerror(-rc));
	if (rc == 0 && (rc = srv_load_uploads(st)) < 0)
		rc = srv_err_set(err, -rc, 500, NULL, "cannot load uploads: %s", strerror(-rc));
	if (rc < 0) {
		srv_store_close(st);
		return rc;
	}
	repair(st);
	*out = st;
	return 0;
}

void srv_store_close(struct srv_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->uploads.n; i++)
		srv_upload_free(st->uploads.v[i]);
	for (size_t i = 0; i < st->files.n; i++)
		srv_file_free(st->files.v[i]);
	for (size_t i = 0; i < st->gone.n; i++)
		free(st->gone.v[i]); /* removed at the next start */
	free(st->uploads.v);
	free(st->files.v);
	free(st->gone.v);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st->dir);
	free(st);
}
