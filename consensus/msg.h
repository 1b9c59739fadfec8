/*
 * OmniPaxos messages (spec §4.2 and §5.3) as one tagged union.
 *
 * Memory: a message never owns what its pointers reach. Messages the core
 * hands out (opx_take_outgoing) point into the core and stay valid until the
 * next call into it. Messages the application passes in (opx_handle_incoming)
 * are borrowed for the call; the core copies what it keeps. A decoder may
 * therefore point entries straight into the received frame.
 *
 * Every envelope carries the sender's configuration id, so the application can
 * route messages to the instance of the right configuration after a
 * reconfiguration (the reference leaves that to the user, spec §9).
 */
#ifndef OMNIFS_OPX_MSG_H
#define OMNIFS_OPX_MSG_H

#include "types.h"

enum opx_msg_type {
	/* Ballot Leader Election */
	OPX_MSG_HB_REQUEST = 1,
	OPX_MSG_HB_REPLY = 2,
	/* Sequence Paxos */
	OPX_MSG_PREPARE_REQ = 3,
	OPX_MSG_PREPARE = 4,
	OPX_MSG_PROMISE = 5,
	OPX_MSG_ACCEPT_SYNC = 6,
	OPX_MSG_ACCEPT_DECIDE = 7,
	OPX_MSG_ACCEPTED = 8,
	OPX_MSG_DECIDE = 9,
	OPX_MSG_NOT_ACCEPTED = 10,
	OPX_MSG_PROPOSAL_FORWARD = 11,
	OPX_MSG_COMPACTION = 12,
	OPX_MSG_ACCEPT_STOPSIGN = 13,
	OPX_MSG_FORWARD_STOPSIGN = 14,
};
#define OPX_MSG_TYPE_MAX OPX_MSG_FORWARD_STOPSIGN

/* What a follower must install (spec §5.6, LogSync). */
struct opx_log_sync {
	enum opx_snapshot_kind snapshot_kind; /* NONE: no snapshot */
	const uint8_t *snapshot;	      /* application snapshot bytes */
	uint32_t snapshot_len;
	const struct opx_entry *suffix; /* entries from sync_idx on */
	uint32_t n_suffix;
	uint64_t sync_idx;
	const struct opx_stopsign *stopsign; /* NULL: none */
};

struct opx_msg_hb_request {
	uint32_t round;
};

struct opx_msg_hb_reply {
	uint32_t round;
	struct opx_ballot ballot; /* replier's current ballot */
	struct opx_ballot leader; /* replier's leader */
	bool happy;
};

struct opx_msg_prepare_req {
	struct opx_ballot n; /* sender's promise */
};

struct opx_msg_prepare {
	struct opx_ballot n;
	uint64_t decided_idx;
	struct opx_ballot n_accepted;
	uint64_t accepted_idx;
};

struct opx_msg_promise {
	struct opx_ballot n;
	struct opx_ballot n_accepted;
	uint64_t decided_idx;
	uint64_t accepted_idx;
	bool has_log_sync;
	struct opx_log_sync log_sync;
};

struct opx_msg_accept_sync {
	struct opx_ballot n;
	struct opx_seq seq;
	uint64_t decided_idx;
	struct opx_log_sync log_sync;
};

struct opx_msg_accept_decide {
	struct opx_ballot n;
	struct opx_seq seq;
	uint64_t decided_idx;
	const struct opx_entry *entries;
	uint32_t n_entries;
};

struct opx_msg_accepted {
	struct opx_ballot n;
	uint64_t accepted_idx;
};

struct opx_msg_decide {
	struct opx_ballot n;
	struct opx_seq seq;
	uint64_t decided_idx;
};

struct opx_msg_not_accepted {
	struct opx_ballot n;
};

struct opx_msg_proposal_forward {
	const struct opx_entry *entries;
	uint32_t n_entries;
};

enum opx_compaction_kind {
	OPX_COMPACTION_TRIM = 1,
	OPX_COMPACTION_SNAPSHOT = 2,
};

struct opx_msg_compaction {
	enum opx_compaction_kind kind;
	bool has_idx; /* Snapshot(None) has no index; Trim always has one */
	uint64_t idx;
};

struct opx_msg_accept_stopsign {
	struct opx_ballot n;
	struct opx_seq seq;
	const struct opx_stopsign *ss;
};

struct opx_msg_forward_stopsign {
	const struct opx_stopsign *ss;
};

struct opx_msg {
	opx_node_id from;
	opx_node_id to;
	uint32_t config_id; /* the sender's configuration */
	enum opx_msg_type type;
	union {
		struct opx_msg_hb_request hb_request;
		struct opx_msg_hb_reply hb_reply;
		struct opx_msg_prepare_req prepare_req;
		struct opx_msg_prepare prepare;
		struct opx_msg_promise promise;
		struct opx_msg_accept_sync accept_sync;
		struct opx_msg_accept_decide accept_decide;
		struct opx_msg_accepted accepted;
		struct opx_msg_decide decide;
		struct opx_msg_not_accepted not_accepted;
		struct opx_msg_proposal_forward proposal_forward;
		struct opx_msg_compaction compaction;
		struct opx_msg_accept_stopsign accept_stopsign;
		struct opx_msg_forward_stopsign forward_stopsign;
	} u;
};

/* "AcceptSync", ... for logs and traces; "?" for an unknown type. */
const char *opx_msg_type_name(enum opx_msg_type type);

/*
 * A deep copy of m in one malloc'd block: the message and everything its
 * pointers reach. Release it with free(). NULL if memory ran out. Lets a
 * holder keep a message past the lifetime of what it points into (a cached
 * Promise, a simulated network).
 */
struct opx_msg *opx_msg_dup(const struct opx_msg *m);

#endif /* OMNIFS_OPX_MSG_H */
