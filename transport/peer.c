/*
 * The peer table: one slot per configured peer with its DEALER, the monitor
 * that reports the DEALER's connection events, its counters and its fault
 * switch; plus the link-event queue the replica drains with tp_next_event.
 *
 * A peer is "up" once its DEALER completed a handshake or a valid frame from
 * it arrived, and "down" when the DEALER lost its connection or (silence_ms)
 * nothing was heard for too long. Only changes are reported, so events
 * alternate per peer. Sockets are not shared: the owner thread calls all this.
 *
 * Which monitors to read. A read of an empty monitor still costs a system
 * call (libzmq looks at the socket's mailbox), and the owner's loop turns a
 * few times per replicated entry: reading every monitor every time made each
 * turn cost more with every member, learners included. So each monitor's
 * ZMQ_FD (its mailbox's eventfd) sits in one epoll set (t->mon_epoll), and a
 * monitor is read only when its fd is readable. That fd signals news, not
 * messages: it stays quiet about a message a read left behind, and about the
 * first message of a socket never read. So a monitor is always read until it
 * is empty, and once when opened, before its DEALER connects.
 */
#include "tp_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

int tp__setopt_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v)) ? -errno : 0;
}

void tp__rid_encode(uint64_t id, uint8_t *rid)
{
	/* Routing ids starting with a zero byte are reserved by ZeroMQ: lead with 'N'. */
	rid[0] = 'N';
	for (int i = 0; i < 8; i++)
		rid[1 + i] = (uint8_t)(id >> (8 * i));
}

uint64_t tp__rid_decode(const uint8_t *rid, size_t len)
{
	if (len != TP__RID_LEN || rid[0] != 'N')
		return 0;
	uint64_t id = 0;
	for (int i = 7; i >= 0; i--)
		id = id << 8 | rid[1 + i];
	return id;
}

struct tp_peer *tp__peer_find(struct tp *t, uint64_t id)
{
	if (id == 0)
		return NULL;
	for (size_t i = 0; i < TP_MAX_PEERS; i++)
		if (t->peers[i].in_use && t->peers[i].cfg.id == id)
			return &t->peers[i];
	return NULL;
}

struct tp_peer *tp__peer_by_key(struct tp *t, const uint8_t *key)
{
	for (size_t i = 0; i < TP_MAX_PEERS; i++)
		if (t->peers[i].in_use && !memcmp(t->peers[i].cfg.public_key, key, TP_KEY_LEN))
			return &t->peers[i];
	return NULL;
}

static void push_event(struct tp *t, enum tp_event_type type, uint64_t peer)
{
	if (t->ev_len == TP__EVENT_CAP) {
		t->st.events_lost++;
		return;
	}
	struct tp_event *ev = &t->events[(t->ev_head + t->ev_len) % TP__EVENT_CAP];
	ev->type = type;
	ev->peer = peer;
	t->ev_len++;
}

int tp_next_event(struct tp *t, struct tp_event *ev)
{
	if (!t->ev_len)
		tp__service_if_due(t);
	if (!t->ev_len)
		return -EAGAIN;
	*ev = t->events[t->ev_head];
	t->ev_head = (t->ev_head + 1) % TP__EVENT_CAP;
	t->ev_len--;
	return 0;
}

void tp__peer_set_up(struct tp *t, struct tp_peer *p, bool up, const char *why)
{
	if (up)
		p->alive_ms = tp_now_ms();
	if (p->up == up)
		return;
	p->up = up;
	p->st.up = up;
	if (!up)
		p->st.downs++;
	tp__log(t, TP_LOG_INFO, "transport: link to n%llu %s (%s)", (unsigned long long)p->cfg.id,
		up ? "up" : "down", why);
	push_event(t, up ? TP_EVENT_UP : TP_EVENT_DOWN, p->cfg.id);
}

/*
 * libzmq does not dial again after a refused handshake: the DEALER stays
 * dead. But a refusal can end (a peer that did not know our key yet learns
 * it when we both join a new configuration), so the DEALER is made anew
 * after a back-off from reconnect_ivl_ms to reconnect_ivl_max_ms.
 */
static void schedule_redial(struct tp *t, struct tp_peer *p)
{
	uint32_t lo = (uint32_t)t->cfg.reconnect_ivl_ms, hi = (uint32_t)t->cfg.reconnect_ivl_max_ms;
	p->redial_ms = p->redial_ms ? p->redial_ms * 2 : lo;
	if (p->redial_ms > hi)
		p->redial_ms = hi;
	p->redial_at_ms = tp_now_ms() + p->redial_ms;
}

static void close_sockets(struct tp *t, struct tp_peer *p)
{
	if (p->dealer)
		zmq_socket_monitor(p->dealer, NULL, 0);
	if (p->monitor) {
		/* Before the close: libzmq closes the fd later, on its own thread. */
		epoll_ctl(t->mon_epoll, EPOLL_CTL_DEL, p->monitor_fd, NULL);
		zmq_close(p->monitor);
	}
	if (p->dealer)
		zmq_close(p->dealer);
	p->monitor = p->dealer = NULL;
}

static void redial(struct tp *t, struct tp_peer *p)
{
	char err[512];
	p->redial_at_ms = 0;
	close_sockets(t, p);
	if (tp__peer_open(t, p, err, sizeof(err)) != 0) {
		tp__log(t, TP_LOG_ERR, "transport: dialing again: %s", err);
		schedule_redial(t, p);
	}
}

/* Reads the DEALER's monitor, [u16 event, u32 value][endpoint] each, until it is empty. */
static void read_monitor(struct tp *t, struct tp_peer *p)
{
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, p->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		uint16_t event = 0;
		if (zmq_msg_size(&m) >= 6)
			memcpy(&event, zmq_msg_data(&m), sizeof(event)); /* host order by design */
		while (zmq_msg_more(&m)) {
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, p->monitor, ZMQ_DONTWAIT) < 0)
				break;
		}
		zmq_msg_close(&m);

		switch (event) {
		case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
			tp__peer_set_up(t, p, true, "connected");
			p->redial_ms = 0;
			break;
		case ZMQ_EVENT_DISCONNECTED:
			tp__peer_set_up(t, p, false, "disconnected");
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			tp__log_limited(
				t, &t->rl_link, TP_LOG_WARNING,
				"transport: handshake with n%llu at %s failed (%s); if it persists, "
				"check that its public key in our config and ours in its config "
				"match the key files",
				(unsigned long long)p->cfg.id, p->cfg.endpoint,
				event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "our key refused"
									 : "protocol error");
			tp__peer_set_up(t, p, false, "handshake failed");
			if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
				schedule_redial(t, p);
			break;
		default:
			break;
		}
	}
}

void tp__peers_service(struct tp *t, uint64_t now_ms)
{
	struct epoll_event ready[TP_MAX_PEERS];
	int n = epoll_wait(t->mon_epoll, ready, TP_MAX_PEERS, 0);
	for (int k = 0; k < n; k++) {
		struct tp_peer *p = &t->peers[ready[k].data.u32];
		if (p->monitor)
			read_monitor(t, p);
	}
	for (size_t i = 0; i < TP_MAX_PEERS; i++) {
		struct tp_peer *p = &t->peers[i];
		if (!p->in_use)
			continue;
		if (p->redial_at_ms && now_ms >= p->redial_at_ms)
			redial(t, p);
		if (t->cfg.silence_ms && p->up && now_ms - p->alive_ms > t->cfg.silence_ms)
			tp__peer_set_up(t, p, false, "silent");
	}
}

static int dealer_options(struct tp *t, struct tp_peer *p)
{
	const struct tp_config *c = &t->cfg;
	uint8_t rid[TP__RID_LEN];
	tp__rid_encode(c->node_id, rid);
	int rc = zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, rid, sizeof(rid)) ? -errno : 0;
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_LINGER, 0);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_SNDHWM, c->sndhwm);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_RECONNECT_IVL, c->reconnect_ivl_ms);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_RECONNECT_IVL_MAX, c->reconnect_ivl_max_ms);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_HEARTBEAT_IVL, c->heartbeat_ivl_ms);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_HEARTBEAT_TIMEOUT, c->heartbeat_timeout_ms);
	rc = rc ? rc : tp__setopt_int(p->dealer, ZMQ_HEARTBEAT_TTL, c->heartbeat_timeout_ms);
	if (!rc && strchr(p->cfg.endpoint, '['))
		rc = tp__setopt_int(p->dealer, ZMQ_IPV6, 1);
	if (!rc && !c->plaintext) {
		if (zmq_setsockopt(p->dealer, ZMQ_CURVE_SERVERKEY, p->cfg.public_key, TP_KEY_LEN) ||
		    zmq_setsockopt(p->dealer, ZMQ_CURVE_PUBLICKEY, c->public_key, TP_KEY_LEN) ||
		    zmq_setsockopt(p->dealer, ZMQ_CURVE_SECRETKEY, c->secret_key, TP_KEY_LEN))
			rc = -errno;
	}
	return rc;
}

int tp__peer_open(struct tp *t, struct tp_peer *p, char *err, size_t err_len)
{
	snprintf(p->user_id, sizeof(p->user_id), "%llu", (unsigned long long)p->cfg.id);
	p->dealer = zmq_socket(t->ctx, ZMQ_DEALER);
	if (!p->dealer)
		goto fail;
	int rc = dealer_options(t, p);
	if (rc) {
		errno = -rc;
		goto fail_close_dealer;
	}
	char mon[64];
	snprintf(mon, sizeof(mon), "inproc://tp-monitor-%llu-%u", (unsigned long long)p->cfg.id,
		 t->monitor_seq++);
	if (zmq_socket_monitor(p->dealer, mon,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
				       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
		goto fail_close_dealer;
	p->monitor = zmq_socket(t->ctx, ZMQ_PAIR);
	if (!p->monitor)
		goto fail_stop_monitor;
	if (tp__setopt_int(p->monitor, ZMQ_LINGER, 0) || zmq_connect(p->monitor, mon) != 0)
		goto fail_close_monitor;
	size_t fd_len = sizeof(p->monitor_fd);
	if (zmq_getsockopt(p->monitor, ZMQ_FD, &p->monitor_fd, &fd_len) != 0)
		goto fail_close_monitor;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(p - t->peers)};
	if (epoll_ctl(t->mon_epoll, EPOLL_CTL_ADD, p->monitor_fd, &ev) != 0)
		goto fail_close_monitor;
	read_monitor(t, p); /* from now on its fd signals every event */
	if (zmq_connect(p->dealer, p->cfg.endpoint) != 0)
		goto fail_unwatch_monitor;
	return 0;

fail_unwatch_monitor:
	rc = errno;
	epoll_ctl(t->mon_epoll, EPOLL_CTL_DEL, p->monitor_fd, NULL);
	errno = rc;
fail_close_monitor:
	rc = errno;
	zmq_close(p->monitor);
	p->monitor = NULL;
	errno = rc;
fail_stop_monitor:
	rc = errno;
	zmq_socket_monitor(p->dealer, NULL, 0);
	errno = rc;
fail_close_dealer:
	rc = errno;
	zmq_close(p->dealer);
	p->dealer = NULL;
	errno = rc;
fail:
	rc = errno ? errno : EINVAL;
	snprintf(err, err_len, "peer n%llu at %s: %s", (unsigned long long)p->cfg.id,
		 p->cfg.endpoint, zmq_strerror(rc));
	return -rc;
}

void tp__peer_close(struct tp *t, struct tp_peer *p)
{
	close_sockets(t, p);
	p->in_use = false;
}

int tp_add_peer(struct tp *t, const struct tp_peer_config *pc)
{
	if (pc->id == 0 || pc->id == t->cfg.node_id ||
	    strnlen(pc->endpoint, TP_ENDPOINT_MAX) == TP_ENDPOINT_MAX || !pc->endpoint[0])
		return -EINVAL;
	if (tp__peer_find(t, pc->id))
		return -EEXIST;
	struct tp_peer *p = NULL;
	for (size_t i = 0; i < TP_MAX_PEERS && !p; i++)
		if (!t->peers[i].in_use)
			p = &t->peers[i];
	if (!p)
		return -ENOSPC;
	memset(p, 0, sizeof(*p));
	p->cfg = *pc;
	char err[512];
	int rc = tp__peer_open(t, p, err, sizeof(err));
	if (rc) {
		tp__log(t, TP_LOG_ERR, "transport: %s", err);
		return rc;
	}
	p->in_use = true;
	return 0;
}

void tp_redial_refused(struct tp *t)
{
	for (size_t i = 0; i < TP_MAX_PEERS; i++)
		if (t->peers[i].in_use && t->peers[i].redial_at_ms)
			t->peers[i].redial_at_ms = tp_now_ms();
}

int tp_remove_peer(struct tp *t, uint64_t id)
{
	struct tp_peer *p = tp__peer_find(t, id);
	if (!p)
		return -ENOENT;
	tp__peer_close(t, p);
	return 0;
}

int tp_set_fault(struct tp *t, uint64_t peer, bool drop_out, bool drop_in)
{
	bool found = false;
	for (size_t i = 0; i < TP_MAX_PEERS; i++) {
		struct tp_peer *p = &t->peers[i];
		if (!p->in_use || (peer && p->cfg.id != peer))
			continue;
		p->drop_out = drop_out;
		p->drop_in = drop_in;
		found = true;
	}
	if (!found && peer)
		return -ENOENT;
	char who[32];
	if (peer)
		snprintf(who, sizeof(who), "n%llu", (unsigned long long)peer);
	else
		snprintf(who, sizeof(who), "every peer");
	tp__log(t, TP_LOG_NOTICE, "transport: fault switch for %s: %s, %s", who,
		drop_out ? "dropping outgoing" : "outgoing passes",
		drop_in ? "dropping incoming" : "incoming passes");
	return 0;
}

int tp_peer_stats(const struct tp *t, uint64_t peer, struct tp_peer_stats *st)
{
	for (size_t i = 0; i < TP_MAX_PEERS; i++) {
		if (t->peers[i].in_use && t->peers[i].cfg.id == peer) {
			*st = t->peers[i].st;
			return 0;
		}
	}
	return -ENOENT;
}
