/*
 * Applying decided entries to the KV, and compacting the log.
 *
 * Entries are read from the core in log order and applied in batches (one
 * RocksDB batch holds the changes of the entries decided together and the
 * new applied index). An entry this node proposed completes its proposer
 * once its batch is written. The KV state is
 * written without a write-ahead log or fsync (kv_sync): the synced log is
 * the truth and a restart replays it from the applied index the state's
 * last flush holds. So the log is compacted no further than that.
 *
 * Snapshots: the KV state itself is what a snapshot of the log would hold,
 * so the snapshot the core keeps and ships is only a marker: the number of
 * entries it covers (8 bytes). A follower that receives one (it is behind
 * the compacted index) fetches the state by chunked state transfer
 * (replica_xfer.c) instead of one giant message, then goes on applying the
 * log from there.
 *
 * Entries may also come from a peer's log (replica_step.c: a node cut from
 * the leader alone fetches them), so the state may be ahead of this log:
 * apply starts from the applied index, and compaction stops at what this
 * log decided itself. Such entries are in no local log: lost with the
 * state's unsynced tail in a crash, they are fetched again (or come from
 * this log once it catches up), as the state's own prefix stays whole.
 */
#include "replica_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "kv.h"
#include "log.h"

/* Entries applied per turn at most, so proposals and heartbeats keep flowing
 * while a node catches up. */
#define APPLY__PER_TURN 4096

static int marker_new(uint64_t count, uint8_t **out, uint32_t *len)
{
	uint8_t *m = malloc(8);
	if (!m)
		return -ENOMEM;
	put_le64(m, count);
	*out = m;
	*len = 8;
	return 0;
}

static uint64_t marker_count(const uint8_t *m, uint32_t len)
{
	return len == 8 ? get_le64(m) : 0;
}

static int snap_create(void *ctx, const struct opx_entry *entries, uint32_t n, uint8_t **out,
		       uint32_t *out_len)
{
	return marker_new(n, out, out_len);
}

/* The same count, without the entries read back from the log. */
static int snap_create_counted(void *ctx, uint64_t from, uint32_t n, uint8_t **out,
			       uint32_t *out_len)
{
	return marker_new(n, out, out_len);
}

/* A delta always continues its base (spec §5.6): the counts add up. */
static int snap_merge(void *ctx, const uint8_t *base, uint32_t base_len, const uint8_t *delta,
		      uint32_t delta_len, uint8_t **out, uint32_t *out_len)
{
	return marker_new(marker_count(base, base_len) + marker_count(delta, delta_len), out,
			  out_len);
}

const struct opx_snapshot_ops replica_snapshot_ops = {
	.create = snap_create,
	.merge = snap_merge,
	.create_counted = snap_create_counted,
};

/* What follows an entry's apply, in log order, once the state has it. */
static void applied(struct replica *r, uint64_t idx, const struct opx_entry *e,
		    const struct kv_txn *t, const struct kv_result *res)
{
	r->applied_idx = idx + 1;
	r->bytes_since_compaction += e->len;
	log_retain_note(&r->retained, idx, e->len);
	if (r->mode == REPLICA_LEARNER)
		replica_learn_remember(r, idx, e->data, e->len);
	bool mine = res->node_id == r->cfg.node_id;
	/* A duplicate is a retry of an entry applied earlier, whose proposer was
	 * completed then: there is nobody left to tell. */
	if (mine && res->status != KV_DUPLICATE)
		proposals_complete(&r->props, res);
	if (r->hook && res->status == KV_APPLIED)
		r->hook(r->hook_ctx, idx, t, mine);
}

/* --- decided entries, in batches ------------------------------------------------ */

/* Bytes of entries in one batch at most: a large entry (a file's 4 MiB
 * step) is applied alone, and a batch's WriteBatch stays small. */
#define APPLY__BATCH_BYTES (4u << 20)

/* Forgets the entries of a batch the state dropped. */
static void batch_forget(struct replica_applying *a)
{
	for (uint32_t i = 0; i < a->n; i++)
		kv_txn_free(&a->e[i].t);
	a->n = 0;
	a->bytes = 0;
}

/* Writes the batch, then does what follows each of its entries, in order.
 * On an error nothing of it was written: it is applied again next turn. */
static int batch_commit(struct replica *r)
{
	struct replica_applying *a = &r->applying;
	if (a->n == 0)
		return 0;
	int rc = kv_batch_commit(r->kv, a->batch, false);
	for (uint32_t i = 0; i < a->n && rc == 0; i++)
		applied(r, a->e[i].idx, a->e[i].entry, &a->e[i].t, &a->e[i].res);
	batch_forget(a);
	return rc;
}

/*
 * Whether t must start a batch, as the apply hook's contract says
 * (replica.h): the filesystem's replay for inotify resolves a change
 * proposed elsewhere in a view of the state it opens in the hook of the
 * entry before (fs/vfs/replay.c), which must then hold exactly up to that
 * entry.
 */
static bool needs_state_before(const struct replica *r, const struct kv_txn *t)
{
	return r->hook && t->node_id != r->cfg.node_id;
}

/*
 * Adds the decided entry at global index idx (entry borrowed until the
 * batch's commit) to the state's batch, committing first where it must. The
 * entry is decoded once: the KV applies that transaction and the apply hook
 * reads the same one. An entry that does not decode is recorded as
 * KV_MALFORMED (only the index advances), as every node does.
 */
static int batch_entry(struct replica *r, uint64_t idx, const struct opx_entry *e)
{
	struct replica_applying *a = &r->applying;
	struct replica_applied p = {.idx = idx, .entry = e};
	int rc = kv_txn_decode(&p.t, e->data, e->len);
	if (rc == -ENOMEM)
		return rc;
	p.decoded = rc == 0;
	rc = 0;
	if (a->n && (a->n == REPLICA_APPLY_BATCH || a->bytes + e->len > APPLY__BATCH_BYTES ||
		     (p.decoded && needs_state_before(r, &p.t))))
		rc = batch_commit(r);
	while (rc == 0) {
		if (p.decoded)
			rc = kv_batch_add(r->kv, a->batch, idx, &p.t, &p.res);
		else
			rc = kv_batch_add_malformed(r->kv, a->batch, idx, e->data, e->len, &p.res);
		/* -EAGAIN: p reads what the batch wrote; once, as it is then empty */
		if (rc != -EAGAIN)
			break;
		rc = batch_commit(r);
	}
	if (rc) {
		kv_txn_free(&p.t);
		batch_forget(a); /* the state dropped its batch */
		return rc;
	}
	a->e[a->n++] = p;
	a->bytes += e->len;
	return 0;
}

/* An entry fetched from a peer (replica_step.c), applied as one from the
 * log, alone (no batch is pending between turns). */
int replica_apply_one(struct replica *r, uint64_t idx, const uint8_t *data, uint32_t len)
{
	struct opx_entry e = {.data = data, .len = len};
	int rc = batch_entry(r, idx, &e);
	return rc ? rc : batch_commit(r);
}

/*
 * Applies what is decided and not yet applied. The core counts its own log
 * from 0; omnifs counts globally: local index i is global base + i. Entries
 * decided together go to the state in batches (kv_batch): one write of the
 * state per batch, and what follows each entry (its proposer told, the apply
 * hook) once the batch is written.
 */
int replica_apply_decided(struct replica *r)
{
	if (r->xfer.active || !r->px)
		return 0;
	uint64_t base = r->members.base;
	if (r->applied_idx < base) {
		/* New to this configuration: the state at its base comes first. */
		replica_xfer_start(r, base, 0);
		return 0;
	}
	uint64_t from = r->applied_idx - base, decided = opx_decided_idx(r->px);
	if (from >= decided)
		return 0;
	uint64_t to = decided - from > APPLY__PER_TURN ? from + APPLY__PER_TURN : decided;
	struct opx_read rd = {0};
	int rc = opx_read_entries(r->px, from, to, &rd);
	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < rd.n && rc == 0; i++) {
		const struct opx_item *it = &rd.items[i];
		if (it->kind != OPX_ITEM_DECIDED && it->kind != OPX_ITEM_UNDECIDED) {
			rc = batch_commit(r); /* what follows reads applied_idx */
			if (rc)
				break;
		}
		bool next = it->idx + base == r->applied_idx + r->applying.n;
		switch (it->kind) {
		case OPX_ITEM_DECIDED:
			if (next)
				rc = batch_entry(r, it->idx + base, &it->entry);
			break;
		case OPX_ITEM_SNAPSHOTTED:
		case OPX_ITEM_TRIMMED:
			if (it->compacted_idx + base > r->applied_idx) {
				/* The entries we need are compacted away everywhere we
				 * could read them: fetch the state instead. */
				replica_xfer_start(r, it->compacted_idx + base, 0);
				i = rd.n;
			}
			break;
		case OPX_ITEM_STOPSIGN:
			/* The last entry of this configuration: the next one
			 * starts after this turn (replica_members.c). */
			if (it->ss_decided && next) {
				rc = replica_stopsign_applied(r, it->ss, it->idx + base);
				i = rd.n;
			}
			break;
		case OPX_ITEM_UNDECIDED:
			break;
		}
	}
	/* The batch borrows rd's entries: written before they are freed. */
	int crc = batch_commit(r);
	opx_read_free(&rd);
	return rc ? rc : crc;
}

/* How soon a compaction that waits for the state's flush looks again. */
#define COMPACT__RECHECK_MS 20

/*
 * Compaction policy: once the log holds more than [compaction] max_entries
 * decided entries (or max_bytes of them) beyond the compacted index, compact
 * it locally up to the applied index minus retain_entries, so followers that
 * are only slightly behind still catch up from the log; of large entries,
 * fewer: no more than a quarter of max_bytes (log_retain.h).
 */
void replica_maybe_compact(struct replica *r, uint64_t now)
{
	if (!r->px || r->applied_idx < r->members.base)
		return;
	uint64_t applied = r->applied_idx - r->members.base; /* in the core's count */
	/* Entries fetched from a peer (replica_step.c) put the state ahead of
	 * this log, which can compact only what it has decided itself. */
	if (applied > opx_decided_idx(r->px))
		applied = opx_decided_idx(r->px);
	uint64_t compacted = opx_compacted_idx(r->px);
	if (applied <= compacted)
		return;
	/* The two thresholds first: this runs every turn of the loop, and
	 * what to keep walks up to retain_entries sizes. */
	bool over_entries = applied - compacted > r->cfg.compact_max_entries;
	bool over_bytes = r->bytes_since_compaction > r->cfg.compact_max_bytes;
	if (!over_entries && !over_bytes)
		return;
	uint64_t retain =
		log_retain_keep(&r->retained, applied + r->members.base,
				r->cfg.compact_retain_entries, r->cfg.compact_max_bytes / 4);
	if (applied <= compacted + retain)
		return;
	uint64_t target = applied - retain;
	/* No further than the state a crash would leave (kv_sync). RocksDB's
	 * flushes as memtables fill usually cover the target; if not, a flush
	 * starts in the background, this compaction goes as far as the state
	 * is durable, and the rest waits for that flush (looked at again after
	 * COMPACT__RECHECK_MS). A flush in line stopped this thread for 17 to
	 * 186 ms (median 72) at each compaction under 64 writing clients. */
	if (now < r->compact_recheck_ms)
		return;
	uint64_t durable;
	int rc = kv_durable_applied_idx(r->kv, &durable);
	if (rc == 0 && durable < target + r->members.base) {
		rc = kv_sync_start(r->kv);
		r->compact_recheck_ms = now + COMPACT__RECHECK_MS;
		if (rc == 0 && durable <= compacted + r->members.base)
			return;
		target = durable - r->members.base;
	}
	if (rc != 0) {
		replica_fail(r, "making the KV state durable before compaction", rc);
		return;
	}
	rc = opx_snapshot(r->px, true, target, true);
	if (rc == -EIO) {
		replica_fail(r, "compacting the log", rc);
		return;
	}
	if (rc == 0) {
		log_kv(LOG_LEVEL_INFO, LOG_NO_PEER, target + r->members.base,
		       "replica: log compacted to @%llu (applied @%llu)",
		       (unsigned long long)(target + r->members.base),
		       (unsigned long long)r->applied_idx);
		r->bytes_since_compaction = 0;
	}
}

/* How often the state's blob garbage is looked at: it grows only as fast as
 * files are rewritten, and each look takes RocksDB's mutex twice. */
#define BLOB_GC__CHECK_MS 1000

void replica_tend_blob_gc(struct replica *r, uint64_t now)
{
	if (r->xfer.active || r->blob_gc_refused || now - r->blob_gc_checked_ms < BLOB_GC__CHECK_MS)
		return;
	r->blob_gc_checked_ms = now;
	/* Not a storage failure (nothing was written): the state works on,
	 * only its garbage is not collected. */
	if (kv_blob_gc_tend(r->kv) != 0) {
		log_warn("replica: the state's blob garbage collection stays as it is: %s",
			 kv_errmsg(r->kv));
		r->blob_gc_refused = true;
	}
}
