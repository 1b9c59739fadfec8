/*
 * The replica's private state, shared by replica.c (lifecycle and the loop),
 * replica_apply.c (applying decided entries, compaction), replica_xfer.c
 * (state transfer) and replica_ctl.c (control commands and status).
 *
 * Threads: every field of struct replica is one of
 *   - set by replica_start before the replica thread starts, then only read
 *     (cfg, wake_fd, kv: the pointer; the store is thread-safe);
 *   - the replica thread's own (the core, the transport, the stores' writes,
 *     the apply hook, the counters marked so): other threads reach it only
 *     through a request on ctl_queue or a proposal (proposals.h);
 *   - atomic (stop, failed, mode, ticks_without_qc, had_qc, has_route,
 *     quorum_in_reach);
 *   - under exactly one of the locks below (members_lock, view_lock,
 *     ctl_lock), or the proposals' lock (proposals.h). Lock order: there is
 *     none to keep, as each is a leaf: no other lock of omnifs is taken
 *     while one is held. (proposals_for_each_in_flight holds the proposals'
 *     lock across opx_append, which takes none of them.)
 */
#ifndef OMNIFS_REPLICA_INT_H
#define OMNIFS_REPLICA_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "log.h"
#include "log_retain.h"
#include "membership.h"
#include "metrics.h"
#include "omnipaxos.h"
#include "proposals.h"
#include "replica.h"
#include "storage_rocksdb.h"
#include "transport.h"

/* Application frame types carried by the transport (tp_send_app). */
enum replica_app_type {
	REPLICA_APP_XFER_REQ = 1,      /* state transfer: "send me the next chunk" */
	REPLICA_APP_XFER_CHUNK = 2,    /* state transfer: a chunk of KV state */
	REPLICA_APP_JOIN = 3,	       /* "I am here: which configuration runs now?" */
	REPLICA_APP_MEMBERS = 4,       /* a member table: the configuration running now */
	REPLICA_APP_REMOVED = 5,       /* "you are not a member of configuration <frame's id>" */
	REPLICA_APP_LEFT = 6,	       /* a removed node: "I know I was removed" */
	REPLICA_APP_STEP = 7,	       /* where a member is (replica_step.c) */
	REPLICA_APP_FETCH_REQ = 8,     /* "send me decided entries from @i" */
	REPLICA_APP_FETCH_ENTRIES = 9, /* decided entries, from the sender's log */
	REPLICA_APP_RELAY = 10,	       /* proposals to append for their proposer */
};

/* How this node reaches the leader (replica_step.c). */
enum replica_route {
	REPLICA_ROUTE_NONE = 0,	  /* no leader with a quorum within reach */
	REPLICA_ROUTE_DIRECT = 1, /* it is the leader, or linked to it */
	REPLICA_ROUTE_VIA = 2,	  /* through a peer linked to the leader */
};

/* What a peer's last STEP frame said (replica_step.c). */
struct replica_step_peer {
	opx_node_id id; /* 0: free slot */
	uint64_t heard_ms;
	uint64_t decided, compacted, applied; /* global */
	opx_node_id leader;
	uint8_t flags;
	bool hears_me;	      /* this node is in its list of peers heard lately */
	uint8_t heard_voters; /* voters in that list (itself not counted) */
};

/* Keeping in step beside the core (replica_step.c); replica thread only. */
#define REPLICA_STEP_HEARD 32
struct replica_step {
	uint32_t config_id; /* of the peers' reports below */
	struct replica_step_peer peers[OPX_MAX_NODES];
	uint64_t last_sent_ms;
	enum replica_route route;
	opx_node_id via;
	uint64_t route_changed_ms;
	uint64_t known_decided; /* the highest decided index heard of (global) */
	/* When decided indexes not applied here yet were first heard of,
	 * oldest first: the lag in time is the age of the first (ring). */
	struct {
		uint64_t idx, ms;
	} heard[REPLICA_STEP_HEARD];
	unsigned heard_first, heard_n;
	uint64_t in_step_ms;	  /* last time it had a route and nothing known left to apply */
	uint64_t behind_since_ms; /* a peer has more than the core gives, since */
	uint64_t behind_applied;  /* the applied index then */
	uint64_t fetch_sent_ms;	  /* a fetch request in flight since (0: none) */
	opx_node_id fetch_from;
	uint64_t relay_all_ms; /* in-flight proposals last relayed all */
	uint64_t fetched;      /* entries applied from fetches (status) */
	uint64_t relayed;      /* proposals sent through a relay (status) */
};

/* A fetch request held by its source until it has entries to send
 * (replica_learn.c): learners poll, and are answered as soon as there is
 * something new rather than at the next poll. */
struct replica_waiter {
	opx_node_id id; /* 0: free slot */
	uint32_t config_id;
	uint64_t first; /* the global index it wants next */
	uint64_t since_ms;
};

/* Entries this learner applied lately, kept to serve the learners that
 * fetch from it (replica_learn.c); NULL slots when not a learner. */
#define REPLICA_RECENT_ENTRIES 1024
#define REPLICA_RECENT_BYTES   (4u << 20)
struct replica_recent {
	uint64_t first_idx; /* global index of the oldest kept */
	unsigned head, n;   /* ring positions */
	size_t bytes;
	struct {
		uint8_t *data;
		uint32_t len;
	} e[REPLICA_RECENT_ENTRIES];
};

/* A learner's side of fetching (replica_learn.c); replica thread only. */
struct replica_learn {
	opx_node_id source;	  /* asked now */
	unsigned fallback;	  /* 0: its place in the fan-out; k: the k-th voter after it */
	uint64_t fallback_ms;	  /* when it left its place */
	uint64_t asked_ms;	  /* a request in flight since (0: none) */
	uint64_t answered_ms;	  /* the last answer from a source */
	uint64_t decided;	  /* the highest decided index a source reported (global) */
	struct opx_ballot leader; /* the highest ballot a source follows, this configuration */
	unsigned relay_turn;	  /* which voter its writes go to */
	uint64_t progress_ms;	  /* applied last moved, or nothing was in flight */
	uint64_t progress_applied;
	struct replica_recent *recent; /* learners only (owned) */
	struct replica_waiter waiters[OPX_MAX_NODES];
};

/* What this node is to the cluster. */
enum replica_mode {
	REPLICA_MEMBER = 0,  /* runs the current configuration's core */
	REPLICA_JOINING = 1, /* [node] join: waiting to be added (no core yet) */
	REPLICA_REMOVED = 2, /* a membership change removed it: no core, no writes */
	REPLICA_LEARNER = 3, /* a member that does not vote: no core, fetches (replica_learn.c) */
};

/* What the replica thread publishes for other threads (status, READY). */
struct replica_view {
	struct opx_status opx;
	uint64_t applied_idx;
	opx_node_id leader;
	bool accept_phase;
	bool caught_up;
	bool writable;	/* a write made here can be decided now */
	bool no_quorum; /* knows it cannot reach a majority: writes fail (EROFS) */
	enum replica_route route;
	opx_node_id via;
	uint64_t known_decided; /* the highest decided index heard of (global) */
	uint64_t in_step_ms;	/* CLOCK_MONOTONIC ms applied last reached it */
	uint64_t fetched, relayed;
	opx_node_id fetching_from; /* a learner: the node it fetches from now */
	uint64_t tx_bytes;	   /* sent to all members so far (transport counters) */
	bool transferring;	   /* a state transfer is in progress */
	uint64_t xfer_bytes;	   /* of the transfer in progress, or the last one */
	uint64_t xfer_total;	   /* the source's estimate of the whole (0: unknown) */
	opx_node_id xfer_source;   /* the peer asked */
	unsigned proposals_in_flight;
	uint64_t leader_changes;
	struct tp_peer_stats peer_stats[OPX_MAX_NODES]; /* by position in opx.peers */
	enum replica_mode mode;
	uint32_t config_id;
	uint64_t base; /* global index of the configuration's log index 0 */
	uint64_t now_ms;
};

/*
 * Work only the replica thread may do (it owns the core and the transport,
 * and the apply hook is its own), asked for by another thread: the caller
 * queues the request (its own memory) under ctl_lock, wakes the loop and
 * waits on ctl_done until the replica thread marks it done, or until the
 * thread has left its loop (then the request was never served: -ESHUTDOWN).
 * See run_on_replica_thread in replica.c.
 */
struct replica_ctl_request {
	enum {
		REPLICA_CTL_FAULT,
		REPLICA_CTL_RECONFIGURE,
		REPLICA_CTL_KEY_SEEN,
		REPLICA_CTL_APPLY_HOOK,
	} kind;
	uint64_t peer; /* FAULT */
	bool drop_out, drop_in;
	const struct membership *next; /* RECONFIGURE: the next configuration */
	uint8_t key[TP_KEY_LEN];       /* KEY_SEEN: a CURVE public key */
	replica_apply_hook hook;       /* APPLY_HOOK: the new hook (NULL: none) */
	void *hook_ctx;
	int rc; /* the result, once done */
	bool done;
	struct replica_ctl_request *next_req; /* in replica.ctl_queue */
};

/* A peer that left the membership, kept in the transport so it can still
 * learn that it was removed (replica_members.c, depart). */
struct replica_departing {
	opx_node_id id;
	uint64_t since_ms;
	uint64_t until_ms; /* UINT64_MAX: until room is needed */
};

/* What a member of this node's configuration said about a later one
 * (replica_members.c, record_report): its member table (which names the
 * configuration), or that this node is not a member of it. One slot per
 * reporter; emptied with each new configuration. */
struct replica_report {
	opx_node_id from;	  /* 0: a free slot */
	struct membership *table; /* owned; NULL: "you are not a member" */
};

/* A state transfer in progress (receiving side). */
struct replica_xfer {
	bool active;
	uint64_t need_idx;	  /* the log is compacted up to here: need state >= it */
	opx_node_id source;	  /* peer asked */
	uint64_t source_idx;	  /* the source's snapshot index, 0 until the first chunk */
	opx_node_id prefer;	  /* a peer known to have the state (0: none) */
	uint64_t last_request_ms; /* resend the request after a silence */
	uint64_t bytes;		  /* received so far (by this process) */
	uint64_t total;		  /* the source's estimate of the state's size, 0 unknown */
	unsigned attempts;
};

/* An export view served to one peer (sending side). */
struct replica_export {
	opx_node_id peer;
	struct kv_view *view; /* pins the state at idx */
	uint64_t idx;
	uint64_t total; /* kv_view_size_estimate of the view, sent with each chunk */
	uint64_t last_used_ms;
};

/* Decided entries applied to the state's batch and not yet committed
 * (replica_apply.c). */
#define REPLICA_APPLY_BATCH 256
struct replica_applying {
	struct kv_batch *batch;
	uint32_t n;
	uint64_t bytes;
	struct replica_applied {
		uint64_t idx;
		const struct opx_entry *entry; /* in the read the batch came from */
		struct kv_txn t;
		bool decoded;
		struct kv_result res;
	} e[REPLICA_APPLY_BATCH];
};

struct replica {
	struct cfg cfg;
	char errmsg[256];
	struct opx_rocks *log;
	struct kv_store *kv;
	struct opx *px;
	struct tp *tp;
	int wake_fd;
	pthread_t thread;
	atomic_bool stop;
	atomic_bool failed; /* fail-stop: storage failed, the daemon must exit */
	/* State transfers this node completed since it started (status). */
	atomic_uint_fast64_t xfers_done;
	atomic_uint_fast64_t xfer_bytes_total; /* their chunks' bytes, received (metrics) */
	/* Metrics (replica_metrics.c): any thread observes, any thread reads. */
	struct metrics_histogram proposal_latency; /* submit to applied here, proposals.c */
	struct metrics_histogram log_sync_latency; /* synced writes of the log */
	struct proposals props;
	/* replica thread only: installed and cleared through ctl_queue
	 * (replica_set_apply_hook), called by apply_entry */
	replica_apply_hook hook;
	void *hook_ctx;

	/* The configuration this node runs (cfg.peers stays the config file's:
	 * the first configuration, and whom a joining node asks). Written by the
	 * replica thread under members_lock; other threads read it under it. */
	pthread_mutex_t members_lock;
	struct membership members;
	_Atomic enum replica_mode mode; /* written by the replica thread */

	/* replica thread only */
	uint64_t applied_idx;	 /* entries applied to the KV (a count) */
	opx_node_id seen_leader; /* the last leader in accept phase publish_view saw */
	uint64_t leader_changes; /* times it changed (the first counts), in the view */
	uint64_t bytes_since_compaction;
	uint64_t compact_recheck_ms;	  /* a compaction waits for the state's flush till then */
	struct log_retain retained;	  /* the sizes of the last entries applied */
	struct replica_applying applying; /* decided entries in the state's batch */
	opx_node_id last_leader;
	struct opx_ballot last_promise;
	uint64_t start_ms;
	atomic_uint_fast64_t ticks_without_qc; /* ticks since the core last had a quorum */
	atomic_bool had_qc;		       /* the core had a quorum once */
	atomic_bool has_route; /* step.route is not NONE (written by the replica thread) */
	/* A majority of voters is within one hop: this node, or a peer linked
	 * to it, hears one (replica_step.c). Written by the replica thread. */
	atomic_bool quorum_in_reach;
	uint64_t next_tick_ms;
	uint64_t decides_owed_us; /* since when the core holds back Decides (0: it does not) */
	uint64_t reforward_at_ms; /* when to forward the proposals in flight again (0: no need) */
	uint64_t last_watchdog_ms;
	uint64_t disk_checked_ms;	/* last look at the data dir's free space */
	uint64_t blob_gc_checked_ms;	/* last look at the state's blob garbage */
	bool blob_gc_refused;		/* RocksDB refused the option: looks no more */
	uint64_t tx_bytes, tx_bytes_ms; /* bytes sent to all members, summed then (status) */
	uint64_t watchdog_ms;
	struct replica_xfer xfer;
	struct replica_step step;
	struct replica_learn learn;
	struct replica_export exports[OPX_MAX_NODES];
	/* A configuration to enter after this turn: a decided stop-sign's, or
	 * that of a state just transferred. */
	struct membership *entering;
	/* A newer configuration peers told us about, confirmed (see
	 * replica_members.c): this node takes no writes while it is set. */
	struct membership *heard;
	uint64_t heard_ms; /* when */
	struct replica_report reports[CFG_MAX_PEERS];
	uint64_t last_left_ms;		 /* REMOVED: last LEFT sent to the old peers */
	uint64_t last_join_ms;		 /* JOINING: last JOIN sent */
	uint64_t told_ms[OPX_MAX_NODES]; /* last MEMBERS sent to a stale peer, by slot */
	opx_node_id told_id[OPX_MAX_NODES];
	struct replica_departing departing[OPX_MAX_NODES];
	struct log_ratelimit rl_members; /* lines peers can trigger */

	/* published for other threads */
	pthread_mutex_t view_lock;
	struct replica_view view;

	/* requests for the replica thread (struct replica_ctl_request) */
	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_done;	       /* broadcast when requests are done */
	struct replica_ctl_request *ctl_queue; /* under ctl_lock, oldest first */
	bool ctl_closed; /* under ctl_lock: the thread left its loop, none is served */
};

/* replica_apply.c */
int replica_apply_decided(struct replica *r);
/* Applies one decided entry at global index idx (== applied_idx). */
int replica_apply_one(struct replica *r, uint64_t idx, const uint8_t *data, uint32_t len);
void replica_maybe_compact(struct replica *r, uint64_t now);
/* Turns the state's blob garbage collection on or off (kv_blob_gc_tend),
 * looking once a second at most; if RocksDB refuses, warns and leaves it. */
void replica_tend_blob_gc(struct replica *r, uint64_t now);
extern const struct opx_snapshot_ops replica_snapshot_ops;

/* replica_xfer.c */
/* prefer: a peer known to have the state (0: the leader, then any). */
void replica_xfer_start(struct replica *r, uint64_t need_idx, opx_node_id prefer);
void replica_xfer_step(struct replica *r, uint64_t now_ms);
void replica_xfer_on_app(struct replica *r, const struct tp_frame *f, uint64_t now_ms);
void replica_exports_close(struct replica *r);

/* replica_step.c */
void replica_step_on_app(struct replica *r, const struct tp_frame *f, uint64_t now);
void replica_step_turn(struct replica *r, uint64_t now);
/* Sends just-taken proposals through the relay, if the leader is reached
 * through one. */
void replica_step_relay(struct replica *r, struct proposal *const *taken, size_t n);

/* Serves a fetch request for decided entries from first (global) to a member
 * of configuration config_id (this one, or the one before it when this node
 * has just left it); may_park holds it while there is nothing to send. */
void replica_fetch_serve(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t first,
			 bool may_park, uint64_t now);
/* Whether replica_fetch_serve would send entries from first now. */
bool replica_fetch_has(struct replica *r, uint64_t first);
/* Applies the entries of a FETCH_ENTRIES answer from a.first on that follow
 * the applied index; returns how many (a storage failure fails the replica). */
struct step_fetch_answer;
struct step_buf;
uint64_t replica_apply_fetched(struct replica *r, const struct step_fetch_answer *a);

/* replica_learn.c */
/* A learner's turn: fetching, its route for relayed writes; and, on every
 * node, answering the held fetch requests that now have entries. */
void replica_learn_turn(struct replica *r, uint64_t now);
void replica_learn_on_entries(struct replica *r, opx_node_id from, const uint8_t *d, uint32_t len,
			      uint64_t now);
/* Holds a request (replica_fetch_serve). */
void replica_learn_park(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t first,
			uint64_t now);
/* Keeps an applied entry to serve other learners (learners only). */
void replica_learn_remember(struct replica *r, uint64_t idx, const uint8_t *data, uint32_t len);
/* Adds kept entries from first to msg; the answer says how many, or
 * NOT_HELD when first is no longer kept. */
void replica_learn_add_recent(struct replica *r, uint64_t first, struct step_fetch_answer *a,
			      struct step_buf *msg);
/* Entering a configuration: keeps or frees what a learner holds. */
void replica_learn_enter(struct replica *r);
void replica_learn_close(struct replica *r);

/* replica_members.c */
int replica_members_load(struct replica *r, char *err, size_t err_len);
int replica_log_open(struct replica *r, char *err, size_t err_len);
int replica_stopsign_applied(struct replica *r, const struct opx_stopsign *ss, uint64_t idx);
/* The member table of a decided stop-sign at global idx (next->base is
 * idx + 1), however it was learned: stored with the state, entered after
 * this turn. Ownership of next passes. */
int replica_table_applied(struct replica *r, struct membership *next, uint64_t idx);
/* The table a stop-sign carries, as replica_stopsign_applied stores it
 * (base from the configuration's base and its local index). */
int replica_table_of_stopsign(const struct replica *r, const struct opx_stopsign *ss,
			      uint64_t local_idx, struct membership *t);
/* Tells a peer of an older configuration where the cluster is. */
void replica_members_tell(struct replica *r, opx_node_id to, uint64_t now);
void replica_enter_config(struct replica *r, const struct membership *next, uint64_t now);
bool replica_msg_is_current(struct replica *r, const struct opx_msg *m, uint64_t now);
void replica_members_on_app(struct replica *r, const struct tp_frame *f, uint64_t now);
void replica_members_step(struct replica *r, uint64_t now);
void replica_members_after_import(struct replica *r);
/* Frees what the membership code holds (the reports). */
void replica_members_close(struct replica *r);
int replica_reconfigure_now(struct replica *r, const struct membership *next);

/* replica_metrics.c: the log store's sync callback (opx_rocks_sync_fn). */
void replica_log_synced(void *ctx, uint64_t ns);
/* replica.c */
void replica_fail(struct replica *r, const char *what, int rc);
int replica_core_open(struct replica *r, char *err, size_t err_len);
/* Hands every proposal in flight to the core again; returns how many. */
unsigned replica_reappend_in_flight(struct replica *r);
/* Proposes the next configuration (a stop-sign), from another thread. */
int replica_propose_membership(struct replica *r, const struct membership *next);
/* 1 if a node tried to connect with this key in the last minute (refused:
 * not a member's), else 0; from another thread. */
int replica_key_seen(struct replica *r, const uint8_t *key);

#endif /* OMNIFS_REPLICA_INT_H */
