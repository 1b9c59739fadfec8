/*
 * The ZeroMQ peer mesh between omnifs nodes (zguide's Harmony pattern).
 *
 * Each node binds one ROUTER for everything it receives and keeps one DEALER
 * per peer for what it sends, with the DEALER's routing id set to our node id
 * before it connects; the receiving ROUTER therefore knows who sent a frame
 * without trusting the frame. ROUTER_HANDOVER lets a restarted peer's new
 * connection replace its old one at once. Sends never block: a full per-peer
 * queue drops the frame and counts it (OmniPaxos resends on its own tick).
 *
 * Security: unless the config says plaintext, every link uses CURVE. The
 * ROUTER is a CURVE server that accepts only the public keys of configured
 * peers, through a ZAP handler served on this same thread; each DEALER
 * authenticates the peer's ROUTER by its public key. A frame is delivered only
 * if its header's cluster id is ours, its sender equals the routing id, and
 * (CURVE) the routing id belongs to the key that authenticated the link.
 *
 * Threads: a struct tp and all its sockets belong to one thread (the replica
 * thread). It waits for them together with one fd of its own through
 * tp_wait() (or zmq_polls tp_poll_items() with its own items).
 * Each tp has its own ZeroMQ context, so one process can host many nodes
 * (tests do) and each node's ZAP handler sees only its own handshakes.
 *
 * Not here: message semantics (the consensus core), retries (OmniPaxos
 * resends), the config file and the daemon's logger: tp_config is plain data
 * with an optional log callback (the replica fills it from struct cfg,
 * fs/replica/tp_config.h).
 *
 * Layer: transport/. It uses consensus/'s message types (the codec encodes
 * them) and libzmq; it includes nothing from fs/. The replica drives it.
 */
#ifndef OMNIFS_TRANSPORT_H
#define OMNIFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "codec.h"
#include "keyfile.h"

#define TP_MAX_PEERS	64  /* = OPX_MAX_NODES */
#define TP_ENDPOINT_MAX 280 /* "tcp://" + host:port + NUL */
#define TP_POLL_ITEMS	3   /* poll items: ROUTER, ZAP, the link monitors' epoll fd */

struct tp_peer_config {
	uint64_t id;			/* >= 1, not our own id */
	char endpoint[TP_ENDPOINT_MAX]; /* where its ROUTER listens, "tcp://host:port" */
	uint8_t public_key[TP_KEY_LEN]; /* its CURVE public key; ignored when plaintext */
};

/*
 * Everything the transport needs, as plain data. Zero tuning fields take the
 * defaults in brackets.
 */
/*
 * Where the transport's log lines go: an optional callback with a syslog(3)
 * priority and one finished line (borrowed for the call). Called on the
 * thread that called into the transport. Without one the transport is silent
 * and reports through return values and tp_stats only.
 */
enum tp_log_level {
	TP_LOG_ERR = 3,
	TP_LOG_WARNING = 4,
	TP_LOG_NOTICE = 5,
	TP_LOG_INFO = 6,
};
typedef void (*tp_log_fn)(void *ctx, int level, const char *line);

struct tp_config {
	uint64_t node_id;
	uint64_t cluster_id;
	char listen[TP_ENDPOINT_MAX]; /* "tcp://host:port"; port "*" picks a free one */
	bool plaintext;		      /* no CURVE at all: only if the config asks */
	uint8_t public_key[TP_KEY_LEN];
	uint8_t secret_key[TP_KEY_LEN];
	size_t n_peers; /* peers to mesh with now; tp_add_peer adds more later */
	struct tp_peer_config peers[TP_MAX_PEERS];

	int sndhwm;		  /* frames queued per peer before drops [1000] */
	int rcvhwm;		  /* frames queued on the ROUTER [10000] */
	int reconnect_ivl_ms;	  /* first reconnect attempt [100] */
	int reconnect_ivl_max_ms; /* reconnect back-off cap [5000] */
	int heartbeat_ivl_ms;	  /* ZMTP heartbeat period [1000] */
	int heartbeat_timeout_ms; /* link declared dead after this silence [5000] */
	uint32_t silence_ms;	  /* peer unheard this long is reported down [0: never] */
	size_t max_frame_len;	  /* larger incoming frames drop the link [512 MiB] */

	tp_log_fn log; /* optional, see above */
	void *log_ctx;
};

struct tp;

/*
 * Creates the node: context, ZAP handler, ROUTER bound to cfg->listen, one
 * DEALER per configured peer. cfg is copied (the secret key is wiped from the
 * copy on destroy). Returns NULL with one line in err on failure. Logs a
 * warning when plaintext.
 */
struct tp *tp_new(const struct tp_config *cfg, char *err, size_t err_len);

/* Closes every socket (linger 0: queued frames are dropped), the context, frees *t; NULLs it. */
void tp_destroy(struct tp **t);

/* The endpoint the ROUTER is bound to, port resolved ("tcp://127.0.0.1:40123"). Owned by t. */
const char *tp_endpoint(const struct tp *t);

/*
 * Adds a peer (copied) and connects to it (in the background: an absent peer
 * is not an error). -EEXIST, -EINVAL (own id, bad endpoint), -ENOSPC, or the
 * -errno of the failing ZeroMQ call.
 */
int tp_add_peer(struct tp *t, const struct tp_peer_config *p);

/* Disconnects and forgets a peer; its frames are then refused. -ENOENT if unknown. */
int tp_remove_peer(struct tp *t, uint64_t id);

/*
 * Dials at once, instead of after their back-off, the peers that refused our
 * key: for when they may know it now (we joined their configuration).
 */
void tp_redial_refused(struct tp *t);

/*
 * Fills items with what to poll: the ROUTER, the ZAP handler (unless
 * plaintext) and one fd that is readable when a peer's link has news (an
 * epoll set of the link monitors, so the count does not grow with the
 * peers, nor does the cost of a poll). Returns how many (at most
 * TP_POLL_ITEMS). The caller appends its own items, zmq_polls, then calls
 * tp_recv until -EAGAIN and tp_next_event until -EAGAIN. The items stay
 * valid for t's lifetime, peers added and removed included.
 */
int tp_poll_items(struct tp *t, zmq_pollitem_t items[TP_POLL_ITEMS]);

/* Convenience for tools and tests: zmq_poll on t's items alone. >0 ready, 0 timeout, <0 error. */
int tp_poll(struct tp *t, long timeout_ms);

/*
 * What tp_poll_items and zmq_poll do, for an owner that receives until
 * tp_recv says -EAGAIN before each wait: waits at most timeout_ms (<0: no
 * limit) until a frame, a handshake or a link event may be waiting, or fd
 * (-1: none) is readable (*fd_ready, if not NULL). One poll(2): zmq_poll
 * asks every socket for its ZMQ_EVENTS before and after it sleeps, a
 * syscall each. Once an owner waits here, tp_recv and tp_next_event do
 * their housekeeping (tp_service) only when it is due: after this found
 * the ZAP handler or a link monitor ready, and every 10 ms. >0 ready,
 * 0 timeout, <0 -errno.
 */
int tp_wait(struct tp *t, int fd, long timeout_ms, bool *fd_ready);

/*
 * Housekeeping without receiving: answers ZAP requests, reads link events,
 * reports peers silent for silence_ms. tp_recv and tp_next_event do this when
 * they find nothing (only when due once the owner waits through tp_wait).
 */
void tp_service(struct tp *t);

/*
 * Sends m (borrowed; copied into the frame) to m->to. The header's sender is
 * always our node id. Never blocks. 0: queued (or dropped by the fault
 * switch, as the network would); -EAGAIN: the peer's queue is full and the
 * frame was dropped (counted); -ENOENT: no such peer; -EINVAL: m cannot be
 * encoded; -EMSGSIZE: frame over max_frame_len; -ENOMEM.
 */
int tp_send_msg(struct tp *t, const struct opx_msg *m);

/* As tp_send_msg for an application frame; data borrowed (copied). */
int tp_send_app(struct tp *t, uint64_t to, uint32_t config_id, uint16_t app_type, const void *data,
		size_t len);

/*
 * Receives the next valid frame, never blocking. 0 with *out filled; -EAGAIN
 * when nothing is waiting. Frames that fail any check are dropped, counted
 * and logged (rate-limited) and never returned. *out borrows memory owned by
 * t: valid until the next tp_recv or tp_destroy.
 */
int tp_recv(struct tp *t, struct tp_frame *out);

enum tp_event_type {
	TP_EVENT_UP = 1,   /* link to the peer (re)established or first frame after silence */
	TP_EVENT_DOWN = 2, /* connection lost or peer silent for silence_ms */
};

struct tp_event {
	enum tp_event_type type;
	uint64_t peer;
};

/*
 * The next link event, 0 or -EAGAIN. On TP_EVENT_UP the replica calls
 * opx_reconnected(peer). Events alternate per peer (up, down, up, ...).
 */
int tp_next_event(struct tp *t, struct tp_event *ev);

/*
 * Fault injection: drop everything sent to (drop_out) and/or received from
 * (drop_in) peer; peer 0 means every peer. Dropped frames are counted, not
 * reported as errors. -ENOENT if peer is unknown.
 */
int tp_set_fault(struct tp *t, uint64_t peer, bool drop_out, bool drop_in);

struct tp_peer_stats {
	uint64_t tx_frames, tx_bytes; /* handed to ZeroMQ */
	uint64_t rx_frames, rx_bytes; /* delivered by tp_recv */
	uint64_t dropped_full;	      /* send queue full */
	uint64_t fault_out, fault_in; /* dropped by tp_set_fault */
	uint64_t malformed;	      /* frames from this peer that failed a check */
	uint64_t last_heard_ms;	      /* CLOCK_MONOTONIC ms of the last frame, 0: never */
	uint64_t downs;		      /* times the link went down (a TP_EVENT_DOWN) */
	bool up;		      /* as last reported by an event */
};

/* Counters of one peer. -ENOENT if unknown. */
int tp_peer_stats(const struct tp *t, uint64_t peer, struct tp_peer_stats *st);

/* Counters of frames not attributable to a configured peer. */
struct tp_stats {
	uint64_t unknown_sender; /* routing id of no configured peer */
	uint64_t spoofed;	 /* header sender or key owner disagrees with the routing id */
	uint64_t wrong_cluster;	 /* another cluster's frames */
	uint64_t zap_refused;	 /* handshakes refused (unknown public key) */
	uint64_t zap_accepted;
	uint64_t events_lost; /* event queue overflow */
};

void tp_stats(const struct tp *t, struct tp_stats *st);

/* True if a connection with this CURVE public key was refused (not a peer's
 * key) at or after since_ms: the node holding it is running and reaching us. */
bool tp_key_refused_since(const struct tp *t, const uint8_t *key, uint64_t since_ms);

/* CLOCK_MONOTONIC in milliseconds, the clock of last_heard_ms and silence_ms. */
uint64_t tp_now_ms(void);

#endif /* OMNIFS_TRANSPORT_H */
