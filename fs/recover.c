#include "recover.h"

#include "journal.h"
#include "lifecycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int uf_recover_lock(struct uf_mount *m)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/lock", m->cfg.cache_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int rc = -errno;
		fprintf(stderr, "uploadfs: cannot open %s: %s\n", path, strerror(-rc));
		return rc;
	}
	/* flock belongs to the open file: the daemon keeps it across fuse_daemonize's fork */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		fprintf(stderr,
			"uploadfs: cache_dir %s is in use by another uploadfs mount; give each "
			"mount its own -o cache_dir\n",
			m->cfg.cache_dir);
		close(fd);
		return rc;
	}
	m->cache_lock_fd = fd;
	return 0;
}

/* A list of strings: the spools recovery keeps, the names it resumed. */
struct strs {
	char **v;
	size_t n;
};

static bool strs_has(const struct strs *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* Takes s (malloc'd, may be NULL); false if it could not be kept (then it is freed). */
static bool strs_take(struct strs *l, char *s)
{
	char **v = s ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
	if (!v) {
		free(s);
		return false;
	}
	l->v = v;
	l->v[l->n++] = s;
	return true;
}

static void strs_clear(struct strs *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct strs){0};
}

/* A record that can no longer be finished: its session is cancelled, its spool kept in
 * cache_dir/lost+found (the bytes of a closed file are never thrown away unseen), the
 * record removed, and one line says so. */
static void give_up(struct uf_mount *m, const char *record, struct up_journal_rec *r,
		    const char *why)
{
	if (r->upload_id[0]) {
		struct up_upload u = {0};
		struct up_error e;
		up_upload_cancel(m->client, r->upload_id, &u, &e);
		up_upload_clear(&u);
	}
	char dir[PATH_MAX], kept[PATH_MAX + 64] = "";
	snprintf(dir, sizeof dir, "%s/lost+found", m->cfg.cache_dir);
	const char *base = strrchr(r->spool, '/');
	if ((mkdir(dir, 0700) == 0 || errno == EEXIST) && base) {
		snprintf(kept, sizeof kept, "%s%s", dir, base);
		if (rename(r->spool, kept) < 0)
			kept[0] = '\0';
	}
	uf_log(m, UF_ERROR, "cannot finish the upload of %s: %s; %s%s", r->filename, why,
	       kept[0] ? "its bytes are kept in " : "its bytes are lost",
	       kept[0] ? kept : "");
	up_journal_remove(record);
}

/* The node a restored upload belongs to: a new one at its name, or the remote file it
 * replaces (tree lock held). NULL if the name holds anything else. */
static struct uf_node *place(struct uf_mount *m, const char *path)
{
	struct uf_node *n = uf_tree_place(&m->tree, path);
	if (n)
		return n;
	struct uf_node *d = m->tree.root;
	char *copy = strdup(path), *save = NULL;
	for (char *seg = copy ? strtok_r(copy, "/", &save) : NULL; seg && d;
	     seg = strtok_r(NULL, "/", &save))
		d = d->kind == UF_DIR ? uf_tree_child(d, seg) : NULL;
	free(copy);
	return d && d->kind == UF_FILE && !d->w && !d->finishing ? d : NULL;
}

/* Resumes one journal record; returns the spool it keeps, or NULL. Records come newest
 * first: one whose name a newer record resumed (in resumed) is given up. */
static char *recover_one(struct uf_mount *m, const char *record, struct strs *resumed)
{
	struct up_journal_rec r;
	if (up_journal_read(record, &r) < 0) {
		char aside[4500];
		snprintf(aside, sizeof aside, "%s.corrupt", record);
		rename(record, aside);
		up_journal_remove(record); /* its parts log names a session no record describes */
		uf_log(m, UF_WARN, "damaged journal record %s set aside", record);
		return NULL;
	}
	if (!r.md5[0]) {
		/* the file was still being written when the daemon stopped: it never closed,
		 * so nothing of it was promised; its session must not linger on the server */
		if (r.upload_id[0]) {
			struct up_upload u = {0};
			struct up_error e;
			up_upload_cancel(m->client, r.upload_id, &u, &e);
			up_upload_clear(&u);
		}
		uf_log(m, UF_WARN,
		       "%s was still being written when uploadfs stopped; its "
		       "upload %s is cancelled",
		       r.filename, r.upload_id[0] ? r.upload_id : "");
		unlink(r.spool);
		up_journal_remove(record);
		up_journal_rec_clear(&r);
		return NULL;
	}
	struct up_writer_config wc = {.client = m->client,
				      .async = m->async,
				      .spool_path = r.spool,
				      .part_size = r.part_size,
				      .max_size = m->cfg.max_file_size,
				      .journal_path = record};
	struct up_writer *w = NULL;
	int rc = up_writer_restore(&wc, &r, &w);
	if (rc < 0) {
		give_up(m, record, &r,
			rc == -EBADMSG ? "its spool file is not the one the journal describes"
				       : strerror(-rc));
		up_journal_rec_clear(&r);
		return NULL;
	}
	if (strs_has(resumed, r.filename)) {
		up_writer_keep_spool(w, r.spool); /* give_up moves it */
		up_writer_free(w);
		give_up(m, record, &r, "a newer version of it was closed after it");
		up_journal_rec_clear(&r);
		return NULL;
	}
	pthread_mutex_lock(&m->tree.mu);
	struct uf_node *n = place(m, r.filename);
	if (n) {
		n->w = w;
		n->upload_on_close = true;
		free(n->x_purpose);
		free(n->x_mime);
		n->x_purpose = strdup(r.purpose);
		n->x_mime = strdup(r.mime_type);
		n->pins++;
	}
	uf_tree_unlock(&m->tree);
	if (!n) {
		up_writer_keep_spool(w, r.spool); /* give_up moves it */
		up_writer_free(w);
		give_up(m, record, &r, "its name is a directory or another file being written");
		up_journal_rec_clear(&r);
		return NULL;
	}
	uf_log(m, UF_INFO, "resuming the upload of %s (%llu bytes)", r.filename,
	       (unsigned long long)r.size);
	strs_take(resumed, strdup(r.filename));
	uf_life_close(m, n, true);
	pthread_mutex_lock(&m->tree.mu);
	uf_life_unpin(m, n);
	uf_tree_unlock(&m->tree);
	char *keep = strdup(r.spool);
	up_journal_rec_clear(&r);
	return keep;
}

struct record {
	char *path;
	struct timespec mtime;
};

/* Newest first: of two records of one name (a file copied twice, crashed twice) the newer
 * is resumed, the older given up. */
static int newest_first(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
	return strcmp(x->path, y->path);
}

void uf_recover(struct uf_mount *m)
{
	struct strs kept = {0}, resumed = {0};
	size_t nrec = 0;
	struct record *recs = NULL;
	DIR *d = opendir(m->journal_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char record[4400];
		snprintf(record, sizeof record, "%s/%s", m->journal_dir, de->d_name);
		struct stat sb;
		if (up_journal_sweep_log(record) || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0 || stat(record, &sb) < 0)
			continue;
		struct record *nr = realloc(recs, (nrec + 1) * sizeof *nr);
		if (!nr || !(nr[nrec].path = strdup(record))) {
			recs = nr ? nr : recs;
			continue; /* left for the next mount */
		}
		recs = nr;
		recs[nrec++].mtime = sb.st_mtim;
	}
	if (d)
		closedir(d);
	if (nrec)
		qsort(recs, nrec, sizeof *recs, newest_first);
	for (size_t i = 0; i < nrec; i++) {
		strs_take(&kept, recover_one(m, recs[i].path, &resumed));
		free(recs[i].path);
	}
	free(recs);
	/* spool files no record names: files never closed, nothing promised */
	if ((d = opendir(m->spool_dir))) {
		while ((de = readdir(d))) {
			char path[4400];
			snprintf(path, sizeof path, "%s/%s", m->spool_dir, de->d_name);
			if (de->d_name[0] != '.' && !strs_has(&kept, path))
				unlink(path);
		}
		closedir(d);
	}
	strs_clear(&kept);
	strs_clear(&resumed);
}
