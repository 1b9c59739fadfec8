/*
 * The replica's private state, shared by replica.c (lifecycle and the loop),
 * replica_apply.c (applying decided entries, compaction), replica_xfer.c
 * (state transfer) and replica_ctl.c (control commands and status).
 *
 * Threads: everything not under a lock below belongs to the replica thread.
 */
#ifndef OMNIFS_REPLICA_INT_H
#define OMNIFS_REPLICA_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "omnipaxos.h"
#include "proposals.h"
#include "replica.h"
#include "storage_rocksdb.h"
#include "transport.h"

/* Application frame types carried by the transport (tp_send_app). */
enum replica_app_type {
	REPLICA_APP_XFER_REQ = 1,   /* state transfer: "send me the next chunk" */
	REPLICA_APP_XFER_CHUNK = 2, /* state transfer: a chunk of KV state */
};

/* What the replica thread publishes for other threads (status, READY). */
struct replica_view {
	struct opx_status opx;
	uint64_t applied_idx;
	opx_node_id leader;
	bool accept_phase;
	bool quorum_connected;
	bool caught_up;
	bool transferring; /* a state transfer is in progress */
	uint64_t xfer_bytes;
	unsigned proposals_in_flight;
	struct tp_peer_stats peer_stats[OPX_MAX_NODES]; /* by position in opx.peers */
	uint64_t now_ms;
};

/* A control request only the replica thread may carry out (the transport is
 * single-threaded): posted under ctl_lock, answered through ctl_done. */
struct replica_ctl_request {
	bool pending;
	uint64_t peer;
	bool drop_out, drop_in;
	int rc;
};

/* A state transfer in progress (receiving side). */
struct replica_xfer {
	bool active;
	uint64_t need_idx;	  /* the log is compacted up to here: need state >= it */
	opx_node_id source;	  /* peer asked */
	uint64_t source_idx;	  /* the source's snapshot index, 0 until the first chunk */
	uint64_t last_request_ms; /* resend the request after a silence */
	uint64_t bytes;		  /* received so far */
	unsigned attempts;
};

/* An export view served to one peer (sending side). */
struct replica_export {
	opx_node_id peer;
	struct kv_view *view; /* pins the state at idx */
	uint64_t idx;
	uint64_t last_used_ms;
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
	struct proposals props;
	replica_apply_hook hook;
	void *hook_ctx;

	/* replica thread only */
	uint64_t applied_idx; /* entries applied to the KV (a count) */
	uint64_t bytes_since_compaction;
	opx_node_id last_leader;
	struct opx_ballot last_promise;
	uint64_t start_ms;
	atomic_uint_fast64_t last_qc_ms; /* last turn this node was quorum-connected */
	uint64_t next_tick_ms;
	uint64_t last_watchdog_ms;
	uint64_t watchdog_ms;
	struct replica_xfer xfer;
	struct replica_export exports[OPX_MAX_NODES];

	/* published for other threads */
	pthread_mutex_t view_lock;
	struct replica_view view;

	pthread_mutex_t ctl_lock;
	pthread_cond_t ctl_done;
	struct replica_ctl_request ctl_req;
};

/* replica_apply.c */
int replica_apply_decided(struct replica *r);
void replica_maybe_compact(struct replica *r);
extern const struct opx_snapshot_ops replica_snapshot_ops;

/* replica_xfer.c */
void replica_xfer_start(struct replica *r, uint64_t need_idx);
void replica_xfer_step(struct replica *r, uint64_t now_ms);
void replica_xfer_on_app(struct replica *r, const struct tp_frame *f, uint64_t now_ms);
void replica_exports_close(struct replica *r);

/* replica.c */
void replica_fail(struct replica *r, const char *what, int rc);

#endif /* OMNIFS_REPLICA_INT_H */
