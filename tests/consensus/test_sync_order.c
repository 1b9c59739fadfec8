/*
 * The order of a leader's unsynced append (sync_after_send), its sync and
 * the messages that leave: cores driven by hand, each on a store that
 * records what is durable. Every message is checked as it is taken:
 * - while its sender holds an unsynced append, only AcceptDecides leave;
 * - an Accepted or a Promise claims no entry its sender has not synced;
 * - a decided index (AcceptDecide, Decide, AcceptSync) names no entry that
 *   fewer than a majority hold durably.
 * The store counts a write of the decided index alone as unsynced, as the
 * RocksDB log does (storage_rocksdb.c). One driver never calls opx_sync, so
 * the core must sync by itself before anything that needs it; another
 * calls it after each send, as fs/replica does.
 */
#include "test.h"

#include "omnipaxos.h"
#include "storage_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_MAX 3

/* A node's store: storage_mem underneath, and what of it is durable. */
struct rec {
	struct opx_storage_mem *sm;
	struct opx_storage inner;
	uint64_t live_end;    /* one past the last stored entry (a stop-sign counts) */
	bool has_ss;	      /* a stop-sign is stored, and counted in live_end */
	uint64_t durable_end; /* the same, as of the last sync */
	bool dirty;	      /* an unsynced append since the last sync */
	uint64_t syncs;
	uint64_t writes;       /* every write, synced or not */
	uint64_t decided_only; /* writes of the decided index alone */
};

struct cl {
	uint32_t n;
	struct rec rec[N_MAX];
	struct opx *px[N_MAX];
	bool sync_after_send_call;  /* the driver calls opx_sync after each take */
	bool decide_with_next;	    /* the cores' setting */
	uint64_t decides_to[N_MAX]; /* Decides queued to each node */
	struct opx_msg *queue[4096];
	size_t q_head, q_tail;
};

static void track(struct rec *r, const struct opx_storage_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct opx_storage_op *op = &ops[i];
		if (op->type == OPX_OP_APPEND_ENTRIES)
			r->live_end += op->u.append.n;
		else if (op->type == OPX_OP_APPEND_ON_PREFIX)
			r->live_end = op->u.append.from_idx + op->u.append.n;
		else if (op->type == OPX_OP_TRIM && r->live_end < op->u.idx)
			r->live_end = op->u.idx;
		else if (op->type == OPX_OP_SET_STOPSIGN && !!op->u.ss != r->has_ss) {
			r->has_ss = op->u.ss != NULL;
			r->live_end += r->has_ss ? 1 : -1;
		}
	}
}

static bool only_decided(const struct opx_storage_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].type != OPX_OP_SET_DECIDED_IDX)
			return false;
	return n > 0;
}

static int rec_write(void *impl, const struct opx_storage_op *ops, size_t n)
{
	struct rec *r = impl;
	int rc = r->inner.ops->write_atomically(r->inner.impl, ops, n);
	if (rc)
		return rc;
	track(r, ops, n);
	r->writes++;
	r->decided_only += only_decided(ops, n);
	if (!only_decided(ops, n)) {
		/* a synced write; the log is written in order, so everything
		 * before it is durable too */
		r->durable_end = r->live_end;
		r->dirty = false;
	}
	return 0;
}

static int rec_write_unsynced(void *impl, const struct opx_storage_op *ops, size_t n)
{
	struct rec *r = impl;
	int rc = r->inner.ops->write_unsynced(r->inner.impl, ops, n);
	if (rc)
		return rc;
	track(r, ops, n);
	r->writes++;
	r->dirty = true;
	return 0;
}

static int rec_sync(void *impl)
{
	struct rec *r = impl;
	int rc = r->inner.ops->sync(r->inner.impl);
	if (rc)
		return rc;
	r->durable_end = r->live_end;
	r->dirty = false;
	r->syncs++;
	return 0;
}

static int rec_load(void *impl, struct opx_storage_state *st)
{
	struct rec *r = impl;
	return r->inner.ops->load(r->inner.impl, st);
}

static int rec_get_entries(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	struct rec *r = impl;
	return r->inner.ops->get_entries(r->inner.impl, from, to, out);
}

static int rec_get_snapshot(void *impl, uint8_t **data, uint32_t *len)
{
	struct rec *r = impl;
	return r->inner.ops->get_snapshot(r->inner.impl, data, len);
}

static const struct opx_storage_ops rec_ops = {
	.version = OPX_STORAGE_VERSION,
	.write_atomically = rec_write,
	.load = rec_load,
	.get_entries = rec_get_entries,
	.get_snapshot = rec_get_snapshot,
	.write_unsynced = rec_write_unsynced,
	.sync = rec_sync,
};

static struct opx_config config(uint32_t n, opx_node_id pid, uint32_t batch_size)
{
	struct opx_config c;
	memset(&c, 0, sizeof(c));
	c.cluster.config_id = 1;
	c.cluster.n_nodes = n;
	for (uint32_t i = 0; i < n; i++)
		c.cluster.nodes[i] = i + 1;
	c.pid = pid;
	c.election_ticks = 1;
	c.resend_ticks = 5;
	c.flush_ticks = 5;
	c.batch_size = batch_size;
	c.sync_after_send = true;
	return c;
}

static void start_node(struct cl *c, uint32_t i, uint32_t batch_size)
{
	struct opx_config cfg = config(c->n, i + 1, batch_size);
	cfg.decide_with_next = c->decide_with_next;
	char err[128];
	struct opx_storage st = {.ops = &rec_ops, .impl = &c->rec[i]};
	if (opx_new(&c->px[i], &cfg, st, err, sizeof(err)))
		fail_msg("opx_new: %s", err);
}

static void cl_init_with(struct cl *c, uint32_t n, uint32_t batch_size, bool call_sync,
			 bool decide_with_next)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->sync_after_send_call = call_sync;
	c->decide_with_next = decide_with_next;
	for (uint32_t i = 0; i < n; i++) {
		c->rec[i].sm = opx_storage_mem_new();
		assert_non_null(c->rec[i].sm);
		/* writes are lost in a crash until synced */
		assert_int_equal(opx_storage_mem_set_manual_sync(c->rec[i].sm, true), 0);
		c->rec[i].inner = opx_storage_mem_storage(c->rec[i].sm);
		start_node(c, i, batch_size);
	}
}

static void cl_init(struct cl *c, uint32_t n, uint32_t batch_size, bool call_sync)
{
	cl_init_with(c, n, batch_size, call_sync, false);
}

static void cl_free(struct cl *c)
{
	while (c->q_head < c->q_tail)
		free(c->queue[c->q_head++]);
	for (uint32_t i = 0; i < c->n; i++) {
		opx_destroy(&c->px[i]);
		opx_storage_mem_destroy(&c->rec[i].sm);
	}
}

/* The checks of the file's top comment, on message m as node i sends it. */
static void check_msg(struct cl *c, uint32_t i, const struct opx_msg *m)
{
	const struct rec *r = &c->rec[i];
	const char *name = opx_msg_type_name(m->type);
	if (r->dirty && m->type != OPX_MSG_ACCEPT_DECIDE)
		fail_msg("n%u sent %s before syncing its append", i + 1, name);
	uint64_t claim = 0, decided = 0;
	switch (m->type) {
	case OPX_MSG_ACCEPTED:
		claim = m->u.accepted.accepted_idx;
		break;
	case OPX_MSG_PROMISE:
		claim = m->u.promise.accepted_idx;
		break;
	case OPX_MSG_ACCEPT_DECIDE:
		decided = m->u.accept_decide.decided_idx;
		break;
	case OPX_MSG_DECIDE:
		decided = m->u.decide.decided_idx;
		break;
	case OPX_MSG_ACCEPT_SYNC:
		decided = m->u.accept_sync.decided_idx;
		break;
	default:
		break;
	}
	if (claim > r->durable_end)
		fail_msg("n%u sent %s claiming @%llu with @%llu durable", i + 1, name,
			 (unsigned long long)claim, (unsigned long long)r->durable_end);
	uint32_t holders = 0;
	for (uint32_t k = 0; k < c->n; k++)
		if (c->rec[k].durable_end >= decided)
			holders++;
	if (decided && holders < c->n / 2 + 1)
		fail_msg("n%u sent %s deciding @%llu, durable on %u of %u nodes", i + 1, name,
			 (unsigned long long)decided, holders, c->n);
}

/* Takes node i's messages, checks and queues them, then syncs if the driver
 * does. Also checks the node's own decided index against its disk. */
static void take(struct cl *c, uint32_t i)
{
	if (!c->px[i])
		return;
	const struct opx_msg *out;
	size_t n = opx_take_outgoing(c->px[i], &out);
	for (size_t k = 0; k < n; k++) {
		check_msg(c, i, &out[k]);
		if (out[k].type == OPX_MSG_DECIDE)
			c->decides_to[out[k].to - 1]++;
		assert_true(c->q_tail < sizeof(c->queue) / sizeof(c->queue[0]));
		c->queue[c->q_tail] = opx_msg_dup(&out[k]);
		assert_non_null(c->queue[c->q_tail]);
		c->q_tail++;
	}
	if (c->sync_after_send_call)
		assert_int_equal(opx_sync(c->px[i]), 0);
	uint64_t d = opx_decided_idx(c->px[i]);
	uint32_t holders = 0;
	for (uint32_t k = 0; k < c->n; k++)
		if (c->rec[k].durable_end >= d)
			holders++;
	if (d && holders < c->n / 2 + 1)
		fail_msg("n%u decided @%llu, durable on %u of %u nodes", i + 1,
			 (unsigned long long)d, holders, c->n);
}

/* Delivers queued messages (each receiver's answers are taken at once)
 * until none is left. */
static void pump(struct cl *c)
{
	while (c->q_head < c->q_tail) {
		struct opx_msg *m = c->queue[c->q_head++];
		uint32_t to = (uint32_t)m->to - 1;
		if (c->px[to]) {
			assert_int_equal(opx_handle_incoming(c->px[to], m), 0);
			take(c, to);
		}
		free(m);
	}
	c->q_head = c->q_tail = 0;
}

static void elect(struct cl *c, uint32_t i)
{
	assert_int_equal(opx_try_become_leader(c->px[i]), 0);
	take(c, i);
	pump(c);
	bool accept = false;
	assert_int_equal(opx_current_leader(c->px[i], &accept), i + 1);
	assert_true(accept);
	assert_true(opx_is_leader(c->px[i]));
}

static void append_at(struct cl *c, uint32_t i, uint64_t v)
{
	assert_int_equal(opx_append(c->px[i], &v, sizeof(v)), 0);
	take(c, i);
}

/* One entry per round at the leader; the acks reach it while its append
 * is unsynced unless the driver syncs: it must sync before deciding. */
static void run_rounds(bool call_sync)
{
	struct cl c;
	cl_init(&c, 3, 1, call_sync);
	elect(&c, 0);
	uint64_t syncs = c.rec[0].syncs;
	for (uint64_t k = 1; k <= 20; k++) {
		append_at(&c, 0, k);
		/* the AcceptDecides left unsynced */
		assert_true(c.rec[0].dirty == !call_sync);
		pump(&c);
		for (uint32_t i = 0; i < 3; i++)
			assert_int_equal(opx_decided_idx(c.px[i]), k);
	}
	/* one sync per round on the leader, none of them by a synced append */
	assert_int_equal(c.rec[0].syncs - syncs, 20);
	cl_free(&c);
}

static void test_sync_order_core_syncs_before_deciding(void **state)
{
	(void)state;
	run_rounds(false);
}

static void test_sync_order_driver_syncs_after_send(void **state)
{
	(void)state;
	run_rounds(true);
}

/* Batches, proposals forwarded by a follower, and a flush: several unsynced
 * appends before one sync, and the checks still hold. */
static void test_sync_order_batches_and_forwards(void **state)
{
	(void)state;
	struct cl c;
	cl_init(&c, 3, 4, false);
	elect(&c, 0);
	for (uint64_t k = 1; k <= 10; k++)
		append_at(&c, 1, k); /* forwarded: one ProposalForward each */
	for (uint64_t k = 11; k <= 13; k++)
		append_at(&c, 0, k);
	pump(&c); /* the leader appends three batches of 4, one left over */
	assert_int_equal(opx_flush_batch(c.px[0]), 0);
	take(&c, 0);
	pump(&c);
	for (uint32_t i = 1; i < 3; i++) { /* followers batch what they accept too */
		assert_int_equal(opx_flush_batch(c.px[i]), 0);
		take(&c, i);
	}
	pump(&c);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(opx_decided_idx(c.px[i]), 13);
	cl_free(&c);
}

/* A configuration of one node decides alone: the decision syncs first. */
static void test_sync_order_alone(void **state)
{
	(void)state;
	struct cl c;
	cl_init(&c, 1, 1, false);
	elect(&c, 0);
	for (uint64_t k = 1; k <= 5; k++) {
		append_at(&c, 0, k);
		assert_int_equal(opx_decided_idx(c.px[0]), k);
		assert_int_equal(c.rec[0].durable_end, k);
	}
	cl_free(&c);
}

/* The leader crashes after its AcceptDecides left, before its sync: its
 * log loses the entry, the followers have it, and a new leader decides it. */
static void test_sync_order_leader_crash_before_sync(void **state)
{
	(void)state;
	struct cl c;
	cl_init(&c, 3, 1, false);
	elect(&c, 0);
	append_at(&c, 0, 1);
	pump(&c);
	append_at(&c, 0, 2); /* unsynced; its AcceptDecides are queued */
	assert_true(c.rec[0].dirty);
	/* deliver the AcceptDecides to the followers, then lose the leader */
	size_t q = c.q_tail;
	for (size_t k = c.q_head; k < q; k++) {
		struct opx_msg *m = c.queue[k];
		assert_int_equal(m->type, OPX_MSG_ACCEPT_DECIDE);
		assert_int_equal(opx_handle_incoming(c.px[m->to - 1], m), 0);
		free(m);
	}
	c.q_head = q;
	opx_destroy(&c.px[0]);
	assert_int_equal(opx_storage_mem_crash(c.rec[0].sm), 0);
	c.rec[0].live_end = c.rec[0].durable_end;
	c.rec[0].dirty = false;
	assert_int_equal(c.rec[0].durable_end, 1);
	for (size_t k = c.q_head; k < c.q_tail; k++)
		free(c.queue[k]); /* the followers' Accepteds: to the dead leader */
	c.q_head = c.q_tail = 0;
	start_node(&c, 0, 1);
	elect(&c, 1);
	append_at(&c, 1, 3);
	pump(&c);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(opx_decided_idx(c.px[i]), 3);
	struct opx_read rd = {0};
	assert_int_equal(opx_read_entries(c.px[0], 0, 3, &rd), 0);
	assert_int_equal(rd.n, 3);
	for (uint32_t k = 0; k < 3; k++) {
		uint64_t v;
		memcpy(&v, rd.items[k].entry.data, sizeof(v));
		assert_int_equal(v, k + 1);
	}
	opx_read_free(&rd);
	cl_free(&c);
}

static uint64_t stored_decided(struct cl *c, uint32_t i)
{
	struct opx_storage_state st;
	assert_int_equal(c->rec[i].inner.ops->load(c->rec[i].inner.impl, &st), 0);
	return st.decided_idx;
}

/* Three nodes of batch size 1, synced after sending, n1 leading and entry
 * 1 decided everywhere. */
static void cl_three_started(struct cl *c, bool decide_with_next)
{
	cl_init_with(c, 3, 1, true, decide_with_next);
	elect(c, 0);
	append_at(c, 0, 1);
	pump(c);
}

/* A decision is no write of its own: the decided index rides in front of
 * the next write (the next round's append, on every node), or goes alone
 * at the next tick when nothing follows. */
static void test_sync_order_decided_rides_with_next_write(void **state)
{
	(void)state;
	struct cl c;
	cl_three_started(&c, false);
	uint64_t writes[N_MAX];
	for (uint32_t i = 0; i < 3; i++)
		writes[i] = c.rec[i].writes;
	for (uint64_t k = 2; k <= 11; k++) {
		append_at(&c, 0, k);
		pump(&c);
	}
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(opx_decided_idx(c.px[i]), 11);
		/* one write per round, the entry's */
		assert_int_equal(c.rec[i].writes - writes[i], 10);
		assert_int_equal(c.rec[i].decided_only, 0);
		/* the last append carried the round before's decision */
		assert_int_equal(stored_decided(&c, i), 10);
	}
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(opx_tick(c.px[i]), 0);
		assert_int_equal(stored_decided(&c, i), 11);
	}
	cl_free(&c);
}

/* decide_with_next: a follower that forwarded nothing hears of a decision
 * with the next AcceptDecide, not in a Decide of its own; one whose
 * forwarded entry is decided hears at once; and the held-back Decides go
 * out when asked (or at the next tick). */
static void test_sync_order_decide_with_next(void **state)
{
	(void)state;
	struct cl c;
	cl_three_started(&c, true);
	uint64_t before[N_MAX];
	memcpy(before, c.decides_to, sizeof(before));
	for (uint64_t k = 2; k <= 11; k++) {
		append_at(&c, 0, k);
		pump(&c);
		assert_int_equal(opx_decided_idx(c.px[0]), k);
		for (uint32_t i = 1; i < 3; i++) /* told with the round's entry */
			assert_int_equal(opx_decided_idx(c.px[i]), k - 1);
		assert_true(opx_owes_decides(c.px[0]));
	}
	for (uint32_t i = 1; i < 3; i++)
		assert_int_equal(c.decides_to[i], before[i]);
	opx_send_owed_decides(c.px[0]);
	assert_false(opx_owes_decides(c.px[0]));
	take(&c, 0);
	pump(&c);
	for (uint32_t i = 1; i < 3; i++) {
		assert_int_equal(opx_decided_idx(c.px[i]), 11);
		assert_int_equal(c.decides_to[i], before[i] + 1);
	}
	/* n2 forwards an entry: told at once; n3 waits for the next one */
	append_at(&c, 1, 12);
	pump(&c);
	assert_int_equal(opx_decided_idx(c.px[0]), 12);
	assert_int_equal(opx_decided_idx(c.px[1]), 12);
	assert_int_equal(opx_decided_idx(c.px[2]), 11);
	/* the tick sends what is held back */
	assert_int_equal(opx_tick(c.px[0]), 0);
	take(&c, 0);
	pump(&c);
	assert_int_equal(opx_decided_idx(c.px[2]), 12);
	assert_false(opx_owes_decides(c.px[0]));
	/* n2 forwarded lately: told of the leader's entries at once too */
	append_at(&c, 0, 13);
	pump(&c);
	assert_int_equal(opx_decided_idx(c.px[1]), 13);
	assert_int_equal(opx_decided_idx(c.px[2]), 12);
	/* ... for two resend periods (5 ticks each here), then no more
	 * (only the leader ticks: no follower starts an election) */
	for (int t = 0; t < 10; t++) {
		assert_int_equal(opx_tick(c.px[0]), 0);
		take(&c, 0);
		pump(&c);
	}
	assert_true(opx_is_leader(c.px[0]));
	append_at(&c, 0, 14);
	pump(&c);
	assert_int_equal(opx_decided_idx(c.px[0]), 14);
	assert_int_equal(opx_decided_idx(c.px[1]), 13);
	assert_int_equal(opx_decided_idx(c.px[2]), 13);
	cl_free(&c);
}

/* decide_with_next: a decided stop-sign reaches every follower at once,
 * though none forwarded anything: nothing follows it to carry it. */
static void test_sync_order_decide_with_next_stopsign(void **state)
{
	(void)state;
	struct cl c;
	cl_three_started(&c, true);
	struct opx_cluster_config next = {.config_id = 2, .n_nodes = 3, .nodes = {1, 2, 3}};
	assert_int_equal(opx_reconfigure(c.px[0], &next, NULL, 0), 0);
	take(&c, 0);
	pump(&c);
	for (uint32_t i = 0; i < 3; i++)
		assert_non_null(opx_is_reconfigured(c.px[i]));
	assert_false(opx_owes_decides(c.px[0]));
	cl_free(&c);
}

/* sync_after_send needs a storage that can defer syncs. */
static void test_sync_order_needs_storage_support(void **state)
{
	(void)state;
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_storage st = opx_storage_mem_storage(sm);
	struct opx_storage_ops ops = *st.ops;
	ops.write_unsynced = NULL;
	ops.sync = NULL;
	st.ops = &ops;
	struct opx_config cfg = config(3, 1, 1);
	struct opx *px = NULL;
	char err[128];
	assert_int_equal(opx_new(&px, &cfg, st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "sync_after_send"));
	cfg.sync_after_send = false;
	assert_int_equal(opx_new(&px, &cfg, st, err, sizeof(err)), 0);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_order_core_syncs_before_deciding),
		cmocka_unit_test(test_sync_order_driver_syncs_after_send),
		cmocka_unit_test(test_sync_order_batches_and_forwards),
		cmocka_unit_test(test_sync_order_alone),
		cmocka_unit_test(test_sync_order_leader_crash_before_sync),
		cmocka_unit_test(test_sync_order_decided_rides_with_next_write),
		cmocka_unit_test(test_sync_order_decide_with_next),
		cmocka_unit_test(test_sync_order_decide_with_next_stopsign),
		cmocka_unit_test(test_sync_order_needs_storage_support),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
