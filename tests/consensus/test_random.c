/*
 * Randomised fault schedules (tests/lib/sim_sched.c): a fixed list of seeds
 * plus one fresh seed per run, printed so a failure can be replayed with
 * OMNIFS_SEED=<seed> (which then runs only that seed). OMNIFS_SCHEDULES=n
 * changes how many fixed seeds run (default 250, so that the suite stays
 * within seconds under ASan; the soak runner, tools/omnifs-sim, runs
 * hundreds of thousands). A few fixed seeds run on RocksDB logs.
 */
#include "test.h"
#include "sim_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void run_seed_opts(uint64_t seed, bool rocksdb, uint64_t *failures)
{
	struct sim_sched_result r;
	struct sim_sched_opts so = {.rocksdb_one_in = rocksdb ? 1 : 0};
	sim_sched_run_opts(seed, &so, &r);
	if (!r.ok) {
		print_message("# FAILED %s\n# replay: OMNIFS_SEED=%llu\n", r.err,
			      (unsigned long long)seed);
		(*failures)++;
	}
}

static void run_seed(uint64_t seed, uint64_t *failures)
{
	run_seed_opts(seed, false, failures);
}

static void test_random_schedules(void **state)
{
	(void)state;
	uint64_t failures = 0;
	const char *env = getenv("OMNIFS_SEED");
	if (env) {
		uint64_t seed = strtoull(env, NULL, 0);
		print_message("# seed %llu (from OMNIFS_SEED)\n", (unsigned long long)seed);
		run_seed(seed, &failures);
		assert_int_equal(failures, 0);
		return;
	}
	uint64_t n = 250;
	if (getenv("OMNIFS_SCHEDULES"))
		n = strtoull(getenv("OMNIFS_SCHEDULES"), NULL, 0);
	/* Seeds that once failed in soak runs (tools/omnifs-sim). A seed
	 * replays its failure only with the schedule generator of its time:
	 * the first four predate 7-node clusters, allocation failures and
	 * stop-signs in the schedules and now draw other schedules. */
	static const uint64_t regressions[] = {
		1883226042800639ull,
		1883226042822585ull, /* crash pending at heal */
		1883226124595447ull,
		1883226124642135ull, /* snapshot above decided */
		2301,	 /* leader kept Prepare after its log sync when memory ran out */
		7006550, /* BLE kept a ballot whose Prepare failed for want of memory */
		9027314, /* a leader flushed its batch for a Prepare it then refused */
	};
	for (size_t i = 0; i < sizeof(regressions) / sizeof(regressions[0]); i++)
		run_seed(regressions[i], &failures);
	for (uint64_t i = 0; i < n; i++)
		run_seed(1000003 * (i + 1), &failures);
	/* RocksDB logs: 5 nodes that reconfigure, 7 nodes */
	static const uint64_t on_rocksdb[] = {5000, 5100};
	for (size_t i = 0; i < sizeof(on_rocksdb) / sizeof(on_rocksdb[0]); i++)
		run_seed_opts(on_rocksdb[i], true, &failures);
	/* one fresh seed per run, printed before it runs */
	uint64_t fresh = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
	print_message("# fresh seed %llu (replay with OMNIFS_SEED=%llu)\n",
		      (unsigned long long)fresh, (unsigned long long)fresh);
	run_seed(fresh, &failures);
	print_message("# %llu schedules, %llu failed\n", (unsigned long long)(n + 1),
		      (unsigned long long)failures);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_schedules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
