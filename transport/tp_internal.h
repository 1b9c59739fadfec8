/*
 * Private state of the transport, shared by transport.c (lifecycle, send,
 * receive), peer.c (peer slots, DEALERs, link events) and zap.c (the ZAP
 * handler). Nothing outside transport/ includes this.
 */
#ifndef OMNIFS_TP_INTERNAL_H
#define OMNIFS_TP_INTERNAL_H

#include "transport.h"

#define TP__REFUSED_KEYS       64  /* refused keys remembered in all (tp_key_refused_since) */
#define TP__REFUSED_PER_SOURCE 4   /* of them from one source address */
#define TP__SOURCE_LEN	       48  /* a source address as ZAP gives it, NUL-ended */
#define TP__EVENT_CAP	       256 /* queued link events */
#define TP__RID_LEN	       9   /* routing id: 'N' + node id, u64 little-endian */
#define TP__ZAP_DOMAIN	       "omnifs"
#define TP__USER_ID_LEN	       24 /* decimal node id as the ZAP user id */
#define TP__RATELIMIT_MS       5000

/* At most one line per TP__RATELIMIT_MS (tp_log.c). */
struct tp__ratelimit {
	uint64_t last_ms;    /* when the last line went out */
	uint64_t suppressed; /* lines dropped since */
	bool primed;	     /* false until the first line */
};

struct tp_peer {
	bool in_use;
	struct tp_peer_config cfg;
	char user_id[TP__USER_ID_LEN]; /* what ZAP answers for its key */
	void *dealer;		       /* our sending socket towards it */
	void *monitor;		       /* PAIR receiving the DEALER's socket events */
	int monitor_fd;		       /* its ZMQ_FD, in the tp's mon_epoll */
	bool up;		       /* last reported state */
	uint64_t alive_ms;	       /* last frame heard or link up, for silence_ms */
	bool drop_out, drop_in;	       /* fault switch */
	uint64_t redial_at_ms;	       /* after a refused handshake: dial again then (0: no) */
	uint32_t redial_ms;	       /* the back-off of those redials */
	struct tp_peer_stats st;
};

struct tp {
	struct tp_config cfg;
	void *ctx;
	void *router;
	void *zap; /* REP on inproc://zeromq.zap.01; NULL when plaintext */
	char endpoint[TP_ENDPOINT_MAX];
	struct tp_peer peers[TP_MAX_PEERS];
	unsigned monitor_seq; /* makes monitor endpoints unique */
	/* An epoll set of every monitor's ZMQ_FD (peer.c says why): one fd to
	 * poll however many peers, and the monitors with news without a look
	 * at every one. */
	int mon_epoll;
	/* For tp_wait: the ROUTER's and the ZAP handler's ZMQ_FD (-1: none);
	 * once the owner waits through tp_wait, the housekeeping of tp_recv
	 * and tp_next_event runs only when due (tp_wait saw the ZAP handler
	 * or a monitor ready, or TP__SERVICE_MS passed), not on every call. */
	int router_fd, zap_fd;
	bool waits, service_due, recv_more;
	uint64_t next_service_ms;

	zmq_msg_t rid, body; /* the frame tp_recv last returned borrows body */
	struct tp_scratch scratch;

	struct tp_event events[TP__EVENT_CAP];
	unsigned ev_head, ev_len;

	struct tp_stats st;
	struct tp__ratelimit rl_frame, rl_zap, rl_link;
	/* Keys refused by ZAP, by source address (zap.c says how they are
	 * kept); ms 0 marks a free slot. */
	struct {
		uint8_t key[TP_KEY_LEN];
		char source[TP__SOURCE_LEN];
		uint64_t ms;
	} refused[TP__REFUSED_KEYS];
};

/* tp_log.c: a line to the config's log callback (none: dropped), printf-style;
 * the limited form passes rl's rate limit first and notes what it dropped. */
void tp__log(struct tp *t, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tp__log_limited(struct tp *t, struct tp__ratelimit *rl, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* peer.c */
struct tp_peer *tp__peer_find(struct tp *t, uint64_t id);
struct tp_peer *tp__peer_by_key(struct tp *t, const uint8_t *key);
int tp__peer_open(struct tp *t, struct tp_peer *p, char *err, size_t err_len);
void tp__peer_close(struct tp *t, struct tp_peer *p);
void tp__peer_set_up(struct tp *t, struct tp_peer *p, bool up, const char *why);
void tp__peers_service(struct tp *t, uint64_t now_ms);
void tp__rid_encode(uint64_t id, uint8_t *rid);
uint64_t tp__rid_decode(const uint8_t *rid, size_t len);
int tp__setopt_int(void *s, int opt, int v);

/* transport.c: tp_service, unless the owner waits through tp_wait and it is not due. */
void tp__service_if_due(struct tp *t);

/* zap.c */
int tp__zap_open(struct tp *t, char *err, size_t err_len);
void tp__zap_serve(struct tp *t);

#endif /* OMNIFS_TP_INTERNAL_H */
