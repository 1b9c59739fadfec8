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
 * Who is believed. Any peer whose key is on the allow-list can send a
 * frame, and that includes nodes removed a moment ago (see below), which
 * may be decommissioned machines in the wrong hands. So a member acts on a
 * newer member table (stops taking writes, jumps, serves state to the new
 * members) only when it is provably the decided one (on_members):
 * - it comes from a member of this node's configuration, which is listed
 *   in the table it sends; and
 * - it is the table of the stop-sign this node's own log holds (accepted
 *   from the leader of this configuration: this node saw it proposed, and a
 *   removed node can no more forge it than any other entry), or the same
 *   table is reported by a majority of the other members of this node's
 *   configuration, at least two (majority_of_others).
 * Anything else is logged (rate-limited) and ignored; until a table is
 * confirmed this node goes on taking writes. "You are removed" (REMOVED
 * frames) is believed by the same rule. The price: a member that was down
 * through the last change holds no stop-sign, and when the members that
 * can vouch for the new table (the one removed does not) are fewer than
 * majority_of_others asks, it waits for good. That happens only when three
 * members become two while the third is down, and the two need it: do not
 * shrink to two members with one of them down.
 *
 * Departures. Members tell a node that is not in their table only that it
 * is not (a REMOVED frame), never the table, and serve it no state. They
 * keep its key on their allow-list for a grace period (removal_grace_ms),
 * so the last Decide, or the REMOVED frame answering its messages, can
 * reach it; a removed node acknowledges (LEFT frames), and its key goes at
 * once. After that it can no longer connect at all.
 *
 * Learners (membership.h) change by stop-signs too: adding, promoting,
 * demoting or removing one is the next configuration like any other change,
 * whose voter set (the core's) is the old one or differs by that node. Why
 * not an ordinary entry: the member table, the transport's allow-lists and
 * the configuration id then move together at one decided index on every
 * node, by the one mechanism that already makes them agree, and a promoted
 * learner needs a new core anyway. The price is a new core (and an
 * election) per change, as for any member change today. A learner, which
 * holds no log, learns the stop-sign from the node it fetches from: the
 * fetch answer that reaches it carries the next table (replica_step.c), as
 * trustworthy as the entries before it; or, if it was away, from MEMBERS
 * like any member, confirmed by a majority of the voters.
 *
 * Safety: a node replaces its log only after learning, from its own log or
 * from members of its configuration as above, that the stop-sign ending it
 * is decided; the member table file is written before the log is emptied,
 * so a crash in between resumes the change.
 */
#include "replica_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "tp_config.h"

#define JOIN__EVERY_MS	   1000	 /* JOINING: how often to ask the peers */
#define TELL__EVERY_MS	   500	 /* at most one MEMBERS per stale peer this often */
#define DEPARTED__KEEP	   16	 /* removed peers a member keeps telling, at most */
#define DEPARTING__KEEP_MS 10000 /* a removed node keeps its old peers this long */
#define LEFT__EVERY_MS	   1000	 /* a removed node acknowledges this often meanwhile */

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
	else if (r->mode == REPLICA_MEMBER && membership_is_learner(&r->members, r->cfg.node_id))
		r->mode = REPLICA_LEARNER;
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
	opx_rocks_set_sync_fn(r->log, replica_log_synced, r);
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

int replica_table_of_stopsign(const struct replica *r, const struct opx_stopsign *ss,
			      uint64_t local_idx, struct membership *t)
{
	char why[200] = "";
	int rc = membership_decode(t, ss->metadata, ss->metadata_len, why, sizeof(why));
	/* The core's members are the table's voters, exactly. */
	for (uint32_t i = 0; rc == 0 && i < ss->next.n_nodes; i++)
		if (!membership_is_voter(t, ss->next.nodes[i]))
			rc = -EBADMSG;
	if (rc == 0 && membership_voters(t) != ss->next.n_nodes)
		rc = -EBADMSG;
	if (rc != 0) {
		log_kv(LOG_LEVEL_ERR, LOG_NO_PEER, r->members.base + local_idx,
		       "replica: the stop-sign @%" PRIu64 " carries a bad member table%s%s",
		       r->members.base + local_idx, why[0] ? ": " : "", why);
		return rc;
	}
	t->config_id = ss->next.config_id;
	t->base = r->members.base + local_idx + 1;
	t->read_quorum = ss->next.read_quorum;
	t->write_quorum = ss->next.write_quorum;
	return 0;
}

int replica_stopsign_applied(struct replica *r, const struct opx_stopsign *ss, uint64_t idx)
{
	struct membership *next = malloc(sizeof(*next));
	if (!next)
		return -ENOMEM;
	int rc = replica_table_of_stopsign(r, ss, idx - r->members.base, next);
	if (rc != 0) {
		free(next);
		return rc;
	}
	return replica_table_applied(r, next, idx);
}

int replica_table_applied(struct replica *r, struct membership *next, uint64_t idx)
{
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
	int rc = membership_encode(next, buf, sizeof(buf), &len);
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

/*
 * Tells a peer in an older configuration, at most every TELL__EVERY_MS,
 * where the cluster is: a member of our configuration gets our member
 * table; anyone else only that it is not a member (a removed node learns
 * nothing else about the cluster). Only members tell: a removed node has no
 * configuration it can vouch for.
 */
void replica_members_tell(struct replica *r, opx_node_id to, uint64_t now)
{
	if (r->mode != REPLICA_MEMBER && r->mode != REPLICA_LEARNER)
		return;
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
	if (!membership_find(&r->members, to)) {
		tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_REMOVED, NULL, 0);
		return;
	}
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	if (membership_encode(&r->members, buf, sizeof(buf), &len) == 0)
		tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_MEMBERS, buf, len);
}

/*
 * How long members keep the key of a node they removed on their allow-list
 * when it does not acknowledge (LEFT): long enough for the last Decide, or
 * the REMOVED frame answering the messages it resends every election
 * timeout, to reach a removed node that is up, which acknowledges within a
 * round trip of that. A node down for longer never learns it was removed,
 * and need not: every member refuses its key, so it has no quorum and
 * takes no writes. The grace depends on the config alone and runs from
 * when a member enters the configuration: no timing of the network or of
 * the removed node decides when its key goes, only its acknowledgement.
 */
static uint64_t removal_grace_ms(const struct replica *r)
{
	uint64_t g = 50ull * r->cfg.election_timeout_ms;
	return g > DEPARTING__KEEP_MS ? g : DEPARTING__KEEP_MS;
}

/*
 * A peer that left stays in the transport until `until`, at most
 * DEPARTED__KEEP of them (the oldest is let go first): a member keeps a node
 * it removed for removal_grace_ms, so that it learns it was removed (it
 * gets a REMOVED frame and nothing else: no consensus message from it
 * reaches the core, no state goes to it); a removed node keeps its old
 * peers for DEPARTING__KEEP_MS, to send its last messages. Then the peer
 * and its key are gone (tp_remove_peer): it can no longer connect.
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
		log_kv(LOG_LEVEL_ERR, p->id, LOG_NO_INDEX,
		       "replica: cannot reach new member n%" PRIu64 " at %s: %s", p->id, p->address,
		       strerror(-rc));
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
			depart(r, q->id, now, now + removal_grace_ms(r));
	}
}

static void clear_reports(struct replica *r)
{
	for (size_t i = 0; i < CFG_MAX_PEERS; i++) {
		free(r->reports[i].table);
		r->reports[i] = (struct replica_report){0};
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
	replica_learn_enter(r);
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
	clear_reports(r); /* they were about the configuration left */
	r->last_left_ms = 0;
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
	if (member && membership_is_learner(next, r->cfg.node_id)) {
		/* No core: the voters decide, this node fetches what they did. */
		r->mode = REPLICA_LEARNER;
		replica_learn_enter(r);
		log_notice("replica: configuration %u is running: members %s, n%llu learns (does "
			   "not vote), from @%" PRIu64 "%s",
			   next->config_id, ids, (unsigned long long)r->cfg.node_id, next->base,
			   r->applied_idx < next->base ? "; fetching the state from a peer" : "");
	} else if (member) {
		rc = start_member(r);
		if (rc != 0) {
			replica_fail(r, "starting the new configuration", rc);
			free(old);
			return;
		}
		log_kv(LOG_LEVEL_NOTICE, LOG_NO_PEER, next->base,
		       "replica: configuration %u is running: members %s, its log starts at "
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
			replica_members_tell(r, next->peers[i].id, now);
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
		replica_members_tell(r, m->from, now);
	return false;
}

void replica_members_close(struct replica *r)
{
	clear_reports(r);
}

/*
 * The member table of the stop-sign this node's log holds (accepted, decided
 * or not), as replica_stopsign_applied would store it. 0, or -ENOENT.
 */
static int held_stopsign(struct replica *r, struct membership *t)
{
	uint64_t accepted = r->px ? opx_accepted_idx(r->px) : 0;
	if (accepted == 0)
		return -ENOENT;
	struct opx_read rd = {0};
	int rc = opx_read_entries(r->px, accepted - 1, UINT64_MAX, &rd);
	if (rc == 0)
		rc = -ENOENT;
	for (uint32_t i = 0; i < rd.n; i++) {
		const struct opx_item *it = &rd.items[i];
		char why[200];
		if (it->kind != OPX_ITEM_STOPSIGN ||
		    membership_decode(t, it->ss->metadata, it->ss->metadata_len, why,
				      sizeof(why)) != 0)
			continue;
		t->config_id = it->ss->next.config_id;
		t->base = r->members.base + it->idx + 1;
		t->read_quorum = it->ss->next.read_quorum;
		t->write_quorum = it->ss->next.write_quorum;
		rc = 0;
	}
	opx_read_free(&rd);
	return rc;
}

/* Records what member `from` reported (table, owned, or NULL for "you are
 * not a member" of a later configuration) and returns how many members of
 * our configuration other than this node report the same. */
static size_t record_report(struct replica *r, opx_node_id from, struct membership *table)
{
	struct replica_report *slot = NULL;
	for (size_t i = 0; i < CFG_MAX_PEERS && !slot; i++)
		if (r->reports[i].from == from)
			slot = &r->reports[i];
	for (size_t i = 0; i < CFG_MAX_PEERS && !slot; i++)
		if (!r->reports[i].from)
			slot = &r->reports[i];
	if (!slot) { /* cannot happen: one slot per member */
		free(table);
		return 0;
	}
	free(slot->table);
	*slot = (struct replica_report){.from = from, .table = table};
	size_t same = 0;
	for (size_t i = 0; i < CFG_MAX_PEERS; i++) {
		const struct replica_report *o = &r->reports[i];
		/* Voters vouch: a majority of them decided the change. */
		if (!o->from || !membership_is_voter(&r->members, o->from))
			continue;
		/* "Not a member" of any later configuration agrees: once out,
		 * a node never comes back under the same id. */
		if (table ? o->table && membership_equal(o->table, table) : !o->table)
			same++;
	}
	return same;
}

/*
 * Enough members of this node's configuration agree: a majority of the
 * others, so that with this node they are a majority of the configuration,
 * and never one alone (in a configuration of two, the other may be the one
 * removed: there the stop-sign decides, which this node then holds, since
 * both had to accept it). Nodes removed since this configuration could
 * forge a table only if they were that many.
 */
static bool majority_of_others(const struct replica *r, size_t reporters)
{
	size_t others = membership_voters(&r->members) -
			membership_is_voter(&r->members, r->cfg.node_id),
	       need = others / 2 + 1;
	return reporters >= (need > 2 ? need : 2);
}

/* Logs, rate-limited, a report this node does not act on. */
__attribute__((format(printf, 4, 5))) static void
ignored(struct replica *r, uint64_t now, enum log_level level, const char *fmt, ...)
{
	uint64_t dropped;
	if (!log_ratelimit_pass(&r->rl_members, now, &dropped))
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg(level, "replica: %s (%llu more such lines not logged)", line,
		(unsigned long long)dropped);
}

/* Whether a report from `from` about configuration config_id may count at
 * all: from a member of ours (not us), about a later configuration. */
static bool may_report(struct replica *r, opx_node_id from, uint32_t config_id, const char *what,
		       uint64_t now)
{
	if (r->mode == REPLICA_REMOVED || config_id <= r->members.config_id)
		return false;
	if (from == r->cfg.node_id || !membership_find(&r->members, from)) {
		ignored(r, now, LOG_LEVEL_WARNING,
			"n%llu, not a member of configuration %u, sent %s for configuration %u: "
			"ignored",
			(unsigned long long)from, r->members.config_id, what, config_id);
		return false;
	}
	return true;
}

static void on_members(struct replica *r, opx_node_id from, uint32_t frame_config, const void *data,
		       size_t len, uint64_t now)
{
	struct membership *m = malloc(sizeof(*m)), *held = NULL;
	char why[200];
	if (!m)
		return;
	if (membership_decode(m, data, len, why, sizeof(why)) != 0) {
		ignored(r, now, LOG_LEVEL_WARNING, "n%llu sent a bad member table: %s",
			(unsigned long long)from, why);
		goto out;
	}
	if (!may_report(r, from, m->config_id, "a member table", now))
		goto out;
	if (m->config_id != frame_config || !membership_find(m, from)) {
		ignored(r, now, LOG_LEVEL_WARNING,
			"n%llu sent a member table for configuration %u that does not list it: "
			"ignored",
			(unsigned long long)from, m->config_id);
		goto out;
	}
	if (r->heard && r->heard->config_id >= m->config_id)
		goto out;
	if (r->mode == REPLICA_JOINING) {
		/* No state to protect yet, and no configuration to confirm by:
		 * the peers of the config file are whom it trusts. */
		free(r->heard);
		r->heard = m;
		r->heard_ms = now;
		return;
	}
	held = malloc(sizeof(*held));
	bool tied = held && held_stopsign(r, held) == 0 && membership_equal(held, m);
	struct membership *copy = malloc(sizeof(*copy));
	if (!copy)
		goto out;
	*copy = *m;
	size_t same = record_report(r, from, copy);
	if (!tied && !majority_of_others(r, same)) {
		char ids[256];
		membership_ids(m, ids, sizeof(ids));
		ignored(r, now, LOG_LEVEL_NOTICE,
			"n%llu says the cluster runs configuration %u (members %s); not acted on "
			"until it is confirmed: this node holds no matching stop-sign and %zu of "
			"the %zu members of configuration %u say so",
			(unsigned long long)from, m->config_id, ids, same, r->members.n,
			r->members.config_id);
		goto out;
	}
	log_notice("replica: configuration %u confirmed (%s)", m->config_id,
		   tied ? "the stop-sign in this node's log" : "by a majority of the members");
	free(r->heard);
	r->heard = m;
	r->heard_ms = now;
	m = NULL;
out:
	free(held);
	free(m);
}

/* This node learned, without the table, that configuration config_id does
 * not include it: what it records is its old members less itself. */
static void become_removed(struct replica *r, uint32_t config_id, uint64_t now)
{
	struct membership *t = malloc(sizeof(*t));
	if (!t)
		return;
	*t = r->members;
	t->config_id = config_id;
	t->n = 0;
	for (size_t i = 0; i < r->members.n; i++)
		if (r->members.peers[i].id != r->cfg.node_id)
			t->peers[t->n++] = r->members.peers[i];
	replica_enter_config(r, t, now);
	free(t);
}

static void on_removed(struct replica *r, opx_node_id from, uint32_t config_id, uint64_t now)
{
	if (r->mode == REPLICA_JOINING) {
		ignored(r, now, LOG_LEVEL_NOTICE,
			"n%llu runs configuration %u, which does not include n%llu yet: add it "
			"with `omnifsctl member add` on a member",
			(unsigned long long)from, config_id, (unsigned long long)r->cfg.node_id);
		return;
	}
	if (!may_report(r, from, config_id, "\"you are removed\"", now))
		return;
	struct membership *held = malloc(sizeof(*held));
	bool tied = held && held_stopsign(r, held) == 0 && held->config_id <= config_id &&
		    !membership_find(held, r->cfg.node_id);
	free(held);
	size_t same = record_report(r, from, NULL);
	if (!tied && !majority_of_others(r, same)) {
		ignored(r, now, LOG_LEVEL_NOTICE,
			"n%llu says configuration %u does not include this node; not acted on "
			"until it is confirmed: %zu of the %zu members of configuration %u say so",
			(unsigned long long)from, config_id, same, r->members.n,
			r->members.config_id);
		return;
	}
	log_notice("replica: removal confirmed (%s)",
		   tied ? "the stop-sign in this node's log" : "by a majority of the members");
	become_removed(r, config_id, now);
}

/* A node we removed knows it: its key leaves the allow-list now rather
 * than after the grace. */
static void on_left(struct replica *r, opx_node_id from)
{
	if ((r->mode != REPLICA_MEMBER && r->mode != REPLICA_LEARNER) ||
	    membership_find(&r->members, from))
		return;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		if (r->departing[i].id != from)
			continue;
		tp_remove_peer(r->tp, from);
		r->departing[i].id = 0;
		log_kv(LOG_LEVEL_INFO, from, LOG_NO_INDEX,
		       "replica: n%llu acknowledged its removal: its key is no longer accepted",
		       (unsigned long long)from);
	}
}

void replica_members_on_app(struct replica *r, const struct tp_frame *f, uint64_t now)
{
	switch (f->app.app_type) {
	case REPLICA_APP_JOIN:
		replica_members_tell(r, f->hdr.from, now);
		break;
	case REPLICA_APP_MEMBERS:
		on_members(r, f->hdr.from, f->hdr.config_id, f->app.data, f->app.len, now);
		break;
	case REPLICA_APP_REMOVED:
		on_removed(r, f->hdr.from, f->hdr.config_id, now);
		break;
	case REPLICA_APP_LEFT:
		on_left(r, f->hdr.from);
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
	if ((r->mode == REPLICA_MEMBER || r->mode == REPLICA_LEARNER) && now - r->heard_ms < grace)
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
	bool ack = r->mode == REPLICA_REMOVED &&
		   (!r->last_left_ms || now - r->last_left_ms >= LEFT__EVERY_MS);
	if (ack)
		r->last_left_ms = now ? now : 1;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_departing *d = &r->departing[i];
		if (d->id && now >= d->until_ms) {
			tp_remove_peer(r->tp, d->id);
			d->id = 0;
		}
		/* Removed: the old peers may drop our key now (on_left). Sent
		 * again while we keep them, as a member may enter the new
		 * configuration after us. */
		if (d->id && ack)
			tp_send_app(r->tp, d->id, r->members.config_id, REPLICA_APP_LEFT, NULL, 0);
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
	/* The core's next members are the table's voters; learners ride in the
	 * metadata only. */
	struct opx_cluster_config cc = {
		.config_id = next->config_id,
		.read_quorum = next->read_quorum,
		.write_quorum = next->write_quorum,
	};
	for (size_t i = 0; i < next->n; i++)
		if (!next->peers[i].learner)
			cc.nodes[cc.n_nodes++] = next->peers[i].id;
	int rc = opx_reconfigure(r->px, &cc, (const uint8_t *)buf, (uint32_t)len);
	if (rc == -EIO)
		replica_fail(r, "writing the stop-sign", rc);
	return rc;
}
