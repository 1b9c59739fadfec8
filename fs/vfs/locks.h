/*
 * Cluster-wide locks: the lock keeper of one node (locks.c) over the lock
 * table in the replicated KV (lock_table.h).
 *
 * Every change of the table (take, convert, release, expire) is one guarded
 * transaction through the backend's propose, so every node agrees on the
 * holders. One thread per node, the keeper, makes all of this node's changes
 * (requests are queued for it), which keeps the node's own lease simple to
 * reason about; reads (F_GETLK, listings, the fast path of close) run on the
 * caller's thread.
 *
 * Leases, and who decides expiry. A node holding locks owns a lease (L e:
 * an epoch) and renews it through the log (L w) every lease/4. Every node
 * notes, on its own monotonic clock, when it last saw each other node's
 * renewal change; one that has not changed for the whole lease is expired by
 * a transaction guarded on the renewal's version, so a renewal that raced it
 * makes the expiry fail instead. Only durations on each node's own clock are
 * used, never a timestamp from another node. A node that saw its renewal
 * decided at time p (started at p) knows no other node can expire it before
 * p + lease on their clocks; from p + lease/2 without a newer renewal it
 * reports its locks "in doubt" (status), and from p + lease, or once it sees
 * its lease gone, it gives them up as "lost" (logged, counted in status;
 * a new epoch, so no old holder is taken for its own). Processes holding
 * such locks are not told: a holder must not rely on a lock after its node
 * reported it lost or in doubt. A node cut from the majority cannot change the tree meanwhile
 * (its writes fail with EROFS), which fences it. A restarted node drops its
 * previous lease at once (nothing of its old processes holds anything).
 * The leader plays no part: a leader change changes nothing.
 *
 * Waiters (F_SETLKW, flock without LOCK_NB, omnifsctl lock) are queued here,
 * on the node where the process waits; the keeper retries them whenever the
 * apply hook reports a change of the lock table and on every tick. Deadlocks
 * between waiters are not detected (no EDEADLK): use timeouts or lock order.
 * A release that cannot be decided (no quorum) stays queued until it is.
 * One keeper thread per node serializes this node's changes of the table:
 * each is one consensus round, so a node takes and releases at most a few
 * hundred locks per second (bench-locks.sh); reads do not wait for it.
 */
#ifndef OMNIFS_LOCKS_H
#define OMNIFS_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock_table.h"

struct ofs;
struct ofs_backend;
struct ofs_locks;
struct kv_txn;
struct ctl_buf;

#define OFS_LOCKS_LEASE_DEFAULT_MS 5000u

struct ofs_locks_config {
	uint64_t node_id;
	uint32_t lease_ms; /* >= 100 */
};

/* Starts the keeper over backend b (copied; b->ctx and b->kv must outlive
 * it). NULL with errno set on failure (EINVAL, ENOMEM). */
struct ofs_locks *ofs_locks_new(const struct ofs_locks_config *c, const struct ofs_backend *b);
/* Stops the keeper: requests still queued end with -ESHUTDOWN. *l NULLs. */
void ofs_locks_destroy(struct ofs_locks **l);

/* The apply hook's part: call for every applied entry (t NULL: the state was
 * replaced). Only looks for keys of the lock table and wakes the keeper;
 * never blocks on anything but the keeper's own mutex. */
void ofs_locks_on_applied(struct ofs_locks *l, const struct kv_txn *t);

enum ofs_lock_op {
	OFS_LOCK_SET,	     /* take, convert or (LK_UNLOCK) release q's lock */
	OFS_LOCK_DROP_OWNER, /* release every lock of q's (owner, kind) */
	OFS_LOCK_DROP_FH,    /* release every lock taken through q's fh */
};

/* Called once per request, on the keeper's thread: 0 done, -EAGAIN a
 * conflict (not waiting), -EINTR cancelled, -ESHUTDOWN, or the backend's
 * error (-EROFS, -ETIMEDOUT, -ENOLCK...). */
typedef void (*ofs_lock_done_fn)(void *ctx, int rc);

/* A fresh request id (never 0). */
uint64_t ofs_locks_new_id(struct ofs_locks *l);
/*
 * Queues request id (from ofs_locks_new_id) for the keeper: op on resource
 * res with q (its node is set to this node's; epoch ignored). A waiting
 * OFS_LOCK_SET stays queued through conflicts and backend errors until it
 * is granted or cancelled. tag marks it for ofs_locks_cancel_tag. res and q
 * are copied. done runs exactly once (even on error here).
 */
void ofs_locks_submit(struct ofs_locks *l, uint64_t id, enum ofs_lock_op op,
		      const struct lk_key *res, const struct lk_holder *q, bool wait,
		      const void *tag, ofs_lock_done_fn done, void *ctx);
/* Cancels request id: done(-EINTR) soon, unless it already finished. Safe at
 * any time, from any thread, even before the submit (then the submit ends
 * at once) or after done ran (a no-op). */
void ofs_locks_cancel(struct ofs_locks *l, uint64_t id);
/* Cancels every request with this tag and returns once their done ran. */
void ofs_locks_cancel_tag(struct ofs_locks *l, const void *tag);
/* submit + wait for done; returns done's rc. Never from the keeper. */
int ofs_locks_call(struct ofs_locks *l, enum ofs_lock_op op, const struct lk_key *res,
		   const struct lk_holder *q);

/* True if this node may hold a lock on res (false: a release has nothing to
 * do, so close needs no round trip). Any thread. */
bool ofs_locks_maybe_held(struct ofs_locks *l, const struct lk_key *res);

/*
 * F_GETLK: the first valid holder conflicting with q (as a request of this
 * node) into *h: returns 1, 0 if none, or -EIO/-ENOMEM. Any thread.
 */
int ofs_locks_test(struct ofs_locks *l, const struct lk_key *res, const struct lk_holder *q,
		   struct lk_holder *h);

/* This node's id, and the lease. */
uint64_t ofs_locks_node(const struct ofs_locks *l);
uint32_t ofs_locks_lease_ms(const struct ofs_locks *l);

/* `omnifsctl locks`: every valid holder (resource, kind, type, range, node,
 * pid, age as this node saw it) and this node's waiters. JSON: one object. */
int ofs_locks_list(struct ofs_locks *l, bool json, struct ctl_buf *out);
/* Lines for status (JSON: members to splice into an object, each with a
 * leading comma): lease, in doubt, times lost. */
void ofs_locks_status(struct ofs_locks *l, bool json, struct ctl_buf *out);

/* The FUSE adapter's: the keeper the mount's lock requests go to (NULL:
 * none, lock requests fail with ENOLCK). Before ofs_mount. */
void ofs_set_locks(struct ofs *o, struct ofs_locks *l);

#endif /* OMNIFS_LOCKS_H */
