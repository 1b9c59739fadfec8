/* Sample messages and deep comparison (see samples.h). */
#include "samples.h"

#include <string.h>

static struct opx_ballot ballot(uint32_t n, opx_node_id pid)
{
	return (struct opx_ballot){.config_id = 1, .n = n, .priority = n * 7, .pid = pid};
}

static struct opx_msg *add(struct samples *s, enum opx_msg_type type, opx_node_id from,
			   opx_node_id to)
{
	struct opx_msg *m = &s->msgs[s->n++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = from;
	m->to = to;
	m->config_id = 1;
	return m;
}

void samples_init(struct samples *s, opx_node_id from, opx_node_id to)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 4; i++) {
		for (size_t j = 0; j < sizeof(s->data[i]); j++)
			s->data[i][j] = (uint8_t)(i * 31 + j);
		s->entries[i].data = s->data[i];
		s->entries[i].len = (uint32_t)(i == 2 ? 0 : 5 + 6 * i); /* one empty entry */
	}
	for (size_t j = 0; j < sizeof(s->snapshot); j++)
		s->snapshot[j] = (uint8_t)(255 - j);
	s->ss_small.next.config_id = 2;
	s->ss_small.next.n_nodes = 3;
	for (uint32_t i = 0; i < 3; i++)
		s->ss_small.next.nodes[i] = i + 1;
	s->ss_full.next.config_id = 0xfffffffe;
	s->ss_full.next.n_nodes = OPX_MAX_NODES;
	for (uint32_t i = 0; i < OPX_MAX_NODES; i++)
		s->ss_full.next.nodes[i] = UINT64_MAX - i;
	s->ss_full.next.read_quorum = 40;
	s->ss_full.next.write_quorum = 30;
	s->ss_full.metadata_len = OPX_MAX_METADATA_LEN;
	for (uint32_t i = 0; i < OPX_MAX_METADATA_LEN; i++)
		s->ss_full.metadata[i] = (uint8_t)(i * 13);

	struct opx_msg *m;
	m = add(s, OPX_MSG_HB_REQUEST, from, to);
	m->u.hb_request.round = 42;
	m = add(s, OPX_MSG_HB_REPLY, from, to);
	m->u.hb_reply = (struct opx_msg_hb_reply){42, ballot(3, from), ballot(2, to), true};
	m = add(s, OPX_MSG_PREPARE_REQ, from, to);
	m->u.prepare_req.n = ballot(4, to);
	m = add(s, OPX_MSG_PREPARE, from, to);
	m->u.prepare = (struct opx_msg_prepare){ballot(5, from), 10, ballot(4, to), 12};
	m = add(s, OPX_MSG_PROMISE, from, to); /* no log sync */
	m->u.promise.n = ballot(5, from);
	m->u.promise.n_accepted = ballot(4, to);
	m->u.promise.decided_idx = 9;
	m->u.promise.accepted_idx = UINT64_MAX;
	m = add(s, OPX_MSG_PROMISE, from, to); /* log sync: suffix only */
	m->u.promise.n = ballot(5, from);
	m->u.promise.has_log_sync = true;
	m->u.promise.log_sync.suffix = s->entries;
	m->u.promise.log_sync.n_suffix = 4;
	m->u.promise.log_sync.sync_idx = 7;
	m = add(s, OPX_MSG_ACCEPT_SYNC, from, to); /* complete snapshot, suffix, stop-sign */
	m->u.accept_sync.n = ballot(6, from);
	m->u.accept_sync.seq = (struct opx_seq){3, 1};
	m->u.accept_sync.decided_idx = 100;
	m->u.accept_sync.log_sync = (struct opx_log_sync){
		OPX_SNAPSHOT_COMPLETE, s->snapshot, sizeof(s->snapshot), s->entries, 2, 90,
		&s->ss_small};
	m = add(s, OPX_MSG_ACCEPT_SYNC, from, to); /* delta snapshot, nothing else */
	m->u.accept_sync.n = ballot(6, from);
	m->u.accept_sync.log_sync.snapshot_kind = OPX_SNAPSHOT_DELTA;
	m->u.accept_sync.log_sync.snapshot = s->snapshot;
	m->u.accept_sync.log_sync.snapshot_len = 3;
	m = add(s, OPX_MSG_ACCEPT_SYNC, from, to); /* empty log sync */
	m->u.accept_sync.n = ballot(6, from);
	m = add(s, OPX_MSG_ACCEPT_DECIDE, from, to); /* no entries: a pure decide piggy-back */
	m->u.accept_decide.n = ballot(6, from);
	m->u.accept_decide.seq = (struct opx_seq){3, 2};
	m->u.accept_decide.decided_idx = 101;
	m = add(s, OPX_MSG_ACCEPT_DECIDE, from, to);
	m->u.accept_decide.n = ballot(6, from);
	m->u.accept_decide.seq = (struct opx_seq){3, 3};
	m->u.accept_decide.decided_idx = 102;
	m->u.accept_decide.entries = s->entries;
	m->u.accept_decide.n_entries = 4;
	m = add(s, OPX_MSG_ACCEPTED, from, to);
	m->u.accepted = (struct opx_msg_accepted){ballot(6, to), 104};
	m = add(s, OPX_MSG_DECIDE, from, to);
	m->u.decide = (struct opx_msg_decide){ballot(6, from), {3, 4}, 104};
	m = add(s, OPX_MSG_NOT_ACCEPTED, from, to);
	m->u.not_accepted.n = ballot(9, to);
	m = add(s, OPX_MSG_PROPOSAL_FORWARD, from, to);
	m->u.proposal_forward.entries = s->entries + 1;
	m->u.proposal_forward.n_entries = 3;
	m = add(s, OPX_MSG_PROPOSAL_FORWARD, from, to); /* empty */
	m = add(s, OPX_MSG_COMPACTION, from, to);
	m->u.compaction = (struct opx_msg_compaction){OPX_COMPACTION_TRIM, true, 55};
	m = add(s, OPX_MSG_COMPACTION, from, to);
	m->u.compaction = (struct opx_msg_compaction){OPX_COMPACTION_SNAPSHOT, true, 56};
	m = add(s, OPX_MSG_COMPACTION, from, to);
	m->u.compaction = (struct opx_msg_compaction){OPX_COMPACTION_SNAPSHOT, false, 0};
	m = add(s, OPX_MSG_ACCEPT_STOPSIGN, from, to);
	m->u.accept_stopsign.n = ballot(6, from);
	m->u.accept_stopsign.seq = (struct opx_seq){3, 5};
	m->u.accept_stopsign.ss = &s->ss_full;
	m = add(s, OPX_MSG_FORWARD_STOPSIGN, from, to);
	m->u.forward_stopsign.ss = &s->ss_small;
}

static bool bytes_eq(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool entries_eq(const struct opx_entry *a, uint32_t na, const struct opx_entry *b,
		       uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++)
		if (!bytes_eq(a[i].data, a[i].len, b[i].data, b[i].len))
			return false;
	return true;
}

static bool ballot_eq(const struct opx_ballot *a, const struct opx_ballot *b)
{
	return a->config_id == b->config_id && a->n == b->n && a->priority == b->priority &&
	       a->pid == b->pid;
}

static bool seq_eq(const struct opx_seq *a, const struct opx_seq *b)
{
	return a->session == b->session && a->counter == b->counter;
}

static bool ss_eq(const struct opx_stopsign *a, const struct opx_stopsign *b)
{
	if (!a || !b)
		return a == b;
	const struct opx_cluster_config *x = &a->next, *y = &b->next;
	if (x->config_id != y->config_id || x->n_nodes != y->n_nodes ||
	    x->read_quorum != y->read_quorum || x->write_quorum != y->write_quorum)
		return false;
	for (uint32_t i = 0; i < x->n_nodes; i++)
		if (x->nodes[i] != y->nodes[i])
			return false;
	return bytes_eq(a->metadata, a->metadata_len, b->metadata, b->metadata_len);
}

static bool sync_eq(const struct opx_log_sync *a, const struct opx_log_sync *b)
{
	return a->snapshot_kind == b->snapshot_kind &&
	       bytes_eq(a->snapshot, a->snapshot_len, b->snapshot, b->snapshot_len) &&
	       entries_eq(a->suffix, a->n_suffix, b->suffix, b->n_suffix) &&
	       a->sync_idx == b->sync_idx && ss_eq(a->stopsign, b->stopsign);
}

bool samples_msg_equal(const struct opx_msg *a, const struct opx_msg *b)
{
	if (a->type != b->type || a->from != b->from || a->to != b->to ||
	    a->config_id != b->config_id)
		return false;
	switch (a->type) {
	case OPX_MSG_HB_REQUEST:
		return a->u.hb_request.round == b->u.hb_request.round;
	case OPX_MSG_HB_REPLY:
		return a->u.hb_reply.round == b->u.hb_reply.round &&
		       ballot_eq(&a->u.hb_reply.ballot, &b->u.hb_reply.ballot) &&
		       ballot_eq(&a->u.hb_reply.leader, &b->u.hb_reply.leader) &&
		       a->u.hb_reply.happy == b->u.hb_reply.happy;
	case OPX_MSG_PREPARE_REQ:
		return ballot_eq(&a->u.prepare_req.n, &b->u.prepare_req.n);
	case OPX_MSG_PREPARE:
		return ballot_eq(&a->u.prepare.n, &b->u.prepare.n) &&
		       a->u.prepare.decided_idx == b->u.prepare.decided_idx &&
		       ballot_eq(&a->u.prepare.n_accepted, &b->u.prepare.n_accepted) &&
		       a->u.prepare.accepted_idx == b->u.prepare.accepted_idx;
	case OPX_MSG_PROMISE: {
		const struct opx_msg_promise *x = &a->u.promise, *y = &b->u.promise;
		return ballot_eq(&x->n, &y->n) && ballot_eq(&x->n_accepted, &y->n_accepted) &&
		       x->decided_idx == y->decided_idx && x->accepted_idx == y->accepted_idx &&
		       x->has_log_sync == y->has_log_sync &&
		       (!x->has_log_sync || sync_eq(&x->log_sync, &y->log_sync));
	}
	case OPX_MSG_ACCEPT_SYNC: {
		const struct opx_msg_accept_sync *x = &a->u.accept_sync, *y = &b->u.accept_sync;
		return ballot_eq(&x->n, &y->n) && seq_eq(&x->seq, &y->seq) &&
		       x->decided_idx == y->decided_idx && sync_eq(&x->log_sync, &y->log_sync);
	}
	case OPX_MSG_ACCEPT_DECIDE: {
		const struct opx_msg_accept_decide *x = &a->u.accept_decide,
						   *y = &b->u.accept_decide;
		return ballot_eq(&x->n, &y->n) && seq_eq(&x->seq, &y->seq) &&
		       x->decided_idx == y->decided_idx &&
		       entries_eq(x->entries, x->n_entries, y->entries, y->n_entries);
	}
	case OPX_MSG_ACCEPTED:
		return ballot_eq(&a->u.accepted.n, &b->u.accepted.n) &&
		       a->u.accepted.accepted_idx == b->u.accepted.accepted_idx;
	case OPX_MSG_DECIDE:
		return ballot_eq(&a->u.decide.n, &b->u.decide.n) &&
		       seq_eq(&a->u.decide.seq, &b->u.decide.seq) &&
		       a->u.decide.decided_idx == b->u.decide.decided_idx;
	case OPX_MSG_NOT_ACCEPTED:
		return ballot_eq(&a->u.not_accepted.n, &b->u.not_accepted.n);
	case OPX_MSG_PROPOSAL_FORWARD:
		return entries_eq(a->u.proposal_forward.entries, a->u.proposal_forward.n_entries,
				  b->u.proposal_forward.entries, b->u.proposal_forward.n_entries);
	case OPX_MSG_COMPACTION:
		return a->u.compaction.kind == b->u.compaction.kind &&
		       a->u.compaction.has_idx == b->u.compaction.has_idx &&
		       a->u.compaction.idx == b->u.compaction.idx;
	case OPX_MSG_ACCEPT_STOPSIGN:
		return ballot_eq(&a->u.accept_stopsign.n, &b->u.accept_stopsign.n) &&
		       seq_eq(&a->u.accept_stopsign.seq, &b->u.accept_stopsign.seq) &&
		       ss_eq(a->u.accept_stopsign.ss, b->u.accept_stopsign.ss);
	case OPX_MSG_FORWARD_STOPSIGN:
		return ss_eq(a->u.forward_stopsign.ss, b->u.forward_stopsign.ss);
	}
	return false;
}
