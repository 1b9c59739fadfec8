/*
 * The ZeroMQ mesh on loopback, several nodes in one process, each bound to
 * tcp://127.0.0.1:* (no fixed ports, so parallel test runs never collide).
 * What users rely on: messages arrive intact and attributed to their sender
 * over CURVE; a restarted peer is heard again; unknown keys, spoofed senders,
 * other clusters and malformed frames never get through; a flood of
 * refused keys from one address does not make the node forget the key
 * another address tried (`member add` asks for it); a dead peer's full
 * queue drops instead of blocking; the fault switch cuts exactly the chosen
 * direction; link events report up and down, and wake the node's poll.
 *
 * Nothing sleeps for a fixed time: every wait polls the nodes with a deadline.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "samples.h"
#include "transport.h"

#define CLUSTER	    0xc1a55e5ull
#define MAX_NODES   4
#define DEADLINE_MS 10000

struct node {
	struct tp *tp;
	uint64_t id;
	uint8_t pub[TP_KEY_LEN], sec[TP_KEY_LEN];
	char endpoint[TP_ENDPOINT_MAX];
};

struct mesh {
	struct node n[MAX_NODES];
	bool plaintext;
};

static void keypair(struct node *n)
{
	char pz[TP_KEY_Z85_LEN + 1], sz[TP_KEY_Z85_LEN + 1];
	assert_int_equal(tp_key_generate(pz, sz), 0);
	assert_int_equal(tp_key_from_z85(pz, n->pub), 0);
	assert_int_equal(tp_key_from_z85(sz, n->sec), 0);
}

static void base_config(struct mesh *m, size_t i, struct tp_config *c)
{
	memset(c, 0, sizeof(*c));
	c->node_id = m->n[i].id;
	c->cluster_id = CLUSTER;
	snprintf(c->listen, sizeof(c->listen), "%s",
		 m->n[i].endpoint[0] ? m->n[i].endpoint : "tcp://127.0.0.1:*");
	c->plaintext = m->plaintext;
	memcpy(c->public_key, m->n[i].pub, TP_KEY_LEN);
	memcpy(c->secret_key, m->n[i].sec, TP_KEY_LEN);
	c->reconnect_ivl_ms = 20;
	c->reconnect_ivl_max_ms = 200;
}

static void node_start(struct mesh *m, size_t i, const struct tp_config *c)
{
	char err[256];
	m->n[i].tp = tp_new(c, err, sizeof(err));
	if (!m->n[i].tp)
		fail_msg("tp_new n%llu: %s", (unsigned long long)m->n[i].id, err);
	snprintf(m->n[i].endpoint, sizeof(m->n[i].endpoint), "%s", tp_endpoint(m->n[i].tp));
}

static struct tp_peer_config peer_of(const struct node *n)
{
	struct tp_peer_config p = {.id = n->id};
	snprintf(p.endpoint, sizeof(p.endpoint), "%s", n->endpoint);
	memcpy(p.public_key, n->pub, TP_KEY_LEN);
	return p;
}

/* Starts nodes 0..count-1 with ids 1..count and meshes them all. */
static struct mesh *mesh_new(size_t count, bool plaintext)
{
	struct mesh *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->plaintext = plaintext;
	for (size_t i = 0; i < count; i++) {
		m->n[i].id = i + 1;
		keypair(&m->n[i]);
		struct tp_config c;
		base_config(m, i, &c);
		node_start(m, i, &c);
	}
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < count; j++)
			if (i != j) {
				struct tp_peer_config p = peer_of(&m->n[j]);
				assert_int_equal(tp_add_peer(m->n[i].tp, &p), 0);
			}
	return m;
}

static void mesh_destroy(struct mesh *m)
{
	for (size_t i = 0; i < MAX_NODES; i++)
		tp_destroy(&m->n[i].tp);
	free(m);
}

/* One round of waiting: poll every node's sockets briefly, then let each do housekeeping. */
static void pump(struct mesh *m)
{
	zmq_pollitem_t items[MAX_NODES * TP_POLL_ITEMS];
	size_t n = 0;
	for (size_t i = 0; i < MAX_NODES; i++)
		if (m->n[i].tp)
			n += (size_t)tp_poll_items(m->n[i].tp, items + n);
	zmq_poll(items, (int)n, 5);
	for (size_t i = 0; i < MAX_NODES; i++)
		if (m->n[i].tp)
			tp_service(m->n[i].tp);
}

static bool past(uint64_t deadline)
{
	return tp_now_ms() > deadline;
}

/* Waits for the next frame at node i; fails the test at the deadline. */
static void recv_one(struct mesh *m, size_t i, struct tp_frame *f)
{
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	while (tp_recv(m->n[i].tp, f) != 0) {
		if (past(deadline))
			fail_msg("n%llu received nothing within %d ms",
				 (unsigned long long)m->n[i].id, DEADLINE_MS);
		pump(m);
	}
}

static void send_hb(struct mesh *m, size_t from, uint64_t to, uint32_t round)
{
	struct opx_msg msg = {
		.from = m->n[from].id, .to = to, .config_id = 1, .type = OPX_MSG_HB_REQUEST};
	msg.u.hb_request.round = round;
	assert_int_equal(tp_send_msg(m->n[from].tp, &msg), 0);
}

static void expect_hb(struct mesh *m, size_t at, uint64_t from, uint32_t round)
{
	struct tp_frame f;
	recv_one(m, at, &f);
	assert_false(f.is_app);
	assert_int_equal(f.msg.type, OPX_MSG_HB_REQUEST);
	assert_int_equal(f.msg.from, from);
	assert_int_equal(f.msg.to, m->n[at].id);
	assert_int_equal(f.msg.u.hb_request.round, round);
}

/* Waits for a link event of this type about peer at node i (other events are skipped). */
static void wait_event(struct mesh *m, size_t i, enum tp_event_type type, uint64_t peer)
{
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	for (;;) {
		struct tp_event ev;
		while (tp_next_event(m->n[i].tp, &ev) == 0)
			if (ev.type == type && ev.peer == peer)
				return;
		if (past(deadline))
			fail_msg("n%llu: no %s event for n%llu", (unsigned long long)m->n[i].id,
				 type == TP_EVENT_UP ? "up" : "down", (unsigned long long)peer);
		pump(m);
	}
}

static struct tp_peer_stats pstats(struct mesh *m, size_t i, uint64_t peer)
{
	struct tp_peer_stats st;
	assert_int_equal(tp_peer_stats(m->n[i].tp, peer, &st), 0);
	return st;
}

static struct tp_stats gstats(struct mesh *m, size_t i)
{
	struct tp_stats st;
	tp_stats(m->n[i].tp, &st);
	return st;
}

static void test_transport_two_nodes_exchange_every_type(void **state)
{
	struct mesh *m = mesh_new(2, false);
	struct samples *s = malloc(sizeof(*s));
	assert_non_null(s);
	samples_init(s, 1, 2);
	for (size_t k = 0; k < s->n; k++)
		assert_int_equal(tp_send_msg(m->n[0].tp, &s->msgs[k]), 0);
	for (size_t k = 0; k < s->n; k++) {
		struct tp_frame f;
		recv_one(m, 1, &f);
		assert_false(f.is_app);
		if (!samples_msg_equal(&s->msgs[k], &f.msg))
			fail_msg("sample %zu (%s) arrived changed", k,
				 opx_msg_type_name(s->msgs[k].type));
	}
	/* An app frame the other way. */
	const char chunk[] = "state transfer chunk";
	assert_int_equal(tp_send_app(m->n[1].tp, 1, 1, 7, chunk, sizeof(chunk)), 0);
	struct tp_frame f;
	recv_one(m, 0, &f);
	assert_true(f.is_app);
	assert_int_equal(f.hdr.from, 2);
	assert_int_equal(f.app.app_type, 7);
	assert_int_equal(f.app.len, sizeof(chunk));
	assert_memory_equal(f.app.data, chunk, sizeof(chunk));

	/* Many entries (a large decode scratch area) and a large entry, twice each. */
	const uint32_t n_many = 70000;
	struct opx_entry *many = calloc(n_many, sizeof(*many));
	uint8_t *big = malloc(4u << 20);
	assert_non_null(many);
	assert_non_null(big);
	for (uint32_t k = 0; k < n_many; k++) {
		many[k].data = (const uint8_t *)&n_many;
		many[k].len = k % 5;
	}
	memset(big, 0x5a, 4u << 20);
	struct opx_entry one = {.data = big, .len = 4u << 20};
	for (int round = 0; round < 2; round++) {
		struct opx_msg pf = {.to = 1, .type = OPX_MSG_PROPOSAL_FORWARD};
		pf.u.proposal_forward.entries = many;
		pf.u.proposal_forward.n_entries = n_many;
		assert_int_equal(tp_send_msg(m->n[1].tp, &pf), 0);
		pf.from = 2;
		recv_one(m, 0, &f);
		assert_true(samples_msg_equal(&pf, &f.msg));
		pf.u.proposal_forward.entries = &one;
		pf.u.proposal_forward.n_entries = 1;
		pf.from = 0;
		assert_int_equal(tp_send_msg(m->n[1].tp, &pf), 0);
		pf.from = 2;
		recv_one(m, 0, &f);
		assert_true(samples_msg_equal(&pf, &f.msg));
	}
	free(many);
	free(big);

	wait_event(m, 0, TP_EVENT_UP, 2);
	wait_event(m, 1, TP_EVENT_UP, 1);
	struct tp_peer_stats st = pstats(m, 1, 1);
	assert_int_equal(st.rx_frames, s->n);
	assert_true(st.rx_bytes > 0);
	assert_true(st.last_heard_ms > 0);
	assert_int_equal(pstats(m, 0, 2).tx_frames, s->n);
	assert_int_equal(tp_send_app(m->n[1].tp, 5, 1, 7, chunk, 1), -ENOENT);
	free(s);
	mesh_destroy(m);
}

static void test_transport_three_nodes_all_pairs(void **state)
{
	struct mesh *m = mesh_new(3, false);
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < 3; j++)
			if (i != j)
				send_hb(m, i, m->n[j].id, (uint32_t)(10 * m->n[i].id + m->n[j].id));
	for (size_t j = 0; j < 3; j++) {
		bool got[4] = {false};
		for (int k = 0; k < 2; k++) {
			struct tp_frame f;
			recv_one(m, j, &f);
			assert_true(f.msg.from >= 1 && f.msg.from <= 3 && f.msg.from != m->n[j].id);
			assert_false(got[f.msg.from]);
			got[f.msg.from] = true;
			assert_int_equal(f.msg.u.hb_request.round, 10 * f.msg.from + m->n[j].id);
		}
	}
	mesh_destroy(m);
}

static void rid_of(uint64_t id, uint8_t *rid)
{
	rid[0] = 'N';
	for (int i = 0; i < 8; i++)
		rid[1 + i] = (uint8_t)(id >> (8 * i));
}

/* A raw DEALER to node 0 with a chosen routing id (and CURVE keys, unless plaintext). */
static void *raw_dealer(void *ctx, struct mesh *m, uint64_t rid_id, const struct node *keys)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	assert_non_null(s);
	uint8_t rid[9];
	rid_of(rid_id, rid);
	int zero = 0;
	assert_int_equal(zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, sizeof(rid)), 0);
	assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)), 0);
	/*
	 * Never reconnect: with ROUTER_HANDOVER, two live connections under one
	 * routing id would keep taking it from each other.
	 */
	int never = -1;
	assert_int_equal(zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &never, sizeof(never)), 0);
	if (keys) {
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, m->n[0].pub, 32), 0);
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, keys->pub, 32), 0);
		assert_int_equal(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, keys->sec, 32), 0);
	}
	assert_int_equal(zmq_connect(s, m->n[0].endpoint), 0);
	return s;
}

static void raw_send(void *s, const void *buf, size_t len)
{
	assert_int_equal(zmq_send(s, buf, len, 0), (int)len);
}

static size_t hb_frame(uint64_t cluster, uint64_t from, uint64_t to, uint32_t round, uint8_t *buf)
{
	struct opx_msg msg = {.from = from, .to = to, .type = OPX_MSG_HB_REQUEST};
	msg.u.hb_request.round = round;
	size_t len;
	assert_int_equal(tp_encode_msg(cluster, &msg, buf, 64, &len), 0);
	return len;
}

/* A peer that restarts with the same id, keys and address is heard again, both ways. */
static void test_transport_restarted_peer_heard_again(void **state)
{
	struct mesh *m = mesh_new(2, false);
	send_hb(m, 1, 1, 1);
	expect_hb(m, 0, 2, 1);
	wait_event(m, 0, TP_EVENT_UP, 2);

	tp_destroy(&m->n[1].tp);
	wait_event(m, 0, TP_EVENT_DOWN, 2);
	/*
	 * A connection of the old incarnation that n1 has not seen die (a peer
	 * lost without a FIN): it still holds n2's routing id at n1.
	 */
	void *ctx = zmq_ctx_new();
	void *stale = raw_dealer(ctx, m, 2, &m->n[1]);
	uint8_t buf[64];
	raw_send(stale, buf, hb_frame(CLUSTER, 2, 1, 99, buf));
	expect_hb(m, 0, 2, 99);

	struct tp_config c;
	base_config(m, 1, &c); /* same endpoint as before */
	c.n_peers = 1;
	c.peers[0] = peer_of(&m->n[0]);
	node_start(m, 1, &c);

	send_hb(m, 1, 1, 2);
	expect_hb(m, 0, 2, 2);
	wait_event(m, 0, TP_EVENT_UP, 2);

	/* Towards the restarted node: resend until heard, as OmniPaxos does on its tick. */
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	uint32_t round = 100;
	for (;;) {
		send_hb(m, 0, 2, round++);
		pump(m);
		if (tp_recv(m->n[1].tp, &f) == 0)
			break;
		if (past(deadline))
			fail_msg("the restarted node never heard from n1");
	}
	assert_int_equal(f.msg.from, 1);
	zmq_close(stale);
	zmq_ctx_term(ctx);
	mesh_destroy(m);
}

/* A node whose key is not in the peer list is refused at the handshake. */
static void test_transport_unknown_key_refused(void **state)
{
	struct mesh *m = mesh_new(2, false);
	/* n3 has its own key; n1 does not list it. An impostor claims id 2 with a fresh key. */
	for (size_t i = 2; i < 4; i++) {
		m->n[i].id = i == 2 ? 3 : 2;
		keypair(&m->n[i]);
		struct tp_config c;
		base_config(m, i, &c);
		c.n_peers = 1;
		c.peers[0] = peer_of(&m->n[0]);
		node_start(m, i, &c);
		send_hb(m, i, 1, 666);
	}
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	while (gstats(m, 0).zap_refused < 2) {
		if (past(deadline))
			fail_msg("n1 refused %llu handshakes, expected 2",
				 (unsigned long long)gstats(m, 0).zap_refused);
		pump(m);
	}
	/* The real n2 still gets through, and is the only one n1 ever hears. */
	send_hb(m, 1, 1, 7);
	expect_hb(m, 0, 2, 7);
	struct tp_frame f;
	assert_int_equal(tp_recv(m->n[0].tp, &f), -EAGAIN);
	assert_int_equal(pstats(m, 0, 2).rx_frames, 1);
	mesh_destroy(m);
}

/* Waits until node 0 has refused `count` handshakes in all. */
static void wait_refused(struct mesh *m, uint64_t count)
{
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	while (gstats(m, 0).zap_refused < count) {
		if (past(deadline))
			fail_msg("n1 refused %llu handshakes, expected %llu",
				 (unsigned long long)gstats(m, 0).zap_refused,
				 (unsigned long long)count);
		pump(m);
	}
}

/*
 * The key of a node about to be added tried to connect (from 127.0.0.1);
 * then someone floods the port with fresh random keys from another address
 * (127.0.0.2). The node's key is still remembered as refused: `member add`
 * relies on it.
 */
static void test_transport_refused_key_survives_a_flood(void **state)
{
	struct mesh *m = mesh_new(1, false);
	void *ctx = zmq_ctx_new();
	struct node real = {.id = 2};
	keypair(&real);
	uint64_t t0 = tp_now_ms();
	void *s = raw_dealer(ctx, m, 2, &real);
	wait_refused(m, 1);
	zmq_close(s);
	assert_true(tp_key_refused_since(m->n[0].tp, real.pub, t0));

	const char *port = strrchr(m->n[0].endpoint, ':') + 1;
	char flood_endpoint[TP_ENDPOINT_MAX];
	snprintf(flood_endpoint, sizeof(flood_endpoint), "tcp://127.0.0.2:0;127.0.0.1:%s", port);
	enum { FLOOD = 100 };
	for (unsigned i = 0; i < FLOOD; i++) {
		struct node junk;
		keypair(&junk);
		void *d = zmq_socket(ctx, ZMQ_DEALER);
		assert_non_null(d);
		int zero = 0, never = -1;
		assert_int_equal(zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero)), 0);
		assert_int_equal(zmq_setsockopt(d, ZMQ_RECONNECT_IVL, &never, sizeof(never)), 0);
		assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, m->n[0].pub, 32), 0);
		assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, junk.pub, 32), 0);
		assert_int_equal(zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, junk.sec, 32), 0);
		assert_int_equal(zmq_connect(d, flood_endpoint), 0);
		wait_refused(m, 2 + i);
		zmq_close(d);
		/* the flood is remembered too, as far as its own share goes */
		assert_true(tp_key_refused_since(m->n[0].tp, junk.pub, t0));
	}
	assert_true(tp_key_refused_since(m->n[0].tp, real.pub, t0));
	/* a key never tried is not */
	struct node other;
	keypair(&other);
	assert_false(tp_key_refused_since(m->n[0].tp, other.pub, t0));
	zmq_ctx_term(ctx);
	mesh_destroy(m);
}

/*
 * A peer that refused our key (it did not know it yet) and then learns it
 * hears us: the refused connection is dialled again (libzmq alone would
 * leave it dead). Membership changes depend on this: a node that joins
 * later learns the keys of those that joined before it.
 */
static void test_transport_refused_key_admitted_later(void **state)
{
	struct mesh *m = mesh_new(1, false);
	m->n[1].id = 2;
	keypair(&m->n[1]);
	struct tp_config c;
	base_config(m, 1, &c);
	c.n_peers = 1;
	c.peers[0] = peer_of(&m->n[0]);
	node_start(m, 1, &c);
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	while (gstats(m, 0).zap_refused < 1) {
		if (past(deadline))
			fail_msg("n1 never refused n2's key");
		pump(m);
	}
	struct tp_peer_config p = peer_of(&m->n[1]);
	assert_int_equal(tp_add_peer(m->n[0].tp, &p), 0);
	deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	for (uint32_t round = 1;; round++) {
		/* Until the new connection is up, sends may find no room. */
		struct opx_msg msg = {
			.from = 2, .to = 1, .config_id = 1, .type = OPX_MSG_HB_REQUEST};
		msg.u.hb_request.round = round;
		int rc = tp_send_msg(m->n[1].tp, &msg);
		assert_true(rc == 0 || rc == -EAGAIN);
		for (int k = 0; k < 20; k++) {
			pump(m);
			if (tp_recv(m->n[0].tp, &f) == 0) {
				assert_int_equal(f.msg.from, 2);
				mesh_destroy(m);
				return;
			}
		}
		if (past(deadline))
			fail_msg("n1 never heard n2 after learning its key");
	}
}

/*
 * Plaintext: frames from another cluster, with another sender in the header,
 * addressed elsewhere, malformed, or from an unlisted routing id are dropped
 * and counted; the valid frame behind them is the first one delivered.
 */
static void test_transport_rejects_foreign_and_spoofed_frames(void **state)
{
	struct mesh *m = mesh_new(2, true);
	tp_destroy(&m->n[1].tp); /* the raw socket below speaks as n2 */
	void *ctx = zmq_ctx_new();
	void *as2 = raw_dealer(ctx, m, 2, NULL);
	void *as5 = raw_dealer(ctx, m, 5, NULL);
	uint8_t buf[64];
	raw_send(as2, buf, hb_frame(CLUSTER + 1, 2, 1, 1, buf)); /* other cluster */
	raw_send(as2, buf, hb_frame(CLUSTER, 3, 1, 2, buf));	 /* header says n3 */
	raw_send(as2, buf, hb_frame(CLUSTER, 2, 9, 3, buf));	 /* addressed to n9 */
	raw_send(as2, "garbage", 7);
	size_t len = hb_frame(CLUSTER, 2, 1, 4, buf);
	buf[4] = 2; /* a future wire version */
	raw_send(as2, buf, len);
	raw_send(as5, buf, hb_frame(CLUSTER, 5, 1, 5, buf)); /* not a peer */
	raw_send(as2, buf, hb_frame(CLUSTER, 2, 1, 77, buf));

	expect_hb(m, 0, 2, 77);
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	while (gstats(m, 0).unknown_sender < 1) {
		assert_int_equal(tp_recv(m->n[0].tp, &f), -EAGAIN);
		if (past(deadline))
			fail_msg("the frame from n5 never arrived");
		pump(m);
	}
	struct tp_stats st = gstats(m, 0);
	assert_int_equal(st.wrong_cluster, 1);
	assert_int_equal(st.spoofed, 1);
	assert_int_equal(pstats(m, 0, 2).malformed, 3);
	assert_int_equal(pstats(m, 0, 2).rx_frames, 1);
	zmq_close(as2);
	zmq_close(as5);
	zmq_ctx_term(ctx);
	mesh_destroy(m);
}

/* CURVE: a listed peer's key cannot speak under another peer's routing id. */
static void test_transport_key_must_match_routing_id(void **state)
{
	struct mesh *m = mesh_new(3, false);
	tp_destroy(&m->n[1].tp); /* the raw socket below claims to be n2 */
	void *ctx = zmq_ctx_new();
	void *s = raw_dealer(ctx, m, 2, &m->n[2]); /* n3's key, n2's routing id */
	uint8_t buf[64];
	raw_send(s, buf, hb_frame(CLUSTER, 2, 1, 1, buf));
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	while (gstats(m, 0).spoofed < 1) {
		assert_int_equal(tp_recv(m->n[0].tp, &f), -EAGAIN);
		if (past(deadline))
			fail_msg("the spoofed frame was never seen");
		pump(m);
	}
	assert_int_equal(pstats(m, 0, 2).rx_frames, 0);
	zmq_close(s);
	zmq_ctx_term(ctx);
	mesh_destroy(m);
}

/* A peer that never answers fills its bounded queue; further sends drop at once. */
static void test_transport_full_queue_drops(void **state)
{
	struct mesh *m = mesh_new(2, false);
	tp_destroy(&m->n[0].tp);
	struct tp_config c;
	base_config(m, 0, &c);
	c.sndhwm = 8;
	c.n_peers = 2;
	c.peers[0] = peer_of(&m->n[1]);
	/* n9 at an address nobody listens on: a port just released by a throwaway socket. */
	void *ctx = zmq_ctx_new();
	void *tmp = zmq_socket(ctx, ZMQ_ROUTER);
	assert_int_equal(zmq_bind(tmp, "tcp://127.0.0.1:*"), 0);
	c.peers[1].id = 9;
	size_t elen = sizeof(c.peers[1].endpoint);
	assert_int_equal(zmq_getsockopt(tmp, ZMQ_LAST_ENDPOINT, c.peers[1].endpoint, &elen), 0);
	zmq_close(tmp);
	zmq_ctx_term(ctx);
	memcpy(c.peers[1].public_key, m->n[1].pub, TP_KEY_LEN);
	node_start(m, 0, &c); /* same endpoint: n2's link to it reconnects */

	int sent = 0, dropped = 0;
	for (int k = 0; k < 1000; k++) {
		struct opx_msg msg = {.to = 9, .type = OPX_MSG_HB_REQUEST};
		int rc = tp_send_msg(m->n[0].tp, &msg);
		if (rc == 0)
			sent++;
		else if (rc == -EAGAIN)
			dropped++;
		else
			fail_msg("tp_send_msg: %d", rc);
	}
	assert_true(sent >= 8);
	assert_true(sent <= 64); /* bounded: not queueing without limit */
	assert_int_equal(sent + dropped, 1000);
	assert_int_equal(pstats(m, 0, 9).dropped_full, (uint64_t)dropped);
	/* The healthy peer is unaffected. */
	send_hb(m, 0, 2, 5);
	expect_hb(m, 1, 1, 5);
	mesh_destroy(m);
}

/* The fault switch drops exactly the chosen direction; silence is reported and healed. */
static void test_transport_fault_switch(void **state)
{
	struct mesh *m = mesh_new(2, false);
	tp_destroy(&m->n[0].tp);
	struct tp_config c;
	base_config(m, 0, &c);
	c.silence_ms = 300;
	c.n_peers = 1;
	c.peers[0] = peer_of(&m->n[1]);
	node_start(m, 0, &c);
	send_hb(m, 0, 2, 1);
	expect_hb(m, 1, 1, 1);
	wait_event(m, 0, TP_EVENT_UP, 2);

	/* n1 -> n2 cut: the frame is swallowed; n2 -> n1 still flows. */
	assert_int_equal(tp_set_fault(m->n[0].tp, 2, true, false), 0);
	send_hb(m, 0, 2, 2);
	assert_int_equal(pstats(m, 0, 2).fault_out, 1);
	send_hb(m, 1, 1, 50);
	expect_hb(m, 0, 2, 50);
	assert_int_equal(tp_set_fault(m->n[0].tp, 2, false, false), 0);
	send_hb(m, 0, 2, 3);
	expect_hb(m, 1, 1, 3); /* 2 never arrives: order is kept, so it was dropped */

	/* n2 -> n1 cut at n1's side (every peer): dropped on arrival, then silence. */
	send_hb(m, 1, 1, 60);
	expect_hb(m, 0, 2, 60); /* n1 heard n2 just now: the link is up */
	struct tp_event ev;
	while (tp_next_event(m->n[0].tp, &ev) == 0)
		;
	assert_true(pstats(m, 0, 2).up);
	assert_int_equal(pstats(m, 0, 2).downs, 0);
	assert_int_equal(tp_set_fault(m->n[0].tp, 0, false, true), 0);
	send_hb(m, 1, 1, 51);
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	while (pstats(m, 0, 2).fault_in < 1) {
		assert_int_equal(tp_recv(m->n[0].tp, &f), -EAGAIN);
		if (past(deadline))
			fail_msg("frame 51 never reached n1");
		pump(m);
	}
	wait_event(m, 0, TP_EVENT_DOWN, 2);
	assert_false(pstats(m, 0, 2).up);
	/* counted once, however long it lasts */
	assert_int_equal(pstats(m, 0, 2).downs, 1);
	send_hb(m, 0, 2, 4); /* outgoing still works */
	expect_hb(m, 1, 1, 4);

	assert_int_equal(tp_set_fault(m->n[0].tp, 0, false, false), 0);
	send_hb(m, 1, 1, 52);
	expect_hb(m, 0, 2, 52);
	wait_event(m, 0, TP_EVENT_UP, 2);
	assert_int_equal(tp_set_fault(m->n[0].tp, 7, true, true), -ENOENT);
	mesh_destroy(m);
}

/*
 * A link event wakes a poll of the node's own items and is read at once:
 * the owner's loop polls these alone (however many peers, one fd stands
 * for their link monitors), so an event that did not wake it would wait
 * for its next tick. Also for a peer removed and added again (its new
 * monitor replaces the old one in that fd's set).
 */
static void test_transport_link_events_wake_the_poll(void **state)
{
	struct mesh *m = mesh_new(3, false);
	assert_int_equal(tp_remove_peer(m->n[0].tp, 2), 0);
	struct tp_peer_config p = peer_of(&m->n[1]);
	assert_int_equal(tp_add_peer(m->n[0].tp, &p), 0);
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_event ev;
	while (!pstats(m, 0, 2).up || !pstats(m, 0, 3).up) {
		if (past(deadline))
			fail_msg("n1's links to n2 and n3 never came up");
		pump(m);
		while (tp_next_event(m->n[0].tp, &ev) == 0)
			;
	}

	tp_destroy(&m->n[1].tp);
	tp_destroy(&m->n[2].tp);
	bool down[2] = {false, false};
	deadline = tp_now_ms() + DEADLINE_MS;
	while (!down[0] || !down[1]) {
		if (past(deadline))
			fail_msg("n1 saw n2 %s and n3 %s: a link event did not wake its poll",
				 down[0] ? "down" : "up", down[1] ? "down" : "up");
		zmq_pollitem_t items[TP_POLL_ITEMS];
		int n = tp_poll_items(m->n[0].tp, items);
		if (zmq_poll(items, n, (long)(deadline - tp_now_ms())) <= 0)
			continue;
		while (tp_next_event(m->n[0].tp, &ev) == 0)
			if (ev.type == TP_EVENT_DOWN && (ev.peer == 2 || ev.peer == 3))
				down[ev.peer - 2] = true;
	}
	mesh_destroy(m);
}

static void test_transport_plaintext_and_bad_config(void **state)
{
	struct mesh *m = mesh_new(2, true);
	send_hb(m, 0, 2, 9);
	expect_hb(m, 1, 1, 9);
	wait_event(m, 0, TP_EVENT_UP, 2); /* n1 never heard n2: its connection says so */
	char err[256];
	struct tp_config c;
	base_config(m, 0, &c);
	snprintf(c.listen, sizeof(c.listen), "%s", m->n[1].endpoint); /* taken */
	assert_null(tp_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "listen"));
	c.node_id = 0;
	assert_null(tp_new(&c, err, sizeof(err)));
	struct tp_peer_config self = peer_of(&m->n[0]);
	assert_int_equal(tp_add_peer(m->n[0].tp, &self), -EINVAL);
	struct tp_peer_config dup = peer_of(&m->n[1]);
	assert_int_equal(tp_add_peer(m->n[0].tp, &dup), -EEXIST);

	/* A frame limit: we do not send over it, and a peer's oversized frame is not delivered. */
	tp_destroy(&m->n[0].tp);
	base_config(m, 0, &c);
	c.max_frame_len = 4096;
	c.n_peers = 1;
	c.peers[0] = peer_of(&m->n[1]);
	node_start(m, 0, &c);
	uint8_t *big = calloc(1, 5000);
	assert_non_null(big);
	assert_int_equal(tp_send_app(m->n[0].tp, 2, 1, 1, big, 5000), -EMSGSIZE);
	assert_int_equal(tp_send_app(m->n[1].tp, 1, 1, 1, big, 5000), 0);
	uint64_t deadline = tp_now_ms() + DEADLINE_MS;
	struct tp_frame f;
	uint32_t round = 1;
	for (;;) {
		send_hb(m, 1, 1, round++);
		pump(m);
		if (tp_recv(m->n[0].tp, &f) == 0)
			break;
		if (past(deadline))
			fail_msg("n1 heard nothing after the oversized frame");
	}
	assert_false(f.is_app); /* the first frame through is a heartbeat, not the big one */
	free(big);
	mesh_destroy(m);
}

/*
 * An owner that waits through tp_wait alone (no zmq_poll, no tp_service of
 * its own), as the replica thread does: the CURVE handshake is answered,
 * every frame wakes the wait (none sleeps out its long timeout), and the
 * owner's own fd wakes it and is reported.
 */
static void test_transport_wait_alone(void **state)
{
	(void)state;
	struct mesh *m = mesh_new(2, false);
	struct tp *t = m->n[0].tp;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd >= 0);
	for (uint32_t round = 1; round <= 20; round++) {
		send_hb(m, 1, 1, round);
		uint64_t deadline = tp_now_ms() + DEADLINE_MS;
		struct tp_frame f;
		while (tp_recv(t, &f) != 0) {
			if (past(deadline))
				fail_msg("round %u: nothing within %d ms", round, DEADLINE_MS);
			bool own = true;
			uint64_t t0 = tp_now_ms();
			assert_true(tp_wait(t, efd, 60000, &own) >= 0);
			assert_false(own);
			if (tp_now_ms() - t0 > DEADLINE_MS)
				fail_msg("round %u: a wait missed what woke it", round);
		}
		assert_int_equal(f.msg.type, OPX_MSG_HB_REQUEST);
		assert_int_equal(f.msg.from, 2);
		assert_int_equal(f.msg.u.hb_request.round, round);
	}
	uint64_t one = 1;
	assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
	bool own = false;
	assert_true(tp_wait(t, efd, 60000, &own) > 0);
	assert_true(own);
	/* nothing ready: the timeout */
	assert_int_equal(read(efd, &one, sizeof(one)), sizeof(one));
	uint64_t t0, deadline = tp_now_ms() + DEADLINE_MS;
	for (;;) { /* what is left (link events, a late handshake), then a quiet wait */
		struct tp_frame f;
		struct tp_event ev;
		while (tp_recv(t, &f) == 0 || tp_next_event(t, &ev) == 0)
			;
		t0 = tp_now_ms();
		if (tp_wait(t, efd, 20, &own) == 0)
			break;
		if (past(deadline))
			fail_msg("no quiet wait within %d ms", DEADLINE_MS);
	}
	assert_false(own);
	assert_true(tp_now_ms() - t0 >= 15);
	close(efd);
	mesh_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_two_nodes_exchange_every_type),
		cmocka_unit_test(test_transport_wait_alone),
		cmocka_unit_test(test_transport_three_nodes_all_pairs),
		cmocka_unit_test(test_transport_restarted_peer_heard_again),
		cmocka_unit_test(test_transport_unknown_key_refused),
		cmocka_unit_test(test_transport_refused_key_admitted_later),
		cmocka_unit_test(test_transport_refused_key_survives_a_flood),
		cmocka_unit_test(test_transport_rejects_foreign_and_spoofed_frames),
		cmocka_unit_test(test_transport_key_must_match_routing_id),
		cmocka_unit_test(test_transport_full_queue_drops),
		cmocka_unit_test(test_transport_fault_switch),
		cmocka_unit_test(test_transport_link_events_wake_the_poll),
		cmocka_unit_test(test_transport_plaintext_and_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
