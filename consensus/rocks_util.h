/*
 * The RocksDB plumbing shared by the consensus log (storage_rocksdb.c) and
 * the KV state (fs/kv/kv_store.c): opening a store's directory with its
 * column families, its identity record (what kind of store, which format,
 * which cluster), and RocksDB's error strings. It knows nothing of either
 * store's layout beyond the identity.
 *
 * A store is opened only if its directory is missing or empty (a new store),
 * or holds a database with exactly the kind's column families and the kind's
 * identity for this cluster and format. Anything else is refused untouched,
 * with a message that says what was found and what to do.
 */
#ifndef OMNIFS_ROCKS_UTIL_H
#define OMNIFS_ROCKS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rocksdb/c.h>

#define ROCKS_MAX_CFS 3
/* Values from this many bytes on are kept in blob files (see rocks_db_open):
 * file blocks of 4 KiB and more, KV values as large, and the log entries
 * carrying them; smaller files, inodes and names stay in the table files.
 * From 16 KiB on, 64 KV clients putting 4 KiB values went 6,034-6,139 ->
 * 6,701-6,759 puts/s with it at 4 KiB (CPU per put -13%: compactions
 * rewrote the values); small files read and written as fast either way. */
#define ROCKS_BLOB_MIN_LEN (4u * 1024)

/* What a kind of store is. */
struct rocks_kind {
	const char *name;	     /* in messages: "consensus log", "KV state" */
	const char *magic;	     /* 8 bytes that open its identity record */
	uint32_t format;	     /* the on-disk format this build reads and writes */
	uint32_t oldest_format;	     /* older formats from this one on are opened too
				      * (the caller upgrades them); 0: none */
	const char *const *cf_names; /* cf_names[0] is "default": it holds the identity */
	size_t n_cfs;		     /* at most ROCKS_MAX_CFS */
	/* Written without RocksDB's write-ahead log: durable only at flushes
	 * (rocks_flush_all), each of every column family at one point; its
	 * owner redoes what a crash lost from a log of its own. */
	bool no_wal;
};

/* An open store: the database, its options and its column families (in the
 * order of the kind's cf_names). Owned by the store that opened it. */
struct rocks_db {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_writeoptions_t *wsync;	 /* sync on (no_wal: as wnosync; see rocks_flush_all) */
	rocksdb_writeoptions_t *wnosync; /* sync off */
	rocksdb_readoptions_t *ropts;	 /* latest state, checksums verified */
	rocksdb_column_family_handle_t *cfs[ROCKS_MAX_CFS];
	size_t n_cfs;
	uint32_t found_format; /* the format it was opened with (the kind's if fresh) */
};

/*
 * Opens the store of kind k at path (creating the directory, with parents,
 * if missing) and checks its identity. *fresh is true if the store holds
 * nothing yet (new, or a creation cut short by a crash): the caller then
 * writes rocks_identity_put() and its first records in one synced batch.
 * Returns 0, or a negative errno with "path: ..." in err (-EINVAL: another
 * kind, format or cluster, or not a store at all; -EIO: unreadable; -ENOSPC;
 * -ENOMEM); on failure d is closed. path is copied.
 */
int rocks_db_open(struct rocks_db *d, const char *path, const struct rocks_kind *k,
		  uint64_t cluster_id, bool *fresh, char *err, size_t err_len);
/* Closes what rocks_db_open opened (any part of it) and zeroes d. */
void rocks_db_close(struct rocks_db *d);

/*
 * Makes every write so far durable in a no_wal store: flushes the memtables
 * of all its column families at one point of the write sequence, so a crash
 * leaves the store as it was after one whole write batch, never one family
 * further than another. Returns 0, or -EIO / -ENOSPC with "path: ..." in
 * err. Its only writer calls it (nothing may be written meanwhile).
 */
int rocks_flush_all(struct rocks_db *d, const char *path, char *err, size_t err_len);
/* The same flush, while other threads may write: returns once it is done,
 * without checking that every memtable is empty (writes made meanwhile are
 * in them). A failed flush stops RocksDB's writes, which then say why.
 * Returns 0, or -EIO / -ENOSPC / -ENOMEM if the flush could not start. */
int rocks_flush_start(struct rocks_db *d, const char *path, char *err, size_t err_len);

/* Puts the identity record of kind k for cluster_id into wb. */
void rocks_identity_put(const struct rocks_db *d, rocksdb_writebatch_t *wb,
			const struct rocks_kind *k, uint64_t cluster_id);

/* fsync of the directory holding path: a new directory's name is durable
 * only once its parent is synced, and a store (or data dir) whose directory
 * vanished in a power cut would come back empty. Returns 0 or a negative
 * errno. */
int rocks_sync_parent(const char *path);

/* Takes a RocksDB error string e (freed here) and writes "what: e" into msg.
 * Returns -ENOSPC if the disk is full, else -EIO. */
int rocks_error(char *e, char *msg, size_t msg_len, const char *what);

/* snprintf into msg; does nothing if msg is NULL or msg_len 0. */
void rocks_msg(char *msg, size_t msg_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* OMNIFS_ROCKS_UTIL_H */
