/*
 * Transport benchmark: message rate and round-trip latency between two nodes
 * on loopback, for 100 B and 64 KiB messages, through
 *   - plain ZeroMQ (one DEALER -> ROUTER connection, no codec): the baseline,
 *   - the same with CURVE (what libzmq's encryption costs by itself),
 *   - the omnifs mesh in plaintext,
 *   - the omnifs mesh with CURVE,
 * all measured in the same run, so the ratio to the baseline is meaningful.
 *
 *   ninja -C build/release && build/release/tools/bench_transport [-q] [-o NAME]
 *
 * -q runs a tenth of the messages (a quick check); -o zmq|zmq-curve|plain|curve
 * runs one transport alone (for perf record). Each node runs in its own
 * thread with its own ZeroMQ context (one I/O thread each), as two daemons
 * would. Mesh messages are AcceptDecide frames carrying one entry of the
 * given size (about 90 bytes of header and envelope on top); baseline
 * messages are that many raw bytes.
 *
 * Rate: the sender keeps at most WINDOW unacknowledged messages in flight;
 * the receiver acknowledges every ACK_EVERY. Latency: one message out, the
 * same size back, timed per round trip. It measures; it asserts nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

#define WINDOW	  256
#define ACK_EVERY 32
#define CLUSTER	  0xbe4c4ull

enum phase { PHASE_SINK, PHASE_ECHO };

struct result {
	double msgs_per_s;
	double mib_per_s;
	double p50_us, p99_us;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void percentiles(uint64_t *rtt, size_t n, struct result *r)
{
	qsort(rtt, n, sizeof(*rtt), cmp_u64);
	r->p50_us = (double)rtt[n / 2] / 1000.0;
	r->p99_us = (double)rtt[(n * 99) / 100] / 1000.0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_transport: %s: %s\n", what, strerror(err));
	exit(1);
}

/* ---------------- plain ZeroMQ baseline ---------------- */

struct raw_peer {
	void *ctx, *router;
	enum phase phase;
	size_t count;
};

static void *raw_server(void *arg)
{
	struct raw_peer *p = arg;
	zmq_msg_t rid, body;
	zmq_msg_init(&rid);
	zmq_msg_init(&body);
	for (size_t i = 1; i <= p->count; i++) {
		if (zmq_msg_recv(&rid, p->router, 0) < 0 || zmq_msg_recv(&body, p->router, 0) < 0)
			die("raw recv", errno);
		size_t ack = i;
		bool echo = p->phase == PHASE_ECHO;
		if (!echo && i % ACK_EVERY != 0 && i != p->count)
			continue;
		if (zmq_send(p->router, zmq_msg_data(&rid), zmq_msg_size(&rid), ZMQ_SNDMORE) < 0 ||
		    (echo ? zmq_msg_send(&body, p->router, 0)
			  : zmq_send(p->router, &ack, sizeof(ack), 0)) < 0)
			die("raw send", errno);
	}
	zmq_msg_close(&rid);
	zmq_msg_close(&body);
	return NULL;
}

static void keypair(uint8_t *pub, uint8_t *sec);

static void bench_raw(size_t size, size_t n_rate, size_t n_lat, bool curve, struct result *r)
{
	struct raw_peer srv = {.ctx = zmq_ctx_new()};
	void *cctx = zmq_ctx_new();
	srv.router = zmq_socket(srv.ctx, ZMQ_ROUTER);
	void *dealer = zmq_socket(cctx, ZMQ_DEALER);
	int zero = 0, one = 1, hwm = 10000;
	zmq_setsockopt(srv.router, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (curve) {
		/* CURVE without a ZAP handler: libzmq admits any client key. */
		uint8_t spub[TP_KEY_LEN], ssec[TP_KEY_LEN], cpub[TP_KEY_LEN], csec[TP_KEY_LEN];
		keypair(spub, ssec);
		keypair(cpub, csec);
		zmq_setsockopt(srv.router, ZMQ_CURVE_SERVER, &one, sizeof(one));
		zmq_setsockopt(srv.router, ZMQ_CURVE_SECRETKEY, ssec, TP_KEY_LEN);
		zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, spub, TP_KEY_LEN);
		zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, cpub, TP_KEY_LEN);
		zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, csec, TP_KEY_LEN);
	}
	if (zmq_bind(srv.router, "tcp://127.0.0.1:*") != 0)
		die("raw bind", errno);
	char ep[256];
	size_t eplen = sizeof(ep);
	zmq_getsockopt(srv.router, ZMQ_LAST_ENDPOINT, ep, &eplen);
	if (zmq_connect(dealer, ep) != 0)
		die("raw connect", errno);
	uint8_t *buf = calloc(1, size);
	size_t ack;

	/* Rate. */
	srv.phase = PHASE_SINK;
	srv.count = n_rate;
	pthread_t th;
	pthread_create(&th, NULL, raw_server, &srv);
	uint64_t t0 = now_ns();
	size_t sent = 0, acked = 0;
	while (acked < n_rate) {
		while (sent < n_rate && sent - acked < WINDOW) {
			if (zmq_send(dealer, buf, size, 0) < 0)
				die("raw send", errno);
			sent++;
		}
		if (zmq_recv(dealer, &ack, sizeof(ack), 0) < 0)
			die("raw recv ack", errno);
		acked = ack;
	}
	uint64_t t1 = now_ns();
	pthread_join(th, NULL);
	r->msgs_per_s = (double)n_rate * 1e9 / (double)(t1 - t0);
	r->mib_per_s = r->msgs_per_s * (double)size / (1024.0 * 1024.0);

	/* Latency. */
	srv.phase = PHASE_ECHO;
	srv.count = n_lat;
	pthread_create(&th, NULL, raw_server, &srv);
	uint64_t *rtt = malloc(n_lat * sizeof(*rtt));
	uint8_t *back = malloc(size);
	for (size_t i = 0; i < n_lat; i++) {
		uint64_t s = now_ns();
		if (zmq_send(dealer, buf, size, 0) < 0 || zmq_recv(dealer, back, size, 0) < 0)
			die("raw ping", errno);
		rtt[i] = now_ns() - s;
	}
	pthread_join(th, NULL);
	percentiles(rtt, n_lat, r);
	free(rtt);
	free(back);
	free(buf);
	zmq_close(dealer);
	zmq_close(srv.router);
	zmq_ctx_term(cctx);
	zmq_ctx_term(srv.ctx);
}

/* ---------------- the omnifs mesh ---------------- */

struct mesh_peer {
	struct tp *tp;
	enum phase phase;
	size_t count;
};

static int send_retry(struct tp *t, const struct opx_msg *m)
{
	for (;;) {
		int rc = tp_send_msg(t, m);
		if (rc != -EAGAIN)
			return rc;
		/* Queue full: let the I/O thread drain it. Never happens with WINDOW < sndhwm. */
		tp_poll(t, 1);
	}
}

static struct tp_frame *recv_wait(struct tp *t, struct tp_frame *f)
{
	while (tp_recv(t, f) != 0)
		tp_poll(t, 100);
	return f;
}

static void *mesh_server(void *arg)
{
	struct mesh_peer *p = arg;
	struct tp_frame f;
	for (size_t i = 1; i <= p->count; i++) {
		recv_wait(p->tp, &f);
		if (p->phase == PHASE_ECHO) {
			struct opx_msg m = f.msg; /* entries point into the received frame */
			m.to = f.msg.from;
			if (send_retry(p->tp, &m))
				die("mesh echo", EIO);
		} else if (i % ACK_EVERY == 0 || i == p->count) {
			struct opx_msg ack = {.to = f.msg.from, .type = OPX_MSG_ACCEPTED};
			ack.u.accepted.accepted_idx = i;
			if (send_retry(p->tp, &ack))
				die("mesh ack", EIO);
		}
	}
	return NULL;
}

static void keypair(uint8_t *pub, uint8_t *sec)
{
	char pz[TP_KEY_Z85_LEN + 1], sz[TP_KEY_Z85_LEN + 1];
	if (tp_key_generate(pz, sz) || tp_key_from_z85(pz, pub) || tp_key_from_z85(sz, sec))
		die("keypair", ENOTSUP);
}

static void bench_mesh(size_t size, size_t n_rate, size_t n_lat, bool plaintext, struct result *r)
{
	struct tp_config *cfg = calloc(2, sizeof(*cfg));
	struct tp *t[2];
	char err[256];
	for (int i = 0; i < 2; i++) {
		memset(&cfg[i], 0, sizeof(cfg[i]));
		cfg[i].node_id = (uint64_t)i + 1;
		cfg[i].cluster_id = CLUSTER;
		cfg[i].plaintext = plaintext;
		snprintf(cfg[i].listen, sizeof(cfg[i].listen), "tcp://127.0.0.1:*");
		keypair(cfg[i].public_key, cfg[i].secret_key);
		cfg[i].sndhwm = 10000;
		t[i] = tp_new(&cfg[i], err, sizeof(err));
		if (!t[i]) {
			fprintf(stderr, "bench_transport: %s\n", err);
			exit(1);
		}
	}
	for (int i = 0; i < 2; i++) {
		struct tp_peer_config pc = {.id = cfg[1 - i].node_id};
		snprintf(pc.endpoint, sizeof(pc.endpoint), "%s", tp_endpoint(t[1 - i]));
		memcpy(pc.public_key, cfg[1 - i].public_key, TP_KEY_LEN);
		if (tp_add_peer(t[i], &pc))
			die("tp_add_peer", EINVAL);
	}
	uint8_t *data = calloc(1, size);
	struct opx_entry e = {.data = data, .len = (uint32_t)size};
	struct opx_msg m = {.to = 2, .type = OPX_MSG_ACCEPT_DECIDE};
	m.u.accept_decide.entries = &e;
	m.u.accept_decide.n_entries = 1;
	struct tp_frame f;

	/* The server thread owns t[1] while it runs; this thread only touches t[0]. */
	struct mesh_peer srv = {.tp = t[1], .phase = PHASE_SINK, .count = n_rate};
	pthread_t th;
	pthread_create(&th, NULL, mesh_server, &srv);
	uint64_t t0 = now_ns();
	size_t sent = 0, acked = 0;
	while (acked < n_rate) {
		while (sent < n_rate && sent - acked < WINDOW) {
			m.u.accept_decide.decided_idx = sent;
			if (send_retry(t[0], &m))
				die("mesh send", EIO);
			sent++;
		}
		recv_wait(t[0], &f);
		acked = f.msg.u.accepted.accepted_idx;
	}
	uint64_t t1 = now_ns();
	pthread_join(th, NULL);
	r->msgs_per_s = (double)n_rate * 1e9 / (double)(t1 - t0);
	r->mib_per_s = r->msgs_per_s * (double)size / (1024.0 * 1024.0);

	srv.phase = PHASE_ECHO;
	srv.count = n_lat;
	pthread_create(&th, NULL, mesh_server, &srv);
	uint64_t *rtt = malloc(n_lat * sizeof(*rtt));
	for (size_t i = 0; i < n_lat; i++) {
		uint64_t s = now_ns();
		if (send_retry(t[0], &m))
			die("mesh ping", EIO);
		recv_wait(t[0], &f);
		rtt[i] = now_ns() - s;
	}
	pthread_join(th, NULL);
	percentiles(rtt, n_lat, r);
	free(rtt);
	free(data);
	tp_destroy(&t[0]);
	tp_destroy(&t[1]);
	free(cfg);
}

static void row(const char *size, const char *name, const struct result *r,
		const struct result *base)
{
	printf("%-7s %-22s %11.0f %9.1f %10.1f %10.1f %7.0f%%\n", size, name, r->msgs_per_s,
	       r->mib_per_s, r->p50_us, r->p99_us, 100.0 * r->msgs_per_s / base->msgs_per_s);
}

int main(int argc, char **argv)
{
	int scale = 1;
	const char *only = NULL; /* run one transport alone (for profiling) */
	int opt;
	while ((opt = getopt(argc, argv, "qo:")) != -1) {
		if (opt == 'q') {
			scale = 10;
		} else if (opt == 'o') {
			only = optarg;
		} else {
			fprintf(stderr, "usage: %s [-q] [-o zmq|zmq-curve|plain|curve]\n", argv[0]);
			return 2;
		}
	}
	struct {
		size_t size;
		const char *label;
		size_t n_rate, n_lat;
	} cases[] = {
		{100, "100 B", 200000, 20000},
		{64 * 1024, "64 KiB", 20000, 5000},
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	printf("# omnifs transport benchmark: 2 nodes on loopback, %ld CPUs online, libzmq %d.%d.%d\n",
	       cpus, ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH);
	printf("# rate: window %d, ack every %d; latency: round trip of one message each way\n",
	       WINDOW, ACK_EVERY);
	printf("%-7s %-22s %11s %9s %10s %10s %8s\n", "size", "transport", "msgs/s", "MiB/s",
	       "rtt p50us", "rtt p99us", "vs zmq");
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t n_rate = cases[k].n_rate / (size_t)scale;
		size_t n_lat = cases[k].n_lat / (size_t)scale;
		struct result res[4] = {0};
		const char *names[4] = {"zmq DEALER->ROUTER", "zmq + CURVE", "mesh plaintext",
					"mesh CURVE"};
		const char *keys[4] = {"zmq", "zmq-curve", "plain", "curve"};
		for (int v = 0; v < 4; v++) {
			if (only && strcmp(only, keys[v]) != 0)
				continue;
			if (v < 2)
				bench_raw(cases[k].size, n_rate, n_lat, v == 1, &res[v]);
			else
				bench_mesh(cases[k].size, n_rate, n_lat, v == 2, &res[v]);
		}
		for (int v = 0; v < 4; v++)
			if (!only || strcmp(only, keys[v]) == 0)
				row(cases[k].label, names[v], &res[v], only ? &res[v] : &res[0]);
		fflush(stdout);
	}
	return 0;
}
