/*
 * Private to the kv_*.c files: the store object, the on-disk layout and the
 * dedup record they share. Nothing outside fs/kv_*.c includes it.
 *
 * Layout of <data_dir>/state (RocksDB):
 * - "default" column family (meta): "identity" (rocks_util.c's record),
 *   "active" (1 byte: which state column family is live), "applied" (u64:
 *   entries [0, applied) are applied), "import" (progress of a state
 *   transfer in progress, if any), "feed-first" (u64: the oldest index the
 *   change feed is whole from), and the feed's records: 0x01 + u64 BE log
 *   index -> u64 node id + change note (kv_feed.c). The feed lives here,
 *   outside the replicated state, so it is neither digested nor transferred:
 *   the same on every node that applied the same entries, and a data dir
 *   written before the feed existed opens as it is (its feed starts at its
 *   applied index).
 * - "state0" and "state1": two copies of room for the replicated state; one
 *   is live, the other is the staging area of an import. Keys carry a
 *   namespace byte: 'k' + user key -> u64 version + value; 'd' + u64 BE node
 *   id -> dedup record. The namespace keeps user keys apart from the dedup
 *   table while both travel in a state transfer and enter the digest.
 * All integers little-endian except the node id in dedup keys (big-endian,
 * so the table sorts by node).
 */
#ifndef OMNIFS_KV_INT_H
#define OMNIFS_KV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "byteorder.h"
#include "kv.h"
#include "rocks_util.h"

#define KV__NS_DEDUP	  'd'
#define KV__NS_KEY	  'k'
#define KV__VERSION_LEN	  8				/* u64 prefix of a stored value */
#define KV__DEDUP_WORDS	  (KV_DEDUP_WINDOW / 64)	/* u64 words of the window */
#define KV__DEDUP_LEN	  (1 + 8 + 8 * KV__DEDUP_WORDS) /* version, hwm, window */
#define KV__STATE_KEY_MAX (1 + KV_MAX_KEY_LEN)		/* namespace + key */

#define KV__M_ACTIVE	 "active"
#define KV__M_APPLIED	 "applied"
#define KV__M_IMPORT	 "import"
#define KV__M_FEED_FIRST "feed-first"
#define KV__FEED_PREFIX	 0x01 /* below every meta name (they are ASCII words) */
#define KV__FEED_KEY_LEN 9
/* RocksDB's ReadTier kPersistedTier (the C API takes the enum's value). */
#define KV__PERSISTED_TIER 2

struct kv_store {
	struct rocks_db rdb; /* owns the database, its options and column families */
	/* Shortcuts into rdb, set once by kv_open. */
	rocksdb_t *db;
	rocksdb_readoptions_t *ropts;	      /* latest state (writer's reads) */
	rocksdb_readoptions_t *durable_ropts; /* what is flushed (kv_durable_applied_idx) */
	rocksdb_column_family_handle_t *cf_meta;
	rocksdb_column_family_handle_t *cf_state[2];
	int active; /* the writer thread's copy of "active" (views read the DB's under their
		     * snapshot; kv_get reads this one, atomically, within swap_seq) */
	_Atomic uint32_t swap_seq; /* odd while kv_import_finish switches the live state:
				    * a read without a snapshot that saw it change
				    * retries on a view */
	_Atomic uint64_t applied;  /* written by the writer thread, read by any */
	uint64_t feed_first;	   /* writer thread's copy of "feed-first" */
	uint64_t feed_keep;	   /* indexes the feed keeps; writer thread */
	bool blob_gc_on[2];	   /* per state family: collection on (kv_blob_gc.c); writer */
	char *path;
	bool opened; /* kv_open succeeded: kv_close flushes */
	/* The background flush (kv_sync_start), under flush_mu. */
	pthread_mutex_t flush_mu;
	pthread_cond_t flush_cv;
	pthread_t flusher;
	bool flusher_on, flush_wanted, flush_busy, flush_stop;
	char errmsg[256]; /* writer calls only; "what: cause", without the path */
};

struct kv_view {
	struct kv_store *s;
	const rocksdb_snapshot_t *snap;
	rocksdb_readoptions_t *ropts; /* reads at snap */
	rocksdb_column_family_handle_t *cf;
	uint64_t applied;
};

/* One dedup record: bit d of window is set if sequence hwm - d was processed. */
struct kv__dedup {
	uint64_t hwm;
	uint64_t window[KV__DEDUP_WORDS];
};

/* Proposers a batch keeps the dedup records of (kv_apply.c): a cluster's
 * voters and a few learners. */
#define KV__BATCH_NODES 8
/* Bits of the filter of state keys a batch wrote (two per key): a guard on
 * a key that may be among them waits for the commit. */
#define KV__BATCH_FILTER_BITS 8192

/* A batch of applies (kv.h); kv_apply_txn uses one of a single entry. */
struct kv_batch {
	rocksdb_writebatch_t *wb; /* NULL while empty */
	uint64_t first;		  /* log index of its first entry */
	uint32_t n;		  /* entries in it */
	bool wide;		  /* a prefix delete is in it: every key may be written */
	uint32_t n_nodes;
	struct {
		uint64_t id;
		bool has, dirty; /* has: a record exists (or was made in the batch) */
		struct kv__dedup d;
	} nodes[KV__BATCH_NODES];
	uint64_t written[KV__BATCH_FILTER_BITS / 64];
};

/* snprintf into s->errmsg. */
void kv__set_errmsg(struct kv_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps a RocksDB error string (freed here) as "what: text" in errmsg and
 * returns -ENOSPC if the disk is full, else -EIO (rocks_error). */
int kv__rocks_fail(struct kv_store *s, const char *what, char *e);
/* Writes wb with sync on or off. Returns 0, -EIO or -ENOSPC. */
int kv__write(struct kv_store *s, rocksdb_writebatch_t *wb, bool sync, const char *what);
/* Reads a u64 meta value at ropts (0 if absent). -EIO if it does not decode. */
int kv__meta_get_u64(struct kv_store *s, rocksdb_readoptions_t *ropts, const char *key, uint64_t *v,
		     bool *found);

/* A stored user value: its version and bytes. False if too short. */
bool kv__split_value(const char *raw, size_t len, uint64_t *version, const char **val,
		     size_t *val_len);

/* kv_dedup.c: a dedup record's value (KV__DEDUP_LEN bytes) and window. */
void kv__dedup_encode(uint8_t *p, const struct kv__dedup *d);
bool kv__dedup_decode(const char *raw, size_t len, struct kv__dedup *d);
/* True if seq was processed or lies below the window. */
bool kv__dedup_seen(const struct kv__dedup *d, uint64_t seq);
/* Records seq (which must not be seen). */
void kv__dedup_mark(struct kv__dedup *d, uint64_t seq);

/* kv_feed.c: the writer's side of the feed. feed_put adds t's note (if any)
 * as the record of log_idx; feed_trim drops what falls out of the feed's
 * bounds once log_idx is applied; both into wb. feed_open reads (or, for a
 * data dir from before the feed, writes) "feed-first" at kv_open;
 * feed_reset empties the feed from first on (a state transfer). */
void kv__feed_put(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t log_idx,
		  const struct kv_txn *t);
void kv__feed_trim(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t log_idx);
int kv__feed_open(struct kv_store *s);
void kv__feed_reset(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t first);

/* kv_transfer.c: a state-transfer chunk's framing (also the body of a
 * snapshot file, kv_snapshot.c), and whether a stored record is one a
 * source could have written (namespace, lengths, dedup record). */
#define KV__CHUNK_VERSION   1
#define KV__CHUNK_FLAG_LAST 1
#define KV__CHUNK_HDR_MIN   (1 + 1 + 8 + 4 + 4)
bool kv__record_ok(const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen);
/* Takes a length-prefixed field (u32 LE length, then the bytes) at *p,
 * before end: false if it is cut short or longer than max. On success
 * *bytes and *n are the field and *p is past it (kv_transfer.c). */
bool kv__take(const uint8_t **p, const uint8_t *end, uint32_t max, const uint8_t **bytes,
	      uint32_t *n);
/* Orders two stored keys as RocksDB's default comparator does (bytes, then
 * the shorter first): <0, 0 or >0 (kv_transfer.c). */
int kv__key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* kv_digest.c: the state digest's framing, for kv_view_digest and for a
 * snapshot reader that recomputes it from a file's records. digest_record
 * hashes one stored record into c; digest_finish adds the applied index and
 * writes the digest (kv_sha256_final's result). */
struct kv_sha256;
void kv__digest_record(struct kv_sha256 *c, const void *k, size_t klen, const void *v, size_t vlen);
int kv__digest_finish(struct kv_sha256 *c, uint64_t applied, uint8_t out[KV_DIGEST_LEN]);

/* The proposal id of an entry whose body may be malformed. False if even
 * the header does not decode. */
bool kv__txn_peek_id(const void *entry, size_t len, uint64_t *node_id, uint64_t *seq);

#endif /* OMNIFS_KV_INT_H */
