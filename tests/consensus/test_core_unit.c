/*
 * Unit tests of the consensus core without a network: ballot order, quorum
 * and config rules, storage_mem semantics and fault knobs, message copies,
 * the read API (the reference's read_test / read_entries_test) and the
 * atomic-storage tests (a write failing inside each handler leaves storage
 * all-old or all-new and stops the instance).
 */
#include "test.h"
#include "omnipaxos.h"
#include "sim.h"
#include "storage_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct opx_config cfg3(opx_node_id pid)
{
	struct opx_config c;
	memset(&c, 0, sizeof(c));
	c.cluster.config_id = 1;
	c.cluster.n_nodes = 3;
	c.cluster.nodes[0] = 1;
	c.cluster.nodes[1] = 2;
	c.cluster.nodes[2] = 3;
	c.pid = pid;
	c.election_ticks = 1;
	c.resend_ticks = 5;
	c.flush_ticks = 5;
	c.batch_size = 1;
	c.snapshot = &sim_snapshot_ops;
	return c;
}

static struct opx_ballot ballot(uint32_t n, uint32_t prio, opx_node_id pid)
{
	return (struct opx_ballot){.config_id = 1, .n = n, .priority = prio, .pid = pid};
}

static void test_core_ballot_order(void **state)
{
	(void)state;
	struct opx_ballot a = ballot(1, 0, 5), b = ballot(1, 1, 2), c = ballot(2, 0, 1);
	assert_true(opx_ballot_cmp(&a, &b) < 0); /* priority beats pid */
	assert_true(opx_ballot_cmp(&b, &c) < 0); /* round beats priority */
	assert_true(opx_ballot_cmp(&c, &a) > 0);
	struct opx_ballot d = a;
	d.config_id = 2;
	assert_int_equal(opx_ballot_cmp(&a, &d), 0); /* config id is not ordered */
	assert_false(opx_ballot_eq(&a, &d));	     /* but is part of equality */
	assert_true(opx_ballot_eq(&a, &a));
}

static void test_core_config_validation(void **state)
{
	(void)state;
	char err[128];
	struct opx_config c = cfg3(1);
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), 0);
	c.flush_ticks = 0; /* the reference silently never flushes */
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "flush"));
	c = cfg3(4);
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c = cfg3(1);
	c.cluster.n_nodes = 1; /* a survivor forced into a cluster of its own */
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), 0);
	c.cluster.n_nodes = 0;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c = cfg3(1);
	c.cluster.config_id = 0;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c = cfg3(1);
	c.batch_size = 0;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c = cfg3(1);
	c.cluster.nodes[2] = 1;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	/* flexible quorums: R + W > N, 2 <= W <= R <= N */
	c = cfg3(1);
	c.cluster.n_nodes = 5;
	c.cluster.nodes[3] = 4;
	c.cluster.nodes[4] = 5;
	c.cluster.read_quorum = 4;
	c.cluster.write_quorum = 2;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), 0);
	c.cluster.read_quorum = 3;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c.cluster.read_quorum = 2;
	c.cluster.write_quorum = 4;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	c.cluster.read_quorum = 6;
	c.cluster.write_quorum = 2;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), -EINVAL);
	/* non-contiguous, large ids are fine */
	c = cfg3(1000000007);
	c.cluster.nodes[0] = 1000000007;
	c.cluster.nodes[1] = 3;
	c.cluster.nodes[2] = 99;
	assert_int_equal(opx_config_validate(&c, err, sizeof(err)), 0);
}

/* Quorum arithmetic as seen through BLE: quorum-connected needs a read
 * quorum counting the node itself. */
static void test_core_quorum_connected(void **state)
{
	(void)state;
	struct sim_opts o;
	sim_opts_default(&o, 5);
	o.read_quorum = 4;
	o.write_quorum = 2;
	struct sim *s = sim_new(&o);
	assert_non_null(s);
	assert_true(sim_run_ticks(s, 5));
	assert_true(opx_is_quorum_connected(sim_core(s, 0)));
	sim_isolate(s, 0);
	sim_connect(s, 0, 1, true);
	sim_connect(s, 0, 2, true);
	assert_true(sim_run_ticks(s, 3));
	/* hears 2 peers: 3 of 5 is a majority but not a read quorum of 4 */
	assert_false(opx_is_quorum_connected(sim_core(s, 0)));
	sim_connect(s, 0, 3, true);
	assert_true(sim_run_ticks(s, 3));
	assert_true(opx_is_quorum_connected(sim_core(s, 0)));
	sim_destroy(&s);
}

static void mem_put(struct opx_storage st, uint32_t n, uint64_t first)
{
	struct opx_entry e[64];
	uint8_t buf[64][16];
	for (uint32_t i = 0; i < n; i++) {
		memset(buf[i], 0, 16);
		uint64_t v = first + i;
		memcpy(buf[i], &v, 8);
		e[i].data = buf[i];
		e[i].len = 16;
	}
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
	op.u.append.entries = e;
	op.u.append.n = n;
	assert_int_equal(st.ops->write_atomically(st.impl, &op, 1), 0);
}

static uint64_t entry_val(const struct opx_entry *e)
{
	uint64_t v;
	memcpy(&v, e->data, 8);
	return v;
}

static void test_core_storage_mem(void **state)
{
	(void)state;
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_storage st = opx_storage_mem_storage(sm);
	struct opx_storage_state ss;
	mem_put(st, 10, 0);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.log_end, 10);
	assert_false(ss.has_promise);

	/* get_entries: all or nothing */
	struct opx_entry_list l = {0};
	assert_int_equal(st.ops->get_entries(st.impl, 8, 11, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(st.ops->get_entries(st.impl, 2, 5, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(entry_val(&l.entries[0]), 2);
	opx_entry_list_clear(&l);

	/* trim + append on prefix in one transaction */
	struct opx_entry e = {.data = (const uint8_t *)"0123456789abcdef", .len = 16};
	struct opx_storage_op ops[3] = {
		{.type = OPX_OP_TRIM, .u.idx = 4},
		{.type = OPX_OP_SET_COMPACTED_IDX, .u.idx = 4},
		{.type = OPX_OP_APPEND_ON_PREFIX},
	};
	ops[2].u.append.from_idx = 6;
	ops[2].u.append.entries = &e;
	ops[2].u.append.n = 1;
	assert_int_equal(st.ops->write_atomically(st.impl, ops, 3), 0);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.log_end, 7);
	assert_int_equal(ss.compacted_idx, 4);
	assert_int_equal(st.ops->get_entries(st.impl, 3, 5, &l), 0);
	assert_int_equal(l.n, 0); /* 3 is trimmed */
	assert_int_equal(st.ops->get_entries(st.impl, 4, 7, &l), 0);
	assert_int_equal(l.n, 3);
	assert_memory_equal(l.entries[2].data, "0123456789abcdef", 16);
	opx_entry_list_clear(&l);

	/* an invalid op (append past the end) applies nothing */
	struct opx_storage_op bad[2] = {
		{.type = OPX_OP_SET_DECIDED_IDX, .u.idx = 5},
		{.type = OPX_OP_APPEND_ON_PREFIX},
	};
	bad[1].u.append.from_idx = 9;
	assert_int_not_equal(st.ops->write_atomically(st.impl, bad, 2), 0);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.decided_idx, 0);

	/* injected failures: transient then persistent */
	uint64_t w = opx_storage_mem_writes(sm);
	opx_storage_mem_fail_write(sm, 2, false);
	struct opx_storage_op dec = {.type = OPX_OP_SET_DECIDED_IDX, .u.idx = 1};
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), 0);
	dec.u.idx = 2;
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), -EIO);
	dec.u.idx = 3;
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), 0);
	assert_int_equal(opx_storage_mem_writes(sm), w + 3);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.decided_idx, 3);
	opx_storage_mem_fail_write(sm, 1, true);
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), -EIO);
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), -EIO);
	opx_storage_mem_fail_write(sm, 0, false);

	/* manual sync: a crash loses what was not synced */
	assert_int_equal(opx_storage_mem_set_manual_sync(sm, true), 0);
	dec.u.idx = 4;
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), 0);
	assert_int_equal(opx_storage_mem_sync(sm), 0);
	dec.u.idx = 5;
	assert_int_equal(st.ops->write_atomically(st.impl, &dec, 1), 0);
	mem_put(st, 2, 100);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.decided_idx, 5);
	assert_int_equal(ss.log_end, 9);
	assert_int_equal(opx_storage_mem_crash(sm), 0);
	assert_int_equal(st.ops->load(st.impl, &ss), 0);
	assert_int_equal(ss.decided_idx, 4);
	assert_int_equal(ss.log_end, 7);
	opx_storage_mem_destroy(&sm);
	assert_null(sm);
}

static void test_core_msg_dup(void **state)
{
	(void)state;
	struct opx_entry e[2] = {{(const uint8_t *)"abc", 3}, {(const uint8_t *)"", 0}};
	struct opx_stopsign ss;
	memset(&ss, 0, sizeof(ss));
	ss.next.config_id = 2;
	ss.metadata_len = 1;
	ss.metadata[0] = 255;
	uint8_t snap[5] = {1, 2, 3, 4, 5};
	struct opx_msg m = {.from = 1, .to = 2, .config_id = 1, .type = OPX_MSG_ACCEPT_SYNC};
	m.u.accept_sync.log_sync.suffix = e;
	m.u.accept_sync.log_sync.n_suffix = 2;
	m.u.accept_sync.log_sync.snapshot_kind = OPX_SNAPSHOT_COMPLETE;
	m.u.accept_sync.log_sync.snapshot = snap;
	m.u.accept_sync.log_sync.snapshot_len = 5;
	m.u.accept_sync.log_sync.stopsign = &ss;
	struct opx_msg *d = opx_msg_dup(&m);
	assert_non_null(d);
	const struct opx_log_sync *ls = &d->u.accept_sync.log_sync;
	assert_ptr_not_equal(ls->suffix, e);
	assert_int_equal(ls->n_suffix, 2);
	assert_memory_equal(ls->suffix[0].data, "abc", 3);
	assert_int_equal(ls->suffix[1].len, 0);
	assert_ptr_not_equal(ls->snapshot, snap);
	assert_memory_equal(ls->snapshot, snap, 5);
	assert_ptr_not_equal(ls->stopsign, &ss);
	assert_int_equal(ls->stopsign->metadata[0], 255);
	free(d);
}

/* ---- reads: read_test / read_entries_test ---- */

static struct opx *read_node(struct opx_storage_mem **smp, bool with_ss)
{
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_storage st = opx_storage_mem_storage(sm);
	mem_put(st, 10, 0);
	struct opx_storage_op op = {.type = OPX_OP_SET_DECIDED_IDX, .u.idx = with_ss ? 11 : 6};
	assert_int_equal(st.ops->write_atomically(st.impl, &op, 1), 0);
	if (with_ss) {
		struct opx_stopsign ss;
		memset(&ss, 0, sizeof(ss));
		ss.next.config_id = 2;
		ss.next.n_nodes = 2;
		ss.next.nodes[0] = 1;
		ss.next.nodes[1] = 2;
		struct opx_storage_op so = {.type = OPX_OP_SET_STOPSIGN, .u.ss = &ss};
		assert_int_equal(st.ops->write_atomically(st.impl, &so, 1), 0);
	}
	struct opx_config c = cfg3(1);
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, st, NULL, 0), 0);
	*smp = sm;
	return px;
}

static void expect_item(const struct opx_item *it, enum opx_item_kind kind, uint64_t val)
{
	assert_int_equal(it->kind, kind);
	if (kind == OPX_ITEM_DECIDED || kind == OPX_ITEM_UNDECIDED)
		assert_int_equal(entry_val(&it->entry), val);
	else if (kind == OPX_ITEM_SNAPSHOTTED || kind == OPX_ITEM_TRIMMED)
		assert_int_equal(it->compacted_idx, val);
}

/* A configuration of one node elects itself and decides alone: entries
 * proposed before and after it leads, and a stop-sign to two nodes. */
static void test_core_single_node(void **state)
{
	(void)state;
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_config c = cfg3(1);
	c.cluster.n_nodes = 1;
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, opx_storage_mem_storage(sm), NULL, 0), 0);
	uint64_t v = 7;
	assert_int_equal(opx_append(px, &v, sizeof(v)), 0);
	for (int i = 0; i < 100 && opx_decided_idx(px) < 1; i++) {
		const struct opx_msg *out;
		assert_int_equal(opx_tick(px), 0);
		assert_int_equal(opx_take_outgoing(px, &out), 0); /* nobody to talk to */
	}
	assert_true(opx_is_leader(px));
	assert_int_equal(opx_decided_idx(px), 1);
	for (v = 8; v < 10; v++)
		assert_int_equal(opx_append(px, &v, sizeof(v)), 0);
	for (int i = 0; i < 100 && opx_decided_idx(px) < 3; i++)
		assert_int_equal(opx_tick(px), 0);
	assert_int_equal(opx_decided_idx(px), 3);
	struct opx_cluster_config next = {.config_id = 2, .n_nodes = 2, .nodes = {1, 2}};
	assert_int_equal(opx_reconfigure(px, &next, NULL, 0), 0);
	for (int i = 0; i < 100 && opx_decided_idx(px) < 4; i++)
		assert_int_equal(opx_tick(px), 0);
	assert_int_equal(opx_decided_idx(px), 4); /* the stop-sign */
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

/* Snapshots made by count: the core hands create_counted the range and
 * reads no entry back (a compaction would read every entry since the last
 * one at once); create is never called. */
static struct {
	const struct opx_storage_ops *mem;
	uint32_t reads, counted_calls;
	uint64_t from;
	uint32_t n;
} counted;

static int counting_get_entries(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	counted.reads++;
	return counted.mem->get_entries(impl, from, to, out);
}

static int refusing_create(void *ctx, const struct opx_entry *e, uint32_t n, uint8_t **out,
			   uint32_t *out_len)
{
	(void)ctx, (void)e, (void)n, (void)out, (void)out_len;
	fail_msg("create called though create_counted is set");
	return -EIO;
}

static int counted_create(void *ctx, uint64_t from, uint32_t n, uint8_t **out, uint32_t *out_len)
{
	(void)ctx;
	counted.counted_calls++;
	counted.from = from;
	counted.n = n;
	*out = malloc(8);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, &(uint64_t){n}, 8);
	*out_len = 8;
	return 0;
}

static int counted_merge(void *ctx, const uint8_t *base, uint32_t base_len, const uint8_t *delta,
			 uint32_t delta_len, uint8_t **out, uint32_t *out_len)
{
	(void)ctx;
	assert_int_equal(base_len, 8);
	assert_int_equal(delta_len, 8);
	uint64_t a, b;
	memcpy(&a, base, 8);
	memcpy(&b, delta, 8);
	return counted_create(NULL, 0, (uint32_t)(a + b), out, out_len);
}

static void test_core_snapshot_by_count(void **state)
{
	(void)state;
	static const struct opx_snapshot_ops ops = {.create = refusing_create,
						    .merge = counted_merge,
						    .create_counted = counted_create};
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_storage st = opx_storage_mem_storage(sm);
	struct opx_storage_ops wrapped = *st.ops;
	memset(&counted, 0, sizeof(counted));
	counted.mem = st.ops;
	wrapped.get_entries = counting_get_entries;
	st.ops = &wrapped;
	struct opx_config c = cfg3(1);
	c.cluster.n_nodes = 1;
	c.snapshot = &ops;
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, st, NULL, 0), 0);
	for (uint64_t v = 1; v <= 5; v++)
		assert_int_equal(opx_append(px, &v, sizeof(v)), 0);
	for (int i = 0; i < 100 && opx_decided_idx(px) < 5; i++)
		assert_int_equal(opx_tick(px), 0);
	assert_int_equal(opx_decided_idx(px), 5);

	uint32_t reads = counted.reads;
	assert_int_equal(opx_snapshot(px, true, 3, true), 0);
	assert_int_equal(counted.reads, reads);
	assert_int_equal(counted.counted_calls, 1);
	assert_int_equal(counted.from, 0);
	assert_int_equal(counted.n, 3);
	assert_int_equal(opx_compacted_idx(px), 3);

	assert_int_equal(opx_snapshot(px, true, 5, true), 0); /* a delta, merged */
	assert_int_equal(counted.reads, reads);
	assert_int_equal(counted.from, 0); /* the merge's count */
	assert_int_equal(counted.n, 5);
	uint8_t *snap;
	uint32_t len;
	assert_int_equal(st.ops->get_snapshot(st.impl, &snap, &len), 0);
	uint64_t covered;
	assert_int_equal(len, 8);
	memcpy(&covered, snap, 8);
	assert_int_equal(covered, 5);
	free(snap);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

static void test_core_read(void **state)
{
	(void)state;
	struct opx_storage_mem *sm;
	struct opx *px = read_node(&sm, false);
	struct opx_read r = {0};
	assert_int_equal(opx_read_decided_suffix(px, 0, &r), 0);
	assert_int_equal(r.n, 6);
	for (uint32_t i = 0; i < 6; i++)
		expect_item(&r.items[i], OPX_ITEM_DECIDED, i);
	assert_int_equal(opx_read_entries(px, 4, 5, &r), 0);
	assert_int_equal(r.n, 1);
	expect_item(&r.items[0], OPX_ITEM_DECIDED, 4);
	assert_int_equal(opx_snapshot(px, true, 4, true), 0);
	assert_int_equal(opx_compacted_idx(px), 4);
	assert_int_equal(opx_read_entries(px, 0, 1, &r), 0);
	assert_int_equal(r.n, 1);
	expect_item(&r.items[0], OPX_ITEM_SNAPSHOTTED, 4);
	assert_int_equal(r.items[0].snapshot_len, 16);
	uint64_t cnt;
	memcpy(&cnt, r.items[0].snapshot, 8);
	assert_int_equal(cnt, 4); /* a snapshot of the first 4 entries */
	assert_int_equal(opx_read_entries(px, 10, 11, &r), 0);
	assert_int_equal(r.n, 0);
	/* an undecided index cannot be snapshotted */
	assert_int_equal(opx_snapshot(px, true, 7, true), -ERANGE);
	opx_read_free(&r);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);

	px = read_node(&sm, true);
	assert_int_equal(opx_read_entries(px, 10, 11, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, OPX_ITEM_STOPSIGN);
	assert_true(r.items[0].ss_decided);
	assert_int_equal(r.items[0].ss->next.config_id, 2);
	assert_non_null(opx_is_reconfigured(px));
	assert_int_equal(opx_append(px, "x", 1), -ESHUTDOWN);
	opx_read_free(&r);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

static void test_core_read_entries(void **state)
{
	(void)state;
	struct opx_storage_mem *sm;
	struct opx *px = read_node(&sm, false);
	struct opx_read r = {0};
	assert_int_equal(opx_snapshot(px, true, 4, true), 0);
	assert_int_equal(opx_read_entries(px, 5, 7, &r), 0);
	assert_int_equal(r.n, 2);
	expect_item(&r.items[0], OPX_ITEM_DECIDED, 5);
	expect_item(&r.items[1], OPX_ITEM_UNDECIDED, 6);
	assert_int_equal(opx_read_entries(px, 0, 4, &r), 0);
	assert_int_equal(r.n, 1);
	expect_item(&r.items[0], OPX_ITEM_SNAPSHOTTED, 4);
	assert_int_equal(opx_read_entries(px, 3, 6, &r), 0);
	assert_int_equal(r.n, 3);
	expect_item(&r.items[0], OPX_ITEM_SNAPSHOTTED, 4);
	expect_item(&r.items[1], OPX_ITEM_DECIDED, 4);
	expect_item(&r.items[2], OPX_ITEM_DECIDED, 5);
	assert_int_equal(opx_read_entries(px, 0, 11, &r), 0);
	assert_int_equal(r.n, 0); /* beyond the log */
	opx_read_free(&r);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);

	px = read_node(&sm, true);
	assert_int_equal(opx_snapshot(px, true, 4, true), 0);
	assert_int_equal(opx_read_entries(px, 10, 11, &r), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, OPX_ITEM_STOPSIGN);
	assert_int_equal(opx_read_entries(px, 6, UINT64_MAX, &r), 0);
	assert_int_equal(r.n, 5);
	for (uint32_t i = 0; i < 4; i++)
		expect_item(&r.items[i], OPX_ITEM_DECIDED, 6 + i);
	assert_int_equal(r.items[4].kind, OPX_ITEM_STOPSIGN);
	assert_int_equal(opx_read_entries(px, 0, UINT64_MAX, &r), 0);
	assert_int_equal(r.n, 8);
	expect_item(&r.items[0], OPX_ITEM_SNAPSHOTTED, 4);
	expect_item(&r.items[1], OPX_ITEM_DECIDED, 4);
	assert_int_equal(r.items[7].kind, OPX_ITEM_STOPSIGN);
	assert_int_equal(opx_snapshot(px, true, 10, true), 0);
	assert_int_equal(opx_read_entries(px, 0, UINT64_MAX, &r), 0);
	assert_int_equal(r.n, 2);
	expect_item(&r.items[0], OPX_ITEM_SNAPSHOTTED, 10);
	uint64_t cnt;
	memcpy(&cnt, r.items[0].snapshot, 8);
	assert_int_equal(cnt, 10);
	assert_int_equal(r.items[1].kind, OPX_ITEM_STOPSIGN);
	opx_read_free(&r);
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

/* A loaded state whose indexes contradict each other is refused (storage
 * is validated, never asserted on): compacted past decided, decided past
 * the log. */
static void test_core_refuses_inconsistent_storage(void **state)
{
	(void)state;
	for (int bad = 0; bad < 2; bad++) {
		struct opx_storage_mem *sm = opx_storage_mem_new();
		struct opx_storage st = opx_storage_mem_storage(sm);
		mem_put(st, 10, 0);
		struct opx_storage_op ops[2] = {
			{.type = OPX_OP_SET_DECIDED_IDX, .u.idx = bad ? 11 : 3},
			{.type = OPX_OP_SET_COMPACTED_IDX, .u.idx = bad ? 0 : 5},
		};
		assert_int_equal(st.ops->write_atomically(st.impl, ops, 2), 0);
		struct opx_config c = cfg3(1);
		struct opx *px = (void *)sm;
		char err[128];
		assert_int_equal(opx_new(&px, &c, st, err, sizeof(err)), -EIO);
		assert_null(px);
		assert_string_equal(err, "storage: inconsistent indexes");
		opx_storage_mem_destroy(&sm);
	}
}

/* Malformed messages are dropped and counted, never asserted on. */
static void test_core_malformed_dropped(void **state)
{
	(void)state;
	struct opx_storage_mem *sm = opx_storage_mem_new();
	struct opx_config c = cfg3(1);
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, opx_storage_mem_storage(sm), NULL, 0), 0);
	struct opx_status st;
	struct opx_msg m = {.from = 2, .to = 3, .config_id = 1, .type = OPX_MSG_PREPARE};
	m.u.prepare.n = ballot(5, 0, 2);
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* wrong receiver */
	m.to = 1;
	m.from = 9;
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* unknown sender */
	m.from = 2;
	m.config_id = 7;
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* other configuration */
	m.config_id = 1;
	m.u.prepare.n.pid = 3;
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* ballot not the sender's */
	m.u.prepare.n.pid = 2;
	m.u.prepare.decided_idx = 10;
	m.u.prepare.accepted_idx = 2;
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* decided beyond accepted */
	m.type = (enum opx_msg_type)99;
	assert_int_equal(opx_handle_incoming(px, &m), 0); /* unknown type */
	struct opx_msg ad = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_ACCEPT_DECIDE};
	ad.u.accept_decide.n = ballot(5, 0, 2);
	ad.u.accept_decide.n_entries = 3; /* but no entries */
	assert_int_equal(opx_handle_incoming(px, &ad), 0);
	opx_get_status(px, &st);
	assert_int_equal(st.dropped_msgs, 7);
	struct opx_ballot zero = {0};
	struct opx_ballot p = opx_promise(px);
	assert_true(opx_ballot_eq(&p, &zero)); /* nothing was promised */
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
}

/* ---- atomic storage: fail the k-th write inside each handler ---- */

struct snapshot_of_storage {
	struct opx_storage_state st;
	uint64_t first_val; /* value of the first stored entry, or UINT64_MAX */
};

static void take(struct opx_storage_mem *sm, struct snapshot_of_storage *o)
{
	struct opx_storage st = opx_storage_mem_storage(sm);
	assert_int_equal(st.ops->load(st.impl, &o->st), 0);
	struct opx_entry_list l = {0};
	o->first_val = UINT64_MAX;
	if (o->st.log_end > o->st.compacted_idx) {
		assert_int_equal(st.ops->get_entries(st.impl, o->st.compacted_idx,
						     o->st.compacted_idx + 1, &l),
				 0);
		if (l.n)
			o->first_val = entry_val(&l.entries[0]);
		opx_entry_list_clear(&l);
	}
}

static bool same(const struct snapshot_of_storage *a, const struct snapshot_of_storage *b)
{
	return a->st.decided_idx == b->st.decided_idx && a->st.log_end == b->st.log_end &&
	       a->st.compacted_idx == b->st.compacted_idx &&
	       a->st.has_snapshot == b->st.has_snapshot &&
	       opx_ballot_eq(&a->st.accepted_round, &b->st.accepted_round) &&
	       a->first_val == b->first_val;
}

/* A follower (node 1) promised to node 2's ballot 5. */
static struct opx *promised_follower(struct opx_storage_mem **smp)
{
	*smp = opx_storage_mem_new();
	struct opx_config c = cfg3(1);
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, opx_storage_mem_storage(*smp), NULL, 0), 0);
	struct opx_msg m = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_PREPARE};
	m.u.prepare.n = ballot(5, 0, 2);
	assert_int_equal(opx_handle_incoming(px, &m), 0);
	const struct opx_msg *out;
	opx_take_outgoing(px, &out);
	return px;
}

/* Eight 16-byte entries with values first, first + 1, ... in caller memory. */
struct ents8 {
	struct opx_entry e[8];
	uint8_t buf[8][16];
};

static void fill_ents(struct ents8 *x, uint64_t first)
{
	for (int i = 0; i < 8; i++) {
		memset(x->buf[i], 0, 16);
		uint64_t v = first + (uint64_t)i;
		memcpy(x->buf[i], &v, 8);
		x->e[i].data = x->buf[i];
		x->e[i].len = 16;
	}
}

/*
 * Runs `step` (one handler call) with the k-th write failing, for every k
 * until the step succeeds without reaching the failure; checks that each
 * failure stopped the instance and left storage either as before or as
 * after a successful run.
 */
static void atomic_loop(struct opx *(*setup)(struct opx_storage_mem **), int (*step)(struct opx *),
			const char *what)
{
	struct snapshot_of_storage before, after_ok, now;
	struct opx_storage_mem *sm;
	struct opx *px = setup(&sm);
	take(sm, &before);
	assert_int_equal(step(px), 0);
	take(sm, &after_ok);
	assert_false(same(&before, &after_ok)); /* the step does write */
	opx_destroy(&px);
	opx_storage_mem_destroy(&sm);
	for (uint64_t k = 1; k < 10; k++) {
		px = setup(&sm);
		uint64_t w0 = opx_storage_mem_writes(sm);
		opx_storage_mem_fail_write(sm, k, false);
		int rc = step(px);
		take(sm, &now);
		if (opx_storage_mem_writes(sm) - w0 < k) {
			assert_int_equal(rc, 0); /* never reached the failure */
			opx_destroy(&px);
			opx_storage_mem_destroy(&sm);
			return;
		}
		if (rc != -EIO)
			fail_msg("%s: write %llu failed but the call returned %d", what,
				 (unsigned long long)k, rc);
		assert_int_equal(opx_tick(px), -EIO); /* stopped */
		assert_int_equal(opx_append(px, "x", 1), -EIO);
		if (!same(&now, &before) && !same(&now, &after_ok) && k == 1)
			fail_msg("%s: write 1 failed and storage is half applied", what);
		/* whatever was written is consistent: restart recovers */
		opx_destroy(&px);
		struct opx_config c = cfg3(1);
		assert_int_equal(opx_new(&px, &c, opx_storage_mem_storage(sm), NULL, 0), 0);
		assert_true(opx_decided_idx(px) <= opx_accepted_idx(px));
		assert_true(opx_compacted_idx(px) <= opx_decided_idx(px));
		opx_destroy(&px);
		opx_storage_mem_destroy(&sm);
	}
}

static int step_accept_sync(struct opx *px)
{
	struct ents8 x;
	fill_ents(&x, 100);
	struct opx_msg m = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_ACCEPT_SYNC};
	m.u.accept_sync.n = ballot(5, 0, 2);
	m.u.accept_sync.seq = (struct opx_seq){1, 1};
	m.u.accept_sync.decided_idx = 3;
	m.u.accept_sync.log_sync.suffix = x.e;
	m.u.accept_sync.log_sync.n_suffix = 5;
	return opx_handle_incoming(px, &m);
}

static struct opx *synced_follower(struct opx_storage_mem **smp)
{
	struct opx *px = promised_follower(smp);
	assert_int_equal(step_accept_sync(px), 0);
	const struct opx_msg *out;
	opx_take_outgoing(px, &out);
	return px;
}

static int step_accept_decide(struct opx *px)
{
	struct ents8 x;
	fill_ents(&x, 200);
	struct opx_msg m = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_ACCEPT_DECIDE};
	m.u.accept_decide.n = ballot(5, 0, 2);
	m.u.accept_decide.seq = (struct opx_seq){1, 2};
	m.u.accept_decide.decided_idx = 7; /* covers entries it brings */
	m.u.accept_decide.entries = x.e;
	m.u.accept_decide.n_entries = 3;
	return opx_handle_incoming(px, &m);
}

static int step_snapshot(struct opx *px)
{
	return opx_snapshot(px, true, 3, true);
}

static int step_trim_msg(struct opx *px)
{
	struct opx_msg m = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_COMPACTION};
	m.u.compaction.kind = OPX_COMPACTION_TRIM;
	m.u.compaction.has_idx = true;
	m.u.compaction.idx = 2;
	return opx_handle_incoming(px, &m);
}

/* Node 1 leads ballot 1.0.1 (through try_become_leader) and a Promise from
 * node 2 carries a more up-to-date log with a Complete snapshot. */
static struct opx *preparing_leader(struct opx_storage_mem **smp)
{
	*smp = opx_storage_mem_new();
	struct opx_config c = cfg3(1);
	struct opx *px;
	assert_int_equal(opx_new(&px, &c, opx_storage_mem_storage(*smp), NULL, 0), 0);
	assert_int_equal(opx_try_become_leader(px), 0);
	const struct opx_msg *out;
	opx_take_outgoing(px, &out);
	return px;
}

static int step_majority_promises(struct opx *px)
{
	struct ents8 x;
	fill_ents(&x, 300);
	uint8_t snap[16];
	uint64_t four = 4, h = 0;
	for (int i = 0; i < 4; i++)
		h ^= sim_entry_hash(x.buf[i], 16);
	memcpy(snap, &four, 8);
	memcpy(snap + 8, &h, 8);
	struct opx_msg m = {.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_PROMISE};
	m.u.promise.n = opx_promise(px);
	m.u.promise.n_accepted = ballot(1, 0, 3);
	m.u.promise.decided_idx = 4;
	m.u.promise.accepted_idx = 6;
	m.u.promise.has_log_sync = true;
	m.u.promise.log_sync.snapshot_kind = OPX_SNAPSHOT_COMPLETE;
	m.u.promise.log_sync.snapshot = snap;
	m.u.promise.log_sync.snapshot_len = 16;
	m.u.promise.log_sync.sync_idx = 4;
	m.u.promise.log_sync.suffix = x.e + 4;
	m.u.promise.log_sync.n_suffix = 2;
	int rc = opx_handle_incoming(px, &m);
	if (rc == 0) {
		bool acc;
		opx_current_leader(px, &acc);
		assert_true(acc);
		assert_int_equal(opx_accepted_idx(px), 6);
		assert_int_equal(opx_compacted_idx(px), 4);
		assert_int_equal(opx_decided_idx(px), 4);
	}
	return rc;
}

static void test_core_atomic_accept_sync(void **state)
{
	(void)state;
	atomic_loop(promised_follower, step_accept_sync, "AcceptSync");
}

static void test_core_atomic_accept_decide(void **state)
{
	(void)state;
	atomic_loop(synced_follower, step_accept_decide, "AcceptDecide");
}

static void test_core_atomic_snapshot(void **state)
{
	(void)state;
	atomic_loop(synced_follower, step_snapshot, "Snapshot");
}

static void test_core_atomic_trim(void **state)
{
	(void)state;
	atomic_loop(synced_follower, step_trim_msg, "Trim");
}

static void test_core_atomic_promises(void **state)
{
	(void)state;
	atomic_loop(preparing_leader, step_majority_promises, "majority Promises");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_ballot_order),
		cmocka_unit_test(test_core_config_validation),
		cmocka_unit_test(test_core_quorum_connected),
		cmocka_unit_test(test_core_storage_mem),
		cmocka_unit_test(test_core_msg_dup),
		cmocka_unit_test(test_core_single_node),
		cmocka_unit_test(test_core_snapshot_by_count),
		cmocka_unit_test(test_core_read),
		cmocka_unit_test(test_core_read_entries),
		cmocka_unit_test(test_core_refuses_inconsistent_storage),
		cmocka_unit_test(test_core_malformed_dropped),
		cmocka_unit_test(test_core_atomic_accept_sync),
		cmocka_unit_test(test_core_atomic_accept_decide),
		cmocka_unit_test(test_core_atomic_snapshot),
		cmocka_unit_test(test_core_atomic_trim),
		cmocka_unit_test(test_core_atomic_promises),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
