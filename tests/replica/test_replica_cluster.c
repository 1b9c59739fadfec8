/*
 * Replicas in one process (tests/lib/replica_cluster.h): the replica loop,
 * leader changes, catching up from the log and by state transfer, and
 * membership changes, on real RocksDB and ZeroMQ with CURVE, without
 * starting daemons. The integration scripts (test_kv_*.sh,
 * test_membership*.sh) cover the same paths through omnifsd and omnifsctl;
 * these are the fast ones.
 *
 * Every wait polls with a deadline; a timeout prints every node's status.
 * Progress lines on stderr start with "# " and the time since the test began.
 * OMNIFS_TEST_FILTER runs the tests whose names match a glob;
 * OMNIFS_TEST_LOG_LEVEL (default notice) sets the replicas' log level.
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replica_cluster.h"

/* Deadlines: generous for a loaded machine under ASan; the usual times
 * are a small fraction of them. */
#define ELECTION_WAIT_MS 10000
#define CATCH_UP_WAIT_MS 20000
#define PUT_WAIT_MS	 10000

static uint64_t started_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define step(...)                                                                             \
	do {                                                                                  \
		fprintf(stderr, "# %6llu ms: ", (unsigned long long)(now_ms() - started_ms)); \
		fprintf(stderr, __VA_ARGS__);                                                 \
		fputc('\n', stderr);                                                          \
	} while (0)

/* A cluster of n started nodes with a leader; it goes into *state, which
 * the teardown destroys however the test ends. */
static struct rcl *up(void **state, size_t n, const struct rcl_options *opt, uint64_t *leader)
{
	started_ms = now_ms();
	struct rcl *c;
	assert_int_equal(rcl_new(&c, n, opt), 0);
	*state = c;
	assert_int_equal(rcl_start_all(c), 0);
	*leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(*leader != 0);
	step("%zu nodes up in %s, leader n%llu", n, c->root, (unsigned long long)*leader);
	return c;
}

/* A writer the teardown stops if a failed assertion left it running. */
struct acked_writer;
static struct acked_writer *live_writer;
static void writer_stop(struct acked_writer **wp);

static int teardown(void **state)
{
	writer_stop(&live_writer); /* before the replicas it writes through go */
	struct rcl *c = *state;
	rcl_destroy(&c);
	*state = NULL;
	return 0;
}

/* Key on node id has value; its version (the log index that wrote it) into
 * *version if not NULL. */
static void expect_kv(struct rcl *c, uint64_t id, const char *key, const char *value,
		      uint64_t *version)
{
	char *got = NULL;
	int rc = rcl_get(c, id, key, &got, version);
	if (rc != 0 || strcmp(got, value) != 0)
		fprintf(stderr, "n%llu: %s is %s (rc %d), expected %s\n", (unsigned long long)id,
			key, got ? got : "absent", rc, value);
	assert_int_equal(rc, 0);
	assert_string_equal(got, value);
	free(got);
}

/* Keys prefix<i> = v<i> for i in [first, first + count) are on node id, each
 * at the version node ref has it at (the same log index: the same order). */
static void expect_keys(struct rcl *c, uint64_t id, uint64_t ref, const char *prefix,
			unsigned first, unsigned count)
{
	for (unsigned i = first; i < first + count; i++) {
		char key[64], value[32];
		uint64_t v, v_ref;
		snprintf(key, sizeof(key), "%s%u", prefix, i);
		snprintf(value, sizeof(value), "v%u", i);
		expect_kv(c, ref, key, value, &v_ref);
		expect_kv(c, id, key, value, &v);
		if (v != v_ref)
			fprintf(stderr, "%s: @%llu on n%llu, @%llu on n%llu\n", key,
				(unsigned long long)v, (unsigned long long)id,
				(unsigned long long)v_ref, (unsigned long long)ref);
		assert_int_equal(v, v_ref);
	}
}

/* --- predicates for rcl_wait ------------------------------------------------------ */

struct want {
	uint64_t id;
	uint64_t idx;
	uint32_t config_id;
};

static bool is_joining(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.joining;
}

static bool is_removed(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.removed;
}

/* Caught up in configuration w->config_id (or later), applied @w->idx or
 * more. */
static bool caught_up(struct rcl *c, const struct want *w, struct rcl_status *st)
{
	return rcl_status(c, w->id, st) == 0 && st->caught_up && st->applied_idx >= w->idx &&
	       st->config_id >= w->config_id;
}

static bool is_caught_up(struct rcl *c, void *arg)
{
	struct rcl_status st;
	return caught_up(c, arg, &st);
}

/* Caught up as is_caught_up, and by a state transfer. */
static bool caught_up_by_transfer(struct rcl *c, void *arg)
{
	struct rcl_status st;
	return caught_up(c, arg, &st) && st.state_transfers >= 1;
}

static bool compacted_past(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.compacted_idx > w->idx;
}

/* A node of 1..n that is neither a nor b. */
static uint64_t other_than(uint64_t n, uint64_t a, uint64_t b)
{
	for (uint64_t id = 1; id <= n; id++)
		if (id != a && id != b)
			return id;
	return 0;
}

/* --- writes through every node at once ------------------------------------------- */

struct node_writer {
	pthread_t thread;
	struct rcl *c;
	uint64_t id;
	char prefix[32];
	unsigned count;
	int rc;
};

static void *node_writes(void *arg)
{
	struct node_writer *w = arg;
	w->rc = rcl_put_many(w->c, w->id, w->prefix, 0, w->count, 2, PUT_WAIT_MS);
	return NULL;
}

/* Each node of 1..n puts count keys "w/n<id>/<i>" (two threads per node),
 * all nodes at the same time. */
static void write_through_all(struct rcl *c, size_t n, unsigned count)
{
	struct node_writer w[RCL_MAX_NODES];
	for (size_t i = 0; i < n; i++) {
		w[i] = (struct node_writer){.c = c, .id = i + 1, .count = count};
		snprintf(w[i].prefix, sizeof(w[i].prefix), "w/n%zu/", i + 1);
		assert_int_equal(pthread_create(&w[i].thread, NULL, node_writes, &w[i]), 0);
	}
	for (size_t i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(w[i].rc, 0);
}

/* --- a writer that records what was acknowledged ----------------------------------- */

/*
 * One put at a time, through nodes 1..3 in turn, until stopped; a put that
 * returned 0 (acknowledged) is recorded, others (refused by a removed node,
 * no quorum during a change, timed out) are counted. What the membership
 * script's writer does: afterwards, every acknowledged put must be there.
 */
struct acked_writer {
	pthread_t thread;
	struct replica *r[3]; /* taken before the thread starts: it never looks at the cluster */
	atomic_bool stop;
	pthread_mutex_t lock; /* guards what follows */
	unsigned *acked;      /* key numbers acknowledged, in order */
	size_t n_acked, cap;
	unsigned refused[4]; /* EROFS, ETIMEDOUT, ESHUTDOWN, other */
};

static void *acked_writes(void *arg)
{
	struct acked_writer *w = arg;
	for (unsigned k = 0; !atomic_load(&w->stop); k++) {
		char key[32], value[32];
		snprintf(key, sizeof(key), "w/%u", k);
		snprintf(value, sizeof(value), "v%u.n%u", k, k % 3 + 1);
		int rc = rcl_replica_put(w->r[k % 3], key, value);
		pthread_mutex_lock(&w->lock);
		if (rc == 0 && w->n_acked == w->cap) {
			size_t cap = w->cap ? 2 * w->cap : 256;
			unsigned *a = realloc(w->acked, cap * sizeof(*a));
			if (a) {
				w->acked = a;
				w->cap = cap;
			}
		}
		if (rc == 0 && w->n_acked < w->cap)
			w->acked[w->n_acked++] = k;
		else if (rc != 0)
			w->refused[rc == -EROFS	      ? 0
				   : rc == -ETIMEDOUT ? 1
				   : rc == -ESHUTDOWN ? 2
						      : 3]++;
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

static struct acked_writer *writer_start(struct rcl *c)
{
	struct acked_writer *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	for (uint64_t id = 1; id <= 3; id++)
		w->r[id - 1] = rcl_replica(c, id);
	pthread_mutex_init(&w->lock, NULL);
	assert_int_equal(pthread_create(&w->thread, NULL, acked_writes, w), 0);
	live_writer = w;
	return w;
}

/* Stops the thread after its current put; what it recorded stays. */
static void writer_halt(struct acked_writer *w)
{
	if (!atomic_exchange(&w->stop, true))
		pthread_join(w->thread, NULL);
}

static void writer_stop(struct acked_writer **wp)
{
	struct acked_writer *w = *wp;
	if (!w)
		return;
	*wp = NULL;
	live_writer = NULL;
	writer_halt(w);
	pthread_mutex_destroy(&w->lock);
	free(w->acked);
	free(w);
}

static size_t writer_acked(struct acked_writer *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->n_acked;
	pthread_mutex_unlock(&w->lock);
	return n;
}

struct acks_want {
	struct acked_writer *w;
	size_t n;
};

static bool has_acks(struct rcl *c, void *arg)
{
	struct acks_want *a = arg;
	return writer_acked(a->w) >= a->n;
}

/* Waits for n more acknowledged puts: writes go on through the change. */
static void more_acks(struct rcl *c, struct acked_writer *w, size_t n)
{
	struct acks_want a = {.w = w, .n = writer_acked(w) + n};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, has_acks, &a, "more acknowledged puts"));
}

/* Every put the writer had acknowledged is on node id with its value. */
static void expect_acked(struct rcl *c, struct acked_writer *w, uint64_t id)
{
	for (size_t i = 0; i < w->n_acked; i++) {
		unsigned k = w->acked[i];
		char key[32], value[32];
		snprintf(key, sizeof(key), "w/%u", k);
		snprintf(value, sizeof(value), "v%u.n%u", k, k % 3 + 1);
		expect_kv(c, id, key, value, NULL);
	}
}

/* --- the tests ------------------------------------------------------------------------ */

/*
 * Writes proposed through every node at once are applied on every node at
 * the same log index (the same order), and the states end equal.
 */
static void test_replica_cluster_writes_everywhere(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 3, NULL, &leader);
	write_through_all(c, 3, 20);
	step("60 puts through n1, n2 and n3 applied where proposed");
	/* After a barrier a node has applied all that was decided before it:
	 * here, every put. */
	for (uint64_t id = 1; id <= 3; id++) {
		char out[256];
		int st = rcl_control(c, id, out, sizeof(out), "barrier", NULL);
		if (st != 0)
			fprintf(stderr, "barrier on n%llu: status %d: %s", (unsigned long long)id,
				st, out);
		assert_int_equal(st, 0);
		for (uint64_t src = 1; src <= 3; src++) {
			char prefix[32];
			snprintf(prefix, sizeof(prefix), "w/n%llu/", (unsigned long long)src);
			expect_keys(c, id, id, prefix, 0, 20);
		}
	}
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	/* Every key at the same version everywhere: the same order. And the
	 * versions all differ: one entry, one index. */
	uint64_t seen[60];
	size_t n_seen = 0;
	for (uint64_t src = 1; src <= 3; src++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "w/n%llu/", (unsigned long long)src);
		for (uint64_t id = 1; id <= 3; id++)
			expect_keys(c, id, 1, prefix, 0, 20);
		for (unsigned i = 0; i < 20; i++) {
			char key[64], *v;
			snprintf(key, sizeof(key), "%s%u", prefix, i);
			assert_int_equal(rcl_get(c, 1, key, &v, &seen[n_seen]), 0);
			free(v);
			for (size_t j = 0; j < n_seen; j++)
				assert_true(seen[j] != seen[n_seen]);
			n_seen++;
		}
	}
	char hex[65];
	uint64_t idx;
	assert_int_equal(rcl_digest(c, 1, hex, &idx), 0);
	assert_true(idx >= 60);
	step("every node at @%llu, digest %s; every key at one version everywhere",
	     (unsigned long long)idx, hex);
}

/*
 * The leader stops: the other two elect a new leader and keep taking
 * writes; the old leader restarts from its data dir and catches up from the
 * log.
 */
static void test_replica_cluster_leader_restart(void **state)
{
	uint64_t old;
	struct rcl *c = up(state, 3, NULL, &old);
	assert_int_equal(rcl_put_many(c, old, "a/", 0, 10, 2, PUT_WAIT_MS), 0);
	rcl_stop(c, old);
	step("leader n%llu stopped", (unsigned long long)old);
	uint64_t leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	assert_true(leader != old);
	step("n%llu leads now", (unsigned long long)leader);
	for (uint64_t id = 1; id <= 3; id++)
		if (id != old)
			assert_int_equal(rcl_put_many(c, id, id == leader ? "b/l" : "b/f", 0, 20, 4,
						      PUT_WAIT_MS),
					 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	uint64_t target = rcl_applied_idx(c, leader);
	step("40 puts through the two left, both at @%llu", (unsigned long long)target);

	assert_int_equal(rcl_start(c, old), 0);
	struct want w = {.id = old, .idx = target, .config_id = 1};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_caught_up, &w,
			     "the old leader to catch up after its restart"));
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, old, leader, "a/", 0, 10);
	expect_keys(c, old, leader, "b/l", 0, 20);
	expect_keys(c, old, leader, "b/f", 0, 20);
	struct rcl_status st;
	assert_int_equal(rcl_status(c, old, &st), 0);
	assert_int_equal(st.state_transfers, 0); /* the log was enough */
	assert_int_equal(rcl_put_retry(c, old, "c/after-restart", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_kv(c, leader, "c/after-restart", "v", NULL);
	step("n%llu restarted and caught up from the log", (unsigned long long)old);
}

/* Node w->id reaches the leader through node w->idx (a peer id here). */
static bool reaches_via(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && strcmp(st.leader_route, "via") == 0 &&
	       st.via == w->idx && st.quorum;
}

/* After the link between the other two nodes was cut: node w->id (the
 * third) leads, or one end of the cut reaches the leader through it. */
static bool reaches_via_or_moved(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	for (uint64_t end = 1; end <= 3; end++) {
		struct want via = {.id = end, .idx = w->id};
		if (end != w->id && reaches_via(c, &via))
			return true;
	}
	return rcl_status(c, w->id, &st) == 0 && strcmp(st.role, "leader") == 0 && st.quorum;
}

/* All three nodes follow one leader, each linked to it directly. */
static bool settled_direct(struct rcl *c, void *arg)
{
	uint64_t leader = 0;
	for (uint64_t id = 1; id <= 3; id++) {
		struct rcl_status st;
		if (rcl_status(c, id, &st) != 0 || !st.quorum || !st.leader ||
		    strcmp(st.leader_route, "direct") != 0 || (leader && st.leader != leader))
			return false;
		leader = st.leader;
	}
	*(uint64_t *)arg = leader;
	return true;
}

static bool reaches_direct(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && strcmp(st.leader_route, "direct") == 0 &&
	       st.quorum;
}

/* Node w->id's consensus log has decided @w->idx or more itself. */
static bool log_decided(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.decided_idx >= w->idx;
}

/*
 * Cuts the link between the leader and one follower of a 3-node cluster
 * until a node is left cut from a stable leader and reaches it through the
 * third node: *leader, *cut and *mid say who is who.
 *
 * BLE may let either end of the cut lead (the one cut from the new leader
 * then reaches it through the third node), or the third node take over (the
 * paper's variant of the chained scenario): then nobody is cut from the
 * leader, so heal and cut the new leader's link to another node.
 */
static void cut_from_leader(struct rcl *c, uint64_t *leader, uint64_t *cut, uint64_t *mid)
{
	for (int attempt = 0;; attempt++) {
		assert_true(attempt < 6);
		assert_true(rcl_wait(c, ELECTION_WAIT_MS, settled_direct, leader,
				     "every node to follow one leader directly"));
		uint64_t a = *leader, b = other_than(3, a, 0);
		*mid = other_than(3, a, b);
		assert_int_equal(rcl_cut_link(c, a, b, true), 0);
		step("link n%llu - n%llu cut; n%llu reaches both", (unsigned long long)a,
		     (unsigned long long)b, (unsigned long long)*mid);
		struct want settled = {.id = *mid};
		assert_true(
			rcl_wait(c, ELECTION_WAIT_MS, reaches_via_or_moved, &settled,
				 "one end of the cut to reach the leader through the other node"));
		struct want via_a = {.id = a, .idx = *mid}, via_b = {.id = b, .idx = *mid};
		struct rcl_status sa, sb;
		assert_int_equal(rcl_status(c, a, &sa), 0);
		assert_int_equal(rcl_status(c, b, &sb), 0);
		if ((reaches_via(c, &via_a) && sa.leader == b) ||
		    (reaches_via(c, &via_b) && sb.leader == a)) {
			*cut = reaches_via(c, &via_a) ? a : b;
			*leader = *cut == a ? b : a;
			break;
		}
		step("n%llu took over instead: heal and cut again", (unsigned long long)*mid);
		assert_int_equal(rcl_cut_link(c, a, b, false), 0);
	}
	step("n%llu leads, n%llu reaches it through n%llu", (unsigned long long)*leader,
	     (unsigned long long)*cut, (unsigned long long)*mid);
}

/*
 * Partial connectivity: the link between the leader and one follower is
 * cut, the other follower reaches both. The cut follower goes on: its writes
 * reach the leader through the other follower (relay), decided entries come
 * from the other follower (fetch), and a barrier on it sees a write made on
 * the leader. Its state runs ahead of its own consensus log, across a
 * restart too; when the link returns the log catches up and nothing is
 * applied twice (one version per key, equal digests).
 */
static void test_replica_cluster_leader_link_cut(void **state)
{
	uint64_t leader, cut = 0, mid = 0;
	struct rcl *c = up(state, 3, NULL, &leader);
	assert_int_equal(rcl_put_retry(c, 1, "warm", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));

	cut_from_leader(c, &leader, &cut, &mid);
	struct want via = {.id = cut, .idx = mid};
	uint64_t t0 = now_ms();
	assert_int_equal(rcl_put(c, cut, "w/cut", "v0"), 0); /* no retry: it must go through */
	step("a put on the cut node applied in %llu ms", (unsigned long long)(now_ms() - t0));
	assert_int_equal(rcl_put(c, leader, "w/leader", "v0"), 0);
	char out[512];
	assert_int_equal(rcl_control(c, cut, out, sizeof(out), "barrier", NULL), 0);
	expect_kv(c, cut, "w/leader", "v0", NULL);
	step("after a barrier the cut node reads the leader's write");
	assert_int_equal(rcl_put_many(c, cut, "p/", 0, 40, 4, PUT_WAIT_MS), 0);
	assert_int_equal(rcl_put_many(c, leader, "q/", 0, 40, 4, PUT_WAIT_MS), 0);
	assert_int_equal(rcl_control(c, cut, out, sizeof(out), "barrier", NULL), 0);
	expect_keys(c, cut, leader, "p/", 0, 40);
	expect_keys(c, cut, leader, "q/", 0, 40);
	struct rcl_status st;
	assert_int_equal(rcl_status(c, cut, &st), 0);
	assert_true(st.fetched_entries > 0);
	assert_true(st.relayed_proposals > 0);
	assert_true(st.applied_idx > st.decided_idx); /* ahead of its own log */
	step("80 puts on both sides; n%llu applied @%llu, its log decided @%llu, %llu fetched, "
	     "%llu relayed",
	     (unsigned long long)cut, (unsigned long long)st.applied_idx,
	     (unsigned long long)st.decided_idx, (unsigned long long)st.fetched_entries,
	     (unsigned long long)st.relayed_proposals);

	/* A restart with the state ahead of the log starts cleanly, and goes
	 * on through the relay. */
	assert_int_equal(rcl_restart(c, cut), 0);
	assert_int_equal(rcl_cut_link(c, leader, cut, true), 0);
	assert_true(rcl_wait(c, ELECTION_WAIT_MS, reaches_via, &via,
			     "the restarted cut node to reach the leader through the other"));
	assert_int_equal(rcl_put_retry(c, cut, "w/after-restart", "v0", PUT_WAIT_MS), 0);
	assert_int_equal(rcl_put(c, leader, "w/leader2", "v0"), 0);
	assert_int_equal(rcl_control(c, cut, out, sizeof(out), "barrier", NULL), 0);
	expect_kv(c, cut, "w/leader2", "v0", NULL);
	step("restarted while cut, n%llu writes and reads through n%llu", (unsigned long long)cut,
	     (unsigned long long)mid);

	assert_int_equal(rcl_cut_link(c, leader, cut, false), 0);
	struct want direct = {.id = cut};
	assert_true(rcl_wait(c, ELECTION_WAIT_MS, reaches_direct, &direct,
			     "the cut node to reach the leader directly again"));
	uint64_t target = rcl_applied_idx(c, leader);
	struct want caught = {.id = cut, .idx = target};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, log_decided, &caught,
			     "the healed node's own log to catch up"));
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	assert_int_equal(rcl_put(c, cut, "w/healed", "v0"), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, cut, mid, "p/", 0, 40);
	expect_keys(c, cut, mid, "q/", 0, 40);
	expect_kv(c, leader, "w/healed", "v0", NULL);
	step("healed: n%llu's log caught up to @%llu, states equal", (unsigned long long)cut,
	     (unsigned long long)target);
}

/* Node w->id follows node w->idx and says a write made there can be decided. */
static bool follows_writable(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.leader == w->idx && st.quorum &&
	       strcmp(st.leader_route, "none") != 0;
}

/* Every node but the hub has had no quorum by BLE's count for 5 heartbeat
 * rounds (past the 3 after which a node without a route to the leader fails
 * writes with EROFS), and, at this instant, every node follows the hub and
 * says it can write. Both in one look: on a loaded machine a link may be
 * reported silent for a moment, and a node dropping the hub for good still
 * never lets this hold. */
struct ble_lost {
	uint64_t hub;
	uint64_t since_ms[6];
};

static bool ble_quorum_long_lost(struct rcl *c, void *arg)
{
	struct ble_lost *w = arg;
	bool all = true;
	for (uint64_t id = 1; id <= 5; id++) {
		struct want follows = {.id = id, .idx = w->hub};
		if (!follows_writable(c, &follows))
			all = false;
		struct rcl_status st;
		if (id == w->hub)
			continue;
		if (rcl_status(c, id, &st) != 0 || st.ble_quorum) {
			w->since_ms[id] = 0;
			all = false;
		} else if (!w->since_ms[id]) {
			w->since_ms[id] = now_ms();
			all = false;
		} else if (now_ms() - w->since_ms[id] < 5 * 100) {
			all = false;
		}
	}
	return all;
}

/*
 * The paper's quorum-loss scenario on 5 nodes: every link is cut but those
 * of one follower A. A, the only quorum-connected node, takes over; the
 * others, linked to A alone, have no quorum by BLE's count but follow A: their
 * writes are decided (no EROFS), and after a barrier they read each other's.
 */
static void test_replica_cluster_quorum_loss(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 5, NULL, &leader);
	assert_int_equal(rcl_put_retry(c, 1, "warm", "v", PUT_WAIT_MS), 0);
	uint64_t hub = leader % 5 + 1;
	for (uint64_t x = 1; x <= 5; x++)
		for (uint64_t y = x + 1; y <= 5; y++)
			if (x != hub && y != hub)
				assert_int_equal(rcl_cut_link(c, x, y, true), 0);
	step("every link cut but n%llu's (leader was n%llu)", (unsigned long long)hub,
	     (unsigned long long)leader);
	for (uint64_t id = 1; id <= 5; id++) {
		struct want w = {.id = id, .idx = hub};
		assert_true(rcl_wait(c, ELECTION_WAIT_MS, follows_writable, &w,
				     "every node to follow the hub and say it can write"));
	}
	struct ble_lost lost = {.hub = hub};
	assert_true(rcl_wait(c, ELECTION_WAIT_MS, ble_quorum_long_lost, &lost,
			     "the nodes linked to the hub alone to lose BLE's quorum for good"));
	step("n%llu leads, every node follows it; BLE counts no quorum on the others",
	     (unsigned long long)hub);
	for (uint64_t id = 1; id <= 5; id++) {
		char key[32];
		snprintf(key, sizeof(key), "ql/n%llu", (unsigned long long)id);
		assert_int_equal(rcl_put(c, id, key, "v0"), 0); /* no retry */
	}
	for (uint64_t id = 1; id <= 5; id++) {
		char out[256];
		assert_int_equal(rcl_control(c, id, out, sizeof(out), "barrier", NULL), 0);
		for (uint64_t src = 1; src <= 5; src++) {
			char key[32];
			snprintf(key, sizeof(key), "ql/n%llu", (unsigned long long)src);
			expect_kv(c, id, key, "v0", NULL);
		}
	}
	step("a write on every node decided; every node reads them all after a barrier");
}

/*
 * The fetch falls back to the state transfer: a node cut from everyone while
 * more than the compaction threshold is written, then plugged back to the
 * third node alone (its link to the leader stays cut), finds the entries it
 * needs compacted away there, fetches the state from that node, and goes on
 * fetching entries from it.
 */
static void test_replica_cluster_fetch_falls_back_to_transfer(void **state)
{
	struct rcl_options opt = {.compact_max_entries = 100, .compact_retain_entries = 10};
	uint64_t leader, cut = 0, mid = 0;
	struct rcl *c = up(state, 3, &opt, &leader);
	assert_int_equal(rcl_put_retry(c, 1, "warm", "v", PUT_WAIT_MS), 0);
	cut_from_leader(c, &leader, &cut, &mid);
	assert_int_equal(rcl_cut_link(c, cut, mid, true), 0);
	uint64_t before = rcl_applied_idx(c, cut);
	assert_int_equal(rcl_put_many(c, leader, "b/", 0, 300, 8, PUT_WAIT_MS), 0);
	struct want mw = {.id = mid, .idx = before + 100};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, compacted_past, &mw,
			     "the third node to compact its log past the cut-off node"));
	assert_int_equal(rcl_applied_idx(c, cut), before); /* it really was cut off */
	uint64_t target = rcl_applied_idx(c, leader);
	step("300 puts while n%llu was cut off at @%llu; n%llu compacted", (unsigned long long)cut,
	     (unsigned long long)before, (unsigned long long)mid);

	assert_int_equal(rcl_cut_link(c, cut, mid, false), 0);
	struct want w = {.id = cut, .idx = target, .config_id = 1};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, caught_up_by_transfer, &w,
			     "the node to fetch the state from the third node"));
	assert_int_equal(rcl_put(c, leader, "w/after", "v0"), 0);
	char out[256];
	assert_int_equal(rcl_control(c, cut, out, sizeof(out), "barrier", NULL), 0);
	expect_kv(c, cut, "w/after", "v0", NULL);
	expect_keys(c, cut, leader, "b/", 0, 300);
	struct rcl_status st;
	assert_int_equal(rcl_status(c, cut, &st), 0);
	assert_true(strcmp(st.leader_route, "via") == 0);
	step("n%llu caught up by state transfer through n%llu, then by fetching: applied @%llu",
	     (unsigned long long)cut, (unsigned long long)mid, (unsigned long long)st.applied_idx);
}

/*
 * A follower cut off while more than the compaction threshold is written
 * catches up, when plugged back, by state transfer: the log it would need
 * is compacted away on the others.
 */
static void test_replica_cluster_state_transfer(void **state)
{
	struct rcl_options opt = {.compact_max_entries = 100, .compact_retain_entries = 10};
	uint64_t leader;
	struct rcl *c = up(state, 3, &opt, &leader);
	uint64_t cut = other_than(3, leader, 0), kept = other_than(3, leader, cut);
	assert_int_equal(rcl_put_many(c, cut, "a/", 0, 5, 1, PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	uint64_t before = rcl_applied_idx(c, cut);

	assert_int_equal(rcl_cut(c, cut, true), 0);
	step("n%llu cut off at @%llu", (unsigned long long)cut, (unsigned long long)before);
	assert_int_equal(rcl_put_many(c, leader, "b/", 0, 300, 8, PUT_WAIT_MS), 0);
	struct want lw = {.id = leader, .idx = before + 100};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, compacted_past, &lw,
			     "the leader to compact its log past the cut-off node"));
	struct want kw = {.id = kept, .idx = before + 100};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, compacted_past, &kw,
			     "the other follower to compact its log past the cut-off node"));
	struct rcl_status st;
	assert_int_equal(rcl_applied_idx(c, cut), before); /* it really was cut off */
	assert_int_equal(rcl_status(c, cut, &st), 0);
	assert_int_equal(st.state_transfers, 0);
	uint64_t target = rcl_applied_idx(c, leader);
	step("300 puts while cut; leader at @%llu", (unsigned long long)target);

	assert_int_equal(rcl_cut(c, cut, false), 0);
	struct want w = {.id = cut, .idx = target, .config_id = 1};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, caught_up_by_transfer, &w,
			     "the cut-off node to catch up by state transfer"));
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, cut, leader, "a/", 0, 5);
	expect_keys(c, cut, leader, "b/", 0, 300);
	assert_int_equal(rcl_status(c, cut, &st), 0);
	step("n%llu caught up by %llu state transfer(s), applied @%llu, %llu bytes of about %llu",
	     (unsigned long long)cut, (unsigned long long)st.state_transfers,
	     (unsigned long long)st.applied_idx, (unsigned long long)st.xfer_bytes,
	     (unsigned long long)st.xfer_total);
	/* The progress the status shows: what came, and the source's estimate
	 * of the whole; both count the 300 keys and values ("b/N" = "vN"). */
	assert_true(st.xfer_bytes >= 300 * 5);
	assert_true(st.xfer_total >= 300 * 5);
	/* And it goes on from the log. */
	assert_int_equal(rcl_put_retry(c, cut, "c/after", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	/* The transferred state is on its disk: a restart starts from it. */
	target = rcl_applied_idx(c, leader);
	assert_int_equal(rcl_restart(c, cut), 0);
	assert_true(rcl_applied_idx(c, cut) >= target);
	w.idx = target;
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_caught_up, &w,
			     "the node to catch up after its restart"));
	assert_int_equal(rcl_status(c, cut, &st), 0);
	assert_int_equal(st.state_transfers, 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, cut, leader, "b/", 0, 300);
	step("n%llu restarted from the transferred state at @%llu", (unsigned long long)cut,
	     (unsigned long long)st.applied_idx);
}

/* Runs `member ARGS` on node id: it must succeed and print the new
 * configuration with exactly members (e.g. "1,2,3,4"). */
static void change(struct rcl *c, uint64_t id, const char *members, const char *cmd, const char *a1,
		   const char *a2, const char *a3)
{
	char out[1024], want[128];
	uint64_t t0 = now_ms();
	int st = rcl_control(c, id, out, sizeof(out), cmd, a1, a2, a3, NULL);
	if (st != 0)
		fprintf(stderr, "%s %s on n%llu: status %d: %s", cmd, a1, (unsigned long long)id,
			st, out);
	assert_int_equal(st, 0);
	snprintf(want, sizeof(want), ": members %s\n", members);
	if (!strstr(out, want))
		fprintf(stderr, "%s %s on n%llu printed: %s", cmd, a1, (unsigned long long)id, out);
	assert_non_null(strstr(out, want));
	step("n%llu: %s %s took %llu ms: %.*s", (unsigned long long)id, cmd, a1,
	     (unsigned long long)(now_ms() - t0), (int)strcspn(out, "\n"), out);
}

/*
 * Every running member (neither joining nor removed) lists the same members
 * (`member list --json`: ids, addresses, keys, configuration); the list has
 * node id with its address and key. The list into out.
 */
static void same_member_lists(struct rcl *c, uint64_t id, char *out, size_t out_len)
{
	const struct rcl_node *nd = rcl_node(c, id);
	char want[512];
	snprintf(want, sizeof(want),
		 "{\"id\":%llu,\"address\":\"%s\",\"public_key\":\"%s\",\"role\":\"voter\"}",
		 (unsigned long long)id, nd->address, nd->public_key);
	out[0] = '\0';
	for (uint64_t i = 1; i <= c->n; i++) {
		struct rcl_status st;
		char list[4096];
		if (rcl_status(c, i, &st) != 0 || st.joining || st.removed)
			continue;
		assert_int_equal(
			rcl_control(c, i, list, sizeof(list), "member-list", "--json", NULL), 0);
		if (!out[0])
			snprintf(out, out_len, "%s", list);
		if (strcmp(out, list) != 0 || !strstr(list, want))
			fprintf(stderr, "n%llu lists %s, another %s; expected %s in it\n",
				(unsigned long long)i, list, out, want);
		assert_string_equal(out, list);
		assert_non_null(strstr(list, want));
	}
}

/* Whether a `member list --json` names node id. */
static bool listed(const char *list, uint64_t id)
{
	char pat[32];
	snprintf(pat, sizeof(pat), "{\"id\":%llu,", (unsigned long long)id);
	return strstr(list, pat) != NULL;
}

/* Every running member (neither joining nor removed) takes a write. */
static void writable(struct rcl *c, const char *tag)
{
	for (uint64_t id = 1; id <= c->n; id++) {
		struct rcl_status st;
		if (rcl_status(c, id, &st) != 0 || st.joining || st.removed)
			continue;
		char key[64];
		snprintf(key, sizeof(key), "probe/%s/n%llu", tag, (unsigned long long)id);
		int rc = rcl_put_retry(c, id, key, "v", PUT_WAIT_MS);
		if (rc != 0)
			fprintf(stderr, "n%llu, a member, cannot write: %s\n",
				(unsigned long long)id, strerror(-rc));
		assert_int_equal(rc, 0);
	}
}

/* A removed node says so and refuses writes with EROFS; its write reaches
 * nobody. */
static void refuses_writes(struct rcl *c, uint64_t gone, uint64_t member)
{
	struct want w = {.id = gone};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_removed, &w, "the node to learn its removal"));
	char out[2048], key[64];
	assert_int_equal(rcl_control(c, gone, out, sizeof(out), "status", NULL), 0);
	assert_non_null(strstr(out, "removed"));
	snprintf(key, sizeof(key), "after-removal/n%llu", (unsigned long long)gone);
	assert_int_equal(rcl_put(c, gone, key, "v"), -EROFS);
	assert_int_equal(rcl_control(c, gone, out, sizeof(out), "kv-put", "x", "1", NULL), EROFS);
	assert_non_null(strstr(out, "removed"));
	char *v = NULL;
	assert_int_equal(rcl_get(c, member, key, &v, NULL), -ENOENT);
	step("removed n%llu refuses writes with EROFS", (unsigned long long)gone);
}

/*
 * `member add` admits a fourth node started with join = true, which gets
 * the state by transfer and takes writes; `member remove` of a follower,
 * then of the leader, leaves nodes that say they were removed and refuse
 * writes with EROFS. Meanwhile a writer puts keys through nodes 1..3 in
 * turn: writes go on through every change, and every acknowledged put is on
 * the members left, whose states and member lists agree.
 */
static void test_replica_cluster_membership(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 3, NULL, &leader);
	assert_int_equal(rcl_put_many(c, 1, "a/", 0, 20, 4, PUT_WAIT_MS), 0);
	struct acked_writer *w = writer_start(c);
	more_acks(c, w, 10);

	const uint64_t first[] = {1, 2, 3};
	uint64_t id4 = rcl_add_joiner(c, first, 3);
	assert_int_equal(id4, 4);
	assert_int_equal(rcl_start(c, 4), 0);
	struct want j = {.id = 4};
	assert_true(rcl_wait(c, ELECTION_WAIT_MS, is_joining, &j, "n4 to wait to be added"));
	assert_int_equal(rcl_put(c, 4, "a/early", "v"), -EROFS);
	const struct rcl_node *n4 = rcl_node(c, 4);
	change(c, 1, "1,2,3,4", "member-add", "4", n4->address, n4->public_key);
	struct want cw = {.id = 4, .idx = rcl_applied_idx(c, 1), .config_id = 2};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, caught_up_by_transfer, &cw,
			     "n4 to catch up by state transfer in configuration 2"));
	expect_keys(c, 4, 1, "a/", 0, 20);
	step("n4 added and caught up by state transfer");
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	writable(c, "four");
	char list[4096];
	same_member_lists(c, 4, list, sizeof(list));
	more_acks(c, w, 10);

	/* What the membership script checks is refused. */
	char out[1024];
	assert_int_not_equal(rcl_control(c, 3, out, sizeof(out), "member-add", "4", n4->address,
					 n4->public_key, NULL),
			     0);
	assert_non_null(strstr(out, "n4 is already a member"));

	/* A follower leaves, then the leader. */
	uint64_t victim = other_than(4, leader, 4);
	uint64_t runner = other_than(4, leader, victim);
	char id_s[16], left[32];
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)victim);
	snprintf(left, sizeof(left), "%s", victim == 1 ? "2,3,4" : victim == 2 ? "1,3,4" : "1,2,4");
	change(c, runner, left, "member-remove", id_s, NULL, NULL);
	refuses_writes(c, victim, runner);
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	writable(c, "three");
	more_acks(c, w, 10);

	/* The two that stay: runner runs the command, last is the other. */
	runner = other_than(4, leader, victim);
	uint64_t last = 0;
	for (uint64_t id = 1; id <= 4; id++)
		if (id != leader && id != victim && id != runner)
			last = id;
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)leader);
	snprintf(left, sizeof(left), "%llu,%llu",
		 (unsigned long long)(runner < last ? runner : last),
		 (unsigned long long)(runner < last ? last : runner));
	change(c, runner, left, "member-remove", id_s, NULL, NULL);
	refuses_writes(c, leader, runner);
	uint64_t now_leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(now_leader == runner || now_leader == last);
	writable(c, "two");
	more_acks(c, w, 10);

	writer_halt(w);
	step("writer stopped: %zu puts acknowledged; refused: %u EROFS, %u ETIMEDOUT, %u "
	     "ESHUTDOWN, %u other",
	     w->n_acked, w->refused[0], w->refused[1], w->refused[2], w->refused[3]);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_acked(c, w, runner);
	expect_acked(c, w, last);
	writer_stop(&live_writer);
	expect_keys(c, runner, last, "a/", 0, 20);
	same_member_lists(c, runner, list, sizeof(list));
	assert_false(listed(list, victim));
	assert_false(listed(list, leader));
	step("members left: %s", list);
}

/*
 * `member replace` puts a new node (join = true) in the place of a stopped
 * member: the new node gets the state, and the cluster takes writes on the
 * new configuration without the old node.
 */
static void test_replica_cluster_replace(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 3, NULL, &leader);
	uint64_t dead = other_than(3, leader, 0), runner = other_than(3, leader, dead);
	assert_int_equal(rcl_put_many(c, leader, "a/", 0, 20, 4, PUT_WAIT_MS), 0);
	rcl_stop(c, dead);
	assert_int_equal(rcl_put_retry(c, runner, "b/with-one-down", "v", PUT_WAIT_MS), 0);
	step("n%llu stopped; n%llu replaces it with n4", (unsigned long long)dead,
	     (unsigned long long)runner);

	const uint64_t first[] = {1, 2, 3};
	assert_int_equal(rcl_add_joiner(c, first, 3), 4);
	assert_int_equal(rcl_start(c, 4), 0);
	const struct rcl_node *n4 = rcl_node(c, 4);
	char dead_s[16], left[32];
	snprintf(dead_s, sizeof(dead_s), "%llu", (unsigned long long)dead);
	uint64_t lo = leader < runner ? leader : runner, hi = leader < runner ? runner : leader;
	snprintf(left, sizeof(left), "%llu,%llu,4", (unsigned long long)lo, (unsigned long long)hi);
	char out[1024], want[64];
	int st = rcl_control(c, runner, out, sizeof(out), "member-replace", dead_s, "4",
			     n4->address, n4->public_key, NULL);
	if (st != 0)
		fprintf(stderr, "member-replace: status %d: %s", st, out);
	assert_int_equal(st, 0);
	snprintf(want, sizeof(want), ": members %s\n", left);
	assert_non_null(strstr(out, want));

	struct want w = {.id = 4, .idx = rcl_applied_idx(c, runner), .config_id = 2};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, caught_up_by_transfer, &w,
			     "n4 to catch up by state transfer in configuration 2"));
	assert_true(rcl_wait_leader(c, ELECTION_WAIT_MS) != 0);
	writable(c, "replaced");
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, 4, leader, "a/", 0, 20);
	expect_kv(c, 4, "b/with-one-down", "v", NULL);
	char list[4096];
	same_member_lists(c, 4, list, sizeof(list));
	assert_false(listed(list, dead));
	step("n4 replaced n%llu: %s", (unsigned long long)dead, list);
}

/*
 * Changes a node missed while it was stopped: a member down while a node
 * was added comes back in the old configuration, learns the new one from
 * its peers, moves to it and fetches the state; a member removed while it
 * was down comes back, learns it was removed and refuses writes. Adding a
 * node that never dialled the members is refused (test_membership_missed.sh).
 */
static void test_replica_cluster_membership_missed(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 3, NULL, &leader);
	uint64_t down = other_than(3, leader, 0), other = other_than(3, leader, down);
	assert_int_equal(rcl_put_many(c, leader, "a/", 0, 20, 4, PUT_WAIT_MS), 0);
	rcl_stop(c, down);
	const uint64_t first[] = {1, 2, 3};
	assert_int_equal(rcl_add_joiner(c, first, 3), 4);
	assert_int_equal(rcl_start(c, 4), 0);
	const struct rcl_node *n4 = rcl_node(c, 4);
	change(c, leader, "1,2,3,4", "member-add", "4", n4->address, n4->public_key);
	assert_int_equal(rcl_put_many(c, other, "b/", 0, 20, 4, PUT_WAIT_MS), 0);
	step("n4 added and 20 puts while n%llu was down", (unsigned long long)down);

	assert_int_equal(rcl_start(c, down), 0);
	struct want w = {.id = down, .idx = rcl_applied_idx(c, other), .config_id = 2};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, caught_up_by_transfer, &w,
			     "the node that missed the change to move to configuration 2"));
	assert_int_equal(rcl_put_retry(c, down, "c/from-down", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	expect_keys(c, down, other, "b/", 0, 20);
	step("n%llu moved to configuration 2 by state transfer", (unsigned long long)down);

	/* Removed while down. */
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	uint64_t gone = other_than(3, leader, down);
	char id_s[16], left[32];
	rcl_stop(c, gone);
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)gone);
	snprintf(left, sizeof(left), "%s", gone == 1 ? "2,3,4" : gone == 2 ? "1,3,4" : "1,2,4");
	change(c, leader, left, "member-remove", id_s, NULL, NULL);
	assert_int_equal(rcl_put_retry(c, 4, "d/after", "v", PUT_WAIT_MS), 0);
	assert_int_equal(rcl_start(c, gone), 0);
	refuses_writes(c, gone, leader);
	assert_int_equal(rcl_put_retry(c, 4, "d/after-back", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));

	/* No node dialled with this key: the change would make a member that
	 * never connects, so it is refused and nothing changes. */
	const uint64_t members[] = {leader, down, 4};
	assert_int_equal(rcl_add_joiner(c, members, 3), 5);
	const struct rcl_node *n5 = rcl_node(c, 5);
	char out[1024];
	int st = rcl_control(c, leader, out, sizeof(out), "member-add", "5", n5->address,
			     n5->public_key, NULL);
	if (st == 0 || !strstr(out, "no node has tried to connect"))
		fprintf(stderr, "member-add 5 (not running): status %d: %s", st, out);
	assert_int_equal(st, ENOTCONN);
	assert_non_null(strstr(out, "no node has tried to connect"));
	struct rcl_status ls;
	assert_int_equal(rcl_status(c, leader, &ls), 0);
	assert_int_equal(ls.config_id, 3);
	step("adding n5, which never ran, refused: %.*s", (int)strcspn(out, "\n"), out);
}

int main(void)
{
	/* One test alone: OMNIFS_TEST_FILTER='*state_transfer' (a glob). */
	const char *filter = getenv("OMNIFS_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_replica_cluster_writes_everywhere, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_leader_restart, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_state_transfer, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_leader_link_cut, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_quorum_loss, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_fetch_falls_back_to_transfer,
					  teardown),
		cmocka_unit_test_teardown(test_replica_cluster_membership, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_membership_missed, teardown),
		cmocka_unit_test_teardown(test_replica_cluster_replace, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
