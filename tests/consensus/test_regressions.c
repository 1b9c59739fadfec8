/*
 * Deterministic simulator scenarios for faults the reference scenarios do
 * not reach: a failed allocation in the middle of replication, a PrepareReq
 * that reaches a stale leader through a third party, and lost Accepted
 * replies (to a stop-sign, and to the last entries before the cluster goes
 * idle); followers starved of CPU; and the simulator's own move to the next
 * configuration, which the random schedules rely on. Each runs a fixed
 * fault schedule on a fixed seed.
 */
#include "cluster.h"

/* Each node's nth allocation fails, for every n in turn, while batches of
 * proposals are forwarded and replicated one AcceptDecide per entry within
 * one call; whichever allocation it is, no two nodes may decide different
 * entries, and the cluster still decides new entries. */
static void test_regressions_alloc_failure_in_replication(void **state)
{
	(void)state;
	uint64_t hit = 0;
	for (uint64_t nth = 1; nth <= 150; nth++) {
		struct sim *s = new_sim(3, NULL);
		/* no leader yet: every node buffers these; the followers forward
		 * theirs in one message once they follow the leader */
		for (uint32_t i = 0; i < 3; i++) {
			append_n(s, i, 20);
			sim_fail_alloc(s, i, nth);
		}
		wait_leader(s, 30);
		assert_true(sim_run_ticks(s, 20));
		assert_sim_ok(s);
		hit += sim_alloc_failures(s);
		for (uint32_t i = 0; i < 3; i++)
			sim_fail_alloc(s, i, 0);
		/* fresh entries at the leader are decided everywhere */
		int l = wait_leader(s, 30);
		uint64_t want = opx_accepted_idx(sim_core(s, (uint32_t)l)) + 3;
		append_n(s, (uint32_t)l, 3);
		wait_all_decided(s, want, 60);
		assert_sim_ok(s);
		sim_destroy(&s);
	}
	assert_true(hit >= 200); /* most of the 450 armed failures did happen */
}

/*
 * Five nodes; the leader A is cut off and B takes over. A, still leading
 * its old ballot, gets one link back, to a follower F of B. F restarts: its
 * PrepareReq carries B's ballot and reaches A too, which must not answer it
 * by leading above B (F would promise A, which has no quorum, and be lost
 * to B for as long as that lasts).
 */
static bool follows(struct sim *s, void *arg)
{
	const uint32_t *ab = arg; /* node ab[0] follows node ab[1] in Accept */
	struct opx *f = sim_core(s, ab[0]), *l = sim_core(s, ab[1]);
	if (!f || !l)
		return false;
	bool acc;
	opx_current_leader(f, &acc);
	struct opx_ballot pf = opx_promise(f), pl = opx_promise(l);
	return acc && opx_is_leader(l) && opx_ballot_eq(&pf, &pl);
}

static void test_regressions_prepare_req_from_third_party(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	uint32_t a = (uint32_t)wait_leader(s, 20);
	sim_isolate(s, a);
	run_until(s, leader_not, &a, 60);
	uint32_t b = (uint32_t)sim_leader(s);
	uint32_t f = 0;
	while (f == a || f == b)
		f++;
	uint32_t fb[2] = {f, b};
	run_until(s, follows, fb, 40);
	assert_true(opx_is_leader(sim_core(s, a))); /* the stale leader */
	sim_connect(s, a, f, true);
	assert_true(sim_run_ticks(s, 5));
	sim_crash(s, f, false);
	assert_int_equal(sim_restart(s, f), 0);
	assert_true(sim_run_ticks(s, 40));
	assert_true(follows(s, fb));
	uint64_t want = opx_accepted_idx(sim_core(s, b)) + 2;
	append_n(s, b, 2);
	struct node_idx ni = {f, want};
	run_until(s, node_decided, &ni, 20);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* Drops the first Accepted each follower sends that reports `idx`. */
struct drop_accepted {
	uint64_t idx;
	opx_node_id leader;
	bool dropped[OPX_MAX_NODES + 1];
	uint32_t n_dropped;
};

static bool drop_first_accepted(void *ctx, const struct opx_msg *m)
{
	struct drop_accepted *d = ctx;
	if (m->type != OPX_MSG_ACCEPTED || m->to != d->leader ||
	    m->u.accepted.accepted_idx != d->idx || m->from > OPX_MAX_NODES || d->dropped[m->from])
		return true;
	d->dropped[m->from] = true;
	d->n_dropped++;
	return false;
}

static bool all_reconfigured(struct sim *s, void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < sim_n(s); i++)
		if (!sim_core(s, i) || !opx_is_reconfigured(sim_core(s, i)))
			return false;
	return true;
}

/* The Accepted for a stop-sign is lost: the leader's resent AcceptStopSign
 * must get an answer, so the stop-sign is decided. */
static void test_regressions_stopsign_accepted_lost(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 2);
	wait_all_decided(s, 2, 20);
	struct drop_accepted d = {.idx = 3, .leader = sim_id(s, (uint32_t)l)};
	sim_set_filter(s, drop_first_accepted, &d);
	struct opx_cluster_config nc = {.config_id = 2, .n_nodes = 3, .nodes = {1, 2, 3}};
	assert_int_equal(sim_reconfigure(s, (uint32_t)l, &nc, NULL, 0), 0);
	run_until(s, all_reconfigured, NULL, 500);
	assert_int_equal(d.n_dropped, 2);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* The Accepteds for the last entry are lost and nothing is proposed after
 * it: the entry must still be decided (the leader's resends must get the
 * followers to say again what they accepted). */
static void test_regressions_idle_accepted_lost(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 2);
	wait_all_decided(s, 2, 20);
	struct drop_accepted d = {.idx = 3, .leader = sim_id(s, (uint32_t)l)};
	sim_set_filter(s, drop_first_accepted, &d);
	append_n(s, (uint32_t)l, 1);
	wait_all_decided(s, 3, 100);
	assert_int_equal(d.n_dropped, 2);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* The simulator's part of a reconfiguration (follow_reconfig), which the
 * random schedules rely on: the nodes that decide the stop-sign move to the
 * next configuration, and one that was down when it was decided, knowing
 * nothing of it, moves there too when the new configuration reaches it. */
static void follow_reconfig(struct sim_opts *o)
{
	o->follow_reconfig = true;
}

static bool in_config_2(struct sim *s, void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < sim_n(s); i++)
		if (sim_up(s, i) && sim_config_id(s, i) != 2)
			return false;
	int l = sim_leader(s);
	return l >= 0 && sim_config_id(s, (uint32_t)l) == 2;
}

static void test_regressions_next_configuration(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, follow_reconfig);
	uint32_t l = (uint32_t)wait_leader(s, 20);
	append_n(s, l, 5);
	wait_all_decided(s, 5, 20);
	uint32_t f = l == 0 ? 1 : 0;
	sim_crash(s, f, false);
	struct opx_cluster_config nc = *sim_cluster(s, l);
	nc.config_id = 2;
	assert_int_equal(sim_reconfigure(s, l, &nc, (const uint8_t *)"next", 4), 0);
	run_until(s, in_config_2, NULL, 60);
	assert_int_equal(sim_config_id(s, f), 1);
	assert_int_equal(sim_restart(s, f), 0);
	run_until(s, in_config_2, NULL, 60);
	/* the stop-sign is global index 5; configuration 2 starts at 6 */
	l = (uint32_t)wait_leader(s, 20);
	assert_int_equal(sim_base(s, l), 6);
	append_n(s, l, 3);
	wait_all_decided(s, 9, 40);
	assert_int_equal(sim_configs(s), 2);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/*
 * Followers starved of CPU: their turns come late by up to several election
 * timeouts, often both at once, while the network is fine. Such nodes are
 * slow, not gone: the leader must keep its leadership (and stay
 * quorum-connected, so writes go on), and nobody may take over. The leader
 * appends an entry every tick; they must all be decided once the followers
 * get the CPU back.
 */
#define STARVED_ELECTION 5
static void tune_starved(struct sim_opts *o)
{
	o->election_ticks = STARVED_ELECTION;
	o->resend_ticks = STARVED_ELECTION;
}

static void test_regressions_starved_followers_keep_leader(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, tune_starved);
	uint32_t l = (uint32_t)wait_leader(s, 20 * STARVED_ELECTION);
	struct opx_ballot led = opx_promise(sim_core(s, l));
	uint64_t stalled_until[3] = {0};
	uint64_t no_qc = 0, longest_no_qc = 0; /* ticks the leader was not quorum-connected */
	for (uint64_t t = 0; t < 400 * STARVED_ELECTION; t++) {
		uint64_t now = sim_now_ticks(s);
		for (uint32_t i = 0; i < 3; i++) {
			/* a follower gets a turn or two, then waits for the CPU
			 * up to four election timeouts */
			if (i == l || now < stalled_until[i] + 1 + sim_rand(s) % 2)
				continue;
			uint64_t ticks = 1 + sim_rand(s) % (4 * STARVED_ELECTION);
			sim_stall(s, i, ticks);
			stalled_until[i] = now + ticks;
		}
		sim_append(s, l, 16);
		assert_true(sim_run_ticks(s, 1));
		no_qc = opx_is_quorum_connected(sim_core(s, l)) ? 0 : no_qc + 1;
		if (no_qc > longest_no_qc)
			longest_no_qc = no_qc;
		for (uint32_t i = 0; i < 3; i++) {
			struct opx_ballot p = opx_promise(sim_core(s, i));
			if (!opx_ballot_eq(&p, &led) || sim_leader(s) != (int)l) {
				sim_dump(s, stdout);
				fail_msg(
					"tick %llu: node %u promised (%llu, n%llu) and the leader is %d, "
					"was node %u with (%llu, n%llu)",
					(unsigned long long)now, i, (unsigned long long)p.n,
					(unsigned long long)p.pid, sim_leader(s), l,
					(unsigned long long)led.n, (unsigned long long)led.pid);
			}
		}
	}
	/* Until it has seen how late they answer, the leader may miss its
	 * quorum for a while, never for the three rounds after which the
	 * replica fails writes with EROFS. */
	print_message("# leader without a quorum for at most %llu ticks in a row\n",
		      (unsigned long long)longest_no_qc);
	assert_true(longest_no_qc < 3 * STARVED_ELECTION);
	wait_all_decided(s, sim_appended(s), 20 * STARVED_ELECTION);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/*
 * The whole machine is loaded: both followers' turns just came four
 * election timeouts late, then the leader's stop for three. The followers,
 * which cannot keep time themselves, must not take the leader's silence
 * for its death (ble.c, opx_turn_late).
 */
static void test_regressions_late_followers_wait_out_leader_stall(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, tune_starved);
	uint32_t l = (uint32_t)wait_leader(s, 20 * STARVED_ELECTION);
	struct opx_ballot led = opx_promise(sim_core(s, l));
	for (uint32_t i = 0; i < 3; i++)
		if (i != l)
			sim_stall(s, i, 4 * STARVED_ELECTION);
	assert_true(sim_run_ticks(s, 4 * STARVED_ELECTION + 1));
	sim_stall(s, l, 3 * STARVED_ELECTION);
	for (uint32_t t = 0; t < 10 * STARVED_ELECTION; t++) {
		assert_true(sim_run_ticks(s, 1));
		for (uint32_t i = 0; i < 3; i++) {
			struct opx_ballot p = opx_promise(sim_core(s, i));
			if (!opx_ballot_eq(&p, &led)) {
				sim_dump(s, stdout);
				fail_msg("tick %u after the leader's stall began: node %u promised "
					 "(%llu, n%llu)",
					 t, i, (unsigned long long)p.n, (unsigned long long)p.pid);
			}
		}
	}
	append_n(s, l, 1);
	wait_all_decided(s, sim_appended(s), 5 * STARVED_ELECTION);
	assert_sim_ok(s);
	sim_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regressions_alloc_failure_in_replication),
		cmocka_unit_test(test_regressions_prepare_req_from_third_party),
		cmocka_unit_test(test_regressions_stopsign_accepted_lost),
		cmocka_unit_test(test_regressions_idle_accepted_lost),
		cmocka_unit_test(test_regressions_next_configuration),
		cmocka_unit_test(test_regressions_starved_followers_keep_leader),
		cmocka_unit_test(test_regressions_late_followers_wait_out_leader_stall),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
