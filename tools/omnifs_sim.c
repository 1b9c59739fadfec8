/*
 * omnifs-sim: soak runner for the consensus core. Runs randomised fault
 * schedules of the deterministic simulator (tests/lib/sim_sched.c, the same
 * ones the 'sim' test suite runs) with fresh seeds, for a number of
 * schedules or seconds, and prints every failing seed so it can be replayed:
 *
 *   omnifs-sim --schedules 100000        # or --seconds 3600
 *   omnifs-sim --seed 12345              # replay one seed, dump the cluster
 *   omnifs-sim --base 777 --schedules 10 # seeds base, base+1, ...
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
			"[--chaos TICKS] | --seed SEED\n");
}

int main(int argc, char **argv)
{
	uint64_t schedules = 0, seconds = 0, base = 0, seed = 0;
	uint32_t chaos = 0;
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
		else if (!strcmp(a, "--seed")) {
			seed = v;
			replay = true;
		} else {
			usage();
			return 2;
		}
	}
	struct sim_sched_result r;
	if (replay) {
		sim_sched_run_log(seed, chaos, &r, stdout);
		printf("seed %llu: %s%s (ticks %llu, appended %llu, decided %llu, fail-stops "
		       "%llu, messages %llu)\n",
		       (unsigned long long)seed, r.ok ? "ok" : "FAILED: ", r.ok ? "" : r.err,
		       (unsigned long long)r.ticks, (unsigned long long)r.appended,
		       (unsigned long long)r.decided, (unsigned long long)r.fail_stops,
		       (unsigned long long)r.delivered);
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
	uint64_t n = 0, failed = 0, decided = 0, delivered = 0;
	for (;;) {
		if (schedules && n >= schedules)
			break;
		if (seconds && now_s() - start >= (double)seconds)
			break;
		uint64_t s = base + n;
		sim_sched_run(s, chaos, &r);
		n++;
		decided += r.decided;
		delivered += r.delivered;
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
	printf("omnifs-sim: %llu schedules, %llu failed, %.1f s wall, %.0f schedules/s, "
	       "%llu entries decided, %llu messages delivered\n",
	       (unsigned long long)n, (unsigned long long)failed, took, (double)n / took,
	       (unsigned long long)decided, (unsigned long long)delivered);
	return failed ? 1 : 0;
}
