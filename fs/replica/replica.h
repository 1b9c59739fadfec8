/*
 * The replica: one node of the replicated KV. It owns the OmniPaxos core,
 * the ZeroMQ transport, the consensus log (<data_dir>/log) and the KV state
 * (<data_dir>/state), all on one thread, the replica thread. Each turn it
 * polls the sockets up to the next tick, feeds incoming messages to the core,
 * appends queued proposals (many per synced write: group commit), ticks on
 * schedule, sends what the core wants sent, and applies newly decided
 * entries, in log order, to the KV state; then it wakes the proposers whose
 * entries were applied.
 *
 * Other threads (FUSE workers, the control socket) propose through
 * replica_propose, which is thread-safe and blocks until the entry is
 * applied on this node or fails. What else they ask of the replica thread
 * (fault switches, membership changes, the apply hook) is queued for it and
 * waited for; status comes from a view it publishes each turn. Reads go
 * straight to the KV store (replica_kv), which is safe from any thread.
 *
 * Layer: fs/replica/. It uses the consensus core and its RocksDB log
 * (consensus/), the transport (transport/; tp_config.c fills its plain config
 * from struct cfg), the KV (fs/kv/) and fs/base/. Only main.c uses it; the
 * filesystem never does (it sees a propose function and the apply hook).
 */
#ifndef OMNIFS_REPLICA_H
#define OMNIFS_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct kv_store;
struct kv_txn;
struct kv_result;
struct ctl_buf;
struct metrics_text;
struct replica;

/*
 * Opens the data dir (creating it on first start), the transport and the
 * core, and starts the replica thread. Refuses a data dir of another cluster
 * or format, a corrupt one, or one in use by another process. cfg is copied.
 * Returns 0 or a negative errno with a one-line reason in err.
 */
int replica_start(struct replica **out, const struct cfg *cfg, char *err, size_t err_len);

/* Stops the thread (pending proposals fail with -ESHUTDOWN), closes
 * everything, frees the replica and NULLs *r. */
void replica_stop(struct replica **r);

/*
 * Proposes txn and waits until it is applied on this node. The replica gives
 * the transaction its proposal id (this node, next sequence); the caller
 * keeps ownership of txn. On 0, *res says whether it applied or which guard
 * failed (a conflict). Errors:
 *   -EROFS      this node knows it cannot reach a majority (returned at once)
 *   -ETIMEDOUT  not applied within [timing] commit_timeout_ms; the outcome is
 *               unknown (it may still be applied later, at most once)
 *   -ESHUTDOWN  the replica is stopping
 *   -E2BIG, -ENOMEM, -EIO
 */
int replica_propose(struct replica *r, const struct kv_txn *txn, struct kv_result *res);

/*
 * A fresh-read barrier: returns once this node has applied everything the
 * leader had decided when the call was made (it proposes an empty entry and
 * waits for it). Same errors as replica_propose.
 */
int replica_barrier(struct replica *r);
/* replica_barrier waiting at most timeout_ms (instead of commit_timeout_ms)
 * for the empty entry. */
int replica_barrier_within(struct replica *r, uint32_t timeout_ms);

/* -EROFS if this node knows it cannot reach a majority (writes through it
 * would fail at once), -EAGAIN while it cannot tell (no route to a leader
 * yet: a write would wait), else 0. Any thread. */
int replica_can_write(struct replica *r);

/* The members as JSON: id, address, reachable, last heard, this node. */
int replica_members_json(struct replica *r, struct ctl_buf *out);

/* The KV state, for reads from any thread. Valid until replica_stop. */
struct kv_store *replica_kv(struct replica *r);

/*
 * Called on the replica thread after each applied entry, in log order, with
 * the decoded transaction (borrowed for the call) and whether this node
 * proposed it; and with t NULL (proposed_here false) when the state was
 * replaced wholesale up to idx (a state transfer finished): anything may
 * have changed. Entries are applied in batches and the hook runs once its
 * entry's batch is written, so the state may already hold entries after
 * idx; but an entry proposed elsewhere starts a batch while a hook is
 * installed, so when the hook runs for the entry before it, the state holds
 * exactly up to that entry (the filesystem's inotify replay opens its view
 * of the state before such an entry then). The filesystem also invalidates
 * kernel caches from it. It must not block on the replica (no
 * replica_propose, no replica_set_apply_hook from inside).
 */
typedef void (*replica_apply_hook)(void *ctx, uint64_t idx, const struct kv_txn *t,
				   bool proposed_here);

/*
 * Installs fn (NULL: none) with ctx as the apply hook, replacing the one
 * before. The hook belongs to the replica thread: the request is queued for
 * it, and the call returns once the thread has taken it between two applied
 * entries, so
 *   - on return the previous hook is not running and is never called again:
 *     after replica_set_apply_hook(r, NULL, NULL) its ctx may be freed;
 *   - fn is called for every entry applied after the return (0).
 * Returns 0, or -ESHUTDOWN if the replica thread has stopped (fail-stop, or
 * replica_stop): then no hook runs any more either, the old one included,
 * and the call returns at once. Waits for at most one loop turn otherwise.
 * Any thread but the replica thread (never from inside a hook).
 */
int replica_set_apply_hook(struct replica *r, replica_apply_hook fn, void *ctx);

/* Runs a control command (status, kv-*, barrier, debug-fault); see ctl.h. */
int replica_control(struct replica *r, int argc, char **argv, struct ctl_buf *out);

/* The status as JSON (the same as `omnifsctl status --json`). */
int replica_status_json(struct replica *r, struct ctl_buf *out);

/* Fault injection: drop traffic to (drop_out) and/or from (drop_in) peer, 0 = all. */
int replica_set_fault(struct replica *r, uint64_t peer, bool drop_out, bool drop_in);

/* True once the replica stopped itself after a storage failure (fail-stop):
 * the daemon must exit non-zero and be restarted, recovering from disk. */
bool replica_has_failed(struct replica *r);

/* Writes this node's consensus, replication and storage metrics (the view
 * the loop published last, and counters) in the Prometheus text format.
 * Any thread, until replica_stop. */
void replica_metrics_write(struct replica *r, struct metrics_text *t);

/* A one-line status for systemd's STATUS= and logs. */
void replica_status_line(struct replica *r, char *buf, size_t len);

/* True while this node ([node] join) waits to be added to the cluster. */
bool replica_is_joining(struct replica *r);

/* True once this node has caught up with the decided index it last heard. */
bool replica_is_caught_up(struct replica *r);

#endif /* OMNIFS_REPLICA_H */
