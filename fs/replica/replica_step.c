/*
 * Keeping in step with the leader when the link to it is down, beside the
 * consensus core rather than inside it.
 *
 * Sequence Paxos hands decided entries and proposals over the link between
 * leader and follower only. A node cut from the leader alone (one firewall
 * rule, one bad switch port) but connected to others that reach it would get
 * neither: its reads go stale without bound and its writes time out, while
 * BLE keeps the leader stable (no node takes over, see the chained scenario
 * in the OmniPaxos paper). Three small mechanisms here close that gap without
 * touching the core. Why beside it: the core's log holds what this node
 * accepted under a ballot, and its sync rules (promises, AcceptSync, the
 * decided index) are what make OmniPaxos safe; entries taken from a peer that
 * is not the leader would have no ballot to be accepted under. They go to the
 * KV alone, which needs nothing but the decided order, and the log catches up
 * by the protocol when the leader link returns.
 *
 *   STEP    every member tells every other, every STEP__EVERY_MS: its
 *           decided, compacted and applied index (global), its leader,
 *           whether it leads (a quorum of members linked to it name it their
 *           leader) or is linked to such a leader, and which peers it heard
 *           lately. A link counts when both ends hear each other (so one-way
 *           cuts count as cuts).
 *   FETCH   a node whose core has nothing more to apply while a peer reports
 *           more decided asks that peer for decided entries and applies them
 *           to the KV itself. Decided entries of one configuration never
 *           change, so any member may serve them from its log; apply is by
 *           index, so an entry the core later decides again (when the leader
 *           link returns and the log catches up) is not applied twice:
 *           replica_apply_decided starts from the applied index. A peer that
 *           compacted them away answers so, and the node falls back to the
 *           state transfer (replica_xfer.c). The KV's applied index may so
 *           run ahead of the log's decided index, also across a restart
 *           (replica_core_open and apply only look for it trailing).
 *   RELAY   a node that reaches the leader only through a peer sends its
 *           proposals (and barriers: empty proposals) to that peer, which
 *           appends them to its own core (forwarded to the leader, or
 *           appended if it is the leader). A leader left by its majority
 *           for a higher ballot it never heard of (it is cut from the new
 *           leader alone) does the same: its own core would decide nothing. In-flight proposals are relayed
 *           again while unanswered; every copy carries the same proposal id,
 *           so the KV's dedup table applies each at most once, however many
 *           copies (direct, relayed, re-appended) reach the log.
 *
 * From what STEP says it also works out how this node reaches the leader
 * (direct, via a peer, none), how far it lags the highest decided index it
 * heard of and since when it may be stale: the status shows them, and
 * "quorum" there means a write made here can be decided now.
 *
 * One hop only: a relay never relays, and entries are fetched from a peer
 * this node hears itself. Every single-link cut, and the paper's quorum-loss,
 * constrained and chained scenarios, need no more. Stop-signs are never
 * fetched (a node behind a configuration change learns it from MEMBERS).
 * The frames' layout and checked decoding are in step_codec.c.
 *
 * Learners (replica_learn.c) use FETCH and RELAY alone: they have no core,
 * send and get no STEP, and fetch all the time. For them a fetch that
 * reaches the end of a configuration also carries the stop-sign's table
 * (a learner has no log to find it in), and a request with nothing to send
 * yet is held until there is (replica_learn_park). STEP goes to voters
 * only, and routes and quorums here count voters only.
 */
#include "replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "kv.h"
#include "log.h"
#include "step_codec.h"

/* How often a member says where it is. */
#define STEP__EVERY_MS 50
/* A peer unheard this long is not counted as reached. */
#define STEP__FRESH_MS(r) (4ull * STEP__EVERY_MS + (r)->cfg.election_timeout_ms)
/* A peer reporting more decided than the core gives: wait this long with
 * nothing applied before fetching (a follower's Decide may trail a peer's
 * STEP). */
#define STEP__FETCH_GRACE_MS 30
/* One fetch answer holds at most this many bytes of entries. */
#define STEP__FETCH_BYTES   (256u * 1024)
#define STEP__FETCH_ENTRIES 4096
/* The first window of entries read from the log for an answer. */
#define STEP__FETCH_WINDOW 16
/* One relay frame holds at most this many bytes of entries. */
#define STEP__RELAY_BYTES (1024u * 1024)

static struct replica_step_peer *peer_slot(struct replica *r, opx_node_id id, bool add)
{
	struct replica_step_peer *free_slot = NULL;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_step_peer *p = &r->step.peers[i];
		if (p->id == id)
			return p;
		if (!p->id && !free_slot)
			free_slot = p;
	}
	if (!add || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->id = id;
	return free_slot;
}

static bool fresh(struct replica *r, const struct replica_step_peer *p, uint64_t now)
{
	return p && p->heard_ms && now - p->heard_ms <= STEP__FRESH_MS(r);
}

/* Both ends hear each other. */
static bool linked(struct replica *r, const struct replica_step_peer *p, uint64_t now)
{
	return fresh(r, p, now) && p->hears_me;
}

/* A new configuration: what peers said of the old one no longer holds. */
static void sync_config(struct replica *r)
{
	if (r->step.config_id == r->members.config_id)
		return;
	memset(r->step.peers, 0, sizeof(r->step.peers));
	r->step.config_id = r->members.config_id;
	r->step.fetch_sent_ms = 0;
	r->step.behind_since_ms = 0;
	r->step.heard_n = 0;
}

/* Voters a write needs: the configured write quorum, or a majority. */
static size_t write_quorum(const struct replica *r)
{
	return r->members.write_quorum ? r->members.write_quorum
				       : membership_voters(&r->members) / 2 + 1;
}

/*
 * This node leads and a write through it can be decided now: in the Accept
 * phase, and a quorum (itself included) of members linked to it say it is
 * their leader. Not BLE's quorum-connected: a leader that a majority left
 * for a higher ballot it never heard of (cut from the new leader alone, as
 * in the paper's chained scenario) still hears that majority and keeps
 * leading in its own eyes, but nothing it proposes is decided any more.
 */
static bool leading(struct replica *r, uint64_t now)
{
	bool accept = false;
	if (!r->px || r->mode != REPLICA_MEMBER)
		return false;
	opx_node_id self = r->cfg.node_id;
	if (opx_current_leader(r->px, &accept) != self || !accept)
		return false;
	size_t followers = 1;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		const struct replica_step_peer *p = &r->step.peers[i];
		if (p->id && linked(r, p, now) && p->leader == self &&
		    membership_is_voter(&r->members, p->id))
			followers++;
	}
	size_t quorum = write_quorum(r);
	return followers >= quorum;
}

/*
 * Whether a majority of voters is within one hop: this node hears one, or a
 * voter linked to it does (itself and the voters it heard lately). A node
 * without a route to a leader then cannot know that it is cut off: a leader
 * may be in the making there (in the paper's constrained scenario, the
 * nodes left linked to the hub alone wait through its election), so its
 * writes wait rather than fail with EROFS (replica.c, knows_no_quorum).
 */
static bool quorum_in_reach(struct replica *r, uint64_t now)
{
	size_t quorum = write_quorum(r);
	size_t own = 1;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		const struct replica_step_peer *p = &r->step.peers[i];
		if (!p->id || !linked(r, p, now) || !membership_is_voter(&r->members, p->id))
			continue;
		if (1u + p->heard_voters >= quorum)
			return true;
		own++;
	}
	return own >= quorum;
}

/* Works out the route to the leader (step.route, step.via). */
static void update_route(struct replica *r, uint64_t now)
{
	enum replica_route old = r->step.route;
	opx_node_id old_via = r->step.via;
	r->step.route = REPLICA_ROUTE_NONE;
	r->step.via = 0;
	bool accept = false;
	opx_node_id leader =
		r->px && r->mode == REPLICA_MEMBER ? opx_current_leader(r->px, &accept) : 0;
	const struct replica_step_peer *l =
		leader && leader != r->cfg.node_id ? peer_slot(r, leader, false) : NULL;
	if (leader == r->cfg.node_id && leading(r, now)) {
		r->step.route = REPLICA_ROUTE_DIRECT;
	} else if (l && linked(r, l, now) && (l->flags & STEP_LEADING)) {
		r->step.route = REPLICA_ROUTE_DIRECT;
	} else if (leader) {
		/* Through a peer linked to a leader with a quorum: ours first,
		 * any other next (it may know of a newer leader than we do; we
		 * may even be a leader that was left without hearing it). */
		const struct replica_step_peer *best = NULL;
		for (size_t i = 0; i < OPX_MAX_NODES; i++) {
			const struct replica_step_peer *p = &r->step.peers[i];
			if (!p->id || !linked(r, p, now) ||
			    !(p->flags & (STEP_LEADER_DIRECT | STEP_LEADING)))
				continue;
			if (!best || (p->leader == leader && best->leader != leader))
				best = p;
		}
		if (best) {
			r->step.route = REPLICA_ROUTE_VIA;
			r->step.via = best->id;
		}
	}
	atomic_store(&r->has_route, r->step.route != REPLICA_ROUTE_NONE);
	atomic_store(&r->quorum_in_reach, quorum_in_reach(r, now));
	if (r->step.route != old || r->step.via != old_via) {
		r->step.route_changed_ms = now;
		if (r->step.route == REPLICA_ROUTE_VIA)
			log_kv(LOG_LEVEL_NOTICE, leader, LOG_NO_INDEX,
			       "replica: the leader n%llu is reached through n%llu",
			       (unsigned long long)leader, (unsigned long long)r->step.via);
		else if (r->step.route == REPLICA_ROUTE_DIRECT && old != REPLICA_ROUTE_NONE)
			log_kv(LOG_LEVEL_NOTICE, leader, LOG_NO_INDEX,
			       "replica: the leader n%llu is reached directly again",
			       (unsigned long long)leader);
		else if (r->step.route == REPLICA_ROUTE_NONE && old != REPLICA_ROUTE_NONE)
			log_notice("replica: no route to a leader with a quorum: writes here "
				   "wait or fail, reads may go stale");
	}
}

/* The highest decided index this node knows of (global). */
static uint64_t known_decided(struct replica *r, uint64_t now)
{
	uint64_t d = r->px ? r->members.base + opx_decided_idx(r->px) : r->members.base;
	if (r->mode == REPLICA_LEARNER && r->learn.decided > d)
		d = r->learn.decided;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		const struct replica_step_peer *p = &r->step.peers[i];
		if (p->id && fresh(r, p, now) && p->decided > d)
			d = p->decided;
	}
	return d;
}

static void send_step(struct replica *r, uint64_t now)
{
	struct step_report rep = {0};
	uint8_t buf[STEP_REPORT_MAX];
	bool accept = false;
	uint64_t base = r->members.base;
	rep.decided = base + opx_decided_idx(r->px);
	rep.compacted = base + opx_compacted_idx(r->px);
	rep.applied = r->applied_idx;
	rep.leader = opx_current_leader(r->px, &accept);
	/* update_route worked it out this turn: a direct route to itself is
	 * leading(). */
	if (r->step.route == REPLICA_ROUTE_DIRECT)
		rep.flags |= rep.leader == r->cfg.node_id ? STEP_LEADING : STEP_LEADER_DIRECT;
	for (size_t i = 0; i < OPX_MAX_NODES && rep.n_heard < STEP_MAX_HEARD; i++)
		if (r->step.peers[i].id && fresh(r, &r->step.peers[i], now))
			rep.heard[rep.n_heard++] = r->step.peers[i].id;
	size_t len = step_report_encode(&rep, buf);
	for (size_t i = 0; i < r->members.n; i++) {
		opx_node_id to = r->members.peers[i].id;
		if (to != r->cfg.node_id && !r->members.peers[i].learner)
			tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_STEP, buf, len);
	}
	r->step.last_sent_ms = now;
}

static void on_step(struct replica *r, opx_node_id from, const uint8_t *d, uint32_t len,
		    uint64_t now)
{
	struct step_report rep;
	if (!membership_is_voter(&r->members, from) || step_report_decode(&rep, d, len) != 0)
		return;
	struct replica_step_peer *p = peer_slot(r, from, true);
	if (!p)
		return;
	p->heard_ms = now;
	p->decided = rep.decided;
	p->compacted = rep.compacted;
	p->applied = rep.applied;
	p->leader = rep.leader;
	p->flags = rep.flags;
	p->hears_me = false;
	p->heard_voters = 0;
	for (uint8_t i = 0; i < rep.n_heard; i++) {
		if (rep.heard[i] == r->cfg.node_id)
			p->hears_me = true;
		if (rep.heard[i] != from && membership_is_voter(&r->members, rep.heard[i]))
			p->heard_voters++;
	}
}

/* --- fetching decided entries ----------------------------------------------- */

static void send_fetch(struct replica *r, opx_node_id to, uint64_t now)
{
	uint8_t req[STEP_FETCH_REQ_LEN];
	put_le64(req, r->applied_idx);
	tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_FETCH_REQ, req, sizeof(req));
	r->step.fetch_sent_ms = now;
	r->step.fetch_from = to;
}

/* Fetches decided entries from a peer when the core has nothing more to
 * apply but a peer reports more decided. */
static void maybe_fetch(struct replica *r, uint64_t now)
{
	uint64_t base = r->members.base;
	if (r->xfer.active || r->applied_idx < base ||
	    base + opx_decided_idx(r->px) > r->applied_idx) {
		r->step.behind_since_ms = 0;
		return;
	}
	struct replica_step_peer *best = NULL;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_step_peer *p = &r->step.peers[i];
		if (p->id && linked(r, p, now) && p->decided > r->applied_idx &&
		    (!best || p->decided > best->decided))
			best = p;
	}
	if (!best) {
		r->step.behind_since_ms = 0;
		return;
	}
	/* Only while nothing is applied: a follower that keeps applying from
	 * its log, a little behind a busy leader's reports, needs no copies. */
	if (!r->step.behind_since_ms || r->applied_idx != r->step.behind_applied) {
		r->step.behind_since_ms = now;
		r->step.behind_applied = r->applied_idx;
	}
	if (now - r->step.behind_since_ms < STEP__FETCH_GRACE_MS)
		return;
	if (r->step.fetch_sent_ms && now - r->step.fetch_sent_ms < r->cfg.resend_timeout_ms)
		return; /* one request in flight */
	if (r->applied_idx < best->compacted) {
		replica_xfer_start(r, best->compacted, best->id);
		return;
	}
	send_fetch(r, best->id, now);
}

/*
 * Adds the decided entries from local index from_local to the answer (a->n
 * counts them), up to a stop-sign, to, or the size limit. A decided
 * stop-sign right after them goes into *ss_table (if not NULL): the
 * caller sends it to learners. The log is read
 * in windows that double from STEP__FETCH_WINDOW: a few large entries fill
 * an answer, and reading thousands of them past the limit would be thrown
 * away (and held in memory at once). 0, or a negative errno.
 */
static int add_decided(struct replica *r, uint64_t from_local, uint64_t to,
		       struct step_fetch_answer *a, struct step_buf *msg,
		       struct membership *ss_table, bool *has_ss)
{
	uint64_t window = STEP__FETCH_WINDOW;
	for (uint64_t at = from_local; at < to; window *= 2) {
		uint64_t end = to - at > window ? at + window : to;
		struct opx_read rd = {0};
		int rc = opx_read_entries(r->px, at, end, &rd);
		for (uint32_t i = 0; rc == 0 && i < rd.n; i++) {
			const struct opx_item *it = &rd.items[i];
			if (it->kind == OPX_ITEM_TRIMMED || it->kind == OPX_ITEM_SNAPSHOTTED) {
				if (it->compacted_idx <= at)
					continue;
				if (a->n == 0)
					a->status = STEP_FETCH_COMPACTED;
				break;
			}
			/* Decided entries in order, up to a stop-sign (never
			 * fetched: see the top) or the size limit. */
			if (it->kind == OPX_ITEM_STOPSIGN && it->ss_decided && ss_table &&
			    it->idx == from_local + a->n &&
			    replica_table_of_stopsign(r, it->ss, it->idx, ss_table) == 0)
				*has_ss = true;
			if (it->kind != OPX_ITEM_DECIDED || it->idx != from_local + a->n)
				break;
			if (a->n && msg->len + it->entry.len > STEP__FETCH_BYTES)
				break;
			rc = step_buf_add_entry(msg, it->entry.data, it->entry.len);
			if (rc == 0)
				a->n++;
		}
		opx_read_free(&rd);
		if (rc != 0 || from_local + a->n != end)
			return rc; /* stopped inside this window */
		at = end;
	}
	return 0;
}

bool replica_fetch_has(struct replica *r, uint64_t first)
{
	if (r->px)
		return first < r->members.base + opx_decided_idx(r->px);
	return r->mode == REPLICA_LEARNER && first < r->applied_idx;
}

/* The answer to a member of the configuration before this one that has
 * applied all of it but the stop-sign (first, right before our base): the
 * table that ended it, which this node runs now. Anyone else behind gets
 * what a consensus message of an old configuration gets
 * (replica_members_tell). */
static void serve_previous(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t first,
			   uint64_t now)
{
	uint8_t hdr[STEP_FETCH_HDR];
	struct step_buf msg = {0};
	char table[MEMBERSHIP_ENC_MAX];
	size_t table_len;
	if (first + 1 != r->members.base || r->applied_idx < r->members.base ||
	    !membership_find(&r->members, from) ||
	    membership_encode(&r->members, table, sizeof(table), &table_len) != 0) {
		replica_members_tell(r, from, now);
		return;
	}
	/* No leader: this node's ballot belongs to a configuration the
	 * learner has not entered yet. */
	struct step_fetch_answer a = {
		.status = STEP_FETCH_STOPSIGN, .first = first, .decided = first + 1};
	if (step_buf_add(&msg, hdr, sizeof(hdr)) == 0 &&
	    step_buf_add_entry(&msg, (const uint8_t *)table, (uint32_t)table_len) == 0) {
		step_fetch_hdr_encode(&a, msg.data);
		tp_send_app(r->tp, from, config_id, REPLICA_APP_FETCH_ENTRIES, msg.data, msg.len);
	}
	step_buf_free(&msg);
}

/* The leader this node follows, for a fetch answer: its core's promise, or
 * on a learner what its own source said (replica_learn.c). */
static void answer_leader(struct replica *r, struct step_fetch_answer *a)
{
	struct opx_ballot b = r->px ? opx_promise(r->px) : r->learn.leader;
	a->leader_round = b.n;
	a->leader_priority = b.priority;
	a->leader = b.pid;
}

/* Serves decided entries from the log, up to the first stop-sign (whose
 * table follows them); a learner from the entries it applied lately. */
void replica_fetch_serve(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t first,
			 bool may_park, uint64_t now)
{
	if (config_id < r->members.config_id) {
		if (config_id + 1 == r->members.config_id)
			serve_previous(r, from, config_id, first, now);
		else
			replica_members_tell(r, from, now);
		return;
	}
	if (config_id != r->members.config_id || !membership_find(&r->members, from) ||
	    (!r->px && r->mode != REPLICA_LEARNER))
		return;
	if (may_park && membership_is_learner(&r->members, from) && !replica_fetch_has(r, first)) {
		replica_learn_park(r, from, config_id, first, now);
		return;
	}
	uint64_t base = r->members.base;
	struct step_fetch_answer a = {
		.status = STEP_FETCH_OK, .first = first, .decided = r->applied_idx};
	uint8_t hdr[STEP_FETCH_HDR];
	struct step_buf msg = {0};
	struct membership *ss_table = NULL;
	bool has_ss = false;
	if (step_buf_add(&msg, hdr, sizeof(hdr)) != 0)
		return;
	if (!r->px) {
		replica_learn_add_recent(r, first, &a, &msg);
	} else {
		uint64_t decided = opx_decided_idx(r->px), compacted = opx_compacted_idx(r->px);
		a.decided = base + decided;
		a.compacted = base + compacted;
		ss_table = malloc(sizeof(*ss_table));
		if (first < base + compacted) {
			a.status = STEP_FETCH_COMPACTED;
		} else if (first < base + decided) {
			uint64_t from_local = first - base;
			uint64_t to = decided - from_local > STEP__FETCH_ENTRIES
					      ? from_local + STEP__FETCH_ENTRIES
					      : decided;
			if (add_decided(r, from_local, to, &a, &msg, ss_table, &has_ss) != 0)
				goto out_free;
		}
	}
	char table[MEMBERSHIP_ENC_MAX];
	size_t table_len;
	if (has_ss && membership_encode(ss_table, table, sizeof(table), &table_len) == 0 &&
	    step_buf_add_entry(&msg, (const uint8_t *)table, (uint32_t)table_len) == 0)
		a.status = STEP_FETCH_STOPSIGN;
	answer_leader(r, &a);
	step_fetch_hdr_encode(&a, msg.data);
	tp_send_app(r->tp, from, config_id, REPLICA_APP_FETCH_ENTRIES, msg.data, msg.len);
out_free:
	free(ss_table);
	step_buf_free(&msg);
}

static void on_fetch_req(struct replica *r, opx_node_id from, uint32_t config_id, const uint8_t *d,
			 uint32_t len, uint64_t now)
{
	if (len == STEP_FETCH_REQ_LEN)
		replica_fetch_serve(r, from, config_id, get_le64(d), true, now);
}

uint64_t replica_apply_fetched(struct replica *r, const struct step_fetch_answer *a)
{
	struct step_entries list;
	step_entries_init(&list, a->entries, a->entries_len, a->n);
	uint64_t applied_before = r->applied_idx;
	const uint8_t *entry;
	uint32_t elen;
	/* A malformed tail stops the loop; what was applied stays (each entry
	 * whole, in order). */
	for (uint64_t idx = a->first; step_entries_next(&list, &entry, &elen) == 1; idx++) {
		if (idx < r->applied_idx)
			continue;
		if (idx > r->applied_idx || idx >= a->decided)
			break;
		int rc = replica_apply_one(r, idx, entry, elen);
		if (rc != 0) {
			replica_fail(r, "applying fetched entries", rc);
			break;
		}
	}
	r->step.fetched += r->applied_idx - applied_before;
	return r->applied_idx - applied_before;
}

static void on_fetch_entries(struct replica *r, opx_node_id from, const uint8_t *d, uint32_t len,
			     uint64_t now)
{
	struct step_fetch_answer a;
	if (from != r->step.fetch_from || !r->px || step_fetch_answer_decode(&a, d, len) != 0)
		return;
	r->step.fetch_sent_ms = 0;
	if (r->xfer.active)
		return;
	if (a.status == STEP_FETCH_COMPACTED) {
		if (a.compacted > r->applied_idx)
			replica_xfer_start(r, a.compacted, from);
		return;
	}
	/* A stop-sign's table that may follow is for learners: a voter
	 * applies the stop-sign from its own log. */
	uint64_t applied = replica_apply_fetched(r, &a);
	/* More where that came from: ask again at once. */
	if (applied && !atomic_load(&r->failed) && r->applied_idx < a.decided)
		send_fetch(r, from, now);
}

/* --- relaying proposals ------------------------------------------------------- */

struct relay_batch {
	struct replica *r;
	opx_node_id to;
	struct step_buf buf; /* u32 n, then the entries */
	uint32_t n;
	int rc;
};

static void relay_flush(struct relay_batch *b)
{
	if (b->n == 0)
		return;
	put_le32(b->buf.data, b->n);
	tp_send_app(b->r->tp, b->to, b->r->members.config_id, REPLICA_APP_RELAY, b->buf.data,
		    b->buf.len);
	b->r->step.relayed += b->n;
	b->buf.len = 0;
	b->n = 0;
}

static void relay_add(struct relay_batch *b, const uint8_t *entry, size_t len)
{
	if (b->rc)
		return;
	if (b->n && b->buf.len + 4 + len > STEP__RELAY_BYTES)
		relay_flush(b);
	uint8_t count[4] = {0};
	if (b->buf.len == 0)
		b->rc = step_buf_add(&b->buf, count, 4);
	if (b->rc == 0)
		b->rc = step_buf_add_entry(&b->buf, entry, (uint32_t)len);
	if (b->rc == 0)
		b->n++;
}

static void relay_cb(void *ctx, const struct proposal *pr)
{
	relay_add(ctx, pr->entry, pr->len);
}

void replica_step_relay(struct replica *r, struct proposal *const *taken, size_t n)
{
	if (r->step.route != REPLICA_ROUTE_VIA || n == 0)
		return;
	struct relay_batch b = {.r = r, .to = r->step.via};
	for (size_t i = 0; i < n; i++)
		relay_add(&b, taken[i]->entry, taken[i]->len);
	relay_flush(&b);
	step_buf_free(&b.buf);
}

/* Everything in flight again, through the relay: after the route changed to
 * it, and every resend timeout while some are unanswered. Copies cost
 * nothing but bytes: the KV applies each proposal id once. */
static void relay_in_flight(struct replica *r, uint64_t now)
{
	if (r->step.route != REPLICA_ROUTE_VIA || !proposals_in_flight(&r->props))
		return;
	if (r->step.relay_all_ms >= r->step.route_changed_ms &&
	    now - r->step.relay_all_ms < r->cfg.resend_timeout_ms)
		return;
	r->step.relay_all_ms = now;
	struct relay_batch b = {.r = r, .to = r->step.via};
	proposals_for_each_in_flight(&r->props, relay_cb, &b);
	relay_flush(&b);
	step_buf_free(&b.buf);
}

/* Appends a peer's relayed proposals to this node's core. Only its own
 * proposals (its node id in the proposal id): a relay adds reach, not
 * authority. */
static void on_relay(struct replica *r, opx_node_id from, const uint8_t *d, uint32_t len)
{
	struct step_entries list;
	if (!r->px || r->mode != REPLICA_MEMBER || !membership_find(&r->members, from) ||
	    step_relay_decode(&list, d, len) != 0)
		return;
	const uint8_t *entry;
	uint32_t elen;
	while (step_entries_next(&list, &entry, &elen) == 1) {
		struct kv_txn t;
		int rc = kv_txn_decode(&t, entry, elen);
		bool theirs = rc == 0 && t.node_id == from;
		if (rc == 0)
			kv_txn_free(&t);
		if (!theirs)
			continue;
		rc = opx_append(r->px, entry, elen);
		if (rc == -EIO) {
			replica_fail(r, "appending a relayed proposal", rc);
			return;
		}
	}
}

/*
 * The lag in time: a node is in step until it hears of a decided index it
 * has not applied, so it has been out of step since the first such index
 * was heard of (not since it last applied everything: under a steady load
 * a node a few milliseconds behind never quite gets there). Without a route
 * to the leader it knows of nothing new and may be stale since it lost it.
 */
static void track_lag(struct replica *r, uint64_t now)
{
	struct replica_step *s = &r->step;
	uint64_t known = known_decided(r, now);
	if (known > s->known_decided) {
		if (s->heard_n == REPLICA_STEP_HEARD) {
			/* Full: the newest sample takes the new index, keeping
			 * its earlier time (the lag may read a little high). */
			s->heard[(s->heard_first + s->heard_n - 1) % REPLICA_STEP_HEARD].idx =
				known;
		} else {
			unsigned at = (s->heard_first + s->heard_n++) % REPLICA_STEP_HEARD;
			s->heard[at].idx = known;
			s->heard[at].ms = now;
		}
		s->known_decided = known;
	}
	while (s->heard_n && s->heard[s->heard_first].idx <= r->applied_idx) {
		s->heard_first = (s->heard_first + 1) % REPLICA_STEP_HEARD;
		s->heard_n--;
	}
	if (s->route == REPLICA_ROUTE_NONE && s->in_step_ms)
		return;
	s->in_step_ms = s->heard_n ? s->heard[s->heard_first].ms : now;
}

/* --- the turn ----------------------------------------------------------------- */

void replica_step_on_app(struct replica *r, const struct tp_frame *f, uint64_t now)
{
	sync_config(r);
	if (r->mode != REPLICA_MEMBER && r->mode != REPLICA_LEARNER)
		return;
	/* A learner still in the configuration before: it asks for what ends
	 * it (see serve_previous). */
	if (f->app.app_type == REPLICA_APP_FETCH_REQ && f->hdr.config_id < r->members.config_id) {
		on_fetch_req(r, f->hdr.from, f->hdr.config_id, f->app.data, f->app.len, now);
		return;
	}
	/* A learner already in the next configuration, which this node has
	 * not entered yet: held until it has (replica_learn.c). */
	if (f->app.app_type == REPLICA_APP_FETCH_REQ && f->hdr.config_id > r->members.config_id &&
	    f->app.len == STEP_FETCH_REQ_LEN) {
		replica_learn_park(r, f->hdr.from, f->hdr.config_id, get_le64(f->app.data), now);
		return;
	}
	if (f->hdr.config_id != r->members.config_id)
		return;
	switch (f->app.app_type) {
	case REPLICA_APP_STEP:
		if (r->mode == REPLICA_MEMBER)
			on_step(r, f->hdr.from, f->app.data, f->app.len, now);
		break;
	case REPLICA_APP_FETCH_REQ:
		on_fetch_req(r, f->hdr.from, f->hdr.config_id, f->app.data, f->app.len, now);
		break;
	case REPLICA_APP_FETCH_ENTRIES:
		if (r->mode == REPLICA_LEARNER)
			replica_learn_on_entries(r, f->hdr.from, f->app.data, f->app.len, now);
		else
			on_fetch_entries(r, f->hdr.from, f->app.data, f->app.len, now);
		break;
	case REPLICA_APP_RELAY:
		on_relay(r, f->hdr.from, f->app.data, f->app.len);
		break;
	default:
		break;
	}
}

void replica_step_turn(struct replica *r, uint64_t now)
{
	sync_config(r);
	replica_learn_turn(r, now); /* sets a learner's route */
	if (r->mode == REPLICA_LEARNER) {
		atomic_store(&r->quorum_in_reach, false); /* it counts its own way */
		relay_in_flight(r, now);
		track_lag(r, now);
		return;
	}
	if (!r->px || r->mode != REPLICA_MEMBER) {
		r->step.route = REPLICA_ROUTE_NONE;
		r->step.via = 0;
		atomic_store(&r->has_route, false);
		atomic_store(&r->quorum_in_reach, false);
		return;
	}
	update_route(r, now);
	if (now - r->step.last_sent_ms >= STEP__EVERY_MS)
		send_step(r, now);
	maybe_fetch(r, now);
	relay_in_flight(r, now);
	track_lag(r, now);
}
