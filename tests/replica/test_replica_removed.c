/*
 * A removed node that keeps its key and turns hostile, against replicas in
 * one process (tests/lib/replica_cluster.h: real RocksDB, real ZeroMQ with
 * CURVE). The hostile node is a bare transport (transport.h) speaking with
 * the removed node's id and keypair, so it can send what a real replica
 * never would: forged member tables and "you are removed" frames.
 *
 * - The members tell it only that it was removed (never the table); a
 *   forged table listing it as a member makes no member stop taking
 *   writes, change configuration or send it anything; after the grace its
 *   key is refused at the handshake.
 * - A member that was down through the removal hears the forged table and
 *   forged "you are removed" frames first, ignores them, and moves to the
 *   configuration its other members confirm.
 *
 * Every wait polls with a deadline. OMNIFS_TEST_FILTER runs the tests whose
 * names match a glob; OMNIFS_TEST_LOG_LEVEL sets the replicas' log level.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "membership.h"
#include "replica_cluster.h"
#include "replica_int.h"
#include "tp_config.h"

#define ELECTION_WAIT_MS 10000
#define CATCH_UP_WAIT_MS 20000
#define PUT_WAIT_MS	 10000
/* The replica's grace before a member jumps to a newer configuration is
 * max(1 s, 4 election timeouts) (replica_members.c, maybe_jump): a forged
 * table is pushed for three times that. */
#define JUMP_WINDOW_MS 3000
/* Members drop a removed node's key after max(10 s, 50 election timeouts)
 * unless it acknowledged (removal_grace_ms); this waits for that and more. */
#define KEY_DROP_WAIT_MS 40000

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t started_ms;

#define step(...)                                                                             \
	do {                                                                                  \
		fprintf(stderr, "# %6llu ms: ", (unsigned long long)(now_ms() - started_ms)); \
		fprintf(stderr, __VA_ARGS__);                                                 \
		fputc('\n', stderr);                                                          \
	} while (0)

/* --- the hostile node ---------------------------------------------------------------- */

/* What it received, by sender. */
struct hostile {
	struct tp *tp;
	uint64_t id;
	unsigned heard[RCL_MAX_NODES + 1];   /* frames of any kind */
	unsigned removed[RCL_MAX_NODES + 1]; /* REMOVED frames */
	unsigned tables[RCL_MAX_NODES + 1];  /* MEMBERS frames */
	unsigned chunks;		     /* state transfer chunks */
	unsigned consensus;		     /* consensus messages of a later configuration */
	uint32_t config_id;		     /* the configuration it was removed from */
	struct cfg cfg;			     /* whose keypair and address it uses */
	bool listen_any;		     /* on a free port instead of cfg's */
};

static struct hostile *live_hostile;

/* A transport with the keypair of cfg (a node's config, copied), listening
 * where that node did (the members answer there: the node must be stopped)
 * or, with listen_any, on a free port, that meshes with the nodes in
 * to[0..n). */
static void hostile_open(struct hostile *h, struct rcl *c, const struct cfg *cfg, bool listen_any,
			 const uint64_t *to, size_t n)
{
	struct tp_config *tc = calloc(1, sizeof(*tc));
	char err[256];
	assert_non_null(tc);
	if (cfg != &h->cfg)
		h->cfg = *cfg;
	h->listen_any = listen_any;
	assert_int_equal(tp_config_from_cfg(&h->cfg, tc, err, sizeof(err)), 0);
	if (listen_any)
		snprintf(tc->listen, sizeof(tc->listen), "tcp://127.0.0.1:*");
	tc->log = NULL; /* its refusals are the members' to log */
	tc->n_peers = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rcl_node *m = rcl_node(c, to[i]);
		struct cfg_peer p = {.id = to[i]};
		snprintf(p.address, sizeof(p.address), "%s", m->address);
		snprintf(p.public_key, sizeof(p.public_key), "%s", m->public_key);
		assert_int_equal(tp_peer_from_cfg(&p, false, &tc->peers[tc->n_peers++]), 0);
	}
	h->tp = tp_new(tc, err, sizeof(err));
	memset(tc, 0, sizeof(*tc));
	free(tc);
	if (!h->tp)
		fprintf(stderr, "hostile transport: %s\n", err);
	assert_non_null(h->tp);
	h->id = h->cfg.node_id;
	live_hostile = h;
}

static void hostile_close(struct hostile *h)
{
	tp_destroy(&h->tp);
	live_hostile = NULL;
}

/* Receives for up to wait_ms and counts what came. */
static void hostile_pump(struct hostile *h, long wait_ms)
{
	tp_poll(h->tp, wait_ms);
	struct tp_frame f;
	while (tp_recv(h->tp, &f) == 0) {
		uint64_t from = f.hdr.from <= RCL_MAX_NODES ? f.hdr.from : 0;
		h->heard[from]++;
		if (!f.is_app) {
			if (f.hdr.config_id > h->config_id)
				h->consensus++;
			continue;
		}
		if (f.app.app_type == REPLICA_APP_REMOVED)
			h->removed[from]++;
		else if (f.app.app_type == REPLICA_APP_MEMBERS)
			h->tables[from]++;
		else if (f.app.app_type == REPLICA_APP_XFER_CHUNK)
			h->chunks++;
	}
	struct tp_event ev;
	while (tp_next_event(h->tp, &ev) == 0)
		;
}

/* Configuration config_id with the members in ids[0..n) as the cluster
 * knows them, the hostile node among them. */
static void forged_table(struct rcl *c, uint32_t config_id, const uint64_t *ids, size_t n,
			 char *buf, size_t cap, size_t *len)
{
	struct membership *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->config_id = config_id;
	m->base = 1000;
	for (size_t i = 0; i < n; i++) {
		struct cfg_peer *p = &m->peers[m->n++];
		const struct rcl_node *nd = rcl_node(c, ids[i]);
		p->id = ids[i];
		snprintf(p->address, sizeof(p->address), "%s", nd->address);
		snprintf(p->public_key, sizeof(p->public_key), "%s", nd->public_key);
	}
	/* The decoder sorts by id; the encoder writes in the given order. */
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = i + 1; j < m->n; j++)
			if (m->peers[j].id < m->peers[i].id) {
				struct cfg_peer t = m->peers[i];
				m->peers[i] = m->peers[j];
				m->peers[j] = t;
			}
	assert_int_equal(membership_encode(m, buf, cap, len), 0);
	free(m);
}

/* --- the cluster --------------------------------------------------------------------- */

static int teardown(void **state)
{
	if (live_hostile)
		hostile_close(live_hostile);
	struct rcl *c = *state;
	rcl_destroy(&c);
	*state = NULL;
	return 0;
}

static struct rcl *up(void **state, size_t n, uint64_t *leader)
{
	started_ms = now_ms();
	struct rcl *c;
	assert_int_equal(rcl_new(&c, n, NULL), 0);
	*state = c;
	assert_int_equal(rcl_start_all(c), 0);
	*leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(*leader != 0);
	step("%zu nodes up in %s, leader n%llu", n, c->root, (unsigned long long)*leader);
	return c;
}

/* A node of 1..n that is neither a nor b. */
static uint64_t other_than(uint64_t n, uint64_t a, uint64_t b)
{
	for (uint64_t id = 1; id <= n; id++)
		if (id != a && id != b)
			return id;
	return 0;
}

/* `member remove gone` on node id, which then runs configuration config_id. */
static void remove_member(struct rcl *c, uint64_t id, uint64_t gone, uint32_t config_id)
{
	char out[1024], id_s[16], want[64];
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)gone);
	int st = rcl_control(c, id, out, sizeof(out), "member-remove", id_s, NULL);
	if (st != 0)
		fprintf(stderr, "member-remove %s: status %d: %s", id_s, st, out);
	assert_int_equal(st, 0);
	snprintf(want, sizeof(want), "configuration %u:", config_id);
	assert_non_null(strstr(out, want));
	step("n%llu removed: %.*s", (unsigned long long)gone, (int)strcspn(out, "\n"), out);
}

struct want {
	uint64_t id;
	uint32_t config_id;
};

static bool in_config(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.config_id == w->config_id && st.caught_up;
}

static bool is_removed(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.removed;
}

/* Whether node id's member list names node member. */
static bool lists(struct rcl *c, uint64_t id, uint64_t member)
{
	char out[4096], pat[32];
	assert_int_equal(rcl_control(c, id, out, sizeof(out), "member-list", "--json", NULL), 0);
	snprintf(pat, sizeof(pat), "{\"id\":%llu,", (unsigned long long)member);
	return strstr(out, pat) != NULL;
}

static void expect_config(struct rcl *c, uint64_t id, uint32_t config_id)
{
	struct rcl_status st;
	assert_int_equal(rcl_status(c, id, &st), 0);
	if (st.config_id != config_id || st.removed)
		rcl_dump(c, "a member left its configuration");
	assert_int_equal(st.config_id, config_id);
	assert_false(st.removed);
}

/* Node id refuses a handshake with the hostile node's key: a fresh
 * transport with that key dials every second (a link opened before the
 * key was dropped would stay up without a new handshake). */
struct refusal {
	struct hostile *h;
	const uint64_t *to;
	size_t n;
	uint64_t redial_ms;
	uint8_t key[TP_KEY_LEN];
};

static bool key_refused(struct rcl *c, void *arg)
{
	struct refusal *f = arg;
	if (now_ms() - f->redial_ms >= 1000) {
		hostile_close(f->h);
		hostile_open(f->h, c, &f->h->cfg, f->h->listen_any, f->to, f->n);
		f->redial_ms = now_ms();
	}
	hostile_pump(f->h, 20);
	for (size_t i = 0; i < f->n; i++)
		if (replica_key_seen(rcl_replica(c, f->to[i]), f->key) != 1)
			return false;
	return true;
}

/* --- the tests ----------------------------------------------------------------------- */

/*
 * Three members; `gone` is stopped and removed by the leader, and a
 * transport with gone's keypair takes its place, its links up: it asked the
 * members where the cluster is (JOIN) until each answered something.
 */
struct removed {
	struct rcl *c;
	uint64_t leader, other, gone;
	uint64_t members[2];
	struct hostile h;
};

static void removed_setup(void **state, struct removed *x)
{
	struct rcl *c = x->c = up(state, 3, &x->leader);
	x->gone = other_than(3, x->leader, 0);
	x->other = other_than(3, x->leader, x->gone);
	x->members[0] = x->leader;
	x->members[1] = x->other;
	assert_int_equal(rcl_put(c, x->leader, "a/before", "v"), 0);
	rcl_stop(c, x->gone);
	remove_member(c, x->leader, x->gone, 2);
	struct want w = {.id = x->other, .config_id = 2};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, in_config, &w, "the other member in config 2"));

	struct hostile *h = &x->h;
	h->config_id = 2;
	hostile_open(h, c, &rcl_node(c, x->gone)->cfg, false, x->members, 2);
	uint64_t deadline = now_ms() + CATCH_UP_WAIT_MS;
	for (;;) {
		bool answered = true;
		for (size_t i = 0; i < 2; i++) {
			uint64_t m = x->members[i];
			answered = answered && h->removed[m] + h->tables[m] > 0;
			tp_send_app(h->tp, m, 1, REPLICA_APP_JOIN, NULL, 0);
		}
		if (answered)
			break;
		if (now_ms() >= deadline) {
			rcl_dump(c, "the members to answer the removed node");
			fail();
		}
		hostile_pump(h, 100);
	}
	step("n%llu asked where the cluster is: %u/%u 'removed', %u/%u tables from n%llu/n%llu",
	     (unsigned long long)x->gone, h->removed[x->leader], h->removed[x->other],
	     h->tables[x->leader], h->tables[x->other], (unsigned long long)x->leader,
	     (unsigned long long)x->other);
}

/* The members tell a removed node that it was removed, and nothing else. */
static void test_replica_removed_told_only_removed(void **state)
{
	struct removed x = {0};
	removed_setup(state, &x);
	assert_int_equal(x.h.tables[x.leader] + x.h.tables[x.other], 0);
	assert_true(x.h.removed[x.leader] > 0 && x.h.removed[x.other] > 0);
	hostile_close(&x.h);
}

/*
 * The removed node pushes a table of configuration 3 listing itself to
 * both members, for three times the grace before a member would jump,
 * while writes go on through both: none fails, both stay in configuration
 * 2 without it, and it gets no table, no consensus message, and none of
 * the state it keeps asking for.
 */
static void test_replica_removed_forged_table_ignored(void **state)
{
	struct removed x = {0};
	removed_setup(state, &x);
	struct rcl *c = x.c;
	struct hostile *h = &x.h;
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	const uint64_t forged_ids[] = {x.leader, x.other, x.gone};
	forged_table(c, 3, forged_ids, 3, buf, sizeof(buf), &len);
	unsigned puts = 0;
	uint64_t deadline = now_ms() + JUMP_WINDOW_MS;
	memset(h->tables, 0, sizeof(h->tables));
	/* "Send me the state from the start" (replica_xfer.c's request). */
	const uint8_t xfer_req[20] = {0};
	while (now_ms() < deadline) {
		for (size_t i = 0; i < 2; i++) {
			tp_send_app(h->tp, x.members[i], 3, REPLICA_APP_MEMBERS, buf, len);
			tp_send_app(h->tp, x.members[i], 3, REPLICA_APP_XFER_REQ, xfer_req,
				    sizeof(xfer_req));
		}
		hostile_pump(h, 20);
		char key[32];
		snprintf(key, sizeof(key), "b/%u", puts);
		uint64_t through = x.members[puts % 2];
		int rc = rcl_put(c, through, key, "v");
		if (rc != 0)
			fprintf(stderr, "put %s through n%llu: %d\n", key,
				(unsigned long long)through, rc);
		assert_int_equal(rc, 0);
		puts++;
		for (size_t i = 0; i < 2; i++)
			expect_config(c, x.members[i], 2);
	}
	step("forged table pushed for %d ms: %u puts went through", JUMP_WINDOW_MS, puts);
	for (size_t i = 0; i < 2; i++) {
		expect_config(c, x.members[i], 2);
		assert_false(lists(c, x.members[i], x.gone));
	}
	hostile_pump(h, 0);
	assert_int_equal(h->tables[x.leader] + h->tables[x.other], 0);
	assert_int_equal(h->chunks, 0);
	assert_int_equal(h->consensus, 0);
	hostile_close(h);
}

/* After the removal grace (the removed node never acknowledged: its
 * stand-in does not), both members refuse its key at the handshake. */
static void test_replica_removed_key_refused(void **state)
{
	struct removed x = {0};
	removed_setup(state, &x);
	struct refusal f = {.h = &x.h, .to = x.members, .n = 2, .redial_ms = now_ms()};
	assert_int_equal(tp_key_from_z85(rcl_node(x.c, x.gone)->public_key, f.key), 0);
	assert_true(rcl_wait(x.c, KEY_DROP_WAIT_MS, key_refused, &f,
			     "both members to refuse the removed node's key"));
	hostile_close(&x.h);
	step("after the grace both members refuse n%llu's key", (unsigned long long)x.gone);
	assert_int_equal(rcl_put(x.c, x.other, "c/after", "v"), 0);
}

/* Node a drops everything to and from node b and b everything to and
 * from a (cut), or neither. */
static void cut_link(struct rcl *c, uint64_t a, uint64_t b, bool cut)
{
	assert_int_equal(replica_set_fault(rcl_replica(c, a), b, cut, cut), 0);
	if (rcl_replica(c, b))
		assert_int_equal(replica_set_fault(rcl_replica(c, b), a, cut, cut), 0);
}

/*
 * Four members; `lag` is stopped, then `gone` removed (it runs, learns it
 * and is stopped). lag starts again cut off from the two other members, so
 * the only one it hears is a transport with gone's keypair (gone is still
 * a member in lag's eyes), which pushes a table of configuration 2 listing
 * itself and "you are removed" frames, for three times the grace before a
 * member would jump: lag takes neither. Once the cut is lifted, lag moves
 * to the configuration the other two confirm (without gone), catches up
 * and takes writes; gone's transport gets no table, and from then on none
 * of lag's state.
 */
static void test_replica_removed_forges_to_lagging(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 4, &leader);
	uint64_t lag = other_than(4, leader, 0), gone = other_than(4, leader, lag);
	uint64_t other = 0;
	for (uint64_t id = 1; id <= 4; id++)
		if (id != leader && id != lag && id != gone)
			other = id;
	assert_int_equal(rcl_put(c, leader, "a/before", "v"), 0);
	rcl_stop(c, lag);
	remove_member(c, leader, gone, 2);
	struct want g = {.id = gone};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_removed, &g, "the removed node to know it"));
	rcl_stop(c, gone);
	assert_int_equal(rcl_put_retry(c, other, "b/while-lagging", "v", PUT_WAIT_MS), 0);

	struct hostile h = {.config_id = 1};
	hostile_open(&h, c, &rcl_node(c, gone)->cfg, false, &lag, 1);
	cut_link(c, leader, lag, true);
	cut_link(c, other, lag, true);
	assert_int_equal(rcl_start(c, lag), 0);
	cut_link(c, lag, leader, true);
	cut_link(c, lag, other, true);
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	uint64_t forged_ids[] = {leader, other, lag, gone};
	forged_table(c, 2, forged_ids, 4, buf, sizeof(buf), &len);
	uint64_t deadline = now_ms() + CATCH_UP_WAIT_MS;
	while (!h.heard[lag]) { /* lag's links to it are up */
		if (now_ms() >= deadline) {
			rcl_dump(c, "the lagging member to reach the removed node");
			fail();
		}
		hostile_pump(&h, 50);
	}
	deadline = now_ms() + JUMP_WINDOW_MS;
	while (now_ms() < deadline) {
		tp_send_app(h.tp, lag, 2, REPLICA_APP_MEMBERS, buf, len);
		tp_send_app(h.tp, lag, 2, REPLICA_APP_REMOVED, NULL, 0);
		hostile_pump(&h, 20);
		expect_config(c, lag, 1);
	}
	step("n%llu pushed forgeries to n%llu for %d ms: still in configuration 1",
	     (unsigned long long)gone, (unsigned long long)lag, JUMP_WINDOW_MS);

	cut_link(c, lag, leader, false);
	cut_link(c, lag, other, false);
	struct want w = {.id = lag, .config_id = 2};
	deadline = now_ms() + CATCH_UP_WAIT_MS;
	while (!in_config(c, &w)) {
		tp_send_app(h.tp, lag, 2, REPLICA_APP_MEMBERS, buf, len);
		hostile_pump(&h, 20);
		if (now_ms() >= deadline) {
			rcl_dump(c, "the lagging member to move to configuration 2");
			fail();
		}
	}
	step("n%llu moved to configuration 2 with the other members", (unsigned long long)lag);
	expect_config(c, lag, 2);
	assert_false(lists(c, lag, gone));
	assert_true(lists(c, lag, leader) && lists(c, lag, other) && lists(c, lag, lag));
	assert_int_equal(rcl_put_retry(c, lag, "c/through-lag", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	/* In configuration 1, gone was a member to lag, which held nothing
	 * decided after gone's removal; now it gets none of lag's state. */
	const uint8_t xfer_req[20] = {0};
	hostile_pump(&h, 0);
	h.chunks = 0;
	deadline = now_ms() + JUMP_WINDOW_MS;
	while (now_ms() < deadline) {
		tp_send_app(h.tp, lag, 2, REPLICA_APP_XFER_REQ, xfer_req, sizeof(xfer_req));
		hostile_pump(&h, 20);
	}
	assert_int_equal(h.tables[lag], 0);
	assert_int_equal(h.chunks, 0);
	hostile_close(&h);
}

/*
 * `member rekey`: node x gets a new keypair and restarts with it (the
 * members refuse it), a member gives x the new key by a membership change,
 * x moves to the new configuration and takes writes; afterwards a
 * handshake with x's old key is refused by both other members.
 */
static void test_replica_removed_rekey(void **state)
{
	uint64_t leader;
	struct rcl *c = up(state, 3, &leader);
	uint64_t x = other_than(3, leader, 0), other = other_than(3, leader, x);
	const uint64_t members[] = {leader, other};
	assert_int_equal(rcl_put(c, leader, "a/before", "v"), 0);
	struct rcl_node *nd = c->nodes[x];
	struct cfg old_cfg = nd->cfg;
	char new_pub[TP_KEY_Z85_LEN + 1], new_sec[TP_KEY_Z85_LEN + 1], err[256];
	assert_int_equal(tp_key_generate(new_pub, new_sec), 0);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/node-new.key", nd->dir);
	assert_true(strlen(path) < sizeof(nd->cfg.secret_key_file));
	memcpy(nd->cfg.secret_key_file, path, strlen(path) + 1);
	assert_int_equal(tp_keyfile_write(nd->cfg.secret_key_file, "new", new_pub, new_sec, 0, err,
					  sizeof(err)),
			 0);
	assert_int_equal(rcl_restart(c, x), 0);
	step("n%llu restarted with a new key", (unsigned long long)x);

	char out[4096], id_s[16];
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)x);
	int st = rcl_control(c, leader, out, sizeof(out), "member-rekey", id_s, new_pub, NULL);
	if (st != 0)
		fprintf(stderr, "member-rekey: status %d: %s", st, out);
	assert_int_equal(st, 0);
	assert_non_null(strstr(out, "configuration 2:"));
	struct want w = {.id = x, .config_id = 2};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, in_config, &w, "the rekeyed node in config 2"));
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(
			rcl_control(c, members[i], out, sizeof(out), "member-list", "--json", NULL),
			0);
		assert_non_null(strstr(out, new_pub));
		assert_null(strstr(out, nd->public_key));
	}
	assert_int_equal(rcl_put_retry(c, x, "b/through-rekeyed", "v", PUT_WAIT_MS), 0);
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	step("n%llu runs configuration 2 with its new key", (unsigned long long)x);

	struct hostile h = {0};
	hostile_open(&h, c, &old_cfg, true, members, 2);
	struct refusal f = {.h = &h, .to = members, .n = 2, .redial_ms = now_ms()};
	assert_int_equal(tp_key_from_z85(nd->public_key, f.key), 0);
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, key_refused, &f,
			     "both members to refuse n's old key"));
	hostile_close(&h);
	snprintf(nd->public_key, sizeof(nd->public_key), "%s", new_pub);
	step("n%llu's old key is refused", (unsigned long long)x);
}

int main(void)
{
	const char *filter = getenv("OMNIFS_TEST_FILTER");
	if (filter)
		cmocka_set_test_filter(filter);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_replica_removed_told_only_removed, teardown),
		cmocka_unit_test_teardown(test_replica_removed_forged_table_ignored, teardown),
		cmocka_unit_test_teardown(test_replica_removed_key_refused, teardown),
		cmocka_unit_test_teardown(test_replica_removed_forges_to_lagging, teardown),
		cmocka_unit_test_teardown(test_replica_removed_rekey, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
