/*
 * The public API of the OmniPaxos core (omnipaxos.h), a port of
 * omnipaxos/src/omni_paxos.rs: configuration checks, recovery from storage,
 * validation and dispatch of incoming messages, the three logical clocks,
 * the outbox hand-over, proposals, compaction, reconfiguration and reads.
 *
 * It validates everything that comes from outside (config, messages) and
 * counts what it drops; protocol logic lives in ble.c and seqpaxos*.c.
 */
#include "omnipaxos_int.h"

#include <assert.h>

static void set_err(char *err, size_t err_len, const char *why)
{
	if (!err || !err_len)
		return;
	size_t l = strlen(why);
	if (l >= err_len)
		l = err_len - 1;
	memcpy(err, why, l);
	err[l] = 0;
}

/*
 * The core's own invariants, checked at the end of every public call that may
 * change its state; storage writes are checked in px_write before they
 * happen. Compiled out with NDEBUG only (the release build keeps asserts:
 * about ten integer and ballot comparisons per call, lost in the noise of
 * bench-consensus). Nothing here comes from outside: messages and the loaded
 * state are validated (opx_new refuses contradicting indexes), never asserted.
 */
static void invariants(struct opx *px)
{
#ifndef NDEBUG
	if (px->failed)
		return; /* stopped mid-call: the cache may be half updated, and is dead */
	assert(px->compacted_idx <= px->decided_idx);
	assert(px->decided_idx <= px->accepted_idx);
	assert(px->decided_idx >= px->inv_decided_idx);
	assert(opx_ballot_cmp(&px->promise, &px->inv_promise) >= 0);
	assert(opx_ballot_cmp(&px->accepted_round, &px->inv_accepted_round) >= 0);
	assert(opx_ballot_cmp(&px->accepted_round, &px->promise) <= 0);
	assert(px->role != OPX_ROLE_LEADER ||
	       (opx_ballot_eq(&px->n_leader, &px->promise) && px->n_leader.pid == px->cfg.pid));
#endif
	px->inv_decided_idx = px->decided_idx;
	px->inv_promise = px->promise;
	px->inv_accepted_round = px->accepted_round;
}

int opx_config_validate(const struct opx_config *cfg, char *err, size_t err_len)
{
	if (!sp_valid_cluster(&cfg->cluster, err, err_len))
		return -EINVAL;
	const char *why = NULL;
	bool member = false;
	for (uint32_t i = 0; i < cfg->cluster.n_nodes; i++)
		if (cfg->cluster.nodes[i] == cfg->pid)
			member = true;
	if (cfg->pid == 0)
		why = "pid must be >= 1";
	else if (!member)
		why = "pid is not one of the cluster's nodes";
	else if (cfg->election_ticks == 0)
		why = "election_ticks must be >= 1";
	else if (cfg->resend_ticks == 0)
		why = "resend_ticks must be >= 1";
	else if (cfg->flush_ticks == 0)
		why = "flush_ticks must be >= 1";
	else if (cfg->batch_size == 0)
		why = "batch_size must be >= 1";
	else if (cfg->snapshot && (!cfg->snapshot->create || !cfg->snapshot->merge))
		why = "snapshot ops need create and merge";
	if (why) {
		set_err(err, err_len, why);
		return -EINVAL;
	}
	return 0;
}

int opx_new(struct opx **out, const struct opx_config *cfg, struct opx_storage st, char *err,
	    size_t err_len)
{
	*out = NULL;
	int rc = opx_config_validate(cfg, err, err_len);
	if (rc)
		return rc;
	if (!st.ops || st.ops->version != OPX_STORAGE_VERSION) {
		set_err(err, err_len, "storage: unsupported vtable version");
		return -EINVAL;
	}
	if (cfg->sync_after_send && (!st.ops->write_unsynced || !st.ops->sync)) {
		set_err(err, err_len, "sync_after_send: the storage cannot defer syncs");
		return -EINVAL;
	}
	struct opx *px = calloc(1, sizeof(*px));
	struct opx_storage_state *s = malloc(sizeof(*s));
	if (!px || !s) {
		free(px);
		free(s);
		set_err(err, err_len, "out of memory");
		return -ENOMEM;
	}
	px->cfg = *cfg;
	px->st = st;
	px->me = px_slot(px, cfg->pid);
	uint32_t n = cfg->cluster.n_nodes;
	px->read_q = cfg->cluster.read_quorum ? cfg->cluster.read_quorum : n / 2 + 1;
	px->write_q = cfg->cluster.write_quorum ? cfg->cluster.write_quorum : n / 2 + 1;

	memset(s, 0, sizeof(*s));
	rc = st.ops->load(st.impl, s);
	if (rc || s->compacted_idx > s->log_end || s->compacted_idx > s->decided_idx ||
	    s->decided_idx > s->log_end + (s->has_stopsign ? 1 : 0)) {
		set_err(err, err_len,
			rc ? "storage: load failed" : "storage: inconsistent indexes");
		rc = rc ? -EIO : -EIO;
		goto fail;
	}
	px->promise = s->has_promise ? s->promise : (struct opx_ballot){0};
	px->accepted_round = s->has_accepted_round ? s->accepted_round : (struct opx_ballot){0};
	px->decided_idx = s->decided_idx;
	px->stored_decided_idx = s->decided_idx;
	px->compacted_idx = s->compacted_idx;
	px->has_snapshot = s->has_snapshot;
	px->accepted_idx = s->log_end + (s->has_stopsign ? 1 : 0);
	if (s->has_stopsign) {
		px->ss = malloc(sizeof(*px->ss));
		if (!px->ss) {
			rc = -ENOMEM;
			set_err(err, err_len, "out of memory");
			goto fail;
		}
		*px->ss = s->stopsign;
	}
	px->role = OPX_ROLE_FOLLOWER;
	ble_init(px, s->has_promise ? &s->promise : NULL);
	if (s->has_promise) {
		/* restart: re-sync with whoever leads now (spec §6.3) */
		px->phase = OPX_PHASE_RECOVER;
		px->n_leader = px->promise;
		for (uint32_t i = 0; i < n; i++)
			if (i != px->me)
				sp_send_prepare_req(px, cfg->cluster.nodes[i]);
	} else {
		px->phase = OPX_PHASE_NONE;
		struct opx_storage_op op = {.type = OPX_OP_SET_PROMISE, .u.ballot = px->promise};
		if (px_write(px, &op, 1)) {
			rc = -EIO;
			set_err(err, err_len, "storage: write failed");
			goto fail;
		}
	}
	ble_start_round(px);
	free(s);
	invariants(px);
	*out = px;
	return 0;
fail:
	free(s);
	opx_destroy(&px);
	return rc;
}

void opx_destroy(struct opx **pp)
{
	struct opx *px = *pp;
	if (!px)
		return;
	out_free(&px->out_sp);
	out_free(&px->out_ble);
	out_free(&px->taken);
	batch_free(&px->batch);
	batch_free(&px->buffered);
	free(px->ss);
	free(px->reconf_out);
	free(px->buffered_ss);
	free(px->cached_promise);
	free(px->max_promise);
	free(px);
	*pp = NULL;
}

static bool in_leader_phase(const struct opx *px, enum opx_phase ph)
{
	return px->role == OPX_ROLE_LEADER && px->phase == ph;
}

/* Proposals from the application or forwarded by a peer. */
static int propose(struct opx *px, const struct opx_entry *e, uint32_t n, bool forwarded)
{
	if (px->ss)
		return forwarded ? 0 : -ESHUTDOWN;
	if (in_leader_phase(px, OPX_PHASE_ACCEPT))
		return sp_leader_append(px, e, n);
	opx_node_id to = px->promise.pid;
	if (in_leader_phase(px, OPX_PHASE_PREPARE) || to == 0 || to == px->cfg.pid) {
		for (uint32_t i = 0; i < n; i++) {
			int rc = batch_push(&px->buffered, e[i].data, e[i].len);
			if (rc)
				return rc;
		}
		return 0;
	}
	struct opx_msg m = {.from = px->cfg.pid,
			    .to = to,
			    .config_id = px->cfg.cluster.config_id,
			    .type = OPX_MSG_PROPOSAL_FORWARD};
	m.u.proposal_forward.entries = e;
	m.u.proposal_forward.n_entries = n;
	if (!out_push_dup(px, &m))
		return -ENOMEM;
	return 0;
}

static int append(struct opx *px, const void *data, uint32_t len)
{
	if (px->failed)
		return -EIO;
	if (len > OPX_MAX_ENTRY_LEN)
		return -E2BIG;
	struct opx_entry e = {.data = data, .len = len};
	int rc = propose(px, &e, 1, false);
	return px->failed ? -EIO : rc;
}

int opx_append(struct opx *px, const void *data, uint32_t len)
{
	int rc = append(px, data, len);
	invariants(px);
	return rc;
}

static int propose_stopsign(struct opx *px, const struct opx_stopsign *ss, bool forwarded)
{
	if (px->ss)
		return forwarded ? 0 : -EALREADY;
	if (in_leader_phase(px, OPX_PHASE_ACCEPT))
		return sp_leader_accept_stopsign(px, ss);
	opx_node_id to = px->promise.pid;
	if (in_leader_phase(px, OPX_PHASE_PREPARE) || to == 0 || to == px->cfg.pid) {
		if (!px->buffered_ss) {
			px->buffered_ss = malloc(sizeof(*px->buffered_ss));
			if (!px->buffered_ss)
				return -ENOMEM;
			*px->buffered_ss = *ss;
		}
		return 0;
	}
	struct opx_msg m = {.from = px->cfg.pid,
			    .to = to,
			    .config_id = px->cfg.cluster.config_id,
			    .type = OPX_MSG_FORWARD_STOPSIGN};
	m.u.forward_stopsign.ss = ss;
	if (!out_push_dup(px, &m))
		return -ENOMEM;
	return 0;
}

static int reconfigure(struct opx *px, const struct opx_cluster_config *next,
		       const uint8_t *metadata, uint32_t metadata_len)
{
	if (px->failed)
		return -EIO;
	if (metadata_len > OPX_MAX_METADATA_LEN || (metadata_len && !metadata) ||
	    !sp_valid_cluster(next, NULL, 0))
		return -EINVAL;
	if (px->ss)
		return -EALREADY;
	struct opx_stopsign *ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	ss->next = *next;
	ss->metadata_len = metadata_len;
	if (metadata_len)
		memcpy(ss->metadata, metadata, metadata_len);
	int rc = propose_stopsign(px, ss, false);
	free(ss);
	return px->failed ? -EIO : rc;
}

int opx_reconfigure(struct opx *px, const struct opx_cluster_config *next, const uint8_t *metadata,
		    uint32_t metadata_len)
{
	int rc = reconfigure(px, next, metadata, metadata_len);
	invariants(px);
	return rc;
}

static bool valid_entries(const struct opx_entry *e, uint32_t n)
{
	if (n && !e)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (e[i].len > OPX_MAX_ENTRY_LEN || (e[i].len && !e[i].data))
			return false;
	return true;
}

static bool valid_log_sync(const struct opx_log_sync *ls)
{
	if (ls->snapshot_kind != OPX_SNAPSHOT_NONE && ls->snapshot_kind != OPX_SNAPSHOT_COMPLETE &&
	    ls->snapshot_kind != OPX_SNAPSHOT_DELTA)
		return false;
	if (ls->snapshot_kind != OPX_SNAPSHOT_NONE && ls->snapshot_len && !ls->snapshot)
		return false;
	if (ls->stopsign && !sp_valid_stopsign(ls->stopsign))
		return false;
	return valid_entries(ls->suffix, ls->n_suffix) && ls->sync_idx < UINT64_MAX / 2;
}

static bool ballot_ok(const struct opx *px, const struct opx_ballot *b, opx_node_id must_pid)
{
	if (b->config_id != px->cfg.cluster.config_id)
		return false;
	if (must_pid && b->pid != must_pid)
		return false;
	return px_slot(px, b->pid) != SLOT_NONE;
}

/* Structural checks of an incoming message; false = drop it. */
static bool valid_msg(const struct opx *px, const struct opx_msg *m)
{
	const struct opx_ballot *b = NULL;
	opx_node_id must = 0;
	switch (m->type) {
	case OPX_MSG_HB_REQUEST:
	case OPX_MSG_HB_REPLY:
	case OPX_MSG_COMPACTION:
		return true;
	case OPX_MSG_PREPARE_REQ:
		return true;
	case OPX_MSG_PREPARE:
		b = &m->u.prepare.n;
		must = m->from;
		break;
	case OPX_MSG_PROMISE:
		if (m->u.promise.has_log_sync && !valid_log_sync(&m->u.promise.log_sync))
			return false;
		b = &m->u.promise.n;
		must = px->cfg.pid;
		break;
	case OPX_MSG_ACCEPT_SYNC:
		if (!valid_log_sync(&m->u.accept_sync.log_sync))
			return false;
		b = &m->u.accept_sync.n;
		must = m->from;
		break;
	case OPX_MSG_ACCEPT_DECIDE:
		if (!valid_entries(m->u.accept_decide.entries, m->u.accept_decide.n_entries))
			return false;
		b = &m->u.accept_decide.n;
		must = m->from;
		break;
	case OPX_MSG_ACCEPTED:
		b = &m->u.accepted.n;
		must = px->cfg.pid;
		break;
	case OPX_MSG_DECIDE:
		b = &m->u.decide.n;
		must = m->from;
		break;
	case OPX_MSG_NOT_ACCEPTED:
		b = &m->u.not_accepted.n;
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		return valid_entries(m->u.proposal_forward.entries,
				     m->u.proposal_forward.n_entries);
	case OPX_MSG_ACCEPT_STOPSIGN:
		if (!m->u.accept_stopsign.ss || !sp_valid_stopsign(m->u.accept_stopsign.ss))
			return false;
		b = &m->u.accept_stopsign.n;
		must = m->from;
		break;
	case OPX_MSG_FORWARD_STOPSIGN:
		return m->u.forward_stopsign.ss && sp_valid_stopsign(m->u.forward_stopsign.ss);
	default:
		return false;
	}
	return ballot_ok(px, b, must);
}

static int handle_incoming(struct opx *px, const struct opx_msg *m)
{
	if (px->failed)
		return -EIO;
	uint32_t from = px_slot(px, m->from);
	if (m->to != px->cfg.pid || from == SLOT_NONE || from == px->me ||
	    m->config_id != px->cfg.cluster.config_id || !valid_msg(px, m)) {
		px->dropped++;
		return 0;
	}
	int rc = 0;
	switch (m->type) {
	case OPX_MSG_HB_REQUEST:
	case OPX_MSG_HB_REPLY:
		ble_handle(px, from, m);
		return 0;
	case OPX_MSG_PREPARE:
		rc = sp_handle_prepare(px, from, m);
		break;
	case OPX_MSG_PROMISE:
	case OPX_MSG_ACCEPTED:
	case OPX_MSG_PREPARE_REQ:
	case OPX_MSG_NOT_ACCEPTED:
		rc = sp_leader_handle(px, from, m);
		break;
	case OPX_MSG_ACCEPT_SYNC:
	case OPX_MSG_ACCEPT_DECIDE:
	case OPX_MSG_DECIDE:
	case OPX_MSG_ACCEPT_STOPSIGN:
		rc = sp_follower_handle(px, from, m);
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		rc = propose(px, m->u.proposal_forward.entries, m->u.proposal_forward.n_entries,
			     true);
		/* its proposer waits for them: tell it their decision at once */
		if (in_leader_phase(px, OPX_PHASE_ACCEPT))
			px->peers[from].forwarded_end = px->accepted_idx + px->batch.n;
		px->peers[from].forwarded_now = true;
		break;
	case OPX_MSG_FORWARD_STOPSIGN:
		rc = propose_stopsign(px, m->u.forward_stopsign.ss, true);
		break;
	case OPX_MSG_COMPACTION:
		if (m->u.compaction.kind == OPX_COMPACTION_TRIM)
			rc = sp_try_trim(px, m->u.compaction.idx);
		else if (m->u.compaction.kind == OPX_COMPACTION_SNAPSHOT)
			rc = sp_snapshot(px, m->u.compaction.has_idx, m->u.compaction.idx);
		if (rc != -EIO && rc != -ENOMEM)
			rc = 0; /* receivers ignore errors (spec §7.2) */
		break;
	default:
		break;
	}
	return px->failed ? -EIO : rc;
}

int opx_handle_incoming(struct opx *px, const struct opx_msg *m)
{
	int rc = handle_incoming(px, m);
	invariants(px);
	return rc;
}

static int tick(struct opx *px)
{
	if (px->failed)
		return -EIO;
	int rc = 0;
	if (++px->election_clock >= px->cfg.election_ticks) {
		px->election_clock = 0;
		struct opx_ballot b;
		if (ble_hb_timeout(px, &b))
			rc = sp_handle_leader(px, &b);
		if (rc)
			return rc;
	}
	if (++px->resend_clock >= px->cfg.resend_ticks) {
		px->resend_clock = 0;
		for (uint32_t i = 0; i < px_n(px); i++) {
			px->peers[i].forwarded_before = px->peers[i].forwarded_now;
			px->peers[i].forwarded_now = false;
		}
		rc = px->role == OPX_ROLE_LEADER ? sp_leader_resend(px) : sp_follower_resend(px);
		if (rc)
			return rc;
	}
	if (++px->flush_clock >= px->cfg.flush_ticks) {
		px->flush_clock = 0;
		rc = opx_flush_batch(px);
	}
	/* A decision that found no write to ride with (seqpaxos.c), and
	 * Decides held back (decide_with_next) that found no message */
	if (!rc)
		rc = sp_store_decided(px);
	sp_send_owed_decides(px);
	return px->failed ? -EIO : rc;
}

int opx_tick(struct opx *px)
{
	int rc = tick(px);
	invariants(px);
	return rc;
}

static int flush_batch(struct opx *px)
{
	if (px->failed)
		return -EIO;
	int rc = 0;
	if (in_leader_phase(px, OPX_PHASE_ACCEPT))
		rc = sp_leader_flush(px);
	else if (px->role == OPX_ROLE_FOLLOWER)
		rc = sp_follower_flush(px);
	return px->failed ? -EIO : rc;
}

bool opx_owes_decides(const struct opx *px)
{
	return sp_owes_decides(px);
}

void opx_send_owed_decides(struct opx *px)
{
	sp_send_owed_decides(px);
	invariants(px);
}

int opx_flush_batch(struct opx *px)
{
	int rc = flush_batch(px);
	invariants(px);
	return rc;
}

size_t opx_take_outgoing(struct opx *px, const struct opx_msg **out)
{
	out_clear(&px->taken);
	/* the pending SP outbox becomes the taken one; BLE messages go after */
	struct outbox t = px->taken;
	px->taken = px->out_sp;
	px->out_sp = t;
	px->out_epoch++;
	for (uint32_t i = 0; i < px->out_ble.n; i++)
		out_move(px, &px->taken, &px->out_ble.msgs[i]);
	out_clear(&px->out_ble);
	*out = px->taken.msgs;
	return px->taken.n;
}

int opx_sync(struct opx *px)
{
	int rc = px_sync(px);
	invariants(px);
	return rc;
}

static void reconnected(struct opx *px, opx_node_id pid)
{
	if (!px->failed)
		sp_reconnected(px, pid);
}

void opx_reconnected(struct opx *px, opx_node_id pid)
{
	reconnected(px, pid);
	invariants(px);
}

void opx_turn_late(struct opx *px, uint32_t ticks)
{
	ble_turn_late(px, ticks / px->cfg.election_ticks);
}

uint64_t opx_decided_idx(const struct opx *px)
{
	return px->decided_idx;
}

uint64_t opx_accepted_idx(const struct opx *px)
{
	return px->accepted_idx;
}

uint64_t opx_compacted_idx(const struct opx *px)
{
	return px->compacted_idx;
}

opx_node_id opx_current_leader(const struct opx *px, bool *accept_phase)
{
	if (accept_phase)
		*accept_phase = px->phase == OPX_PHASE_ACCEPT;
	return px->promise.pid;
}

struct opx_ballot opx_promise(const struct opx *px)
{
	return px->promise;
}

bool opx_is_leader(const struct opx *px)
{
	return px->role == OPX_ROLE_LEADER;
}

bool opx_is_quorum_connected(const struct opx *px)
{
	return px->ble.qc;
}

/* Tells every other member to compact as this node did (spec §7.2, §7.3). */
static void broadcast_compaction(struct opx *px, enum opx_compaction_kind kind, bool has_idx,
				 uint64_t idx)
{
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (i == px->me)
			continue;
		struct opx_msg *m =
			out_push(px, &px->out_sp, px->cfg.cluster.nodes[i], OPX_MSG_COMPACTION);
		if (!m)
			continue;
		m->u.compaction.kind = kind;
		m->u.compaction.has_idx = has_idx;
		m->u.compaction.idx = idx;
	}
}

static int trim(struct opx *px, bool has_idx, uint64_t idx)
{
	if (px->failed)
		return -EIO;
	if (px->role != OPX_ROLE_LEADER)
		return -EPERM;
	/* [PITFALL §7.3] the minimum over configured members only */
	uint64_t min = UINT64_MAX;
	for (uint32_t i = 0; i < px_n(px); i++) {
		uint64_t a = i == px->me ? px->accepted_idx : px->peers[i].accepted_idx;
		if (a < min)
			min = a;
	}
	if (!has_idx)
		idx = min;
	else if (idx > min)
		return -EAGAIN;
	int rc = sp_try_trim(px, idx);
	if (rc)
		return rc;
	broadcast_compaction(px, OPX_COMPACTION_TRIM, true, idx);
	return 0;
}

int opx_trim(struct opx *px, bool has_idx, uint64_t idx)
{
	int rc = trim(px, has_idx, idx);
	invariants(px);
	return rc;
}

static int snapshot(struct opx *px, bool has_idx, uint64_t idx, bool local_only)
{
	if (px->failed)
		return -EIO;
	int rc = sp_snapshot(px, has_idx, idx);
	if (rc || local_only)
		return rc;
	broadcast_compaction(px, OPX_COMPACTION_SNAPSHOT, has_idx, idx);
	return 0;
}

int opx_snapshot(struct opx *px, bool has_idx, uint64_t idx, bool local_only)
{
	int rc = snapshot(px, has_idx, idx, local_only);
	invariants(px);
	return rc;
}

const struct opx_stopsign *opx_is_reconfigured(const struct opx *px)
{
	return px_ss_decided(px) ? px->ss : NULL;
}

static int try_become_leader(struct opx *px)
{
	if (px->failed)
		return -EIO;
	struct opx_ballot old = px->ble.current;
	px->ble.current.n = px->promise.n + 1;
	struct opx_ballot b = px->ble.current;
	int rc = sp_handle_leader(px, &b);
	if (rc)
		px->ble.current = old; /* no Prepare went out: BLE must not claim it */
	return px->failed ? -EIO : rc;
}

int opx_try_become_leader(struct opx *px)
{
	int rc = try_become_leader(px);
	invariants(px);
	return rc;
}

/* ---- reads (spec §7.5) ---- */

static struct opx_item *read_push(struct opx_read *r)
{
	if (r->n == r->items_cap) {
		uint32_t cap = r->items_cap ? r->items_cap * 2 : 16;
		struct opx_item *it = realloc(r->items, (size_t)cap * sizeof(*it));
		if (!it)
			return NULL;
		r->items = it;
		r->items_cap = cap;
	}
	struct opx_item *it = &r->items[r->n++];
	memset(it, 0, sizeof(*it));
	return it;
}

void opx_read_free(struct opx_read *r)
{
	free(r->items);
	opx_entry_list_clear(&r->entries);
	free(r->snapshot);
	free(r->ss);
	memset(r, 0, sizeof(*r));
}

int opx_read_entries(struct opx *px, uint64_t from, uint64_t to, struct opx_read *out)
{
	opx_read_free(out);
	if (to == UINT64_MAX)
		to = px->accepted_idx;
	if (to == 0 || from >= to || to > px->accepted_idx)
		return 0;
	struct opx_item *it;
	if (from < px->compacted_idx) {
		if (!(it = read_push(out)))
			goto nomem;
		it->compacted_idx = px->compacted_idx;
		it->kind = OPX_ITEM_TRIMMED;
		if (px->has_snapshot) {
			int rc = px->st.ops->get_snapshot(px->st.impl, &out->snapshot,
							  &it->snapshot_len);
			if (rc) {
				opx_read_free(out);
				return rc;
			}
			it->kind = OPX_ITEM_SNAPSHOTTED;
			it->snapshot = out->snapshot;
		}
		from = px->compacted_idx;
	}
	uint64_t end = to < px_log_end(px) ? to : px_log_end(px);
	if (from < end) {
		int rc = sp_get_entries(px, from, end, &out->entries);
		if (rc) {
			opx_read_free(out);
			return rc == -ENOENT ? -EIO : rc;
		}
		for (uint32_t i = 0; i < out->entries.n; i++) {
			if (!(it = read_push(out)))
				goto nomem;
			it->idx = from + i;
			it->kind =
				it->idx < px->decided_idx ? OPX_ITEM_DECIDED : OPX_ITEM_UNDECIDED;
			it->entry = out->entries.entries[i];
		}
	}
	if (px->ss && to == px->accepted_idx && from <= px_log_end(px)) {
		out->ss = malloc(sizeof(*out->ss));
		if (!out->ss || !(it = read_push(out)))
			goto nomem;
		*out->ss = *px->ss;
		it->kind = OPX_ITEM_STOPSIGN;
		it->idx = px_log_end(px);
		it->ss = out->ss;
		it->ss_decided = px_ss_decided(px);
	}
	return 0;
nomem:
	opx_read_free(out);
	return -ENOMEM;
}

int opx_read_decided_suffix(struct opx *px, uint64_t from, struct opx_read *out)
{
	if (from >= px->decided_idx) {
		opx_read_free(out);
		return 0;
	}
	return opx_read_entries(px, from, px->decided_idx, out);
}

void opx_get_status(const struct opx *px, struct opx_status *st)
{
	memset(st, 0, sizeof(*st));
	st->pid = px->cfg.pid;
	st->role = px->role;
	st->phase = px->phase;
	st->promise = px->promise;
	st->ble_leader = px->ble.leader;
	st->quorum_connected = px->ble.qc;
	st->decided_idx = px->decided_idx;
	st->accepted_idx = px->accepted_idx;
	st->compacted_idx = px->compacted_idx;
	for (uint32_t i = 0; i < px_n(px); i++) {
		if (i == px->me)
			continue;
		struct opx_peer_status *p = &st->peers[st->n_peers++];
		p->pid = px->cfg.cluster.nodes[i];
		p->heard_last_round = px->ble.prev_replied[i];
		p->accepted_idx = px->role == OPX_ROLE_LEADER ? px->peers[i].accepted_idx : 0;
	}
	st->dropped_msgs = px->dropped;
}
