/*
 * Learners: members that do not vote (membership.h). A learner runs no
 * consensus core. It pulls decided entries with the FETCH frames of
 * replica_step.c and applies them to its state, and sends its writes (and
 * barriers: empty proposals) to a voter with RELAY frames, whose core
 * forwards them to the leader. Every copy of a proposal carries the same
 * id, so the KV applies each at most once, however often it is relayed.
 *
 * Fan-out. Decided entries never change, so any node holding them may
 * serve them. Learners are placed by id behind the voters (sorted by id):
 * the first learners fetch from one voter each, every later one from a
 * learner before it (learner j from learner (j - voters) / 2), so a voter
 * serves at most two learners however many there are. The leader serves
 * none: a place behind it goes to the next voter once the learner knows
 * who leads, since every write waits on the leader's turns and a fetch
 * answer and the next request are two more frames in them. A
 * learner keeps the entries it applied lately (struct replica_recent) to
 * serve those behind it. When its source is silent, or no longer holds
 * what it asks for, a learner asks the voters in turn, and goes back to its
 * place after LEARN__RETURN_MS. A learner behind the compacted logs catches
 * up by state transfer from the source that said so (replica_xfer.c).
 *
 * Long polls. A source holds a learner's request while it has nothing to
 * send (struct replica_waiter), or while the learner is a configuration
 * ahead of it, answering as soon as it applies or decides more (or enters
 * that configuration), or empty after an election timeout: entries flow down the tree as they
 * are decided, without a report every few milliseconds, and an answer is
 * what tells a learner its source is alive. Nothing here waits for a
 * learner: a source only answers requests, so a learner down, stopped or
 * slow costs its source one held slot.
 *
 * Configuration changes reach a learner in the fetch answer that ends a
 * configuration (it carries the stop-sign's table, replica_step.c), applied
 * like a stop-sign from a log (replica_table_applied). Every answer also
 * carries the ballot its sender follows: a learner shows the highest it
 * heard of as its leader (status, health), and passes it on to those behind.
 *
 * Not here: voting, leading, quorums (the core's, voters only).
 */
#include "replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "log.h"
#include "step_codec.h"

/* A learner that left its place in the fan-out tries it again after this. */
#define LEARN__RETURN_MS 5000
/* One answer from the entries a learner keeps holds at most this much. */
#define LEARN__ANSWER_BYTES (256u * 1024)

/* A source holds a request with nothing to send at most one election
 * timeout: within the transport's silence, so an idle link does not read
 * as down. */
static uint64_t hold_ms(const struct replica *r)
{
	return r->cfg.election_timeout_ms;
}

/* How long a learner waits for an answer before it asks someone else. */
static uint64_t patience_ms(const struct replica *r)
{
	return hold_ms(r) + 2ull * r->cfg.resend_timeout_ms;
}

/* How long after its last answer a learner still counts on a route for its
 * writes: a few patiences, since the first answer of the next source may
 * be held too. */
static uint64_t route_fresh_ms(const struct replica *r)
{
	return 3 * patience_ms(r);
}

/* The members split by role, in id order, and this node's place among the
 * learners. */
struct fanout {
	opx_node_id voters[CFG_MAX_PEERS], learners[CFG_MAX_PEERS];
	size_t nv, nl, me;
};

static void fanout_of(const struct replica *r, struct fanout *f)
{
	f->nv = f->nl = f->me = 0;
	for (size_t i = 0; i < r->members.n; i++) {
		const struct cfg_peer *p = &r->members.peers[i];
		if (!p->learner) {
			f->voters[f->nv++] = p->id;
			continue;
		}
		if (p->id == r->cfg.node_id)
			f->me = f->nl;
		f->learners[f->nl++] = p->id;
	}
}

/* The k-th node to fetch from: 0 its place in the tree (the next voter
 * if its place is the leader's), then the voters. */
static opx_node_id source_at(const struct replica *r, unsigned k)
{
	struct fanout f;
	fanout_of(r, &f);
	if (f.nv == 0)
		return 0;
	if (k > 0)
		return f.voters[(f.me + k) % f.nv];
	if (f.me >= f.nv)
		return f.learners[(f.me - f.nv) / 2];
	if (f.nv > 1 && f.voters[f.me] == r->learn.leader.pid)
		return f.voters[(f.me + 1) % f.nv];
	return f.voters[f.me];
}

/* The voter this learner's writes go to: the turn-th after its place. */
static opx_node_id relay_voter(const struct replica *r, unsigned turn)
{
	struct fanout f;
	fanout_of(r, &f);
	return f.nv ? f.voters[(f.me + turn) % f.nv] : 0;
}

/* --- serving: the entries a learner keeps, held requests ------------------- */

static void recent_clear(struct replica_recent *k)
{
	for (unsigned i = 0; i < k->n; i++)
		free(k->e[(k->head + i) % REPLICA_RECENT_ENTRIES].data);
	k->head = k->n = 0;
	k->bytes = 0;
}

static void recent_drop_oldest(struct replica_recent *k)
{
	free(k->e[k->head].data);
	k->bytes -= k->e[k->head].len;
	k->e[k->head].data = NULL;
	k->head = (k->head + 1) % REPLICA_RECENT_ENTRIES;
	k->n--;
	k->first_idx++;
}

void replica_learn_remember(struct replica *r, uint64_t idx, const uint8_t *data, uint32_t len)
{
	struct replica_recent *k = r->learn.recent;
	if (!k) {
		k = r->learn.recent = calloc(1, sizeof(*k));
		if (!k)
			return; /* serves nobody: those behind it ask a voter */
	}
	if (k->n && idx != k->first_idx + k->n)
		recent_clear(k); /* a state transfer in between */
	if (!k->n)
		k->first_idx = idx;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy) {
		recent_clear(k);
		return;
	}
	memcpy(copy, data, len);
	while (k->n && (k->n == REPLICA_RECENT_ENTRIES || k->bytes + len > REPLICA_RECENT_BYTES))
		recent_drop_oldest(k);
	unsigned at = (k->head + k->n++) % REPLICA_RECENT_ENTRIES;
	k->e[at].data = copy;
	k->e[at].len = len;
	k->bytes += len;
}

void replica_learn_add_recent(struct replica *r, uint64_t first, struct step_fetch_answer *a,
			      struct step_buf *msg)
{
	const struct replica_recent *k = r->learn.recent;
	uint64_t end = k && k->n ? k->first_idx + k->n : r->applied_idx;
	a->decided = r->applied_idx;
	if (first >= end)
		return; /* nothing newer kept (yet): an empty answer, asked again */
	if (!k || !k->n || first < k->first_idx) {
		a->status = STEP_FETCH_NOT_HELD;
		return;
	}
	for (uint64_t i = first - k->first_idx; i < k->n; i++) {
		unsigned at = (unsigned)((k->head + i) % REPLICA_RECENT_ENTRIES);
		if (a->n && msg->len + k->e[at].len > LEARN__ANSWER_BYTES)
			break;
		if (step_buf_add_entry(msg, k->e[at].data, k->e[at].len) != 0)
			break;
		a->n++;
	}
}

void replica_learn_park(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t first,
			uint64_t now)
{
	struct replica_waiter *slot = NULL;
	for (size_t i = 0; i < OPX_MAX_NODES && !slot; i++)
		if (r->learn.waiters[i].id == from)
			slot = &r->learn.waiters[i];
	for (size_t i = 0; i < OPX_MAX_NODES && !slot; i++)
		if (!r->learn.waiters[i].id)
			slot = &r->learn.waiters[i];
	if (!slot)
		return; /* it asks again after its patience */
	*slot = (struct replica_waiter){
		.id = from, .config_id = config_id, .first = first, .since_ms = now};
}

/* Answers the held requests that have entries now, or waited long enough. */
static void wake_waiters(struct replica *r, uint64_t now)
{
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_waiter w = r->learn.waiters[i];
		if (!w.id)
			continue;
		if (w.config_id > r->members.config_id) {
			/* Asked in a configuration this node has not entered:
			 * answered once it has, dropped if it does not soon. */
			if (now - w.since_ms >= hold_ms(r))
				r->learn.waiters[i].id = 0;
			continue;
		}
		bool has = w.config_id == r->members.config_id ? replica_fetch_has(r, w.first)
							       : true; /* ended: say so */
		if (!has && now - w.since_ms < hold_ms(r))
			continue;
		r->learn.waiters[i].id = 0;
		replica_fetch_serve(r, w.id, w.config_id, w.first, false, now);
	}
}

/* --- fetching ---------------------------------------------------------------- */

static void ask(struct replica *r, uint64_t now)
{
	struct replica_learn *l = &r->learn;
	l->source = source_at(r, l->fallback);
	if (!l->source || l->source == r->cfg.node_id)
		return;
	uint8_t req[STEP_FETCH_REQ_LEN];
	put_le64(req, r->applied_idx);
	tp_send_app(r->tp, l->source, r->members.config_id, REPLICA_APP_FETCH_REQ, req,
		    sizeof(req));
	l->asked_ms = now ? now : 1;
}

/* The source did not serve: the next voter. */
static void move_on(struct replica *r, uint64_t now)
{
	struct replica_learn *l = &r->learn;
	if (!l->fallback)
		l->fallback_ms = now;
	l->fallback++;
	l->asked_ms = 0;
}

/* The table after the n entries of a STOPSIGN answer, applied as the
 * stop-sign at the applied index if everything before it is applied. */
static void stopsign_answer(struct replica *r, const struct step_fetch_answer *a)
{
	struct step_entries list;
	const uint8_t *entry = NULL;
	uint32_t len = 0;
	step_entries_init(&list, a->entries, a->entries_len, a->n + 1);
	for (uint32_t i = 0; i <= a->n; i++)
		if (step_entries_next(&list, &entry, &len) != 1)
			return;
	if (r->applied_idx != a->first + a->n || r->entering)
		return;
	struct membership *t = malloc(sizeof(*t));
	char why[200];
	if (!t)
		return;
	if (membership_decode(t, entry, len, why, sizeof(why)) != 0 ||
	    t->config_id != r->members.config_id + 1 || t->base != r->applied_idx + 1) {
		free(t);
		return;
	}
	int rc = replica_table_applied(r, t, r->applied_idx);
	if (rc != 0)
		replica_fail(r, "applying a fetched stop-sign", rc);
}

/* The leader as a source knows it: the highest ballot heard of in this
 * configuration. Ballots only grow, and a source further from the voters
 * may not have heard of the newest yet. */
static void learn_leader(struct replica *r, const struct step_fetch_answer *a)
{
	struct opx_ballot b = {.config_id = r->members.config_id,
			       .n = a->leader_round,
			       .priority = a->leader_priority,
			       .pid = a->leader};
	if (b.pid && opx_ballot_cmp(&b, &r->learn.leader) > 0)
		r->learn.leader = b;
}

void replica_learn_on_entries(struct replica *r, opx_node_id from, const uint8_t *d, uint32_t len,
			      uint64_t now)
{
	struct replica_learn *l = &r->learn;
	struct step_fetch_answer a;
	if (from != l->source || !l->asked_ms || step_fetch_answer_decode(&a, d, len) != 0)
		return;
	l->asked_ms = 0;
	l->answered_ms = now;
	/* An answer is what a learner has instead of the core's heartbeats:
	 * writes through it can be decided (knows_no_quorum). */
	atomic_store(&r->ticks_without_qc, 0);
	atomic_store(&r->had_qc, true);
	if (a.decided > l->decided)
		l->decided = a.decided;
	learn_leader(r, &a);
	if (r->xfer.active)
		return;
	switch (a.status) {
	case STEP_FETCH_NOT_HELD:
		move_on(r, now);
		break;
	case STEP_FETCH_COMPACTED:
		if (a.compacted > r->applied_idx)
			replica_xfer_start(r, a.compacted, from);
		return;
	default:
		replica_apply_fetched(r, &a);
		if (atomic_load(&r->failed))
			return;
		if (a.status == STEP_FETCH_STOPSIGN)
			stopsign_answer(r, &a);
		break;
	}
	if (!r->entering && !atomic_load(&r->failed))
		ask(r, now); /* the next long poll at once */
}

/* --- the turn ------------------------------------------------------------------ */

void replica_learn_turn(struct replica *r, uint64_t now)
{
	struct replica_learn *l = &r->learn;
	wake_waiters(r, now);
	if (r->mode != REPLICA_LEARNER)
		return;

	/* Writes go to a voter while a source answers (the voters are up);
	 * when they make no progress, to the next voter. */
	if (!proposals_in_flight(&r->props) || r->applied_idx != l->progress_applied) {
		l->progress_ms = now;
		l->progress_applied = r->applied_idx;
	} else if (now - l->progress_ms >= 2ull * r->cfg.resend_timeout_ms) {
		l->relay_turn++;
		l->progress_ms = now;
	}
	bool fresh = l->answered_ms && now - l->answered_ms <= route_fresh_ms(r);
	opx_node_id via = fresh ? relay_voter(r, l->relay_turn) : 0;
	if (via != r->step.via || (via ? REPLICA_ROUTE_VIA : REPLICA_ROUTE_NONE) != r->step.route)
		r->step.route_changed_ms = now;
	r->step.route = via ? REPLICA_ROUTE_VIA : REPLICA_ROUTE_NONE;
	r->step.via = via;
	atomic_store(&r->has_route, via != 0);

	if (r->xfer.active || r->entering)
		return;
	if (r->applied_idx < r->members.base) {
		/* New to the cluster, or back after a change it missed: from
		 * its place in the fan-out first, so that a fleet of new
		 * learners does not load one voter. */
		replica_xfer_start(r, r->members.base, source_at(r, 0));
		return;
	}
	if (l->fallback && now - l->fallback_ms >= LEARN__RETURN_MS) {
		l->fallback = 0;
		l->asked_ms = 0;
	}
	if (l->asked_ms && now - l->asked_ms < patience_ms(r))
		return;
	if (l->asked_ms)
		move_on(r, now); /* silent: down, stopped or cut off */
	ask(r, now);
}

void replica_learn_enter(struct replica *r)
{
	struct replica_learn *l = &r->learn;
	l->source = 0;
	l->fallback = 0;
	l->asked_ms = 0;
	l->leader = (struct opx_ballot){0}; /* ballots are per configuration */
	if (r->mode != REPLICA_LEARNER && l->recent) {
		recent_clear(l->recent);
		free(l->recent);
		l->recent = NULL;
	}
}

void replica_learn_close(struct replica *r)
{
	if (r->learn.recent) {
		recent_clear(r->learn.recent);
		free(r->learn.recent);
		r->learn.recent = NULL;
	}
}
