/*
 * What a log compaction keeps (fs/replica/log_retain.h): retain_entries
 * small entries, fewer large ones, and the old count where sizes are not
 * known.
 */
#include "test.h"

#include "log_retain.h"

#define MIB (1024u * 1024u)

/* 1,000 entries of 4 MiB (a large file's) keep 4 under a 16 MiB bound, not
 * 1,000 (4 GiB); 1,000 of 300 bytes keep all 1,000. */
static void test_log_retain_bounds_bytes(void **state)
{
	(void)state;
	struct log_retain r;
	assert_int_equal(log_retain_init(&r, 1000), 0);
	for (uint64_t i = 0; i < 1000; i++)
		log_retain_note(&r, i, 300);
	assert_int_equal(log_retain_keep(&r, 1000, 1000, 16 * MIB), 1000);
	for (uint64_t i = 1000; i < 2000; i++)
		log_retain_note(&r, i, 4 * MIB);
	assert_int_equal(log_retain_keep(&r, 2000, 1000, 16 * MIB), 4);
	/* A mix, newest first: 3 small, 10 MiB, then the 4 MiB ones. */
	log_retain_note(&r, 2000, 10 * MIB);
	for (uint64_t i = 2001; i < 2004; i++)
		log_retain_note(&r, i, 1000);
	assert_int_equal(log_retain_keep(&r, 2004, 1000, 16 * MIB), 5); /* 3 + 10 + 4 MiB */
	assert_int_equal(log_retain_keep(&r, 2004, 1000, 8 * MIB), 3);	/* 10 MiB does not fit */
	assert_int_equal(log_retain_keep(&r, 2004, 2, 16 * MIB), 2);	/* the count first */
	log_retain_free(&r);
}

/* Entries applied above what the log decided (fetched from a peer) are not
 * counted: the bound is on those below `below`. */
static void test_log_retain_skips_newer(void **state)
{
	(void)state;
	struct log_retain r;
	assert_int_equal(log_retain_init(&r, 100), 0);
	for (uint64_t i = 0; i < 50; i++)
		log_retain_note(&r, i, 4 * MIB);
	for (uint64_t i = 50; i < 60; i++)
		log_retain_note(&r, i, 100);
	assert_int_equal(log_retain_keep(&r, 60, 100, 16 * MIB), 13); /* 10 small, 3 large */
	assert_int_equal(log_retain_keep(&r, 50, 100, 16 * MIB), 4);  /* the 10 skipped */
	log_retain_free(&r);
}

/* Unknown sizes keep the count: a new ring, one restarted after a gap (a
 * state transfer), one asked about indexes it never saw, none at all. */
static void test_log_retain_unknown_keeps_count(void **state)
{
	(void)state;
	struct log_retain r;
	assert_int_equal(log_retain_init(&r, 10), 0);
	assert_int_equal(log_retain_keep(&r, 500, 10, 1), 10);
	for (uint64_t i = 0; i < 10; i++)
		log_retain_note(&r, i, 4 * MIB);
	assert_int_equal(log_retain_keep(&r, 10, 10, 16 * MIB), 4);
	log_retain_note(&r, 700, 100); /* a gap: the sizes before it are gone */
	assert_int_equal(log_retain_keep(&r, 701, 10, 16 * MIB), 10);
	assert_int_equal(log_retain_keep(&r, 900, 10, 16 * MIB), 10);
	log_retain_free(&r);
	assert_int_equal(log_retain_init(&r, 0), 0); /* retain_entries = 0 */
	log_retain_note(&r, 0, 4 * MIB);
	assert_int_equal(log_retain_keep(&r, 1, 0, 16 * MIB), 0);
	log_retain_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_retain_bounds_bytes),
		cmocka_unit_test(test_log_retain_skips_newer),
		cmocka_unit_test(test_log_retain_unknown_keeps_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
