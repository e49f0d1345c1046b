/* The life of one upload: the transition table (core/session.c), each transition by
 * itself, the state a journal record restores at each crash point, and the writer through
 * them against a real server: the record exists once close returns, a crash at any point
 * after it resumes whatever the size, a failure drops the session at once. */
#include "check.h"
#include "fixture.h"
#include "journal.h"
#include "session.h"
#include "writer.h"

#include <openssl/evp.h>
#include <sys/stat.h>

/* The table as the design says it, written apart from core/session.c. */
static const struct {
	enum up_sstate from;
	enum up_sevent ev;
	enum up_sstate to;
	bool cancel;
	enum up_record rec;
} expected[] = {
    {UP_S_OPEN, UP_EV_ANNOUNCED, UP_S_EARLY, false, UP_REC_OPEN},
    {UP_S_OPEN, UP_EV_SEALED, UP_S_SEALED, false, UP_REC_CLOSED},
    {UP_S_OPEN, UP_EV_FAILED, UP_S_FAILED, false, UP_REC_DROP},
    {UP_S_OPEN, UP_EV_CANCELLED, UP_S_CANCELLED, false, UP_REC_DROP},
    {UP_S_EARLY, UP_EV_VOIDED, UP_S_OPEN, true, UP_REC_DROP},
    {UP_S_EARLY, UP_EV_SEALED, UP_S_SENDING, false, UP_REC_CLOSED},
    {UP_S_EARLY, UP_EV_FAILED, UP_S_FAILED, true, UP_REC_DROP},
    {UP_S_EARLY, UP_EV_CANCELLED, UP_S_CANCELLED, true, UP_REC_DROP},
    {UP_S_SEALED, UP_EV_CREATED, UP_S_SENDING, false, UP_REC_CLOSED},
    {UP_S_SEALED, UP_EV_COMPLETED, UP_S_COMPLETED, false, UP_REC_DROP},
    {UP_S_SEALED, UP_EV_FAILED, UP_S_FAILED, false, UP_REC_DROP},
    {UP_S_SEALED, UP_EV_CANCELLED, UP_S_CANCELLED, false, UP_REC_DROP},
    {UP_S_SENDING, UP_EV_VOIDED, UP_S_SEALED, true, UP_REC_CLOSED},
    {UP_S_SENDING, UP_EV_COMPLETED, UP_S_COMPLETED, false, UP_REC_DROP},
    {UP_S_SENDING, UP_EV_FAILED, UP_S_FAILED, true, UP_REC_DROP},
    {UP_S_SENDING, UP_EV_CANCELLED, UP_S_CANCELLED, true, UP_REC_DROP},
    {UP_S_FAILED, UP_EV_CANCELLED, UP_S_CANCELLED, false, UP_REC_KEEP},
};

CASE(every_transition_of_the_table_and_no_other)
{
	size_t n = sizeof expected / sizeof expected[0], found = 0;
	for (int s = 0; s < UP_S_COUNT; s++)
		for (int e = 0; e < UP_EV_COUNT; e++) {
			struct up_transition t;
			int rc = up_session_step((enum up_sstate)s, (enum up_sevent)e, &t);
			size_t i = 0;
			while (i < n && !(expected[i].from == (enum up_sstate)s &&
					  expected[i].ev == (enum up_sevent)e))
				i++;
			if (i == n) {
				if (rc != -EINVAL)
					printf("#   %s on %s should not exist\n",
					       up_session_state_name((enum up_sstate)s),
					       up_session_event_name((enum up_sevent)e));
				CHECK(rc == -EINVAL);
				continue;
			}
			found++;
			CHECK(rc == 0);
			CHECK(t.to == expected[i].to);
			CHECK(t.cancel_session == expected[i].cancel);
			CHECK(t.record == expected[i].rec);
		}
	CHECK(found == n);
	/* nothing leaves the end states but a failed file's removal */
	struct up_transition t;
	for (int e = 0; e < UP_EV_COUNT; e++) {
		CHECK(up_session_step(UP_S_COMPLETED, (enum up_sevent)e, &t) == -EINVAL);
		CHECK(up_session_step(UP_S_CANCELLED, (enum up_sevent)e, &t) == -EINVAL);
	}
	CHECK(up_session_step(UP_S_COUNT, UP_EV_SEALED, &t) == -EINVAL);
}

CASE(a_record_restores_the_state_of_its_crash_point)
{
	enum up_sstate s;
	CHECK(up_session_restored(true, false, &s) == 0 && s == UP_S_SEALED);
	CHECK(up_session_restored(true, true, &s) == 0 && s == UP_S_SENDING);
	CHECK(up_session_restored(false, true, &s) == -ESTALE);
	CHECK(up_session_restored(false, false, &s) == -ESTALE);
	CHECK(up_session_writable(UP_S_OPEN) && up_session_writable(UP_S_EARLY));
	CHECK(!up_session_writable(UP_S_SEALED) && !up_session_writable(UP_S_SENDING));
	CHECK(up_session_has_session(UP_S_EARLY) && up_session_has_session(UP_S_SENDING));
	CHECK(!up_session_has_session(UP_S_SEALED) && !up_session_has_session(UP_S_OPEN));
}

/* ---- the writer through them, against a server ---- */

#define PART (1u << 20)
#define SIZE (2 * PART + 12345) /* not a multiple of the part size */

struct rig {
	struct fixture f;
	up_client *c;
	up_async *a;
	char dir[128], spool[192], journal[192];
	char *data;
	char md5[33];
};

static void md5_hex(const void *p, size_t n, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	EVP_Digest(p, n, d, &len, EVP_md5(), NULL);
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A server (with extra flags), a client and a pipeline, the data to write. */
static int rig_up(struct rig *r, const char *flag, const char *value, int retries)
{
	memset(r, 0, sizeof *r);
	if (fixture_start(&r->f, flag, value, NULL) < 0)
		return -1;
	struct up_config cfg = {.api_base = r->f.base, .no_env = true, .retries = retries};
	struct up_error err;
	if (up_client_new(&cfg, &r->c, &err) < 0 || up_async_new(r->c, 2, &r->a) < 0)
		return -1;
	snprintf(r->dir, sizeof r->dir, "%s/cache", r->f.dir);
	mkdir(r->dir, 0700);
	snprintf(r->spool, sizeof r->spool, "%s/spool", r->dir);
	snprintf(r->journal, sizeof r->journal, "%s/rec.json", r->dir);
	if (!(r->data = malloc(SIZE)))
		return -1;
	for (size_t i = 0; i < SIZE; i++)
		r->data[i] = (char)(i * 131 + i / 7);
	md5_hex(r->data, SIZE, r->md5);
	return 0;
}

static void rig_down(struct rig *r)
{
	up_async_free(r->a);
	up_client_free(r->c);
	free(r->data);
	fixture_stop(&r->f);
}

static struct up_writer_config rig_cfg(struct rig *r)
{
	return (struct up_writer_config){.client = r->c,
					 .async = r->a,
					 .spool_path = r->spool,
					 .part_size = PART,
					 .max_size = 1ull << 30,
					 .journal_path = r->journal};
}

/* The server's content of file id, hashed. */
static int remote_md5(struct rig *r, const char *id, char out[33])
{
	char path[256];
	snprintf(path, sizeof path, "%s/dl", r->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t got = 0;
	struct up_error err;
	int rc = fd < 0 ? -errno : up_file_content(r->c, id, fd, &got, &err);
	if (fd >= 0)
		close(fd);
	if (rc < 0 || got != SIZE)
		return -1;
	char *buf = malloc(SIZE);
	FILE *f = fopen(path, "rb");
	rc = buf && f && fread(buf, 1, SIZE, f) == SIZE ? 0 : -1;
	if (rc == 0)
		md5_hex(buf, SIZE, out);
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

/* A crash after close: the writer is gone, its spool and record stay; a restart restores
 * it from the record and finishes it. */
static void crash_then_resume(struct rig *r, int *failed)
{
	struct up_journal_rec rec;
	CHECK(up_journal_read(r->journal, &rec) == 0);
	CHECK(strcmp(rec.md5, r->md5) == 0 && rec.size == SIZE);
	struct up_writer_config wc = rig_cfg(r);
	struct up_writer *w;
	CHECK(up_writer_restore(&wc, &rec, &w) == 0);
	struct up_upload up = {0};
	struct up_error err;
	int rc = up_writer_finish(w, rec.filename, rec.mime_type, rec.purpose, &up, &err);
	if (rc < 0)
		printf("#   finish: %s\n", err.message);
	CHECK(rc == 0);
	char got[33];
	CHECK(remote_md5(r, up.file.id, got) == 0 && strcmp(got, r->md5) == 0);
	CHECK(access(r->journal, F_OK) < 0); /* COMPLETED drops the record */
	up_upload_clear(&up);
	up_writer_free(w);
	up_journal_rec_clear(&rec);
}

CASE(close_writes_the_closed_record_before_any_request_then_a_crash_resumes_it)
{
	struct rig r;
	CHECK(rig_up(&r, "--latency-ms", "0", 2) == 0);
	struct up_writer_config wc = rig_cfg(&r);
	struct up_writer *w;
	CHECK(up_writer_new(&wc, &w) == 0);
	CHECK(up_writer_write(w, r.data, SIZE, 0) == 0);
	struct up_error err;
	CHECK(up_writer_close(w, "a.bin", "application/octet-stream", "batch", &err) == 0);
	struct up_journal_rec rec;
	CHECK(up_journal_read(r.journal, &rec) == 0);
	CHECK(strcmp(rec.md5, r.md5) == 0 && rec.upload_id[0] == '\0'); /* SEALED */
	up_journal_rec_clear(&rec);
	struct up_writer_status st;
	up_writer_status(w, &st);
	CHECK(st.sealed && st.state == UP_W_PENDING);
	CHECK(up_writer_write(w, "x", 1, 0) == -EPERM); /* sealed: the bytes are final */
	/* the crash: the writer is gone, nothing was sent */
	CHECK(up_writer_keep_spool(w, r.spool) == 0);
	up_writer_free(w);
	crash_then_resume(&r, failed);
	rig_down(&r);
}

CASE(a_crash_while_a_sealed_file_is_sending_resumes_any_size)
{
	struct rig r;
	CHECK(rig_up(&r, "--latency-ms", "0", 2) == 0);
	struct up_writer_config wc = rig_cfg(&r);
	struct up_writer *w;
	struct up_error err;
	CHECK(up_writer_new(&wc, &w) == 0);
	/* OPEN -> EARLY: the size announced; parts go up as they fill */
	CHECK(up_writer_announce(w, SIZE, "b.bin", "text/plain", "batch", &err) == 0);
	CHECK(up_writer_write(w, r.data, SIZE, 0) == 0);
	CHECK(up_writer_sync(w) == 0);
	/* EARLY -> SENDING: the record has the session, the parts acknowledged and the MD5 */
	CHECK(up_writer_close(w, "b.bin", "text/plain", "batch", &err) == 0);
	struct up_journal_rec rec;
	CHECK(up_journal_read(r.journal, &rec) == 0);
	CHECK(rec.upload_id[0] && strcmp(rec.md5, r.md5) == 0 && rec.nparts == 3);
	CHECK(rec.part_ids[0][0] && rec.part_ids[1][0]); /* the two whole parts went up */
	up_journal_rec_clear(&rec);
	CHECK(up_writer_keep_spool(w, r.spool) == 0);
	up_writer_free(w);
	crash_then_resume(&r, failed); /* the tail part is cut once, not twice */
	rig_down(&r);
}

CASE(a_record_of_a_file_still_open_is_not_restored)
{
	struct rig r;
	CHECK(rig_up(&r, "--latency-ms", "0", 2) == 0);
	struct up_writer_config wc = rig_cfg(&r);
	struct up_writer *w;
	struct up_error err;
	CHECK(up_writer_new(&wc, &w) == 0);
	CHECK(up_writer_announce(w, SIZE, "c.bin", "text/plain", "batch", &err) == 0);
	CHECK(up_writer_write(w, r.data, PART, 0) == 0);
	struct up_journal_rec rec;
	CHECK(up_journal_read(r.journal, &rec) == 0); /* EARLY: the record without MD5 */
	CHECK(rec.md5[0] == '\0' && rec.upload_id[0]);
	struct up_writer *back;
	CHECK(up_writer_restore(&wc, &rec, &back) == -EINVAL);
	up_journal_rec_clear(&rec);
	CHECK(up_writer_cancel(w) == 0); /* EARLY -> CANCELLED: the record goes */
	CHECK(access(r.journal, F_OK) < 0);
	up_writer_free(w);
	rig_down(&r);
}

/* The server's record of upload id says status. */
static bool upload_is(struct rig *r, const char *id, const char *status)
{
	char path[256], buf[4096] = "", want[64];
	snprintf(path, sizeof path, "%s/data/uploads/%s.json", r->f.dir, id);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	snprintf(want, sizeof want, "\"status\":\"%s\"", status);
	return strstr(buf, want) != NULL;
}

CASE(a_failed_part_drops_the_session_at_once)
{
	struct rig r;
	CHECK(rig_up(&r, "--fail-first", "1000", -1) == 0);
	struct up_writer_config wc = rig_cfg(&r);
	struct up_writer *w;
	struct up_error err;
	CHECK(up_writer_new(&wc, &w) == 0);
	CHECK(up_writer_announce(w, SIZE, "d.bin", "text/plain", "batch", &err) == 0);
	(void)up_writer_write(w, r.data, SIZE, 0); /* may fail already: the first part did */
	CHECK(up_writer_sync(w) < 0); /* the part failed: latched */
	struct up_writer_status st;
	up_writer_status(w, &st);
	CHECK(st.state == UP_W_FAILED && st.upload_id[0]);
	CHECK(upload_is(&r, st.upload_id, "cancelled")); /* EARLY -> FAILED cancels it */
	CHECK(access(r.journal, F_OK) < 0);		/* and drops the record */
	CHECK(up_writer_write(w, "x", 1, SIZE) < 0);
	up_writer_free(w);
	rig_down(&r);
}

CHECK_MAIN(T(every_transition_of_the_table_and_no_other),
	   T(a_record_restores_the_state_of_its_crash_point),
	   T(close_writes_the_closed_record_before_any_request_then_a_crash_resumes_it),
	   T(a_crash_while_a_sealed_file_is_sending_resumes_any_size),
	   T(a_record_of_a_file_still_open_is_not_restored),
	   T(a_failed_part_drops_the_session_at_once))
