/*
 * The RocksDB implementation of the OmniPaxos storage vtable (storage.h,
 * spec §6): the consensus log of one node, in <data_dir>/log.
 *
 * Layout: the default column family holds the data dir's identity (magic,
 * format version, cluster id) and the scalars (promise, accepted round,
 * decided and compacted index, trimmed index, stop-sign, snapshot); the "log"
 * column family holds the entries under 8-byte big-endian absolute indexes,
 * so iteration order is index order. Stored entries are always exactly the
 * indexes [trimmed, log_end); log_end is kept in memory and recovered on open.
 * Each write_atomically is one synced WriteBatch; it offers write_unsynced
 * and sync (storage.h) too.
 *
 * This is not a general-purpose database: it stores what the core gives it
 * and checks only what it needs to stay coherent. It does no locking: one
 * thread (the replica's) uses an instance at a time. It is a separate library
 * (consensus_rocksdb) so the pure core keeps no dependency.
 */
#ifndef OMNIFS_OPX_STORAGE_ROCKSDB_H
#define OMNIFS_OPX_STORAGE_ROCKSDB_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* On-disk format of the log data dir; a dir of another format is refused.
 * 2: recent batches in the journal (log_journal.h); 1: in RocksDB's own log
 * alone, opened and upgraded to 2 (so an omnifs that reads only 1, and would
 * not replay the journal, refuses the dir instead of losing its batches). */
#define OPX_ROCKS_FORMAT	2
#define OPX_ROCKS_OLDEST_FORMAT 1

struct opx_rocks;

/*
 * Opens the consensus log at path, creating the directory (and parents) and a
 * fresh log bound to cluster_id if it is missing or empty. An existing log is
 * opened only if it was created with the same cluster id and format; a
 * directory that holds something else, or a corrupt log, is refused.
 * Returns 0 and *out, or -EINVAL (refused: foreign, other format, not a log),
 * -EIO (RocksDB error, corrupt data), -ENOSPC or -ENOMEM, with a one-line
 * reason naming the path in err (always NUL-terminated when err_len > 0).
 * path is copied.
 */
int opx_rocks_open(struct opx_rocks **out, const char *path, uint64_t cluster_id, char *err,
		   size_t err_len);

/* Closes the database, frees the object and NULLs *r. NULL is a no-op. */
void opx_rocks_close(struct opx_rocks **r);

/*
 * The vtable bound to r; valid while r is open. Beyond storage.h's
 * contract: write_atomically returns -EINVAL (nothing written, reason in
 * errmsg) for an operation it cannot store coherently: APPEND_ON_PREFIX with
 * from_idx beyond the end of the log (a gap), an entry over
 * OPX_MAX_ENTRY_LEN, a stop-sign out of range, an unknown type.
 * APPEND_ON_PREFIX below the trimmed index stores only the entries at or
 * above it (the rest are covered by the snapshot). TRIM past the end moves
 * the end there (as the reference's memory storage does).
 */
struct opx_storage opx_rocks_storage(struct opx_rocks *r);

/*
 * Each configuration of the cluster (a stop-sign ends one) runs its own log.
 * config_id: the configuration this log belongs to (1 if none was recorded).
 * reset: empties the log and every stored scalar and binds it to config_id,
 * in one synced batch; only for a log whose configuration is over (its
 * stop-sign decided). The vtable stays valid; no core may be using it.
 * Both return 0, -EIO (reason in errmsg), -ENOSPC or -ENOMEM.
 */
int opx_rocks_config_id(struct opx_rocks *r, uint32_t *config_id);
int opx_rocks_reset(struct opx_rocks *r, uint32_t config_id);

/*
 * fn (NULL: none) is told, after each synced write_atomically and each
 * sync that succeeded, how long RocksDB took to write and sync it (or to
 * sync), in nanoseconds of CLOCK_MONOTONIC: the log's fsync latency as the
 * core waits for it. Writes
 * of the decided index alone are not synced and not reported. Called on the
 * thread that writes; set it from that thread, or before it starts.
 */
typedef void (*opx_rocks_sync_fn)(void *ctx, uint64_t ns);
void opx_rocks_set_sync_fn(struct opx_rocks *r, opx_rocks_sync_fn fn, void *ctx);

/* The reason for the last failed call on r ("" if none), as "what: cause"
 * without the store's path (the caller says which store). Valid until the
 * next call on r. */
const char *opx_rocks_errmsg(const struct opx_rocks *r);

#endif /* OMNIFS_OPX_STORAGE_ROCKSDB_H */
