/*
 * The replica: lifecycle and the loop of the replica thread. See replica.h.
 *
 * One turn: poll the sockets and the wake-up eventfd until the next tick;
 * feed incoming frames to the core (or to the state transfer); take queued
 * proposals and append them; tick on schedule; flush the core's batch so
 * everything appended this turn goes to disk in one write (group commit);
 * send what the core wants sent, then sync the log (a leader's new entries
 * leave before its own sync, so its fsync and its followers' overlap; see
 * sp_leader_flush in consensus/seqpaxos_leader.c); apply newly decided
 * entries and wake their proposers; then housekeeping (expired proposals,
 * compaction, state transfer, status, watchdog).
 */
#include "replica_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "kv.h"
#include "log.h"
#include "rocks_util.h"
#include "sdnotify.h"
#include "tp_config.h"

/* Proposals in flight per node: well inside the KV's dedup window, so every
 * retry of an in-flight proposal is still recognised. */
#define REPLICA__MAX_IN_FLIGHT (KV_DEDUP_WINDOW / 2)
/* How often the free space of the data dir is looked at. */
#define REPLICA__DISK_CHECK_MS 10
/* Proposals appended per turn, so one turn stays short. At least the most
 * in flight: a turn that takes the queue empties it, which proposers queued
 * behind another count on to skip waking the thread (proposals_submit). */
#define REPLICA__TAKE_PER_TURN 1024
_Static_assert(REPLICA__TAKE_PER_TURN >= REPLICA__MAX_IN_FLIGHT,
	       "a turn must take every queued proposal");
/* How long a leader holds back a Decide that no follower waits for, in the
 * hope that the next AcceptDecide carries it (decide_with_next): longer
 * than a client takes to send its next write, short beside a tick. */
#define REPLICA__DECIDE_HOLD_US 1000

void replica_fail(struct replica *r, const char *what, int rc)
{
	if (atomic_exchange(&r->failed, true))
		return;
	/* The stores keep the cause (a full disk, a RocksDB error): say it. */
	const char *log_cause = r->log ? opx_rocks_errmsg(r->log) : "";
	const char *kv_cause = r->kv ? kv_errmsg(r->kv) : "";
	log_err("replica: %s: %s%s%s%s%s; stopping this node (restart it to recover from disk)",
		what, strerror(-rc), log_cause[0] ? "; log store: " : "", log_cause,
		kv_cause[0] ? "; state store: " : "", kv_cause);
	atomic_store(&r->stop, true);
}

static uint32_t ticks_of(uint32_t ms, uint32_t tick_ms)
{
	uint32_t t = (ms + tick_ms - 1) / tick_ms;
	return t ? t : 1;
}

/* The core's configuration: the voters in m (learners are no business of
 * the core's), the tuning in c. */
static void opx_config_of(const struct membership *m, const struct cfg *c, struct opx_config *oc)
{
	memset(oc, 0, sizeof(*oc));
	oc->cluster.config_id = m->config_id;
	for (size_t i = 0; i < m->n; i++)
		if (!m->peers[i].learner)
			oc->cluster.nodes[oc->cluster.n_nodes++] = m->peers[i].id;
	oc->cluster.read_quorum = m->read_quorum;
	oc->cluster.write_quorum = m->write_quorum;
	oc->pid = c->node_id;
	oc->election_ticks = ticks_of(c->election_timeout_ms, c->tick_ms);
	oc->resend_ticks = ticks_of(c->resend_timeout_ms, c->tick_ms);
	oc->flush_ticks = ticks_of(c->flush_timeout_ms, c->tick_ms);
	oc->batch_size = c->batch_size;
	oc->leader_priority = c->leader_priority;
	oc->snapshot = &replica_snapshot_ops;
	oc->snapshot_only_when_compacted = true;
	/* The leader's fsync overlaps its followers' (send_outgoing syncs). */
	oc->sync_after_send = true;
	/* A follower that forwarded nothing lately is told of a decision with
	 * the next entries, or after REPLICA__DECIDE_HOLD_US (send_owed_decides). */
	oc->decide_with_next = true;
}

static bool knows_no_quorum(struct replica *r);

static void publish_view(struct replica *r, uint64_t now)
{
	struct replica_view v;
	memset(&v, 0, sizeof(v));
	v.mode = r->mode;
	v.config_id = r->members.config_id;
	v.base = r->members.base;
	v.applied_idx = r->applied_idx;
	v.transferring = r->xfer.active;
	v.xfer_bytes = r->xfer.bytes;
	v.xfer_total = r->xfer.total;
	v.xfer_source = r->xfer.source;
	if (r->px) {
		opx_get_status(r->px, &v.opx);
		v.leader = opx_current_leader(r->px, &v.accept_phase);
		/* Indexes as the rest of omnifs counts them: global. */
		v.opx.decided_idx += v.base;
		v.opx.accepted_idx += v.base;
		v.opx.compacted_idx += v.base;
		for (uint32_t i = 0; i < v.opx.n_peers && i < OPX_MAX_NODES; i++)
			v.opx.peers[i].accepted_idx += v.base;
	} else {
		/* No core (removed, or waiting to be added): what this node knows
		 * is decided is what its configuration ended with. */
		v.opx.pid = r->cfg.node_id;
		v.opx.decided_idx = v.opx.accepted_idx = v.opx.compacted_idx = v.base;
		if (r->mode == REPLICA_LEARNER) {
			/* Not followed: the leader its sources follow. */
			v.opx.promise = r->learn.leader;
			v.leader = r->learn.leader.pid;
		}
	}
	/* In step: a route to a leader with a quorum, and everything applied
	 * that this node or any peer it hears knows to be decided. (Not the
	 * core's Accept phase: a node cut from the leader alone never gets
	 * there, yet it is served through a peer.) */
	v.route = r->step.route;
	v.via = r->step.via;
	v.known_decided = r->step.known_decided > v.opx.decided_idx ? r->step.known_decided
								    : v.opx.decided_idx;
	v.in_step_ms = r->step.in_step_ms;
	v.fetched = r->step.fetched;
	v.relayed = r->step.relayed;
	v.fetching_from = r->mode == REPLICA_LEARNER ? r->learn.source : 0;
	v.no_quorum = knows_no_quorum(r);
	v.writable = (r->mode == REPLICA_MEMBER || r->mode == REPLICA_LEARNER) &&
		     v.route != REPLICA_ROUTE_NONE && !v.no_quorum;
	v.caught_up = v.route != REPLICA_ROUTE_NONE && !r->xfer.active &&
		      r->applied_idx >= v.known_decided;
	v.proposals_in_flight = proposals_in_flight(&r->props);
	/* A leader counts once it leads (accept phase), not every candidate
	 * of an election; a learner counts the leaders its sources follow. */
	if (v.leader && (v.accept_phase || r->mode == REPLICA_LEARNER) &&
	    v.leader != r->seen_leader) {
		r->seen_leader = v.leader;
		r->leader_changes++;
	}
	v.leader_changes = r->leader_changes;
	for (uint32_t i = 0; i < v.opx.n_peers && i < OPX_MAX_NODES; i++)
		tp_peer_stats(r->tp, v.opx.peers[i].pid, &v.peer_stats[i]);
	/* Summed over every member now and then, not every turn: with many
	 * learners it is a loop over the transport's peers per member. */
	if (now - r->tx_bytes_ms >= 100) {
		r->tx_bytes_ms = now;
		r->tx_bytes = 0;
		for (size_t i = 0; i < r->members.n; i++) {
			struct tp_peer_stats st;
			if (r->members.peers[i].id != r->cfg.node_id &&
			    tp_peer_stats(r->tp, r->members.peers[i].id, &st) == 0)
				r->tx_bytes += st.tx_bytes;
		}
	}
	v.tx_bytes = r->tx_bytes;
	v.now_ms = now;
	pthread_mutex_lock(&r->view_lock);
	r->view = v;
	pthread_mutex_unlock(&r->view_lock);
}

/* Carries out one request posted by another thread. */
static int serve_one(struct replica *r, const struct replica_ctl_request *req)
{
	switch (req->kind) {
	case REPLICA_CTL_RECONFIGURE:
		return replica_reconfigure_now(r, req->next);
	case REPLICA_CTL_KEY_SEEN:
		return tp_key_refused_since(r->tp, req->key, tp_now_ms() - 60000);
	case REPLICA_CTL_APPLY_HOOK:
		/* Between two applies: the old hook is not running now, and
		 * from here on only the new one is called. */
		r->hook = req->hook;
		r->hook_ctx = req->hook_ctx;
		return 0;
	case REPLICA_CTL_FAULT:
		break;
	}
	return tp_set_fault(r->tp, req->peer, req->drop_out, req->drop_in);
}

/*
 * Serves the requests queued so far. They are taken off the queue under
 * ctl_lock and carried out without it (a reconfiguration writes the log);
 * their callers wait for done, so the memory stays theirs and valid.
 */
static void serve_ctl_requests(struct replica *r)
{
	pthread_mutex_lock(&r->ctl_lock);
	struct replica_ctl_request *reqs = r->ctl_queue;
	r->ctl_queue = NULL;
	pthread_mutex_unlock(&r->ctl_lock);
	if (!reqs)
		return;
	for (struct replica_ctl_request *q = reqs; q; q = q->next_req)
		q->rc = serve_one(r, q);
	pthread_mutex_lock(&r->ctl_lock);
	for (struct replica_ctl_request *q = reqs; q;) {
		struct replica_ctl_request *next = q->next_req;
		q->done = true; /* from here on q may be gone: its caller returns */
		q = next;
	}
	pthread_cond_broadcast(&r->ctl_done);
	pthread_mutex_unlock(&r->ctl_lock);
}

static void append_one(struct replica *r, const uint8_t *entry, size_t len)
{
	int rc = opx_append(r->px, entry, (uint32_t)len);
	if (rc == -EIO)
		replica_fail(r, "appending to the log", rc);
	/* -ESHUTDOWN (configuration ending) and others: the proposal times out. */
}

static void reappend_cb(void *ctx, const struct proposal *pr)
{
	struct replica *r = ctx;
	append_one(r, pr->entry, pr->len);
}

unsigned replica_reappend_in_flight(struct replica *r)
{
	return proposals_for_each_in_flight(&r->props, reappend_cb, r);
}

/*
 * A member that is not the leader sends each proposal to the leader once, in
 * a ProposalForward the core keeps no copy of. It is lost with the frames in
 * flight when the TCP connection carrying it fails (a reset, a heartbeat
 * timeout) or, before that, when the link's send queue is full. Either way
 * its proposer would wait for commit_timeout_ms although the leader is
 * there. So the proposals still in flight are handed to the core again when
 * the link to the leader comes back up (handle_incoming) and
 * resend_timeout_ms after a forward could not be queued (send_queued); the
 * KV's dedup table applies each id once. Only then: a commit that is merely
 * slow costs no copies. (Relayed proposals are resent by replica_step.c.)
 */
static void reforward_later(struct replica *r, uint64_t at_ms)
{
	if (!r->reforward_at_ms || at_ms < r->reforward_at_ms)
		r->reforward_at_ms = at_ms;
}

static void reforward_if_due(struct replica *r, uint64_t now)
{
	if (!r->reforward_at_ms || now < r->reforward_at_ms)
		return;
	r->reforward_at_ms = 0;
	if (opx_is_leader(r->px))
		return;
	unsigned n = replica_reappend_in_flight(r);
	if (n)
		log_kv(LOG_LEVEL_INFO, opx_promise(r->px).pid, LOG_NO_INDEX,
		       "replica: forwarded %u undecided proposals to the leader n%llu again "
		       "(its link came back, or a forward could not be queued)",
		       n, (unsigned long long)opx_promise(r->px).pid);
}

/*
 * "Knows it cannot reach a majority": no quorum in any heartbeat round for
 * three rounds in a row, counted in ticks of the core's clock rather than in
 * wall time. A loop turn held up (a long synced write, a loaded machine) can
 * make a healthy node miss a round; after such a stall the missed ticks are
 * replayed in a short burst (tick_due) that costs at most one round, so a
 * stall alone never adds up to three, and failing writes with EROFS then
 * would be a lie. Before a new core first had a quorum, the wait is ten
 * rounds: peers reconnect to a restarted node with a back-off. A learner
 * counts from the last answer of a node it fetches from (replica_learn.c).
 * Any thread: the counts are atomic.
 */
static bool knows_no_quorum(struct replica *r)
{
	enum replica_mode mode = atomic_load(&r->mode);
	if (mode != REPLICA_MEMBER && mode != REPLICA_LEARNER)
		return true;
	/* A route to a leader with a quorum (replica_step.c) is a quorum for
	 * writes, whatever BLE says of this node's own links: a node linked to
	 * the leader alone (the quorum-loss scenario) follows it. A majority
	 * within one hop may be electing a leader this node will reach. */
	if (atomic_load(&r->has_route) || atomic_load(&r->quorum_in_reach))
		return false;
	uint64_t round = ticks_of(r->cfg.election_timeout_ms, r->cfg.tick_ms);
	uint64_t rounds = atomic_load(&r->had_qc) ? 3 : 10;
	return atomic_load(&r->ticks_without_qc) > rounds * round;
}

/*
 * Proposals: fail them at once if this node knows it cannot reach a
 * majority; hold them while the last heartbeat round had no quorum (until
 * it is back, or known lost: then they fail with EROFS rather than time
 * out); otherwise append them. After a leader change, proposals in flight
 * may have been lost with the old leader: append them again with the same
 * ids (the KV applies each id at most once).
 */
static void handle_proposals(struct replica *r, uint64_t now)
{
	/* Moving to a newer configuration (replica_members.c): its core takes
	 * them, its peers answer; this one's may no longer. */
	if (r->heard && r->mode == REPLICA_MEMBER)
		return;
	if (knows_no_quorum(r)) {
		/* Also when removed, or not added yet: nothing can be decided
		 * through this node. */
		proposals_fail_queued(&r->props, -EROFS);
		return;
	}
	struct proposal *taken[64];
	size_t total = 0, n;
	if (r->mode == REPLICA_LEARNER) {
		/* No core: every write goes to a voter (replica_learn.c), or
		 * waits for one to be in reach. */
		while (r->step.route == REPLICA_ROUTE_VIA && total < REPLICA__TAKE_PER_TURN &&
		       (n = proposals_take_queued(&r->props, taken, 64)) > 0) {
			replica_step_relay(r, taken, n);
			total += n;
		}
		return;
	}
	struct opx_ballot promise = opx_promise(r->px);
	if (!opx_ballot_eq(&promise, &r->last_promise)) {
		bool had_leader = r->last_promise.pid != 0;
		r->last_promise = promise;
		if (had_leader)
			replica_reappend_in_flight(r);
	}
	if (!opx_is_quorum_connected(r->px) && atomic_load(&r->had_qc) &&
	    !atomic_load(&r->has_route))
		return; /* lost it: wait for it, or for knowing it is gone */
	reforward_if_due(r, now);
	while (total < REPLICA__TAKE_PER_TURN &&
	       (n = proposals_take_queued(&r->props, taken, 64)) > 0) {
		for (size_t i = 0; i < n; i++)
			append_one(r, taken[i]->entry, taken[i]->len);
		replica_step_relay(r, taken, n);
		total += n;
	}
}

static void handle_incoming(struct replica *r, uint64_t now)
{
	struct tp_frame f;
	while (tp_recv(r->tp, &f) == 0) {
		if (f.is_app && f.app.app_type >= REPLICA_APP_STEP) {
			replica_step_on_app(r, &f, now);
			continue;
		}
		if (f.is_app) {
			replica_members_on_app(r, &f, now);
			continue;
		}
		if (!replica_msg_is_current(r, &f.msg, now))
			continue;
		int rc = opx_handle_incoming(r->px, &f.msg);
		if (rc == -EIO) {
			replica_fail(r, "handling a consensus message", rc);
			return;
		}
	}
	struct tp_event ev;
	while (tp_next_event(r->tp, &ev) == 0) {
		if (ev.type == TP_EVENT_UP) {
			log_kv(LOG_LEVEL_INFO, ev.peer, LOG_NO_INDEX,
			       "replica: link to n%llu is up", (unsigned long long)ev.peer);
			if (r->px)
				opx_reconnected(r->px, ev.peer);
			if (r->px && ev.peer == opx_promise(r->px).pid)
				reforward_later(r, now);
		} else {
			log_kv(LOG_LEVEL_INFO, ev.peer, LOG_NO_INDEX,
			       "replica: link to n%llu is down", (unsigned long long)ev.peer);
		}
	}
}

/* Sends what the core queued, without syncing the log (see one_turn). */
static void send_queued(struct replica *r)
{
	if (!r->px)
		return;
	const struct opx_msg *out;
	size_t n = opx_take_outgoing(r->px, &out);
	for (size_t i = 0; i < n; i++) {
		int rc = tp_send_msg(r->tp, &out[i]);
		if (rc == -EAGAIN && out[i].type == OPX_MSG_PROPOSAL_FORWARD)
			reforward_later(r, proposals_now_ms() + r->cfg.resend_timeout_ms);
		if (rc != 0 && rc != -EAGAIN)
			log_kv(LOG_LEVEL_DEBUG, out[i].to, LOG_NO_INDEX,
			       "replica: sending %s to n%llu: %s", opx_msg_type_name(out[i].type),
			       (unsigned long long)out[i].to, strerror(-rc));
	}
}

/* A leader's new entries go out unsynced (sync_after_send): this makes
 * them durable. The core syncs them itself before anything rests on them
 * (a decision, a message other than their AcceptDecides, another write), so
 * where a turn calls this decides only what overlaps the fdatasync. */
static void sync_log(struct replica *r)
{
	if (r->px && opx_sync(r->px) == -EIO)
		replica_fail(r, "syncing the log", -EIO);
}

static void send_outgoing(struct replica *r)
{
	send_queued(r);
	sync_log(r);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Decides the core holds back (decide_with_next) go out once they have
 * waited REPLICA__DECIDE_HOLD_US without an AcceptDecide to ride with. A
 * follower whose writers forwarded a proposal in the last two resend
 * periods (a second by default; lock waiters among them) is told at once
 * by the core; one with readers and watchers alone a millisecond later at
 * most. With one client writing at the leader the next write nearly
 * always comes first: a follower is then woken once per entry, not twice.
 */
static void send_owed_decides(struct replica *r)
{
	if (!r->px || !opx_owes_decides(r->px)) {
		r->decides_owed_us = 0;
		return;
	}
	uint64_t now = now_us();
	if (!r->decides_owed_us) {
		r->decides_owed_us = now;
		return;
	}
	if (now - r->decides_owed_us < REPLICA__DECIDE_HOLD_US)
		return;
	opx_send_owed_decides(r->px);
	r->decides_owed_us = 0;
}

/* How long the next wait may sleep: until the next tick, or until held
 * back Decides are due. */
static long wait_ms(struct replica *r, uint64_t now_ms)
{
	long timeout = r->next_tick_ms > now_ms ? (long)(r->next_tick_ms - now_ms) : 0;
	if (r->decides_owed_us) {
		uint64_t due = r->decides_owed_us + REPLICA__DECIDE_HOLD_US, now = now_us();
		long left = due > now ? (long)((due - now + 999) / 1000) : 0;
		if (left < timeout)
			timeout = left;
	}
	return timeout;
}

static void tick_due(struct replica *r, uint64_t now)
{
	if (now < r->next_tick_ms)
		return;
	/* Late by whole ticks: the thread waited for the CPU (or the disk);
	 * the core then judges its peers' silence by that. */
	uint64_t late = (now - r->next_tick_ms) / r->cfg.tick_ms;
	if (late > 0 && r->px)
		opx_turn_late(r->px, late > UINT32_MAX ? UINT32_MAX : (uint32_t)late);
	/* After a long stall, do not replay every missed tick in a burst. */
	if (now - r->next_tick_ms > 10ull * r->cfg.tick_ms)
		r->next_tick_ms = now;
	while (now >= r->next_tick_ms) {
		int rc = r->px ? opx_tick(r->px) : 0;
		if (rc == -EIO) {
			replica_fail(r, "ticking the consensus core", rc);
			return;
		}
		if (r->px && opx_is_quorum_connected(r->px)) {
			atomic_store(&r->ticks_without_qc, 0);
			atomic_store(&r->had_qc, true);
		} else {
			atomic_fetch_add(&r->ticks_without_qc, 1);
		}
		r->next_tick_ms += r->cfg.tick_ms;
	}
}

/*
 * A node stops itself (fail-stop, like any storage failure) before its disk
 * is full rather than when a write fails: RocksDB's background work after a
 * failed write on a full disk is not to be trusted (its own checks abort the
 * process in some builds). The reserve is an eighth of the filesystem, at
 * most 64 MiB: room for the writes of the turns between two looks (every
 * REPLICA__DISK_CHECK_MS, not every turn: the loop turns thousands of times a second
 * under load) and RocksDB's own.
 */
static bool disk_nearly_full(struct replica *r, uint64_t now)
{
	if (now - r->disk_checked_ms < REPLICA__DISK_CHECK_MS)
		return false;
	r->disk_checked_ms = now;
	struct statvfs sv;
	if (statvfs(r->cfg.data_dir, &sv) != 0)
		return false; /* the stores report their own errors */
	uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t reserve = total / 8 < (64u << 20) ? total / 8 : (64u << 20);
	if (avail >= reserve)
		return false;
	char what[PATH_MAX + 128];
	snprintf(what, sizeof(what),
		 "the data dir %s has %llu KiB free, under its reserve of %llu KiB",
		 r->cfg.data_dir, (unsigned long long)(avail >> 10),
		 (unsigned long long)(reserve >> 10));
	replica_fail(r, what, -ENOSPC);
	return true;
}

static void watchdog(struct replica *r, uint64_t now)
{
	if (r->watchdog_ms && now - r->last_watchdog_ms >= r->watchdog_ms / 2) {
		sdn_notify("WATCHDOG=1");
		r->last_watchdog_ms = now;
	}
}

static void one_turn(struct replica *r)
{
	/* A fixed number of fds however many members (the transport's link
	 * monitors are one epoll fd): a turn, one or a few per entry, must not
	 * cost more with more members, learners included. Every turn ends
	 * with tp_recv finding nothing (handle_incoming), as tp_wait needs. */
	uint64_t now = proposals_now_ms();
	long timeout = wait_ms(r, now);
	bool woken = false;
	int prc = tp_wait(r->tp, r->wake_fd, timeout, &woken);
	if (prc < 0 && prc != -EINTR) {
		replica_fail(r, "waiting for the sockets", prc);
		return;
	}
	if (woken) {
		uint64_t count;
		ssize_t got = read(r->wake_fd, &count, sizeof(count));
		(void)got;
	}
	now = proposals_now_ms();
	serve_ctl_requests(r);
	if (disk_nearly_full(r, now))
		return;
	handle_incoming(r, now);
	handle_proposals(r, now);
	tick_due(r, now);
	int rc = r->px ? opx_flush_batch(r->px) : 0;
	if (rc == -EIO)
		replica_fail(r, "writing the log", rc);
	send_owed_decides(r); /* after the flush: its AcceptDecides carry them */
	/* After a storage failure, touch no store again: RocksDB refuses (or
	 * asserts on) writes after a failed one; the daemon exits. */
	if (atomic_load(&r->failed))
		return;
	/* The new entries' AcceptDecides leave now; the leader syncs its own
	 * copy after applying what was decided before them, so the answers to
	 * those proposals do not wait behind that fdatasync (the followers are
	 * writing theirs meanwhile): 3-5% more puts/s from 16 and 64 clients. */
	send_queued(r);
	if (atomic_load(&r->failed))
		return;
	rc = replica_apply_decided(r);
	if (rc != 0)
		replica_fail(r, "applying decided entries", rc);
	if (atomic_load(&r->failed))
		return;
	sync_log(r);
	if (atomic_load(&r->failed))
		return;
	send_outgoing(r); /* compaction and state transfer may have queued messages */
	replica_members_step(r, now);
	proposals_expire(&r->props, now);
	replica_maybe_compact(r, now);
	replica_tend_blob_gc(r, now);
	if (atomic_load(&r->failed))
		return;
	replica_xfer_step(r, now);
	replica_step_turn(r, now);
	send_outgoing(r); /* relayed proposals appended to the core */
	publish_view(r, now);
	watchdog(r, now);
}

static void *replica_main(void *arg)
{
	struct replica *r = arg;
	pthread_setname_np(pthread_self(), "ofs-replica");
	while (!atomic_load(&r->stop))
		one_turn(r);
	proposals_close(&r->props);
	/* Requests queued too late are never served: their callers return
	 * -ESHUTDOWN (and an apply hook is certainly not running any more). */
	pthread_mutex_lock(&r->ctl_lock);
	r->ctl_closed = true;
	r->ctl_queue = NULL; /* their callers take them back */
	pthread_cond_broadcast(&r->ctl_done);
	pthread_mutex_unlock(&r->ctl_lock);
	return NULL;
}

/* Every node's data dir holds log/ and state/; refuse what is not a dir. */
static int prepare_data_dir(const char *dir, char *err, size_t err_len)
{
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, err_len, "data_dir %s exists and is not a directory", dir);
			return -ENOTDIR;
		}
		return 0;
	}
	if (errno != ENOENT || mkdir(dir, 0700) != 0) {
		snprintf(err, err_len, "cannot create data_dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	int rc = rocks_sync_parent(dir);
	if (rc)
		snprintf(err, err_len, "cannot sync the directory holding data_dir %s: %s", dir,
			 strerror(-rc));
	return rc;
}

/*
 * The state first: it says (with <data_dir>/membership) which configuration
 * this node runs; the log is opened for that configuration, and only if this
 * node is a member of it.
 */
static int open_stores(struct replica *r, char *err, size_t err_len)
{
	char path[PATH_MAX + 16];
	int rc = prepare_data_dir(r->cfg.data_dir, err, err_len);
	if (rc != 0)
		return rc;
	snprintf(path, sizeof(path), "%s/state", r->cfg.data_dir);
	rc = kv_open(&r->kv, path, r->cfg.cluster_id, err, err_len);
	if (rc != 0)
		return rc;
	kv_feed_set_keep(r->kv, r->cfg.feed_entries);
	r->applied_idx = kv_applied_idx(r->kv);
	r->applying.batch = kv_batch_new();
	if (!r->applying.batch) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	rc = replica_members_load(r, err, err_len);
	if (rc == 0 && r->mode == REPLICA_MEMBER)
		rc = replica_log_open(r, err, err_len);
	return rc;
}

int replica_core_open(struct replica *r, char *err, size_t err_len)
{
	struct opx_config oc;
	opx_config_of(&r->members, &r->cfg, &oc);
	oc.snapshot_ctx = r;
	/* Ballots of a new configuration all start equal, and ties go to the
	 * higher priority: prefer a node that has the state at its base over
	 * one that must fetch it first (a new member), whose reads would lag.
	 * Doubling keeps the order the config file's priorities give. */
	oc.leader_priority = 2 * r->cfg.leader_priority + (r->applied_idx >= r->members.base);
	int rc = opx_new(&r->px, &oc, opx_rocks_storage(r->log), err, err_len);
	if (rc != 0)
		return rc;
	atomic_store(&r->ticks_without_qc, 0); /* a new core: nobody heard yet */
	atomic_store(&r->had_qc, false);
	/* The state may trail the log (it is written unsynced; the log is the
	 * truth) but never lead it past what the log can replay; a node new to
	 * the configuration has no state at its base yet. */
	uint64_t first = r->members.base + opx_compacted_idx(r->px);
	if (r->applied_idx < first)
		replica_xfer_start(r, first, 0);
	return 0;
}

static int open_transport(struct replica *r, char *err, size_t err_len)
{
	struct tp_config *tc = calloc(1, sizeof(*tc));
	if (!tc) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	/* Listen address and keys from the config file; the peers are the
	 * members of the configuration this node runs (none once removed: the
	 * members refuse it anyway). */
	int rc = tp_config_from_cfg(&r->cfg, tc, err, err_len);
	tc->n_peers = 0;
	for (size_t i = 0; rc == 0 && r->mode != REPLICA_REMOVED && i < r->members.n; i++) {
		const struct cfg_peer *p = &r->members.peers[i];
		if (p->id == r->cfg.node_id)
			continue;
		rc = tp_peer_from_cfg(p, r->cfg.plaintext, &tc->peers[tc->n_peers++]);
		if (rc != 0)
			snprintf(err, err_len, "member n%llu at %s: unusable address or key",
				 (unsigned long long)p->id, p->address);
	}
	if (rc == 0) {
		r->tp = tp_new(tc, err, err_len);
		if (!r->tp)
			rc = -EIO;
	}
	memset(tc, 0, sizeof(*tc)); /* the secret key */
	free(tc);
	return rc;
}

/*
 * Proposal sequences must never repeat, across restarts too, or a new
 * proposal could be taken for a retry of an old one that is still
 * undecided in some log. So each start takes a new epoch, stored durably in
 * <data_dir>/proposer-epoch, and sequences are epoch << 32 | counter. (An
 * old proposal decided after a restart then falls below the KV's dedup window
 * and is not applied: its proposer died with the old process.)
 */
static int next_epoch(struct replica *r, uint64_t *epoch, char *err, size_t err_len)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/proposer-epoch", r->cfg.data_dir);
	unsigned long long last = 0;
	FILE *f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%llu", &last) != 1) {
			fclose(f);
			snprintf(err, err_len, "%s is corrupt: expected a number", path);
			return -EINVAL;
		}
		fclose(f);
	}
	*epoch = last + 1;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)*epoch);
	return atomic_file_write(r->cfg.data_dir, "proposer-epoch", buf, (size_t)n, err, err_len);
}

/* Closes whatever replica_start opened, in reverse order, and frees r. */
static void free_replica(struct replica *r)
{
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	tp_destroy(&r->tp);
	opx_destroy(&r->px);
	free(r->entering);
	free(r->heard);
	replica_members_close(r);
	replica_learn_close(r);
	log_retain_free(&r->retained);
	kv_batch_free(r->applying.batch);
	kv_close(&r->kv);
	opx_rocks_close(&r->log);
	pthread_mutex_destroy(&r->view_lock);
	pthread_mutex_destroy(&r->members_lock);
	pthread_mutex_destroy(&r->ctl_lock);
	pthread_cond_destroy(&r->ctl_done);
	free(r);
}

int replica_start(struct replica **out, const struct cfg *cfg, char *err, size_t err_len)
{
	struct replica *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	r->cfg = *cfg;
	r->wake_fd = -1;
	pthread_mutex_init(&r->view_lock, NULL);
	pthread_mutex_init(&r->members_lock, NULL);
	pthread_mutex_init(&r->ctl_lock, NULL);
	r->rl_members.interval_ms = 30000;
	pthread_cond_init(&r->ctl_done, NULL);

	int rc = log_retain_init(&r->retained, cfg->compact_retain_entries);
	if (rc != 0)
		snprintf(err, err_len, "out of memory");
	if (rc == 0)
		rc = open_stores(r, err, err_len);
	if (rc == 0 && r->mode == REPLICA_MEMBER)
		rc = replica_core_open(r, err, err_len);
	if (rc == 0)
		rc = open_transport(r, err, err_len);
	if (rc == 0) {
		r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->wake_fd < 0) {
			rc = -errno;
			snprintf(err, err_len, "eventfd: %s", strerror(errno));
		}
	}
	uint64_t epoch = 0;
	if (rc == 0)
		rc = next_epoch(r, &epoch, err, err_len);
	if (rc == 0)
		rc = proposals_init(&r->props, r->wake_fd, epoch << 32, REPLICA__MAX_IN_FLIGHT);
	if (rc != 0)
		goto out_close;
	r->props.latency = &r->proposal_latency; /* before any proposer can submit */

	r->start_ms = proposals_now_ms();
	r->next_tick_ms = r->start_ms;
	r->watchdog_ms = sdn_watchdog_ms();
	if (r->px)
		r->last_promise = opx_promise(r->px);
	publish_view(r, r->start_ms);
	/* Said once the thread runs, but read before: from then on the core,
	 * the members and the counts are the thread's. */
	static const char *const modes[] = {"member", "waiting to be added ([node] join)",
					    "removed from the cluster: no writes",
					    "learner (does not vote)"};
	char started[256];
	snprintf(started, sizeof(started),
		 "configuration %u, %u members, %s, applied @%llu, decided @%llu",
		 r->members.config_id, (unsigned)r->members.n, modes[r->mode],
		 (unsigned long long)r->applied_idx,
		 (unsigned long long)(r->px ? r->members.base + opx_decided_idx(r->px) : 0));
	rc = -pthread_create(&r->thread, NULL, replica_main, r);
	if (rc != 0) {
		snprintf(err, err_len, "cannot start the replica thread: %s", strerror(-rc));
		proposals_destroy(&r->props);
		goto out_close;
	}
	log_notice("replica: n%llu of cluster %s started: %s", (unsigned long long)cfg->node_id,
		   cfg->cluster, started);
	*out = r;
	return 0;

out_close:
	free_replica(r);
	return rc;
}

void replica_stop(struct replica **rp)
{
	struct replica *r = *rp;
	if (!r)
		return;
	*rp = NULL;
	atomic_store(&r->stop, true);
	uint64_t one = 1;
	ssize_t n = write(r->wake_fd, &one, sizeof(one));
	(void)n;
	pthread_join(r->thread, NULL);
	replica_exports_close(r);
	proposals_destroy(&r->props);
	free_replica(r);
}

bool replica_has_failed(struct replica *r)
{
	return atomic_load(&r->failed);
}

struct kv_store *replica_kv(struct replica *r)
{
	return r->kv;
}

int replica_propose(struct replica *r, const struct kv_txn *txn, struct kv_result *res)
{
	return proposals_submit(&r->props, txn, r->cfg.node_id, r->cfg.commit_timeout_ms, res);
}

int replica_barrier_within(struct replica *r, uint32_t timeout_ms)
{
	struct kv_txn empty;
	kv_txn_init(&empty, 0, 0);
	struct kv_result res;
	int rc = proposals_submit(&r->props, &empty, r->cfg.node_id, timeout_ms, &res);
	kv_txn_free(&empty);
	return rc;
}

int replica_barrier(struct replica *r)
{
	return replica_barrier_within(r, r->cfg.commit_timeout_ms);
}

int replica_can_write(struct replica *r)
{
	if (knows_no_quorum(r))
		return -EROFS;
	pthread_mutex_lock(&r->view_lock);
	bool writable = r->view.writable;
	pthread_mutex_unlock(&r->view_lock);
	return writable ? 0 : -EAGAIN;
}

bool replica_is_joining(struct replica *r)
{
	return atomic_load(&r->mode) == REPLICA_JOINING;
}

bool replica_is_caught_up(struct replica *r)
{
	pthread_mutex_lock(&r->view_lock);
	bool up = r->view.caught_up;
	pthread_mutex_unlock(&r->view_lock);
	return up;
}

/*
 * Runs req (the caller's, filled but for the queue fields) on the replica
 * thread, which owns the core, the transport and the apply hook, and returns
 * its result; -ESHUTDOWN if the thread has left its loop before serving it.
 * Waits at most for the current loop turn (or, once stop is set, for the
 * last one). Never from the replica thread itself.
 */
static int run_on_replica_thread(struct replica *r, struct replica_ctl_request *req)
{
	req->done = false;
	req->next_req = NULL;
	pthread_mutex_lock(&r->ctl_lock);
	if (r->ctl_closed) {
		pthread_mutex_unlock(&r->ctl_lock);
		return -ESHUTDOWN;
	}
	struct replica_ctl_request **tail = &r->ctl_queue;
	while (*tail)
		tail = &(*tail)->next_req;
	*tail = req;
	uint64_t one = 1;
	ssize_t n = write(r->wake_fd, &one, sizeof(one));
	(void)n; /* a full eventfd counter is still a pending wake-up */
	while (!req->done && !r->ctl_closed)
		pthread_cond_wait(&r->ctl_done, &r->ctl_lock);
	int rc = req->done ? req->rc : -ESHUTDOWN;
	pthread_mutex_unlock(&r->ctl_lock);
	return rc;
}

int replica_set_apply_hook(struct replica *r, replica_apply_hook fn, void *ctx)
{
	struct replica_ctl_request req = {
		.kind = REPLICA_CTL_APPLY_HOOK, .hook = fn, .hook_ctx = ctx};
	return run_on_replica_thread(r, &req);
}

int replica_set_fault(struct replica *r, uint64_t peer, bool drop_out, bool drop_in)
{
	struct replica_ctl_request req = {
		.kind = REPLICA_CTL_FAULT, .peer = peer, .drop_out = drop_out, .drop_in = drop_in};
	return run_on_replica_thread(r, &req);
}

int replica_propose_membership(struct replica *r, const struct membership *next)
{
	struct replica_ctl_request req = {.kind = REPLICA_CTL_RECONFIGURE, .next = next};
	return run_on_replica_thread(r, &req);
}

int replica_key_seen(struct replica *r, const uint8_t *key)
{
	struct replica_ctl_request req = {.kind = REPLICA_CTL_KEY_SEEN};
	memcpy(req.key, key, TP_KEY_LEN);
	return run_on_replica_thread(r, &req);
}
