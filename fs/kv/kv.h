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
 * (export/import), kv_digest.c and kv_sha256.c (state digest), kv_note.c
 * (change notes), kv_feed.c (the change feed) and kv_snapshot.c (snapshot
 * files).
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
#include <stdio.h>

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
	uint8_t *note;	/* an encoded change note (kv_txn_set_note), or NULL */
	uint32_t note_len;
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

/* Attaches (or replaces) the change note n (copied, encoded) to a built
 * transaction. Returns 0, -EINVAL (the note does not encode, or the
 * transaction would be too long; t unchanged) or -ENOMEM. */
struct kv_note;
int kv_txn_set_note(struct kv_txn *t, const struct kv_note *n);

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
 * Whether the state processed proposal seq of node_id (applied it, found a
 * guard failed, or found it a duplicate), by the proposer's dedup record:
 * what a state transferred from a peer tells of this node's proposals
 * decided within it. Returns 0 (*seen set) or -EIO. Writer thread.
 */
int kv_proposal_seen(struct kv_store *s, uint64_t node_id, uint64_t seq, bool *seen);

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
 * Several entries applied in one WriteBatch: the replica's way when many are
 * decided at once. Each entry's result is decided as kv_apply_txn decides it
 * (against the state and the entries before it in the batch), but nothing is
 * written, and kv_applied_idx does not move, until kv_batch_commit; a
 * proposer's dedup record and the applied index are then written once for
 * the batch instead of once per entry, in one RocksDB write.
 *
 * kv_batch_add returns as kv_apply_txn does, plus -EAGAIN: t reads what the
 * batch writes (a guard on a key written in it, a prefix delete, which lists
 * the state's keys) or its proposer would be one too many in the batch's
 * table: commit, then add it again. On any other error the batch is
 * dropped: nothing of it is written, kv_applied_idx stays where it was, and
 * the entries can be applied again. kv_batch_commit writes the batch
 * (synced if sync) and empties it; on an error nothing of it was written.
 * t is only read during kv_batch_add. Writer thread.
 */
struct kv_batch;
struct kv_batch *kv_batch_new(void);
void kv_batch_free(struct kv_batch *b);
int kv_batch_add(struct kv_store *s, struct kv_batch *b, uint64_t log_idx, const struct kv_txn *t,
		 struct kv_result *res);
int kv_batch_add_malformed(struct kv_store *s, struct kv_batch *b, uint64_t log_idx,
			   const void *entry, size_t len, struct kv_result *res);
int kv_batch_commit(struct kv_store *s, struct kv_batch *b, bool sync);
/* Entries in the batch. */
uint32_t kv_batch_len(const struct kv_batch *b);

/*
 * Makes every apply so far durable. The state is written without a
 * write-ahead log and is durable only where RocksDB flushed its memtables
 * (on its own as they fill, or here), every column family at one point:
 * after a crash of the process or the machine, the applies since the last
 * flush are lost (whole, and only the last ones), so the applied index goes
 * back and the replica replays those entries. The consensus log must
 * therefore never be trimmed past kv_durable_applied_idx. A flush writes
 * table files: not for every entry. Returns 0, -EIO, -ENOSPC. Writer thread.
 */
int kv_sync(struct kv_store *s);

/* The applied index a crash now would leave (what is flushed). 0 or -EIO.
 * Writer thread. */
int kv_durable_applied_idx(struct kv_store *s, uint64_t *idx);

/* kv_sync without waiting: a thread of the store's own flushes every apply
 * so far, while the writer goes on; kv_durable_applied_idx tells when it
 * is done. A flush that fails makes the writer's next write fail. Returns 0
 * or -EAGAIN (no thread). Writer thread. */
int kv_sync_start(struct kv_store *s);

/*
 * Garbage collection of the state's blob files (the values of at least
 * ROCKS_BLOB_MIN_LEN bytes: file blocks), on only while there is garbage to
 * collect: turned on once garbage (blobs no key points to any more) is half
 * the blob files' bytes, off again under a quarter. While on, compactions
 * move the live blobs of the oldest blob files into new ones, and drop the
 * old files. Cheap (two property reads); call it now and then. Returns 0,
 * or -EIO if RocksDB refused the option (errmsg says why). Writer thread.
 */
int kv_blob_gc_tend(struct kv_store *s);
/* Whether collection is on for the live state (as kv_blob_gc_tend left it). */
bool kv_blob_gc_is_on(const struct kv_store *s);
/* The rule alone: whether collection should be on, given whether it is and
 * the blob files' bytes and garbage bytes. Pure. */
bool kv_blob_gc_wanted(bool on, uint64_t blob_bytes, uint64_t garbage_bytes);

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
/*
 * About how many bytes the view's state holds (keys and values, not
 * compressed), from RocksDB's statistics of its tables and memtables: cheap,
 * never a scan, for progress shown to people (state transfer, snapshots).
 * It counts what was overwritten or deleted and not yet compacted away, so
 * it runs above what a transfer of the view carries; 0 if unknown. Any
 * thread.
 */
uint64_t kv_view_size_estimate(struct kv_view *v);
/* The same on the latest state (a fresh read of that one key; no snapshot
 * is taken unless a state transfer switches the live state meanwhile). */
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

/* --- change notes and the feed ------------------------------------------------------ */

/*
 * A change note says in words what a transaction changes: what kind of
 * change, which path (and the new path of a rename), who (uid) and when
 * (the proposer's clock). The proposer attaches it (kv_txn_set_note), since
 * only it knows the paths: the state's keys are inode numbers. The KV does
 * not interpret it beyond checking its encoding; an entry whose note does
 * not decode is malformed as a whole.
 *
 * The feed: applying a transaction that carries a note with status
 * KV_APPLIED stores the note, with the proposer's node id, under the
 * entry's log index, in the same write batch. So every node holds the same
 * record at the same index, a restart keeps it, and a reader can ask for
 * every change from an index on. The feed keeps the last `keep` indexes
 * (kv_feed_set_keep); older records are dropped as the log's are. A state
 * transfer starts the feed afresh at the imported index.
 *
 * Note encoding (little-endian): u8 version (KV_NOTE_VERSION), u8 kind,
 * u32 uid, i64 time_ms, u16 path_len, path, u16 path2_len, path2. Paths
 * hold no NUL byte; path is never empty; path2 is set for a rename only.
 */
#define KV_NOTE_VERSION	 1
#define KV_NOTE_PATH_MAX 4096 /* bytes in one path of a note */
#define KV_NOTE_MAX_LEN	 (14 + 2 * (2 + KV_NOTE_PATH_MAX))
#define KV_FEED_KEEP	 100000 /* default indexes the feed keeps */

enum kv_note_kind {
	/* the filesystem: path is the path from the tree's root ("/etc/x") */
	KV_NOTE_CREATE = 1, /* a file, symlink, device or hard link appeared */
	KV_NOTE_MKDIR = 2,
	KV_NOTE_DELETE = 3, /* a name that was not a directory went away */
	KV_NOTE_RMDIR = 4,
	KV_NOTE_RENAME = 5, /* path moved to path2 (or, exchanged, swapped with it) */
	KV_NOTE_MODIFY = 6, /* content written or truncated */
	KV_NOTE_ATTRIB = 7, /* mode, owner, times or extended attributes */
	/* the user namespace of the KV: path is the key */
	KV_NOTE_KV_PUT = 16,
	KV_NOTE_KV_DEL = 17,
};

struct kv_note {
	enum kv_note_kind kind;
	uint32_t uid;	  /* who made the change, as the proposer saw it */
	int64_t time_ms;  /* the proposer's clock, ms since the epoch */
	const char *path; /* not NUL-terminated: path_len bytes */
	size_t path_len;
	const char *path2; /* KV_NOTE_RENAME only, else NULL/0 */
	size_t path2_len;
};

/* The kind's name in the feed's output ("create", "kv-put"); "?" if unknown. */
const char *kv_note_kind_name(enum kv_note_kind kind);
/* True if kind is one of the filesystem's (else the KV's). */
bool kv_note_kind_is_fs(enum kv_note_kind kind);
/* The encoded length of n, or 0 if n does not encode (unknown kind, empty
 * or oversized path, a NUL in a path, path2 set or missing against kind). */
size_t kv_note_encoded_len(const struct kv_note *n);
/* Encodes n into buf (kv_note_encoded_len bytes). Returns that length, or 0
 * if n does not encode or cap is too small. */
size_t kv_note_encode(const struct kv_note *n, uint8_t *buf, size_t cap);
/* Decodes a note (from the log or the feed: untrusted); n's paths point
 * into buf (borrowed). Returns 0 or -EBADMSG. */
int kv_note_decode(struct kv_note *n, const void *buf, size_t len);

/* Sets how many indexes the feed keeps below the applied index (>= 1;
 * KV_FEED_KEEP by default). Writer thread, or before it starts. */
void kv_feed_set_keep(struct kv_store *s, uint64_t keep);

/*
 * Reads the feed from index since on: the batch in out (malloc'd, the caller
 * frees out->data) holds u64 first (the oldest index the feed still has),
 * u64 next (every index in [since, next) is covered: ask from next next
 * time), then per record u64 index, u64 node, u32 note_len, the note; all
 * little-endian, records in index order. At most about max_bytes of records
 * (at least one if any). If since is beyond the applied index, the batch is
 * empty with next = since. Returns 0, -ERANGE if records at since were
 * dropped (*first then says from where the feed is whole; re-read the state
 * and go on from there), -ENOMEM, -EIO. Any thread.
 */
int kv_feed_read(struct kv_store *s, uint64_t since, size_t max_bytes, struct kv_buf *out,
		 uint64_t *first);

/* One record of a feed batch. */
struct kv_feed_rec {
	uint64_t idx;
	uint64_t node;
	struct kv_note note; /* points into the batch */
};
#define KV_FEED_HDR_LEN	    16
#define KV_FEED_REC_HDR_LEN 20 /* a record's index, node and note_len */

/* Parses a batch's header: 0 or -EBADMSG (too short, next < first). */
int kv_feed_header(const void *batch, size_t len, uint64_t *first, uint64_t *next);
/* The next record of a batch at *pos (start at KV_FEED_HDR_LEN): 1 and
 * *pos advanced, 0 at the end, -EBADMSG if malformed (a bad note, a record
 * cut short, or an index below min_idx: the caller passes the index it
 * asked from, then the last record's index + 1, so indexes only grow). */
int kv_feed_next(const void *batch, size_t len, size_t *pos, uint64_t min_idx,
		 struct kv_feed_rec *r);

/* --- snapshot files ------------------------------------------------------------------ */

/*
 * A snapshot file holds the whole replicated state of one view (every key,
 * version and value, the dedup table: all that a state transfer carries) at
 * one applied index, for backups and for seeding a new cluster
 * (kv_snapshot.c has the format). Written by a daemon while it applies;
 * read offline.
 */
#define KV_SNAP_VERSION	 1  /* format of a snapshot file */
#define KV_SNAP_NAME_MAX 64 /* cluster name, NUL included */

struct kv_snap_info {
	uint32_t version;		/* KV_SNAP_VERSION */
	uint64_t cluster_id;		/* the cluster it was taken from */
	char cluster[KV_SNAP_NAME_MAX]; /* its name, NUL-terminated */
	uint64_t node_id;		/* the node that wrote it */
	int64_t created_ms;		/* that node's clock, ms since the epoch */
	uint64_t applied_idx;		/* entries [0, applied_idx) are in it */
	uint8_t digest[KV_DIGEST_LEN];	/* kv_view_digest of the state in it */
	uint64_t records;		/* stored records (keys and dedup entries) */
	uint64_t bytes;			/* size of the file */
};

/* Called now and then with the bytes written or read so far. */
typedef void (*kv_snap_progress)(void *ctx, uint64_t bytes);

/*
 * Writes the state of view v (borrowed) to f, from its current position.
 * info's cluster_id, cluster, node_id and created_ms go into the header; the
 * other fields are filled here (applied index, digest, records, bytes). The
 * caller makes the file durable and atomic (fsync, rename). progress may be
 * NULL. Returns 0, -EIO (a read of the state or a write of f failed; why in
 * err), -ENOSPC, -ENOMEM or -EINVAL (an empty state: applied index 0).
 */
int kv_snapshot_write(struct kv_view *v, FILE *f, struct kv_snap_info *info,
		      kv_snap_progress progress, void *ctx, char *err, size_t err_len);

/*
 * Reads a snapshot from f and checks all of it: magic, version, framing,
 * every record, that the records' digest is the header's and the file's
 * checksum. info gets the header and counts (also on some failures: as much
 * as was read). With dst (a store whose applied index is below the
 * snapshot's, writer thread) the records are imported into it and made live
 * only once everything checked out. Returns 0, -EBADMSG (not a snapshot, a
 * version this build does not read, truncated, damaged: one line in err
 * saying which and where), -EIO (f unreadable, or dst failed), -ESTALE (dst
 * is not behind the snapshot), -ENOMEM.
 */
int kv_snapshot_read(FILE *f, struct kv_store *dst, struct kv_snap_info *info,
		     kv_snap_progress progress, void *ctx, char *err, size_t err_len);

#endif /* OMNIFS_KV_H */
