/*
 * bench-consensus: throughput of the consensus core on a fault-free
 * simulated cluster (tests/lib/sim.c with its per-entry safety read-back
 * off). A client appends 100-byte entries at the leader, `per_tick` per
 * tick, until `total` are decided on every node; it prints decided entries
 * per second of wall time and the bytes of entry data copied per decided
 * entry. Run from build/release:
 *
 *   build/release/tools/bench-consensus [total]
 *
 * What one entry costs here: the leader copies it into its batch and its
 * storage; the simulated network deep-copies it once per follower; each
 * follower copies it into its batch and its storage. So 100 bytes x
 * (2 + 3 x followers) is the floor for this harness; the network copy is
 * the simulator's (a real transport encodes instead).
 */
#include "sim.h"
#include "storage_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(uint32_t n, uint32_t batch, uint64_t total, uint32_t per_tick)
{
	struct sim_opts o;
	sim_opts_default(&o, n);
	o.batch_size = batch;
	o.flush_ticks = 1;
	o.resend_ticks = 50;
	o.election_ticks = 10;
	o.fast = true;
	struct sim *s = sim_new(&o);
	if (!s) {
		fprintf(stderr, "cannot build the cluster\n");
		exit(1);
	}
	while (sim_leader(s) < 0)
		sim_run_ticks(s, 1);
	sim_run_ticks(s, 20);
	uint32_t l = (uint32_t)sim_leader(s);
	double t0 = now_s();
	uint64_t appended = 0;
	while (!sim_all_decided(s, total)) {
		for (uint32_t k = 0; k < per_tick && appended < total; k++, appended++)
			if (sim_append(s, l, 100)) {
				fprintf(stderr, "append failed\n");
				exit(1);
			}
		if (!sim_run_ticks(s, 1)) {
			fprintf(stderr, "%s\n", sim_error(s));
			exit(1);
		}
	}
	double dt = now_s() - t0;
	uint64_t copied = sim_net_entry_bytes(s);
	for (uint32_t i = 0; i < n; i++)
		copied += opx_storage_mem_bytes_copied(sim_storage(s, i));
	copied += (uint64_t)100 * n * total; /* batch copies: leader + followers */
	printf("%u nodes, batch %-4u: %10.0f decided entries/s  (%llu entries in %.2f s), "
	       "%.0f bytes copied per entry, %llu messages\n",
	       n, batch, (double)total / dt, (unsigned long long)total, dt,
	       (double)copied / (double)total, (unsigned long long)sim_delivered(s));
	sim_destroy(&s);
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	run(3, 1, total / 10, 200);
	run(3, 100, total, 2000);
	run(5, 1, total / 10, 200);
	run(5, 100, total, 2000);
	return 0;
}
