/*
 * The deterministic cluster simulator (see sim.h). One file on purpose: the
 * event queue, the network model, node lifecycle and the safety checker are
 * small and only make sense together. It does not print; tests report
 * sim_error() and the seed.
 */
#include "sim.h"
#include "storage_mem.h"
#include "storage_rocksdb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ev {
	uint64_t time, seq;
	uint32_t to, from;
	uint64_t incarnation; /* of the receiver when sent */
	struct opx_msg *m;    /* one block, owned */
};

struct node {
	struct opx *px;
	struct opx_storage_mem *st;
	uint64_t incarnation;
	uint64_t checked;	  /* decided entries [0, checked) verified */
	uint64_t last_dec;	  /* decided index at the last check (this incarnation) */
	uint64_t appended;	  /* entries appended at this node */
	bool crash_next;	  /* crash inside the next call */
	uint64_t alloc_nth;	  /* the core's nth allocation from now fails; 0: none */
	struct opx_storage inner; /* the node's store, behind the checking wrapper */
	struct sim *sim;	  /* for the wrapper */
	uint32_t idx;
	bool wrote;		       /* its store was written during this event */
	uint32_t cfg;		       /* the configuration it runs (index in sim.configs) */
	struct opx_ballot max_promise; /* highest promise seen in that configuration */
	struct opx_rocks *rocks;       /* its RocksDB log (sim_opts.rocksdb_dir) or NULL */
	uint64_t fail_nth;	       /* RocksDB: the nth write from now fails */
	bool fail_persistent;
	bool removed; /* not a member of the configuration it reached */
};

/* A configuration the cluster reached: its members, and the global index of
 * its log index 0 (one past the stop-sign that ended the one before). */
struct sim_config {
	struct opx_cluster_config cluster;
	uint64_t base;
};

struct sim_led {
	struct opx_ballot ballot;
	uint32_t node;
};

struct sim {
	struct sim_opts o;
	struct opx_config cfg; /* node 0's; pid patched per node */
	struct node nodes[OPX_MAX_NODES];
	bool cut[OPX_MAX_NODES][OPX_MAX_NODES]; /* cut[a][b]: a -> b down */
	uint64_t fifo[OPX_MAX_NODES][OPX_MAX_NODES];
	uint64_t tick_at[OPX_MAX_NODES];     /* next tick of each node */
	uint64_t stall_until[OPX_MAX_NODES]; /* sim_stall: runs nothing before */
	uint64_t late_since[OPX_MAX_NODES];  /* its first tick a stall skipped */
	struct sim_net net;
	uint64_t rng;
	uint64_t now, seq;
	struct ev *heap;
	size_t n_ev, cap_ev;
	sim_filter_fn filter;
	void *filter_ctx;
	char err[256];
	bool failed;
	uint64_t fail_stops;
	/* the decided log as first seen on any node */
	uint64_t *hash;
	uint64_t *prefix_xor; /* prefix_xor[i] = xor of hash[0..i) */
	uint64_t n_dec, cap_dec;
	/* every ballot a node led, and which node led it */
	struct sim_led *leaders;
	size_t n_leaders, cap_leaders;
	uint64_t delivered, net_bytes;
	uint64_t alloc_failures;
	struct sim_config configs[SIM_MAX_CONFIGS];
	uint32_t n_configs;
	FILE *trace;
	uint64_t appended;
};

/* ---- PRNG: splitmix64, enough for schedules and fully deterministic ---- */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t sim_rand(struct sim *s)
{
	return splitmix(&s->rng);
}

static bool chance(struct sim *s, uint32_t pm)
{
	return pm && sim_rand(s) % 1000 < pm;
}

/* ---- allocation failures ----
 *
 * Executables that link the simulator wrap malloc, calloc and realloc
 * (tests/lib/meson.build: -Wl,--wrap=...), so the pure core needs no seam of
 * its own. The wrappers fail only while armed, and the simulator arms them
 * only around one call into one node's core, counting that node's
 * allocations down; one process runs one simulated call at a time. */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static struct {
	uint64_t countdown; /* this allocation fails when it reaches 0 */
	bool fired;
} alloc_fault;

static bool alloc_fails(void)
{
	if (!alloc_fault.countdown || --alloc_fault.countdown)
		return false;
	alloc_fault.fired = true;
	return true;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : __real_realloc(p, n);
}

static void alloc_arm(struct sim *s, uint32_t i)
{
	alloc_fault.countdown = s->nodes[i].alloc_nth;
	alloc_fault.fired = false;
}

/* Ends the armed window; returns rc so that a call can be wrapped. */
static int alloc_disarm(struct sim *s, uint32_t i, int rc)
{
	s->nodes[i].alloc_nth = alloc_fault.countdown;
	if (alloc_fault.fired)
		s->alloc_failures++;
	alloc_fault.countdown = 0;
	alloc_fault.fired = false;
	return rc;
}

/* A call into node i's core with its allocation faults armed. */
#define CORE_CALL(s, i, call) (alloc_arm((s), (i)), alloc_disarm((s), (i), (call)))

/* ---- the store each core sees: the node's own, wrapped ----
 *
 * Allocation faults are paused while storage writes and loads: a store that
 * runs out of memory fails the write, which is a fail-stop, and storage
 * failures are injected on their own (sim_fail_write). Reads stay armed:
 * the core must cope with a read that fails. */

static void check_write(struct node *nd, const struct opx_storage_op *ops, size_t n);

/*
 * Whether a write could change what a store returns for decided indexes, so
 * that check_node reads the whole decided prefix back: any write to a
 * RocksDB log (the store is what is tested there), and on storage_mem every
 * write but the steady-state ones (entries appended at the end, the decided
 * index, the promise), which check_write has seen and which re-reading after
 * every one of them would make the checker quadratic in the log length.
 */
static bool reshapes_log(const struct node *nd, const struct opx_storage_op *ops, size_t n)
{
	if (nd->rocks)
		return true;
	for (size_t k = 0; k < n; k++)
		if (ops[k].type != OPX_OP_APPEND_ENTRIES && ops[k].type != OPX_OP_SET_DECIDED_IDX &&
		    ops[k].type != OPX_OP_SET_PROMISE)
			return true;
	return false;
}

/* A write through the inner store (synced or not), with the node's planned
 * write failures and the checks every write gets. */
static int store_write_with(void *impl, const struct opx_storage_op *ops, size_t n, bool synced)
{
	struct node *nd = impl;
	const struct opx_storage *in = &nd->inner;
	uint64_t saved = alloc_fault.countdown;
	alloc_fault.countdown = 0;
	int rc;
	if (nd->rocks && nd->fail_nth && --nd->fail_nth == 0) {
		nd->fail_nth = nd->fail_persistent ? 1 : 0;
		rc = -EIO;
	} else {
		check_write(nd, ops, n);
		rc = synced ? in->ops->write_atomically(in->impl, ops, n)
			    : in->ops->write_unsynced(in->impl, ops, n);
		nd->wrote = nd->wrote || reshapes_log(nd, ops, n);
	}
	alloc_fault.countdown = saved;
	return rc;
}

static int store_write(void *impl, const struct opx_storage_op *ops, size_t n)
{
	return store_write_with(impl, ops, n, true);
}

static int store_write_unsynced(void *impl, const struct opx_storage_op *ops, size_t n)
{
	return store_write_with(impl, ops, n, false);
}

static int store_sync(void *impl)
{
	const struct opx_storage *in = &((struct node *)impl)->inner;
	uint64_t saved = alloc_fault.countdown;
	alloc_fault.countdown = 0;
	int rc = in->ops->sync(in->impl);
	alloc_fault.countdown = saved;
	return rc;
}

static int store_load(void *impl, struct opx_storage_state *st)
{
	const struct opx_storage *in = &((struct node *)impl)->inner;
	uint64_t saved = alloc_fault.countdown;
	alloc_fault.countdown = 0;
	int rc = in->ops->load(in->impl, st);
	alloc_fault.countdown = saved;
	return rc;
}

static int store_get_entries(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	const struct opx_storage *in = &((struct node *)impl)->inner;
	return in->ops->get_entries(in->impl, from, to, out);
}

static int store_get_snapshot(void *impl, uint8_t **data, uint32_t *len)
{
	const struct opx_storage *in = &((struct node *)impl)->inner;
	return in->ops->get_snapshot(in->impl, data, len);
}

static const struct opx_storage_ops store_ops = {
	.version = OPX_STORAGE_VERSION,
	.write_atomically = store_write,
	.load = store_load,
	.get_entries = store_get_entries,
	.get_snapshot = store_get_snapshot,
	.write_unsynced = store_write_unsynced,
	.sync = store_sync,
};

/* ---- entries and snapshots ---- */

uint64_t sim_entry_hash(const uint8_t *data, uint32_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 0x100000001b3ull;
	}
	return h | 1; /* never 0: 0 means "none" */
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static int snap_create(void *ctx, const struct opx_entry *e, uint32_t n, uint8_t **out,
		       uint32_t *out_len)
{
	(void)ctx;
	uint64_t x = 0;
	for (uint32_t i = 0; i < n; i++)
		x ^= sim_entry_hash(e[i].data, e[i].len);
	*out = malloc(16);
	if (!*out)
		return -ENOMEM;
	put64(*out, n);
	put64(*out + 8, x);
	*out_len = 16;
	return 0;
}

static int snap_merge(void *ctx, const uint8_t *base, uint32_t base_len, const uint8_t *delta,
		      uint32_t delta_len, uint8_t **out, uint32_t *out_len)
{
	(void)ctx;
	if (base_len != 16 || delta_len != 16)
		return -EINVAL;
	*out = malloc(16);
	if (!*out)
		return -ENOMEM;
	put64(*out, get64(base) + get64(delta));
	put64(*out + 8, get64(base + 8) ^ get64(delta + 8));
	*out_len = 16;
	return 0;
}

const struct opx_snapshot_ops sim_snapshot_ops = {.create = snap_create, .merge = snap_merge};

/* ---- safety checker ---- */

static void violation(struct sim *s, const char *what, uint32_t i, uint64_t idx)
{
	if (s->failed)
		return;
	s->failed = true;
	snprintf(s->err, sizeof(s->err), "seed %llu, tick %llu, node %llu, index %llu: %s",
		 (unsigned long long)s->o.seed, (unsigned long long)(s->now / s->o.tick_len),
		 (unsigned long long)s->o.ids[i], (unsigned long long)idx, what);
}

static bool record_grow(struct sim *s, uint64_t want)
{
	if (want <= s->cap_dec)
		return true;
	uint64_t cap = s->cap_dec ? s->cap_dec : 1024;
	while (cap < want)
		cap *= 2;
	uint64_t *h = realloc(s->hash, cap * sizeof(*h));
	if (!h)
		return false;
	s->hash = h;
	uint64_t *p = realloc(s->prefix_xor, (cap + 1) * sizeof(*p));
	if (!p)
		return false;
	s->prefix_xor = p;
	s->cap_dec = cap;
	return true;
}

/* Node i decided hash h at idx: it must match what anyone decided there. */
static void check_decided(struct sim *s, uint32_t i, uint64_t idx, uint64_t h)
{
	if (idx < s->n_dec) {
		if (s->hash[idx] != h)
			violation(s, "two nodes decided different entries", i, idx);
		return;
	}
	if (idx != s->n_dec) {
		violation(s, "checker lost track of the decided log", i, idx);
		return;
	}
	if (!record_grow(s, idx + 1)) {
		violation(s, "out of memory", i, idx);
		return;
	}
	if (idx == 0)
		s->prefix_xor[0] = 0;
	s->hash[idx] = h;
	s->prefix_xor[idx + 1] = s->prefix_xor[idx] ^ h;
	s->n_dec = idx + 1;
}

static bool proposed(const struct sim *s, const struct opx_entry *e)
{
	if (e->len < 16)
		return false;
	uint64_t node = get64(e->data), k = get64(e->data + 8);
	return node < s->o.n && k < s->nodes[node].appended;
}

/* Node i leads ballot b: no other node may ever have led b (the history
 * holds every ballot led so far, across crashes). */
static void check_leader(struct sim *s, uint32_t i, const struct opx_ballot *b)
{
	for (size_t k = 0; k < s->n_leaders; k++) {
		if (!opx_ballot_eq(&s->leaders[k].ballot, b))
			continue;
		if (s->leaders[k].node != i)
			violation(s, "two leaders with one ballot", i, 0);
		return;
	}
	if (s->n_leaders == s->cap_leaders) {
		size_t cap = s->cap_leaders ? s->cap_leaders * 2 : 16;
		struct sim_led *l = realloc(s->leaders, cap * sizeof(*l));
		if (!l) {
			violation(s, "out of memory", i, 0);
			return;
		}
		s->leaders = l;
		s->cap_leaders = cap;
	}
	s->leaders[s->n_leaders++] = (struct sim_led){.ballot = *b, .node = i};
}

/* Every write that lays entries below the node's decided index must lay
 * the entries decided there, and none may drop them: together with the
 * re-read in check_node, the whole decided prefix is checked whenever it
 * could change, not only as it grows. */
static void check_write(struct node *nd, const struct opx_storage_op *ops, size_t n)
{
	struct sim *s = nd->sim;
	if (!nd->px || s->failed || s->o.fast)
		return;
	uint64_t dec = opx_decided_idx(nd->px), base = s->configs[nd->cfg].base;
	/* a decided stop-sign is counted in dec but is no entry */
	uint64_t dec_entries = dec - (opx_is_reconfigured(nd->px) ? 1 : 0);
	for (size_t k = 0; k < n; k++) {
		const struct opx_storage_op *op = &ops[k];
		if (op->type != OPX_OP_APPEND_ON_PREFIX)
			continue;
		uint64_t from = op->u.append.from_idx;
		if (from + op->u.append.n < dec_entries)
			violation(s, "a write drops decided entries", nd->idx, from);
		for (uint32_t j = 0; j < op->u.append.n && from + j < dec_entries; j++) {
			const struct opx_entry *e = &op->u.append.entries[j];
			uint64_t g = base + from + j;
			if (g < s->n_dec && s->hash[g] != sim_entry_hash(e->data, e->len))
				violation(s, "a write replaces a decided entry", nd->idx, from + j);
		}
	}
}

static void check_node(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	struct opx *px = nd->px;
	if (!px || s->failed)
		return;
	/* the few fields needed, without opx_get_status (hot in benchmarks) */
	struct {
		uint64_t compacted_idx, decided_idx, accepted_idx;
		struct opx_ballot promise;
		bool leading; /* role Leader (any phase) of the ballot it is promised to */
	} st;
	st.compacted_idx = opx_compacted_idx(px);
	st.decided_idx = opx_decided_idx(px);
	st.accepted_idx = opx_accepted_idx(px);
	st.promise = opx_promise(px);
	st.leading = opx_is_leader(px);
	if (st.compacted_idx > st.decided_idx || st.decided_idx > st.accepted_idx)
		violation(s, "compacted <= decided <= accepted broken", i, st.decided_idx);
	if (st.decided_idx < nd->last_dec)
		violation(s, "decided index went back", i, st.decided_idx);
	nd->last_dec = st.decided_idx;
	/* a promise is durable: it never goes back, across restarts too (what
	 * was seen here had been synced: messages leave after the sync) */
	if (opx_ballot_cmp(&st.promise, &nd->max_promise) < 0)
		violation(s, "promise went back", i, st.decided_idx);
	nd->max_promise = st.promise;
	if (st.leading)
		check_leader(s, i, &st.promise);
	uint64_t base = s->configs[nd->cfg].base;
	if (s->o.fast) {
		nd->checked = st.decided_idx;
		if (base + st.decided_idx > s->n_dec)
			s->n_dec = base + st.decided_idx;
		return;
	}
	/* the store was reshaped (reshapes_log): read the whole decided
	 * prefix again */
	if (nd->wrote)
		nd->checked = 0;
	nd->wrote = false;
	if (st.decided_idx <= nd->checked)
		return;
	struct opx_read r = {0};
	int rc = opx_read_entries(px, nd->checked, st.decided_idx, &r);
	if (rc) {
		violation(s, "cannot read decided entries", i, nd->checked);
		return;
	}
	uint64_t next = nd->checked;
	for (uint32_t k = 0; k < r.n && !s->failed; k++) {
		const struct opx_item *it = &r.items[k];
		switch (it->kind) {
		case OPX_ITEM_SNAPSHOTTED:
			if (s->o.snapshots && base + it->compacted_idx <= s->n_dec &&
			    (it->snapshot_len != 16 || get64(it->snapshot) != it->compacted_idx ||
			     get64(it->snapshot + 8) != (s->prefix_xor[base + it->compacted_idx] ^
							 s->prefix_xor[base])))
				violation(s, "snapshot differs from the decided prefix", i,
					  it->compacted_idx);
			next = it->compacted_idx;
			break;
		case OPX_ITEM_TRIMMED:
			next = it->compacted_idx;
			break;
		case OPX_ITEM_DECIDED:
			if (it->idx != next)
				violation(s, "read returned a gap", i, it->idx);
			if (!proposed(s, &it->entry))
				violation(s, "decided an entry nobody proposed", i, it->idx);
			check_decided(s, i, base + it->idx,
				      sim_entry_hash(it->entry.data, it->entry.len));
			next = it->idx + 1;
			break;
		case OPX_ITEM_STOPSIGN:
			if (!it->ss_decided || it->idx != next) {
				violation(s, "bad stop-sign item in the decided range", i, it->idx);
				break;
			}
			check_decided(s, i, base + it->idx,
				      sim_entry_hash(it->ss->metadata, it->ss->metadata_len) ^
					      it->ss->next.config_id);
			next = it->idx + 1;
			break;
		default:
			violation(s, "undecided item in the decided range", i, it->idx);
		}
	}
	opx_read_free(&r);
	if (!s->failed && next != st.decided_idx)
		violation(s, "read of the decided range came up short", i, next);
	nd->checked = next;
}

/* ---- event queue: a binary heap on (time, seq) ---- */

static void trace_msg(struct sim *s, const struct opx_msg *m)
{
	const struct opx_msg *x = m;
	fprintf(s->trace, "t%llu %llu->%llu %s", (unsigned long long)s->now,
		(unsigned long long)x->from, (unsigned long long)x->to, opx_msg_type_name(x->type));
	switch (x->type) {
	case OPX_MSG_PREPARE:
		fprintf(s->trace, " n=%u.%llu nacc=%u.%llu dec=%llu acc=%llu", x->u.prepare.n.n,
			(unsigned long long)x->u.prepare.n.pid, x->u.prepare.n_accepted.n,
			(unsigned long long)x->u.prepare.n_accepted.pid,
			(unsigned long long)x->u.prepare.decided_idx,
			(unsigned long long)x->u.prepare.accepted_idx);
		break;
	case OPX_MSG_PROMISE:
		fprintf(s->trace, " n=%u nacc=%u.%llu dec=%llu acc=%llu ls=%d", x->u.promise.n.n,
			x->u.promise.n_accepted.n, (unsigned long long)x->u.promise.n_accepted.pid,
			(unsigned long long)x->u.promise.decided_idx,
			(unsigned long long)x->u.promise.accepted_idx, x->u.promise.has_log_sync);
		break;
	case OPX_MSG_ACCEPT_SYNC:
		fprintf(s->trace, " n=%u seq=%llu.%llu dec=%llu sync=%llu+%u snap=%d",
			x->u.accept_sync.n.n, (unsigned long long)x->u.accept_sync.seq.session,
			(unsigned long long)x->u.accept_sync.seq.counter,
			(unsigned long long)x->u.accept_sync.decided_idx,
			(unsigned long long)x->u.accept_sync.log_sync.sync_idx,
			x->u.accept_sync.log_sync.n_suffix,
			x->u.accept_sync.log_sync.snapshot_kind);
		break;
	case OPX_MSG_ACCEPT_DECIDE:
		fprintf(s->trace, " n=%u seq=%llu.%llu dec=%llu +%u", x->u.accept_decide.n.n,
			(unsigned long long)x->u.accept_decide.seq.session,
			(unsigned long long)x->u.accept_decide.seq.counter,
			(unsigned long long)x->u.accept_decide.decided_idx,
			x->u.accept_decide.n_entries);
		break;
	case OPX_MSG_DECIDE:
		fprintf(s->trace, " n=%u seq=%llu.%llu dec=%llu", x->u.decide.n.n,
			(unsigned long long)x->u.decide.seq.session,
			(unsigned long long)x->u.decide.seq.counter,
			(unsigned long long)x->u.decide.decided_idx);
		break;
	case OPX_MSG_ACCEPTED:
		fprintf(s->trace, " n=%u acc=%llu", x->u.accepted.n.n,
			(unsigned long long)x->u.accepted.accepted_idx);
		break;
	case OPX_MSG_COMPACTION:
		fprintf(s->trace, " kind=%d idx=%llu", x->u.compaction.kind,
			(unsigned long long)x->u.compaction.idx);
		break;
	default:
		break;
	}
	struct opx *px = s->nodes[sim_index_of(s, m->to)].px;
	fprintf(s->trace, " | dst dec=%llu acc=%llu cmp=%llu\n",
		(unsigned long long)opx_decided_idx(px), (unsigned long long)opx_accepted_idx(px),
		(unsigned long long)opx_compacted_idx(px));
}

void sim_set_trace(struct sim *s, void *f)
{
	s->trace = f;
}

static bool ev_less(const struct ev *a, const struct ev *b)
{
	return a->time != b->time ? a->time < b->time : a->seq < b->seq;
}

static void heap_push(struct sim *s, struct ev e)
{
	if (s->n_ev == s->cap_ev) {
		size_t cap = s->cap_ev ? s->cap_ev * 2 : 256;
		struct ev *h = realloc(s->heap, cap * sizeof(*h));
		if (!h) {
			free(e.m); /* lost, as a network may lose it */
			return;
		}
		s->heap = h;
		s->cap_ev = cap;
	}
	size_t i = s->n_ev++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(&e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = e;
}

static struct ev heap_pop(struct sim *s)
{
	struct ev top = s->heap[0];
	struct ev last = s->heap[--s->n_ev];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->n_ev)
			break;
		if (c + 1 < s->n_ev && ev_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n_ev)
		s->heap[i] = last;
	return top;
}

/* ---- network ---- */

static uint64_t entry_bytes(const struct opx_msg *m)
{
	uint64_t b = 0;
	const struct opx_entry *e = NULL;
	uint32_t n = 0;
	if (m->type == OPX_MSG_ACCEPT_DECIDE) {
		e = m->u.accept_decide.entries;
		n = m->u.accept_decide.n_entries;
	} else if (m->type == OPX_MSG_ACCEPT_SYNC) {
		e = m->u.accept_sync.log_sync.suffix;
		n = m->u.accept_sync.log_sync.n_suffix;
	}
	for (uint32_t i = 0; i < n; i++)
		b += e[i].len;
	return b;
}

static void send_one(struct sim *s, uint32_t from, const struct opx_msg *m)
{
	int to = sim_index_of(s, m->to);
	if (to < 0 || s->cut[from][to] || chance(s, s->net.drop_pm))
		return;
	if (s->filter && !s->filter(s->filter_ctx, m))
		return;
	int copies = chance(s, s->net.dup_pm) ? 2 : 1;
	for (int c = 0; c < copies; c++) {
		struct opx_msg *d = opx_msg_dup(m);
		if (!d)
			return;
		s->net_bytes += entry_bytes(m);
		uint32_t span = s->net.delay_max > s->net.delay_min
					? s->net.delay_max - s->net.delay_min + 1
					: 1;
		uint64_t t = s->now + s->net.delay_min + sim_rand(s) % span;
		if (t <= s->now)
			t = s->now + 1;
		if (!chance(s, s->net.reorder_pm)) {
			if (t < s->fifo[from][to])
				t = s->fifo[from][to];
			s->fifo[from][to] = t;
		}
		struct ev e = {.time = t,
			       .seq = s->seq++,
			       .to = (uint32_t)to,
			       .from = from,
			       .incarnation = s->nodes[to].incarnation,
			       .m = d};
		heap_push(s, e);
	}
}

static void node_down(struct sim *s, uint32_t i)
{
	opx_destroy(&s->nodes[i].px);
}

static void next_config(struct sim *s, uint32_t i, const struct opx_stopsign *ss);

/* After every call into node i: fail-stop on -EIO, make writes durable,
 * send the outbox, check safety. */
static int after_call(struct sim *s, uint32_t i, int rc)
{
	struct node *nd = &s->nodes[i];
	if (!nd->px)
		return rc;
	if (rc == -EIO) {
		if (s->trace)
			fprintf(s->trace, "n%llu: fail-stop at t%llu\n",
				(unsigned long long)s->o.ids[i], (unsigned long long)s->now);
		s->fail_stops++;
		sim_crash(s, i, true);
		return rc;
	}
	if (nd->crash_next) {
		nd->crash_next = false;
		sim_crash(s, i, true); /* the outbox dies with the node */
		return rc;
	}
	/* The writes of the call are durable before its messages leave; but
	 * for a leader's unsynced append (sync_after_send), whose AcceptDecides
	 * leave first: it stays volatile until the node syncs it. */
	if (s->o.manual_sync && !opx_storage_mem_unsynced(nd->st))
		opx_storage_mem_sync(nd->st);
	const struct opx_msg *out;
	size_t n = opx_take_outgoing(nd->px, &out);
	for (size_t k = 0; k < n; k++)
		send_one(s, i, &out[k]);
	/* As fs/replica does, at every other call; otherwise the core syncs
	 * at the next call that needs it, and a crash before that loses the
	 * append on a leader whose AcceptDecides are out. */
	if (s->o.sync_after_send && (s->now & 1) && opx_sync(nd->px) == -EIO) {
		s->fail_stops++;
		sim_crash(s, i, true);
		return -EIO;
	}
	check_node(s, i);
	const struct opx_stopsign *ss = nd->px ? opx_is_reconfigured(nd->px) : NULL;
	if (s->o.follow_reconfig && ss && !s->failed)
		next_config(s, i, ss);
	return rc;
}

/* ---- lifecycle ---- */

void sim_opts_default(struct sim_opts *o, uint32_t n)
{
	memset(o, 0, sizeof(*o));
	o->n = n;
	o->election_ticks = 1;
	o->resend_ticks = 4;
	o->flush_ticks = 2;
	o->batch_size = 1;
	o->tick_len = 10;
	o->net.delay_min = 1;
	o->net.delay_max = 3;
	o->seed = 1;
}

/* Node i's store: storage_mem, or a RocksDB log under rocksdb_dir. */
static int open_store(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	nd->sim = s;
	nd->idx = i;
	if (s->o.rocksdb_dir) {
		char path[4096], err[256];
		snprintf(path, sizeof(path), "%s/n%llu", s->o.rocksdb_dir,
			 (unsigned long long)s->o.ids[i]);
		int rc = opx_rocks_open(&nd->rocks, path, 1, err, sizeof(err));
		if (rc)
			return rc;
		nd->inner = opx_rocks_storage(nd->rocks);
		return 0;
	}
	nd->st = opx_storage_mem_new();
	if (!nd->st)
		return -ENOMEM;
	if (s->o.manual_sync && opx_storage_mem_set_manual_sync(nd->st, true))
		return -ENOMEM;
	nd->inner = opx_storage_mem_storage(nd->st);
	return 0;
}

/* A new core on node i's store, in the configuration the node runs. */
static int start_core(struct sim *s, uint32_t i)
{
	struct node *nd = &s->nodes[i];
	nd->crash_next = false;
	struct opx_config c = s->cfg;
	c.cluster = s->configs[nd->cfg].cluster;
	c.pid = s->o.ids[i];
	c.leader_priority = s->o.priorities[i];
	char err[128];
	nd->checked = 0;
	nd->last_dec = 0;
	nd->wrote = false;
	struct opx_storage st = {.ops = &store_ops, .impl = nd};
	int rc = opx_new(&nd->px, &c, st, err, sizeof(err));
	if (rc) {
		if (s->trace)
			fprintf(s->trace, "n%llu: restart failed: %s\n", (unsigned long long)c.pid,
				err);
		return rc;
	}
	return after_call(s, i, 0);
}

static int start_node(struct sim *s, uint32_t i)
{
	s->nodes[i].incarnation++;
	return start_core(s, i);
}

static bool is_member(const struct opx_cluster_config *c, opx_node_id id)
{
	for (uint32_t k = 0; k < c->n_nodes; k++)
		if (c->nodes[k] == id)
			return true;
	return false;
}

/*
 * The application's part of a reconfiguration, as fs/replica does it: node
 * i leaves its configuration for configuration `to` (an index in configs)
 * on an emptied log, and a new core. Messages in flight to it stay (they
 * are routed by configuration). A node that is not a member of `to` is
 * removed: it stays down.
 */
static void switch_config(struct sim *s, uint32_t i, uint32_t to)
{
	struct node *nd = &s->nodes[i];
	node_down(s, i);
	nd->cfg = to;
	nd->max_promise = (struct opx_ballot){0};
	if (!is_member(&s->configs[to].cluster, s->o.ids[i])) {
		nd->removed = true;
		return;
	}
	int rc;
	if (nd->rocks) {
		rc = opx_rocks_reset(nd->rocks, s->configs[to].cluster.config_id);
	} else {
		opx_storage_mem_destroy(&nd->st);
		rc = open_store(s, i);
	}
	if (rc) {
		violation(s, "cannot empty the log for the next configuration", i, 0);
		return;
	}
	if (s->trace)
		fprintf(s->trace, "n%llu: configuration %u from t%llu\n",
			(unsigned long long)s->o.ids[i], s->configs[to].cluster.config_id,
			(unsigned long long)s->now);
	start_core(s, i);
}

/* Node i decided the stop-sign ss ending its configuration. */
static void next_config(struct sim *s, uint32_t i, const struct opx_stopsign *ss)
{
	struct node *nd = &s->nodes[i];
	uint32_t to = nd->cfg + 1;
	/* the stop-sign is the last decided index; the next log starts after it */
	uint64_t base = s->configs[nd->cfg].base + opx_decided_idx(nd->px);
	if (to == s->n_configs) {
		if (to == SIM_MAX_CONFIGS)
			return; /* stays in the last one the simulator can hold */
		s->configs[to].cluster = ss->next;
		s->configs[to].base = base;
		s->n_configs++;
	} else if (s->configs[to].cluster.config_id != ss->next.config_id ||
		   s->configs[to].base != base) {
		violation(s, "two nodes ended a configuration differently", i, base);
		return;
	}
	switch_config(s, i, to);
}

static uint32_t config_index(const struct sim *s, uint32_t config_id)
{
	for (uint32_t k = 0; k < s->n_configs; k++)
		if (s->configs[k].cluster.config_id == config_id)
			return k;
	return UINT32_MAX;
}

/* A message across configurations (follow_reconfig), routed as the
 * application does it: one from a later configuration makes the receiver
 * jump to it (its own has ended: a later one exists); one from an earlier
 * configuration makes the receiver tell the sender, which jumps. */
static void cross_config(struct sim *s, uint32_t from, uint32_t to, const struct opx_msg *m)
{
	uint32_t mine = s->nodes[to].cfg, theirs = config_index(s, m->config_id);
	if (theirs == UINT32_MAX || theirs == mine)
		return;
	if (theirs > mine)
		switch_config(s, to, theirs);
	else if (s->nodes[from].px && s->nodes[from].cfg < mine && !s->cut[to][from])
		switch_config(s, from, mine);
}

struct sim *sim_new(const struct sim_opts *o)
{
	if (o->n < 2 || o->n > OPX_MAX_NODES || o->tick_len < 2)
		return NULL;
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->o = *o;
	for (uint32_t i = 0; i < o->n; i++)
		if (!s->o.ids[i])
			s->o.ids[i] = i + 1;
	s->net = o->net;
	s->rng = o->seed;
	for (uint32_t i = 0; i < o->n; i++)
		s->tick_at[i] = 1 + i % o->tick_len; /* staggered */
	struct opx_cluster_config *cc = &s->configs[0].cluster;
	s->n_configs = 1;
	cc->config_id = 1;
	cc->n_nodes = o->n;
	memcpy(cc->nodes, s->o.ids, sizeof(cc->nodes));
	cc->read_quorum = o->read_quorum;
	cc->write_quorum = o->write_quorum;
	s->cfg.election_ticks = o->election_ticks;
	s->cfg.resend_ticks = o->resend_ticks;
	s->cfg.flush_ticks = o->flush_ticks;
	s->cfg.batch_size = o->batch_size;
	s->cfg.snapshot = o->snapshots ? &sim_snapshot_ops : NULL;
	s->cfg.snapshot_only_when_compacted = o->snapshot_only_when_compacted;
	s->cfg.sync_after_send = o->sync_after_send;
	s->cfg.decide_with_next = o->decide_with_next;
	if (o->rocksdb_dir && o->manual_sync)
		goto fail; /* RocksDB syncs every write */
	for (uint32_t i = 0; i < o->n; i++)
		if (open_store(s, i))
			goto fail;
	for (uint32_t i = 0; i < o->n; i++)
		if (start_node(s, i))
			goto fail;
	return s;
fail:
	sim_destroy(&s);
	return NULL;
}

void sim_destroy(struct sim **ps)
{
	struct sim *s = *ps;
	if (!s)
		return;
	for (uint32_t i = 0; i < s->o.n; i++) {
		opx_destroy(&s->nodes[i].px);
		opx_storage_mem_destroy(&s->nodes[i].st);
		opx_rocks_close(&s->nodes[i].rocks);
	}
	for (size_t k = 0; k < s->n_ev; k++)
		free(s->heap[k].m);
	free(s->heap);
	free(s->hash);
	free(s->prefix_xor);
	free(s->leaders);
	free(s);
	*ps = NULL;
}

/* ---- running ---- */

/* The next tick due; ties go to the lower index. */
static uint64_t next_tick(const struct sim *s, uint32_t *who)
{
	uint64_t best = UINT64_MAX;
	for (uint32_t i = 0; i < s->o.n; i++) {
		if (s->tick_at[i] < best) {
			best = s->tick_at[i];
			*who = i;
		}
	}
	return best;
}

bool sim_step(struct sim *s)
{
	if (s->failed)
		return false;
	uint32_t who = 0;
	uint64_t tt = next_tick(s, &who);
	if (s->n_ev && s->heap[0].time <= tt) {
		struct ev e = heap_pop(s);
		s->now = e.time;
		if (s->stall_until[e.to] > e.time) {
			/* waits for the stall's end; popped in order, pushed
			 * back in order */
			e.time = s->stall_until[e.to];
			e.seq = s->seq++;
			heap_push(s, e);
			return true;
		}
		struct node *nd = &s->nodes[e.to];
		if (nd->px && nd->incarnation == e.incarnation && s->o.follow_reconfig)
			cross_config(s, e.from, e.to, e.m);
		if (nd->px && nd->incarnation == e.incarnation && !s->failed) {
			s->delivered++;
			if (s->trace)
				trace_msg(s, e.m);
			after_call(s, e.to, CORE_CALL(s, e.to, opx_handle_incoming(nd->px, e.m)));
		}
		free(e.m);
	} else {
		s->now = tt;
		if (s->stall_until[who] > tt) {
			/* missed ticks are skipped, not replayed: the next one
			 * comes after what waited for the stall's end */
			s->tick_at[who] = s->stall_until[who];
			if (!s->late_since[who])
				s->late_since[who] = tt;
			return true;
		}
		s->tick_at[who] += s->o.tick_len;
		if (s->nodes[who].px && s->late_since[who])
			/* as fs/replica does: the core hears how late it is */
			opx_turn_late(s->nodes[who].px,
				      (uint32_t)((tt - s->late_since[who]) / s->o.tick_len));
		s->late_since[who] = 0;
		if (s->nodes[who].px)
			after_call(s, who, CORE_CALL(s, who, opx_tick(s->nodes[who].px)));
	}
	return !s->failed;
}

bool sim_run_ticks(struct sim *s, uint64_t ticks)
{
	uint64_t end = s->now + ticks * s->o.tick_len;
	while (s->now < end)
		if (!sim_step(s))
			return false;
	return true;
}

bool sim_run_until(struct sim *s, bool (*pred)(struct sim *s, void *arg), void *arg,
		   uint64_t max_ticks)
{
	uint64_t end = s->now + max_ticks * s->o.tick_len;
	while (!pred(s, arg)) {
		if (s->now >= end || !sim_step(s))
			return false;
	}
	return !s->failed;
}

const char *sim_error(const struct sim *s)
{
	return s->failed ? s->err : NULL;
}

/* ---- accessors and faults ---- */

uint32_t sim_n(const struct sim *s)
{
	return s->o.n;
}

opx_node_id sim_id(const struct sim *s, uint32_t i)
{
	return s->o.ids[i];
}

int sim_index_of(const struct sim *s, opx_node_id id)
{
	for (uint32_t i = 0; i < s->o.n; i++)
		if (s->o.ids[i] == id)
			return (int)i;
	return -1;
}

bool sim_up(const struct sim *s, uint32_t i)
{
	return s->nodes[i].px != NULL;
}

struct opx *sim_core(struct sim *s, uint32_t i)
{
	return s->nodes[i].px;
}

struct opx_storage_mem *sim_storage(struct sim *s, uint32_t i)
{
	return s->nodes[i].st;
}

uint64_t sim_now_ticks(const struct sim *s)
{
	return s->now / s->o.tick_len;
}

uint64_t sim_seed(const struct sim *s)
{
	return s->o.seed;
}

void sim_set_net(struct sim *s, const struct sim_net *net)
{
	s->net = *net;
}

void sim_cut(struct sim *s, uint32_t a, uint32_t b, bool both_ways)
{
	s->cut[a][b] = true;
	if (both_ways)
		s->cut[b][a] = true;
}

void sim_connect(struct sim *s, uint32_t a, uint32_t b, bool both_ways)
{
	s->cut[a][b] = false;
	if (both_ways)
		s->cut[b][a] = false;
}

void sim_isolate(struct sim *s, uint32_t i)
{
	for (uint32_t k = 0; k < s->o.n; k++)
		if (k != i)
			sim_cut(s, i, k, true);
}

void sim_heal(struct sim *s)
{
	memset(s->cut, 0, sizeof(s->cut));
	s->net = s->o.net;
}

bool sim_link_up(const struct sim *s, uint32_t a, uint32_t b)
{
	return !s->cut[a][b];
}

void sim_set_filter(struct sim *s, sim_filter_fn fn, void *ctx)
{
	s->filter = fn;
	s->filter_ctx = ctx;
}

void sim_crash(struct sim *s, uint32_t i, bool lose_unsynced)
{
	node_down(s, i);
	if (lose_unsynced && s->nodes[i].st)
		opx_storage_mem_crash(s->nodes[i].st); /* RocksDB syncs every write */
	s->nodes[i].incarnation++;		       /* messages in flight to it are lost */
}

void sim_stall(struct sim *s, uint32_t i, uint64_t ticks)
{
	s->stall_until[i] = s->now + ticks * s->o.tick_len;
}

void sim_crash_in_next_call(struct sim *s, uint32_t i, bool on)
{
	s->nodes[i].crash_next = on;
}

int sim_restart(struct sim *s, uint32_t i)
{
	if (s->nodes[i].px)
		return -EALREADY;
	if (s->nodes[i].removed)
		return -EPERM;
	return start_node(s, i);
}

void sim_fail_write(struct sim *s, uint32_t i, uint64_t nth, bool persistent)
{
	struct node *nd = &s->nodes[i];
	if (nd->rocks) {
		nd->fail_nth = nth;
		nd->fail_persistent = persistent;
	} else {
		opx_storage_mem_fail_write(nd->st, nth, persistent);
	}
}

void sim_fail_alloc(struct sim *s, uint32_t i, uint64_t nth)
{
	s->nodes[i].alloc_nth = nth;
}

uint64_t sim_alloc_failures(const struct sim *s)
{
	return s->alloc_failures;
}

uint64_t sim_fail_stops(const struct sim *s)
{
	return s->fail_stops;
}

int sim_append(struct sim *s, uint32_t i, uint32_t len)
{
	struct node *nd = &s->nodes[i];
	if (!nd->px)
		return -ENODEV;
	uint8_t buf[4096];
	if (len < 16)
		len = 16;
	if (len > sizeof(buf))
		len = sizeof(buf);
	put64(buf, i);
	put64(buf + 8, nd->appended);
	for (uint32_t k = 16; k < len; k++)
		buf[k] = (uint8_t)(k ^ nd->appended);
	nd->appended++; /* before the call: a decided entry is proposed */
	s->appended++;
	return after_call(s, i, CORE_CALL(s, i, opx_append(nd->px, buf, len)));
}

int sim_trim(struct sim *s, uint32_t i, bool has_idx, uint64_t idx)
{
	if (!s->nodes[i].px)
		return -ENODEV;
	return after_call(s, i, CORE_CALL(s, i, opx_trim(s->nodes[i].px, has_idx, idx)));
}

int sim_snapshot(struct sim *s, uint32_t i, bool has_idx, uint64_t idx, bool local_only)
{
	if (!s->nodes[i].px)
		return -ENODEV;
	return after_call(s, i,
			  CORE_CALL(s, i, opx_snapshot(s->nodes[i].px, has_idx, idx, local_only)));
}

int sim_reconfigure(struct sim *s, uint32_t i, const struct opx_cluster_config *next,
		    const uint8_t *md, uint32_t md_len)
{
	if (!s->nodes[i].px)
		return -ENODEV;
	return after_call(s, i, CORE_CALL(s, i, opx_reconfigure(s->nodes[i].px, next, md, md_len)));
}

int sim_try_become_leader(struct sim *s, uint32_t i)
{
	if (!s->nodes[i].px)
		return -ENODEV;
	return after_call(s, i, CORE_CALL(s, i, opx_try_become_leader(s->nodes[i].px)));
}

void sim_reconnected(struct sim *s, uint32_t i, opx_node_id peer)
{
	if (!s->nodes[i].px)
		return;
	alloc_arm(s, i);
	opx_reconnected(s->nodes[i].px, peer);
	after_call(s, i, alloc_disarm(s, i, 0));
}

int sim_leader(const struct sim *s)
{
	int best = -1;
	struct opx_ballot bb = {0};
	for (uint32_t i = 0; i < s->o.n; i++) {
		if (!s->nodes[i].px)
			continue;
		struct opx_status st;
		opx_get_status(s->nodes[i].px, &st);
		if (st.role != OPX_ROLE_LEADER || st.phase != OPX_PHASE_ACCEPT)
			continue;
		/* the latest configuration first (ballots of different ones
		 * compare without their configuration) */
		uint32_t bc = best < 0 ? 0 : s->nodes[best].cfg, c = s->nodes[i].cfg;
		if (best < 0 || c > bc || (c == bc && opx_ballot_cmp(&st.promise, &bb) > 0)) {
			best = (int)i;
			bb = st.promise;
		}
	}
	return best;
}

uint64_t sim_max_decided(const struct sim *s)
{
	return s->n_dec;
}

uint64_t sim_appended(const struct sim *s)
{
	return s->appended;
}

bool sim_all_decided(const struct sim *s, uint64_t idx)
{
	for (uint32_t i = 0; i < s->o.n; i++)
		if (s->nodes[i].px &&
		    s->configs[s->nodes[i].cfg].base + opx_decided_idx(s->nodes[i].px) < idx)
			return false;
	return true;
}

uint32_t sim_config_id(const struct sim *s, uint32_t i)
{
	return s->configs[s->nodes[i].cfg].cluster.config_id;
}

const struct opx_cluster_config *sim_cluster(const struct sim *s, uint32_t i)
{
	return &s->configs[s->nodes[i].cfg].cluster;
}

uint64_t sim_base(const struct sim *s, uint32_t i)
{
	return s->configs[s->nodes[i].cfg].base;
}

uint32_t sim_configs(const struct sim *s)
{
	return s->n_configs;
}

bool sim_stopsign_stored(struct sim *s, uint32_t i)
{
	struct opx *px = s->nodes[i].px;
	if (!px || opx_accepted_idx(px) == 0)
		return false;
	struct opx_read r = {0};
	uint64_t acc = opx_accepted_idx(px);
	bool ss = opx_read_entries(px, acc - 1, acc, &r) == 0 && r.n &&
		  r.items[r.n - 1].kind == OPX_ITEM_STOPSIGN;
	opx_read_free(&r);
	return ss;
}

uint64_t sim_decided_hash(const struct sim *s, uint64_t idx)
{
	return idx < s->n_dec ? s->hash[idx] : 0;
}

uint64_t sim_delivered(const struct sim *s)
{
	return s->delivered;
}

uint64_t sim_net_entry_bytes(const struct sim *s)
{
	return s->net_bytes;
}

void sim_dump(const struct sim *s, void *fp)
{
	FILE *f = fp;
	fprintf(f, "tick %llu, decided anywhere %llu, events queued %zu\n",
		(unsigned long long)(s->now / s->o.tick_len), (unsigned long long)s->n_dec,
		s->n_ev);
	for (uint32_t i = 0; i < s->o.n; i++) {
		if (!s->nodes[i].px) {
			fprintf(f, "  n%llu down\n", (unsigned long long)s->o.ids[i]);
			continue;
		}
		struct opx_status st;
		opx_get_status(s->nodes[i].px, &st);
		fprintf(f,
			"  n%llu c%u %s/%d prom b%u.%u.%llu ble b%u.%u.%llu qc=%d dec=%llu acc=%llu "
			"cmp=%llu dropped=%llu links:",
			(unsigned long long)st.pid, sim_config_id(s, i),
			st.role == OPX_ROLE_LEADER ? "L" : "F", (int)st.phase, st.promise.n,
			st.promise.priority, (unsigned long long)st.promise.pid, st.ble_leader.n,
			st.ble_leader.priority, (unsigned long long)st.ble_leader.pid,
			st.quorum_connected, (unsigned long long)st.decided_idx,
			(unsigned long long)st.accepted_idx, (unsigned long long)st.compacted_idx,
			(unsigned long long)st.dropped_msgs);
		for (uint32_t k = 0; k < st.n_peers; k++)
			fprintf(f, " %llu:%d/%llu", (unsigned long long)st.peers[k].pid,
				st.peers[k].heard_last_round,
				(unsigned long long)st.peers[k].accepted_idx);
		fprintf(f, "\n");
	}
}
