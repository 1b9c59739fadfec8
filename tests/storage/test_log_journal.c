/*
 * The consensus log's journal (consensus/log_journal.c): records come back in
 * order and byte for byte; a torn last record is ignored and the next append
 * takes its place; a reset drops every record though their bytes stay in the
 * file; a torn header write falls back to the other slot; both slots corrupt
 * is refused; a full journal says -ENOSPC until reset and a record it can
 * never hold -E2BIG; the file only grows, in zeroed chunks; a replay error
 * stops the open; a small record synced where a large one was written
 * before costs the disk about its blocks, not the large one's.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_journal.h"
#include "tmpdir.h"

#define HEADER_BYTES 4096 /* as in log_journal.c: where records start */
#define REC_HEAD     24

struct fixture {
	char dir[256];
	char path[300];
	struct log_journal *j;
	/* what the last open replayed */
	char recs[64][64];
	size_t lens[64];
	unsigned n;
	int fail_at; /* replay returns -EIO at this record (1-based), 0: never */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || tmpdir_make(f->dir, sizeof(f->dir), "journal") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/journal", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	log_journal_close(&f->j);
	tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static int remember(void *ctx, const char *rec, size_t len)
{
	struct fixture *f = ctx;
	if (f->fail_at && (int)f->n + 1 == f->fail_at)
		return -EIO;
	if (f->n < 64 && len <= sizeof(f->recs[0])) {
		memcpy(f->recs[f->n], rec, len);
		f->lens[f->n] = len;
	}
	f->n++;
	return 0;
}

static int try_open(struct fixture *f, char *err, size_t err_len)
{
	uint64_t replayed = 0;
	log_journal_close(&f->j);
	f->n = 0;
	err[0] = '\0';
	int rc = log_journal_open(&f->j, f->path, remember, f, &replayed, err, err_len);
	if (rc == 0)
		assert_int_equal(replayed, f->n);
	return rc;
}

static void open_j(struct fixture *f)
{
	char err[512];
	int rc = try_open(f, err, sizeof(err));
	if (rc)
		fail_msg("open: %d %s", rc, err);
}

static void append_str(struct fixture *f, const char *s)
{
	assert_int_equal(log_journal_append(f->j, s, strlen(s)), 0);
}

static void expect_replayed(struct fixture *f, const char *const *want, unsigned n)
{
	assert_int_equal(f->n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(f->lens[i], strlen(want[i]));
		assert_memory_equal(f->recs[i], want[i], f->lens[i]);
	}
}

static off_t file_size(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static void poke(const char *path, off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

/* Offset of record i (0-based) when the records before it are those given. */
static off_t record_at(const char *const *recs, unsigned i)
{
	off_t off = HEADER_BYTES;
	for (unsigned k = 0; k < i; k++)
		off += (off_t)((REC_HEAD + strlen(recs[k]) + 7) & ~(size_t)7);
	return off;
}

static void test_journal_records_come_back_in_order(void **state)
{
	struct fixture *f = *state;
	const char *recs[] = {"first", "", "a third, longer record of some bytes", "4"};
	open_j(f);
	assert_true(log_journal_is_empty(f->j));
	expect_replayed(f, NULL, 0);
	for (unsigned i = 0; i < 4; i++)
		append_str(f, recs[i]);
	assert_false(log_journal_is_empty(f->j));
	assert_int_equal(log_journal_sync(f->j), 0);
	open_j(f);
	expect_replayed(f, recs, 4);
	/* Appends continue after them. */
	append_str(f, "5");
	open_j(f);
	const char *five[] = {"first", "", "a third, longer record of some bytes", "4", "5"};
	expect_replayed(f, five, 5);
}

static void test_journal_torn_record_is_the_end(void **state)
{
	struct fixture *f = *state;
	const char *recs[] = {"one", "two", "three is torn"};
	open_j(f);
	for (unsigned i = 0; i < 3; i++)
		append_str(f, recs[i]);
	log_journal_close(&f->j);
	/* A crash wrote the third record's header but not all its bytes. */
	poke(f->path, record_at(recs, 2) + REC_HEAD + 3, "\0\0", 2);
	open_j(f);
	expect_replayed(f, recs, 2);
	/* The next record takes the torn one's place. */
	append_str(f, "four");
	open_j(f);
	const char *want[] = {"one", "two", "four"};
	expect_replayed(f, want, 3);
	/* A record whose length runs past the file is torn too. */
	log_journal_close(&f->j);
	uint8_t huge[4] = {0xff, 0xff, 0xff, 0x7f};
	poke(f->path, record_at(want, 2) + 4, huge, sizeof(huge));
	open_j(f);
	expect_replayed(f, want, 2);
}

static void test_journal_reset_drops_records(void **state)
{
	struct fixture *f = *state;
	open_j(f);
	append_str(f, "old record one");
	append_str(f, "old record two");
	assert_int_equal(log_journal_reset(f->j), 0);
	assert_true(log_journal_is_empty(f->j));
	append_str(f, "new");
	/* "new" overwrote the start of the first old record; the second old
	 * record's bytes are still in the file, of the old generation. */
	open_j(f);
	const char *want[] = {"new"};
	expect_replayed(f, want, 1);
	assert_int_equal(log_journal_reset(f->j), 0);
	open_j(f);
	expect_replayed(f, NULL, 0);
}

static void test_journal_torn_header_falls_back(void **state)
{
	struct fixture *f = *state;
	const char *recs[] = {"kept by the old generation", "and this"};
	open_j(f); /* generation 1, in slot 0 */
	append_str(f, recs[0]);
	append_str(f, recs[1]);
	assert_int_equal(log_journal_sync(f->j), 0);
	assert_int_equal(log_journal_reset(f->j), 0); /* generation 2, in slot 1 */
	log_journal_close(&f->j);
	/* The reset's header write was torn: slot 1 is garbage. The records of
	 * generation 1 come back (the journal's user made them durable before
	 * the reset, so replaying them again changes nothing). */
	poke(f->path, 512 + 9, "xx", 2);
	open_j(f);
	expect_replayed(f, recs, 2);
	/* Both slots garbage: refused, and said so. */
	log_journal_close(&f->j);
	poke(f->path, 0 + 9, "xx", 2);
	char err[512];
	assert_int_equal(try_open(f, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "corrupt journal header"));
	assert_non_null(strstr(err, f->path));
}

static void test_journal_full_and_too_big(void **state)
{
	struct fixture *f = *state;
	open_j(f);
	assert_int_equal(file_size(f->path), 4u << 20); /* one zeroed chunk */
	size_t len = 1u << 20;
	char *big = malloc(len);
	assert_non_null(big);
	memset(big, 'b', len);
	unsigned n = 0;
	int rc;
	while ((rc = log_journal_append(f->j, big, len)) == 0)
		n++;
	assert_int_equal(rc, -ENOSPC);
	assert_true(n >= 62 && n < 64);
	assert_int_equal(file_size(f->path), LOG_JOURNAL_MAX_BYTES);
	assert_int_equal(log_journal_reset(f->j), 0);
	assert_int_equal(log_journal_append(f->j, big, len), 0);
	free(big);
	/* A record larger than the journal can hold, however empty. */
	char *huge = calloc(1, LOG_JOURNAL_MAX_BYTES);
	assert_non_null(huge);
	assert_int_equal(log_journal_append(f->j, huge, LOG_JOURNAL_MAX_BYTES), -E2BIG);
	free(huge);
	/* The file keeps its size: records only overwrite. */
	open_j(f);
	assert_int_equal(f->n, 1);
	assert_int_equal(file_size(f->path), LOG_JOURNAL_MAX_BYTES);
}

/* Bytes this process has had written to the disk (/proc/self/io). */
static long long disk_writes(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long long v = -1;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "write_bytes:", 12) == 0)
			v = atoll(line + 12);
	fclose(f);
	return v;
}

static void test_journal_small_syncs_write_their_blocks(void **state)
{
	struct fixture *f = *state;
	open_j(f);
	size_t len = 4u << 20;
	char *big = calloc(1, len);
	assert_non_null(big);
	assert_int_equal(log_journal_append(f->j, big, len), 0);
	assert_int_equal(log_journal_sync(f->j), 0);
	free(big);
	assert_int_equal(log_journal_reset(f->j), 0);
	/* Records of 4.6 KB (a 4 KiB file's entry), each synced, where the
	 * large one was: each writes the two or three blocks it touches. With
	 * the page cache holding the file in large folios, each wrote back
	 * 1 MiB or more. */
	char rec[4600];
	memset(rec, 'r', sizeof(rec));
	long long before = disk_writes();
	for (int i = 0; i < 200; i++) {
		assert_int_equal(log_journal_append(f->j, rec, sizeof(rec)), 0);
		assert_int_equal(log_journal_sync(f->j), 0);
	}
	long long per = (disk_writes() - before) / 200;
	printf("# %lld bytes written per synced record of %zu\n", per, sizeof(rec));
	assert_true(per <= 3 * 4096);
}

static void test_journal_replay_error_stops_open(void **state)
{
	struct fixture *f = *state;
	open_j(f);
	append_str(f, "a");
	append_str(f, "b");
	log_journal_close(&f->j);
	f->fail_at = 2;
	char err[512];
	assert_int_equal(try_open(f, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "replaying record 2"));
	assert_null(f->j);
	f->fail_at = 0;
	open_j(f);
	assert_int_equal(f->n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_records_come_back_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn_record_is_the_end, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_reset_drops_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_torn_header_falls_back, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_full_and_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_small_syncs_write_their_blocks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journal_replay_error_stops_open, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
