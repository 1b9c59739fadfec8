/*
 * The ZAP handler (ZeroMQ RFC 27): libzmq asks it, over
 * inproc://zeromq.zap.01 in this node's context, whether a CURVE client key
 * may connect to our ROUTER. It admits exactly the public keys of configured
 * peers and names each admitted connection with the peer's id as ZAP user
 * id, which tp_recv later compares with the routing id the frame arrived
 * under. Everything else gets status 400 and a rate-limited log line naming
 * the key and the address.
 *
 * The allow-list is the peer list and nothing else: tp_remove_peer takes a
 * key off it (the replica does so for a node it removed, once that node
 * knows it or after a grace), and from then on every handshake with that
 * key is refused. A link the key opened before stays up at the socket
 * level (libzmq cannot close one connection of a ROUTER), but tp_recv
 * drops every frame on it, since its routing id is no peer's.
 *
 * Refused keys are remembered for tp_key_refused_since ("the node being
 * added is running and dialling us"), by source address: one source keeps
 * at most TP__REFUSED_PER_SOURCE keys (its own oldest make room), and when
 * the table is full the source holding the most entries loses its oldest.
 * Anyone who reaches the port may send any number of random keys, but from
 * one address (or a few) it only churns its own entries and never evicts
 * the key a real node tried from its own address. Only an attacker with as
 * many addresses as the table has entries can still push it out.
 *
 * It runs on the owner thread: its REP socket is one of tp_poll_items and
 * tp_service answers pending requests. A handshake waits for that answer, so
 * a node that stops polling accepts no new links (its existing ones carry on).
 */
#include "tp_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ZAP__MAX_PARTS 8 /* version, id, domain, address, routing id, mechanism, key */

int tp__zap_open(struct tp *t, char *err, size_t err_len)
{
	t->zap = zmq_socket(t->ctx, ZMQ_REP);
	if (!t->zap || tp__setopt_int(t->zap, ZMQ_LINGER, 0) ||
	    zmq_bind(t->zap, "inproc://zeromq.zap.01") != 0) {
		snprintf(err, err_len, "ZAP handler: %s", zmq_strerror(errno));
		if (t->zap)
			zmq_close(t->zap);
		t->zap = NULL;
		return -EINVAL;
	}
	size_t len = sizeof(t->zap_fd);
	if (zmq_getsockopt(t->zap, ZMQ_FD, &t->zap_fd, &len) != 0) {
		snprintf(err, err_len, "ZAP handler: %s", zmq_strerror(errno));
		return -EINVAL; /* tp_destroy closes the socket */
	}
	return 0;
}

static bool part_is(zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);
	return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

static void send_part(void *s, const void *data, size_t len, bool more)
{
	/* A REP socket after a request never blocks on send; failure leaves the handshake pending, which libzmq times out. */
	zmq_send(s, data, len, more ? ZMQ_SNDMORE : 0);
}

/* Copies a part into a NUL-terminated printable string for log lines. */
static void part_text(zmq_msg_t *m, char *out, size_t cap)
{
	size_t n = zmq_msg_size(m);
	if (n >= cap)
		n = cap - 1;
	const char *d = zmq_msg_data(m);
	for (size_t i = 0; i < n; i++)
		out[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? d[i] : '?';
	out[n] = '\0';
}

static unsigned entries_from(const struct tp *t, const char *source, int *oldest)
{
	unsigned count = 0;
	*oldest = -1;
	for (int i = 0; i < TP__REFUSED_KEYS; i++) {
		if (!t->refused[i].ms || strcmp(t->refused[i].source, source) != 0)
			continue;
		count++;
		if (*oldest < 0 || t->refused[i].ms < t->refused[*oldest].ms)
			*oldest = i;
	}
	return count;
}

/* The slot a key refused from source goes into (see the top of the file). */
static int refused_slot(const struct tp *t, const uint8_t *key, const char *source)
{
	int oldest;
	for (int i = 0; i < TP__REFUSED_KEYS; i++)
		if (t->refused[i].ms && !memcmp(t->refused[i].key, key, TP_KEY_LEN) &&
		    strcmp(t->refused[i].source, source) == 0)
			return i; /* seen again: refreshed */
	if (entries_from(t, source, &oldest) >= TP__REFUSED_PER_SOURCE)
		return oldest;
	for (int i = 0; i < TP__REFUSED_KEYS; i++)
		if (!t->refused[i].ms)
			return i;
	/* Full: the oldest entry of the source with the most, the older on a tie. */
	int victim = -1;
	unsigned most = 0;
	for (int i = 0; i < TP__REFUSED_KEYS; i++) {
		unsigned count = entries_from(t, t->refused[i].source, &oldest);
		if (count > most ||
		    (count == most && t->refused[oldest].ms < t->refused[victim].ms)) {
			most = count;
			victim = oldest;
		}
	}
	return victim;
}

static void remember_refused(struct tp *t, const uint8_t *key, const char *source)
{
	int slot = refused_slot(t, key, source);
	memcpy(t->refused[slot].key, key, TP_KEY_LEN);
	snprintf(t->refused[slot].source, sizeof(t->refused[slot].source), "%s", source);
	uint64_t now = tp_now_ms();
	t->refused[slot].ms = now ? now : 1; /* 0 marks a free slot */
}

static void answer(struct tp *t, zmq_msg_t *parts, int n)
{
	const char *status = "400", *text = "malformed request";
	const char *user = "";
	struct tp_peer *p = NULL;
	char key_z85[TP_KEY_Z85_LEN + 1] = "-";
	char addr[64] = "?";

	if (n >= 7 && part_is(&parts[0], "1.0") && part_is(&parts[5], "CURVE") &&
	    zmq_msg_size(&parts[6]) == TP_KEY_LEN) {
		part_text(&parts[3], addr, sizeof(addr));
		tp_key_to_z85(zmq_msg_data(&parts[6]), key_z85);
		p = tp__peer_by_key(t, zmq_msg_data(&parts[6]));
		if (p) {
			status = "200";
			text = "OK";
			user = p->user_id;
		} else {
			text = "public key not in the peer list";
		}
	}
	if (p) {
		t->st.zap_accepted++;
	} else {
		t->st.zap_refused++;
		if (n >= 7 && zmq_msg_size(&parts[6]) == TP_KEY_LEN) {
			char source[TP__SOURCE_LEN];
			part_text(&parts[3], source, sizeof(source));
			remember_refused(t, zmq_msg_data(&parts[6]), source);
		}
		tp__log_limited(t, &t->rl_zap, TP_LOG_WARNING,
				"transport: refused connection from %s with CURVE key %s: %s", addr,
				key_z85, text);
	}

	/* Reply: version, request id, status code, status text, user id, metadata. */
	send_part(t->zap, "1.0", 3, true);
	if (n >= 2)
		send_part(t->zap, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), true);
	else
		send_part(t->zap, "", 0, true);
	send_part(t->zap, status, 3, true);
	send_part(t->zap, text, strlen(text), true);
	send_part(t->zap, user, strlen(user), true);
	send_part(t->zap, "", 0, false);
}

bool tp_key_refused_since(const struct tp *t, const uint8_t *key, uint64_t since_ms)
{
	for (unsigned i = 0; i < TP__REFUSED_KEYS; i++)
		if (t->refused[i].ms && t->refused[i].ms >= since_ms &&
		    !memcmp(t->refused[i].key, key, TP_KEY_LEN))
			return true;
	return false;
}

void tp__zap_serve(struct tp *t)
{
	if (!t->zap)
		return;
	for (;;) {
		zmq_msg_t parts[ZAP__MAX_PARTS];
		int n = 0;
		bool more = true;
		while (more) {
			zmq_msg_t m;
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, t->zap, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&m);
				if (n == 0)
					return;
				/* A request arrives whole: a missing part cannot happen. */
				break;
			}
			more = zmq_msg_more(&m);
			if (n < ZAP__MAX_PARTS)
				parts[n++] = m; /* ownership moves into parts */
			else
				zmq_msg_close(&m);
		}
		answer(t, parts, n);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&parts[i]);
	}
}
