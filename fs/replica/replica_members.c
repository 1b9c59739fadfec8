/*
 * Membership changes: which configuration this node runs, and moving from
 * one configuration to the next (OmniPaxos reconfiguration, spec §9).
 *
 * A change is a stop-sign proposed with the next member table as metadata.
 * When a node applies the decided stop-sign (at global index g), it stores
 * the table in its state (one synced KV batch, with applied = g + 1), writes
 * it to <data_dir>/membership, empties its log for the new configuration
 * and starts a new core on it, whose log index 0 is global index g + 1
 * ("base"). A node that is not in the new table is removed: it stops taking
 * writes and says why.
 *
 * Nodes that cannot apply the stop-sign themselves learn the new table from
 * a peer (a MEMBERS frame) and jump to it, fetching the state at base or
 * later by state transfer:
 * - a new node ([node] join), which asks the peers in its config file
 *   (JOIN frames) until one of them runs a configuration that includes it;
 * - a node that missed the end of the old configuration: a peer that gets
 *   a consensus message tagged with an older configuration id answers with
 *   its table. The jump waits a grace period first, since a node that only
 *   lags a little applies the stop-sign itself without copying the state.
 *
 * Safety: a node replaces its log only after learning, from its own log or
 * from a member of a later configuration, that the stop-sign ending it is
 * decided; the member table file is written before the log is emptied, so
 * a crash in between resumes the change.
 */
#include "replica_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "tp_config.h"

#define JOIN__EVERY_MS	   1000	 /* JOINING: how often to ask the peers */
#define TELL__EVERY_MS	   500	 /* at most one MEMBERS per stale peer this often */
#define DEPARTED__KEEP	   16	 /* removed peers a member keeps telling, at most */
#define DEPARTING__KEEP_MS 10000 /* a removed node keeps its old peers this long */

static void set_members(struct replica *r, const struct membership *m)
{
	pthread_mutex_lock(&r->members_lock);
	r->members = *m;
	pthread_mutex_unlock(&r->members_lock);
}

/* The member table the applied state holds: 0, -ENOENT or an error. */
static int state_members(struct replica *r, struct membership *m, char *err, size_t err_len)
{
	void *val;
	size_t len;
	int rc = kv_get(r->kv, MEMBERSHIP_KV_KEY, strlen(MEMBERSHIP_KV_KEY), &val, &len, NULL);
	if (rc == -ENOENT)
		return rc;
	if (rc != 0) {
		snprintf(err, err_len, "%s/state: cannot read the member table: %s",
			 r->cfg.data_dir, strerror(-rc));
		return rc;
	}
	char why[200];
	rc = membership_decode(m, val, len, why, sizeof(why));
	free(val);
	if (rc != 0)
		snprintf(err, err_len, "%s/state: the member table is corrupt: %s", r->cfg.data_dir,
			 why);
	return rc;
}

/* The config file lists the other members' keys only; a member table,
 * which other nodes will use, needs ours too (from our key file). */
static int fill_own_key(struct replica *r, struct membership *m, char *err, size_t err_len)
{
	struct cfg_peer *self = (struct cfg_peer *)membership_find(m, r->cfg.node_id);
	if (r->cfg.plaintext || !self)
		return 0;
	uint8_t pub[TP_KEY_LEN], sec[TP_KEY_LEN];
	int rc = tp_keyfile_load(r->cfg.secret_key_file, pub, sec, err, err_len);
	memset(sec, 0, sizeof(sec));
	if (rc == 0)
		tp_key_to_z85(pub, self->public_key);
	return rc;
}

int replica_members_load(struct replica *r, char *err, size_t err_len)
{
	struct membership *file = calloc(1, sizeof(*file)), *state = calloc(1, sizeof(*state));
	int rc = -ENOMEM;
	if (!file || !state)
		goto out;
	int rc_file = membership_file_read(r->cfg.data_dir, file, err, err_len);
	int rc_state = state_members(r, state, err, err_len);
	rc = rc_file != -ENOENT ? rc_file : 0;
	if (rc == 0 && rc_state != -ENOENT)
		rc = rc_state;
	if (rc != 0)
		goto out;

	r->mode = REPLICA_MEMBER;
	if (rc_state == 0 && (rc_file != 0 || state->config_id > file->config_id)) {
		/* The state got ahead of the file (a crash before the file was
		 * written, or a state transfer): the state is the truth. */
		rc = membership_file_write(r->cfg.data_dir, state, err, err_len);
		if (rc != 0)
			goto out;
		set_members(r, state);
	} else if (rc_file == 0) {
		set_members(r, file);
	} else {
		membership_from_cfg(file, &r->cfg);
		rc = fill_own_key(r, file, err, err_len);
		if (rc != 0)
			goto out;
		if (r->cfg.join && kv_applied_idx(r->kv) == 0) {
			file->config_id = 0; /* the peers are only whom to ask */
			r->mode = REPLICA_JOINING;
		}
		set_members(r, file);
	}
	if (r->mode == REPLICA_MEMBER && !membership_find(&r->members, r->cfg.node_id))
		r->mode = REPLICA_REMOVED;
	if (r->members.config_id > 1) {
		char ids[256];
		membership_ids(&r->members, ids, sizeof(ids));
		log_notice("replica: configuration %u from %s/membership: members %s ([peers] in "
			   "%s is not used after a membership change)",
			   r->members.config_id, r->cfg.data_dir, ids, r->cfg.path);
	}
out:
	free(file);
	free(state);
	return rc;
}

int replica_log_open(struct replica *r, char *err, size_t err_len)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/log", r->cfg.data_dir);
	int rc = opx_rocks_open(&r->log, path, r->cfg.cluster_id, err, err_len);
	if (rc != 0)
		return rc;
	uint32_t log_config;
	rc = opx_rocks_config_id(r->log, &log_config);
	if (rc == 0 && log_config < r->members.config_id) {
		log_notice("replica: starting the log of configuration %u (the log was "
			   "configuration %u's)",
			   r->members.config_id, log_config);
		rc = opx_rocks_reset(r->log, r->members.config_id);
	}
	if (rc != 0) {
		snprintf(err, err_len, "%s: %s", path, opx_rocks_errmsg(r->log));
		return rc;
	}
	if (log_config > r->members.config_id) {
		snprintf(
			err, err_len,
			"%s belongs to configuration %u but %s/membership says %u: the data dir is "
			"damaged; restore it, or wipe it and add this node again",
			path, log_config, r->cfg.data_dir, r->members.config_id);
		return -EINVAL;
	}
	return 0;
}

int replica_stopsign_applied(struct replica *r, const struct opx_stopsign *ss, uint64_t idx)
{
	struct membership *next = malloc(sizeof(*next));
	if (!next)
		return -ENOMEM;
	char why[200] = "";
	int rc = membership_decode(next, ss->metadata, ss->metadata_len, why, sizeof(why));
	for (uint32_t i = 0; rc == 0 && i < ss->next.n_nodes; i++)
		if (!membership_find(next, ss->next.nodes[i]))
			rc = -EBADMSG;
	if (rc == 0 && next->n != ss->next.n_nodes)
		rc = -EBADMSG;
	if (rc != 0) {
		log_err("replica: the decided stop-sign @%" PRIu64
			" carries a bad member table%s%s",
			idx, why[0] ? ": " : "", why);
		free(next);
		return rc;
	}
	next->config_id = ss->next.config_id;
	next->base = idx + 1;
	next->read_quorum = ss->next.read_quorum;
	next->write_quorum = ss->next.write_quorum;

	/* The table goes into the state with the applied index, in one synced
	 * batch: a state at base holds the table that starts there, also in
	 * the copy a state transfer makes of it. */
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	struct kv_txn t;
	uint8_t *entry = NULL;
	size_t entry_len;
	struct kv_result res;
	kv_txn_init(&t, 0, 0);
	rc = membership_encode(next, buf, sizeof(buf), &len);
	if (rc == 0)
		rc = kv_txn_add_put(&t, MEMBERSHIP_KV_KEY, strlen(MEMBERSHIP_KV_KEY), buf, len);
	if (rc == 0)
		rc = kv_txn_encode(&t, &entry, &entry_len);
	if (rc == 0)
		rc = kv_apply(r->kv, idx, entry, entry_len, true, &res);
	kv_txn_free(&t);
	free(entry);
	if (rc != 0) {
		free(next);
		return rc;
	}
	r->applied_idx = idx + 1;
	free(r->entering);
	r->entering = next;
	return 0;
}

/* Sends our member table to a peer, at most every TELL__EVERY_MS. */
static void tell(struct replica *r, opx_node_id to, uint64_t now)
{
	size_t slot = OPX_MAX_NODES;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		if (r->told_id[i] == to) {
			slot = i;
			break;
		}
		if (slot == OPX_MAX_NODES && r->told_id[i] == 0)
			slot = i;
	}
	if (slot == OPX_MAX_NODES)
		slot = to % OPX_MAX_NODES;
	if (r->told_id[slot] == to && now - r->told_ms[slot] < TELL__EVERY_MS)
		return;
	r->told_id[slot] = to;
	r->told_ms[slot] = now;
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	if (membership_encode(&r->members, buf, sizeof(buf), &len) == 0)
		tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_MEMBERS, buf, len);
}

/*
 * A peer that left stays in the transport until `until` (UINT64_MAX: for as
 * long as there is room for it): a member keeps the nodes it removed, so one
 * that was down during the change learns it was removed when it returns
 * (it gets the member table and nothing else: no consensus message from it
 * reaches the core, no state goes to it). The oldest is let go first.
 */
static void depart(struct replica *r, opx_node_id id, uint64_t now, uint64_t until)
{
	struct replica_departing *slot = NULL, *free_slot = NULL, *oldest = NULL;
	size_t kept = 0;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_departing *d = &r->departing[i];
		if (d->id == id) {
			slot = d;
		} else if (!d->id) {
			free_slot = free_slot ? free_slot : d;
		} else {
			kept++;
			if (!oldest || d->since_ms < oldest->since_ms)
				oldest = d;
		}
	}
	if (!slot && (kept >= DEPARTED__KEEP || !free_slot)) {
		if (!oldest) {
			tp_remove_peer(r->tp, id);
			return;
		}
		tp_remove_peer(r->tp, oldest->id); /* room for the newer one */
		oldest->id = 0;
		free_slot = oldest;
	}
	if (!slot)
		slot = free_slot;
	*slot = (struct replica_departing){.id = id, .since_ms = now, .until_ms = until};
}

static void undepart(struct replica *r, opx_node_id id)
{
	for (size_t i = 0; i < OPX_MAX_NODES; i++)
		if (r->departing[i].id == id)
			r->departing[i].id = 0;
}

static void add_peer(struct replica *r, const struct cfg_peer *p)
{
	struct tp_peer_config pc;
	int rc = tp_peer_from_cfg(p, r->cfg.plaintext, &pc);
	if (rc == 0)
		rc = tp_add_peer(r->tp, &pc);
	if (rc != 0)
		log_err("replica: cannot reach new member n%" PRIu64 " at %s: %s", p->id,
			p->address, strerror(-rc));
}

/*
 * Meshes with the new members; peers that left stay (depart). Peers that
 * refused our key (we were not a member yet) are dialled again at once.
 */
static void update_transport(struct replica *r, const struct membership *old,
			     const struct membership *next, uint64_t now)
{
	tp_redial_refused(r->tp);
	for (size_t i = 0; i < next->n; i++) {
		const struct cfg_peer *p = &next->peers[i], *q = membership_find(old, p->id);
		if (p->id == r->cfg.node_id)
			continue;
		undepart(r, p->id);
		if (q && strcmp(p->address, q->address) == 0 &&
		    strcmp(p->public_key, q->public_key) == 0)
			continue;
		/* Also drops a link kept for a departing peer that is back. */
		tp_remove_peer(r->tp, p->id);
		add_peer(r, p);
	}
	for (size_t i = 0; i < old->n; i++) {
		const struct cfg_peer *q = &old->peers[i];
		if (q->id != r->cfg.node_id && !membership_find(next, q->id))
			depart(r, q->id, now, UINT64_MAX);
	}
}

/* Starts the core of the configuration in r->members on an emptied log. */
static int start_member(struct replica *r)
{
	char err[256];
	int rc = 0;
	if (!r->log)
		rc = replica_log_open(r, err, sizeof(err));
	else
		rc = opx_rocks_reset(r->log, r->members.config_id);
	if (rc == 0)
		rc = replica_core_open(r, err, sizeof(err));
	else if (r->log)
		snprintf(err, sizeof(err), "%s", opx_rocks_errmsg(r->log));
	if (rc != 0) {
		log_err("replica: cannot start configuration %u: %s", r->members.config_id, err);
		return rc;
	}
	r->mode = REPLICA_MEMBER;
	r->last_promise = opx_promise(r->px);
	/* Proposals the old configuration did not decide go to the new one,
	 * with their ids: the KV applies each at most once. */
	replica_reappend_in_flight(r);
	return 0;
}

void replica_enter_config(struct replica *r, const struct membership *next, uint64_t now)
{
	char err[256], ids[256];
	struct membership *old = malloc(sizeof(*old));
	if (!old) {
		replica_fail(r, "changing the configuration", -ENOMEM);
		return;
	}
	*old = r->members;
	int rc = membership_file_write(r->cfg.data_dir, next, err, sizeof(err));
	if (rc != 0) {
		log_err("replica: %s", err);
		replica_fail(r, "recording the new configuration", rc);
		free(old);
		return;
	}
	opx_destroy(&r->px);
	set_members(r, next);
	bool member = membership_find(next, r->cfg.node_id) != NULL;
	if (member) {
		update_transport(r, old, next, now);
	} else {
		/* Nothing more to say to anyone, once the last messages of the
		 * old configuration are out. */
		for (size_t i = 0; i < old->n; i++)
			if (old->peers[i].id != r->cfg.node_id)
				depart(r, old->peers[i].id, now, now + DEPARTING__KEEP_MS);
	}
	membership_ids(next, ids, sizeof(ids));
	if (member) {
		rc = start_member(r);
		if (rc != 0) {
			replica_fail(r, "starting the new configuration", rc);
			free(old);
			return;
		}
		log_notice("replica: configuration %u is running: members %s, its log starts at "
			   "@%" PRIu64 "%s",
			   next->config_id, ids, next->base,
			   r->applied_idx < next->base ? "; fetching the state from a peer" : "");
	} else {
		r->mode = REPLICA_REMOVED;
		proposals_fail_all(&r->props, -EROFS);
		log_warn("replica: configuration %u (members %s) does not include n%llu: this node "
			 "was removed from the cluster and takes no more writes; stop it, and wipe "
			 "its data dir before it joins again",
			 next->config_id, ids, (unsigned long long)r->cfg.node_id);
	}
	/* New members learn the table from us at once instead of asking. */
	for (size_t i = 0; member && i < next->n; i++)
		if (next->peers[i].id != r->cfg.node_id && !membership_find(old, next->peers[i].id))
			tell(r, next->peers[i].id, now);
	free(old);
}

void replica_members_after_import(struct replica *r)
{
	struct membership *m = malloc(sizeof(*m));
	char err[PATH_MAX + 512]; /* names the data dir */
	if (!m)
		return;
	if (state_members(r, m, err, sizeof(err)) != 0 || m->config_id <= r->members.config_id) {
		free(m);
		return;
	}
	/* The state came from a node already past this configuration's end:
	 * our log of it can no longer be applied. Entered after this turn, as
	 * a decided stop-sign is. */
	log_notice("replica: the transferred state is already in configuration %u", m->config_id);
	free(r->entering);
	r->entering = m;
}

bool replica_msg_is_current(struct replica *r, const struct opx_msg *m, uint64_t now)
{
	if (r->mode == REPLICA_MEMBER && m->config_id == r->members.config_id)
		return true;
	if (r->mode != REPLICA_JOINING && m->config_id < r->members.config_id)
		tell(r, m->from, now);
	return false;
}

static void on_members(struct replica *r, opx_node_id from, const void *data, size_t len,
		       uint64_t now)
{
	struct membership *m = malloc(sizeof(*m));
	char why[200];
	if (!m)
		return;
	if (membership_decode(m, data, len, why, sizeof(why)) != 0) {
		uint64_t dropped;
		if (log_ratelimit_pass(&r->rl_members, now, &dropped))
			log_warn(
				"replica: n%llu sent a bad member table: %s (%llu more not logged)",
				(unsigned long long)from, why, (unsigned long long)dropped);
		free(m);
		return;
	}
	if (m->config_id <= r->members.config_id ||
	    (r->heard && r->heard->config_id >= m->config_id)) {
		free(m);
		return;
	}
	free(r->heard);
	r->heard = m;
	r->heard_ms = now;
}

void replica_members_on_app(struct replica *r, const struct tp_frame *f, uint64_t now)
{
	switch (f->app.app_type) {
	case REPLICA_APP_JOIN:
		if (r->mode != REPLICA_JOINING)
			tell(r, f->hdr.from, now);
		break;
	case REPLICA_APP_MEMBERS:
		on_members(r, f->hdr.from, f->app.data, f->app.len, now);
		break;
	default:
		replica_xfer_on_app(r, f, now);
		break;
	}
}

/* A newer configuration a peer told us about: jump to it (after a grace
 * period for a member, which may yet apply the stop-sign itself). */
static void maybe_jump(struct replica *r, uint64_t now)
{
	struct membership *m = r->heard;
	if (!m)
		return;
	if (m->config_id <= r->members.config_id || r->mode == REPLICA_REMOVED) {
		free(m);
		r->heard = NULL;
		return;
	}
	if (r->mode == REPLICA_JOINING && !membership_find(m, r->cfg.node_id)) {
		char ids[256];
		membership_ids(m, ids, sizeof(ids));
		uint64_t dropped;
		if (log_ratelimit_pass(&r->rl_members, now, &dropped))
			log_notice("replica: the cluster runs configuration %u (members %s), which "
				   "does not include n%llu yet: add it with `omnifsctl member add` "
				   "on a member",
				   m->config_id, ids, (unsigned long long)r->cfg.node_id);
		free(m);
		r->heard = NULL;
		return;
	}
	uint64_t grace = 4ull * r->cfg.election_timeout_ms;
	if (grace < 1000)
		grace = 1000;
	if (r->mode == REPLICA_MEMBER && now - r->heard_ms < grace)
		return;
	r->heard = NULL;
	if (r->mode == REPLICA_JOINING)
		log_notice("replica: added to the cluster in configuration %u", m->config_id);
	else
		log_notice("replica: the cluster runs configuration %u, this node still %u: "
			   "moving to it",
			   m->config_id, r->members.config_id);
	replica_enter_config(r, m, now);
	free(m);
}

void replica_members_step(struct replica *r, uint64_t now)
{
	if (r->entering) {
		struct membership *next = r->entering;
		r->entering = NULL;
		replica_enter_config(r, next, now);
		free(next);
	}
	maybe_jump(r, now);
	if (r->mode == REPLICA_JOINING && now - r->last_join_ms >= JOIN__EVERY_MS) {
		r->last_join_ms = now;
		for (size_t i = 0; i < r->members.n; i++)
			if (r->members.peers[i].id != r->cfg.node_id)
				tp_send_app(r->tp, r->members.peers[i].id, 0, REPLICA_APP_JOIN,
					    NULL, 0);
	}
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_departing *d = &r->departing[i];
		if (d->id && now >= d->until_ms) {
			tp_remove_peer(r->tp, d->id);
			d->id = 0;
		}
	}
}

int replica_reconfigure_now(struct replica *r, const struct membership *next)
{
	if (r->mode != REPLICA_MEMBER)
		return -EROFS;
	if (next->config_id != r->members.config_id + 1)
		return -ESTALE; /* the membership changed since the command read it */
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	if (membership_encode(next, buf, sizeof(buf), &len) != 0 || len > OPX_MAX_METADATA_LEN)
		return -E2BIG;
	struct opx_cluster_config cc = {
		.config_id = next->config_id,
		.n_nodes = (uint32_t)next->n,
		.read_quorum = next->read_quorum,
		.write_quorum = next->write_quorum,
	};
	for (size_t i = 0; i < next->n; i++)
		cc.nodes[i] = next->peers[i].id;
	int rc = opx_reconfigure(r->px, &cc, (const uint8_t *)buf, (uint32_t)len);
	if (rc == -EIO)
		replica_fail(r, "writing the stop-sign", rc);
	return rc;
}
