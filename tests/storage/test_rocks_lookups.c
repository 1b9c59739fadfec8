/*
 * Point lookups of absent keys in a store opened by rocks_db_open
 * (consensus/rocks_util.h with rocks_memory.h's table options): after many
 * flushes, so that the keys sit in many table files each covering the whole
 * key range, a lookup of a key that is not there must be answered by the
 * table files' filters, not by reading a data block of each file. Automatic
 * compactions are off in the test, so the files stay as the flushes wrote
 * them and the counts below do not depend on the timing of a background
 * compaction. The filesystem looks up absent keys at every change (a new name, its
 * guard), so without filters a node's cost per change grew with the table
 * files its changes had made. RocksDB's per-thread perf context counts the
 * files a filter ruled out and the blocks read or found in the cache; the
 * same lookups of present keys show the counts do move. Works in a temp dir,
 * removed on teardown.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "rocks_util.h"
#include "test_store.h"
#include "tmpdir.h"

#define CLUSTER	  0x5eedc0de87654321ull
#define FLUSHES	  12   /* table files written; level 0 compacts into level 1 after 4 */
#define PER_FLUSH 2000 /* keys in each */
#define LOOKUPS	  4000

static const struct rocks_kind kind = TEST_STORE_KIND("lookup test store", "LOOKTST1");

static char dir[256];

static int setup(void **state)
{
	return tmpdir_make(dir, sizeof(dir), "rockslookup");
}

static int teardown(void **state)
{
	return tmpdir_remove(dir);
}

/* Key i: even numbers are written, odd ones never are, so an absent key
 * always lies inside the range of the files around it. Flush f writes the
 * keys i with i % FLUSHES == f: every file spans the whole key range, as
 * the filesystem's do (each flush holds new names all over the tree). */
static int key_of(char *buf, size_t len, unsigned i)
{
	return snprintf(buf, len, "key%09u", i);
}

static void fill(struct rocks_db *d)
{
	static char value[100];
	memset(value, 'v', sizeof(value));
	const char *keys[] = {"disable_auto_compactions"}, *values[] = {"true"};
	char *e = NULL;
	rocksdb_set_options_cf(d->db, d->cfs[1], 1, keys, values, &e);
	assert_null(e);
	for (unsigned f = 0; f < FLUSHES; f++) {
		rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
		for (unsigned j = 0; j < PER_FLUSH; j++) {
			char key[32];
			int n = key_of(key, sizeof(key), 2 * (j * FLUSHES + f));
			rocksdb_writebatch_put_cf(wb, d->cfs[1], key, (size_t)n, value,
						  sizeof(value));
		}
		rocksdb_write(d->db, d->wnosync, wb, &e);
		rocksdb_writebatch_destroy(wb);
		assert_null(e);
		rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
		rocksdb_flushoptions_set_wait(fo, 1);
		rocksdb_flush_cf(d->db, fo, d->cfs[1], &e);
		rocksdb_flushoptions_destroy(fo);
		assert_null(e);
	}
}

struct counts {
	uint64_t ruled_out; /* table files a filter said lack the key */
	uint64_t blocks;    /* blocks read from a file or found in the cache */
	unsigned found;
};

/* LOOKUPS point lookups of key 2 * i + odd, i spread over the whole range. */
static struct counts lookups(struct rocks_db *d, unsigned odd)
{
	struct counts c = {0};
	rocksdb_set_perf_level(rocksdb_enable_count);
	rocksdb_perfcontext_t *pc = rocksdb_perfcontext_create();
	rocksdb_perfcontext_reset(pc);
	for (unsigned i = 0; i < LOOKUPS; i++) {
		char key[32];
		unsigned k = (unsigned)(((uint64_t)i * FLUSHES * PER_FLUSH) / LOOKUPS);
		int n = key_of(key, sizeof(key), 2 * k + odd);
		size_t vlen;
		char *e = NULL;
		char *v = rocksdb_get_cf(d->db, d->ropts, d->cfs[1], key, (size_t)n, &vlen, &e);
		assert_null(e);
		c.found += v != NULL;
		free(v);
	}
	c.ruled_out = rocksdb_perfcontext_metric(pc, rocksdb_bloom_sst_miss_count);
	c.blocks = rocksdb_perfcontext_metric(pc, rocksdb_block_cache_hit_count) +
		   rocksdb_perfcontext_metric(pc, rocksdb_block_read_count);
	rocksdb_perfcontext_destroy(pc);
	rocksdb_set_perf_level(rocksdb_disable);
	return c;
}

static void test_rocks_lookups_absent_keys_read_no_data_blocks(void **state)
{
	struct rocks_db d;
	char err[512];
	bool fresh;
	assert_int_equal(
		test_store_open(&d, dir, "store", &kind, CLUSTER, &fresh, err, sizeof(err)), 0);
	fill(&d);
	char *files = rocksdb_property_value_cf(d.db, d.cfs[1], "rocksdb.num-files-at-level0");
	assert_non_null(files);
	assert_int_equal(atoi(files), FLUSHES);
	free(files);

	struct counts absent = lookups(&d, 1), present = lookups(&d, 0);
	print_message("# %u table files in level 0; %u absent keys: %llu files ruled out, %llu "
		      "blocks; %u present keys: %llu blocks\n",
		      FLUSHES, LOOKUPS, (unsigned long long)absent.ruled_out,
		      (unsigned long long)absent.blocks, LOOKUPS,
		      (unsigned long long)present.blocks);
	assert_int_equal(absent.found, 0);
	assert_int_equal(present.found, LOOKUPS);
	/* Every file covers every absent key: its filter rules it out but
	 * about one time in a hundred (10 bits a key), and only then is a
	 * data block read (level 0's index and filter blocks are pinned in
	 * the cache, outside these counts). Without filters each lookup reads
	 * a data block of each file: FLUSHES * LOOKUPS blocks. */
	assert_true(absent.ruled_out >= (uint64_t)FLUSHES * LOOKUPS * 9 / 10);
	assert_true(absent.blocks <= LOOKUPS / 2);
	/* A present key does read its data block: the counts do move. */
	assert_true(present.blocks >= LOOKUPS);
	rocks_db_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rocks_lookups_absent_keys_read_no_data_blocks,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
