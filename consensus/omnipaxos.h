/*
 * OmniPaxos in C: the public API of the consensus core.
 *
 * A pure, single-threaded state machine, a port of haraldng/omnipaxos
 * (omnipaxos/src/omni_paxos.rs) as specified in the project's protocol notes:
 * Ballot Leader Election with quorum-connected leaders, Sequence Paxos with log
 * synchronisation, proposal forwarding, batching, fail-recovery, trim and
 * snapshot compaction, and reconfiguration by stop-sign.
 *
 * It does no I/O: the application feeds it messages (opx_handle_incoming),
 * time (opx_tick) and proposals (opx_append), and drains the messages it
 * wants sent (opx_take_outgoing). Storage is called synchronously through the
 * vtable in storage.h, so anything in the outbox was durable before it got
 * there; with sync_after_send, except a leader's AcceptDecides, whose entries
 * become durable at opx_sync (see struct opx_config). One instance is used by one thread at a time; instances share
 * nothing, so a test can run many in one process.
 *
 * Errors: 0 or a negative errno. -EIO from any call means a storage write
 * failed: the instance is stopped (every later call returns -EIO) and the
 * application must close it and recover from storage (fail-stop, spec §6).
 *
 * Layer: consensus/, the lowest. The core uses libc only (no I/O, clock,
 * threads or randomness: tests/checks/check_core_purity.sh); its RocksDB
 * storage (storage_rocksdb.h) and the RocksDB helper the KV shares
 * (rocks_util.h) are libraries of their own beside it. Nothing here includes
 * anything from fs/ or transport/.
 */
#ifndef OMNIFS_OMNIPAXOS_H
#define OMNIFS_OMNIPAXOS_H

#include "msg.h"
#include "storage.h"
#include "types.h"

/*
 * The application's snapshot type (spec §7.1), as byte strings. Snapshots
 * are already encoded, so the core never needs encode/decode callbacks: it
 * stores and ships the bytes. Outputs are malloc'd and owned by the caller
 * (the core), which frees them.
 */
struct opx_snapshot_ops {
	/* A snapshot of entries, in log order (n may be 0). Returns 0 or a
	 * negative errno. */
	int (*create)(void *ctx, const struct opx_entry *entries, uint32_t n, uint8_t **out,
		      uint32_t *out_len);
	/* base folded with the later delta. Returns 0 or a negative errno. */
	int (*merge)(void *ctx, const uint8_t *base, uint32_t base_len, const uint8_t *delta,
		     uint32_t delta_len, uint8_t **out, uint32_t *out_len);
	/* Optional (NULL: create). The snapshot create would make of the n
	 * entries from log index from on, made without them, for an
	 * application whose snapshot does not depend on what the entries hold
	 * (omnifs's is a count; its state is transferred apart). The core then
	 * never reads entries back from storage to make one: a compaction would
	 * read every entry since the last, all at once. */
	int (*create_counted)(void *ctx, uint64_t from, uint32_t n, uint8_t **out,
			      uint32_t *out_len);
};

struct opx_config {
	struct opx_cluster_config cluster; /* members, config id, quorums */
	opx_node_id pid;		   /* this node, one of cluster.nodes */
	uint32_t election_ticks;	   /* ticks per heartbeat round, >= 1 */
	uint32_t resend_ticks;		   /* ticks between resends, >= 1 */
	uint32_t flush_ticks;		   /* ticks between forced batch flushes, >= 1 */
	uint32_t batch_size;		   /* entries per batch, >= 1 (1 = no batching) */
	uint32_t leader_priority;
	const struct opx_snapshot_ops *snapshot; /* NULL: snapshots disabled */
	void *snapshot_ctx;
	/*
	 * false (the reference behaviour): a log sync replaces the decided
	 * entries a follower lacks by a snapshot whenever snapshots are on.
	 * true: it ships the entries while they are stored and uses a snapshot
	 * only for what is compacted away; for applications whose snapshots are
	 * costly to install (a state transfer) compared with a few entries.
	 */
	bool snapshot_only_when_compacted;
	/*
	 * false: every write is synced before the call that made it returns.
	 * true (the storage must offer write_unsynced and sync): a leader
	 * writes the entries it replicates unsynced and queues their
	 * AcceptDecides, so the application can send them and sync while the
	 * followers write theirs (opx_sync); the core syncs before anything
	 * else it does (any other write, any other message queued), so no
	 * decision and no other message rests on the unsynced write. See
	 * sp_leader_flush in seqpaxos_leader.c for the argument.
	 */
	bool sync_after_send;
	/*
	 * false (the reference behaviour): a leader tells every follower of
	 * each decision at once, in a Decide of its own. true: a follower
	 * that forwarded no proposal in the last two resend periods (nor any
	 * the decision covers) hears of it with the next AcceptDecide (which
	 * carries the decided index anyway), or when the application calls
	 * opx_send_owed_decides, or at the next tick. A decided stop-sign is
	 * told to every follower at once. With one client writing at the leader, that is one message
	 * (and one wake-up of the follower) per entry instead of two; the
	 * application bounds the delay (fs/replica: a millisecond).
	 */
	bool decide_with_next;
};

struct opx;

/*
 * Validates cfg (spec §3, plus flush_ticks >= 1), loads the state in st and
 * builds an instance; a store with a promise resumes as a recovering follower
 * (spec §6.3). On error returns -EINVAL (bad config), -EIO (storage) or
 * -ENOMEM, and writes a one-line reason into err.
 * cfg is copied; st is borrowed and must outlive the instance.
 */
int opx_new(struct opx **out, const struct opx_config *cfg, struct opx_storage st, char *err,
	    size_t err_len);

/* Frees the instance and NULLs *px. Storage is not closed. */
void opx_destroy(struct opx **px);

/* The reasons opx_new would reject cfg, without building anything. */
int opx_config_validate(const struct opx_config *cfg, char *err, size_t err_len);

/*
 * Proposes one entry (copied). A leader adds it to its batch; a follower
 * forwards it to its leader, or buffers it while no leader is known.
 * Returns 0, -ESHUTDOWN if a stop-sign is stored (the configuration is
 * ending), -E2BIG over OPX_MAX_ENTRY_LEN, -ENOMEM, or -EIO.
 * 0 is no promise of a decision: a forwarded proposal, or one accepted by a
 * leader that is then replaced, can be lost (as in the reference). The
 * application retries until it reads the entry back as decided.
 */
int opx_append(struct opx *px, const void *data, uint32_t len);

/* Handles one message (borrowed). Malformed or stale messages are dropped
 * and counted, never asserted on. Returns 0, -ENOMEM or -EIO. */
int opx_handle_incoming(struct opx *px, const struct opx_msg *m);

/* Advances the logical clock by one tick. Returns 0, -ENOMEM or -EIO. */
int opx_tick(struct opx *px);

/*
 * Writes the batch now, as the flush timer would: a leader in the Accept
 * phase replicates it, a follower acknowledges it. An application that
 * appends many entries per turn calls this once at the end of the turn to
 * get them all into one synced write (group commit) without waiting for the
 * timer. Returns 0, -ENOMEM or -EIO.
 */
int opx_flush_batch(struct opx *px);

/*
 * The messages to send, Sequence Paxos first, then BLE. *out points into the
 * core and stays valid until the next call into px. Returns the count.
 */
size_t opx_take_outgoing(struct opx *px, const struct opx_msg **out);

/* With decide_with_next: whether a leader holds back a Decide from some
 * follower (opx_send_owed_decides sends them). */
bool opx_owes_decides(const struct opx *px);

/* With decide_with_next: queues the Decides held back (opx_take_outgoing
 * then returns them). */
void opx_send_owed_decides(struct opx *px);

/*
 * With sync_after_send: makes the leader's unsynced append durable, if one
 * is pending; call it right after sending what opx_take_outgoing returned.
 * Until it is called the core syncs by itself before anything that needs it,
 * so skipping it costs time, never safety. Returns 0 or -EIO (the instance
 * is stopped, as after any failed write).
 */
int opx_sync(struct opx *px);

/* The transport re-established the link to pid (spec §5.5). */
void opx_reconnected(struct opx *px, opx_node_id pid);

/* The application's ticks came `ticks` ticks late (its thread waited for
 * the CPU): this node then waits as many rounds longer before it takes a
 * silent peer for gone (consensus/ble.c, "Late replies"). */
void opx_turn_late(struct opx *px, uint32_t ticks);

/* Indexes: entries [0, decided) are decided; [0, compacted) are compacted. */
uint64_t opx_decided_idx(const struct opx *px);
uint64_t opx_accepted_idx(const struct opx *px);
uint64_t opx_compacted_idx(const struct opx *px);

/* The node this one is promised to (0 if none), and whether this node is in
 * the Accept phase. Reflects Sequence Paxos' promise, not BLE (spec §8). */
opx_node_id opx_current_leader(const struct opx *px, bool *accept_phase);
struct opx_ballot opx_promise(const struct opx *px);
/* True if this node leads (Sequence Paxos role Leader, in any phase) the
 * ballot it is promised to (opx_promise). */
bool opx_is_leader(const struct opx *px);

/* True if in the last complete heartbeat round this node heard from enough
 * peers to form a read quorum with itself: without it, it cannot take part
 * in electing a leader, and writes through it are bound to fail. */
bool opx_is_quorum_connected(const struct opx *px);

/*
 * Log compaction (spec §7). has_idx false = "as far as possible".
 * trim: leader only (-EPERM otherwise); -EAGAIN if some member has not
 * accepted up to idx; -ERANGE if idx is not decided.
 * snapshot: any node; -ERANGE if idx is not decided; -ENOTSUP without
 * snapshot_ops. Not local_only: peers are told to do the same.
 */
int opx_trim(struct opx *px, bool has_idx, uint64_t idx);
int opx_snapshot(struct opx *px, bool has_idx, uint64_t idx, bool local_only);

/*
 * Proposes a stop-sign ending this configuration (spec §9); metadata (copied)
 * is up to OPX_MAX_METADATA_LEN bytes. Returns 0, -EINVAL (bad next config),
 * -EALREADY (a stop-sign is already stored), -ENOMEM or -EIO.
 */
int opx_reconfigure(struct opx *px, const struct opx_cluster_config *next, const uint8_t *metadata,
		    uint32_t metadata_len);

/* The stop-sign if one is stored and decided, else NULL. Valid until the
 * next call into px. */
const struct opx_stopsign *opx_is_reconfigured(const struct opx *px);

/* Starts a Prepare with ballot n = promise.n + 1 at once (spec §4.4). */
int opx_try_become_leader(struct opx *px);

/* Reading the log (spec §7.5). */
enum opx_item_kind {
	OPX_ITEM_DECIDED = 1,
	OPX_ITEM_UNDECIDED = 2,
	OPX_ITEM_TRIMMED = 3,	  /* [0, compacted_idx) is gone, no snapshot */
	OPX_ITEM_SNAPSHOTTED = 4, /* [0, compacted_idx) is in snapshot */
	OPX_ITEM_STOPSIGN = 5,
};

struct opx_item {
	enum opx_item_kind kind;
	uint64_t idx;		       /* DECIDED, UNDECIDED, STOPSIGN: its log index */
	struct opx_entry entry;	       /* DECIDED, UNDECIDED */
	uint64_t compacted_idx;	       /* TRIMMED, SNAPSHOTTED */
	const uint8_t *snapshot;       /* SNAPSHOTTED */
	uint32_t snapshot_len;	       /* SNAPSHOTTED */
	const struct opx_stopsign *ss; /* STOPSIGN */
	bool ss_decided;	       /* STOPSIGN */
};

/* The result of a read; owns every byte its items point to. Zero-initialise;
 * opx_read_free releases it and leaves it reusable. */
struct opx_read {
	struct opx_item *items;
	uint32_t n;
	/* owned storage behind the items */
	struct opx_entry_list entries;
	uint8_t *snapshot;
	struct opx_stopsign *ss;
	uint32_t items_cap;
};

/* Items for [from, to); to == UINT64_MAX means "to the end of the log".
 * Fills out (empty if the range is not in the log). Returns 0 or -errno. */
int opx_read_entries(struct opx *px, uint64_t from, uint64_t to, struct opx_read *out);
/* Decided items from `from` on (empty if from >= decided_idx). */
int opx_read_decided_suffix(struct opx *px, uint64_t from, struct opx_read *out);
void opx_read_free(struct opx_read *r);

/* A picture of the instance for status displays. */
enum opx_role { OPX_ROLE_FOLLOWER = 0, OPX_ROLE_LEADER = 1 };
enum opx_phase {
	OPX_PHASE_NONE = 0,
	OPX_PHASE_PREPARE = 1,
	OPX_PHASE_ACCEPT = 2,
	OPX_PHASE_RECOVER = 3,
};

struct opx_peer_status {
	opx_node_id pid;
	bool heard_last_round; /* replied to the last heartbeat round */
	uint64_t accepted_idx; /* leader's view; 0 on followers */
};

struct opx_status {
	opx_node_id pid;
	enum opx_role role;
	enum opx_phase phase;
	struct opx_ballot promise;    /* whom this node follows */
	struct opx_ballot ble_leader; /* BLE's current leader ballot */
	bool quorum_connected;
	uint64_t decided_idx;
	uint64_t accepted_idx;
	uint64_t compacted_idx;
	uint32_t n_peers;
	struct opx_peer_status peers[OPX_MAX_NODES];
	uint64_t dropped_msgs; /* malformed or stale incoming messages */
};

void opx_get_status(const struct opx *px, struct opx_status *st);

#endif /* OMNIFS_OMNIPAXOS_H */
