/*
 * Control commands of the replica (run on the control socket's threads) and
 * its status, as text and JSON.
 *
 * Status comes from the view the replica thread publishes every turn, so a
 * status call never touches the core or the sockets. `kv` commands work on
 * the user namespace of the KV (keys prefixed "u/"), apart from the
 * filesystem's keys, so scripts cannot corrupt the tree. kv-get --version,
 * and kv-put/kv-del --if-version (compare-and-set: the guard is checked in
 * log order where the entry is applied, so a mismatch is decided like a
 * write), give scripts and clients a linearizable register per key.
 * kv-put takes values as base64 too (--base64: NUL bytes cannot be in an
 * argument), up to CTL_KV_MAX_VALUE bytes.
 * kv-put and kv-del carry a change note (the key), so `omnifsctl kv watch`
 * sees them in the feed; `feed` serves the feed to watchers (long poll).
 * JSON answers are built with jansson, which escapes every string.
 */
#include "replica_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "kv.h"

#define USER_PREFIX "u/"

static void get_view(struct replica *r, struct replica_view *v)
{
	pthread_mutex_lock(&r->view_lock);
	*v = r->view;
	pthread_mutex_unlock(&r->view_lock);
}

/* A copy of the member table (malloc'd; NULL when out of memory). */
static struct membership *members_copy(struct replica *r)
{
	struct membership *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_lock(&r->members_lock);
	*m = r->members;
	pthread_mutex_unlock(&r->members_lock);
	return m;
}

static const char *role_name(const struct replica_view *v)
{
	if (v->mode == REPLICA_REMOVED)
		return "removed";
	if (v->mode == REPLICA_JOINING)
		return "joining";
	if (v->mode == REPLICA_LEARNER)
		return "learner";
	if (v->opx.role == OPX_ROLE_LEADER)
		return v->accept_phase ? "leader" : "candidate";
	return v->leader ? "follower" : "no-leader";
}

static const char *phase_name(enum opx_phase p)
{
	switch (p) {
	case OPX_PHASE_PREPARE:
		return "prepare";
	case OPX_PHASE_ACCEPT:
		return "accept";
	case OPX_PHASE_RECOVER:
		return "recover";
	default:
		return "none";
	}
}

/* Milliseconds since the peer was last heard, or -1 if never. */
static long long heard_ago(const struct replica_view *v, uint32_t i)
{
	uint64_t last = v->peer_stats[i].last_heard_ms;
	return last ? (long long)(v->now_ms - last) : -1;
}

/* Entries the peer trails the leader's decided index by (leader's view only). */
static long long peer_lag(const struct replica_view *v, uint32_t i)
{
	if (v->opx.role != OPX_ROLE_LEADER)
		return -1;
	uint64_t acc = v->opx.peers[i].accepted_idx;
	return acc >= v->opx.decided_idx ? 0 : (long long)(v->opx.decided_idx - acc);
}

static const char *peer_address(const struct membership *m, uint64_t id)
{
	const struct cfg_peer *p = m ? membership_find(m, id) : NULL;
	return p ? p->address : "?";
}

/* How this node reaches the leader, in words: "directly", "via n1", "by no route". */
static void route_name(const struct replica_view *v, char *buf, size_t len)
{
	if (v->route == REPLICA_ROUTE_DIRECT)
		snprintf(buf, len, "directly");
	else if (v->route == REPLICA_ROUTE_VIA)
		snprintf(buf, len, "via n%llu", (unsigned long long)v->via);
	else
		snprintf(buf, len, "by no route");
}

/* Entries applied here trail the highest decided index heard of. */
static unsigned long long lag_entries(const struct replica_view *v)
{
	return v->known_decided > v->applied_idx ? v->known_decided - v->applied_idx : 0;
}

/* Milliseconds since this node was last in step (0: it is). */
static unsigned long long lag_ms(const struct replica_view *v)
{
	return v->now_ms > v->in_step_ms ? v->now_ms - v->in_step_ms : 0;
}

/* The wall-clock time this node was last in step, "2026-12-06T09:45:00Z". */
static void stale_since(const struct replica_view *v, char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t t = ts.tv_sec - (time_t)(lag_ms(v) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- JSON, written with jansson (escaping included) ----------------------------- */

static void set_u64(json_t *o, const char *key, unsigned long long v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void set_i64(json_t *o, const char *key, long long v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void set_bool(json_t *o, const char *key, bool v)
{
	json_object_set_new(o, key, json_boolean(v));
}

static void set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v ? json_string(v) : json_null());
}

/* Writes o (compact, in the order its fields were set) and a newline, and
 * releases it. Out of memory on the way, the body stays empty. */
static void put_json(struct ctl_buf *out, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text)
		ctl_buf_printf(out, "%s\n", text);
	free(text);
	json_decref(o);
}

static void status_json(struct replica *r, const struct replica_view *v, struct ctl_buf *out)
{
	struct membership *m = members_copy(r);
	const struct opx_ballot *b = &v->opx.promise;
	char ballot[64], since[32] = "";
	snprintf(ballot, sizeof(ballot), "%u.%u.%llu", b->n, b->priority,
		 (unsigned long long)b->pid);
	bool stale = !v->writable || lag_entries(v) > 0;
	if (stale)
		stale_since(v, since, sizeof(since));
	json_t *o = json_object();
	if (!o) {
		free(m);
		return;
	}
	set_u64(o, "node", r->cfg.node_id);
	set_str(o, "cluster", r->cfg.cluster);
	set_str(o, "role", role_name(v));
	set_str(o, "phase", phase_name(v->opx.phase));
	set_u64(o, "leader", v->leader);
	set_str(o, "ballot", ballot);
	set_bool(o, "quorum", v->writable);
	set_bool(o, "caught_up", v->caught_up);
	set_u64(o, "decided_idx", v->opx.decided_idx);
	set_u64(o, "applied_idx", v->applied_idx);
	set_u64(o, "accepted_idx", v->opx.accepted_idx);
	set_u64(o, "compacted_idx", v->opx.compacted_idx);
	set_bool(o, "state_transfer", v->transferring);
	/* Of the transfer in progress, or the last one (0: none yet). */
	set_u64(o, "state_transfer_bytes", v->xfer_bytes);
	set_u64(o, "state_transfer_total_bytes", v->xfer_total);
	set_u64(o, "state_transfer_source", v->xfer_source);
	set_u64(o, "state_transfers", atomic_load(&r->xfers_done));
	set_u64(o, "proposals_in_flight", v->proposals_in_flight);
	set_u64(o, "config_id", v->config_id);
	set_bool(o, "removed", v->mode == REPLICA_REMOVED);
	set_bool(o, "joining", v->mode == REPLICA_JOINING);
	set_bool(o, "learner", v->mode == REPLICA_LEARNER);
	json_t *voters = json_array(), *learners = json_array();
	for (size_t i = 0; m && voters && learners && i < m->n; i++)
		json_array_append_new(m->peers[i].learner ? learners : voters,
				      json_integer((json_int_t)m->peers[i].id));
	json_object_set_new(o, "voters", voters ? voters : json_null());
	json_object_set_new(o, "learners", learners ? learners : json_null());
	set_str(o, "security", r->cfg.plaintext ? "plaintext" : "curve");
	set_bool(o, "quorum_connected", v->opx.quorum_connected);
	set_bool(o, "no_majority", v->no_quorum);
	set_str(o, "leader_route",
		v->route == REPLICA_ROUTE_DIRECT ? "direct"
		: v->route == REPLICA_ROUTE_VIA	 ? "via"
						 : "none");
	set_u64(o, "via", v->via);
	set_u64(o, "leader_decided_idx", v->known_decided);
	set_u64(o, "lag_entries", lag_entries(v));
	set_u64(o, "lag_ms", lag_ms(v));
	set_str(o, "stale_since", stale ? since : NULL);
	set_u64(o, "fetched_entries", v->fetched);
	set_u64(o, "relayed_proposals", v->relayed);
	set_u64(o, "fetching_from", v->fetching_from);
	set_u64(o, "tx_bytes", v->tx_bytes);
	json_t *peers = json_array();
	for (uint32_t i = 0; peers && i < v->opx.n_peers; i++) {
		const struct opx_peer_status *p = &v->opx.peers[i];
		const struct tp_peer_stats *st = &v->peer_stats[i];
		json_t *po = json_object();
		if (!po)
			break;
		set_u64(po, "id", p->pid);
		set_str(po, "address", peer_address(m, p->pid));
		set_bool(po, "reachable", p->heard_last_round);
		set_i64(po, "last_heard_ms_ago", heard_ago(v, i));
		set_i64(po, "lag", peer_lag(v, i));
		set_u64(po, "tx_frames", st->tx_frames);
		set_u64(po, "rx_frames", st->rx_frames);
		set_u64(po, "dropped", st->dropped_full + st->fault_out + st->fault_in);
		set_u64(po, "link_failures", st->downs);
		set_u64(po, "malformed", st->malformed);
		json_array_append_new(peers, po);
	}
	json_object_set_new(o, "peers", peers ? peers : json_null());
	put_json(out, o);
	free(m);
}

/* A state transfer's progress in words: "12.0 of about 40.0 MiB from n2".
 * The total is the source's estimate: never shown below what arrived. */
static void xfer_progress(const struct replica_view *v, char *buf, size_t len)
{
	double mib = 1024.0 * 1024.0, done = (double)v->xfer_bytes / mib;
	uint64_t total = v->xfer_total > v->xfer_bytes ? v->xfer_total : v->xfer_bytes;
	if (v->xfer_total)
		snprintf(buf, len, "%.1f of about %.1f MiB from n%llu", done, (double)total / mib,
			 (unsigned long long)v->xfer_source);
	else
		snprintf(buf, len, "%.1f MiB from n%llu", done, (unsigned long long)v->xfer_source);
}

/* "1,2,3" or, with learners, "voters 1,2,3, learners 4,5". */
static void member_roles(const struct membership *m, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (int learners = 0; learners < 2; learners++) {
		bool first = true;
		for (size_t i = 0; i < m->n && off < len; i++) {
			const struct cfg_peer *p = &m->peers[i];
			if (p->learner != (learners == 1))
				continue;
			const char *lead = !first			 ? ","
					   : learners			 ? ", learners "
					   : membership_voters(m) < m->n ? "voters "
									 : "";
			int n = snprintf(buf + off, len - off, "%s%llu", lead,
					 (unsigned long long)p->id);
			if (n < 0)
				return;
			off += (size_t)n;
			first = false;
		}
	}
}

static void status_text(struct replica *r, const struct replica_view *v, struct ctl_buf *out)
{
	const struct opx_ballot *b = &v->opx.promise;
	struct membership *m = members_copy(r);
	char ids[512] = "?";
	if (m)
		member_roles(m, ids, sizeof(ids));
	if (v->mode == REPLICA_REMOVED)
		ctl_buf_printf(out, "removed:     this node was removed from the cluster by a "
				    "membership change; it takes no writes\n");
	if (v->mode == REPLICA_JOINING)
		ctl_buf_printf(out, "joining:     waiting to be added (omnifsctl member add on a "
				    "member)\n");
	char route[32], since[32], behind[160], xfer[128] = "";
	route_name(v, route, sizeof(route));
	if (v->transferring) {
		char p[80];
		xfer_progress(v, p, sizeof(p));
		snprintf(xfer, sizeof(xfer), " (state transfer: %s)", p);
	}
	const char *quorum = v->writable    ? "yes (a write made here can be decided now)"
			     : v->no_quorum ? "no (cannot reach a majority: writes fail with EROFS)"
					    : "no (no route to a leader yet: writes wait)";
	stale_since(v, since, sizeof(since));
	char fetching[64] = "", leader[128];
	if (v->mode == REPLICA_LEARNER) {
		snprintf(fetching, sizeof(fetching), "fetching:    from n%llu\n",
			 (unsigned long long)v->fetching_from);
		/* No core: the leader its source follows; writes go to a
		 * voter, which forwards them. */
		const char *writes = v->route == REPLICA_ROUTE_VIA ? route : "nowhere yet";
		if (v->leader)
			snprintf(leader, sizeof(leader),
				 "n%llu, ballot b%u.%u.%llu (as its source says), writes go %s",
				 (unsigned long long)v->leader, b->n, b->priority,
				 (unsigned long long)b->pid, writes);
		else
			snprintf(leader, sizeof(leader), "none heard of yet, writes go %s", writes);
	} else {
		snprintf(leader, sizeof(leader), "n%llu, ballot b%u.%u.%llu, reached %s",
			 (unsigned long long)v->leader, b->n, b->priority,
			 (unsigned long long)b->pid, route);
	}
	if (v->writable && lag_entries(v) == 0)
		snprintf(behind, sizeof(behind), "0 entries (in step)");
	else if (v->writable)
		snprintf(behind, sizeof(behind), "%llu entries, last in step %llu ms ago",
			 lag_entries(v), lag_ms(v));
	else
		snprintf(
			behind, sizeof(behind),
			"%llu entries behind what it heard of; may be stale since %s (%llu ms ago)",
			lag_entries(v), since, lag_ms(v));
	ctl_buf_printf(out,
		       "node:        n%llu (cluster %s)\n"
		       "security:    %s\n"
		       "role:        %s (phase %s)\n"
		       "leader:      %s\n"
		       "quorum:      %s\n"
		       "decided:     @%llu (highest heard of: @%llu)\n"
		       "applied:     @%llu%s\n"
		       "lag:         %s\n"
		       "compacted:   @%llu\n"
		       "in flight:   %u proposals\n"
		       "members:     %s (configuration %u)\n"
		       "%s"
		       "peers:\n",
		       (unsigned long long)r->cfg.node_id, r->cfg.cluster,
		       r->cfg.plaintext ? "plaintext (links neither encrypted nor authenticated)"
					: "CURVE",
		       role_name(v), phase_name(v->opx.phase), leader, quorum,
		       (unsigned long long)v->opx.decided_idx, (unsigned long long)v->known_decided,
		       (unsigned long long)v->applied_idx, xfer, behind,
		       (unsigned long long)v->opx.compacted_idx, v->proposals_in_flight, ids,
		       v->config_id, fetching);
	for (uint32_t i = 0; i < v->opx.n_peers; i++) {
		const struct opx_peer_status *p = &v->opx.peers[i];
		long long ago = heard_ago(v, i), lag = peer_lag(v, i);
		char ago_s[32], lag_s[32];
		if (ago < 0)
			snprintf(ago_s, sizeof(ago_s), "never");
		else
			snprintf(ago_s, sizeof(ago_s), "%lld ms ago", ago);
		if (lag < 0)
			snprintf(lag_s, sizeof(lag_s), "-");
		else
			snprintf(lag_s, sizeof(lag_s), "%lld", lag);
		/* A link that failed and came back looks healthy now: say so. */
		char fails_s[48] = "";
		uint64_t downs = v->peer_stats[i].downs;
		if (downs)
			snprintf(fails_s, sizeof(fails_s), "  link failed %llu time%s",
				 (unsigned long long)downs, downs == 1 ? "" : "s");
		ctl_buf_printf(out, "  n%-4llu %-22s %-11s heard %-12s lag %s%s\n",
			       (unsigned long long)p->pid, peer_address(m, p->pid),
			       p->heard_last_round ? "reachable" : "unreachable", ago_s, lag_s,
			       fails_s);
	}
	free(m);
}

int replica_members_json(struct replica *r, struct ctl_buf *out)
{
	struct replica_view v;
	get_view(r, &v);
	struct membership *m = members_copy(r);
	json_t *o = json_object(), *members = json_array();
	if (!m || !o || !members) {
		free(m);
		json_decref(o);
		json_decref(members);
		return -ENOMEM;
	}
	set_str(o, "cluster", r->cfg.cluster);
	set_u64(o, "self", r->cfg.node_id);
	set_u64(o, "leader", v.leader);
	set_u64(o, "config_id", m->config_id);
	for (size_t i = 0; i < m->n; i++) {
		const struct cfg_peer *p = &m->peers[i];
		bool self = p->id == r->cfg.node_id, reachable = self;
		long long ago = self ? 0 : -1;
		for (uint32_t j = 0; j < v.opx.n_peers; j++) {
			if (v.opx.peers[j].pid == p->id) {
				reachable = v.opx.peers[j].heard_last_round;
				ago = heard_ago(&v, j);
			}
		}
		json_t *po = json_object();
		if (!po)
			break;
		set_u64(po, "id", p->id);
		set_str(po, "address", p->address);
		set_str(po, "role", p->learner ? "learner" : "voter");
		set_bool(po, "self", self);
		set_bool(po, "reachable", reachable);
		set_i64(po, "last_heard_ms_ago", ago);
		json_array_append_new(members, po);
	}
	json_object_set_new(o, "members", members);
	put_json(out, o);
	free(m);
	return 0;
}

void replica_status_line(struct replica *r, char *buf, size_t len)
{
	struct replica_view v;
	get_view(r, &v);
	if (v.mode == REPLICA_REMOVED) {
		snprintf(buf, len, "removed from the cluster (configuration %u): no writes",
			 v.config_id);
		return;
	}
	if (v.mode == REPLICA_JOINING) {
		snprintf(buf, len, "waiting to be added to the cluster (omnifsctl member add)");
		return;
	}
	char route[32], since[32], extra[96] = "", xfer[128] = "";
	if (!v.writable) {
		stale_since(&v, since, sizeof(since));
		snprintf(extra, sizeof(extra), ", NO QUORUM, may be stale since %s", since);
	} else if (lag_entries(&v) > 0) {
		snprintf(extra, sizeof(extra), ", lag %llu entries, %llu ms", lag_entries(&v),
			 lag_ms(&v));
	}
	if (v.transferring) {
		char p[80];
		xfer_progress(&v, p, sizeof(p));
		snprintf(xfer, sizeof(xfer), ", state transfer %s", p);
	}
	if (v.route == REPLICA_ROUTE_DIRECT)
		snprintf(route, sizeof(route), "reached directly");
	else if (v.route == REPLICA_ROUTE_VIA)
		snprintf(route, sizeof(route), "reached via n%llu", (unsigned long long)v.via);
	else
		snprintf(route, sizeof(route), "unreachable");
	char leader[96];
	if (v.mode == REPLICA_LEARNER)
		snprintf(leader, sizeof(leader), "leader n%llu, writes %s",
			 (unsigned long long)v.leader,
			 v.route == REPLICA_ROUTE_VIA ? route : "wait for a voter");
	else
		snprintf(leader, sizeof(leader), "leader n%llu %s", (unsigned long long)v.leader,
			 route);
	snprintf(buf, len, "%s, %s, applied @%llu of @%llu%s%s", role_name(&v), leader,
		 (unsigned long long)v.applied_idx, (unsigned long long)v.known_decided, extra,
		 xfer);
}

int replica_status_json(struct replica *r, struct ctl_buf *out)
{
	struct replica_view v;
	get_view(r, &v);
	status_json(r, &v, out);
	return 0;
}

static int user_key(const char *key, char *buf, size_t len, struct ctl_buf *out)
{
	if (key[0] == '\0' || strlen(key) + sizeof(USER_PREFIX) > len) {
		ctl_buf_printf(out, "keys are 1 to %zu bytes\n", len - sizeof(USER_PREFIX));
		return EINVAL;
	}
	snprintf(buf, len, "%s%s", USER_PREFIX, key);
	return 0;
}

/* Maps a proposal's outcome to the control status. */
static int propose_status(struct replica *r, int rc, struct ctl_buf *out)
{
	switch (rc) {
	case 0:
		return 0;
	case -EROFS:
		if (atomic_load(&r->mode) == REPLICA_REMOVED)
			ctl_buf_printf(out, "this node was removed from the cluster\n");
		else if (atomic_load(&r->mode) == REPLICA_JOINING)
			ctl_buf_printf(out, "this node has not been added to the cluster yet\n");
		else
			ctl_buf_printf(out, "this node cannot reach a majority of the cluster\n");
		return EROFS;
	case -ETIMEDOUT:
		ctl_buf_printf(out, "not decided within commit_timeout_ms; it may still be "
				    "applied later\n");
		return ETIMEDOUT;
	default:
		return -rc;
	}
}

/*
 * Versions on the control socket are the KV's version plus one: the applied
 * index at which the write became visible (`applied @V` in the status). The
 * first entry of a cluster has log index 0, so the KV's own numbers could
 * not keep 0 free to mean "absent".
 */
#define SHOWN_VERSION(kv_version) ((unsigned long long)(kv_version) + 1)

/* "--if-version V": V >= 0 into *version. */
static bool parse_version(const char *s, uint64_t *version)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*version = strtoull(s, &end, 10);
	return !errno && !*end;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A stopping daemon waits for the commands in progress: a long poll must
 * not hold it up for long (omnifsctl asks for 1 s). */
#define FEED_MAX_WAIT_MS 5000u
#define FEED_POLL_MS	 5u
#define FEED_MAX_BYTES	 (1u << 20)

/*
 * feed SINCE|now WAIT_MS: the change feed from index SINCE ("now": this
 * node's applied index) as kv_feed_read's batch. If nothing was applied at
 * or past SINCE yet, it waits up to WAIT_MS for an entry first (a long
 * poll: a watcher calls it in a loop, from the batch's next index, and so
 * resumes anywhere, on any connection, after any restart). The wait polls
 * the applied index: it never blocks the replica thread, and a stopping
 * replica ends it. ERANGE with "first N" if SINCE was dropped from the feed.
 */
static int feed_cmd(struct replica *r, const char *since_s, const char *wait_s, struct ctl_buf *out)
{
	uint64_t since, wait_ms;
	if (strcmp(since_s, "now") == 0)
		since = kv_applied_idx(r->kv);
	else if (!parse_version(since_s, &since))
		goto usage;
	if (!parse_version(wait_s, &wait_ms) || wait_ms > FEED_MAX_WAIT_MS)
		goto usage;
	struct timespec nap = {0, FEED_POLL_MS * 1000000L};
	for (uint64_t waited = 0; kv_applied_idx(r->kv) <= since && waited < wait_ms &&
				  !atomic_load(&r->stop) && !atomic_load(&r->failed);
	     waited += FEED_POLL_MS)
		nanosleep(&nap, NULL);
	struct kv_buf b;
	uint64_t first = 0;
	int rc = kv_feed_read(r->kv, since, FEED_MAX_BYTES, &b, &first);
	if (rc == -ERANGE) {
		ctl_buf_printf(out, "first %llu\n", (unsigned long long)first);
		return ERANGE;
	}
	if (rc)
		return -rc;
	rc = ctl_buf_append(out, b.data, b.len);
	free(b.data);
	return rc ? ENOMEM : 0;
usage:
	ctl_buf_printf(out, "usage: feed SINCE|now WAIT_MS (0 to %u)\n", FEED_MAX_WAIT_MS);
	return EINVAL;
}

/*
 * kv-put and kv-del. value NULL: a delete. guarded: only if the key is at
 * version if_version (0: only if absent; a put only). The guard is checked
 * where the entry is applied, in log order, so a mismatch is as
 * linearizable as a success and says the write was not applied. Answers the
 * version the put wrote ("V\n").
 */
static int kv_write_cmd(struct replica *r, const char *key, const void *value, size_t value_len,
			bool guarded, uint64_t if_version, struct ctl_buf *out)
{
	char k[1024];
	int st = user_key(key, k, sizeof(k), out);
	if (st)
		return st;
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	int rc = 0;
	if (guarded && if_version == 0)
		rc = kv_txn_add_guard_absent(&t, k, strlen(k));
	else if (guarded)
		rc = kv_txn_add_guard_version(&t, k, strlen(k), if_version - 1);
	else if (!value)
		rc = kv_txn_add_guard_present(&t, k, strlen(k));
	if (rc == 0 && value)
		rc = kv_txn_add_put(&t, k, strlen(k), value, value_len);
	else if (rc == 0)
		rc = kv_txn_add_delete(&t, k, strlen(k));
	if (rc == 0) {
		/* The socket is mode 0600: its caller runs as this daemon's user. */
		struct kv_note n = {.kind = value ? KV_NOTE_KV_PUT : KV_NOTE_KV_DEL,
				    .uid = (uint32_t)geteuid(),
				    .time_ms = wall_ms(),
				    .path = key,
				    .path_len = strlen(key)};
		rc = kv_txn_set_note(&t, &n);
	}
	struct kv_result res;
	if (rc == 0)
		rc = replica_propose(r, &t, &res);
	kv_txn_free(&t);
	if (rc == 0 && res.status == KV_CONFLICT && guarded) {
		/* Read after the refused entry applied here: the version it met,
		 * or a later one. */
		uint64_t now = 0;
		bool present = kv_get(r->kv, k, strlen(k), NULL, NULL, &now) == 0;
		if (present && if_version == 0)
			ctl_buf_printf(out,
				       "version mismatch: '%s' exists (version %llu), not absent\n",
				       key, SHOWN_VERSION(now));
		else if (present)
			ctl_buf_printf(out, "version mismatch: '%s' is at version %llu, not %llu\n",
				       key, SHOWN_VERSION(now), (unsigned long long)if_version);
		else
			ctl_buf_printf(out,
				       "version mismatch: '%s' is absent, not at version %llu\n",
				       key, (unsigned long long)if_version);
		return ECANCELED; /* omnifsctl: exit status 4 */
	}
	if (rc == 0 && res.status == KV_CONFLICT) {
		ctl_buf_printf(out, "no key '%s'\n", key);
		return ENOENT;
	}
	if (rc == 0 && value)
		ctl_buf_printf(out, "%llu\n", SHOWN_VERSION(res.log_idx));
	return propose_status(r, rc, out);
}

/*
 * kv-put [--if-version V] [--base64] [--] KEY VALUE, kv-del [--if-version V]
 * [--] KEY. --base64: VALUE is base64 (ctl_b64_decode), so it may hold any
 * byte; `--` ends the options (a key may start with "--").
 */
static int kv_write_args(struct replica *r, int argc, char **argv, struct ctl_buf *out)
{
	bool put = strcmp(argv[0], "kv-put") == 0, guarded = false, base64 = false;
	uint64_t if_version = 0;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--if-version") == 0 && !guarded && i + 1 < argc &&
			   parse_version(argv[i + 1], &if_version) && (put || if_version > 0)) {
			guarded = true;
			i++;
		} else if (strcmp(argv[i], "--base64") == 0 && put && !base64) {
			base64 = true;
		} else {
			goto usage;
		}
	}
	if (argc - i != (put ? 2 : 1))
		goto usage;
	if (!put)
		return kv_write_cmd(r, argv[i], NULL, 0, guarded, if_version, out);
	void *value = argv[i + 1];
	size_t value_len = strlen(argv[i + 1]);
	if (base64 && ctl_b64_decode(argv[i + 1], &value, &value_len) != 0) {
		ctl_buf_printf(out, "the value is not base64\n");
		return EINVAL;
	}
	int st;
	if (value_len > CTL_KV_MAX_VALUE) {
		ctl_buf_printf(out, "the value is %zu bytes, more than the limit of %u (1 MiB)\n",
			       value_len, CTL_KV_MAX_VALUE);
		st = EFBIG;
	} else {
		st = kv_write_cmd(r, argv[i], value, value_len, guarded, if_version, out);
	}
	if (base64)
		free(value);
	return st;
usage:
	ctl_buf_printf(out, "usage: kv-put [--if-version V] [--base64] KEY VALUE (V = 0: only if "
			    "absent) | kv-del [--if-version V] KEY (V >= 1)\n");
	return EINVAL;
}

/* kv-get KEY answers the raw value; kv-get --version KEY answers the
 * version on a line of its own, then the raw value (one read: they match). */
static int kv_get_cmd(struct replica *r, const char *key, bool with_version, struct ctl_buf *out)
{
	char k[1024];
	int st = user_key(key, k, sizeof(k), out);
	if (st)
		return st;
	void *val;
	size_t len;
	uint64_t version;
	int rc = kv_get(r->kv, k, strlen(k), &val, &len, &version);
	if (rc == -ENOENT) {
		ctl_buf_printf(out, "no key '%s'\n", key);
		return ENOENT;
	}
	if (rc != 0)
		return -rc;
	if (with_version)
		rc = ctl_buf_printf(out, "%llu\n", SHOWN_VERSION(version));
	if (rc == 0)
		rc = ctl_buf_append(out, val, len);
	free(val);
	return -rc;
}

/* Keys under the prefix, each followed by a NUL (omnifsctl prints lines). */
static int kv_list_cmd(struct replica *r, const char *prefix, struct ctl_buf *out)
{
	char k[1024];
	snprintf(k, sizeof(k), "%s%s", USER_PREFIX, prefix ? prefix : "");
	struct kv_view *v;
	struct kv_iter *it;
	int rc = kv_view_open(r->kv, &v);
	if (rc != 0)
		return -rc;
	rc = kv_iter_open(v, k, strlen(k), NULL, 0, &it);
	if (rc == 0) {
		const uint8_t *key, *val;
		size_t key_len, val_len;
		uint64_t version;
		size_t skip = sizeof(USER_PREFIX) - 1;
		while ((rc = kv_iter_next(it, &key, &key_len, &val, &val_len, &version)) == 1) {
			rc = ctl_buf_append(out, key + skip, key_len - skip);
			if (rc == 0)
				rc = ctl_buf_append(out, "", 1);
			if (rc != 0)
				break;
		}
		kv_iter_close(&it);
	}
	kv_view_close(&v);
	return rc < 0 ? -rc : 0;
}

static int fault_cmd(struct replica *r, const char *peer_s, const char *mode, struct ctl_buf *out)
{
	char *end;
	unsigned long long peer = strtoull(peer_s, &end, 10);
	bool in = strcmp(mode, "in") == 0 || strcmp(mode, "both") == 0;
	bool outd = strcmp(mode, "out") == 0 || strcmp(mode, "both") == 0;
	if (*end || (!in && !outd && strcmp(mode, "none") != 0)) {
		ctl_buf_printf(out, "usage: debug fault PEER in|out|both|none (PEER 0 = all)\n");
		return EINVAL;
	}
	int rc = replica_set_fault(r, peer, outd, in);
	if (rc == -ENOENT)
		ctl_buf_printf(out, "no peer n%llu\n", peer);
	return -rc;
}

/* "APPLIED_IDX DIGEST": the state's SHA-256 at one applied index. Two nodes
 * at the same applied index must print the same line. */
static int digest_cmd(struct replica *r, struct ctl_buf *out)
{
	struct kv_view *v;
	int rc = kv_view_open(r->kv, &v);
	if (rc != 0)
		return -rc;
	uint8_t d[KV_DIGEST_LEN];
	char hex[2 * KV_DIGEST_LEN + 1];
	rc = kv_view_digest(v, d);
	if (rc == 0) {
		kv_digest_hex(d, hex);
		ctl_buf_printf(out, "%llu %s\n", (unsigned long long)kv_view_applied_idx(v), hex);
	}
	kv_view_close(&v);
	return -rc;
}

static int member_list(struct replica *r, bool json, struct ctl_buf *out)
{
	struct membership *m = members_copy(r);
	if (!m)
		return ENOMEM;
	json_t *o = json ? json_object() : NULL, *members = json ? json_array() : NULL;
	if (json && (!o || !members)) {
		free(m);
		json_decref(o);
		json_decref(members);
		return ENOMEM;
	}
	if (json)
		set_u64(o, "config_id", m->config_id);
	else
		ctl_buf_printf(out, "configuration %u\n", m->config_id);
	for (size_t i = 0; i < m->n; i++) {
		const struct cfg_peer *p = &m->peers[i];
		const char *key = p->public_key[0] ? p->public_key : "-";
		if (json) {
			json_t *po = json_object();
			if (!po)
				break;
			set_u64(po, "id", p->id);
			set_str(po, "address", p->address);
			set_str(po, "public_key", key);
			set_str(po, "role", p->learner ? "learner" : "voter");
			json_array_append_new(members, po);
		} else {
			/* Voters' lines read as before learners existed (scripts
			 * parse them); a learner's says so. */
			ctl_buf_printf(out, "n%llu %s %s%s%s\n", (unsigned long long)p->id,
				       p->address, key, p->learner ? " learner" : "",
				       p->id == r->cfg.node_id ? " (this node)" : "");
		}
	}
	if (json) {
		json_object_set_new(o, "members", members);
		put_json(out, o);
	}
	free(m);
	return 0;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static bool parse_id(const char *s, uint64_t *id)
{
	char *end;
	if (*s < '1' || *s > '9')
		return false;
	errno = 0;
	*id = strtoull(s, &end, 10);
	return !errno && !*end;
}

/*
 * Waits until this node runs the next configuration (or a later one). A
 * stop-sign forwarded to a leader that is just being replaced is lost, as
 * any forwarded proposal is: propose it again now and then (a leader that
 * already holds one ignores the copy; once the configuration changed, the
 * replica refuses it as stale).
 */
static int wait_config(struct replica *r, const struct membership *next, struct ctl_buf *out)
{
	uint32_t config_id = next->config_id;
	uint64_t wait_ms = 4ull * r->cfg.commit_timeout_ms;
	uint64_t again_ms = 4ull * r->cfg.election_timeout_ms;
	if (wait_ms < 20000)
		wait_ms = 20000;
	uint64_t next_again = again_ms;
	for (uint64_t waited = 0; waited < wait_ms; waited += 20) {
		struct replica_view v;
		get_view(r, &v);
		if (waited >= next_again && v.config_id < config_id) {
			replica_propose_membership(r, next);
			next_again = waited + again_ms;
		}
		if (v.config_id >= config_id) {
			char ids[256];
			struct membership *run = members_copy(r), mine = *next;
			if (!run)
				return ENOMEM;
			membership_ids(run, ids, sizeof(ids));
			/* A node that lagged may have proposed a change on top of a
			 * configuration that had already ended: its stop-sign lost
			 * to another change, whose number it then sees. */
			mine.base = run->base;
			mine.read_quorum = run->read_quorum;
			mine.write_quorum = run->write_quorum;
			bool ours = run->config_id != config_id || membership_equal(&mine, run);
			free(run);
			if (!ours) {
				ctl_buf_printf(out,
					       "another change made configuration %u (members %s): "
					       "see `omnifsctl member list` and retry\n",
					       config_id, ids);
				return EAGAIN;
			}
			ctl_buf_printf(out, "configuration %u: members %s\n", v.config_id, ids);
			return 0;
		}
		pause_ms(20);
	}
	ctl_buf_printf(out,
		       "configuration %u was proposed but is not running here yet (no "
		       "quorum?): see `omnifsctl member list` before trying again\n",
		       config_id);
	return ETIMEDOUT;
}

/*
 * Proposals are deduplicated by (node id, sequence), and the state remembers
 * every id that ever proposed: a new node reusing such an id would start its
 * sequences over and see its writes taken for old duplicates.
 */
static bool ever_proposed(struct replica *r, uint64_t id)
{
	struct kv_view *v;
	uint64_t seq;
	if (kv_view_open(r->kv, &v) != 0)
		return false;
	bool seen = kv_view_dedup_hwm(v, id, &seq) == 0;
	kv_view_close(&v);
	return seen;
}

/*
 * A wrong key would make a member that can never connect, and the members
 * cannot check a key before the change (they refuse unknown ones). But a
 * node that is to join is running and dialling us with its key, and the
 * transport remembers the keys it refused: ask for it, for up to 5 s (the
 * node may be starting). -ENOTCONN with the reason in out if never seen.
 */
static int check_key_seen(struct replica *r, const struct cfg_peer *add, struct ctl_buf *out)
{
	uint8_t key[TP_KEY_LEN];
	if (tp_key_from_z85(add->public_key, key) != 0)
		return 0; /* membership_next has refused it already */
	for (int waited = 0; waited <= 5000; waited += 200) {
		int seen = replica_key_seen(r, key);
		if (seen < 0)
			return seen;
		if (seen)
			return 0;
		pause_ms(200);
	}
	ctl_buf_printf(out,
		       "no node has tried to connect here with key %s in the last minute: start "
		       "n%llu first (with join = true it waits to be added) and check that the key "
		       "is the public-key line of its key file\n",
		       add->public_key, (unsigned long long)add->id);
	return -ENOTCONN;
}

/*
 * member add [--learner] ID HOST:PORT [KEY] | remove ID | replace OLD ID
 * HOST:PORT [KEY] | rekey ID KEY | promote ID | demote ID: one stop-sign
 * with the next member table; returns once this node runs it. promote
 * makes a learner a voter, demote a voter a learner. rekey swaps a member's public key: like add, only once
 * the node has tried to connect with the new key (it was restarted with its
 * new key file, and is refused until the change); the members drop the old
 * key as they enter the new configuration.
 */
static int member_change(struct replica *r, int argc, char **argv, struct ctl_buf *out)
{
	const char *cmd = argv[0];
	uint64_t remove_id = 0;
	struct cfg_peer add = {0};
	int first_add = 0;
	uint64_t rekey_id = 0, role_id = 0;
	bool to_learner = false;
	if (strcmp(cmd, "member-add") == 0 && argc >= 2 && strcmp(argv[1], "--learner") == 0) {
		add.learner = true;
		argv++;
		argc--;
	}
	if ((strcmp(cmd, "member-promote") == 0 || strcmp(cmd, "member-demote") == 0) &&
	    argc == 2) {
		if (!parse_id(argv[1], &role_id))
			goto usage;
		to_learner = strcmp(cmd, "member-demote") == 0;
	} else if (strcmp(cmd, "member-rekey") == 0 && argc == 3) {
		if (!parse_id(argv[1], &rekey_id))
			goto usage;
		if (r->cfg.plaintext) {
			ctl_buf_printf(out, "plaintext mode: nodes have no keys to change\n");
			return EINVAL;
		}
		snprintf(add.public_key, sizeof(add.public_key), "%s", argv[2]);
	} else if (strcmp(cmd, "member-remove") == 0 && argc == 2) {
		if (!parse_id(argv[1], &remove_id))
			goto usage;
	} else if (strcmp(cmd, "member-add") == 0 && (argc == 3 || argc == 4)) {
		first_add = 1;
	} else if (strcmp(cmd, "member-replace") == 0 && (argc == 4 || argc == 5)) {
		if (!parse_id(argv[1], &remove_id))
			goto usage;
		first_add = 2;
	} else {
		goto usage;
	}
	if (first_add) {
		if (!parse_id(argv[first_add], &add.id))
			goto usage;
		snprintf(add.address, sizeof(add.address), "%s", argv[first_add + 1]);
		if (argc > first_add + 2)
			snprintf(add.public_key, sizeof(add.public_key), "%s", argv[first_add + 2]);
	}
	if (atomic_load(&r->mode) == REPLICA_LEARNER) {
		ctl_buf_printf(out, "this node is a learner: run membership changes on a voter\n");
		return EROFS;
	}
	if (atomic_load(&r->mode) != REPLICA_MEMBER) {
		ctl_buf_printf(out,
			       "this node is not a member of the cluster: run it on a member\n");
		return EROFS;
	}
	struct membership *cur = members_copy(r), *next = malloc(sizeof(*next));
	char err[300];
	int rc = cur && next ? 0 : -ENOMEM;
	if (rc == 0 && role_id)
		rc = membership_set_role(next, cur, role_id, to_learner, err, sizeof(err));
	else if (rc == 0 && rekey_id)
		rc = membership_rekey(next, cur, rekey_id, add.public_key, err, sizeof(err));
	else if (rc == 0)
		rc = membership_next(next, cur, remove_id, first_add ? &add : NULL,
				     r->cfg.plaintext, err, sizeof(err));
	if (rc == -EINVAL)
		ctl_buf_printf(out, "%s\n", err);
	if (rc == 0 && first_add && ever_proposed(r, add.id)) {
		ctl_buf_printf(out,
			       "n%llu was a member before: a new node needs an id never used in "
			       "this cluster\n",
			       (unsigned long long)add.id);
		rc = -EEXIST;
	}
	if (rc == 0 && (first_add || rekey_id) && !r->cfg.plaintext) { /* the slow check last */
		add.id = rekey_id ? rekey_id : add.id;
		rc = check_key_seen(r, &add, out);
	}
	if (rc == 0)
		rc = replica_propose_membership(r, next);
	int st = -rc;
	switch (rc) {
	case 0:
		st = wait_config(r, next, out);
		break;
	case -EALREADY:
		ctl_buf_printf(out,
			       "a membership change is in progress: wait for it, then retry\n");
		st = EBUSY;
		break;
	case -ESTALE:
		ctl_buf_printf(out, "the membership changed meanwhile: see `omnifsctl member "
				    "list` and retry\n");
		st = EAGAIN;
		break;
	case -E2BIG:
		ctl_buf_printf(out, "the member table is too large for one stop-sign\n");
		break;
	case -EROFS:
		ctl_buf_printf(out,
			       "this node is not a member of the cluster: run it on a member\n");
		break;
	}
	free(cur);
	free(next);
	return st;
usage:
	ctl_buf_printf(out, "usage: member add [--learner] ID HOST:PORT [KEY] | member remove ID | "
			    "member replace OLD_ID NEW_ID HOST:PORT [KEY] | member rekey ID "
			    "NEW_KEY | member promote ID | member demote ID\n");
	return EINVAL;
}

int replica_control(struct replica *r, int argc, char **argv, struct ctl_buf *out)
{
	const char *cmd = argv[0];
	if (strcmp(cmd, "status") == 0 && argc <= 2) {
		struct replica_view v;
		get_view(r, &v);
		if (argc == 2 && strcmp(argv[1], "--json") == 0)
			status_json(r, &v, out);
		else if (argc == 1)
			status_text(r, &v, out);
		else
			goto usage;
		return 0;
	}
	if (strcmp(cmd, "barrier") == 0 && argc == 1)
		return propose_status(r, replica_barrier(r), out);
	if (strcmp(cmd, "kv-get") == 0 && argc == 2)
		return kv_get_cmd(r, argv[1], false, out);
	if (strcmp(cmd, "kv-get") == 0 && argc == 3 && strcmp(argv[1], "--version") == 0)
		return kv_get_cmd(r, argv[2], true, out);
	if (strcmp(cmd, "kv-put") == 0 || strcmp(cmd, "kv-del") == 0)
		return kv_write_args(r, argc, argv, out);
	if (strcmp(cmd, "kv-list") == 0 && argc <= 2)
		return kv_list_cmd(r, argc == 2 ? argv[1] : NULL, out);
	if (strcmp(cmd, "digest") == 0 && argc == 1)
		return digest_cmd(r, out);
	if (strcmp(cmd, "feed") == 0 && argc == 3)
		return feed_cmd(r, argv[1], argv[2], out);
	if (strcmp(cmd, "member-list") == 0 && argc <= 2) {
		if (argc == 2 && strcmp(argv[1], "--json") != 0)
			goto usage;
		return member_list(r, argc == 2, out);
	}
	if (strncmp(cmd, "member-", 7) == 0)
		return member_change(r, argc, argv, out);
	if (strcmp(cmd, "debug-fault") == 0 && argc == 3)
		return fault_cmd(r, argv[1], argv[2], out);
usage:
	ctl_buf_printf(out, "unknown command or wrong arguments: see omnifsctl -h\n");
	return EINVAL;
}
