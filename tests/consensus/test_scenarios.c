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

/* ble_test: 10 nodes; five times the leader is killed and a different one
 * takes over. */
static void test_scenario_ble_leader_changes(void **state)
{
	(void)state;
	struct sim *s = new_sim(10, NULL);
	int prev = -1;
	for (int round = 0; round < 5; round++) {
		run_until(s, leader_not, &(uint32_t){(uint32_t)prev}, 30);
		int l = sim_leader(s);
		assert_int_not_equal(l, prev);
		assert_true(sim_up(s, (uint32_t)l));
		if (round == 4) {
			/* 6 nodes left: the last leader still decides */
			append_n(s, (uint32_t)l, 5);
			wait_all_decided(s, 5, 30);
			break;
		}
		sim_crash(s, (uint32_t)l, false);
		prev = l;
	}
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void tune_batch(struct sim_opts *o)
{
	o->n = 3;
	o->batch_size = 31;
	o->flush_ticks = 100000; /* only full batches move */
}

/* batching_test: batch 31, 310 values, one per tick at the leader; every
 * node's decided index only ever grows in steps of at least 31. */
static void test_scenario_batching(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, tune_batch);
	int l = wait_leader(s, 20);
	uint64_t last[3] = {0};
	uint32_t sent = 0;
	for (uint64_t t = 0; t < 2000; t++) {
		if (sent < 310) {
			assert_int_equal(sim_append(s, (uint32_t)l, 16), 0);
			sent++;
		}
		assert_true(sim_run_ticks(s, 1));
		for (uint32_t i = 0; i < 3; i++) {
			uint64_t d = opx_decided_idx(sim_core(s, i));
			if (d != last[i]) {
				assert_true(d - last[i] >= 31);
				last[i] = d;
			}
		}
		if (sim_all_decided(s, 310))
			break;
	}
	assert_true(sim_all_decided(s, 310));
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void tune_flex(struct sim_opts *o)
{
	o->read_quorum = 6;
	o->write_quorum = 3;
}

static uint32_t other_up(struct sim *s, uint32_t not1, uint32_t not2)
{
	for (uint32_t i = 0; i < sim_n(s); i++)
		if (i != not1 && i != not2 && sim_up(s, i))
			return i;
	fail_msg("no node left");
	return 0;
}

/* flexible quorum (R, W) = (6, 3), 8 nodes: the leader and one follower
 * die (N - R = 2); a new leader is elected and the log continues. */
static void test_scenario_flexible_prepare_phase(void **state)
{
	(void)state;
	struct sim *s = new_sim(8, tune_flex);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 50);
	wait_all_decided(s, 50, 50);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	sim_crash(s, (uint32_t)l, false);
	sim_crash(s, f, false);
	assert_true(sim_run_ticks(s, 10));
	uint32_t p = other_up(s, (uint32_t)l, f);
	append_n(s, p, 50);
	wait_all_decided(s, 100, 100);
	assert_int_equal(decided_items(s, p, 0), 100);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* ... and a running leader survives N - W = 5 follower failures. */
static void test_scenario_flexible_accept_phase(void **state)
{
	(void)state;
	struct sim *s = new_sim(8, tune_flex);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 50);
	wait_all_decided(s, 50, 50);
	for (int k = 0; k < 5; k++)
		sim_crash(s, other_up(s, (uint32_t)l, (uint32_t)l), false);
	append_n(s, (uint32_t)l, 50);
	wait_all_decided(s, 100, 100);
	assert_int_equal(sim_leader(s), l);
	assert_int_equal(decided_items(s, (uint32_t)l, 0), 100);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* forward_proposal_test: 7 nodes, an entry appended at a non-leader. */
static void test_scenario_forwarding(void **state)
{
	(void)state;
	struct sim *s = new_sim(7, NULL);
	int l = wait_leader(s, 20);
	assert_true(sim_run_ticks(s, 5)); /* followers know their leader */
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, f, 1);
	wait_all_decided(s, 1, 20);
	assert_int_equal(decided_items(s, f, 0), 1);
	sim_destroy(&s);
}

static struct opx_cluster_config next_cfg(uint32_t id, uint32_t n, const opx_node_id *nodes)
{
	struct opx_cluster_config c;
	memset(&c, 0, sizeof(c));
	c.config_id = id;
	c.n_nodes = n;
	memcpy(c.nodes, nodes, n * sizeof(*nodes));
	return c;
}

/* reconfig_test: 5 nodes, 2000 values, then a stop-sign to {5, 6, 7} with
 * metadata [255], proposed at node 1 (forwarded if it does not lead). */
static void test_scenario_reconfig(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	int l = wait_leader(s, 20);
	assert_true(sim_run_ticks(s, 5));
	append_n(s, (uint32_t)l, 2000);
	wait_all_decided(s, 2000, 200);
	struct opx_cluster_config nc = next_cfg(2, 3, (opx_node_id[]){5, 6, 7});
	uint8_t md = 255;
	assert_int_equal(sim_reconfigure(s, 0, &nc, &md, 1), 0);
	wait_all_decided(s, 2001, 100);
	struct opx_read r = {0};
	assert_int_equal(opx_read_decided_suffix(sim_core(s, 0), 2000, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, OPX_ITEM_STOPSIGN);
	assert_true(r.items[0].ss_decided);
	assert_int_equal(r.items[0].ss->next.config_id, 2);
	assert_int_equal(r.items[0].ss->next.nodes[2], 7);
	assert_int_equal(r.items[0].ss->metadata_len, 1);
	assert_int_equal(r.items[0].ss->metadata[0], 255);
	opx_read_free(&r);
	uint32_t reconf = 0;
	for (uint32_t i = 0; i < 5; i++)
		if (opx_is_reconfigured(sim_core(s, i)))
			reconf++;
	assert_true(reconf >= 3);
	assert_int_equal(sim_append(s, 0, 16), -ESHUTDOWN);
	assert_int_equal(sim_reconfigure(s, 0, &nc, NULL, 0), -EALREADY);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* Records the sequence numbers of accept-phase messages to one node. */
struct seq_log {
	opx_node_id from, to;
	struct opx_seq seqs[64];
	enum opx_msg_type types[64];
	uint32_t n;
};

static bool log_seq(void *ctx, const struct opx_msg *m)
{
	struct seq_log *l = ctx;
	if (m->from != l->from || m->to != l->to || l->n == 64)
		return true;
	const struct opx_seq *q = NULL;
	if (m->type == OPX_MSG_ACCEPT_SYNC)
		q = &m->u.accept_sync.seq;
	else if (m->type == OPX_MSG_ACCEPT_DECIDE)
		q = &m->u.accept_decide.seq;
	else if (m->type == OPX_MSG_DECIDE)
		q = &m->u.decide.seq;
	if (q) {
		l->types[l->n] = m->type;
		l->seqs[l->n++] = *q;
	}
	return true;
}

/* increasing_accept_seq_num_test: the leader numbers AcceptSync,
 * AcceptDecide and Decide to a follower (s, 1), (s, 2), ... without gaps;
 * five single appends get five consecutive numbers. */
static void test_scenario_increasing_seq_nums(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	struct seq_log lg = {.from = sim_id(s, (uint32_t)l), .to = sim_id(s, f)};
	/* a fresh session for f: it asks for a re-sync */
	sim_set_filter(s, log_seq, &lg);
	sim_reconnected(s, f, sim_id(s, (uint32_t)l));
	assert_true(sim_run_ticks(s, 2));
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	uint32_t before = lg.n;
	for (int k = 0; k < 5; k++)
		append_n(s, (uint32_t)l, 1); /* drained at once by the simulator */
	assert_int_equal(lg.n, before + 5);
	/* from the last (re-)sync on, numbers are consecutive */
	uint32_t first = lg.n;
	while (first > 0 && lg.types[first - 1] != OPX_MSG_ACCEPT_SYNC)
		first--;
	assert_true(first > 0);
	first--;
	uint64_t session = lg.seqs[first].session;
	assert_int_equal(lg.seqs[first].counter, 1);
	for (uint32_t i = first + 1; i < lg.n; i++) {
		if (lg.types[i] == OPX_MSG_ACCEPT_SYNC)
			fail_msg("unexpected re-sync");
		assert_int_equal(lg.seqs[i].session, session);
		/* resends of a Decide may repeat nothing: strictly consecutive */
		assert_int_equal(lg.seqs[i].counter, lg.seqs[i - 1].counter + 1);
	}
	for (uint32_t i = before; i < before + 5; i++)
		assert_int_equal(lg.types[i], OPX_MSG_ACCEPT_DECIDE);
	sim_set_filter(s, NULL, NULL);
	sim_destroy(&s);
}

/* reconnect_after_dropped_accepts_test */
static void test_scenario_reconnect_dropped_accepts(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	sim_cut(s, (uint32_t)l, f, false);
	append_n(s, (uint32_t)l, 5);
	struct node_idx ni = {(uint32_t)l, 10};
	run_until(s, node_decided, &ni, 20);
	assert_int_equal(opx_decided_idx(sim_core(s, f)), 5);
	sim_heal(s);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 15, 40);
	assert_int_equal(decided_items(s, f, 0), 15);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* reconnect_after_dropped_prepare_test: everything to F is dropped while the
 * leader restarts and a new leader runs its Prepare phase. */
static void test_scenario_reconnect_dropped_prepare(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	for (uint32_t i = 0; i < 5; i++)
		if (i != f)
			sim_cut(s, i, f, false);
	sim_crash(s, (uint32_t)l, false);
	assert_true(sim_run_ticks(s, 10));
	assert_int_equal(sim_restart(s, (uint32_t)l), 0);
	int l2 = wait_leader(s, 30);
	append_n(s, (uint32_t)l2, 5);
	struct node_idx ni = {(uint32_t)l2, 10};
	run_until(s, node_decided, &ni, 30);
	sim_heal(s);
	wait_all_decided(s, 10, 40);
	assert_int_equal(decided_items(s, f, 0), 10);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* reconnect_after_dropped_promise_test: F's outgoing links are down while a
 * new leader prepares; its (cached) Promise is resent afterwards. */
static void test_scenario_reconnect_dropped_promise(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	for (uint32_t i = 0; i < 5; i++)
		if (i != f)
			sim_cut(s, f, i, false);
	sim_crash(s, (uint32_t)l, false);
	int l2 = wait_leader(s, 30);
	append_n(s, (uint32_t)l2, 5);
	struct node_idx ni = {(uint32_t)l2, 10};
	run_until(s, node_decided, &ni, 30);
	assert_true(opx_decided_idx(sim_core(s, f)) < 10);
	sim_heal(s);
	wait_all_decided(s, 10, 40);
	assert_int_equal(decided_items(s, f, 0), 10);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* reconnect_after_dropped_preparereq_test */
static void test_scenario_reconnect_dropped_preparereq(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	sim_cut(s, (uint32_t)l, f, false);
	append_n(s, (uint32_t)l, 5);
	assert_true(sim_run_ticks(s, 5));
	sim_connect(s, (uint32_t)l, f, false);
	sim_cut(s, f, (uint32_t)l, false); /* F's PrepareReq is lost */
	append_n(s, (uint32_t)l, 5);
	assert_true(sim_run_ticks(s, 10));
	assert_true(opx_decided_idx(sim_core(s, f)) < 15);
	sim_heal(s);
	wait_all_decided(s, 15, 40);
	assert_int_equal(decided_items(s, f, 0), 15);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* resync_after_dropped_acceptstopsign_test: F missed the AcceptStopSign;
 * forced to lead, it learns the stop-sign from the promises and decides it. */
static void test_scenario_resync_dropped_acceptstopsign(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	assert_true(sim_run_ticks(s, 3));
	sim_cut(s, (uint32_t)l, f, false);
	struct opx_cluster_config nc = next_cfg(2, 2, (opx_node_id[]){1, 2});
	assert_int_equal(sim_reconfigure(s, (uint32_t)l, &nc, NULL, 0), 0);
	struct node_idx ni = {(uint32_t)l, 1};
	run_until(s, node_decided, &ni, 20);
	assert_null(opx_is_reconfigured(sim_core(s, f)));
	assert_int_equal(sim_try_become_leader(s, f), 0);
	ni.node = f;
	run_until(s, node_decided, &ni, 30);
	struct opx_read r = {0};
	assert_int_equal(opx_read_decided_suffix(sim_core(s, f), 0, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, OPX_ITEM_STOPSIGN);
	assert_int_equal(r.items[0].ss->next.config_id, 2);
	opx_read_free(&r);
	assert_non_null(opx_is_reconfigured(sim_core(s, f)));
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* reconnect_after_dropped_acceptstopsign_test: no quorum, the stop-sign
 * cannot be decided; the resent AcceptStopSign still reaches F. */
static void test_scenario_reconnect_dropped_acceptstopsign(void **state)
{
	(void)state;
	struct sim *s = new_sim(5, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	assert_true(sim_run_ticks(s, 3));
	for (int k = 0; k < 3; k++)
		sim_crash(s, other_up(s, (uint32_t)l, f), false);
	sim_cut(s, (uint32_t)l, f, false);
	struct opx_cluster_config nc = next_cfg(2, 2, (opx_node_id[]){1, 2});
	uint8_t md[3] = {1, 2, 3};
	assert_int_equal(sim_reconfigure(s, (uint32_t)l, &nc, md, 3), 0);
	assert_true(sim_run_ticks(s, 5));
	assert_int_equal(opx_accepted_idx(sim_core(s, f)), 0);
	sim_heal(s);
	assert_true(sim_run_ticks(s, 20));
	struct opx_read r = {0};
	assert_int_equal(opx_read_entries(sim_core(s, f), 0, 1, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, OPX_ITEM_STOPSIGN);
	assert_false(r.items[0].ss_decided);
	assert_int_equal(r.items[0].ss->metadata_len, 3);
	assert_int_equal(r.items[0].ss->metadata[2], 3);
	opx_read_free(&r);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* reconnect_after_dropped_decidestopsign_test */
static void test_scenario_reconnect_dropped_decidestopsign(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	assert_true(sim_run_ticks(s, 3));
	struct opx_cluster_config nc = next_cfg(2, 2, (opx_node_id[]){1, 2});
	assert_int_equal(sim_reconfigure(s, (uint32_t)l, &nc, NULL, 0), 0);
	/* F accepts the stop-sign, then hears nothing more */
	struct node_idx ni = {f, 1};
	while (opx_accepted_idx(sim_core(s, f)) < 1)
		assert_true(sim_step(s));
	for (uint32_t i = 0; i < 3; i++)
		if (i != f)
			sim_cut(s, i, f, false);
	ni.node = (uint32_t)l;
	run_until(s, node_decided, &ni, 20);
	assert_null(opx_is_reconfigured(sim_core(s, f)));
	sim_heal(s);
	ni.node = f;
	run_until(s, node_decided, &ni, 30);
	assert_non_null(opx_is_reconfigured(sim_core(s, f)));
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void tune_recovery(struct sim_opts *o)
{
	o->manual_sync = true;
}

/* recovery_test, the four cases, for real: 100 values; after 50 a node
 * crashes (losing anything not synced) and is rebuilt on its storage; the
 * other 50 are proposed at the (new) leader or a follower. */
static void recovery_case(bool kill_leader, bool propose_at_leader)
{
	struct sim *s = new_sim(3, tune_recovery);
	int l = wait_leader(s, 20);
	assert_true(sim_run_ticks(s, 3));
	append_n(s, (uint32_t)l, 50);
	wait_all_decided(s, 50, 30);
	/* a decided index is stored with the next write, or at the next tick */
	assert_true(sim_run_ticks(s, 1));
	uint32_t victim = kill_leader ? (uint32_t)l : other_up(s, (uint32_t)l, (uint32_t)l);
	sim_crash(s, victim, true);
	assert_true(sim_run_ticks(s, 5));
	assert_int_equal(sim_restart(s, victim), 0);
	/* the restarted node re-reads its decided prefix from storage */
	assert_true(opx_decided_idx(sim_core(s, victim)) >= 50);
	l = wait_leader(s, 30);
	assert_true(sim_run_ticks(s, 5));
	uint32_t at = propose_at_leader ? (uint32_t)l : other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, at, 50);
	wait_all_decided(s, 100, 60);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(decided_items(s, i, 0), 100);
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void test_scenario_recovery_leader_fail_follower_propose(void **state)
{
	(void)state;
	recovery_case(true, false);
}

static void test_scenario_recovery_leader_fail_leader_propose(void **state)
{
	(void)state;
	recovery_case(true, true);
}

static void test_scenario_recovery_follower_fail_leader_propose(void **state)
{
	(void)state;
	recovery_case(false, true);
}

static void test_scenario_recovery_follower_fail_follower_propose(void **state)
{
	(void)state;
	recovery_case(false, false);
}

static void tune_snap(struct sim_opts *o)
{
	o->snapshots = true;
}

/* Every node: [0, k) reads as one compacted item, the rest as Decided. */
static void check_compacted(struct sim *s, uint64_t k, uint64_t total, enum opx_item_kind kind)
{
	for (uint32_t i = 0; i < sim_n(s); i++) {
		struct opx *px = sim_core(s, i);
		struct opx_read r = {0};
		assert_int_equal(opx_compacted_idx(px), k);
		assert_int_equal(opx_read_entries(px, k - 1, k, &r), 0);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.items[0].kind, kind);
		assert_int_equal(r.items[0].compacted_idx, k);
		if (kind == OPX_ITEM_SNAPSHOTTED) {
			uint64_t cnt;
			memcpy(&cnt, r.items[0].snapshot, 8);
			assert_int_equal(cnt, k);
		}
		assert_int_equal(opx_read_entries(px, k, k + 1, &r), 0);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.items[0].kind, OPX_ITEM_DECIDED);
		assert_int_equal(opx_read_decided_suffix(px, 0, &r), 0);
		assert_int_equal(r.n, total - k + 1);
		opx_read_free(&r);
	}
}

static void compaction_case(bool snapshot, bool twice)
{
	struct sim *s = new_sim(3, snapshot ? tune_snap : NULL);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 2000);
	wait_all_decided(s, 2000, 200);
	assert_true(sim_run_ticks(s, 5)); /* the leader hears every Accepted */
	if (snapshot)
		assert_int_equal(sim_snapshot(s, (uint32_t)l, true, 1000, false), 0);
	else
		assert_int_equal(sim_trim(s, (uint32_t)l, true, 1000), 0);
	assert_true(sim_run_ticks(s, 5));
	check_compacted(s, 1000, 2000, snapshot ? OPX_ITEM_SNAPSHOTTED : OPX_ITEM_TRIMMED);
	if (twice) {
		if (snapshot)
			assert_int_equal(sim_snapshot(s, (uint32_t)l, true, 1010, false), 0);
		else
			assert_int_equal(sim_trim(s, (uint32_t)l, true, 1010), 0);
		assert_true(sim_run_ticks(s, 5));
		check_compacted(s, 1010, 2000, snapshot ? OPX_ITEM_SNAPSHOTTED : OPX_ITEM_TRIMMED);
	}
	/* a follower cannot trim; nobody compacts undecided entries */
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	assert_int_equal(opx_trim(sim_core(s, f), true, 1500), -EPERM);
	if (snapshot)
		assert_int_equal(sim_snapshot(s, (uint32_t)l, true, 2001, false), -ERANGE);
	else
		assert_int_equal(sim_snapshot(s, (uint32_t)l, true, 1500, false), -ENOTSUP);
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void test_scenario_snapshot(void **state)
{
	(void)state;
	compaction_case(true, false);
}

static void test_scenario_double_snapshot(void **state)
{
	(void)state;
	compaction_case(true, true);
}

static void test_scenario_trim(void **state)
{
	(void)state;
	compaction_case(false, false);
}

static void test_scenario_double_trim(void **state)
{
	(void)state;
	compaction_case(false, true);
}

/* trim with non-contiguous ids: the minimum is over members, not pid slots */
static void tune_sparse(struct sim_opts *o)
{
	o->ids[0] = 7;
	o->ids[1] = 100;
	o->ids[2] = 3;
}

static void test_scenario_trim_sparse_ids(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, tune_sparse);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 20);
	wait_all_decided(s, 20, 30);
	assert_true(sim_run_ticks(s, 3));
	assert_int_equal(sim_trim(s, (uint32_t)l, false, 0), 0);
	assert_true(sim_run_ticks(s, 3));
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(opx_compacted_idx(sim_core(s, i)), 20);
	sim_destroy(&s);
}

/*
 * sync tests: a follower F that fell behind (and compacted or holds
 * undecided entries of an old round) is brought up to date by the leader
 * L, through a snapshot when L compacted what F lacks. F's decided log must
 * equal L's (the simulator compares every decided index and snapshot).
 */
static void sync_case(bool leader_snapshots, bool follower_snapshots, bool stopsign)
{
	struct sim *s = new_sim(3, tune_snap);
	int l = wait_leader(s, 20);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	if (follower_snapshots)
		assert_int_equal(sim_snapshot(s, f, true, 3, true), 0);
	sim_isolate(s, f);
	/* F appends undecided entries of its own; they must vanish */
	append_n(s, f, 3);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 0, 1);
	struct node_idx ni = {(uint32_t)l, 10};
	run_until(s, node_decided, &ni, 30);
	if (leader_snapshots)
		assert_int_equal(sim_snapshot(s, (uint32_t)l, true, 8, true), 0);
	if (stopsign) {
		struct opx_cluster_config nc = next_cfg(2, 2, (opx_node_id[]){1, 2});
		assert_int_equal(sim_reconfigure(s, (uint32_t)l, &nc, NULL, 0), 0);
		ni.idx = 11;
		run_until(s, node_decided, &ni, 30);
	}
	sim_heal(s);
	uint64_t want = stopsign ? 11 : 10;
	wait_all_decided(s, want, 60);
	assert_int_equal(opx_decided_idx(sim_core(s, f)), want);
	if (stopsign)
		assert_non_null(opx_is_reconfigured(sim_core(s, f)));
	if (leader_snapshots)
		assert_true(opx_compacted_idx(sim_core(s, f)) >= 8);
	assert_sim_ok(s);
	sim_destroy(&s);
}

static void test_scenario_sync_full(void **state)
{
	(void)state;
	sync_case(true, false, true);
}

static void test_scenario_sync_decided_ss(void **state)
{
	(void)state;
	sync_case(false, false, true);
}

static void test_scenario_sync_only_snapshot(void **state)
{
	(void)state;
	sync_case(true, false, false);
}

static void test_scenario_sync_follower_snapshot(void **state)
{
	(void)state;
	sync_case(false, true, false);
}

static void test_scenario_sync_both_snapshot(void **state)
{
	(void)state;
	sync_case(true, true, false);
}

/* A storage failure stops the node (-EIO, fail-stop); rebuilt on the same
 * storage it recovers and catches up. */
static void test_scenario_storage_failure_restart(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, NULL);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	sim_fail_write(s, f, 1, true);
	append_n(s, (uint32_t)l, 5);
	assert_true(sim_run_ticks(s, 5));
	assert_false(sim_up(s, f));
	assert_int_equal(sim_fail_stops(s), 1);
	sim_fail_write(s, f, 0, false);
	assert_int_equal(sim_restart(s, f), 0);
	wait_all_decided(s, 10, 40);
	assert_sim_ok(s);
	sim_destroy(&s);
}

/* A crash before fsync: the node dies inside a call, after writing and
 * before syncing or sending. What it loses was never acknowledged, so the
 * cluster loses nothing decided; the node recovers from what was synced. */
static void test_scenario_crash_before_sync(void **state)
{
	(void)state;
	struct sim *s = new_sim(3, tune_recovery);
	int l = wait_leader(s, 20);
	uint32_t f = other_up(s, (uint32_t)l, (uint32_t)l);
	append_n(s, (uint32_t)l, 5);
	wait_all_decided(s, 5, 20);
	/* the follower dies while accepting the next entries */
	sim_crash_in_next_call(s, f, true);
	append_n(s, (uint32_t)l, 5);
	while (sim_up(s, f))
		assert_true(sim_step(s));
	assert_int_equal(sim_restart(s, f), 0);
	assert_true(opx_accepted_idx(sim_core(s, f)) >= 5);
	wait_all_decided(s, 10, 40);
	/* the leader dies inside an append: the entry was written, not synced */
	uint64_t before = sim_max_decided(s);
	sim_crash_in_next_call(s, (uint32_t)l, true);
	assert_int_equal(sim_append(s, (uint32_t)l, 16), 0);
	assert_false(sim_up(s, (uint32_t)l));
	assert_int_equal(sim_restart(s, (uint32_t)l), 0);
	assert_int_equal(opx_accepted_idx(sim_core(s, (uint32_t)l)), before);
	int l2 = wait_leader(s, 40);
	append_n(s, (uint32_t)l2, 3);
	wait_all_decided(s, before + 3, 40);
	assert_sim_ok(s);
	sim_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenario_consensus),
		cmocka_unit_test(test_scenario_ble_leader_changes),
		cmocka_unit_test(test_scenario_batching),
		cmocka_unit_test(test_scenario_flexible_prepare_phase),
		cmocka_unit_test(test_scenario_flexible_accept_phase),
		cmocka_unit_test(test_scenario_forwarding),
		cmocka_unit_test(test_scenario_reconfig),
		cmocka_unit_test(test_scenario_increasing_seq_nums),
		cmocka_unit_test(test_scenario_reconnect_dropped_accepts),
		cmocka_unit_test(test_scenario_reconnect_dropped_prepare),
		cmocka_unit_test(test_scenario_reconnect_dropped_promise),
		cmocka_unit_test(test_scenario_reconnect_dropped_preparereq),
		cmocka_unit_test(test_scenario_resync_dropped_acceptstopsign),
		cmocka_unit_test(test_scenario_reconnect_dropped_acceptstopsign),
		cmocka_unit_test(test_scenario_reconnect_dropped_decidestopsign),
		cmocka_unit_test(test_scenario_recovery_leader_fail_follower_propose),
		cmocka_unit_test(test_scenario_recovery_leader_fail_leader_propose),
		cmocka_unit_test(test_scenario_recovery_follower_fail_leader_propose),
		cmocka_unit_test(test_scenario_recovery_follower_fail_follower_propose),
		cmocka_unit_test(test_scenario_snapshot),
		cmocka_unit_test(test_scenario_double_snapshot),
		cmocka_unit_test(test_scenario_trim),
		cmocka_unit_test(test_scenario_double_trim),
		cmocka_unit_test(test_scenario_trim_sparse_ids),
		cmocka_unit_test(test_scenario_sync_full),
		cmocka_unit_test(test_scenario_sync_decided_ss),
		cmocka_unit_test(test_scenario_sync_only_snapshot),
		cmocka_unit_test(test_scenario_sync_follower_snapshot),
		cmocka_unit_test(test_scenario_sync_both_snapshot),
		cmocka_unit_test(test_scenario_storage_failure_restart),
		cmocka_unit_test(test_scenario_crash_before_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
