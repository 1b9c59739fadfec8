/*
 * Ballot Leader Election, the current "happy" variant (spec §4), a port of
 * omnipaxos/src/ballot_leader_election.rs. Volatile state only; it decides
 * when this node should try to lead and hands its ballot to Sequence Paxos,
 * which alone makes leadership safe. It never gossips a leader's identity:
 * only repliers' own ballots are adopted.
 *
 * Replies are kept per member slot, so a duplicated reply counts once.
 *
 * Late replies, where this differs from the reference on purpose. The
 * reference counts a peer in a round only if its reply to that round's
 * request arrives before the round ends. A node starved of CPU (its thread
 * waits for a core longer than a round) answers rounds late, in bursts:
 * a leader whose followers are both starved then hears nobody in time,
 * reports itself unhappy, and a follower that hears it takes over, though
 * every node is alive and connected. Here a peer counts in round h if the
 * newest round it answered is at least h - lag, lag being how many rounds
 * late its replies have arrived (the most seen, less one per round it then
 * answers in time with nothing late; at most BLE__MAX_LAG). A node's
 * silence is taken for absence only once it lasts longer than the slowness
 * it has shown:
 * - a peer that answers in time has lag 0 and counts exactly as in the
 *   reference, so in a healthy cluster a dead or cut-off node is missed
 *   after one round, as before; one seen k rounds late after k + 1;
 * - BLE only decides when to try to lead; Sequence Paxos alone makes
 *   leadership safe, and a late reply is real evidence of a working link
 *   both ways (the request got there, the answer came back), only older;
 * - a node still takes over only when the replies to the current round
 *   alone make it quorum-connected, as in the reference; late replies only
 *   add to what it hears, so they can make it happier, never make it take
 *   over (a node cut off from a quorum never increments its ballot, and
 *   nothing flaps when links come back);
 * - a leader cut off from its quorum becomes unhappy lag rounds later, so
 *   in the partial-connectivity scenarios the takeover comes that much
 *   later, only once its peers were seen that slow.
 * A node whose own ticks came late (opx_turn_late: its application's thread
 * waited for the CPU) grants every peer as many rounds too, until it has
 * kept time for BLE__MAX_LAG rounds: on a machine so loaded, its own view
 * of others' silence is no better, and a node that cannot keep time makes a
 * poor new leader anyway. The first stall of a leader whose followers kept
 * time still looks like its death.
 */
#include "omnipaxos_int.h"

/* Rounds late a reply may arrive and still count: a stall of a few seconds
 * at the shortest election timeouts. Bounds how long a slow node that then
 * dies is still counted. */
#define BLE__MAX_LAG 20

/* Counted in this round (see "Late replies" above). */
static bool ble_counted(const struct ble *b, uint32_t slot)
{
	uint32_t grace = b->lag[slot] > b->self_lag ? b->lag[slot] : b->self_lag;
	return b->heard[slot] != 0 && b->hb_round - b->heard[slot] <= grace;
}

void ble_turn_late(struct opx *px, uint32_t rounds)
{
	struct ble *b = &px->ble;
	if (rounds == 0)
		return;
	b->self_late_in = b->hb_round;
	if (rounds > BLE__MAX_LAG)
		rounds = BLE__MAX_LAG;
	if (rounds > b->self_lag)
		b->self_lag = rounds;
}

void ble_init(struct opx *px, const struct opx_ballot *stored_promise)
{
	struct ble *b = &px->ble;
	memset(b, 0, sizeof(*b));
	b->current.config_id = px->cfg.cluster.config_id;
	b->current.n = 1;
	b->current.priority = px->cfg.leader_priority;
	b->current.pid = px->cfg.pid;
	b->happy = true;
	if (stored_promise && !ballot_is_zero(stored_promise)) {
		/* Recovery round: a restarted node cannot keep leading with its
		 * old ballot (spec §4.1). */
		b->leader = *stored_promise;
		b->current.n = 0;
	} else {
		b->leader = b->current;
	}
}

/* Peers counted in this round that follow this node (their leader is not
 * above its ballot). */
static uint32_t ble_followers(const struct opx *px)
{
	const struct ble *b = &px->ble;
	uint32_t followers = 0;
	for (uint32_t i = 0; i < px_n(px); i++)
		if (ble_counted(b, i) && opx_ballot_cmp(&b->replies[i].leader, &b->current) <= 0)
			followers++;
	return followers;
}

static bool ble_leads_a_quorum(const struct opx *px, uint32_t followers)
{
	return (px->role == OPX_ROLE_LEADER && px->phase == OPX_PHASE_ACCEPT)
		       ? px_accept_quorum(px, followers + 1)
		       : px_prepare_quorum(px, followers + 1);
}

/*
 * A reply came: a node that hears a quorum again says so at once, not at
 * the round's end (another difference from the reference, which changes
 * happiness only at the end). A leader whose followers were both starved
 * found itself unhappy at its last round's end; a follower waking from its
 * stall sends its late replies, then, in the same turn, its own request,
 * and must not be answered "unhappy" because of its own silence: hearing
 * that and nobody happy, it would take over. Only ever upwards, and only
 * on what the round's end would count (no higher ballot heard): the end
 * recomputes both from scratch.
 */
static void ble_reassure(struct opx *px)
{
	struct ble *b = &px->ble;
	uint32_t n = 0;
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (!ble_counted(b, i))
			continue;
		if (opx_ballot_cmp(&b->replies[i].ballot, &b->leader) > 0)
			return;
		n++;
	}
	if (px_prepare_quorum(px, n + 1))
		b->qc = true;
	if (opx_ballot_eq(&b->leader, &b->current) && ble_leads_a_quorum(px, ble_followers(px)))
		b->happy = true;
}

void ble_start_round(struct opx *px)
{
	struct ble *b = &px->ble;
	for (uint32_t i = 0; i < px_n(px); i++) {
		b->prev_replied[i] = ble_counted(b, i);
		/* answered in time, and nothing came late: less slow now.
		 * A starved peer answers in bursts, the late ones with the
		 * one in time: those rounds do not count. */
		if (b->heard[i] == b->hb_round && b->late_in[i] != b->hb_round && b->lag[i] > 0)
			b->lag[i]--;
	}
	if (b->hb_round - b->self_late_in >= BLE__MAX_LAG)
		b->self_lag = 0; /* kept time for long enough */
	b->hb_round++;
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (i == px->me)
			continue;
		struct opx_msg *m =
			out_push(px, &px->out_ble, px->cfg.cluster.nodes[i], OPX_MSG_HB_REQUEST);
		if (m)
			m->u.hb_request.round = b->hb_round;
	}
}

void ble_handle(struct opx *px, uint32_t from_slot, const struct opx_msg *m)
{
	struct ble *b = &px->ble;
	if (m->type == OPX_MSG_HB_REQUEST) {
		struct opx_msg *r = out_push(px, &px->out_ble, m->from, OPX_MSG_HB_REPLY);
		if (!r)
			return;
		r->u.hb_reply.round = m->u.hb_request.round;
		r->u.hb_reply.ballot = b->current;
		r->u.hb_reply.leader = b->leader;
		r->u.hb_reply.happy = b->happy;
		return;
	}
	const struct opx_msg_hb_reply *rep = &m->u.hb_reply;
	uint32_t late = b->hb_round - rep->round;
	if (rep->round == 0 || rep->round > b->hb_round || late > BLE__MAX_LAG ||
	    rep->ballot.config_id != px->cfg.cluster.config_id || rep->ballot.pid != m->from) {
		px->dropped++; /* too late, foreign or forged */
		return;
	}
	if (late > 0)
		b->late_in[from_slot] = b->hb_round;
	if (late > b->lag[from_slot])
		b->lag[from_slot] = late;
	if (rep->round >= b->heard[from_slot]) {
		b->heard[from_slot] = rep->round;
		b->replies[from_slot] = *rep;
	}
	ble_reassure(px);
}

/* Spec §4.3. Returns true with *leader_out set if this node should lead. */
bool ble_hb_timeout(struct opx *px, struct opx_ballot *leader_out)
{
	struct ble *b = &px->ble;
	uint32_t n_replies = 0, n_current = 0;
	bool all_unhappy = true;

	/* 1. adopt the highest ballot heard */
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (!ble_counted(b, i))
			continue;
		n_replies++;
		if (b->heard[i] == b->hb_round)
			n_current++;
		if (b->replies[i].happy)
			all_unhappy = false;
		if (opx_ballot_cmp(&b->replies[i].ballot, &b->leader) > 0)
			b->leader = b->replies[i].ballot;
	}
	/* 2. happiness */
	if (opx_ballot_eq(&b->leader, &b->current)) {
		bool happy_higher = false;
		for (uint32_t i = 0; i < px_n(px); i++)
			if (ble_counted(b, i) &&
			    opx_ballot_cmp(&b->replies[i].leader, &b->current) > 0 &&
			    b->replies[i].happy)
				happy_higher = true;
		b->happy = ble_leads_a_quorum(px, ble_followers(px)) || happy_higher;
	} else {
		b->happy = false;
		for (uint32_t i = 0; i < px_n(px); i++)
			if (ble_counted(b, i) && opx_ballot_eq(&b->replies[i].ballot, &b->leader) &&
			    b->replies[i].happy)
				b->happy = true;
	}
	/* 3. takeover: quorum-connected by this round's replies alone,
	 * unhappy, and nobody I hear is happy */
	b->qc = px_prepare_quorum(px, n_replies + 1);
	if (!b->happy && all_unhappy && px_prepare_quorum(px, n_current + 1)) {
		b->current.n = b->leader.n + 1;
		b->leader = b->current;
		b->happy = true;
	}
	/* 4. next round */
	ble_start_round(px);
	/* 5. follow Sequence Paxos if it promised a higher ballot */
	if (opx_ballot_cmp(&px->promise, &b->leader) > 0) {
		b->leader = px->promise;
		if (px->promise.pid == px->cfg.pid)
			b->current = px->promise;
		b->happy = true;
	}
	/* 6. */
	if (opx_ballot_eq(&b->leader, &b->current)) {
		*leader_out = b->current;
		return true;
	}
	return false;
}
