/*
 * RocksDB's checksums in hardware (consensus/rocks_crc32c.h): the engine
 * gives the CRC32C test values of RFC 3720, matches RocksDB's own definition
 * on random data of every length and alignment, pieced or whole, is the
 * definition RocksDB's calls reach, and a store written with either engine
 * (table files, blob files and the WAL) reads back with the other.
 */
#include "test.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "rocks_crc32c.h"
#include "rocks_util.h"
#include "test_store.h"
#include "tmpdir.h"

#define CLUSTER	  0x5eedc0de8badf00dull
#define N_KEYS	  64
#define BIG_VALUE (64u * 1024) /* over ROCKS_BLOB_MIN_LEN: a blob */

static const struct rocks_kind kind = TEST_STORE_KIND("crc32c test store", "CRCTEST1");

static char dir[256];

static int setup(void **state)
{
	return tmpdir_make(dir, sizeof(dir), "crc32c");
}

static int teardown(void **state)
{
	rocks_crc32c_use_hardware(true);
	return tmpdir_remove(dir);
}

static bool hardware(void)
{
	return strcmp(rocks_crc32c_engine(), "SSE4.2") == 0;
}

static void test_crc32c_rfc3720_values(void **state)
{
	unsigned char b[32];
	memset(b, 0, sizeof(b));
	assert_int_equal(rocks_crc32c_extend(0, (char *)b, 32), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	assert_int_equal(rocks_crc32c_extend(0, (char *)b, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	assert_int_equal(rocks_crc32c_extend(0, (char *)b, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	assert_int_equal(rocks_crc32c_extend(0, (char *)b, 32), 0x113fdb5c);
	assert_int_equal(rocks_crc32c_extend(0, "123456789", 9), 0xe3069283);
	assert_int_equal(rocks_crc32c_extend(0x1234, "", 0), 0x1234);
}

/* Ours against RocksDB's own on n bytes at buf, whole and in two pieces (as
 * RocksDB extends a record's header, then its body). */
static void check_length(rocks_crc32c_fn own, const char *buf, size_t n)
{
	uint32_t seed = (uint32_t)random();
	uint32_t want = own(seed, buf, n);
	assert_int_equal(rocks_crc32c_extend(seed, buf, n), want);
	size_t cut = n / 3;
	uint32_t part = rocks_crc32c_extend(seed, buf, cut);
	assert_int_equal(rocks_crc32c_extend(part, buf + cut, n - cut), want);
}

static void test_crc32c_matches_rocksdb(void **state)
{
	rocks_crc32c_fn own = rocks_crc32c_rocksdb();
	assert_non_null(own);
	print_message("# engine: %s\n", rocks_crc32c_engine());

	/* The engine runs three chains over 3 x 4 KiB at a time: lengths
	 * past twice that, and every one around each multiple of it. */
	enum { CHUNK = 3 * 4096, MAX = 2 * CHUNK + 64 };
	static char buf[MAX + 8];
	srandom(42);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)random();
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n <= MAX; n += n < 64 ? 1 : 97)
			check_length(own, buf + off, n);
		for (size_t k = 1; k <= 2; k++)
			for (size_t n = k * CHUNK - 9; n <= k * CHUNK + 9; n++)
				check_length(own, buf + off, n);
	}
}

/* The dynamic linker resolves librocksdb's calls in the global scope, where
 * the program's own definition comes first. */
static void test_crc32c_is_what_rocksdb_calls(void **state)
{
	if (!hardware()) {
		print_message("# no SSE4.2 engine here: RocksDB keeps its own\n");
		return;
	}
	void *found = dlsym(RTLD_DEFAULT, ROCKS_CRC32C_SYMBOL);
	rocks_crc32c_fn fn = NULL;
	memcpy(&fn, &found, sizeof(fn));
	assert_true(fn == rocks_crc32c_extend);
	assert_true(rocks_crc32c_rocksdb() != rocks_crc32c_extend);
}

static void put_all(struct rocks_db *d, unsigned from, unsigned to)
{
	static char big[BIG_VALUE];
	for (unsigned i = from; i < to; i++) {
		char key[32], small[64];
		int kn = snprintf(key, sizeof(key), "k%04u", i);
		int sn = snprintf(small, sizeof(small), "small value %u", i);
		memset(big, 'a' + (int)(i % 26), sizeof(big));
		rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
		rocksdb_writebatch_put_cf(wb, d->cfs[1], key, (size_t)kn, i % 2 ? big : small,
					  i % 2 ? sizeof(big) : (size_t)sn);
		char *e = NULL;
		rocksdb_write(d->db, d->wsync, wb, &e);
		rocksdb_writebatch_destroy(wb);
		assert_null(e);
	}
}

static void flush(struct rocks_db *d)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	char *e = NULL;
	rocksdb_flush_cf(d->db, fo, d->cfs[1], &e);
	rocksdb_flushoptions_destroy(fo);
	assert_null(e);
}

/* Reads every key with checksums verified, then compacts (which reads and
 * rewrites every table and checks the blobs' references). */
static void check_all(struct rocks_db *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char key[32];
		int kn = snprintf(key, sizeof(key), "k%04u", i);
		size_t vn = 0;
		char *e = NULL;
		char *v = rocksdb_get_cf(d->db, d->ropts, d->cfs[1], key, (size_t)kn, &vn, &e);
		if (e)
			fail_msg("read of %s: %s", key, e);
		assert_non_null(v);
		if (i % 2) {
			assert_int_equal(vn, BIG_VALUE);
			assert_int_equal(v[vn - 1], 'a' + (int)(i % 26));
		} else {
			assert_true(vn > 0 && v[0] == 's');
		}
		rocksdb_free(v);
	}
	rocksdb_compact_range_cf(d->db, d->cfs[1], NULL, 0, NULL, 0);
}

static void open_store(struct rocks_db *d, bool want_fresh)
{
	char err[512];
	bool fresh;
	int rc = test_store_open(d, dir, "store", &kind, CLUSTER, &fresh, err, sizeof(err));
	if (rc != 0)
		fail_msg("open with the %s engine: %s", rocks_crc32c_engine(), err);
	assert_int_equal(fresh, want_fresh);
	if (fresh) {
		rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
		rocks_identity_put(d, wb, &kind, CLUSTER);
		char *e = NULL;
		rocksdb_write(d->db, d->wsync, wb, &e);
		rocksdb_writebatch_destroy(wb);
		assert_null(e);
	}
}

static void test_crc32c_stores_cross_engines(void **state)
{
	if (!rocks_crc32c_use_hardware(true)) {
		print_message("# no SSE4.2 engine here: nothing to cross\n");
		return;
	}
	struct rocks_db d;
	bool engine[] = {false, true, false};
	for (unsigned round = 0; round < 3; round++) {
		assert_true(rocks_crc32c_use_hardware(engine[round]));
		open_store(&d, round == 0);
		if (round > 0)
			check_all(&d, round * N_KEYS); /* written by the other engine */
		/* Half into table and blob files, half left in the WAL. */
		put_all(&d, round * N_KEYS, round * N_KEYS + N_KEYS / 2);
		flush(&d);
		put_all(&d, round * N_KEYS + N_KEYS / 2, (round + 1) * N_KEYS);
		rocks_db_close(&d);
	}
	assert_true(rocks_crc32c_use_hardware(true));
	open_store(&d, false);
	check_all(&d, 3 * N_KEYS);
	rocks_db_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_rfc3720_values),
		cmocka_unit_test(test_crc32c_matches_rocksdb),
		cmocka_unit_test(test_crc32c_is_what_rocksdb_calls),
		cmocka_unit_test_setup_teardown(test_crc32c_stores_cross_engines, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
