/*
 * omnifs's FUSE filesystem: the public API omnifsd uses.
 *
 * The filesystem is a client of the replicated KV (kv.h), reached through
 * one struct ofs_backend. Every operation reads the node's applied state
 * (backend kv), builds one guarded struct kv_txn (the KV's own transaction,
 * keys laid out by schema.h) and hands it to the backend's propose, which
 * returns once the entry is applied here; a failed guard (KV_CONFLICT:
 * another node changed the same thing first) means re-read and rebuild, a
 * bounded number of times. On every node the replica decodes each decided
 * entry once, applies that transaction to the KV and passes the same one to
 * ofs_apply_hook, which queues kernel cache invalidations for other nodes'
 * changes, and their replay on the mount so that inotify watchers here see
 * them (replay.c). Lookup counts, open files and buffered writes are node-local and
 * never replicated. This header does not parse command lines or config
 * files: the daemon does, and fills struct ofs_config.
 *
 * Lifecycle, all from one thread unless said otherwise:
 *   ofs_new -> ofs_mount -> ofs_run (blocks; ofs_stop from any thread or a
 *   signal handler ends it) -> ofs_unmount -> ofs_destroy.
 * ofs_mount, ofs_run, ofs_stop and ofs_unmount are the FUSE adapter
 * (fuse_ops.c, libfuse); everything else works without libfuse, so the
 * operations can be driven without a mount (omnifs_vfs_core).
 *
 * Layer: fs/vfs/, below only main.c. It uses fs/kv/ (transactions and reads),
 * fs/base/ (logging, the config's [fs] section) and libfuse, and never the
 * replica: omnifsd wires the backend and the apply hook to it.
 */
#ifndef OMNIFS_OFS_H
#define OMNIFS_OFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct cfg;
struct ofs;
struct kv_txn;
struct kv_result;
struct kv_store;

/*
 * How the filesystem reaches the replicated KV. omnifsd fills it from the
 * replica: propose = replica_propose (blocks until the entry is applied on
 * this node; 0 with res filled, or -EROFS no quorum known, -ETIMEDOUT not
 * decided within the wait, -ESHUTDOWN), kv = replica_kv (reads of the
 * applied state), can_write optional (0; -EROFS when this node knows it
 * has no quorum: open for writing then fails at once; -EAGAIN while it
 * cannot tell: open for writing then probes with an empty transaction, as
 * it does without can_write after a commit met -EROFS). The
 * transactions the filesystem proposes carry no proposal id (node 0); the
 * replica stamps its own. t and res are borrowed for the call.
 */
struct ofs_backend {
	void *ctx;
	int (*propose)(void *ctx, const struct kv_txn *t, struct kv_result *res);
	struct kv_store *kv;
	int (*can_write)(void *ctx);
};

struct ofs_config {
	uint64_t node_id;	  /* 1..65535: high bits of the inode numbers this node makes */
	uint64_t max_file_size;	  /* bytes; EFBIG beyond */
	uint64_t max_total_size;  /* bytes, sum of file sizes; ENOSPC beyond */
	uint64_t max_inodes;	  /* ENOSPC beyond */
	uint64_t write_buffer;	  /* buffered bytes per open file before an early commit */
	uint32_t max_depth;	  /* directory nesting below the root; ENAMETOOLONG beyond */
	uint32_t retries;	  /* commits retried after a failed guard before EAGAIN */
	uint32_t orphan_grace_ms; /* unlinked files stay readable elsewhere this long */
	double entry_timeout_s;	  /* kernel dentry cache */
	double attr_timeout_s;	  /* kernel attribute cache */
	bool debug;		  /* libfuse's -d: log every request */
	uint32_t inval_queue_max; /* queued invalidations before names turn coarse */
	uint32_t read_ahead_kb;	  /* the mount's kernel readahead window; 0: the kernel's */
	/* [history] (ofs_history.c): previous versions of files */
	bool hist_enabled;
	uint32_t hist_versions;	  /* kept per file */
	uint64_t hist_max_age_ns; /* 0: no age bound */
	uint64_t hist_max_total;  /* bytes of all kept versions */
	uint64_t hist_max_file;	  /* a larger file keeps no versions */
	uint32_t hist_trim_s;	  /* seconds between trimmings (age, total) */
};

/* Defaults: 64 MiB files, 10 GiB total, 10^6 inodes, 4 MiB buffer, depth
 * 256, 64 retries, 2 s grace for unlinked files, 1 s timeouts, 65536
 * queued invalidations; history on: 10 versions per file, 30 days, 256 MiB
 * in all, files up to 1 MiB. */
void ofs_config_defaults(struct ofs_config *oc, uint64_t node_id);
/* Defaults overridden by the [fs] section and node id of a parsed config. */
void ofs_config_from_cfg(struct ofs_config *oc, const struct cfg *c);

/*
 * Creates the filesystem over backend b (copied into the ofs; b->ctx and
 * b->kv must outlive it). Creates the root directory if the KV has none
 * (guarded: exactly one node's creation wins; this commits, so on a fresh
 * cluster it waits for a leader) and frees the unlinked files this node
 * left behind. Returns NULL on failure with the reason logged and errno set
 * (EINVAL: bad node id or backend; EROFS, ETIMEDOUT: the root is missing and
 * cannot be created yet; try again later).
 */
struct ofs *ofs_new(const struct ofs_config *cfg, const struct ofs_backend *b);

/*
 * Mounts at mountpoint (copied) with allow_other, default_permissions, nosuid
 * and nodev, and starts the helper threads (invalidation, replay for inotify,
 * reaper of unlinked files, waker). 0 or -errno, reason logged: -EBUSY
 * already a mount point (or a stale one), -ENOENT/-ENOTDIR no such directory,
 * -EIO libfuse could not set up the session or mount.
 */
int ofs_mount(struct ofs *o, const char *mountpoint);

/* Serves requests with libfuse's multi-threaded loop until ofs_stop or an
 * external unmount. Returns 0, or -errno if the loop failed. */
int ofs_run(struct ofs *o);

/* Asks ofs_run to return: has a helper thread stop the invalidations, set
 * libfuse's exit flag and wake the loop with a statfs on the mountpoint.
 * Async-signal-safe, never blocks; any thread, between ofs_mount's return and
 * ofs_unmount's call (it reads what they set and clear). SIGTERM, SIGINT and
 * SIGHUP also end ofs_run when they are not blocked and have no other handler
 * (libfuse's handlers). */
void ofs_stop(struct ofs *o);

/* Unmounts (idempotent). Buffered writes of files still open are committed
 * first, best effort. */
int ofs_unmount(struct ofs *o);

/* Frees everything; *o becomes NULL. A mounted filesystem must be unmounted
 * first (ofs_unmount): the FUSE side is the adapter's to tear down. */
void ofs_destroy(struct ofs **o);

/*
 * The reserved, read-only directory /.omnifs/ holds status.json,
 * members.json and metrics (Prometheus text). Their content comes from fn,
 * called at open and stat time on a FUSE thread: it writes up to cap bytes
 * into buf and returns the length, or -errno (-ENOSPC if cap is too small:
 * it is called again with a bigger buffer, up to 1 MiB). Without a source
 * the JSON files hold "{}" and metrics is empty.
 */
enum ofs_status_file {
	OFS_STATUS_JSON,
	OFS_MEMBERS_JSON,
	OFS_METRICS_TEXT,
};
typedef int (*ofs_status_fn)(void *ctx, enum ofs_status_file which, char *buf, size_t cap);
void ofs_set_status_source(struct ofs *o, ofs_status_fn fn, void *ctx);

/*
 * The apply hook: call it for every applied entry, in log order, from the
 * thread that applies (it only queues work and never blocks on FUSE). For
 * entries proposed on other nodes it queues kernel cache invalidations for
 * the inodes and names the entry touched (attributes, page cache, dentries),
 * issued later by the invalidation thread, and the entry's replay on the
 * mount (bounded: dropped and counted when it cannot be queued). t is
 * borrowed for the call.
 */
void ofs_on_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t, bool proposed_here);
/* Call it when the whole state was replaced (a state transfer): anything the
 * kernel cached may be stale, so every inode it knows is invalidated, with
 * the names in its directories. Any thread; never blocks on FUSE. */
void ofs_on_state_replaced(struct ofs *o);
/* ofs_on_applied with the replica's hook signature (replica_apply_hook):
 * replica_set_apply_hook(r, ofs_apply_hook, ofs). ctx is the struct ofs. A
 * NULL t is ofs_on_state_replaced. */
void ofs_apply_hook(void *ctx, uint64_t idx, const struct kv_txn *t, bool proposed_here);

/* The FUSE requests the adapter times, one latency histogram each. */
enum ofs_fuse_op {
	OFS_FOP_LOOKUP,
	OFS_FOP_GETATTR,
	OFS_FOP_SETATTR,
	OFS_FOP_READLINK,
	OFS_FOP_MKNOD,
	OFS_FOP_MKDIR,
	OFS_FOP_SYMLINK,
	OFS_FOP_LINK,
	OFS_FOP_UNLINK,
	OFS_FOP_RMDIR,
	OFS_FOP_RENAME,
	OFS_FOP_OPEN,
	OFS_FOP_CREATE,
	OFS_FOP_READ,
	OFS_FOP_WRITE,
	OFS_FOP_FLUSH,
	OFS_FOP_RELEASE,
	OFS_FOP_FSYNC,
	OFS_FOP_OPENDIR,
	OFS_FOP_READDIR,
	OFS_FOP_READDIRPLUS,
	OFS_FOP_RELEASEDIR,
	OFS_FOP_FSYNCDIR,
	OFS_FOP_STATFS,
	OFS_FOP_SETXATTR,
	OFS_FOP_GETXATTR,
	OFS_FOP_LISTXATTR,
	OFS_FOP_REMOVEXATTR,
	OFS_FOP_ACCESS,
	OFS_FOP_FALLOCATE,
	OFS_FOP_GETLK,
	OFS_FOP_SETLK,
	OFS_FOP_FLOCK,
	OFS_FUSE_OPS
};

/* FUSE request latencies, from the handler's start to its return (the
 * reply is sent by then; a lock request that waits is replied to later, and
 * counts its handler only). The daemon owns it for the process's lifetime,
 * so it outlives a mount and can be rendered at any time. Zeroed: empty. */
struct ofs_metrics {
	struct metrics_histogram ops[OFS_FUSE_OPS];
};

/* Where the adapter counts requests; set before ofs_mount (NULL: nowhere). */
void ofs_set_metrics(struct ofs *o, struct ofs_metrics *m);

/* Writes the FUSE operations' family (omnifs_fuse_operation_duration_seconds,
 * label op). Any thread. */
void ofs_metrics_write(const struct ofs_metrics *m, struct metrics_text *t);

/* Writes the mount's gauges and counters (invalidation queue, commits,
 * conflicts, replays). Any thread while o is alive. */
void ofs_stats_metrics_write(struct ofs *o, struct metrics_text *t);

/* Counters for status output and tests. */
struct ofs_stats {
	uint64_t commits;	 /* transactions applied */
	uint64_t conflicts;	 /* commits that failed a guard and were retried */
	uint64_t invals_queued;	 /* kernel invalidations queued by ofs_on_applied */
	uint64_t invals_unheld;	 /* ... not needed: the kernel held neither the inode nor,
				  * for a name, its directory */
	uint64_t invals_sent;	 /* ... and issued to the kernel */
	uint64_t invals_pending; /* now: items in the queue (not cumulative) */
	/* Degradations, never drops (see inval.c): */
	uint64_t invals_coarse;	  /* names queued as their whole directory: queue past its bound */
	uint64_t invals_overflow; /* times the queue collapsed into "everything the kernel knows" */
	uint64_t invals_replaced; /* state replaced wholesale (state transfer): "everything" too */
	uint64_t invals_all_sent; /* "everything" sweeps issued to the kernel */
	/* Other nodes' changes replayed on the mount for inotify (replay.c): */
	uint64_t replays_queued;  /* changes queued for a replay */
	uint64_t replays_done;	  /* ... replayed: the kernel emitted their events */
	uint64_t replays_failed;  /* ... tried, but the kernel refused the operation */
	uint64_t replays_dropped; /* no replay: queue full, too late, or no state before */
	uint64_t replays_unseen;  /* no replay needed: the kernel held none of the inodes
				   * the change touches, so no watch could see it */
	uint64_t replays_pending; /* now: queued or in progress, +1 while a file is held
				   * open for the next change (not cumulative) */
	/* From the apply to the end of the replay's call (the kernel emitted the
	 * events), over the replays done so far, in 100 us steps (10 ms past
	 * 10 ms, 1 s past 1 s): */
	uint64_t replay_p50_us, replay_p99_us, replay_max_us;
};
void ofs_get_stats(struct ofs *o, struct ofs_stats *st);

/*
 * Waits (at most timeout_ms) until the kernel caches have been told about
 * every change from other nodes applied so far, and every state replaced
 * (each at least as coarsely as the queue had room for), so reads through
 * the mount show them: `omnifsctl barrier` ends with it. 0 (at once without
 * a mount) or -ETIMEDOUT.
 */
int ofs_wait_invalidations(struct ofs *o, unsigned timeout_ms);

#endif /* OMNIFS_OFS_H */
