/*
 * Sequence Paxos, leader side (spec §5.4, §5.7, §5.8, §9), a port of
 * omnipaxos/src/sequence_paxos/leader.rs: becoming leader, collecting
 * promises, syncing followers with AcceptSync, replicating batches with
 * AcceptDecide, counting Accepted into decisions, stop-signs and resends.
 *
 * A leader steps down only by handling a higher Prepare (seqpaxos.c).
 * AcceptDecides are not merged in the outbox (one per flush and follower);
 * Decides are folded into a queued AcceptDecide/Decide to the same follower.
 */
#include "omnipaxos_int.h"

static struct opx_seq next_seq(struct lpeer *p)
{
	p->seq.counter++;
	return p->seq;
}

static bool ref_valid(const struct opx *px, const struct out_ref *r)
{
	return r->epoch == px->out_epoch + 1 && r->idx < px->out_sp.n;
}

static void set_ref(struct opx *px, struct out_ref *r, const struct opx_msg *m)
{
	r->epoch = px->out_epoch + 1;
	r->idx = (uint32_t)(m - px->out_sp.msgs);
}

void sp_send_prepare(struct opx *px, uint32_t slot)
{
	struct opx_msg *m = out_push(px, &px->out_sp, px->cfg.cluster.nodes[slot], OPX_MSG_PREPARE);
	if (!m)
		return;
	m->u.prepare.n = px->n_leader;
	m->u.prepare.decided_idx = px->decided_idx;
	m->u.prepare.n_accepted = px->accepted_round;
	m->u.prepare.accepted_idx = px->accepted_idx;
}

static bool meta_greater(const struct promise_meta *a, const struct promise_meta *b)
{
	int c = opx_ballot_cmp(&a->n_accepted, &b->n_accepted);
	return c > 0 || (c == 0 && a->accepted_idx > b->accepted_idx);
}

static int handle_majority_promises(struct opx *px);

/*
 * The leader's own accept is a write quorum only in a configuration of one
 * node (what a survivor forced into a new cluster runs until members are
 * added; a flexible write quorum is at least 2): no Accepted will ever come
 * to count, so its accept decides. Not in the reference, which needs two
 * nodes. An unsynced append (sync_after_send) is synced by the write of the
 * decided index (px_write) before the decision exists.
 */
static int decide_alone(struct opx *px)
{
	if (!px_accept_quorum(px, 1) || px->phase != OPX_PHASE_ACCEPT ||
	    px->accepted_idx <= px->decided_idx)
		return 0;
	return sp_set_decided(px, px->accepted_idx);
}

/* Spec §5.4 handle_leader. */
int sp_handle_leader(struct opx *px, const struct opx_ballot *b)
{
	if (opx_ballot_cmp(b, &px->n_leader) <= 0 || opx_ballot_cmp(b, &px->promise) <= 0)
		return 0;
	if (b->pid != px->cfg.pid)
		return 0;
	int rc = sp_flush_batch(px, NULL, NULL, false);
	if (rc)
		return rc;
	struct opx_storage_op op = {.type = OPX_OP_SET_PROMISE, .u.ballot = *b};
	rc = px_write(px, &op, 1);
	if (rc)
		return rc;
	px->promise = *b;
	px->n_leader = *b;
	memset(px->peers, 0, sizeof(px->peers));
	free(px->max_promise);
	px->max_promise = NULL;
	struct lpeer *me = &px->peers[px->me];
	me->prom = PROMISED;
	me->meta.n_accepted = px->accepted_round;
	me->meta.accepted_idx = px->accepted_idx;
	me->meta.decided_idx = px->decided_idx;
	px->max_meta = me->meta;
	px->role = OPX_ROLE_LEADER;
	px->phase = OPX_PHASE_PREPARE;
	free(px->cached_promise);
	px->cached_promise = NULL;
	for (uint32_t i = 0; i < px_n(px); i++)
		if (i != px->me)
			sp_send_prepare(px, i);
	if (px_prepare_quorum(px, 1)) /* its own promise is enough: one node */
		return handle_majority_promises(px);
	return 0;
}

/* Spec §5.4 send_accsync. */
static int send_accsync(struct opx *px, uint32_t f)
{
	struct lpeer *p = &px->peers[f];
	const struct promise_meta *mm = &px->max_meta;
	uint64_t fdec = p->meta.decided_idx, valid;
	if (opx_ballot_eq(&p->meta.n_accepted, &px->n_leader))
		valid = p->meta.accepted_idx;
	else if (opx_ballot_eq(&p->meta.n_accepted, &mm->n_accepted))
		valid = mm->accepted_idx < p->meta.accepted_idx ? mm->accepted_idx
								: p->meta.accepted_idx;
	else
		valid = fdec;
	/* only this round's log is known to agree: never past my own log */
	if (valid > px_log_end(px))
		valid = px_log_end(px);
	if (fdec > valid)
		fdec = valid;
	struct lsync_tmp t;
	int rc = sp_create_log_sync(px, valid, fdec, p->meta.accepted_idx, &t);
	if (rc) {
		px->dropped++; /* cannot sync it now; it will ask again */
		return rc == -ENOENT ? 0 : rc;
	}
	p->seq.session++;
	p->seq.counter = 0;
	struct opx_msg m = {.from = px->cfg.pid,
			    .to = px->cfg.cluster.nodes[f],
			    .config_id = px->cfg.cluster.config_id,
			    .type = OPX_MSG_ACCEPT_SYNC};
	m.u.accept_sync.n = px->n_leader;
	m.u.accept_sync.seq = next_seq(p);
	m.u.accept_sync.decided_idx = px->decided_idx;
	m.u.accept_sync.log_sync = t.ls;
	struct opx_msg *q = out_push_dup(px, &m);
	if (q)
		set_ref(px, &p->pending, q);
	sp_lsync_free(&t);
	return 0;
}

static int handle_majority_promises(struct opx *px)
{
	const struct opx_log_sync *ls = NULL;
	if (px->max_promise && px->max_promise->u.promise.has_log_sync)
		ls = &px->max_promise->u.promise.log_sync;
	uint64_t dec = 0, new_acc = 0;
	for (uint32_t i = 0; i < px_n(px); i++)
		if (px->peers[i].prom == PROMISED && px->peers[i].meta.decided_idx > dec)
			dec = px->peers[i].meta.decided_idx;
	int rc = sp_sync_log(px, &px->n_leader, dec, ls, &new_acc);
	if (rc && rc != -EBADMSG)
		return rc; /* nothing changed; a resent Promise retries, with this log */
	free(px->max_promise);
	px->max_promise = NULL;
	if (rc == -EBADMSG) {
		/* The promised log cannot be installed here: do not lead with a
		 * log that might miss chosen entries. Wait for a later round. */
		px->dropped++;
		px->phase = OPX_PHASE_NONE;
		px->ble.current.n = px->promise.n + 1;
		px->ble.leader = px->ble.current;
		return 0;
	}
	/* The log is synced: from here on this node leads, whatever fails.
	 * Staying in Prepare would weigh late promises against the log from
	 * before the sync. Proposals buffered meanwhile are only lost if memory
	 * runs out (as a lost forward would be; the application retries). */
	px->phase = OPX_PHASE_ACCEPT;
	if (!px->ss) {
		struct opx_entry *e = px->buffered.n ? batch_entries(&px->buffered) : NULL;
		if (e) {
			struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
			op.u.append.entries = e;
			op.u.append.n = px->buffered.n;
			rc = px_write(px, &op, 1);
			free(e);
			if (rc)
				return rc;
			px->accepted_idx += px->buffered.n;
		} else if (px->buffered.n) {
			px->dropped++;
		}
		batch_reset(&px->buffered);
		if (px->buffered_ss) {
			rc = sp_store_stopsign(px, px->buffered_ss);
			if (rc == -ENOMEM)
				px->dropped++;
			else if (rc)
				return rc;
		}
	}
	batch_reset(&px->buffered);
	free(px->buffered_ss);
	px->buffered_ss = NULL;
	px->peers[px->me].accepted_idx = px->accepted_idx;
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (i == px->me || px->peers[i].prom != PROMISED)
			continue;
		rc = send_accsync(px, i);
		if (rc)
			return rc;
	}
	return decide_alone(px);
}

static void send_decide(struct opx *px, uint32_t f)
{
	struct lpeer *p = &px->peers[f];
	p->decide_owed = false;
	if (ref_valid(px, &p->pending)) {
		struct opx_msg *q = &px->out_sp.msgs[p->pending.idx];
		if (q->type == OPX_MSG_ACCEPT_DECIDE) {
			q->u.accept_decide.decided_idx = px->decided_idx;
			return;
		}
		if (q->type == OPX_MSG_DECIDE) {
			q->u.decide.decided_idx = px->decided_idx;
			return;
		}
	}
	struct opx_msg *m = out_push(px, &px->out_sp, px->cfg.cluster.nodes[f], OPX_MSG_DECIDE);
	if (!m)
		return;
	m->u.decide.n = px->n_leader;
	m->u.decide.seq = next_seq(p);
	m->u.decide.decided_idx = px->decided_idx;
	set_ref(px, &p->pending, m);
}

/* Sends the just-written entries e[0..n) (an array pointing into buf; the
 * outbox takes both) to every promised follower. */
static void send_acceptdecide(struct opx *px, struct opx_entry *e, uint32_t n, uint8_t *buf)
{
	/* out_own frees what it cannot take; e points into buf, so neither
	 * may go out without the other */
	bool lost = out_own(&px->out_sp, e) != 0;
	if (lost)
		free(buf);
	else
		lost = out_own(&px->out_sp, buf) != 0;
	if (lost)
		px->dropped++;
	for (uint32_t i = 0; i < px_n(px); i++) {
		struct lpeer *p = &px->peers[i];
		if (i == px->me || p->prom != PROMISED)
			continue;
		/* The number is taken even when the message is lost, so that the
		 * follower sees a gap and re-syncs; otherwise it would append the
		 * next batch at this batch's place. */
		struct opx_seq s = next_seq(p);
		if (!lost)
			p->decide_owed = false; /* it carries the decided index */
		struct opx_msg *m = lost ? NULL
					 : out_push(px, &px->out_sp, px->cfg.cluster.nodes[i],
						    OPX_MSG_ACCEPT_DECIDE);
		if (!m)
			continue;
		m->u.accept_decide.n = px->n_leader;
		m->u.accept_decide.seq = s;
		m->u.accept_decide.decided_idx = px->decided_idx;
		m->u.accept_decide.entries = e;
		m->u.accept_decide.n_entries = n;
		set_ref(px, &p->pending, m);
	}
}

/*
 * Writes the batch and replicates it.
 *
 * With sync_after_send the write is not synced here: the AcceptDecides
 * carrying the entries are queued at once, the application sends them and
 * then syncs (opx_sync), so the leader's fsync runs while the followers
 * write theirs instead of before they even hear of the entries. Why no
 * promise is weakened:
 * - The AcceptDecides promise nothing about the leader's disk. Their decided
 *   index was set before this write, and every decided index rests on
 *   entries already durable on a write quorum (below).
 * - Nothing else leaves before the sync: out_push syncs first for any other
 *   message (a Decide, a Promise, an AcceptSync, a heartbeat...), and px_write
 *   for any other write. A decision is a px_write of the decided index, so
 *   it always follows the sync: the leader counts its own entries as
 *   accepted from here on, but before any decision they are on its disk, and
 *   the followers' Accepted that complete the quorum come after their own
 *   synced writes. decide_alone (a write quorum of one) syncs the same way.
 * - A crash before the sync loses these entries from the leader's log, and
 *   with them nothing decided: no decision can have counted them. The leader
 *   restarts as a follower with its promise (durable) and a shorter log; a
 *   new round takes the longest log of this round from its promisers, as for
 *   any leader that crashed before its followers got its last batch. The
 *   restarted node cannot lead this round again (its volatile sequence
 *   numbers are gone, and leading takes a higher ballot), so no follower
 *   gets other entries at these indexes in this round.
 * Hence every entry decided still is on the disks of a write quorum.
 */
int sp_leader_flush(struct opx *px)
{
	if (px->batch.n == 0)
		return 0;
	uint8_t *buf = px->batch.buf;
	struct opx_entry *e;
	uint32_t n;
	int rc = sp_flush_batch(px, &e, &n, true);
	if (rc || !e)
		return rc;
	px->peers[px->me].accepted_idx = px->accepted_idx;
	send_acceptdecide(px, e, n, buf);
	return decide_alone(px);
}

/* Entries proposed at (or forwarded to) this leader in the Accept phase. */
int sp_leader_append(struct opx *px, const struct opx_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		int rc = batch_push(&px->batch, e[i].data, e[i].len);
		if (rc)
			return rc;
		if (px->batch.n >= px->cfg.batch_size) {
			rc = sp_leader_flush(px);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int sp_leader_accept_stopsign(struct opx *px, const struct opx_stopsign *ss)
{
	int rc = sp_leader_flush(px);
	if (rc)
		return rc;
	rc = sp_store_stopsign(px, ss);
	if (rc)
		return rc;
	px->peers[px->me].accepted_idx = px->accepted_idx;
	for (uint32_t i = 0; i < px_n(px); i++) {
		struct lpeer *p = &px->peers[i];
		if (i == px->me || p->prom != PROMISED)
			continue;
		struct opx_msg m = {.from = px->cfg.pid,
				    .to = px->cfg.cluster.nodes[i],
				    .config_id = px->cfg.cluster.config_id,
				    .type = OPX_MSG_ACCEPT_STOPSIGN};
		m.u.accept_stopsign.n = px->n_leader;
		m.u.accept_stopsign.seq = next_seq(p);
		m.u.accept_stopsign.ss = px->ss;
		out_push_dup(px, &m);
	}
	return decide_alone(px);
}

static int handle_promise(struct opx *px, uint32_t from, const struct opx_msg *m)
{
	const struct opx_msg_promise *pr = &m->u.promise;
	if (!opx_ballot_eq(&pr->n, &px->n_leader) || pr->decided_idx > pr->accepted_idx) {
		px->dropped++;
		return 0;
	}
	struct lpeer *p = &px->peers[from];
	p->prom = PROMISED;
	p->meta.n_accepted = pr->n_accepted;
	p->meta.accepted_idx = pr->accepted_idx;
	p->meta.decided_idx = pr->decided_idx;
	p->accepted_idx = 0;
	if (px->phase == OPX_PHASE_PREPARE) {
		if (meta_greater(&p->meta, &px->max_meta)) {
			struct opx_msg *c = opx_msg_dup(m);
			if (!c) {
				p->prom = NOT_PROMISED; /* the Prepare is resent */
				return -ENOMEM;
			}
			free(px->max_promise);
			px->max_promise = c;
			px->max_meta = p->meta;
		}
		uint32_t k = 0;
		for (uint32_t i = 0; i < px_n(px); i++)
			if (px->peers[i].prom == PROMISED)
				k++;
		if (px_prepare_quorum(px, k))
			return handle_majority_promises(px);
		return 0;
	}
	return send_accsync(px, from);
}

static int handle_accepted(struct opx *px, uint32_t from, const struct opx_msg *m)
{
	const struct opx_msg_accepted *a = &m->u.accepted;
	if (!opx_ballot_eq(&a->n, &px->n_leader) || px->phase != OPX_PHASE_ACCEPT)
		return 0;
	if (a->accepted_idx > px->accepted_idx) {
		px->dropped++; /* claims more than I ever sent */
		return 0;
	}
	px->peers[from].accepted_idx = a->accepted_idx;
	if (a->accepted_idx <= px->decided_idx)
		return 0;
	uint32_t k = 0;
	for (uint32_t i = 0; i < px_n(px); i++)
		if (px->peers[i].accepted_idx >= a->accepted_idx)
			k++;
	if (!px_accept_quorum(px, k))
		return 0;
	uint64_t before = px->decided_idx;
	int rc = sp_set_decided(px, a->accepted_idx);
	if (rc)
		return rc;
	/* A decided stop-sign ends the configuration: no next entries will
	 * carry it, and the application moves on to the next one. */
	bool now = !px->cfg.decide_with_next || px_ss_decided(px);
	for (uint32_t i = 0; i < px_n(px); i++) {
		struct lpeer *p = &px->peers[i];
		if (i == px->me || p->prom != PROMISED)
			continue;
		/* decide_with_next: at once only to a follower waiting for its
		 * own forwarded entries or that forwarded lately, or when a
		 * message to it is queued anyway (the Decide folds into it) */
		if (now || p->forwarded_end > before || p->forwarded_now || p->forwarded_before ||
		    ref_valid(px, &p->pending))
			send_decide(px, i);
		else
			p->decide_owed = true;
	}
	return 0;
}

bool sp_owes_decides(const struct opx *px)
{
	if (px->role != OPX_ROLE_LEADER || px->phase != OPX_PHASE_ACCEPT)
		return false;
	for (uint32_t i = 0; i < px_n(px); i++)
		if (px->peers[i].decide_owed)
			return true;
	return false;
}

void sp_send_owed_decides(struct opx *px)
{
	if (px->role != OPX_ROLE_LEADER || px->phase != OPX_PHASE_ACCEPT)
		return;
	for (uint32_t i = 0; i < px_n(px); i++) {
		struct lpeer *p = &px->peers[i];
		if (p->decide_owed && i != px->me && p->prom == PROMISED)
			send_decide(px, i);
		p->decide_owed = false;
	}
}

/* Messages for a leader: Promise, Accepted, PrepareReq, NotAccepted and
 * forwarded proposals/stop-signs. */
int sp_leader_handle(struct opx *px, uint32_t from, const struct opx_msg *m)
{
	switch (m->type) {
	case OPX_MSG_PROMISE:
		if (px->role != OPX_ROLE_LEADER || px->phase == OPX_PHASE_NONE)
			return 0;
		return handle_promise(px, from, m);
	case OPX_MSG_ACCEPTED:
		if (px->role != OPX_ROLE_LEADER)
			return 0;
		return handle_accepted(px, from, m);
	case OPX_MSG_PREPARE_REQ:
		if (px->role != OPX_ROLE_LEADER || px->phase == OPX_PHASE_NONE)
			return 0;
		if (opx_ballot_cmp(&m->u.prepare_req.n, &px->n_leader) > 0) {
			/* Beyond the reference: a node recovering with a promise
			 * above my ballot from its own failed attempt to lead can
			 * never follow me, and BLE will not replace a happy
			 * leader: lead again above its promise. A promise to a
			 * third node is left alone: that node leads above me, and
			 * pulling its followers over would spread ballots through
			 * third parties, which BLE exists to avoid. */
			if (px->phase != OPX_PHASE_ACCEPT ||
			    m->u.prepare_req.n.pid != px->cfg.cluster.nodes[from])
				return 0;
			struct ble saved = px->ble;
			px->ble.current.n = m->u.prepare_req.n.n + 1;
			px->ble.leader = px->ble.current;
			struct opx_ballot b = px->ble.current;
			int rc = sp_handle_leader(px, &b);
			if (rc)
				px->ble = saved; /* no Prepare went out */
			return rc;
		}
		px->peers[from].prom = NOT_PROMISED;
		px->peers[from].pending.epoch = 0;
		sp_send_prepare(px, from);
		return 0;
	case OPX_MSG_NOT_ACCEPTED:
		if (px->role == OPX_ROLE_LEADER &&
		    opx_ballot_cmp(&px->n_leader, &m->u.not_accepted.n) < 0)
			px->peers[from].prom = PROMISED_HIGHER;
		return 0;
	default:
		return 0;
	}
}

/* Spec §5.7, leader part. */
int sp_leader_resend(struct opx *px)
{
	if (px->phase == OPX_PHASE_ACCEPT && px->ss) {
		bool decided = px_ss_decided(px);
		for (uint32_t i = 0; i < px_n(px); i++) {
			struct lpeer *p = &px->peers[i];
			if (i == px->me || p->prom != PROMISED)
				continue;
			if (decided) {
				struct opx_msg *m = out_push(
					px, &px->out_sp, px->cfg.cluster.nodes[i], OPX_MSG_DECIDE);
				if (!m)
					continue;
				m->u.decide.n = px->n_leader;
				m->u.decide.seq = p->seq;
				m->u.decide.decided_idx = px->decided_idx;
			} else if (p->accepted_idx != px->accepted_idx) {
				struct opx_msg m = {.from = px->cfg.pid,
						    .to = px->cfg.cluster.nodes[i],
						    .config_id = px->cfg.cluster.config_id,
						    .type = OPX_MSG_ACCEPT_STOPSIGN};
				m.u.accept_stopsign.n = px->n_leader;
				m.u.accept_stopsign.seq = p->seq;
				m.u.accept_stopsign.ss = px->ss;
				out_push_dup(px, &m);
			}
		}
	}
	if (px->phase == OPX_PHASE_ACCEPT && !px->ss) {
		/* Beyond the reference: a Decide with the next number to every
		 * follower. One that missed the last messages (lost, or
		 * overtaken by a re-sync) sees a gap and re-syncs; otherwise an
		 * idle cluster would leave it behind until the next proposal.
		 * Never the current number: a follower that missed an
		 * AcceptDecide would take it as in sequence. */
		for (uint32_t i = 0; i < px_n(px); i++)
			if (i != px->me && px->peers[i].prom == PROMISED)
				send_decide(px, i);
	}
	if (px->phase == OPX_PHASE_PREPARE || px->phase == OPX_PHASE_ACCEPT)
		for (uint32_t i = 0; i < px_n(px); i++)
			if (i != px->me && px->peers[i].prom == NOT_PROMISED)
				sp_send_prepare(px, i);
	return 0;
}
