/*
 * The replicated KV: the state every node builds by applying the decided log,
 * in <data_dir>/state (the "distributed RocksDB" omnifs stands on).
 *
 * A log entry is a transaction (struct kv_txn): an atomic list of PUT, DELETE
 * and DELETE_PREFIX operations with guards (key absent, key present, key at
 * version V), and a proposal id (node, sequence). Applying an entry is
 * deterministic: the same log gives byte-identical state on every node
 * (kv_digest proves it). Every stored key carries a version: the log index of
 * the entry that last wrote it.
 *
 * Threads: one thread (the replica's) writes: kv_apply and the kv_import_*
 * calls. Reads (views, kv_get, iterators, exports, digests) may run on any
 * thread, concurrently with the writer; a view is used by one thread at a time.
 *
 * Errors: 0 or a negative errno. -EIO storage failure (text in
 * kv_errmsg() for writer calls), -ENOSPC disk full, -ENOMEM, -EBADMSG a
 * malformed transaction or chunk, -EINVAL a bad argument, -ENOENT no such
 * key. A failed write writes nothing, so a restart replays it.
 *
 * This header is all other parts need; the files behind it:
 * kv_txn.c (builder and encoding), kv_store.c (open, views, reads),
 * kv_apply.c (apply), kv_dedup.c (the exactly-once table), kv_transfer.c
 * (export/import), kv_digest.c and kv_sha256.c (state digest).
 *
 * Layer: fs/kv/, the lowest of fs/. It uses fs/base/ (logging) and
 * consensus/'s RocksDB helper (rocks_util.h) and byteorder.h; the replica
 * (which applies) and the filesystem (which reads and builds transactions)
 * use it, never the other way.
 */
#ifndef OMNIFS_KV_H
#define OMNIFS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_FORMAT	 1		     /* on-disk format of the state dir */
#define KV_TXN_VERSION	 1		     /* encoding of a transaction */
#define KV_MAX_KEY_LEN	 4096		     /* bytes in a key or prefix, >= 1 */
#define KV_MAX_VALUE_LEN (16u * 1024 * 1024) /* bytes in a value */
#define KV_MAX_OPS	 65536		     /* operations in one transaction */
#define KV_MAX_TXN_LEN	 (64u * 1024 * 1024) /* = OPX_MAX_ENTRY_LEN */
#define KV_DEDUP_WINDOW	 1024		     /* sequences remembered per proposer */
#define KV_DIGEST_LEN	 32		     /* SHA-256 */
#define KV_ERR_MAX	 512		     /* room for an error message */

/* --- transactions ------------------------------------------------------------ */

enum kv_op_type {
	KV_OP_PUT = 1,		 /* key := value */
	KV_OP_DELETE = 2,	 /* remove key (absent is fine) */
	KV_OP_DELETE_PREFIX = 3, /* remove every key starting with key */
	KV_OP_GUARD_ABSENT = 4,	 /* key must not exist */
	KV_OP_GUARD_PRESENT = 5, /* key must exist */
	KV_OP_GUARD_VERSION = 6, /* key must exist at exactly this version */
};

struct kv_op {
	enum kv_op_type type;
	const uint8_t *key; /* the key, or the prefix for DELETE_PREFIX */
	uint32_t key_len;
	const uint8_t *value; /* PUT only */
	uint32_t value_len;
	uint64_t version; /* GUARD_VERSION only */
};

/*
 * A transaction. Guards are all checked against the state before the
 * transaction, wherever they sit in the list; if they all hold, the writes
 * are applied in list order (a PUT after a DELETE_PREFIX that covers it
 * survives). node_id 0 means "no proposal id": never deduplicated.
 *
 * Proposer's obligation for exactly-once: sequences of one node id are
 * unique and only grow (also across restarts of the proposer), and a node
 * never has a proposal in flight whose sequence is KV_DEDUP_WINDOW or more
 * below the highest sequence of its already applied ones; such a proposal is
 * reported DUPLICATE without being applied.
 */
struct kv_txn {
	uint64_t node_id; /* proposer, 0 = none */
	uint64_t seq;	  /* proposer's sequence */
	struct kv_op *ops;
	uint32_t n_ops;
	uint32_t cap;
	bool owns;	/* builder: the ops' bytes are owned copies */
	size_t enc_len; /* encoded size so far */
};

/* An empty transaction with this id; builder-owned. */
void kv_txn_init(struct kv_txn *t, uint64_t node_id, uint64_t seq);
/* Add one operation; key and value are copied. Return 0, -EINVAL (empty or
 * oversized key/value, too many operations, transaction too long) or
 * -ENOMEM; the transaction is unchanged on error. */
int kv_txn_add_put(struct kv_txn *t, const void *key, size_t key_len, const void *value,
		   size_t value_len);
int kv_txn_add_delete(struct kv_txn *t, const void *key, size_t key_len);
int kv_txn_add_delete_prefix(struct kv_txn *t, const void *prefix, size_t prefix_len);
int kv_txn_add_guard_absent(struct kv_txn *t, const void *key, size_t key_len);
int kv_txn_add_guard_present(struct kv_txn *t, const void *key, size_t key_len);
int kv_txn_add_guard_version(struct kv_txn *t, const void *key, size_t key_len, uint64_t version);
/* Frees what the transaction owns; it is empty (and reusable after init). */
void kv_txn_free(struct kv_txn *t);

/* Encodes t into a malloc'd buffer (*out, the caller frees it) of *len bytes
 * (<= KV_MAX_TXN_LEN). Returns 0 or -ENOMEM. */
int kv_txn_encode(const struct kv_txn *t, uint8_t **out, size_t *len);

/*
 * Decodes an entry (from the log, so from the network): checks the version,
 * every length, every type and limit, and that nothing trails. On success t
 * points into entry (borrowed: entry must outlive t; kv_txn_free frees only
 * the op array). Returns 0, -EBADMSG (malformed; t is empty) or -ENOMEM.
 */
int kv_txn_decode(struct kv_txn *t, const void *entry, size_t len);

/* --- the store ----------------------------------------------------------------- */

struct kv_store;

/*
 * Opens the state at path, creating the directory (with parents) and an empty
 * state bound to cluster_id if missing or empty. An existing one must carry
 * the same cluster id and format; a directory that holds something else or a
 * corrupt state is refused. Returns 0, -EINVAL (refused), -EIO, -ENOSPC or
 * -ENOMEM, with a one-line reason naming the path in err (err_len bytes,
 * KV_ERR_MAX is enough). path is copied.
 */
int kv_open(struct kv_store **out, const char *path, uint64_t cluster_id, char *err,
	    size_t err_len);
/* Closes and frees the store, NULLs *s. No view may be open. NULL is a no-op. */
void kv_close(struct kv_store **s);
/* The reason for the last failed writer call ("" if none). Writer thread. */
const char *kv_errmsg(const struct kv_store *s);
/* Entries [0, applied) of the log are applied. Any thread. */
uint64_t kv_applied_idx(struct kv_store *s);

/* --- apply --------------------------------------------------------------------- */

enum kv_status {
	KV_APPLIED = 0,	  /* guards held, every write done */
	KV_CONFLICT = 1,  /* guard conflict_op failed: nothing but the index and dedup */
	KV_DUPLICATE = 2, /* this proposal id was processed before: nothing but the index */
	KV_MALFORMED = 3, /* the entry does not decode (error = -EBADMSG): only the index */
	KV_STALE = 4,	  /* log_idx < applied: already applied, nothing written */
};

struct kv_result {
	enum kv_status status;
	int error;	  /* -EBADMSG for KV_MALFORMED, else 0 */
	uint64_t node_id; /* the proposal id (0 if none or undecodable) */
	uint64_t seq;
	uint32_t conflict_op; /* KV_CONFLICT: index of the first failing guard */
	uint64_t log_idx;     /* the entry's index (the version of what it wrote) */
};

/*
 * Applies the decided entry at log_idx (borrowed), which must be
 * kv_applied_idx(): checks the guards and the dedup table and writes the
 * result, the dedup update and applied = log_idx + 1 in one WriteBatch
 * (synced if sync). res (always filled on 0) says what happened.
 * Returns 0; -EINVAL if log_idx > applied (a gap; nothing written); -EIO,
 * -ENOSPC or -ENOMEM with nothing written (apply it again after a restart).
 * Writer thread.
 */
int kv_apply(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len, bool sync,
	     struct kv_result *res);

/*
 * kv_apply in two halves, for a caller that decodes the entry itself (the
 * replica decodes each entry once and hands the same struct kv_txn to its
 * apply hook). kv_apply_txn applies t (borrowed: decoded by kv_txn_decode,
 * or built) at log_idx; kv_apply_malformed records an entry that did not
 * decode (entry borrowed, only to read the proposal id if the header is
 * readable): KV_MALFORMED, and nothing but the index advances. Both check
 * for stale and gap first and return as kv_apply does.
 */
int kv_apply_txn(struct kv_store *s, uint64_t log_idx, const struct kv_txn *t, bool sync,
		 struct kv_result *res);
int kv_apply_malformed(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len,
		       bool sync, struct kv_result *res);

/*
 * Makes every apply so far durable (fsyncs the write-ahead log). Applying
 * with sync false and calling this once per batch of entries is group
 * commit. After a machine crash, unsynced applies may be lost (whole, and
 * only the last ones), so the applied index goes back and the replica
 * replays those entries: the consensus log must therefore never be trimmed
 * past an applied index that has not been synced. Returns 0, -EIO, -ENOSPC.
 * Writer thread.
 */
int kv_sync(struct kv_store *s);

/* --- reads ----------------------------------------------------------------------- */

/* A consistent read view: one RocksDB snapshot of the live state at one
 * applied index. Any thread; one thread at a time per view. */
struct kv_view;

/* Returns 0 or -ENOMEM/-EIO. Close it before kv_close. */
int kv_view_open(struct kv_store *s, struct kv_view **out);
void kv_view_close(struct kv_view **v);
/* The applied index the view shows: entries [0, idx) are in it. */
uint64_t kv_view_applied_idx(const struct kv_view *v);

/*
 * Reads key. On 0, *value is a malloc'd copy (the caller frees it; NULL
 * allowed if not wanted), *value_len its length and *version the log index
 * that last wrote it (NULL pointers skip them). Returns -ENOENT if absent,
 * -EIO, -ENOMEM.
 */
int kv_view_get(struct kv_view *v, const void *key, size_t key_len, void **value, size_t *value_len,
		uint64_t *version);
/* The same on a view of its own (a fresh, consistent read). */
int kv_get(struct kv_store *s, const void *key, size_t key_len, void **value, size_t *value_len,
	   uint64_t *version);

/* Iterates, in key order, the keys starting with prefix, from the first
 * such key >= start (start NULL: from the beginning). The view must outlive
 * the iterator. prefix and start are copied. Returns 0, -ENOMEM, -EIO. */
struct kv_iter;
int kv_iter_open(struct kv_view *v, const void *prefix, size_t prefix_len, const void *start,
		 size_t start_len, struct kv_iter **out);
/* 1 and the next item (pointers valid until the next call on it), 0 at the
 * end, or -EIO (corrupt value, storage error). */
int kv_iter_next(struct kv_iter *it, const uint8_t **key, size_t *key_len, const uint8_t **value,
		 size_t *value_len, uint64_t *version);
void kv_iter_close(struct kv_iter **it);

/*
 * The highest sequence of node_id processed (applied or
 * conflicted) in the view's state, into *seq. A proposer restarting
 * without its own record of sequences continues above it (plus whatever it
 * may still have had in flight). Returns 0, -ENOENT if node_id never
 * proposed (or is 0), -EIO.
 */
int kv_view_dedup_hwm(struct kv_view *v, uint64_t node_id, uint64_t *seq);

/*
 * SHA-256 over the whole replicated state of the view, in key order: every
 * (key, version, value), the dedup table, and the applied index. Equal on
 * every node at the same applied index. Returns 0, -EIO, -ENOMEM.
 */
int kv_view_digest(struct kv_view *v, uint8_t out[KV_DIGEST_LEN]);
int kv_digest(struct kv_store *s, uint8_t out[KV_DIGEST_LEN]);
/* Lower-case hex of a digest into buf (2 * KV_DIGEST_LEN + 1 bytes). */
void kv_digest_hex(const uint8_t d[KV_DIGEST_LEN], char *buf);

/* --- state transfer ------------------------------------------------------------------ */

/* A malloc'd byte string; free(data) when done. */
struct kv_buf {
	uint8_t *data;
	size_t len;
};

/*
 * Source side: the next chunk of the view's state, in key order, strictly
 * after the cursor (after, after_len; NULL/0 = from the start). The chunk
 * holds records totalling about max_bytes (at least one record if any is
 * left, however big), the view's applied index and the cursor it continues
 * from, and says whether it is the last. *next gets the cursor for the next
 * call (a copy of the chunk's last key; unchanged cursor if the chunk is
 * empty). Cursors are opaque bytes. chunk and next are malloc'd (caller
 * frees). Returns 0, -ENOMEM, -EIO.
 */
int kv_export_chunk(struct kv_view *v, const void *after, size_t after_len, size_t max_bytes,
		    struct kv_buf *chunk, struct kv_buf *next, bool *last);

/*
 * Receiving side (writer thread). Chunks go into a staging area; the live
 * state stays readable and unchanged until kv_import_finish switches to the
 * imported state in one batch. Progress is durable, so a transfer cut off
 * (connection or process) resumes where it stopped.
 *
 * kv_import_begin: starts (or, if one for the same source applied index is
 * already in progress, resumes) an import of a state at src_applied_idx.
 * Anything else in the staging area is dropped. Returns 0, -ESTALE if
 * src_applied_idx <= kv_applied_idx (nothing to gain), -EIO, -ENOSPC.
 */
int kv_import_begin(struct kv_store *s, uint64_t src_applied_idx);
/*
 * What an import in progress has: *in_progress false if none; else the
 * source's applied index, the cursor to ask the source for (malloc'd into
 * cursor, free it; empty at the start) and whether the last chunk arrived.
 */
int kv_import_progress(struct kv_store *s, bool *in_progress, uint64_t *src_applied_idx,
		       struct kv_buf *cursor, bool *complete);
/*
 * Stores one chunk (borrowed, validated: -EBADMSG if malformed) and the new
 * progress in one batch. -ESTALE if it is not the next chunk of the import in
 * progress (another source index, or another cursor); -EINVAL if no import is
 * in progress or the last chunk already came.
 */
int kv_import_chunk(struct kv_store *s, const void *chunk, size_t len);
/*
 * Makes the imported state live, with its applied index, in one synced
 * batch; then clears the old state. Readers see the old state or the new
 * one, never a mix (views opened before keep the old one). Returns 0,
 * -EINVAL if no complete import is in progress, -ESTALE if the state has
 * meanwhile applied past the source index, -EIO, -ENOSPC.
 */
int kv_import_finish(struct kv_store *s);
/* Drops an import in progress and its staging data. */
int kv_import_abort(struct kv_store *s);

#endif /* OMNIFS_KV_H */
