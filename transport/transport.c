/*
 * The mesh's lifecycle, sending and receiving (see transport.h for the
 * design). Sending encodes straight into a ZeroMQ message (one copy of the
 * payload) and hands it over without blocking. Receiving takes one
 * [routing id][frame] pair from the ROUTER, checks who sent it, decodes it in
 * place and keeps the ZeroMQ message alive until the next call, since the
 * decoded message points into it.
 *
 * Not here: peer slots and link events (peer.c), the ZAP handler (zap.c).
 */
#include "tp_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define TP__DEF_SNDHWM	      1000
#define TP__DEF_RCVHWM	      10000
#define TP__DEF_RECONNECT_MS  100
#define TP__DEF_RECONNECT_MAX 5000
#define TP__DEF_HB_IVL_MS     1000
#define TP__DEF_HB_TIMEOUT_MS 5000
/* Above a full log sync of what [compaction] lets the log retain (about 64 MiB applied plus a
 * 64 MiB entry): a legitimate frame over the limit would cut the link on every resend. */
#define TP__DEF_MAX_FRAME      (512u * 1024 * 1024)
#define TP__RECV_BATCH_INVALID 64	  /* bad frames skipped per tp_recv call */
#define TP__SCRATCH_KEEP       (1u << 20) /* decode scratch kept between frames */
#define TP__SERVICE_MS	       10	  /* housekeeping at least this often (tp_wait) */

uint64_t tp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void apply_defaults(struct tp_config *c)
{
	if (c->sndhwm <= 0)
		c->sndhwm = TP__DEF_SNDHWM;
	if (c->rcvhwm <= 0)
		c->rcvhwm = TP__DEF_RCVHWM;
	if (c->reconnect_ivl_ms <= 0)
		c->reconnect_ivl_ms = TP__DEF_RECONNECT_MS;
	if (c->reconnect_ivl_max_ms <= 0)
		c->reconnect_ivl_max_ms = TP__DEF_RECONNECT_MAX;
	if (c->heartbeat_ivl_ms <= 0)
		c->heartbeat_ivl_ms = TP__DEF_HB_IVL_MS;
	if (c->heartbeat_timeout_ms <= 0)
		c->heartbeat_timeout_ms = TP__DEF_HB_TIMEOUT_MS;
	if (c->max_frame_len == 0)
		c->max_frame_len = TP__DEF_MAX_FRAME;
}

static int router_open(struct tp *t, char *err, size_t err_len)
{
	const struct tp_config *c = &t->cfg;
	t->router = zmq_socket(t->ctx, ZMQ_ROUTER);
	if (!t->router)
		goto fail;
	int64_t maxmsg = (int64_t)c->max_frame_len;
	if (tp__setopt_int(t->router, ZMQ_LINGER, 0) ||
	    tp__setopt_int(t->router, ZMQ_ROUTER_HANDOVER, 1) ||
	    tp__setopt_int(t->router, ZMQ_RCVHWM, c->rcvhwm) ||
	    tp__setopt_int(t->router, ZMQ_HEARTBEAT_IVL, c->heartbeat_ivl_ms) ||
	    tp__setopt_int(t->router, ZMQ_HEARTBEAT_TIMEOUT, c->heartbeat_timeout_ms) ||
	    tp__setopt_int(t->router, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms) ||
	    zmq_setsockopt(t->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)))
		goto fail;
	if (strchr(c->listen, '[') && tp__setopt_int(t->router, ZMQ_IPV6, 1))
		goto fail;
	if (!c->plaintext) {
		if (tp__setopt_int(t->router, ZMQ_CURVE_SERVER, 1) ||
		    zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, c->secret_key, TP_KEY_LEN) ||
		    zmq_setsockopt(t->router, ZMQ_ZAP_DOMAIN, TP__ZAP_DOMAIN,
				   strlen(TP__ZAP_DOMAIN)))
			goto fail;
	}
	if (zmq_bind(t->router, c->listen) != 0)
		goto fail;
	size_t len = sizeof(t->endpoint);
	if (zmq_getsockopt(t->router, ZMQ_LAST_ENDPOINT, t->endpoint, &len) != 0)
		goto fail;
	len = sizeof(t->router_fd);
	if (zmq_getsockopt(t->router, ZMQ_FD, &t->router_fd, &len) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, err_len, "listen on %s: %s", c->listen, zmq_strerror(errno));
	return -EINVAL;
}

struct tp *tp_new(const struct tp_config *cfg, char *err, size_t err_len)
{
	if (cfg->node_id == 0 || cfg->n_peers > TP_MAX_PEERS || !cfg->listen[0] ||
	    strnlen(cfg->listen, TP_ENDPOINT_MAX) == TP_ENDPOINT_MAX) {
		snprintf(err, err_len,
			 "transport: bad config (node id 0, no listen address or "
			 "too many peers)");
		return NULL;
	}
	if (!cfg->plaintext && !zmq_has("curve")) {
		snprintf(err, err_len,
			 "transport: libzmq was built without CURVE; install a "
			 "libzmq with libsodium or set plaintext = true");
		return NULL;
	}
	struct tp *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, err_len, "transport: out of memory");
		return NULL;
	}
	t->cfg = *cfg;
	apply_defaults(&t->cfg);
	zmq_msg_init(&t->rid);
	zmq_msg_init(&t->body);
	t->router_fd = t->zap_fd = -1;
	t->mon_epoll = epoll_create1(EPOLL_CLOEXEC);
	if (t->mon_epoll < 0) {
		snprintf(err, err_len, "transport: epoll_create1: %s", strerror(errno));
		goto out_free;
	}

	t->ctx = zmq_ctx_new();
	if (!t->ctx) {
		snprintf(err, err_len, "transport: zmq_ctx_new: %s", zmq_strerror(errno));
		goto out_close_epoll;
	}
	char sub[512];
	/* The ZAP handler must be bound before the ROUTER takes its first handshake. */
	if (!t->cfg.plaintext && tp__zap_open(t, sub, sizeof(sub))) {
		snprintf(err, err_len, "transport: %s", sub);
		goto out_close;
	}
	if (router_open(t, sub, sizeof(sub))) {
		snprintf(err, err_len, "transport: %s", sub);
		goto out_close;
	}
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct tp_peer_config *pc = &cfg->peers[i];
		if (pc->id == cfg->node_id)
			continue; /* the member list includes ourselves */
		int rc = tp_add_peer(t, pc);
		if (rc) {
			snprintf(err, err_len, "transport: peer n%llu at %s: %s",
				 (unsigned long long)pc->id, pc->endpoint, strerror(-rc));
			goto out_close;
		}
	}
	if (t->cfg.plaintext)
		tp__log(t, TP_LOG_WARNING,
			"transport: plaintext: links to and from n%llu are neither encrypted nor "
			"authenticated ([security] plaintext = true)",
			(unsigned long long)cfg->node_id);
	tp__log(t, TP_LOG_INFO, "transport: n%llu listening on %s, %s, %zu peers",
		(unsigned long long)cfg->node_id, t->endpoint,
		t->cfg.plaintext ? "plaintext" : "CURVE", cfg->n_peers);
	return t;

out_close:
	tp_destroy(&t);
	return NULL;
out_close_epoll:
	close(t->mon_epoll);
out_free:
	free(t);
	return NULL;
}

void tp_destroy(struct tp **tp)
{
	struct tp *t = *tp;
	if (!t)
		return;
	zmq_msg_close(&t->rid);
	zmq_msg_close(&t->body);
	for (size_t i = 0; i < TP_MAX_PEERS; i++)
		if (t->peers[i].in_use)
			tp__peer_close(t, &t->peers[i]);
	close(t->mon_epoll);
	if (t->router)
		zmq_close(t->router);
	if (t->zap)
		zmq_close(t->zap);
	if (t->ctx)
		zmq_ctx_term(t->ctx);
	free(t->scratch.buf);
	memset(t->cfg.secret_key, 0, sizeof(t->cfg.secret_key));
	free(t);
	*tp = NULL;
}

const char *tp_endpoint(const struct tp *t)
{
	return t->endpoint;
}

int tp_poll_items(struct tp *t, zmq_pollitem_t items[TP_POLL_ITEMS])
{
	int n = 0;
	items[n++] = (zmq_pollitem_t){.socket = t->router, .events = ZMQ_POLLIN};
	if (t->zap)
		items[n++] = (zmq_pollitem_t){.socket = t->zap, .events = ZMQ_POLLIN};
	items[n++] = (zmq_pollitem_t){.fd = t->mon_epoll, .events = ZMQ_POLLIN};
	return n;
}

int tp_poll(struct tp *t, long timeout_ms)
{
	zmq_pollitem_t items[TP_POLL_ITEMS];
	int n = tp_poll_items(t, items);
	int rc = zmq_poll(items, n, timeout_ms);
	return rc < 0 ? -errno : rc;
}

void tp_service(struct tp *t)
{
	uint64_t now = tp_now_ms();
	t->service_due = false;
	t->next_service_ms = now + TP__SERVICE_MS;
	tp__zap_serve(t);
	tp__peers_service(t, now);
}

/* Housekeeping is due: always, until the owner waits through tp_wait. */
static bool service_is_due(const struct tp *t)
{
	return !t->waits || t->service_due || tp_now_ms() >= t->next_service_ms;
}

void tp__service_if_due(struct tp *t)
{
	if (service_is_due(t))
		tp_service(t);
}

/*
 * One poll(2) on the sockets' ZMQ_FDs, the monitors' epoll fd and fd. A
 * ZMQ_FD is readable when commands wait in the socket's mailbox, not when
 * messages do; it is safe to sleep on because the last tp_recv ended with
 * a receive that found nothing (which processes those commands and leaves
 * the pipe asking for a new one with the next message), and the ZAP
 * handler and the monitors are drained the same way by tp_service. So
 * zmq_poll's look at every socket's ZMQ_EVENTS before and after it sleeps
 * (a syscall each) is not needed.
 */
int tp_wait(struct tp *t, int fd, long timeout_ms, bool *fd_ready)
{
	struct pollfd pf[4];
	nfds_t n = 0;
	if (fd_ready)
		*fd_ready = false;
	/* Not after a tp_recv yet, tp_recv stopped early, or events wait to
	 * be taken: look without sleeping. */
	if (!t->waits || t->recv_more || t->ev_len)
		timeout_ms = 0;
	t->waits = true;
	pf[n++] = (struct pollfd){.fd = t->router_fd, .events = POLLIN};
	pf[n++] = (struct pollfd){.fd = t->mon_epoll, .events = POLLIN};
	nfds_t zap = n;
	if (t->zap_fd >= 0)
		pf[n++] = (struct pollfd){.fd = t->zap_fd, .events = POLLIN};
	nfds_t own = n;
	if (fd >= 0)
		pf[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	int rc = poll(pf, n, timeout_ms < 0 ? -1 : (int)timeout_ms);
	if (rc < 0)
		return -errno;
	if (pf[1].revents || (zap < own && pf[zap].revents))
		t->service_due = true;
	if (fd >= 0 && fd_ready)
		*fd_ready = pf[own].revents != 0;
	return rc;
}

void tp_stats(const struct tp *t, struct tp_stats *st)
{
	*st = t->st;
}

/* Hands a filled message to the peer's DEALER; takes ownership of msg. */
static int send_frame(struct tp *t, struct tp_peer *p, zmq_msg_t *msg)
{
	size_t len = zmq_msg_size(msg);
	if (p->drop_out) {
		zmq_msg_close(msg);
		p->st.fault_out++;
		return 0;
	}
	if (zmq_msg_send(msg, p->dealer, ZMQ_DONTWAIT) < 0) {
		int e = errno;
		zmq_msg_close(msg);
		if (e == EAGAIN) {
			p->st.dropped_full++;
			return -EAGAIN;
		}
		return -e;
	}
	p->st.tx_frames++;
	p->st.tx_bytes += len;
	return 0;
}

/* Our own frame over the limit: the peer would drop the link, so do not send it. Say so. */
static int too_big(struct tp *t, const char *what, size_t len, uint64_t to)
{
	tp__log_limited(t, &t->rl_link, TP_LOG_WARNING,
			"transport: not sending a %zu-byte %s to n%llu: over the %zu-byte frame "
			"limit",
			len, what, (unsigned long long)to, t->cfg.max_frame_len);
	return -EMSGSIZE;
}

int tp_send_msg(struct tp *t, const struct opx_msg *m)
{
	struct tp_peer *p = tp__peer_find(t, m->to);
	if (!p)
		return -ENOENT;
	struct opx_msg copy = *m;
	copy.from = t->cfg.node_id;
	size_t need;
	int rc = tp_encoded_len(&copy, &need);
	if (rc)
		return rc;
	if (need > t->cfg.max_frame_len)
		return too_big(t, opx_msg_type_name(copy.type), need, m->to);
	zmq_msg_t msg;
	if (zmq_msg_init_size(&msg, need) != 0)
		return -ENOMEM;
	size_t len;
	rc = tp_encode_msg(t->cfg.cluster_id, &copy, zmq_msg_data(&msg), need, &len);
	if (rc) {
		zmq_msg_close(&msg);
		return rc;
	}
	return send_frame(t, p, &msg);
}

int tp_send_app(struct tp *t, uint64_t to, uint32_t config_id, uint16_t app_type, const void *data,
		size_t len)
{
	struct tp_peer *p = tp__peer_find(t, to);
	if (!p)
		return -ENOENT;
	size_t need = tp_app_encoded_len(len);
	if (!need)
		return -EINVAL;
	if (need > t->cfg.max_frame_len)
		return too_big(t, "app frame", need, to);
	zmq_msg_t msg;
	if (zmq_msg_init_size(&msg, need) != 0)
		return -ENOMEM;
	struct tp_app app = {.app_type = app_type, .data = data, .len = (uint32_t)len};
	size_t out_len;
	int rc = tp_encode_app(t->cfg.cluster_id, t->cfg.node_id, to, config_id, &app,
			       zmq_msg_data(&msg), need, &out_len);
	if (rc) {
		zmq_msg_close(&msg);
		return rc;
	}
	return send_frame(t, p, &msg);
}

static void frame_rejected(struct tp *t, uint64_t peer, const char *what)
{
	tp__log_limited(t, &t->rl_frame, TP_LOG_WARNING,
			"transport: dropped a frame from n%llu: %s", (unsigned long long)peer,
			what);
}

/* Decodes t->body into out, growing the scratch area once if it must. */
static int decode_body(struct tp *t, struct tp_frame *out)
{
	const uint8_t *data = zmq_msg_data(&t->body);
	size_t len = zmq_msg_size(&t->body);
	int rc = tp_decode(data, len, t->cfg.cluster_id, &t->scratch, out);
	if (rc != -ENOBUFS)
		return rc;
	void *grown = realloc(t->scratch.buf, t->scratch.need);
	if (!grown)
		return -ENOMEM;
	t->scratch.buf = grown;
	t->scratch.cap = t->scratch.need;
	return tp_decode(data, len, t->cfg.cluster_id, &t->scratch, out);
}

/*
 * Takes one [routing id][frame] from the ROUTER into t->rid/t->body. Returns
 * 1 if got, 0 if a malformed envelope was dropped, -EAGAIN if nothing waits.
 */
static int take_envelope(struct tp *t)
{
	zmq_msg_close(&t->body);
	zmq_msg_init(&t->body);
	zmq_msg_close(&t->rid);
	zmq_msg_init(&t->rid);
	if (zmq_msg_recv(&t->rid, t->router, ZMQ_DONTWAIT) < 0)
		return -EAGAIN;
	bool more = zmq_msg_more(&t->rid);
	if (more && zmq_msg_recv(&t->body, t->router, ZMQ_DONTWAIT) >= 0 && !zmq_msg_more(&t->body))
		return 1;
	/* Not exactly two parts: drain what is left of this message. */
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, t->router, ZMQ_DONTWAIT) < 0)
			more = false;
		else
			more = zmq_msg_more(&m);
		zmq_msg_close(&m);
	}
	uint64_t id = tp__rid_decode(zmq_msg_data(&t->rid), zmq_msg_size(&t->rid));
	struct tp_peer *p = tp__peer_find(t, id);
	if (p)
		p->st.malformed++;
	else
		t->st.unknown_sender++;
	frame_rejected(t, id, "not a single-part message");
	return 0;
}

/* 0: *out is a valid frame from a configured peer; <0: rejected (counted). */
static int check_frame(struct tp *t, struct tp_frame *out)
{
	uint64_t id = tp__rid_decode(zmq_msg_data(&t->rid), zmq_msg_size(&t->rid));
	struct tp_peer *p = tp__peer_find(t, id);
	if (!p) {
		t->st.unknown_sender++;
		frame_rejected(t, id, "not a configured peer");
		return -EACCES;
	}
	if (!t->cfg.plaintext) {
		/* The key that authenticated this link must be the peer's own. */
		const char *user = zmq_msg_gets(&t->body, "User-Id");
		if (!user || strcmp(user, p->user_id) != 0) {
			t->st.spoofed++;
			frame_rejected(t, id, "its routing id does not match its CURVE key");
			return -EACCES;
		}
	}
	if (p->drop_in) {
		p->st.fault_in++;
		return -EAGAIN;
	}
	int rc = decode_body(t, out);
	if (rc == -EACCES) {
		t->st.wrong_cluster++;
		frame_rejected(t, id, "another cluster's frame (check [node] cluster)");
		return rc;
	}
	if (rc) {
		p->st.malformed++;
		frame_rejected(t, id,
			       rc == -EPROTONOSUPPORT ? "unsupported wire version"
			       : rc == -ENOMEM	      ? "out of memory"
						      : "malformed");
		return rc;
	}
	if (out->hdr.from != id) {
		t->st.spoofed++;
		frame_rejected(t, id, "its header names another sender");
		return -EACCES;
	}
	if (out->hdr.to != t->cfg.node_id) {
		p->st.malformed++;
		frame_rejected(t, id, "addressed to another node");
		return -EBADMSG;
	}
	p->st.rx_frames++;
	p->st.rx_bytes += zmq_msg_size(&t->body);
	p->st.last_heard_ms = tp_now_ms();
	if (!p->up)
		tp__peer_set_up(t, p, true, "heard");
	p->alive_ms = p->st.last_heard_ms;
	return 0;
}

int tp_recv(struct tp *t, struct tp_frame *out)
{
	/* The previous frame is released now: do not keep a huge scratch area around. */
	if (t->scratch.cap > TP__SCRATCH_KEEP) {
		free(t->scratch.buf);
		t->scratch.buf = NULL;
		t->scratch.cap = 0;
	}
	t->recv_more = false;
	for (int tries = 0; tries < TP__RECV_BATCH_INVALID; tries++) {
		int rc = take_envelope(t);
		if (rc == -EAGAIN) {
			/* Idle: answer handshakes and read link events (when due,
			 * see tp_wait), then look once more. */
			if (!service_is_due(t))
				return -EAGAIN;
			tp_service(t);
			rc = take_envelope(t);
			if (rc == -EAGAIN)
				return -EAGAIN;
		}
		if (rc == 1 && check_frame(t, out) == 0)
			return 0;
	}
	t->recv_more = true; /* frames may still wait: tp_wait must not sleep */
	return -EAGAIN;
}
