/*
 * omnifs-sim: soak runner for the consensus core. Runs randomised fault
 * schedules of the deterministic simulator (tests/lib/sim_sched.c, the same
 * ones the 'sim' test suite runs) with fresh seeds, for a number of
 * schedules or seconds, and prints every failing seed so it can be replayed:
 *
 *   omnifs-sim --schedules 100000        # or --seconds 3600
 *   omnifs-sim --seed 12345              # replay one seed, dump the cluster
 *   omnifs-sim --base 777 --schedules 10 # seeds base, base+1, ...
 *   omnifs-sim --rocksdb 20              # every 20th seed on RocksDB logs
 *                                        # (default 100; 0: never)
 *
 * Exit status: 0 if every schedule passed, 1 otherwise, 2 on bad usage.
 * It is a tool, not a test: build/release is the place to run it.
 */
#include "sim_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: omnifs-sim [--schedules N | --seconds S] [--base SEED] "
			"[--chaos TICKS] [--rocksdb ONE_IN] | --seed SEED\n");
}

int main(int argc, char **argv)
{
	uint64_t schedules = 0, seconds = 0, base = 0, seed = 0;
	uint32_t chaos = 0, rocks_one_in = 100;
	bool replay = false, have_base = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		uint64_t v = strtoull(argv[++i], NULL, 0);
		if (!strcmp(a, "--schedules"))
			schedules = v;
		else if (!strcmp(a, "--seconds"))
			seconds = v;
		else if (!strcmp(a, "--base")) {
			base = v;
			have_base = true;
		} else if (!strcmp(a, "--chaos"))
			chaos = (uint32_t)v;
		else if (!strcmp(a, "--rocksdb"))
			rocks_one_in = (uint32_t)v;
		else if (!strcmp(a, "--seed")) {
			seed = v;
			replay = true;
		} else {
			usage();
			return 2;
		}
	}
	struct sim_sched_result r;
	struct sim_sched_opts so = {.chaos_ticks = chaos, .rocksdb_one_in = rocks_one_in};
	if (replay) {
		so.log = stdout;
		sim_sched_run_opts(seed, &so, &r);
		printf("seed %llu: %s%s (ticks %llu, appended %llu, decided %llu, fail-stops "
		       "%llu, failed allocations %llu, configurations %u, messages %llu%s)\n",
		       (unsigned long long)seed, r.ok ? "ok" : "FAILED: ", r.ok ? "" : r.err,
		       (unsigned long long)r.ticks, (unsigned long long)r.appended,
		       (unsigned long long)r.decided, (unsigned long long)r.fail_stops,
		       (unsigned long long)r.alloc_failures, r.configs,
		       (unsigned long long)r.delivered, r.rocksdb ? ", RocksDB" : "");
		return r.ok ? 0 : 1;
	}
	if (!schedules && !seconds)
		schedules = 1000;
	if (!have_base)
		base = ((uint64_t)time(NULL) << 20) ^ (uint64_t)clock();
	printf("omnifs-sim: seeds from %llu, %s %llu\n", (unsigned long long)base,
	       schedules ? "schedules" : "seconds",
	       (unsigned long long)(schedules ? schedules : seconds));
	fflush(stdout);
	double start = now_s(), last = start;
	uint64_t n = 0, failed = 0, decided = 0, delivered = 0, allocs = 0, on_rocks = 0;
	uint64_t reconfigured = 0, configs = 0;
	for (;;) {
		if (schedules && n >= schedules)
			break;
		if (seconds && now_s() - start >= (double)seconds)
			break;
		uint64_t s = base + n;
		sim_sched_run_opts(s, &so, &r);
		n++;
		decided += r.decided;
		delivered += r.delivered;
		allocs += r.alloc_failures;
		on_rocks += r.rocksdb;
		reconfigured += r.configs > 1;
		configs += r.configs - 1;
		if (!r.ok) {
			failed++;
			printf("FAILED seed %llu: %s\n", (unsigned long long)s, r.err);
			fflush(stdout);
		}
		if (now_s() - last >= 10) {
			last = now_s();
			printf("... %llu schedules, %llu failed, %.0f s\n", (unsigned long long)n,
			       (unsigned long long)failed, last - start);
			fflush(stdout);
		}
	}
	double took = now_s() - start;
	printf("omnifs-sim: %llu schedules, %llu violations, %.1f s wall, %.0f schedules/s, "
	       "%llu entries decided, %llu messages delivered, %llu failed allocations, "
	       "%llu schedules reconfigured (%llu stop-signs decided), %llu on RocksDB\n",
	       (unsigned long long)n, (unsigned long long)failed, took, (double)n / took,
	       (unsigned long long)decided, (unsigned long long)delivered,
	       (unsigned long long)allocs, (unsigned long long)reconfigured,
	       (unsigned long long)configs, (unsigned long long)on_rocks);
	return failed ? 1 : 0;
}
