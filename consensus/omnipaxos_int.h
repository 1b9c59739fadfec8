/*
 * Private state of the OmniPaxos core, shared by its .c files: the instance
 * struct, the outbox, the append batch, and the helpers every part uses
 * (member lookup, quorum maths, storage writes with fail-stop).
 *
 * Nothing here is part of the public API; only the core's .c files include it.
 * Per-member arrays are indexed by the member's position in the configured
 * node list ("slot"), never by pid, so node ids need not be contiguous.
 */
#ifndef OMNIFS_OPX_INT_H
#define OMNIFS_OPX_INT_H

#include "omnipaxos.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_NONE UINT32_MAX

/* Messages waiting to leave, and the memory they point into. */
struct outbox {
	struct opx_msg *msgs;
	uint32_t n, cap;
	void **blocks; /* malloc'd memory the messages point into, owned */
	uint32_t n_blocks, cap_blocks;
};

/* Entries buffered in memory: one byte buffer plus (offset, length) pairs. */
struct batch {
	uint8_t *buf;
	size_t len, cap;
	struct {
		size_t off;
		uint32_t len;
	} * ents;
	uint32_t n, cap_ents;
};

/* What a Promise says about the promiser's log (spec §5.4, "meta"). */
struct promise_meta {
	struct opx_ballot n_accepted;
	uint64_t accepted_idx;
	uint64_t decided_idx;
};

enum promise_state { NOT_PROMISED = 0, PROMISED = 1, PROMISED_HIGHER = 2 };

/* Position of a queued message, valid while epoch equals the outbox epoch. */
struct out_ref {
	uint64_t epoch;
	uint32_t idx;
};

/* The leader's view of one member (spec §5.2 leader_state, per slot). */
struct lpeer {
	enum promise_state prom;
	struct promise_meta meta;
	struct opx_seq seq;	/* last number sent to it */
	uint64_t accepted_idx;	/* its log length as last reported in this round */
	struct out_ref pending; /* a queued AcceptDecide/Decide to it */
	/* decide_with_next: a decision it was not told of yet; one past the
	 * last entry it forwarded (those decided, it is told at once); and
	 * whether it forwarded any in this resend period or the one before
	 * (then it is told of every decision at once: its clients write, so
	 * they likely wait for others' writes too, lock hand-offs for one) */
	bool decide_owed;
	uint64_t forwarded_end;
	bool forwarded_now, forwarded_before;
};

/* Ballot Leader Election state (spec §4.1), all volatile. */
struct ble {
	uint32_t hb_round;
	/* Per slot: the newest round it answered (0: none yet) with that
	 * reply, and how many rounds late it has answered (ble.c, "Late
	 * replies"). */
	uint32_t heard[OPX_MAX_NODES];
	struct opx_msg_hb_reply replies[OPX_MAX_NODES];
	uint32_t lag[OPX_MAX_NODES];
	uint32_t late_in[OPX_MAX_NODES];  /* the last round a late reply came in */
	uint32_t self_lag;		  /* rounds this node's own ticks came late */
	uint32_t self_late_in;		  /* the last round they did */
	bool prev_replied[OPX_MAX_NODES]; /* counted in the last complete round */
	struct opx_ballot current;
	struct opx_ballot leader;
	bool happy;
	bool qc; /* quorum-connected in the last complete round, or since */
};

struct opx {
	struct opx_config cfg;
	struct opx_storage st;
	bool failed; /* a storage write failed: every call returns -EIO */
	/* sync_after_send: the leader's last append is not synced yet, and
	 * nothing but its AcceptDecides was queued since (px_sync) */
	bool unsynced;
	uint32_t me; /* my slot */
	uint32_t read_q, write_q;
	uint64_t dropped;

	/* logical clocks */
	uint32_t election_clock, resend_clock, flush_clock;

	struct ble ble;

	/* Sequence Paxos, cache of the persistent state (spec §5.2) */
	enum opx_role role;
	enum opx_phase phase;
	struct opx_ballot promise;
	struct opx_ballot accepted_round;
	uint64_t decided_idx;
	uint64_t stored_decided_idx; /* the last decided index written (seqpaxos.c) */
	uint64_t accepted_idx;	     /* stored entries + compacted + (1 if a stop-sign) */
	uint64_t compacted_idx;
	bool has_snapshot;
	struct opx_stopsign *ss;	 /* stored stop-sign or NULL, owned */
	struct opx_stopsign *reconf_out; /* what opx_is_reconfigured returned */

	/* Sequence Paxos, volatile */
	struct batch batch;    /* entries not yet written */
	struct batch buffered; /* proposals waiting for a leader */
	struct opx_stopsign *buffered_ss;
	struct opx_seq cur_seq;		/* follower: last accept-phase number from the leader */
	struct opx_msg *cached_promise; /* follower: for resending, one block, owned */
	struct out_ref pending_accepted;

	/* leader state */
	struct opx_ballot n_leader;
	struct lpeer peers[OPX_MAX_NODES];
	struct promise_meta max_meta;
	struct opx_msg *max_promise; /* Promise holding max_meta's log sync, or NULL */

	/* outgoing */
	struct outbox out_sp, out_ble, taken;
	uint64_t out_epoch;

	/* What invariants() (omnipaxos.c) saw last: none of it may go back. */
	struct opx_ballot inv_promise, inv_accepted_round;
	uint64_t inv_decided_idx;
};

/* ---- helpers shared by all files (seqpaxos.c unless said otherwise) ---- */

static inline uint32_t px_n(const struct opx *px)
{
	return px->cfg.cluster.n_nodes;
}

static inline opx_node_id px_pid(const struct opx *px)
{
	return px->cfg.pid;
}

uint32_t px_slot(const struct opx *px, opx_node_id pid);
bool px_prepare_quorum(const struct opx *px, uint32_t k);
bool px_accept_quorum(const struct opx *px, uint32_t k);
bool px_ss_decided(const struct opx *px);
uint64_t px_log_end(const struct opx *px);
bool ballot_is_zero(const struct opx_ballot *b);

/* Storage write, synced; an unsynced append before it is synced first. On
 * failure the instance is stopped and -EIO returned. */
int px_write(struct opx *px, const struct opx_storage_op *ops, size_t n);
/* Syncs the leader's unsynced append, if any (0 or -EIO, stopped). */
int px_sync(struct opx *px);

/* outbox.c: a queued message, or NULL if memory ran out (then the message
 * is lost, which the protocol tolerates: resends repair it). Any message but
 * an AcceptDecide syncs an unsynced append first (px_sync; NULL if that
 * fails, and the instance is stopped). */
struct opx_msg *out_push(struct opx *px, struct outbox *ob, opx_node_id to, enum opx_msg_type type);
struct opx_msg *out_push_dup(struct opx *px, const struct opx_msg *m);
int out_own(struct outbox *ob, void *p);
/* A copy of m at the end of ob (no sync: m was queued already), or NULL. */
struct opx_msg *out_move(struct opx *px, struct outbox *ob, const struct opx_msg *m);
void out_clear(struct outbox *ob);
void out_free(struct outbox *ob);

/* batch.c */
int batch_push(struct batch *b, const void *data, uint32_t len);
void batch_reset(struct batch *b);
void batch_free(struct batch *b);
struct opx_entry *batch_entries(const struct batch *b);

/* ble.c */
void ble_init(struct opx *px, const struct opx_ballot *stored_promise);
void ble_start_round(struct opx *px);
bool ble_hb_timeout(struct opx *px, struct opx_ballot *leader_out);
void ble_turn_late(struct opx *px, uint32_t rounds);
void ble_handle(struct opx *px, uint32_t from_slot, const struct opx_msg *m);

/* seqpaxos.c: storage cache and log sync */
int sp_flush_batch(struct opx *px, struct opx_entry **flushed, uint32_t *n_flushed, bool unsynced);
int sp_get_entries(struct opx *px, uint64_t from, uint64_t to, struct opx_entry_list *out);

struct lsync_tmp {
	struct opx_log_sync ls;
	struct opx_entry_list ents;
	uint8_t *snap;
};
int sp_create_log_sync(struct opx *px, uint64_t common_prefix, uint64_t other_decided,
		       uint64_t other_acc, struct lsync_tmp *t);
void sp_lsync_free(struct lsync_tmp *t);
int sp_sync_log(struct opx *px, const struct opx_ballot *acc_round, uint64_t decided,
		const struct opx_log_sync *ls, uint64_t *new_acc);
int sp_set_decided(struct opx *px, uint64_t idx);
int sp_store_decided(struct opx *px);
/* seqpaxos_leader.c: decide_with_next's held-back Decides */
bool sp_owes_decides(const struct opx *px);
void sp_send_owed_decides(struct opx *px);
int sp_store_stopsign(struct opx *px, const struct opx_stopsign *ss);
int sp_try_trim(struct opx *px, uint64_t idx);
int sp_snapshot(struct opx *px, bool has_idx, uint64_t idx);
int sp_make_snapshot(struct opx *px, uint64_t to, uint8_t **out, uint32_t *out_len);
bool sp_valid_stopsign(const struct opx_stopsign *ss);
bool sp_valid_cluster(const struct opx_cluster_config *c, char *err, size_t err_len);
void sp_reconnected(struct opx *px, opx_node_id pid);
void sp_send_prepare_req(struct opx *px, opx_node_id to);
int sp_handle_prepare(struct opx *px, uint32_t from, const struct opx_msg *m);
int sp_forward_buffered(struct opx *px);

/* seqpaxos_leader.c */
int sp_handle_leader(struct opx *px, const struct opx_ballot *b);
int sp_leader_append(struct opx *px, const struct opx_entry *e, uint32_t n);
int sp_leader_flush(struct opx *px);
int sp_leader_accept_stopsign(struct opx *px, const struct opx_stopsign *ss);
int sp_leader_handle(struct opx *px, uint32_t from, const struct opx_msg *m);
int sp_leader_resend(struct opx *px);
void sp_send_prepare(struct opx *px, uint32_t slot);

/* seqpaxos_follower.c */
int sp_follower_handle(struct opx *px, uint32_t from, const struct opx_msg *m);
int sp_follower_resend(struct opx *px);
int sp_follower_flush(struct opx *px);

#endif /* OMNIFS_OPX_INT_H */
