/*
 * A cluster of replicas in one process, for tests of the replica loop,
 * membership changes and state transfer (fs/replica/replica.h).
 *
 * Every node is a real replica: its own RocksDB log and state in its own
 * folder under one temporary directory, its own ZeroMQ sockets on a free
 * loopback port, CURVE keys generated here (or plaintext if asked). The
 * config of each node is built in memory (cfg_parse_string), with short
 * timings so that elections take a fraction of a second. Nodes are numbered
 * from 1; node i keeps its folder, port and keys across stop and start.
 *
 * Waiting is always polling with a deadline (rcl_wait): on a timeout the
 * harness prints what it waited for and every node's status, and the caller
 * fails. rcl_destroy stops every node and removes the temporary directory;
 * call it from a cmocka teardown so it runs when a test fails too.
 *
 * Not thread-safe: one test thread drives the cluster (rcl_put_many runs
 * its own writer threads and joins them before returning).
 */
#ifndef OMNIFS_REPLICA_CLUSTER_H
#define OMNIFS_REPLICA_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define RCL_MAX_NODES 10

struct replica;
struct kv_store;

/* What the config of every node gets. Zero fields take the defaults
 * written next to them (rcl_new with opt NULL: all defaults). */
struct rcl_options {
	bool plaintext;			 /* default: CURVE */
	uint32_t tick_ms;		 /* 5; the flush timeout too */
	uint32_t election_timeout_ms;	 /* 100 */
	uint32_t resend_timeout_ms;	 /* 100 */
	uint32_t commit_timeout_ms;	 /* 5000 */
	uint32_t compact_max_entries;	 /* 0: the config's default */
	uint32_t compact_retain_entries; /* with compact_max_entries */
};

struct rcl_node {
	uint64_t id;
	char dir[PATH_MAX];		      /* the node's folder: data/, its key file */
	char address[CFG_ADDR_MAX];	      /* 127.0.0.1:port */
	char public_key[CFG_KEY_Z85_LEN + 1]; /* "" in plaintext */
	struct cfg cfg;			      /* what replica_start gets, every time */
	struct replica *r;		      /* NULL while stopped */
};

struct rcl {
	char root[PATH_MAX]; /* the temporary directory holding every node */
	struct rcl_options opt;
	char cluster[CFG_CLUSTER_MAX];
	size_t n;				   /* nodes made: ids 1..n */
	struct rcl_node *nodes[RCL_MAX_NODES + 1]; /* by id; [0] unused */
};

/* The fields of a node's status JSON (replica_status_json) tests look at. */
struct rcl_status {
	char role[16]; /* leader, candidate, follower, no-leader, learner, joining, removed */
	uint64_t leader;
	bool quorum;
	bool caught_up;
	bool removed;
	bool joining;
	bool transferring;	  /* a state transfer in progress */
	uint64_t state_transfers; /* completed since the replica started */
	uint64_t xfer_bytes;	  /* received by the transfer in progress or the last */
	uint64_t xfer_total;	  /* its source's estimate of the whole (0: unknown) */
	uint64_t decided_idx, applied_idx, compacted_idx;
	uint32_t config_id;
	bool ble_quorum;       /* quorum_connected: BLE heard a quorum last round */
	char leader_route[16]; /* direct, via, none */
	uint64_t via;	       /* with leader_route via: the peer */
	uint64_t leader_decided_idx, lag_entries;
	uint64_t fetched_entries, relayed_proposals;
};

/*
 * Makes the temporary directory and nodes 1..n (keys, ports, configs naming
 * each other as [peers]); starts none. opt is copied (NULL: defaults).
 * Returns 0 or a negative errno, with a message on stderr; on error *out is
 * NULL and nothing is left on disk.
 */
int rcl_new(struct rcl **out, size_t n, const struct rcl_options *opt);

/* Stops every running node, removes the temporary directory, frees the
 * cluster and NULLs *c. NULL is a no-op. */
void rcl_destroy(struct rcl **c);

/*
 * Makes one more node (id n + 1) that is to be added to the running
 * cluster: [node] join = true, [peers] the given members and itself, the
 * members' keys (what omnifs-bootstrap --add writes). Not started.
 * Returns the new id, or 0 with a message on stderr.
 */
uint64_t rcl_add_joiner(struct rcl *c, const uint64_t *members, size_t n_members);

/* Starts node id from its folder (its data dir kept from any earlier run).
 * 0 or a negative errno, with replica_start's reason on stderr. */
int rcl_start(struct rcl *c, uint64_t id);
/* Starts every node made so far that is not running. */
int rcl_start_all(struct rcl *c);
/* Stops node id (replica_stop); a stopped node is a no-op. */
void rcl_stop(struct rcl *c, uint64_t id);

/* Stops node id if it runs, then starts it again from its data dir. */
int rcl_restart(struct rcl *c, uint64_t id);

/* The running replica of node id, or NULL. */
struct replica *rcl_replica(struct rcl *c, uint64_t id);
/* Node id (borrowed, valid until rcl_destroy), or NULL. */
const struct rcl_node *rcl_node(struct rcl *c, uint64_t id);

/* Node id's status; -ESRCH if it is not running, -EBADMSG if a field is
 * missing from the JSON. */
int rcl_status(struct rcl *c, uint64_t id, struct rcl_status *st);

/* Prints every node's status JSON (or that it is stopped) to stderr. */
void rcl_dump(struct rcl *c, const char *why);

/*
 * Polls pred(c, arg) every few milliseconds until it returns true (true)
 * or timeout_ms pass (false, after printing what and rcl_dump).
 */
typedef bool (*rcl_pred)(struct rcl *c, void *arg);
bool rcl_wait(struct rcl *c, uint32_t timeout_ms, rcl_pred pred, void *arg, const char *what);

/*
 * Waits until every running voter (neither joining, removed nor a learner)
 * follows the same leader, which runs, leads in the accept phase, and every one of
 * them has a quorum. Returns the leader's id, or 0 on timeout (reported).
 */
uint64_t rcl_wait_leader(struct rcl *c, uint32_t timeout_ms);

/*
 * Waits until every running member (neither joining nor removed) has
 * applied the same index with the same state digest (kv_digest). False on
 * timeout, after printing each node's applied index and digest.
 */
bool rcl_wait_same_state(struct rcl *c, uint32_t timeout_ms);

/* Puts key = value through node id (replica_propose): 0 once applied on
 * that node, or replica_propose's error; -EPROTO if not KV_APPLIED. Key and
 * value are NUL-terminated strings (the NUL is not stored). */
int rcl_put(struct rcl *c, uint64_t id, const char *key, const char *value);

/* As rcl_put, through a replica the caller holds (from rcl_replica): for
 * threads that must not look at the cluster while the test changes it. */
int rcl_replica_put(struct replica *r, const char *key, const char *value);

/* As rcl_put, trying again on -EROFS and -ETIMEDOUT (a leader change; the
 * put is idempotent) until timeout_ms pass. */
int rcl_put_retry(struct rcl *c, uint64_t id, const char *key, const char *value,
		  uint32_t timeout_ms);

/*
 * Puts keys "<prefix><i>" = "v<i>" for i in [first, first + count) through
 * node id from n_threads threads at once (rcl_put_retry each, timeout_ms
 * per put). Returns 0 once every put is applied, else the first error
 * (reported on stderr).
 */
int rcl_put_many(struct rcl *c, uint64_t id, const char *prefix, unsigned first, unsigned count,
		 unsigned n_threads, uint32_t timeout_ms);

/* Node id's value of key, as a malloc'd NUL-terminated string (*value,
 * the caller frees) and the log index that wrote it (*version; NULL to
 * skip). 0, -ENOENT, -ESRCH (not running) or kv_get's error. */
int rcl_get(struct rcl *c, uint64_t id, const char *key, char **value, uint64_t *version);

/*
 * Runs a control command on node id as omnifsctl would send it (argv[0]
 * "status", "barrier", "member-add", "debug-fault"...; the arguments after
 * cmd, ended by NULL). The body goes into out (out_len bytes, always
 * NUL-terminated, truncated if longer). Returns the command's status: 0 or
 * a positive errno; ESRCH if the node is not running.
 */
int rcl_control(struct rcl *c, uint64_t id, char *out, size_t out_len, const char *cmd, ...)
	__attribute__((sentinel));

/*
 * Cuts node id off (cut true) or plugs it back (false): node id drops all
 * traffic in and out, and every other running node drops traffic to and
 * from it (replica_set_fault). 0 or the first error.
 */
int rcl_cut(struct rcl *c, uint64_t id, bool cut);

/* Cuts (cut true) or plugs back the link between nodes a and b alone, both
 * ways, on both ends (replica_set_fault). 0 or the first error. */
int rcl_cut_link(struct rcl *c, uint64_t a, uint64_t b, bool cut);

/* Entries node id's state has applied (kv_applied_idx), or 0 if it is not
 * running. Fresher than the status' applied_idx, which the replica thread
 * publishes at the end of its turn: a proposer is woken before that. */
uint64_t rcl_applied_idx(struct rcl *c, uint64_t id);

/* Node id's state digest and applied index, from one view. 0 or an error. */
int rcl_digest(struct rcl *c, uint64_t id, char hex[65], uint64_t *applied_idx);

#endif /* OMNIFS_REPLICA_CLUSTER_H */
