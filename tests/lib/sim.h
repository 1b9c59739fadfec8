/*
 * A deterministic simulator of an OmniPaxos cluster: N consensus cores in
 * one process, storage_mem underneath, a simulated network between them and
 * a seeded PRNG deciding everything random, so a seed replays a run exactly.
 *
 * Time is virtual: every node ticks once per `tick_len` time units (nodes
 * are staggered by one unit), and a message is delivered `delay` units after
 * it was sent. The next event is the earliest in time; ties go to the one
 * scheduled first. Messages are deep-copied when a node sends them, since
 * the core's outbox is only valid until its next call.
 *
 * Faults: per-link drop/duplicate/reorder probabilities and delays,
 * directional link cuts, stalls (a node starved of CPU), crashes (volatile
 * state lost, storage kept; in manual-sync mode a "crash mid-step" also
 * loses writes the step made before its messages left), restarts, storage write failures (the node then
 * fail-stops and is restarted like a crashed one) and allocation failures
 * inside a core's calls (sim_fail_alloc). Storage is storage_mem or, with
 * sim_opts.rocksdb_dir, RocksDB logs; with sim_opts.follow_reconfig the
 * simulator also plays the application's part in a reconfiguration.
 *
 * After every event the simulator checks safety: a decided index holds the
 * same entry on every node that ever decides it (also across crashes and
 * configurations), decided entries were proposed, the whole decided prefix
 * of a node is read back after every event that wrote its store, no write
 * replaces or drops a decided entry, a node's decided index never shrinks
 * while it runs, its promise never goes back (across restarts too),
 * compacted <= decided <= accepted, snapshots match the decided prefix, and
 * no two nodes ever lead (role Leader, any phase) the same ballot. The cores
 * assert their own invariants too (omnipaxos.c). The first violation stops
 * the run and is reported by sim_error(). Liveness is checked by the tests
 * with sim_run_until() and an explicit bound in ticks.
 */
#ifndef OMNIFS_SIM_H
#define OMNIFS_SIM_H

#include "omnipaxos.h"

#include <stdbool.h>
#include <stdint.h>

struct sim;

/* Probabilities are per mille. Delays in time units (a tick is tick_len). */
struct sim_net {
	uint32_t delay_min, delay_max;
	uint32_t drop_pm;
	uint32_t dup_pm;
	uint32_t reorder_pm; /* chance a message ignores per-link FIFO order */
};

struct sim_opts {
	uint32_t n;			    /* nodes, 2..OPX_MAX_NODES */
	opx_node_id ids[OPX_MAX_NODES];	    /* 0: ids are 1..n */
	uint32_t priorities[OPX_MAX_NODES]; /* leader priority of each node */
	uint32_t read_quorum, write_quorum; /* 0: majority */
	uint32_t election_ticks, resend_ticks, flush_ticks, batch_size;
	bool snapshots;			   /* give the cores snapshot ops */
	bool manual_sync;		   /* storage syncs only when a node's messages leave */
	uint32_t tick_len;		   /* time units per tick, >= 2 */
	bool fast;			   /* benchmarks: skip reading back decided entries */
	bool snapshot_only_when_compacted; /* the cores' setting (omnipaxos.h) */
	bool sync_after_send;		   /* the cores' setting (omnipaxos.h) */
	bool decide_with_next;		   /* the cores' setting (omnipaxos.h) */
	/* Act as the application on reconfiguration (fs/replica): a node whose
	 * core decided a stop-sign starts the next configuration's core on an
	 * emptied log; a message from a later configuration makes its receiver
	 * jump there, one from an earlier configuration makes its sender jump.
	 * Indexes are then global: configuration k's log index 0 is one past
	 * the stop-sign that ended configuration k-1. */
	bool follow_reconfig;
	/* Non-NULL: each node's log is a RocksDB store under this directory
	 * (storage_rocksdb.h; no manual_sync). NULL: storage_mem. */
	const char *rocksdb_dir;
	struct sim_net net;
	uint64_t seed;
};

/* Fills o with a fault-free n-node cluster: election 1, resend 4, flush 2,
 * batch 1, tick_len 10, delay 1..3, seed 1. */
void sim_opts_default(struct sim_opts *o, uint32_t n);

/* NULL if memory ran out or the config is rejected. o is copied. */
struct sim *sim_new(const struct sim_opts *o);
void sim_destroy(struct sim **s);

/* One event. false once a safety violation was found (see sim_error). */
bool sim_step(struct sim *s);
/* Runs for `ticks` ticks of virtual time. false on a violation. */
bool sim_run_ticks(struct sim *s, uint64_t ticks);
/* Runs until pred holds (checked after every event) or max_ticks pass.
 * Returns true if pred became true without a violation. */
bool sim_run_until(struct sim *s, bool (*pred)(struct sim *s, void *arg), void *arg,
		   uint64_t max_ticks);

/* The first safety violation, or NULL. */
const char *sim_error(const struct sim *s);

/* Nodes are addressed by index 0..n-1. */
uint32_t sim_n(const struct sim *s);
opx_node_id sim_id(const struct sim *s, uint32_t i);
int sim_index_of(const struct sim *s, opx_node_id id); /* -1 if unknown */
bool sim_up(const struct sim *s, uint32_t i);
struct opx *sim_core(struct sim *s, uint32_t i); /* NULL while down */
struct opx_storage_mem *sim_storage(struct sim *s, uint32_t i);
uint64_t sim_now_ticks(const struct sim *s);
uint64_t sim_seed(const struct sim *s);
uint64_t sim_rand(struct sim *s); /* the run's PRNG, for schedules */

/* Network faults. cut(a, b, false) cuts a -> b only. */
void sim_set_net(struct sim *s, const struct sim_net *net);
void sim_cut(struct sim *s, uint32_t a, uint32_t b, bool both_ways);
void sim_connect(struct sim *s, uint32_t a, uint32_t b, bool both_ways);
void sim_isolate(struct sim *s, uint32_t i);
void sim_heal(struct sim *s); /* every link up, network as in sim_opts */
bool sim_link_up(const struct sim *s, uint32_t a, uint32_t b);

/* A filter sees every message as it is sent; returning false drops it. */
typedef bool (*sim_filter_fn)(void *ctx, const struct opx_msg *m);
void sim_set_filter(struct sim *s, sim_filter_fn fn, void *ctx);

/* Node faults. crash: volatile state lost; with lose_unsynced (manual sync
 * only) writes not yet synced are lost too. restart: a new core on the same
 * storage. Returns 0 or a negative errno. */
void sim_crash(struct sim *s, uint32_t i, bool lose_unsynced);
int sim_restart(struct sim *s, uint32_t i);
/* Node i runs nothing for `ticks` ticks from now, as a process starved of
 * CPU: messages to it wait, in order, and its ticks are skipped, not
 * replayed; at the stall's end it handles what waited, then ticks. Its
 * state, storage and links are untouched. */
void sim_stall(struct sim *s, uint32_t i, uint64_t ticks);
/* Node i crashes inside its next call into the core: after the core has
 * written to storage but before those writes are synced (manual sync) and
 * before its messages leave. Models a crash before fsync. on=false cancels. */
void sim_crash_in_next_call(struct sim *s, uint32_t i, bool on);
/* The nth storage write of node i from now fails (see storage_mem.h). */
void sim_fail_write(struct sim *s, uint32_t i, uint64_t nth, bool persistent);
/* The nth allocation (malloc, calloc, realloc) node i's core makes from now
 * fails, once (nth == 0: none). The core then loses a message or returns
 * -ENOMEM, as it would when memory runs out. Needs the link options of
 * tests/lib/meson.build (sim_dep carries them). */
void sim_fail_alloc(struct sim *s, uint32_t i, uint64_t nth);
/* Allocations failed so far by sim_fail_alloc. */
uint64_t sim_alloc_failures(const struct sim *s);
/* Fail-stops seen so far (a core returned -EIO; the node was crashed). */
uint64_t sim_fail_stops(const struct sim *s);

/* Appends a unique entry of len >= 16 bytes at node i. Returns the core's
 * result (0, -ESHUTDOWN, ...) or -ENODEV if the node is down. */
int sim_append(struct sim *s, uint32_t i, uint32_t len);
/* Calls done on node i that the simulator must see through (so that its
 * outbox is drained): wrap them in sim_call. */
int sim_trim(struct sim *s, uint32_t i, bool has_idx, uint64_t idx);
int sim_snapshot(struct sim *s, uint32_t i, bool has_idx, uint64_t idx, bool local_only);
int sim_reconfigure(struct sim *s, uint32_t i, const struct opx_cluster_config *next,
		    const uint8_t *md, uint32_t md_len);
int sim_try_become_leader(struct sim *s, uint32_t i);
void sim_reconnected(struct sim *s, uint32_t i, opx_node_id peer);

/* Configurations (follow_reconfig): the one node i runs, its members, the
 * global index of its log index 0, and how many the cluster reached. */
#define SIM_MAX_CONFIGS 64
uint32_t sim_config_id(const struct sim *s, uint32_t i);
const struct opx_cluster_config *sim_cluster(const struct sim *s, uint32_t i);
uint64_t sim_base(const struct sim *s, uint32_t i);
uint32_t sim_configs(const struct sim *s);
/* True if node i's core stores a stop-sign (decided or not). */
bool sim_stopsign_stored(struct sim *s, uint32_t i);

/* The node in (Leader, Accept) with the highest ballot (of the latest
 * configuration), or -1. */
int sim_leader(const struct sim *s);
/* The highest (global) index decided anywhere so far. */
uint64_t sim_max_decided(const struct sim *s);
/* Entries appended through sim_append so far. */
uint64_t sim_appended(const struct sim *s);
/* True if every running node has decided at least idx (global). */
bool sim_all_decided(const struct sim *s, uint64_t idx);
/* Hash of the entry decided at idx (the simulator's record); 0 if none. */
uint64_t sim_decided_hash(const struct sim *s, uint64_t idx);
/* Messages delivered so far and bytes of entries copied by the network. */
uint64_t sim_delivered(const struct sim *s);
uint64_t sim_net_entry_bytes(const struct sim *s);

/* The simulator's snapshot ops: a snapshot is (count, xor of entry hashes),
 * so merging a delta twice or missing one is visible. */
extern const struct opx_snapshot_ops sim_snapshot_ops;
uint64_t sim_entry_hash(const uint8_t *data, uint32_t len);

/* Traces every delivered message to f (a FILE *), NULL: off. */
void sim_set_trace(struct sim *s, void *f);

/* Writes one line per node (role, phase, ballots, indexes, links) to f,
 * a FILE * (void * keeps stdio out of this header). */
void sim_dump(const struct sim *s, void *f);

#endif /* OMNIFS_SIM_H */
