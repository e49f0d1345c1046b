/* The state store (fs/state.c): records survive a reopen, a change costs the same
 * whatever the number of records, records of files gone are dropped, a damaged store is
 * set aside. */
#include "../../fs/state.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/uploadfs-state.XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static void rmrf(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	(void)!system(cmd);
}

static uint64_t disk_bytes(const char *dir)
{
	uint64_t total = 0;
	const char *names[] = {"state.db", "state.db-wal"};
	for (size_t i = 0; i < 2; i++) {
		char p[512];
		struct stat sb;
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		if (stat(p, &sb) == 0)
			total += (uint64_t)sb.st_size;
	}
	return total;
}

static struct uf_attrs attrs(int i)
{
	struct uf_attrs a = {.mode = 0100600 | (mode_t)(i & 7), .uid = (uid_t)i, .gid = 7};
	a.mtime.tv_sec = 1000000000 + i;
	a.mtime.tv_nsec = i;
	return a;
}

/* A store of n records, written by the saver and closed. */
static int make(const char *dir, int n)
{
	struct uf_state *s;
	char *torn = NULL;
	if (uf_state_open(dir, &s, &torn) < 0 || torn || uf_state_start(s) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "file-%08d", i);
		struct uf_attrs a = attrs(i);
		uf_state_file_put(s, id, &a);
	}
	uf_state_close(s);
	return 0;
}

/* Bytes the store grows by for one change of one record (written at once: no saver). */
static uint64_t one_change(const char *dir)
{
	struct uf_state *s;
	char *torn = NULL;
	if (uf_state_open(dir, &s, &torn) < 0)
		return UINT64_MAX;
	uint64_t before = disk_bytes(dir);
	struct uf_attrs a = attrs(99);
	a.mode = 0100644;
	uf_state_file_put(s, "file-00000005", &a);
	uint64_t after = disk_bytes(dir);
	uf_state_close(s);
	return after - before;
}

CASE(records_survive_a_reopen)
{
	char *d = tmpdir();
	CHECK(d && make(d, 50) == 0);
	struct uf_state *s;
	char *torn = NULL;
	CHECK(uf_state_open(d, &s, &torn) == 0 && !torn);
	CHECK(uf_state_file_count(s) == 50);
	struct uf_attrs a;
	CHECK(uf_state_file_get(s, "file-00000042", &a));
	CHECK(a.uid == 42 && a.mtime.tv_sec == 1000000042 && a.mtime.tv_nsec == 42);
	CHECK(uf_state_file_del(s, "file-00000042") == 0);
	struct uf_dir_rec dr = {.path = "a/b", .mode = 040700, .purpose = "batch"};
	CHECK(uf_state_dir_put(s, &dr) == 0);
	uf_state_close(s);
	CHECK(uf_state_open(d, &s, &torn) == 0);
	CHECK(!uf_state_file_get(s, "file-00000042", &a));
	CHECK(uf_state_file_count(s) == 49);
	uf_state_close(s);
	rmrf(d);
	free(d);
}

CASE(a_change_costs_the_same_with_100k_records_as_with_10)
{
	char *small = tmpdir(), *big = tmpdir();
	CHECK(small && big && make(small, 10) == 0 && make(big, 100000) == 0);
	uint64_t c_small = one_change(small), c_big = one_change(big);
	printf("# one change: %llu bytes with 10 records, %llu with 100000\n",
	       (unsigned long long)c_small, (unsigned long long)c_big);
	CHECK(c_small > 0 && c_big > 0);
	/* a page or a few (the tree is deeper), never the store: 100k records are MBs */
	CHECK(c_big <= 4 * c_small + 8192);
	CHECK(c_big < 64 * 1024);
	rmrf(small);
	rmrf(big);
	free(small);
	free(big);
}

static bool even(const char *id, void *ud)
{
	(void)ud;
	return (id[strlen(id) - 1] - '0') % 2 == 0;
}

CASE(records_of_files_gone_are_dropped)
{
	char *d = tmpdir();
	CHECK(d && make(d, 20) == 0);
	struct uf_state *s;
	char *torn = NULL;
	CHECK(uf_state_open(d, &s, &torn) == 0 && uf_state_start(s) == 0);
	uf_state_files_retain(s, even, NULL);
	CHECK(uf_state_file_count(s) == 10);
	uf_state_close(s);
	CHECK(uf_state_open(d, &s, &torn) == 0);
	struct uf_attrs a;
	CHECK(uf_state_file_count(s) == 10 && uf_state_file_get(s, "file-00000004", &a) &&
	      !uf_state_file_get(s, "file-00000005", &a));
	uf_state_close(s);
	rmrf(d);
	free(d);
}

CASE(a_damaged_store_is_set_aside)
{
	char *d = tmpdir();
	CHECK(d);
	char p[512];
	snprintf(p, sizeof p, "%s/state.db", d);
	FILE *f = fopen(p, "w");
	CHECK(f);
	for (int i = 0; i < 5000; i++)
		fputc(i * 7 % 251, f);
	fclose(f);
	struct uf_state *s;
	char *torn = NULL;
	CHECK(uf_state_open(d, &s, &torn) == 0);
	CHECK(torn && strstr(torn, "state.db"));
	free(torn);
	CHECK(uf_state_file_count(s) == 0);
	struct uf_attrs a = attrs(1);
	CHECK(uf_state_file_put(s, "file-1", &a) == 0);
	uf_state_close(s);
	snprintf(p, sizeof p, "%s/state.db.corrupt", d);
	CHECK(access(p, F_OK) == 0);
	rmrf(d);
	free(d);
}

CHECK_MAIN(T(records_survive_a_reopen), T(a_change_costs_the_same_with_100k_records_as_with_10),
	   T(records_of_files_gone_are_dropped), T(a_damaged_store_is_set_aside))
