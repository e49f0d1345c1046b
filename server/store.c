#include "store.h"

#include "atomicfile.h"
#include "content.h"
#include "ids.h"
#include "purpose.h"
#include "request.h"

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

/* Per read of a part being hashed. */
#define HASH_BUF      (128u << 10)
#define BATCH_EXPIRY  2592000 /* 30 days: OpenAI's default for purpose=batch */

enum upload_status { U_PENDING, U_COMPLETED, U_CANCELLED, U_EXPIRED };
static const char *const status_names[] = {"pending", "completed", "cancelled", "expired"};


struct part {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
};

enum slot_state { SLOT_OPEN, SLOT_COMMITTED, SLOT_HASHED, SLOT_GONE };
struct slot {
	enum slot_state state;
	size_t idx;	/* committed, hashed: the part's index in parts[] */
	bool placed;	/* the client said where the part sits in the file: */
	uint64_t place; /* at this offset */
};

struct upload {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at;
	char *filename;
	char *mime_type;
	char purpose[16];
	enum upload_status status;
	int64_t file_expires_after; /* 0: the purpose's default */
	struct part *parts;	    /* sorted by seq */
	size_t nparts, cap_parts;
	uint64_t parts_bytes;
	bool busy;		/* a complete is hashing and linking the content */
	/* The MD5 of the parts as they arrive, in the order their bodies began: a client
	 * sends the file's parts in order, parallel senders included, even when they finish
	 * out of it. Each part request has a slot once its body begins; the hasher reads
	 * committed parts slot by slot into early_md, waits at a slot still in flight and
	 * skips a slot whose request failed. A complete whose list begins with the parts hashed
	 * so far hashes only the rest; any other order hashes the parts from the start. */
	struct slot *slots;	/* one per part body begun, in that order */
	size_t nslots, cap_slots;
	size_t early_next;	/* the next slot to hash (placed slots: to look at first) */
	uint64_t early_bytes;	/* hashed so far: the offset of the next part (placed slots) */
	size_t *early_idx;	/* indexes in parts[] of the parts hashed, in order */
	size_t early_n, cap_early;
	EVP_MD_CTX *early_md;	/* NULL: nothing hashed yet */
	bool early_busy;	/* a thread is hashing (without the lock) */
	bool early_broken;	/* a read failed, or the parts were dropped meanwhile */
	bool early_off;		/* parts from before a restart: their start order is unknown */
	char *complete_sig;	/* the part_ids+md5 the upload was completed with */
	json_object *file_json; /* the File created at completion */
};

struct file {
	char id[SRV_ID_MAX];
	uint64_t seq;
	uint64_t bytes;
	int64_t created_at;
	int64_t expires_at; /* 0: never */
	char *filename;
	char purpose[16];
	char upload_id[SRV_ID_MAX];
	unsigned readers; /* downloads open (srv_download_open) */
	bool removed;	  /* deleted while read: the last reader removes the content */
};

/* Pointers kept sorted by their object's sequence number. */
struct vec {
	void **v;
	size_t n, cap;
};

struct srv_store {
	char *dir;
	int lock_fd;
	struct srv_limits lim;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled when a complete clears upload->busy */
	struct srv_seq seq;
	struct vec uploads; /* struct upload *, never freed while open */
	struct vec files;   /* struct file * */
	int64_t last_sweep;
	struct vec gone;    /* char *: paths set aside, for srv_store_reap to remove */
};

/* ---- errors ---- */

static int disk_err(struct srv_err *err, int e, const char *what)
{
	fprintf(stderr, "uploadfs-server: %s: %s\n", what, strerror(e));
	return srv_err_set(err, e, 500, NULL, "The server could not %s", what);
}

/* ---- small helpers ---- */

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int vec_push(struct vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void **nv = realloc(v->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

/* Both object kinds start with an id and a seq; binary search on the seq. */
struct seq_head {
	char id[SRV_ID_MAX];
	uint64_t seq;
};

static ssize_t vec_find(const struct vec *v, uint64_t seq)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t s = ((const struct seq_head *)v->v[mid])->seq;
		if (s == seq)
			return (ssize_t)mid;
		if (s < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* First index whose seq is > seq (for listing after a cursor). */
static size_t vec_upper(const struct vec *v, uint64_t seq)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (((const struct seq_head *)v->v[mid])->seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int cmp_seq(const void *a, const void *b)
{
	uint64_t x = (*(const struct seq_head *const *)a)->seq;
	uint64_t y = (*(const struct seq_head *const *)b)->seq;
	return x < y ? -1 : x > y;
}

static void *vec_lookup(const struct vec *v, const char *prefix, const char *id)
{
	uint64_t seq;
	if (!srv_id_parse(prefix, id, &seq))
		return NULL;
	ssize_t i = vec_find(v, seq);
	if (i < 0 || strcmp(((struct seq_head *)v->v[i])->id, id) != 0)
		return NULL;
	return v->v[i];
}

static int pathf(char *out, size_t len, const struct srv_store *st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pathf(char *out, size_t len, const struct srv_store *st, const char *fmt, ...)
{
	int n = snprintf(out, len, "%s/", st->dir);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(out + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Writes a JSON document so that readers see the old or the new one, never a torn one. Not
 * fsynced: a process crash loses nothing, a power cut may (docs/SERVER.md). */
static int write_json_atomic(const char *path, json_object *obj)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	return up_write_file_atomic(path, s, len, false);
}

static int64_t file_expiry(const char *purpose, int64_t created_at, int64_t expires_after)
{
	if (expires_after > 0)
		return created_at + expires_after;
	if (strcmp(purpose, "batch") == 0)
		return created_at + BATCH_EXPIRY;
	return 0;
}

/* ---- JSON shapes ---- */

static json_object *file_to_json(const struct file *f, bool record)
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

static json_object *upload_to_json(const struct upload *u, bool record)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "object", json_object_new_string("upload"));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)u->bytes));
	json_object_object_add(o, "created_at", json_object_new_int64(u->created_at));
	json_object_object_add(o, "expires_at", json_object_new_int64(u->expires_at));
	json_object_object_add(o, "filename", json_object_new_string(u->filename));
	json_object_object_add(o, "purpose", json_object_new_string(u->purpose));
	json_object_object_add(o, "status", json_object_new_string(status_names[u->status]));
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

static int persist_upload(struct srv_store *st, const struct upload *u)
{
	char path[4096];
	int rc = pathf(path, sizeof path, st, "uploads/%s.json", u->id);
	if (rc < 0)
		return rc;
	json_object *o = upload_to_json(u, true);
	rc = write_json_atomic(path, o);
	json_object_put(o);
	return rc;
}

static int persist_file(struct srv_store *st, const struct file *f)
{
	char path[4096];
	int rc = pathf(path, sizeof path, st, "files/%s.json", f->id);
	if (rc < 0)
		return rc;
	json_object *o = file_to_json(f, true);
	rc = write_json_atomic(path, o);
	json_object_put(o);
	return rc;
}

static void early_reset(struct upload *u);

static void upload_free(struct upload *u)
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

static void file_free(struct file *f)
{
	if (!f)
		return;
	free(f->filename);
	free(f);
}

/* ---- state transitions (store lock held) ---- */

/* Moves where/id out of the way at once (store lock held); its bytes are freed later by
 * srv_store_reap, off the request's path: unlinking a GiB of pages still being written back
 * waits for the disk, and no answer must. What a crash leaves is removed at the next start. */
static void set_aside(struct srv_store *st, const char *where, const char *id)
{
	char path[4096], gone[4096];
	if (pathf(path, sizeof path, st, "%s/%s", where, id) < 0)
		return;
	char *g = NULL;
	if (pathf(gone, sizeof gone, st, "%s/.gone-%s", where, id) == 0 && (g = strdup(gone)) &&
	    rename(path, gone) == 0 && vec_push(&st->gone, g) == 0)
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
		early_reset(u);
}

/* Moves a pending upload past its expiry to "expired"; returns true if it is pending. */
static bool upload_live(struct srv_store *st, struct upload *u, int64_t now)
{
	if (u->status == U_PENDING && !u->busy && now >= u->expires_at) {
		u->status = U_EXPIRED;
		if (persist_upload(st, u) < 0)
			fprintf(stderr, "uploadfs-server: could not record expiry of %s\n", u->id);
		drop_parts(st, u);
	}
	return u->status == U_PENDING;
}

static int not_pending(const struct upload *u, struct srv_err *err)
{
	return srv_err_set(err, EINVAL, 400, NULL, "Upload %s is %s and can no longer be modified",
			   u->id, status_names[u->status]);
}

static int upload_lookup(struct srv_store *st, const char *id, struct upload **out,
			 struct srv_err *err)
{
	struct upload *u = vec_lookup(&st->uploads, "upload_", id);
	if (!u)
		return srv_err_set(err, ENOENT, 404, NULL, "No such Upload object: %.64s", id);
	*out = u;
	return 0;
}

/* Moves a file's content aside, to be freed by srv_store_reap off the request's path (store
 * lock held, or the file out of the store). */
static void drop_content(struct srv_store *st, const struct file *f)
{
	set_aside(st, "content", f->id);
}

static void remove_file(struct srv_store *st, size_t idx)
{
	struct file *f = st->files.v[idx];
	char path[4096];
	/* Record first: a crash in between leaves an orphan blob, never a record without bytes. */
	if (pathf(path, sizeof path, st, "files/%s.json", f->id) == 0)
		unlink(path);
	memmove(&st->files.v[idx], &st->files.v[idx + 1],
		(st->files.n - idx - 1) * sizeof st->files.v[0]);
	st->files.n--;
	if (f->readers) {
		f->removed = true; /* the last reader drops the content and frees f */
		return;
	}
	drop_content(st, f);
	file_free(f);
}

/* Expires uploads and files whose time has come, at most once a second. */
static void sweep(struct srv_store *st)
{
	int64_t now = now_s();
	if (now == st->last_sweep)
		return;
	st->last_sweep = now;
	for (size_t i = 0; i < st->uploads.n; i++)
		upload_live(st, st->uploads.v[i], now);
	for (size_t i = 0; i < st->files.n;) {
		struct file *f = st->files.v[i];
		if (f->expires_at && now >= f->expires_at)
			remove_file(st, i);
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
		upload_free(u);
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	snprintf(u->purpose, sizeof u->purpose, "%s", c.purpose);
	u->bytes = c.bytes;
	u->file_expires_after = c.expires_after;
	u->status = U_PENDING;

	pthread_mutex_lock(&st->mu);
	sweep(st);
	u->seq = srv_seq_next(&st->seq);
	u->created_at = now_s();
	u->expires_at = u->created_at + st->lim.expire_seconds;
	rc = srv_id_make("upload_", u->seq, u->id);
	if (rc == 0)
		rc = persist_upload(st, u);
	if (rc == 0)
		rc = vec_push(&st->uploads, u);
	if (rc < 0) {
		pthread_mutex_unlock(&st->mu);
		upload_free(u);
		return disk_err(err, -rc, "record the upload");
	}
	*out = upload_to_json(u, false);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static int blob_open(struct srv_blob *blob, const char *dirpath, struct srv_err *err)
{
	char rnd[SRV_ID_MAX];
	int rc = srv_id_make(".tmp-", 0, rnd);
	if (rc < 0)
		return disk_err(err, -rc, "create a temporary file");
	if (snprintf(blob->path, sizeof blob->path, "%s/%s", dirpath, rnd) >=
	    (int)sizeof blob->path)
		return disk_err(err, ENAMETOOLONG, "create a temporary file");
	blob->fd = open(blob->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (blob->fd < 0)
		return disk_err(err, errno, "create a temporary file");
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
static int blob_close(struct srv_blob *blob)
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
	struct upload *u = NULL;
	pthread_mutex_lock(&st->mu);
	int rc = upload_lookup(st, upload_id, &u, err);
	if (rc == 0 && !upload_live(st, u, now_s()))
		rc = not_pending(u, err);
	char dir[4096];
	if (rc == 0 && (rc = pathf(dir, sizeof dir, st, "parts/%s", u->id)) < 0)
		rc = disk_err(err, -rc, "create the part directory");
	if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		rc = disk_err(err, errno, "create the part directory");
	if (rc == 0)
		rc = blob_open(blob, dir, err);
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

static int part_push(struct upload *u, const struct part *p)
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

static json_object *part_to_json(const struct part *p, const char *upload_id)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(p->id));
	json_object_object_add(o, "object", json_object_new_string("upload.part"));
	json_object_object_add(o, "created_at", json_object_new_int64(p->created_at));
	json_object_object_add(o, "upload_id", json_object_new_string(upload_id));
	return o;
}

/* Forgets the early hash (lock held, no hashing running). */
static void early_reset(struct upload *u)
{
	EVP_MD_CTX_free(u->early_md);
	u->early_md = NULL;
	u->early_n = 0;
	u->early_next = 0;
	u->early_bytes = 0;
	for (size_t i = 0; i < u->nslots; i++)
		if (u->slots[i].state == SLOT_HASHED)
			u->slots[i].state = SLOT_COMMITTED;
	u->early_broken = false;
}

/* Hashes one part's n bytes from fd into md (no lock: parts are immutable). */
static int hash_fd(int fd, uint64_t n, EVP_MD_CTX *md, char *buf)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (n) {
		ssize_t r = read(fd, buf, n < HASH_BUF ? n : HASH_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		if (EVP_DigestUpdate(md, buf, (size_t)r) != 1)
			return -ENOMEM;
		n -= (uint64_t)r;
	}
	return 0;
}

static int hash_part(struct srv_store *st, const char *upload_id, const struct part *p,
		     EVP_MD_CTX *md, char *buf)
{
	char path[4096];
	int rc = pathf(path, sizeof path, st, "parts/%s/%s", upload_id, p->id);
	int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return rc < 0 ? rc : -errno;
	rc = hash_fd(fd, p->bytes, md, buf);
	close(fd);
	return rc;
}

/* The slot whose part is hashed next, or -1 to wait for more (lock held). Parts the client
 * placed go by their offset: the committed part at the offset hashed so far, whatever the
 * order they arrived in. Others go in the order their bodies began, waiting at a part still
 * in flight and stepping over a request that failed (a retry has a slot of its own). */
static ssize_t next_to_hash(struct upload *u)
{
	if (u->nslots && u->slots[0].placed) {
		/* from where the last one was found: parts mostly come in about their order */
		for (size_t k = 0; k < u->nslots; k++) {
			size_t i = (u->early_next + k) % u->nslots;
			if (u->slots[i].state == SLOT_COMMITTED && u->slots[i].placed &&
			    u->slots[i].place == u->early_bytes) {
				u->early_next = i + 1;
				return (ssize_t)i;
			}
		}
		return -1;
	}
	while (u->early_next < u->nslots && u->slots[u->early_next].state == SLOT_GONE)
		u->early_next++;
	if (u->early_next >= u->nslots || u->slots[u->early_next].state != SLOT_COMMITTED)
		return -1;
	return (ssize_t)u->early_next++;
}

/* Brings the early hash up to the parts committed so far. One thread at a time per upload
 * hashes; the others leave it the work. Called without the lock. */
static void early_advance(struct srv_store *st, struct upload *u)
{
	char *buf = NULL;
	pthread_mutex_lock(&st->mu);
	if (u->early_off && !u->early_busy && !u->busy)
		early_reset(u);
	if (u->early_busy || u->busy || u->status != U_PENDING || u->early_broken ||
	    u->early_off) {
		pthread_mutex_unlock(&st->mu);
		return;
	}
	if (!u->early_md) {
		u->early_md = EVP_MD_CTX_new();
		if (!u->early_md || EVP_DigestInit_ex(u->early_md, EVP_md5(), NULL) != 1) {
			u->early_broken = true;
			pthread_mutex_unlock(&st->mu);
			return;
		}
	}
	u->early_busy = true;
	ssize_t next;
	while ((next = next_to_hash(u)) >= 0 && !u->early_broken && !u->early_off &&
	       u->status == U_PENDING && !u->busy) {
		struct slot sl = u->slots[next];
		if (u->early_n == u->cap_early) {
			size_t cap = u->cap_early ? u->cap_early * 2 : 16;
			size_t *ni = realloc(u->early_idx, cap * sizeof *ni);
			if (!ni) {
				u->early_broken = true;
				break;
			}
			u->early_idx = ni;
			u->cap_early = cap;
		}
		struct part p = u->parts[sl.idx];
		EVP_MD_CTX *md = u->early_md;
		pthread_mutex_unlock(&st->mu);
		int rc = buf ? 0 : -ENOMEM;
		if (!buf && (buf = malloc(HASH_BUF)))
			rc = 0;
		if (rc == 0)
			rc = hash_part(st, u->id, &p, md, buf);
		pthread_mutex_lock(&st->mu);
		if (rc < 0) {
			u->early_broken = true;
			break;
		}
		u->early_idx[u->early_n++] = sl.idx;
		u->early_bytes += p.bytes;
		if ((size_t)next < u->nslots)
			u->slots[next].state = SLOT_HASHED;
	}
	u->early_busy = false;
	if (u->early_broken || u->early_off || u->status != U_PENDING)
		early_reset(u); /* a later part starts over; complete hashes from the parts */
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
	free(buf);
}

int srv_part_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes, json_object **out,
		    struct srv_err *err)
{
	int rc = blob_close(blob);
	if (rc < 0) {
		srv_blob_abort(blob);
		return disk_err(err, -rc, "store the part");
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
	if (rc == 0 && !upload_live(st, u, now_s()))
		rc = not_pending(u, err);
	if (rc == 0 && u->parts_bytes + bytes > st->lim.max_upload_bytes)
		rc = srv_err_set(err, EFBIG, 400, "data",
				 "Adding this part would exceed the maximum upload size of %llu "
				 "bytes",
				 (unsigned long long)st->lim.max_upload_bytes);
	struct part p = {.bytes = bytes, .created_at = now_s()};
	char path[4096];
	if (rc == 0) {
		p.seq = srv_seq_next(&st->seq);
		if ((rc = srv_id_make("part_", p.seq, p.id)) < 0 ||
		    (rc = pathf(path, sizeof path, st, "parts/%s/%s", u->id, p.id)) < 0)
			rc = disk_err(err, -rc, "store the part");
	}
	if (rc == 0 && rename(blob->path, path) < 0)
		rc = disk_err(err, errno, "store the part");
	if (rc == 0 && part_push(u, &p) < 0) {
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
		*out = part_to_json(&p, u->id);
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
		early_advance(st, u);
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

/* Hashes the parts from..n-1 into md, reading each once. */
static int hash_parts(struct srv_store *st, const char *upload_id, const struct part *parts,
		      size_t from, size_t n, EVP_MD_CTX *md, struct srv_err *err)
{
	char *buf = malloc(HASH_BUF);
	int rc = buf ? 0 : srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	for (size_t i = from; rc == 0 && i < n; i++)
		if ((rc = hash_part(st, upload_id, &parts[i], md, buf)) < 0)
			rc = disk_err(err, -rc, "read a part");
	free(buf);
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
		if ((rc = pathf(paths + i * 4096, 4096, st, "parts/%s/%s", upload_id,
				parts[i].id)) < 0)
			rc = disk_err(err, -rc, "store the file");
	}
	if (rc == 0 && (rc = srv_content_make(dir, srcs, n)) < 0)
		rc = disk_err(err, -rc, "store the file");
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
		file_free(f);
		return srv_err_set(err, ENOMEM, 500, NULL, "out of memory");
	}
	f->seq = srv_seq_next(&st->seq);
	f->bytes = u->bytes;
	f->created_at = now_s();
	snprintf(f->purpose, sizeof f->purpose, "%s", u->purpose);
	snprintf(f->upload_id, sizeof f->upload_id, "%s", u->id);
	f->expires_at = file_expiry(f->purpose, f->created_at, u->file_expires_after);
	char path[4096];
	int rc = srv_id_make("file-", f->seq, f->id);
	if (rc == 0)
		rc = pathf(path, sizeof path, st, "content/%s", f->id);
	if (rc == 0 && rename(tmp_path, path) < 0)
		rc = -errno;
	if (rc == 0 && (rc = persist_file(st, f)) < 0)
		srv_content_remove(path);
	if (rc == 0 && (rc = vec_push(&st->files, f)) < 0) {
		char rec[4096];
		if (pathf(rec, sizeof rec, st, "files/%s.json", f->id) == 0)
			unlink(rec);
		srv_content_remove(path);
	}
	if (rc < 0) {
		file_free(f);
		return disk_err(err, -rc, "record the file");
	}
	u->status = U_COMPLETED;
	u->complete_sig = *sig;
	*sig = NULL;
	u->file_json = file_to_json(f, false);
	/* The file record names its upload, so a crash before this write is repaired at load. */
	if (persist_upload(st, u) < 0)
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
		early_advance(st, u);
	pthread_mutex_lock(&st->mu);
	/* a concurrent complete (a client's retry), or parts still being hashed */
	while (rc == 0 && (u->busy || u->early_busy))
		pthread_cond_wait(&st->cv, &st->mu);
	if (rc == 0 && u->status == U_COMPLETED) {
		if (u->complete_sig && strcmp(u->complete_sig, c.sig) == 0)
			*out = upload_to_json(u, false);
		else
			rc = not_pending(u, err);
		pthread_mutex_unlock(&st->mu);
		free(c.sig);
		return rc;
	}
	if (rc == 0 && !upload_live(st, u, now_s()))
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
	if (rc == 0 && (rc = pathf(tmp, sizeof tmp, st, "content/.tmp-%s", u->id)) < 0)
		rc = disk_err(err, -rc, "store the file");
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
		rc = hash_parts(st, u->id, parts, from, c.n, md, err);
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
			*out = upload_to_json(u, false);
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
	if (rc == 0 && u->status == U_PENDING && upload_live(st, u, now_s())) {
		u->status = U_CANCELLED;
		if ((rc = persist_upload(st, u)) < 0) {
			u->status = U_PENDING;
			rc = disk_err(err, -rc, "record the cancellation");
		} else {
			drop_parts(st, u);
		}
	} else if (rc == 0 && u->status != U_CANCELLED) {
		rc = not_pending(u, err);
	}
	/* Cancelling a cancelled upload answers the same object: a retry is harmless. */
	if (rc == 0)
		*out = upload_to_json(u, false);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* ---- files ---- */

int srv_file_begin(struct srv_store *st, struct srv_blob *blob, struct srv_err *err)
{
	blob->fd = -1;
	blob->path[0] = '\0';
	blob->owner[0] = '\0';
	char dir[4096];
	int rc = pathf(dir, sizeof dir, st, "content");
	if (rc < 0)
		return disk_err(err, -rc, "create a temporary file");
	return blob_open(blob, dir, err);
}

int srv_file_commit(struct srv_store *st, struct srv_blob *blob, uint64_t bytes,
		    const struct srv_file_form *form, json_object **out, struct srv_err *err)
{
	int rc = blob_close(blob);
	if (rc < 0)
		rc = disk_err(err, -rc, "store the file");
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
		file_free(f);
		srv_blob_abort(blob);
		return rc;
	}
	f->bytes = bytes;
	snprintf(f->purpose, sizeof f->purpose, "%s", form->purpose);

	pthread_mutex_lock(&st->mu);
	sweep(st);
	f->seq = srv_seq_next(&st->seq);
	f->created_at = now_s();
	f->expires_at = file_expiry(f->purpose, f->created_at, expires_after);
	char path[4096];
	rc = srv_id_make("file-", f->seq, f->id);
	if (rc == 0)
		rc = pathf(path, sizeof path, st, "content/%s", f->id);
	if (rc == 0 && rename(blob->path, path) < 0)
		rc = -errno;
	if (rc == 0) {
		blob->path[0] = '\0';
		if ((rc = persist_file(st, f)) < 0 || (rc = vec_push(&st->files, f)) < 0)
			unlink(path);
	}
	if (rc == 0)
		*out = file_to_json(f, false);
	pthread_mutex_unlock(&st->mu);
	if (rc < 0) {
		srv_blob_abort(blob);
		file_free(f);
		return disk_err(err, -rc, "record the file");
	}
	return 0;
}

static int file_lookup(struct srv_store *st, const char *id, struct file **out, ssize_t *idx,
		       struct srv_err *err)
{
	sweep(st);
	uint64_t seq;
	ssize_t i = srv_id_parse("file-", id, &seq) ? vec_find(&st->files, seq) : -1;
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
	sweep(st);
	const struct vec *v = &st->files;
	/* Walk in the requested order from just past the cursor. */
	size_t start = q->ascending ? (q->after ? vec_upper(v, after) : 0)
				    : (q->after ? vec_upper(v, after - 1) : v->n);
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
		json_object_array_add(data, file_to_json(f, false));
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
		*out = file_to_json(f, false);
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
		remove_file(st, (size_t)idx);
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
	if (rc == 0 && (rc = pathf(path, sizeof path, st, "content/%s", f->id)) < 0)
		rc = disk_err(err, -rc, "open the file");
	if (rc == 0)
		f->readers++; /* its content stays while read, even if the file is deleted */
	pthread_mutex_unlock(&st->mu);
	if (rc == 0 && (rc = srv_content_open(path, &d->content)) < 0) {
		rc = disk_err(err, -rc, "open the file");
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
		drop_content(st, f);
	pthread_mutex_unlock(&st->mu);
	if (last)
		file_free(f);
}

/* ---- open, load, repair ---- */

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
		file_free(f);
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
		if (strcmp(status, status_names[i]) == 0)
			s = i;
	if (s < 0 || !srv_id_parse("upload_", id, &u->seq) || !(u->filename = strdup(fn)) ||
	    !(u->mime_type = strdup(mime))) {
		upload_free(u);
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
	int rc = pathf(path, sizeof path, st, "%s", sub);
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
		if ((rc = vec_push(v, obj)) < 0) {
			free(obj);
			break;
		}
	}
	closedir(d);
	if (v->n)
		qsort(v->v, v->n, sizeof v->v[0], cmp_seq);
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
static int load_parts(struct srv_store *st, struct upload *u)
{
	char path[4096];
	int rc = pathf(path, sizeof path, st, "parts/%s", u->id);
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
		if ((rc = part_push(u, &p)) < 0)
			break;
		u->parts_bytes += p.bytes;
	}
	closedir(d);
	if (u->nparts)
		qsort(u->parts, u->nparts, sizeof *u->parts, cmp_part);
	u->early_off = u->nparts > 0; /* their start order is unknown: complete hashes them */
	return rc;
}

/* Removes what a crash can leave behind: tmp files, content with no record, records whose
 * content is gone, part directories of finished uploads. */
static void repair(struct srv_store *st)
{
	char path[4096];
	for (size_t i = 0; i < st->files.n;) {
		struct file *f = st->files.v[i];
		struct srv_content *c = NULL;
		bool whole = pathf(path, sizeof path, st, "content/%s", f->id) == 0 &&
			     srv_content_open(path, &c) == 0 && srv_content_bytes(c) == f->bytes;
		srv_content_close(c);
		if (!whole) {
			fprintf(stderr, "uploadfs-server: dropping %s: its content is missing\n",
				f->id);
			remove_file(st, i);
			continue;
		}
		/* The File exists, so its upload completed even if that record was not written. */
		struct upload *u =
		    f->upload_id[0] ? vec_lookup(&st->uploads, "upload_", f->upload_id) : NULL;
		if (u && u->status != U_COMPLETED) {
			u->status = U_COMPLETED;
			json_object_put(u->file_json);
			u->file_json = file_to_json(f, false);
			persist_upload(st, u);
		}
		i++;
	}
	for (size_t i = 0; i < st->uploads.n; i++) {
		struct upload *u = st->uploads.v[i];
		if (u->status == U_PENDING)
			load_parts(st, u);
		else
			drop_parts(st, u);
	}
	DIR *d;
	struct dirent *de;
	if (pathf(path, sizeof path, st, "content") == 0 && (d = opendir(path))) {
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char sub[4096];
			if (!vec_lookup(&st->files, "file-", de->d_name) &&
			    pathf(sub, sizeof sub, st, "content/%s", de->d_name) == 0)
				srv_content_remove(sub);
		}
		closedir(d);
	}
	if (pathf(path, sizeof path, st, "parts") == 0 && (d = opendir(path))) {
		while ((de = readdir(d))) {
			bool gone = strncmp(de->d_name, ".gone-", 6) == 0;
			if (!gone && (de->d_name[0] == '.' ||
				      vec_lookup(&st->uploads, "upload_", de->d_name)))
				continue;
			char sub[4096];
			if (pathf(sub, sizeof sub, st, "parts/%s", de->d_name) == 0)
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
		if ((rc = pathf(path, sizeof path, st, "%s", subs[i])) == 0)
			rc = mkdir_p(path, 0700);
		if (rc < 0)
			rc = srv_err_set(err, -rc, 500, NULL, "cannot create %s: %s", path,
					 strerror(-rc));
	}
	if (rc == 0 && pathf(path, sizeof path, st, "LOCK") == 0) {
		st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
			rc = srv_err_set(err, EBUSY, 500, NULL,
					 "%s is in use by another uploadfs-server", dir);
	}
	if (rc == 0 && (rc = load_records(st, "files", &st->files, parse_file)) < 0)
		rc = srv_err_set(err, -rc, 500, NULL, "cannot load files: %s", strerror(-rc));
	if (rc == 0 && (rc = load_records(st, "uploads", &st->uploads, parse_upload)) < 0)
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
		upload_free(st->uploads.v[i]);
	for (size_t i = 0; i < st->files.n; i++)
		file_free(st->files.v[i]);
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
