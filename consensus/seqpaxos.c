/*
 * Sequence Paxos, the parts both roles share (port of
 * omnipaxos/src/sequence_paxos/mod.rs and storage/internal_storage.rs):
 * the cache of the persistent state and every storage transaction, log
 * synchronisation (create_log_sync / sync_log, spec §5.6), compaction
 * (§7), Prepare handling (any role may be asked to follow a higher ballot)
 * and reconnection.
 *
 * Every write goes through px_write: the cache is updated only after the
 * write succeeded, and a failed write stops the instance (fail-stop), so
 * the cache never claims what storage does not hold. One exception: a new
 * decided index is not a write of its own (sp_set_decided); it rides in
 * front of the next write, or goes alone at the next tick
 * (sp_store_decided). Safety never rests on a node remembering what was
 * decided, so a crash that loses it costs nothing but a lower decided
 * index after the restart, as a lost unsynced write of it always did; and
 * a decision is one write fewer, on the leader and on every follower.
 */
#include "omnipaxos_int.h"

#include <assert.h>

uint32_t px_slot(const struct opx *px, opx_node_id pid)
{
	for (uint32_t i = 0; i < px_n(px); i++)
		if (px->cfg.cluster.nodes[i] == pid)
			return i;
	return SLOT_NONE;
}

bool px_prepare_quorum(const struct opx *px, uint32_t k)
{
	return k >= px->read_q;
}

bool px_accept_quorum(const struct opx *px, uint32_t k)
{
	return k >= px->write_q;
}

bool ballot_is_zero(const struct opx_ballot *b)
{
	return b->n == 0 && b->priority == 0 && b->pid == 0 && b->config_id == 0;
}

bool px_ss_decided(const struct opx *px)
{
	return px->ss && px->decided_idx == px->accepted_idx;
}

uint64_t px_log_end(const struct opx *px)
{
	return px->accepted_idx - (px->ss ? 1 : 0);
}

/* Debug builds: a write never takes the promise, the accepted round or the
 * decided or compacted index back, and never compacts past what is decided
 * (after this write). The cache is not updated yet: it holds the old values. */
static void assert_write_goes_forward(const struct opx *px, const struct opx_storage_op *ops,
				      size_t n)
{
#ifndef NDEBUG
	uint64_t decided = px->decided_idx;
	for (size_t i = 0; i < n; i++)
		if (ops[i].type == OPX_OP_SET_DECIDED_IDX) {
			assert(ops[i].u.idx >= px->decided_idx);
			decided = ops[i].u.idx;
		}
	for (size_t i = 0; i < n; i++) {
		const struct opx_storage_op *op = &ops[i];
		if (op->type == OPX_OP_SET_PROMISE)
			assert(opx_ballot_cmp(&op->u.ballot, &px->promise) >= 0);
		if (op->type == OPX_OP_SET_ACCEPTED_ROUND)
			assert(opx_ballot_cmp(&op->u.ballot, &px->accepted_round) >= 0);
		if (op->type == OPX_OP_SET_COMPACTED_IDX)
			assert(op->u.idx >= px->compacted_idx && op->u.idx <= decided);
		if (op->type == OPX_OP_TRIM)
			assert(op->u.idx <= decided);
	}
#else
	(void)px, (void)ops, (void)n;
#endif
}

int px_sync(struct opx *px)
{
	if (px->failed)
		return -EIO;
	if (!px->unsynced)
		return 0;
	if (px->st.ops->sync(px->st.impl)) {
		px->failed = true;
		return -EIO;
	}
	px->unsynced = false;
	return 0;
}

/* The most ops any caller writes at once, plus the decided index in front. */
#define PX__MAX_OPS 8

/*
 * Writes ops in one atomic write, with the decided index in front of them
 * if it moved since the last write that carried it: every entry it covers
 * was durable before it moved (sp_set_decided), so it may ride with any
 * write, synced or not.
 */
static int write_ops(struct opx *px, const struct opx_storage_op *ops, size_t n, bool unsynced)
{
	struct opx_storage_op all[PX__MAX_OPS + 1];
	assert(n <= PX__MAX_OPS);
	size_t k = 0;
	if (px->decided_idx > px->stored_decided_idx)
		all[k++] = (struct opx_storage_op){.type = OPX_OP_SET_DECIDED_IDX,
						   .u.idx = px->decided_idx};
	for (size_t i = 0; i < n; i++)
		all[k++] = ops[i];
	assert_write_goes_forward(px, all, k);
	int rc = unsynced ? px->st.ops->write_unsynced(px->st.impl, all, k)
			  : px->st.ops->write_atomically(px->st.impl, all, k);
	if (rc) {
		px->failed = true;
		return -EIO;
	}
	for (size_t i = 0; i < k; i++)
		if (all[i].type == OPX_OP_SET_DECIDED_IDX && all[i].u.idx > px->stored_decided_idx)
			px->stored_decided_idx = all[i].u.idx;
	return 0;
}

/* Every synced write comes after the unsynced append is durable: a promise
 * or a log sync never rests on entries a crash may lose, whatever order the
 * storage keeps its writes in. */
int px_write(struct opx *px, const struct opx_storage_op *ops, size_t n)
{
	int rc = px_sync(px);
	if (rc)
		return rc;
	return write_ops(px, ops, n, false);
}

/* The leader's append under sync_after_send: earlier writes are synced
 * already (each px_write syncs first), this one waits for px_sync. */
static int px_write_unsynced(struct opx *px, const struct opx_storage_op *ops, size_t n)
{
	if (px->failed)
		return -EIO;
	int rc = write_ops(px, ops, n, true);
	if (rc == 0)
		px->unsynced = true;
	return rc;
}

bool sp_valid_cluster(const struct opx_cluster_config *c, char *err, size_t err_len)
{
	const char *why = NULL;
	if (c->config_id == 0)
		why = "configuration id must be >= 1";
	else if (c->n_nodes < 1 || c->n_nodes > OPX_MAX_NODES)
		why = "a cluster needs 1..64 nodes";
	else if (c->read_quorum || c->write_quorum) {
		if (c->read_quorum + c->write_quorum <= c->n_nodes)
			why = "flexible quorum: read + write must exceed the node count";
		else if (c->write_quorum < 2 || c->read_quorum > c->n_nodes ||
			 c->read_quorum < c->write_quorum)
			why = "flexible quorum: need 2 <= write <= read <= nodes";
	}
	for (uint32_t i = 0; !why && i < c->n_nodes && i < OPX_MAX_NODES; i++) {
		if (c->nodes[i] == 0)
			why = "node id 0 is reserved";
		for (uint32_t j = 0; !why && j < i; j++)
			if (c->nodes[i] == c->nodes[j])
				why = "duplicate node id";
	}
	if (why && err && err_len) {
		size_t l = strlen(why);
		if (l >= err_len)
			l = err_len - 1;
		memcpy(err, why, l);
		err[l] = 0;
	}
	return !why;
}

bool sp_valid_stopsign(const struct opx_stopsign *ss)
{
	return ss->metadata_len <= OPX_MAX_METADATA_LEN && sp_valid_cluster(&ss->next, NULL, 0);
}

int sp_get_entries(struct opx *px, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	if (from >= to)
		return 0;
	if (from < px->compacted_idx || to > px_log_end(px))
		return -ENOENT;
	int rc = px->st.ops->get_entries(px->st.impl, from, to, out);
	if (rc) {
		/* a failed read frees the entries it copied, not the array */
		opx_entry_list_clear(out);
		return rc;
	}
	if (out->n != to - from) {
		opx_entry_list_clear(out);
		return -ENOENT;
	}
	return 0;
}

/* Writes the batch (spec §11). *flushed gets the written entries (an array
 * pointing into the batch buffer, both handed to the caller through
 * px->batch being detached) or NULL when the caller does not ask. unsynced:
 * the leader's append under sync_after_send (sp_leader_flush), written
 * without a sync and left for px_sync. */
int sp_flush_batch(struct opx *px, struct opx_entry **flushed, uint32_t *n_flushed, bool unsynced)
{
	if (flushed)
		*flushed = NULL;
	if (n_flushed)
		*n_flushed = 0;
	if (px->batch.n == 0)
		return 0;
	if (px->ss) {
		/* a stop-sign is the last entry: nothing may follow it */
		batch_reset(&px->batch);
		return 0;
	}
	struct opx_entry *e = batch_entries(&px->batch);
	if (!e)
		return -ENOMEM;
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
	op.u.append.entries = e;
	op.u.append.n = px->batch.n;
	int rc = unsynced && px->cfg.sync_after_send ? px_write_unsynced(px, &op, 1)
						     : px_write(px, &op, 1);
	if (rc) {
		free(e);
		return rc;
	}
	px->accepted_idx += px->batch.n;
	if (flushed) {
		*flushed = e;
		*n_flushed = px->batch.n;
		/* the caller takes the buffer: detach it */
		px->batch.buf = NULL;
		px->batch.cap = 0;
	} else {
		free(e);
	}
	batch_reset(&px->batch);
	return 0;
}

/* A decided index never rests on entries a crash may lose: an unsynced
 * append is synced before it moves (decide_alone relies on it). Its write
 * is left to the next one (write_ops) or the next tick (sp_store_decided). */
int sp_set_decided(struct opx *px, uint64_t idx)
{
	int rc = px_sync(px);
	if (!rc)
		px->decided_idx = idx;
	return rc;
}

int sp_store_decided(struct opx *px)
{
	if (px->decided_idx <= px->stored_decided_idx)
		return 0;
	return px_write(px, NULL, 0);
}

int sp_store_stopsign(struct opx *px, const struct opx_stopsign *ss)
{
	struct opx_stopsign *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = *ss;
	struct opx_storage_op op = {.type = OPX_OP_SET_STOPSIGN, .u.ss = c};
	int rc = px_write(px, &op, 1);
	if (rc) {
		free(c);
		return rc;
	}
	free(px->ss);
	px->ss = c;
	px->accepted_idx++;
	return 0;
}

/* A snapshot of the decided prefix [0, to): the stored snapshot merged with
 * entries [compacted, to). *out is malloc'd. */
int sp_make_snapshot(struct opx *px, uint64_t to, uint8_t **out, uint32_t *out_len)
{
	const struct opx_snapshot_ops *so = px->cfg.snapshot;
	uint8_t *base = NULL, *delta = NULL;
	uint32_t base_len = 0, delta_len = 0;
	int rc;
	if (so->create_counted) {
		/* The entries sp_get_entries would find, without reading them. */
		uint64_t from = px->compacted_idx;
		uint64_t n = to > from ? to - from : 0;
		if (n && to > px_log_end(px))
			return -ENOENT;
		if (n > UINT32_MAX)
			return -ERANGE;
		rc = so->create_counted(px->cfg.snapshot_ctx, from, (uint32_t)n, &delta,
					&delta_len);
	} else {
		struct opx_entry_list l = {0};
		rc = sp_get_entries(px, px->compacted_idx, to, &l);
		if (rc)
			return rc;
		rc = so->create(px->cfg.snapshot_ctx, l.entries, l.n, &delta, &delta_len);
		opx_entry_list_clear(&l);
	}
	if (rc)
		return rc;
	if (px->has_snapshot) {
		rc = px->st.ops->get_snapshot(px->st.impl, &base, &base_len);
		if (rc) {
			free(delta);
			return rc;
		}
	}
	if (!base) {
		*out = delta;
		*out_len = delta_len;
		return 0;
	}
	rc = so->merge(px->cfg.snapshot_ctx, base, base_len, delta, delta_len, out, out_len);
	free(base);
	free(delta);
	return rc;
}

/* Spec §5.6 create_log_sync. Fills t (free with sp_lsync_free). */
int sp_create_log_sync(struct opx *px, uint64_t common_prefix, uint64_t other_decided,
		       uint64_t other_acc, struct lsync_tmp *t)
{
	memset(t, 0, sizeof(*t));
	uint64_t log_end = px_log_end(px);
	int rc;
	/* Snapshots replace decided entries in a sync (spec §5.6), unless the
	 * application asked to ship entries whenever they are still stored. */
	bool use_snapshot =
		px->cfg.snapshot && px->decided_idx > common_prefix &&
		(!px->cfg.snapshot_only_when_compacted || common_prefix < px->compacted_idx);
	if (use_snapshot) {
		/* Deliberately always Complete, never Delta: a Delta is only right
		 * on top of the receiver's state at exactly other_decided, and a
		 * duplicated or delayed Promise makes the sender believe an old
		 * value; merging a delta onto the wrong base corrupts the
		 * application state silently. A Complete snapshot has no base. */
		uint64_t d = px->decided_idx - (px_ss_decided(px) ? 1 : 0);
		uint64_t c = px->compacted_idx;
		(void)other_decided;
		if (c < d) {
			if (c > 0 && !px->has_snapshot)
				rc = -ENOENT; /* trimmed without a snapshot: no base */
			else
				rc = sp_make_snapshot(px, d, &t->snap, &t->ls.snapshot_len);
		} else if (px->has_snapshot) {
			rc = px->st.ops->get_snapshot(px->st.impl, &t->snap, &t->ls.snapshot_len);
		} else {
			rc = c > 0 ? -ENOENT : 0;
		}
		if (rc)
			goto fail;
		if (t->snap)
			t->ls.snapshot_kind = OPX_SNAPSHOT_COMPLETE;
		t->ls.snapshot = t->snap;
		t->ls.sync_idx = d;
	} else {
		if (common_prefix > log_end)
			common_prefix = log_end;
		/* Without snapshots a prefix below my compacted index cannot be
		 * sent. Trimming needs every member to have accepted up to the
		 * trim index, and those entries are decided, so a log at least
		 * that long already holds them: sync from there. */
		if (common_prefix < px->compacted_idx && other_acc >= px->compacted_idx)
			common_prefix = px->compacted_idx;
		t->ls.sync_idx = common_prefix;
	}
	rc = sp_get_entries(px, t->ls.sync_idx, log_end, &t->ents);
	if (rc)
		goto fail;
	t->ls.suffix = t->ents.entries;
	t->ls.n_suffix = t->ents.n;
	t->ls.stopsign = px->ss;
	return 0;
fail:
	sp_lsync_free(t);
	return rc;
}

void sp_lsync_free(struct lsync_tmp *t)
{
	opx_entry_list_clear(&t->ents);
	free(t->snap);
	memset(t, 0, sizeof(*t));
}

/*
 * Spec §5.6 sync_log: one atomic transaction installing accepted_round,
 * decided index and ls. Returns -EBADMSG, changing nothing, when ls cannot
 * be installed safely: it would leave a hole, shrink a log already synced in
 * this round (a stale duplicate), or drop decided entries.
 */
int sp_sync_log(struct opx *px, const struct opx_ballot *acc_round, uint64_t decided,
		const struct opx_log_sync *ls, uint64_t *new_acc)
{
	struct opx_storage_op ops[8];
	size_t n = 0;
	uint8_t *snap = NULL;
	uint32_t snap_len = 0;
	uint64_t acc = px->accepted_idx, compacted = px->compacted_idx;
	bool set_snap = false, drop_ss = false;
	const struct opx_stopsign *new_ss = px->ss;
	int rc = 0;

	if (ls) {
		if (ls->sync_idx > UINT64_MAX / 2 || ls->n_suffix > UINT32_MAX / 2)
			return -EBADMSG;
		acc = ls->sync_idx + ls->n_suffix + (ls->stopsign ? 1 : 0);
		if (ls->snapshot_kind == OPX_SNAPSHOT_NONE) {
			if (ls->sync_idx > px_log_end(px) || ls->sync_idx < px->compacted_idx)
				return -EBADMSG; /* would leave a hole */
		} else if (ls->sync_idx < px->compacted_idx || !px->cfg.snapshot) {
			return -EBADMSG;
		}
		if (opx_ballot_eq(acc_round, &px->accepted_round) && acc < px->accepted_idx)
			return -EBADMSG; /* stale: this round's log only grows */
		if (acc < px->decided_idx)
			return -EBADMSG;
	}
	uint64_t dec = decided < acc ? decided : acc;
	if (dec < px->decided_idx)
		dec = px->decided_idx;
	/* A snapshot only ever holds decided entries: whoever sent one had
	 * decided up to its index, even if the decided index that came with
	 * it is older (a Promise that was recorded before a PrepareReq reset
	 * the promiser's state). */
	if (ls && ls->snapshot_kind != OPX_SNAPSHOT_NONE && dec < ls->sync_idx)
		dec = ls->sync_idx;

	if (ls && ls->snapshot_kind == OPX_SNAPSHOT_COMPLETE) {
		snap = (uint8_t *)ls->snapshot;
		snap_len = ls->snapshot_len;
		set_snap = true;
	} else if (ls && ls->snapshot_kind == OPX_SNAPSHOT_DELTA) {
		/* [PITFALL §5.6] build my part from my *old* decided index: the
		 * delta starts exactly there. */
		uint8_t *mine = NULL;
		uint32_t mine_len = 0;
		if (px->compacted_idx > 0 && !px->has_snapshot)
			return -EBADMSG; /* trimmed without a snapshot: no base */
		rc = sp_make_snapshot(px, px->decided_idx, &mine, &mine_len);
		if (rc)
			return rc == -ENOENT ? -EBADMSG : rc;
		rc = px->cfg.snapshot->merge(px->cfg.snapshot_ctx, mine, mine_len, ls->snapshot,
					     ls->snapshot_len, &snap, &snap_len);
		free(mine);
		if (rc)
			return rc;
		set_snap = true;
	}
	ops[n].type = OPX_OP_SET_ACCEPTED_ROUND;
	ops[n++].u.ballot = *acc_round;
	ops[n].type = OPX_OP_SET_DECIDED_IDX;
	ops[n++].u.idx = dec;
	if (ls) {
		if (set_snap) {
			ops[n].type = OPX_OP_TRIM;
			ops[n++].u.idx = ls->sync_idx;
			ops[n].type = OPX_OP_SET_COMPACTED_IDX;
			ops[n++].u.idx = ls->sync_idx;
			ops[n].type = OPX_OP_SET_SNAPSHOT;
			ops[n].u.snapshot.data = snap;
			ops[n++].u.snapshot.len = snap_len;
			compacted = ls->sync_idx;
		}
		ops[n].type = OPX_OP_APPEND_ON_PREFIX;
		ops[n].u.append.from_idx = ls->sync_idx;
		ops[n].u.append.entries = ls->suffix;
		ops[n++].u.append.n = ls->n_suffix;
		if (ls->stopsign) {
			ops[n].type = OPX_OP_SET_STOPSIGN;
			ops[n++].u.ss = ls->stopsign;
			new_ss = ls->stopsign;
		} else if (px->ss) {
			ops[n].type = OPX_OP_SET_STOPSIGN;
			ops[n++].u.ss = NULL;
			drop_ss = true;
			new_ss = NULL;
		}
	}
	struct opx_stopsign *ss_copy = NULL;
	if (new_ss && new_ss != px->ss) {
		ss_copy = malloc(sizeof(*ss_copy));
		if (!ss_copy) {
			rc = -ENOMEM;
			goto out;
		}
		*ss_copy = *new_ss;
	}
	rc = px_write(px, ops, n);
	if (rc) {
		free(ss_copy);
		goto out;
	}
	px->accepted_round = *acc_round;
	px->decided_idx = dec;
	px->accepted_idx = acc;
	px->compacted_idx = compacted;
	if (set_snap)
		px->has_snapshot = true;
	if (ss_copy || drop_ss) {
		free(px->ss);
		px->ss = ss_copy;
	}
	*new_acc = acc;
out:
	if (ls && ls->snapshot_kind == OPX_SNAPSHOT_DELTA)
		free(snap);
	return rc;
}

/* Spec §7.3 try_trim. */
int sp_try_trim(struct opx *px, uint64_t idx)
{
	uint64_t d = px->decided_idx;
	if (idx > d)
		return -ERANGE;
	uint64_t target = idx < d ? idx : d - (px_ss_decided(px) ? 1 : 0);
	if (target <= px->compacted_idx)
		return 0;
	/* The stored snapshot (if any) would cover less than the compacted
	 * prefix after this: drop it, so readers see Trimmed, not a wrong
	 * Snapshotted. */
	struct opx_storage_op ops[3] = {
		{.type = OPX_OP_TRIM, .u.idx = target},
		{.type = OPX_OP_SET_COMPACTED_IDX, .u.idx = target},
		{.type = OPX_OP_SET_SNAPSHOT},
	};
	int rc = px_write(px, ops, px->has_snapshot ? 3 : 2);
	if (rc)
		return rc;
	px->compacted_idx = target;
	px->has_snapshot = false;
	return 0;
}

/* Spec §7.2, the local part. */
int sp_snapshot(struct opx *px, bool has_idx, uint64_t idx)
{
	if (!px->cfg.snapshot)
		return -ENOTSUP;
	uint64_t d = px->decided_idx;
	uint64_t dl = d - (px_ss_decided(px) ? 1 : 0);
	uint64_t target = dl;
	if (has_idx) {
		if (idx > d)
			return -ERANGE;
		target = idx < d ? idx : dl;
	}
	if (target <= px->compacted_idx)
		return 0;
	uint8_t *snap = NULL;
	uint32_t snap_len = 0;
	int rc = sp_make_snapshot(px, target, &snap, &snap_len);
	if (rc)
		return rc;
	struct opx_storage_op ops[3] = {
		{.type = OPX_OP_TRIM, .u.idx = target},
		{.type = OPX_OP_SET_COMPACTED_IDX, .u.idx = target},
		{.type = OPX_OP_SET_SNAPSHOT, .u.snapshot = {snap, snap_len}},
	};
	rc = px_write(px, ops, 3);
	free(snap);
	if (rc)
		return rc;
	px->compacted_idx = target;
	px->has_snapshot = true;
	return 0;
}

void sp_send_prepare_req(struct opx *px, opx_node_id to)
{
	struct opx_msg *m = out_push(px, &px->out_sp, to, OPX_MSG_PREPARE_REQ);
	if (m)
		m->u.prepare_req.n = px->promise;
}

/* Spec §5.5 reconnected. */
void sp_reconnected(struct opx *px, opx_node_id pid)
{
	if (pid == px->cfg.pid || px_slot(px, pid) == SLOT_NONE)
		return;
	if (pid == px->promise.pid && px->role == OPX_ROLE_FOLLOWER)
		px->phase = OPX_PHASE_RECOVER;
	sp_send_prepare_req(px, pid);
}

/* Forwards proposals (and a stop-sign) buffered while no leader was known
 * to the leader this node follows ([PITFALL §5.5]: the stop-sign too). */
int sp_forward_buffered(struct opx *px)
{
	opx_node_id to = px->promise.pid;
	if (px->ss) {
		batch_reset(&px->buffered);
		free(px->buffered_ss);
		px->buffered_ss = NULL;
		return 0;
	}
	if (to == 0 || to == px->cfg.pid)
		return 0;
	if (px->buffered.n) {
		struct opx_entry *e = batch_entries(&px->buffered);
		if (!e)
			return -ENOMEM;
		struct opx_msg m = {.from = px->cfg.pid,
				    .to = to,
				    .config_id = px->cfg.cluster.config_id,
				    .type = OPX_MSG_PROPOSAL_FORWARD};
		m.u.proposal_forward.entries = e;
		m.u.proposal_forward.n_entries = px->buffered.n;
		out_push_dup(px, &m);
		free(e);
		batch_reset(&px->buffered);
	}
	if (px->buffered_ss) {
		struct opx_msg m = {.from = px->cfg.pid,
				    .to = to,
				    .config_id = px->cfg.cluster.config_id,
				    .type = OPX_MSG_FORWARD_STOPSIGN};
		m.u.forward_stopsign.ss = px->buffered_ss;
		out_push_dup(px, &m);
		free(px->buffered_ss);
		px->buffered_ss = NULL;
	}
	return 0;
}

/* Spec §5.5 handle_prepare; any role. */
int sp_handle_prepare(struct opx *px, uint32_t from, const struct opx_msg *m)
{
	const struct opx_msg_prepare *p = &m->u.prepare;
	int c = opx_ballot_cmp(&px->promise, &p->n);
	/* Beyond the reference, a follower also re-promises the ballot it
	 * follows when in Accept: its leader sends Prepare only to nodes it
	 * believes unpromised (e.g. after a duplicated PrepareReq), and would
	 * otherwise never replicate to this node again. */
	if (!(c < 0 || (c == 0 && px->role == OPX_ROLE_FOLLOWER && px->phase != OPX_PHASE_NONE)))
		return 0;
	if (p->decided_idx > p->accepted_idx) {
		px->dropped++;
		return 0;
	}
	/* A leader replicates what it flushes: if it then does not promise
	 * (no memory for the log sync below), it goes on leading, and entries
	 * in its log that no AcceptDecide numbered would put its followers'
	 * next batch at the wrong index. */
	bool leading = px->role == OPX_ROLE_LEADER && px->phase == OPX_PHASE_ACCEPT;
	int rc = leading ? sp_leader_flush(px) : sp_flush_batch(px, NULL, NULL, false);
	if (rc)
		return rc;
	/* What to tell the new leader, decided before promising: if this node
	 * cannot build it, it does not promise (liveness, not safety). */
	struct lsync_tmp t;
	bool has_ls = false;
	if (opx_ballot_cmp(&px->accepted_round, &p->n_accepted) > 0) {
		rc = sp_create_log_sync(px, p->decided_idx, p->decided_idx, p->accepted_idx, &t);
		has_ls = true;
	} else if (opx_ballot_eq(&px->accepted_round, &p->n_accepted) &&
		   px->accepted_idx > p->accepted_idx) {
		rc = sp_create_log_sync(px, p->accepted_idx, p->decided_idx, p->accepted_idx, &t);
		has_ls = true;
	}
	if (rc) {
		px->dropped++;
		return rc == -ENOENT ? 0 : rc;
	}
	struct opx_storage_op op = {.type = OPX_OP_SET_PROMISE, .u.ballot = p->n};
	rc = px_write(px, &op, 1);
	if (rc)
		goto out;
	px->promise = p->n;
	px->role = OPX_ROLE_FOLLOWER;
	px->phase = OPX_PHASE_PREPARE;
	px->cur_seq = (struct opx_seq){0, 0};
	struct opx_msg pm = {.from = px->cfg.pid,
			     .to = px->cfg.cluster.nodes[from],
			     .config_id = px->cfg.cluster.config_id,
			     .type = OPX_MSG_PROMISE};
	pm.u.promise.n = p->n;
	pm.u.promise.n_accepted = px->accepted_round;
	pm.u.promise.decided_idx = px->decided_idx;
	pm.u.promise.accepted_idx = px->accepted_idx;
	pm.u.promise.has_log_sync = has_ls;
	if (has_ls)
		pm.u.promise.log_sync = t.ls;
	free(px->cached_promise);
	px->cached_promise = opx_msg_dup(&pm);
	out_push_dup(px, &pm);
out:
	if (has_ls)
		sp_lsync_free(&t);
	return rc;
}
