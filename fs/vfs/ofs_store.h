/*
 * The seam between the filesystem and the replicated KV: local reads of
 * versioned keys, and guarded transactions committed through consensus.
 *
 * The filesystem never talks to RocksDB or the replica directly; it calls the
 * four functions of a struct ofs_store. omnifsd fills one from the replica
 * (reads from the node's applied state, commit = propose and wait for the
 * local apply); tests and the single-node harness use ofs_store_mem, which
 * applies each transaction at once. Does not retry: a failed guard comes back
 * as -EAGAIN and the caller re-reads and rebuilds.
 */
#ifndef OMNIFS_OFS_STORE_H
#define OMNIFS_OFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

enum ofs_txn_op_type {
	OFS_OP_PUT,	      /* key = val */
	OFS_OP_DELETE,	      /* drop key (absent is fine) */
	OFS_OP_DELETE_PREFIX, /* drop every key starting with key */
	OFS_GUARD_ABSENT,     /* the entry applies only if key is absent */
	OFS_GUARD_VERSION,    /* ... only if key exists at exactly this version */
};

struct ofs_txn_op {
	enum ofs_txn_op_type type;
	struct ofs_key key;
	uint8_t *val; /* PUT: owned by the txn */
	size_t val_len;
	uint64_t version; /* GUARD_VERSION */
};

/* An atomic list of operations plus guards. Caller-allocated; ofs_txn_init,
 * then ofs_txn_close to free what the adds copied. Operations apply in the
 * order they were added, after every guard held. */
struct ofs_txn {
	struct ofs_txn_op *ops;
	size_t n, cap;
	size_t bytes; /* sum of PUT value lengths, to bound entry sizes */
	int err;      /* first allocation failure; commit returns it */
};

void ofs_txn_init(struct ofs_txn *t);
void ofs_txn_close(struct ofs_txn *t);
void ofs_txn_reset(struct ofs_txn *t); /* empty it for a retry, keeping the buffer */
/* The adds copy key and value; on allocation failure they record -ENOMEM in t->err. */
void ofs_txn_put(struct ofs_txn *t, const struct ofs_key *k, const void *val, size_t len);
void ofs_txn_delete(struct ofs_txn *t, const struct ofs_key *k);
void ofs_txn_delete_prefix(struct ofs_txn *t, const struct ofs_key *prefix);
void ofs_txn_guard_absent(struct ofs_txn *t, const struct ofs_key *k);
void ofs_txn_guard_version(struct ofs_txn *t, const struct ofs_key *k, uint64_t version);

/* Called once per key of a scan, in key order. key and val are borrowed for the
 * call. Return 0 to go on, 1 to stop early, or a negative errno to abort. */
typedef int (*ofs_scan_fn)(void *arg, const void *key, size_t key_len, const void *val,
			   size_t val_len, uint64_t version);

struct ofs_store {
	void *ctx;
	/* Reads key: on success *val is malloc'ed (the caller frees it), *len and
	 * *version are set. -ENOENT if absent, -EIO on storage failure. Local and
	 * non-blocking; any thread. */
	int (*get)(void *ctx, const void *key, size_t key_len, void **val, size_t *len,
		   uint64_t *version);
	/* Calls fn for every key that starts with prefix and is > after (if
	 * after_len > 0), in order. Returns 0, fn's negative result, or -EIO. */
	int (*scan)(void *ctx, const void *prefix, size_t prefix_len, const void *after,
		    size_t after_len, ofs_scan_fn fn, void *arg);
	/* Commits t (borrowed) and returns once it is applied locally: 0 applied,
	 * -EAGAIN a guard failed (nothing written), -EROFS no quorum,
	 * -ETIMEDOUT not decided in time, -ESHUTDOWN stopping, -ENOMEM, -EIO. */
	int (*commit)(void *ctx, const struct ofs_txn *t);
	/* Optional: 0 if a commit may succeed, -EROFS if this node knows it has no
	 * quorum now. NULL means always 0. */
	int (*can_write)(void *ctx);
};

/*
 * In-memory store: a sorted table of versioned keys, applying each committed
 * transaction at once at the next index (the version of every key it writes).
 * For tests and the single-node harness. Thread-safe (one rwlock).
 */
struct ofs_store_mem;
struct ofs_store_mem *ofs_store_mem_new(void);
void ofs_store_mem_destroy(struct ofs_store_mem **m);
/* Fills s with functions over m (borrowed: m must outlive s). */
void ofs_store_mem_bind(struct ofs_store_mem *m, struct ofs_store *s);
/* Test knobs: make the next n commits fail with err (e.g. -EROFS), and
 * count keys. */
void ofs_store_mem_fail_next(struct ofs_store_mem *m, int n, int err);
size_t ofs_store_mem_count(struct ofs_store_mem *m);
/* Applied-entry hook, called after each successful apply with the txn
 * (borrowed) and the index; used by tests of invalidation. */
void ofs_store_mem_set_hook(struct ofs_store_mem *m,
			    void (*fn)(void *arg, uint64_t idx, const struct ofs_txn *t),
			    void *arg);

#endif /* OMNIFS_OFS_STORE_H */
