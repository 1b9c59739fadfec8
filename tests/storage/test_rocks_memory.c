/*
 * RocksDB's memory budget (consensus/rocks_memory.h): with a small budget a
 * store's memtables stay within their share however much is written, and
 * the block cache within its half, as rocks_memory_get reports them; with a
 * large budget the same writes stay in memory (so the figures do show
 * growth, and the first check could fail). Each test works in its own temp
 * dir, removed on teardown.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "rocks_memory.h"
#include "rocks_util.h"
#include "test_store.h"
#include "tmpdir.h"

#define CLUSTER	  0x5eedc0de12345678ull
#define MIB	  (1024u * 1024u)
#define VALUE_LEN 1024

static const struct rocks_kind kind = TEST_STORE_KIND("memory test store", "MEMTEST1");

static char dir[256];

static int setup(void **state)
{
	return tmpdir_make(dir, sizeof(dir), "rocksmem");
}

static int teardown(void **state)
{
	return tmpdir_remove(dir);
}

/* Writes mib MiB of distinct keys into the store's "data" family, unsynced;
 * returns the largest memtable total seen after each 1 MiB. */
static uint64_t write_mib(struct rocks_db *d, unsigned mib)
{
	static char value[VALUE_LEN];
	uint64_t peak = 0;
	memset(value, 'v', sizeof(value));
	for (unsigned m = 0; m < mib; m++) {
		rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
		for (unsigned i = 0; i < MIB / VALUE_LEN; i++) {
			char key[32];
			int n = snprintf(key, sizeof(key), "k%08u", m * (MIB / VALUE_LEN) + i);
			rocksdb_writebatch_put_cf(wb, d->cfs[1], key, (size_t)n, value,
						  sizeof(value));
		}
		char *e = NULL;
		rocksdb_write(d->db, d->wnosync, wb, &e);
		rocksdb_writebatch_destroy(wb);
		assert_null(e);
		struct rocks_memory now;
		rocks_memory_get(&now);
		if (now.memtables > peak)
			peak = now.memtables;
	}
	return peak;
}

/* Reads every key back, filling the block cache as far as it goes. */
static void read_all(struct rocks_db *d)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(d->db, d->ropts, d->cfs[1]);
	size_t n = 0;
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it))
		n++;
	rocksdb_iter_destroy(it);
	assert_true(n > 0);
}

static void open_store(struct rocks_db *d, const char *name)
{
	char err[512];
	bool fresh;
	assert_int_equal(test_store_open(d, dir, name, &kind, CLUSTER, &fresh, err, sizeof(err)),
			 0);
	assert_true(fresh);
}

/* Both checks run in one test, in this order: the block cache is made once
 * per process, at the first open, from the budget set then. */
static void test_rocks_memory_budget_bounds_memtables_and_cache(void **state)
{
	struct rocks_db d;

	/* 8 MiB: a 4 MiB block cache, 2 MiB of memtables per store. */
	rocks_memory_set_budget(8 * MIB);
	open_store(&d, "small");
	uint64_t peak = write_mib(&d, 24);
	read_all(&d);
	struct rocks_memory m;
	rocks_memory_get(&m);
	print_message("# budget 8 MiB: memtables peak %.1f MiB, block cache %.1f MiB\n",
		      peak / (double)MIB, m.block_cache / (double)MIB);
	assert_int_equal(m.budget, 8 * MIB);
	/* The share, plus the one arena block a memtable may have begun. */
	assert_true(peak <= 2 * MIB + MIB / 2);
	assert_true(m.block_cache <= 4 * MIB);
	assert_true(m.block_cache > 0); /* the reads went through it */
	rocks_db_close(&d);
	rocks_memory_get(&m);
	assert_int_equal(m.memtables, 0); /* a closed store is counted out */

	/* 1 GiB: the same writes stay in the memtables. */
	rocks_memory_set_budget(1024u * MIB);
	open_store(&d, "large");
	peak = write_mib(&d, 24);
	print_message("# budget 1 GiB: memtables peak %.1f MiB\n", peak / (double)MIB);
	assert_true(peak >= 16 * MIB);
	rocks_db_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rocks_memory_budget_bounds_memtables_and_cache,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
