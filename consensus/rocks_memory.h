/*
 * The memory RocksDB may use in this process, shared by every store it
 * opens (the consensus log and the KV state), and what it uses now.
 *
 * One budget ([storage] memory_mb) bounds the two kinds of memory RocksDB
 * grows without limit by default: memtables (64 MiB per column family
 * before a flush, two of them per family, by default) and the blocks read
 * from table files (data, index and filter blocks; by default the index and
 * filter blocks of every table file stay in memory outside any cache). Half
 * of the budget is one LRU block cache shared by every store, which also
 * holds the index and filter blocks; the other half is split evenly between
 * the stores' memtables (a store flushes once its memtables reach its
 * share). What the budget leaves out: RocksDB's iterators and compaction
 * buffers in flight, and the program's own memory.
 */
#ifndef OMNIFS_ROCKS_MEMORY_H
#define OMNIFS_ROCKS_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

/* The budget when none is set: ample for a config tree of 100,000 files. */
#define ROCKS_MEMORY_DEFAULT_MB 16
/* Stores a budget is split between (the consensus log and the KV state). */
#define ROCKS_MEMORY_STORES 2

/*
 * Sets the process's budget in bytes. Call it before the first store is
 * opened: the shared block cache is made, once, at that open, with the budget
 * set then; later calls change only the memtable share of stores opened
 * after them.
 */
void rocks_memory_set_budget(size_t bytes);

/* Applies the budget to the options of a store about to be opened: its
 * memtable share and the shared block cache. Thread-safe. */
void rocks_memory_apply(rocksdb_options_t *opts);

/* Counts an open store in (rocks_memory_add) or out (rocks_memory_remove) of
 * the figures below; cfs are its n column families. */
void rocks_memory_add(rocksdb_t *db, rocksdb_column_family_handle_t *const *cfs, size_t n);
void rocks_memory_remove(rocksdb_t *db);

struct rocks_memory {
	uint64_t budget;      /* bytes */
	uint64_t memtables;   /* every open store's memtables, flushed or not */
	uint64_t block_cache; /* the shared cache's content */
	uint64_t readers;     /* table readers' memory outside the cache */
};

/* What RocksDB uses now in this process. Thread-safe. */
void rocks_memory_get(struct rocks_memory *out);

#endif /* OMNIFS_ROCKS_MEMORY_H */
