/*
 * State transfer: how a node that is behind the compacted log catches up.
 *
 * When the log this node can read starts above its applied index (it was away
 * longer than the log is retained), it asks a peer (the leader first, then
 * the others in turn) for the KV state in chunks of at most XFER__CHUNK bytes:
 *
 *   REQ   (to the source):  u64 need_idx, u64 src_idx, u32 cursor_len, cursor
 *   CHUNK (to the asker):   u8 status, u64 src_idx, u64 total, then the KV chunk
 *
 * The source answers from a read view pinned at one applied index (src_idx,
 * >= need_idx) and keeps it per asker, so successive chunks come from one
 * consistent state; status NOT_READY means the source itself is not that far.
 * total is the source's estimate of the view's size (kv_view_size_estimate),
 * for the progress `omnifsctl status` shows.
 * The asker stores chunks in the KV's staging area with durable progress
 * (kv_import_*), asks for the next one right away, and switches the live
 * state in one batch after the last. Interrupted (lost frames, a restart of
 * either side), it asks again from its progress; a source that no longer has
 * the view starts over from a new one, and the asker drops the stale staging.
 *
 * Never one message holding the whole state; never more than one chunk in
 * flight per transfer.
 */
#include "replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "kv.h"
#include "log.h"

#define XFER__CHUNK	(256u * 1024)
#define XFER__IDLE_MS	60000 /* a source drops an asker's view unused this long */
#define XFER__STATUS_OK 0
#define XFER__NOT_READY 1
#define XFER__HDR_REQ	20
#define XFER__HDR_CHUNK 17

/* A peer known to have the state, else the leader if it is another node,
 * else the peers in turn. */
static opx_node_id pick_source(struct replica *r)
{
	if (r->xfer.prefer && r->xfer.attempts < 3)
		return r->xfer.prefer;
	bool accept;
	opx_node_id leader = r->px ? opx_current_leader(r->px, &accept) : 0;
	if (leader && leader != r->cfg.node_id && r->xfer.attempts < 3)
		return leader;
	size_t n = r->members.n;
	for (size_t k = 0; k < n; k++) {
		const struct cfg_peer *p = &r->members.peers[(r->xfer.attempts + k) % n];
		if (p->id != r->cfg.node_id)
			return p->id;
	}
	return 0;
}

/*
 * This node's proposals decided within what a transferred state covers are
 * never applied here, so no apply completes them: the state's dedup record
 * says which it processed. A barrier (an empty transaction) asked only for
 * that. Any other's outcome (applied, or a guard that failed) is in the
 * state but not knowable from here: it fails as one past its deadline does
 * (-ETIMEDOUT), at once rather than commit_timeout_ms later.
 */
static int settle_transferred(void *ctx, const struct proposal *pr, struct kv_result *res)
{
	struct replica *r = ctx;
	bool seen;
	if (kv_proposal_seen(r->kv, r->cfg.node_id, pr->seq, &seen) != 0 || !seen)
		return 0;
	struct kv_txn t;
	if (kv_txn_decode(&t, pr->entry, pr->len) != 0)
		return -ETIMEDOUT;
	bool barrier = t.n_ops == 0;
	kv_txn_free(&t);
	if (!barrier)
		return -ETIMEDOUT;
	*res = (struct kv_result){.status = KV_APPLIED,
				  .node_id = r->cfg.node_id,
				  .seq = pr->seq,
				  .log_idx = r->applied_idx - 1}; /* decided there or before */
	return 1;
}

static void finish_import(struct replica *r)
{
	int rc = kv_import_finish(r->kv);
	if (rc == -EIO || rc == -ENOSPC) {
		replica_fail(r, "switching to the transferred state", rc);
		return;
	}
	r->applied_idx = kv_applied_idx(r->kv);
	/* Every key may have changed without an entry to say which. */
	if (r->hook)
		r->hook(r->hook_ctx, r->applied_idx, NULL, false);
	log_kv(LOG_LEVEL_NOTICE, r->xfer.source, r->applied_idx,
	       "replica: state transfer done: applied @%llu (%llu bytes from n%llu)",
	       (unsigned long long)r->applied_idx, (unsigned long long)r->xfer.bytes,
	       (unsigned long long)r->xfer.source);
	r->xfer.active = false;
	proposals_settle(&r->props, settle_transferred, r);
	atomic_fetch_add(&r->xfers_done, 1);
	replica_members_after_import(r); /* its member table may be newer than ours */
}

static void send_request(struct replica *r, uint64_t now)
{
	bool in_progress = false, complete = false;
	uint64_t src_idx = 0;
	struct kv_buf cursor = {0};
	int rc = kv_import_progress(r->kv, &in_progress, &src_idx, &cursor, &complete);
	if (rc != 0) {
		replica_fail(r, "reading the state transfer's progress", rc);
		return;
	}
	if (in_progress && complete && src_idx >= r->xfer.need_idx) {
		free(cursor.data);
		finish_import(r);
		return;
	}
	if (!in_progress) {
		src_idx = 0;
		cursor.len = 0;
	}
	size_t len = XFER__HDR_REQ + cursor.len;
	uint8_t *req = malloc(len);
	if (req) {
		put_le64(req, r->xfer.need_idx);
		put_le64(req + 8, src_idx);
		put_le32(req + 16, (uint32_t)cursor.len);
		if (cursor.len)
			memcpy(req + XFER__HDR_REQ, cursor.data, cursor.len);
		tp_send_app(r->tp, r->xfer.source, r->members.config_id, REPLICA_APP_XFER_REQ, req,
			    len);
		free(req);
	}
	free(cursor.data);
	r->xfer.last_request_ms = now;
}

void replica_xfer_start(struct replica *r, uint64_t need_idx, opx_node_id prefer)
{
	if (r->xfer.active && need_idx <= r->xfer.need_idx)
		return;
	if (!r->xfer.active) {
		r->xfer.bytes = 0;
		r->xfer.total = 0;
		log_kv(LOG_LEVEL_NOTICE, LOG_NO_PEER, need_idx,
		       "replica: the log this node can read starts past applied @%llu: "
		       "fetching the state (at least @%llu) from a peer",
		       (unsigned long long)r->applied_idx, (unsigned long long)need_idx);
	}
	r->xfer.active = true;
	r->xfer.need_idx = need_idx;
	r->xfer.attempts = 0;
	r->xfer.prefer = prefer;
	r->xfer.source = pick_source(r);
	r->xfer.last_request_ms = 0; /* the next step asks at once */
}

void replica_xfer_step(struct replica *r, uint64_t now)
{
	/* Views not used for a while pin old state in RocksDB: let them go. */
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		struct replica_export *e = &r->exports[i];
		if (e->view && now - e->last_used_ms > XFER__IDLE_MS)
			kv_view_close(&e->view);
	}
	if (!r->xfer.active)
		return;
	uint64_t patience = 4ull * r->cfg.resend_timeout_ms;
	if (r->xfer.last_request_ms && now - r->xfer.last_request_ms < patience)
		return;
	if (r->xfer.last_request_ms) {
		r->xfer.attempts++;
		r->xfer.source = pick_source(r);
	}
	if (r->xfer.source)
		send_request(r, now);
}

static void on_chunk(struct replica *r, opx_node_id from, const uint8_t *p, uint32_t len,
		     uint64_t now)
{
	if (!r->xfer.active || from != r->xfer.source || len < XFER__HDR_CHUNK)
		return;
	uint8_t status = p[0];
	uint64_t src_idx = get_le64(p + 1);
	if (status != XFER__STATUS_OK || src_idx < r->xfer.need_idx) {
		/* This source is not far enough: the next step asks another. */
		r->xfer.attempts++;
		r->xfer.source = pick_source(r);
		return;
	}
	bool in_progress = false, complete = false;
	uint64_t have_idx = 0;
	struct kv_buf cursor = {0};
	int rc = kv_import_progress(r->kv, &in_progress, &have_idx, &cursor, &complete);
	free(cursor.data);
	if (rc == 0 && (!in_progress || have_idx != src_idx))
		rc = kv_import_begin(r->kv, src_idx);
	if (rc == -ESTALE) { /* the state already got past src_idx by itself */
		r->xfer.active = false;
		r->applied_idx = kv_applied_idx(r->kv);
		return;
	}
	if (rc == 0)
		rc = kv_import_chunk(r->kv, p + XFER__HDR_CHUNK, len - XFER__HDR_CHUNK);
	if (rc == -ESTALE || rc == -EBADMSG || rc == -EINVAL) {
		/* Not the chunk we asked for (a late duplicate, a corrupt frame):
		 * ask again from our progress. */
		send_request(r, now);
		return;
	}
	if (rc != 0) {
		replica_fail(r, "storing a state transfer chunk", rc);
		return;
	}
	r->xfer.bytes += len - XFER__HDR_CHUNK;
	r->xfer.total = get_le64(p + 9);
	atomic_fetch_add_explicit(&r->xfer_bytes_total, len - XFER__HDR_CHUNK,
				  memory_order_relaxed);
	send_request(r, now); /* finishes the import after the last chunk */
}

static struct replica_export *export_slot(struct replica *r, opx_node_id peer)
{
	struct replica_export *free_slot = NULL;
	for (size_t i = 0; i < OPX_MAX_NODES; i++) {
		if (r->exports[i].view && r->exports[i].peer == peer)
			return &r->exports[i];
		if (!r->exports[i].view && !free_slot)
			free_slot = &r->exports[i];
	}
	return free_slot;
}

static void reply(struct replica *r, opx_node_id to, uint8_t status, uint64_t src_idx,
		  uint64_t total, const struct kv_buf *chunk)
{
	size_t len = XFER__HDR_CHUNK + (chunk ? chunk->len : 0);
	uint8_t *msg = malloc(len);
	if (!msg)
		return;
	msg[0] = status;
	put_le64(msg + 1, src_idx);
	put_le64(msg + 9, total);
	if (chunk && chunk->len)
		memcpy(msg + XFER__HDR_CHUNK, chunk->data, chunk->len);
	tp_send_app(r->tp, to, r->members.config_id, REPLICA_APP_XFER_CHUNK, msg, len);
	free(msg);
}

static void on_request(struct replica *r, opx_node_id from, const uint8_t *p, uint32_t len,
		       uint64_t now)
{
	if (len < XFER__HDR_REQ || len - XFER__HDR_REQ != get_le32(p + 16))
		return;
	/* State goes to members only (not to a node removed a moment ago). */
	if (!membership_find(&r->members, from))
		return;
	uint64_t need = get_le64(p), want_src = get_le64(p + 8);
	const uint8_t *cursor = p + XFER__HDR_REQ;
	size_t cursor_len = len - XFER__HDR_REQ;
	if (r->applied_idx < need) {
		reply(r, from, XFER__NOT_READY, r->applied_idx, 0, NULL);
		return;
	}
	struct replica_export *e = export_slot(r, from);
	if (!e)
		return;
	if (!e->view || e->idx != want_src) {
		/* A new transfer, or one from a view this node no longer has:
		 * start over from a fresh view. */
		kv_view_close(&e->view);
		if (kv_view_open(r->kv, &e->view) != 0)
			return;
		e->peer = from;
		e->idx = kv_view_applied_idx(e->view);
		e->total = kv_view_size_estimate(e->view);
		cursor = NULL;
		cursor_len = 0;
		log_kv(LOG_LEVEL_INFO, from, e->idx, "replica: sending state @%llu to n%llu",
		       (unsigned long long)e->idx, (unsigned long long)from);
	}
	e->last_used_ms = now;
	struct kv_buf chunk = {0}, next = {0};
	bool last = false;
	if (kv_export_chunk(e->view, cursor, cursor_len, XFER__CHUNK, &chunk, &next, &last) == 0)
		reply(r, from, XFER__STATUS_OK, e->idx, e->total, &chunk);
	free(chunk.data);
	free(next.data);
}

void replica_xfer_on_app(struct replica *r, const struct tp_frame *f, uint64_t now)
{
	switch (f->app.app_type) {
	case REPLICA_APP_XFER_REQ:
		on_request(r, f->hdr.from, f->app.data, f->app.len, now);
		break;
	case REPLICA_APP_XFER_CHUNK:
		on_chunk(r, f->hdr.from, f->app.data, f->app.len, now);
		break;
	default:
		break;
	}
}

void replica_exports_close(struct replica *r)
{
	for (size_t i = 0; i < OPX_MAX_NODES; i++)
		kv_view_close(&r->exports[i].view);
}
