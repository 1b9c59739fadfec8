/*
 * Sequence Paxos, follower side (spec §5.5, §5.7, §5.8), a port of
 * omnipaxos/src/sequence_paxos/follower.rs: installing AcceptSync,
 * appending AcceptDecide entries, following the decided index, accepting a
 * stop-sign, and detecting lost messages through sequence numbers.
 *
 * Prepare handling lives in seqpaxos.c because a leader handles it too.
 */
#include "omnipaxos_int.h"

/* check_valid_ballot: equal to my promise, else NotAccepted or re-sync. */
static bool valid_ballot(struct opx *px, const struct opx_ballot *n)
{
	int c = opx_ballot_cmp(&px->promise, n);
	if (c == 0 && opx_ballot_eq(&px->promise, n))
		return true;
	if (c > 0) {
		struct opx_msg *m = out_push(px, &px->out_sp, n->pid, OPX_MSG_NOT_ACCEPTED);
		if (m)
			m->u.not_accepted.n = px->promise;
	} else {
		sp_reconnected(px, n->pid);
	}
	return false;
}

/* Expected: process. Outdated: ignore. A gap: re-sync through PrepareReq. */
static bool seq_expected(struct opx *px, const struct opx_seq *s, opx_node_id from)
{
	const struct opx_seq *c = &px->cur_seq;
	if (s->session == c->session && s->counter == c->counter + 1) {
		px->cur_seq = *s;
		return true;
	}
	bool outdated =
		s->session < c->session || (s->session == c->session && s->counter <= c->counter);
	if (!outdated)
		sp_reconnected(px, from);
	return false;
}

static void reply_accepted(struct opx *px, const struct opx_ballot *n, uint64_t idx)
{
	struct out_ref *r = &px->pending_accepted;
	if (r->epoch == px->out_epoch + 1 && r->idx < px->out_sp.n) {
		struct opx_msg *q = &px->out_sp.msgs[r->idx];
		if (q->type == OPX_MSG_ACCEPTED && opx_ballot_eq(&q->u.accepted.n, n)) {
			q->u.accepted.accepted_idx = idx;
			return;
		}
	}
	struct opx_msg *m = out_push(px, &px->out_sp, n->pid, OPX_MSG_ACCEPTED);
	if (!m)
		return;
	m->u.accepted.n = *n;
	m->u.accepted.accepted_idx = idx;
	r->epoch = px->out_epoch + 1;
	r->idx = (uint32_t)(m - px->out_sp.msgs);
}

/* Spec §5.5 update_decided; *grew is set if entries were flushed. */
static int update_decided(struct opx *px, uint64_t d, bool *grew)
{
	if (d <= px->decided_idx)
		return 0;
	if (d > px->accepted_idx) {
		uint64_t before = px->accepted_idx;
		int rc = sp_flush_batch(px, NULL, NULL, false);
		if (rc)
			return rc;
		if (px->accepted_idx > before)
			*grew = true;
		if (d > px->accepted_idx)
			d = px->accepted_idx;
		if (d <= px->decided_idx)
			return 0;
	}
	return sp_set_decided(px, d);
}

static int handle_accept_sync(struct opx *px, const struct opx_msg *m)
{
	const struct opx_msg_accept_sync *as = &m->u.accept_sync;
	/* Beyond the reference, a newer sync session of my leader also
	 * replaces the current one in Accept: the leader answers every
	 * Promise (resent ones too) with a new session and numbers all later
	 * messages in it, so ignoring it would only cause another re-sync. */
	bool newer = px->phase == OPX_PHASE_ACCEPT && as->seq.session > px->cur_seq.session;
	if ((px->phase != OPX_PHASE_PREPARE && !newer) || !valid_ballot(px, &as->n))
		return 0;
	uint64_t new_acc = 0;
	int rc = sp_sync_log(px, &as->n, as->decided_idx, &as->log_sync, &new_acc);
	if (rc == -EBADMSG) {
		px->dropped++;
		return 0;
	}
	if (rc)
		return rc;
	/* Batched entries were never acknowledged and the sync carries the
	 * leader's log from before this session: they are superseded. */
	batch_reset(&px->batch);
	free(px->cached_promise);
	px->cached_promise = NULL;
	px->phase = OPX_PHASE_ACCEPT;
	px->cur_seq = as->seq;
	rc = sp_forward_buffered(px);
	reply_accepted(px, &as->n, new_acc);
	return rc;
}

static int handle_accept_decide(struct opx *px, const struct opx_msg *m)
{
	const struct opx_msg_accept_decide *ad = &m->u.accept_decide;
	if (px->phase != OPX_PHASE_ACCEPT || !valid_ballot(px, &ad->n) ||
	    !seq_expected(px, &ad->seq, m->from))
		return 0;
	if (px->ss) {
		/* nothing follows a stop-sign: the leader is confused; re-sync */
		px->dropped++;
		sp_reconnected(px, m->from);
		return 0;
	}
	uint64_t before = px->accepted_idx;
	for (uint32_t i = 0; i < ad->n_entries; i++) {
		int rc = batch_push(&px->batch, ad->entries[i].data, ad->entries[i].len);
		if (rc) {
			/* lost: ask for a re-sync rather than skip entries */
			batch_reset(&px->batch);
			sp_reconnected(px, m->from);
			return rc;
		}
	}
	if (px->batch.n >= px->cfg.batch_size) {
		int rc = sp_flush_batch(px, NULL, NULL, false);
		if (rc)
			return rc;
	}
	bool grew = false;
	int rc = update_decided(px, ad->decided_idx, &grew);
	if (rc)
		return rc;
	if (px->accepted_idx > before)
		reply_accepted(px, &ad->n, px->accepted_idx);
	return 0;
}

static int handle_decide(struct opx *px, const struct opx_msg *m)
{
	const struct opx_msg_decide *d = &m->u.decide;
	if (px->phase != OPX_PHASE_ACCEPT || !valid_ballot(px, &d->n) ||
	    !seq_expected(px, &d->seq, m->from))
		return 0;
	bool grew = false;
	int rc = update_decided(px, d->decided_idx, &grew);
	if (rc)
		return rc;
	/* Beyond the reference: also when the leader has not decided all I
	 * accepted. An Accepted can be lost with nothing behind it to detect
	 * that (the last entries before the cluster goes idle); the leader's
	 * periodic Decide then gets the answer it missed. */
	if (grew || px->accepted_idx > d->decided_idx)
		reply_accepted(px, &d->n, px->accepted_idx);
	return 0;
}

static int handle_accept_stopsign(struct opx *px, const struct opx_msg *m)
{
	const struct opx_msg_accept_stopsign *a = &m->u.accept_stopsign;
	if (px->phase != OPX_PHASE_ACCEPT || !valid_ballot(px, &a->n))
		return 0;
	struct opx_seq prev = px->cur_seq;
	if (!seq_expected(px, &a->seq, m->from)) {
		/* Beyond the reference: the leader resends an AcceptStopSign
		 * with the number it had (spec §5.7) until it hears Accepted;
		 * if mine was lost, the resend looks outdated. Answer it, or
		 * the stop-sign is never decided. */
		if (px->ss && px->phase == OPX_PHASE_ACCEPT &&
		    a->seq.session == px->cur_seq.session)
			reply_accepted(px, &a->n, px->accepted_idx);
		return 0;
	}
	if (!px->ss) {
		int rc = sp_flush_batch(px, NULL, NULL, false);
		if (!rc)
			rc = sp_store_stopsign(px, a->ss);
		if (rc) {
			/* not taken: the resend, with this number, must be */
			px->cur_seq = prev;
			return rc;
		}
	}
	reply_accepted(px, &a->n, px->accepted_idx);
	return 0;
}

int sp_follower_handle(struct opx *px, uint32_t from, const struct opx_msg *m)
{
	(void)from;
	if (px->role != OPX_ROLE_FOLLOWER)
		return 0;
	switch (m->type) {
	case OPX_MSG_ACCEPT_SYNC:
		return handle_accept_sync(px, m);
	case OPX_MSG_ACCEPT_DECIDE:
		return handle_accept_decide(px, m);
	case OPX_MSG_DECIDE:
		return handle_decide(px, m);
	case OPX_MSG_ACCEPT_STOPSIGN:
		return handle_accept_stopsign(px, m);
	default:
		return 0;
	}
}

static void prepare_req_all(struct opx *px)
{
	for (uint32_t i = 0; i < px_n(px); i++)
		if (i != px->me)
			sp_send_prepare_req(px, px->cfg.cluster.nodes[i]);
}

/* Spec §5.7, follower part. */
int sp_follower_resend(struct opx *px)
{
	if (px->phase == OPX_PHASE_PREPARE) {
		if (px->cached_promise) {
			out_push_dup(px, px->cached_promise);
		} else {
			px->phase = OPX_PHASE_RECOVER;
			prepare_req_all(px);
		}
	} else if (px->phase == OPX_PHASE_RECOVER) {
		prepare_req_all(px);
	}
	return 0;
}

/* Spec §5.8, follower part. */
int sp_follower_flush(struct opx *px)
{
	if (px->phase != OPX_PHASE_ACCEPT || px->batch.n == 0)
		return 0;
	int rc = sp_flush_batch(px, NULL, NULL, false);
	if (rc)
		return rc;
	reply_accepted(px, &px->promise, px->accepted_idx);
	return 0;
}
