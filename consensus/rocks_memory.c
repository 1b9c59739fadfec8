/*
 * RocksDB's memory budget and its figures; see rocks_memory.h.
 */
#include "rocks_memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "rocks_util.h"

/* Open stores counted in the figures: a daemon opens two, a tool one or two;
 * a store beyond this many is left out of the figures (never of the budget). */
#define MAX_COUNTED 8

static _Atomic size_t budget = (size_t)ROCKS_MEMORY_DEFAULT_MB << 20;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static rocksdb_cache_t *cache;			   /* NULL if it could not be made */
static rocksdb_block_based_table_options_t *table; /* built on cache, or NULL */

static pthread_mutex_t counted_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counted {
	rocksdb_t *db;
	rocksdb_column_family_handle_t *cfs[ROCKS_MAX_CFS];
	size_t n;
} counted[MAX_COUNTED];

void rocks_memory_set_budget(size_t bytes)
{
	atomic_store(&budget, bytes);
}

static void make_cache(void)
{
	cache = rocksdb_cache_create_lru(atomic_load(&budget) / 2);
	table = rocksdb_block_based_options_create();
	if (!cache || !table)
		return;
	rocksdb_block_based_options_set_block_cache(table, cache);
	/* Index and filter blocks in the cache, so they count against the
	 * budget; those of level 0 pinned, as they are read by every lookup. */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table, 1);
	/* A Bloom filter in every table file. Without one, a point lookup
	 * searches the index and a data block of each table file whose key
	 * range covers the key, and the filesystem looks up many keys that
	 * are absent (a new name, its guard, a file's writer record): once
	 * the memtables had been flushed a few times, every such lookup read
	 * a block of each level-0 file and of each level below, more blocks
	 * the more table files the changes had made. The filter answers
	 * "absent" from memory for all but about 1% of them (10 bits a key,
	 * in the cache above, so within the budget). */
	rocksdb_filterpolicy_t *bloom = rocksdb_filterpolicy_create_bloom_full(10);
	if (bloom)
		rocksdb_block_based_options_set_filter_policy(table, bloom); /* table owns it */
}

void rocks_memory_apply(rocksdb_options_t *opts)
{
	pthread_once(&cache_once, make_cache);
	size_t share = atomic_load(&budget) / 2 / ROCKS_MEMORY_STORES;
	/* A family's memtable fills to half the share and is then flushed
	 * while the next one fills: two at most per family. */
	size_t per_table = share / 2 < (1u << 20) ? (1u << 20) : share / 2;
	rocksdb_options_set_db_write_buffer_size(opts, share);
	rocksdb_options_set_write_buffer_size(opts, per_table);
	rocksdb_options_set_max_write_buffer_number(opts, 2);
	/* Level 1 about as large as what level 0 brings it, in small files,
	 * as RocksDB's tuning guide advises; its defaults (256 MiB in 64 MiB
	 * files) suit memtables of 64 MiB. Every batch of the state spans its
	 * key space (dedup record, change note, inode, blocks; a KV's keys of
	 * many clients), so every level-0 file overlaps all of level 1, and
	 * each compaction from level 0 rewrites all of it. What level 0
	 * brings is small: values from ROCKS_BLOB_MIN_LEN on leave for blob
	 * files at the flush, so a flushed memtable of 4 KiB values makes a
	 * table file of a few dozen KiB of keys and references. With level 1
	 * at four memtables (8 MiB) it held every key of such a load, and each
	 * compaction from level 0 rewrote them all: under 64 KV clients putting
	 * 4 KiB values, 2.45 million records compacted for 60,000 puts, a
	 * quarter of the cluster's CPU. A level 1 of half a memtable spills to
	 * level 2, and the levels below take one small file of the level above
	 * at a time, which overlaps a slice of the next (files of a level
	 * split its key range): 6,320-6,541 -> 6,926-7,730 puts/s, CPU per put
	 * -19%; 256 B values +2-5%; files small and large as before. Earlier,
	 * before blob files, level 1 at 256 MiB: 8 writers of random 4 KiB
	 * files compacted 2.2 GiB for 160 MiB written. */
	rocksdb_options_set_max_bytes_for_level_base(opts, per_table / 2);
	rocksdb_options_set_target_file_size_base(opts, per_table / 8);
	if (cache && table)
		rocksdb_options_set_block_based_table_factory(opts, table);
}

void rocks_memory_add(rocksdb_t *db, rocksdb_column_family_handle_t *const *cfs, size_t n)
{
	pthread_mutex_lock(&counted_lock);
	for (size_t i = 0; i < MAX_COUNTED; i++) {
		if (counted[i].db)
			continue;
		counted[i].db = db;
		counted[i].n = n < ROCKS_MAX_CFS ? n : ROCKS_MAX_CFS;
		memcpy(counted[i].cfs, cfs, counted[i].n * sizeof(cfs[0]));
		break;
	}
	pthread_mutex_unlock(&counted_lock);
}

void rocks_memory_remove(rocksdb_t *db)
{
	pthread_mutex_lock(&counted_lock);
	for (size_t i = 0; i < MAX_COUNTED; i++)
		if (counted[i].db == db)
			memset(&counted[i], 0, sizeof(counted[i]));
	pthread_mutex_unlock(&counted_lock);
}

static uint64_t cf_property(rocksdb_t *db, rocksdb_column_family_handle_t *cf, const char *name)
{
	uint64_t v = 0;
	return rocksdb_property_int_cf(db, cf, name, &v) == 0 ? v : 0;
}

void rocks_memory_get(struct rocks_memory *out)
{
	memset(out, 0, sizeof(*out));
	out->budget = atomic_load(&budget);
	pthread_mutex_lock(&counted_lock);
	for (size_t i = 0; i < MAX_COUNTED; i++) {
		for (size_t c = 0; counted[i].db && c < counted[i].n; c++) {
			rocksdb_t *db = counted[i].db;
			rocksdb_column_family_handle_t *cf = counted[i].cfs[c];
			out->memtables += cf_property(db, cf, "rocksdb.size-all-mem-tables");
			out->readers += cf_property(db, cf, "rocksdb.estimate-table-readers-mem");
		}
	}
	pthread_mutex_unlock(&counted_lock);
	/* The once has run if any store was opened; without one the cache is
	 * empty anyway. */
	pthread_once(&cache_once, make_cache);
	if (cache)
		out->block_cache = rocksdb_cache_get_usage(cache);
}
