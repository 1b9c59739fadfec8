/*
 * Ballot Leader Election, the current "happy" variant (spec §4), a port of
 * omnipaxos/src/ballot_leader_election.rs. Volatile state only; it decides
 * when this node should try to lead and hands its ballot to Sequence Paxos,
 * which alone makes leadership safe. It never gossips a leader's identity:
 * only repliers' own ballots are adopted.
 *
 * Replies are kept per member slot, so a duplicated reply counts once.
 */
#include "omnipaxos_int.h"

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

void ble_start_round(struct opx *px)
{
	struct ble *b = &px->ble;
	memcpy(b->prev_replied, b->replied, sizeof(b->replied));
	memset(b->replied, 0, sizeof(b->replied));
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
	if (rep->round != b->hb_round || rep->ballot.config_id != px->cfg.cluster.config_id ||
	    rep->ballot.pid != m->from) {
		px->dropped++; /* late, foreign or forged */
		return;
	}
	b->replied[from_slot] = true;
	b->replies[from_slot] = *rep;
}

/* Spec §4.3. Returns true with *leader_out set if this node should lead. */
bool ble_hb_timeout(struct opx *px, struct opx_ballot *leader_out)
{
	struct ble *b = &px->ble;
	uint32_t n_replies = 0;
	bool all_unhappy = true;

	/* 1. adopt the highest ballot heard */
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (!b->replied[i])
			continue;
		n_replies++;
		if (b->replies[i].happy)
			all_unhappy = false;
		if (opx_ballot_cmp(&b->replies[i].ballot, &b->leader) > 0)
			b->leader = b->replies[i].ballot;
	}
	/* 2. happiness */
	if (opx_ballot_eq(&b->leader, &b->current)) {
		uint32_t followers = 0;
		bool happy_higher = false;
		for (uint32_t i = 0; i < px_n(px); i++) {
			if (!b->replied[i])
				continue;
			int c = opx_ballot_cmp(&b->replies[i].leader, &b->current);
			if (c <= 0)
				followers++;
			else if (b->replies[i].happy)
				happy_higher = true;
		}
		bool ok = (px->role == OPX_ROLE_LEADER && px->phase == OPX_PHASE_ACCEPT)
				  ? px_accept_quorum(px, followers + 1)
				  : px_prepare_quorum(px, followers + 1);
		b->happy = ok || happy_higher;
	} else {
		b->happy = false;
		for (uint32_t i = 0; i < px_n(px); i++)
			if (b->replied[i] && opx_ballot_eq(&b->replies[i].ballot, &b->leader) &&
			    b->replies[i].happy)
				b->happy = true;
	}
	/* 3. takeover: quorum-connected, unhappy, and nobody I hear is happy */
	b->qc = px_prepare_quorum(px, n_replies + 1);
	if (!b->happy && all_unhappy && b->qc) {
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
