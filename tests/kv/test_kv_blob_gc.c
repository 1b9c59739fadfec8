/*
 * Garbage collection of the state's blob files (kv_blob_gc.c): the rule
 * (on at half garbage, off under a quarter, never on without garbage), and
 * on a real store that a new one starts with it off and no garbage, that
 * deleting two thirds of the blocks stored in its blob files turns it on, that
 * compactions with it on then drop the garbage until it turns off again,
 * and that the blocks left read back whole.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "kv.h"
#include "kv_int.h"
#include "kvt.h"

#define BLOCK_LEN (64 * 1024)
#define BLOCKS	  96 /* 6 MiB: more than one memtable holds */

static void test_kv_blob_gc_rule(void **state)
{
	(void)state;
	/* Off: on once garbage is half the bytes. */
	assert_false(kv_blob_gc_wanted(false, 0, 0));
	assert_false(kv_blob_gc_wanted(false, 1000, 0));
	assert_false(kv_blob_gc_wanted(false, 1000, 499));
	assert_true(kv_blob_gc_wanted(false, 1000, 500));
	assert_true(kv_blob_gc_wanted(false, 1000, 1000));
	/* On: stays on down to a quarter, off under it. */
	assert_true(kv_blob_gc_wanted(true, 1000, 500));
	assert_true(kv_blob_gc_wanted(true, 1000, 250));
	assert_false(kv_blob_gc_wanted(true, 1000, 249));
	assert_false(kv_blob_gc_wanted(true, 0, 0));
	/* Garbage read after a drop of files may exceed the bytes: all garbage. */
	assert_true(kv_blob_gc_wanted(false, 1000, 2000));
	/* No overflow at the top of the range. */
	assert_true(kv_blob_gc_wanted(false, UINT64_MAX, UINT64_MAX / 2 + 1));
	assert_false(kv_blob_gc_wanted(true, UINT64_MAX, UINT64_MAX / 8));
}

static uint64_t property(struct kv_store *s, const char *name)
{
	uint64_t v = 0;
	assert_int_equal(rocksdb_property_int_cf(s->db, s->cf_state[s->active], name, &v), 0);
	return v;
}

static void fill(uint8_t *b, unsigned i)
{
	for (size_t k = 0; k < BLOCK_LEN; k++)
		b[k] = (uint8_t)(i * 31 + k * 7);
}

/* Flushes the live state's memtable and compacts its whole range. */
static void flush_and_compact(struct kv_store *s)
{
	char *e = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush_cf(s->db, fo, s->cf_state[s->active], &e);
	rocksdb_flushoptions_destroy(fo);
	assert_null(e);
	/* The last level too, which RocksDB skips by default. */
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
	rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
	rocksdb_compact_range_cf_opt(s->db, s->cf_state[s->active], co, NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(co);
}

static void test_kv_blob_gc_collects_while_garbage(void **state)
{
	(void)state;
	char dir[256];
	assert_int_equal(kvt_mkdtemp(dir, sizeof(dir)), 0);
	struct kv_store *s = kvt_open(dir);
	uint8_t *b = malloc(BLOCK_LEN);
	assert_non_null(b);
	char key[32];
	struct kv_result res;

	/* Blocks of two files, a and b, side by side in the same blob files:
	 * two of a, one of b. */
	for (unsigned i = 0; i < BLOCKS; i++) {
		struct kv_txn t;
		kv_txn_init(&t, 1, i + 1);
		snprintf(key, sizeof(key), "%c%04u", i % 3 ? 'a' : 'b', i);
		fill(b, i);
		assert_int_equal(kv_txn_add_put(&t, key, strlen(key), b, BLOCK_LEN), 0);
		assert_int_equal(kvt_apply(s, &t, &res), 0);
		assert_int_equal(res.status, KV_APPLIED);
	}
	flush_and_compact(s);
	uint64_t bytes = property(s, "rocksdb.live-blob-file-size");
	assert_true(bytes >= (uint64_t)BLOCKS * BLOCK_LEN);
	assert_int_equal(property(s, "rocksdb.live-blob-file-garbage-size"), 0);
	assert_int_equal(kv_blob_gc_tend(s), 0);
	assert_false(kv_blob_gc_is_on(s));

	/* File a deleted: two thirds of every blob file are garbage, and no
	 * blob file is all garbage, so none goes without collection. */
	for (unsigned i = 0; i < BLOCKS; i++) {
		if (i % 3 == 0)
			continue;
		struct kv_txn t;
		kv_txn_init(&t, 1, BLOCKS + i + 1);
		snprintf(key, sizeof(key), "a%04u", i);
		assert_int_equal(kv_txn_add_delete(&t, key, strlen(key)), 0);
		assert_int_equal(kvt_apply(s, &t, &res), 0);
		assert_int_equal(res.status, KV_APPLIED);
	}
	flush_and_compact(s);
	uint64_t garbage = property(s, "rocksdb.live-blob-file-garbage-size");
	assert_true(garbage * 2 >= property(s, "rocksdb.live-blob-file-size"));
	assert_int_equal(kv_blob_gc_tend(s), 0);
	assert_true(kv_blob_gc_is_on(s));

	/* A compaction with it on moves the live blobs it meets and drops the
	 * files they were in: garbage falls under a quarter. */
	for (int round = 0; round < 3 && kv_blob_gc_is_on(s); round++) {
		flush_and_compact(s);
		assert_int_equal(kv_blob_gc_tend(s), 0);
	}
	assert_false(kv_blob_gc_is_on(s));
	assert_true(property(s, "rocksdb.live-blob-file-garbage-size") * 4 <
		    property(s, "rocksdb.live-blob-file-size"));
	assert_true(property(s, "rocksdb.live-blob-file-size") < bytes);

	/* File b reads back whole, a is gone. */
	for (unsigned i = 0; i < BLOCKS; i++) {
		void *v = NULL;
		size_t len = 0;
		uint64_t ver;
		snprintf(key, sizeof(key), "%c%04u", i % 3 ? 'a' : 'b', i);
		int rc = kv_get(s, key, strlen(key), &v, &len, &ver);
		if (i % 3) {
			assert_int_equal(rc, -ENOENT);
			continue;
		}
		assert_int_equal(rc, 0);
		fill(b, i);
		assert_int_equal(len, BLOCK_LEN);
		assert_memory_equal(v, b, BLOCK_LEN);
		free(v);
	}
	free(b);
	kv_close(&s);
	kvt_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_blob_gc_rule),
		cmocka_unit_test(test_kv_blob_gc_collects_while_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
