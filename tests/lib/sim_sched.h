/*
 * Randomised fault schedules on the simulator, shared by the 'sim' test
 * suite and the soak runner (tools/omnifs_sim). A seed fixes everything:
 * cluster size (3, 5 or 7) and ids, quorums, timeouts, batching, snapshots
 * (and snapshot_only_when_compacted, as production runs), network quality,
 * and the fault script (link cuts, crashes with and without loss of
 * unsynced writes, restarts, storage and allocation failures, compaction,
 * leader takeovers, and in half the runs stop-signs, with the nodes moving
 * to the next configuration as the application does). Chosen seeds run on
 * RocksDB logs. After the chaos phase the network heals and every node
 * restarts; then a stable leader must appear and fresh entries appended at
 * every node must be decided everywhere, within stated bounds.
 */
#ifndef OMNIFS_SIM_SCHED_H
#define OMNIFS_SIM_SCHED_H

#include <stdbool.h>
#include <stdint.h>

/* Liveness bounds after healing, in election rounds (ticks x election). */
#define SIM_SCHED_STABLE_ROUNDS 60 /* until one leader, all following it */
#define SIM_SCHED_DECIDE_ROUNDS 40 /* until the probes are decided */

struct sim_sched_result {
	bool ok;
	char err[320];
	uint64_t ticks;
	uint64_t appended;
	uint64_t decided;
	uint64_t fail_stops;
	uint64_t delivered;
	uint32_t configs;	 /* configurations reached (1: no stop-sign decided) */
	uint64_t alloc_failures; /* allocations failed inside the cores */
	bool rocksdb;		 /* the logs were RocksDB stores */
};

struct sim_sched_opts {
	uint32_t chaos_ticks; /* ticks of faults; 0: 150 */
	/* Seeds divisible by this (0: none) run on RocksDB logs in a fresh
	 * directory (tmpfs when there is one), removed afterwards. */
	uint32_t rocksdb_one_in;
	void *log; /* a FILE *: on failure the cluster is dumped there */
};

/* Runs the schedule of `seed`; chaos_ticks of faults (0: default 150). */
void sim_sched_run(uint64_t seed, uint32_t chaos_ticks, struct sim_sched_result *r);
/* The same, and on failure dumps the cluster to log (a FILE *) if not NULL. */
void sim_sched_run_log(uint64_t seed, uint32_t chaos_ticks, struct sim_sched_result *r, void *log);
/* The same, with every option. */
void sim_sched_run_opts(uint64_t seed, const struct sim_sched_opts *so, struct sim_sched_result *r);

#endif /* OMNIFS_SIM_SCHED_H */
