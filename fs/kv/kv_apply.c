/*
 * Applying decided log entries to the replicated KV, deterministically.
 *
 * A run of entries becomes one WriteBatch (kv_batch; one entry alone for
 * kv_apply): each transaction's writes (if its guards hold and its proposal
 * id is new), then the proposers' dedup records and the new applied index.
 * Whatever happens to a transaction (applied, conflict, duplicate,
 * malformed) the applied index advances, so every node walks the same log to
 * the same state. Only storage failures write nothing. An applied
 * transaction's change note goes into the feed in the same batch
 * (kv_feed.c).
 *
 * Every decision reads only the entry and the state before it: never the
 * clock, the node id or anything local. Reads here see the latest state
 * because this thread is the only writer; what the batch itself wrote they
 * do not see, so an entry that would read it (a guard on a key the batch
 * may have written, by a filter of its keys; a prefix delete, which lists
 * the state's keys) waits for the batch's commit, and the dedup records the
 * batch changes are kept in it.
 *
 * Dedup: per proposer node a high-water mark (highest sequence processed) and
 * a window of KV_DEDUP_WINDOW bits for the sequences just below it. A
 * sequence in the window and marked, or below the window, is a duplicate.
 */
#include "kv.h"
#include "kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* --- apply ---------------------------------------------------------------------- */

/* Loads node's dedup record from the live state; *has false if none. */
static int dedup_load(struct kv_store *s, uint64_t node, struct kv__dedup *d, bool *has)
{
	uint8_t k[9];
	char *e = NULL;
	size_t len;
	k[0] = KV__NS_DEDUP;
	put_be64(k + 1, node);
	char *raw = rocksdb_get_cf(s->db, s->ropts, s->cf_state[s->active], (const char *)k,
				   sizeof(k), &len, &e);
	memset(d, 0, sizeof(*d));
	*has = raw != NULL;
	if (e)
		return kv__rocks_fail(s, "apply: read dedup", e);
	if (!raw)
		return 0;
	bool ok = kv__dedup_decode(raw, len, d);
	rocksdb_free(raw);
	if (!ok) {
		kv__set_errmsg(s, "apply: corrupt dedup record of n%llu", (unsigned long long)node);
		return -EIO;
	}
	return 0;
}

int kv_proposal_seen(struct kv_store *s, uint64_t node_id, uint64_t seq, bool *seen)
{
	struct kv__dedup d;
	bool has;
	int rc = dedup_load(s, node_id, &d, &has);
	*seen = rc == 0 && has && kv__dedup_seen(&d, seq);
	return rc;
}

static void dedup_put(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t node,
		      const struct kv__dedup *d)
{
	uint8_t k[9], v[KV__DEDUP_LEN];
	k[0] = KV__NS_DEDUP;
	put_be64(k + 1, node);
	kv__dedup_encode(v, d);
	rocksdb_writebatch_put_cf(wb, s->cf_state[s->active], (const char *)k, sizeof(k),
				  (const char *)v, sizeof(v));
}

/* Checks one guard against the live state: 1 holds, 0 fails, <0 error. */
static int guard_holds(struct kv_store *s, const struct kv_op *op)
{
	uint8_t k[KV__STATE_KEY_MAX];
	char *e = NULL;
	k[0] = KV__NS_KEY;
	memcpy(k + 1, op->key, op->key_len);
	rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(s->db, s->ropts, s->cf_state[s->active],
							    (const char *)k, op->key_len + 1, &e);
	if (e)
		return kv__rocks_fail(s, "apply: read guard", e);
	bool present = ps != NULL;
	uint64_t version = 0;
	if (ps) {
		size_t len;
		const char *raw = rocksdb_pinnableslice_value(ps, &len), *val;
		size_t vlen;
		bool ok = kv__split_value(raw, len, &version, &val, &vlen);
		rocksdb_pinnableslice_destroy(ps);
		if (!ok) {
			kv__set_errmsg(s, "apply: corrupt value (%zu bytes)", len);
			return -EIO;
		}
	}
	switch (op->type) {
	case KV_OP_GUARD_ABSENT:
		return !present;
	case KV_OP_GUARD_PRESENT:
		return present;
	case KV_OP_GUARD_VERSION:
		return present && version == op->version;
	default:
		return 1;
	}
}

/* The smallest key greater than every key starting with p[0..len): p with
 * its last non-0xff byte incremented and the rest dropped. *out_len 0 if
 * there is none (p is all 0xff). */
static void prefix_end(const uint8_t *p, size_t len, uint8_t *out, size_t *out_len)
{
	while (len && p[len - 1] == 0xff)
		len--;
	memcpy(out, p, len);
	if (len)
		out[len - 1]++;
	*out_len = len;
}

/*
 * Point deletes for a prefix of at most this many keys; a larger one becomes
 * one range tombstone. Why: every read of a memtable that holds range
 * tombstones fragments all of them again (RocksDB 7.x), so one tombstone per
 * small-file overwrite made each read of the state slower until the next
 * flush (a fifth of the daemon's CPU under a steady overwrite load). Point
 * deletes cost reads nothing. Both leave the same state.
 */
#define PREFIX_POINT_DELETES_MAX 256

/* Deletes every key of the state starting with op's prefix, and those that
 * earlier ops of the same transaction put there (not in the state yet). */
static int delete_prefix(struct kv_store *s, rocksdb_writebatch_t *wb, const struct kv_txn *t,
			 uint32_t op_idx)
{
	rocksdb_column_family_handle_t *cf = s->cf_state[s->active];
	const struct kv_op *op = &t->ops[op_idx];
	uint8_t a[KV__STATE_KEY_MAX], b[KV__STATE_KEY_MAX];
	size_t alen = op->key_len + 1, blen;
	a[0] = KV__NS_KEY;
	memcpy(a + 1, op->key, op->key_len);

	for (uint32_t j = 0; j < op_idx; j++) {
		const struct kv_op *put = &t->ops[j];
		if (put->type == KV_OP_PUT && put->key_len >= op->key_len &&
		    memcmp(put->key, op->key, op->key_len) == 0) {
			const char ns = KV__NS_KEY, *kparts[2] = {&ns, (const char *)put->key};
			size_t klens[2] = {1, put->key_len};
			rocksdb_writebatch_deletev_cf(wb, cf, 2, kparts, klens);
		}
	}

	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, cf);
	if (!it)
		return -ENOMEM;
	size_t n = 0;
	bool more = false;
	for (rocksdb_iter_seek(it, (const char *)a, alen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen;
		const char *k = rocksdb_iter_key(it, &klen);
		if (klen < alen || memcmp(k, a, alen) != 0)
			break;
		if (n++ == PREFIX_POINT_DELETES_MAX) {
			more = true;
			break;
		}
		rocksdb_writebatch_delete_cf(wb, cf, k, klen);
	}
	char *e = NULL;
	rocksdb_iter_get_error(it, &e);
	rocksdb_iter_destroy(it);
	if (e)
		return kv__rocks_fail(s, "apply: read prefix", e);
	if (more) {
		/* The namespace byte is never 0xff, so the end exists. */
		prefix_end(a, alen, b, &blen);
		rocksdb_writebatch_delete_range_cf(wb, cf, (const char *)a, alen, (const char *)b,
						   blen);
	}
	return 0;
}

/* Two bits of the filter from one FNV-1a hash of the user key. */
static void filter_bits(const uint8_t *key, size_t len, uint32_t bit[2])
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	bit[0] = (uint32_t)(h % KV__BATCH_FILTER_BITS);
	bit[1] = (uint32_t)((h >> 32) % KV__BATCH_FILTER_BITS);
}

static void filter_add(struct kv_batch *b, const uint8_t *key, size_t len)
{
	uint32_t bit[2];
	filter_bits(key, len, bit);
	for (int i = 0; i < 2; i++)
		b->written[bit[i] / 64] |= 1ull << (bit[i] % 64);
}

static bool filter_may_have(const struct kv_batch *b, const uint8_t *key, size_t len)
{
	uint32_t bit[2];
	filter_bits(key, len, bit);
	for (int i = 0; i < 2; i++)
		if (!(b->written[bit[i] / 64] & (1ull << (bit[i] % 64))))
			return false;
	return true;
}

static int add_writes(struct kv_store *s, struct kv_batch *b, const struct kv_txn *t,
		      uint64_t log_idx)
{
	rocksdb_writebatch_t *wb = b->wb;
	rocksdb_column_family_handle_t *cf = s->cf_state[s->active];
	static const char ns = KV__NS_KEY;
	uint8_t ver[KV__VERSION_LEN];

	put_le64(ver, log_idx);
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		const char *kparts[2] = {&ns, (const char *)op->key};
		size_t klens[2] = {1, op->key_len};
		switch (op->type) {
		case KV_OP_PUT: {
			const char *vparts[2] = {(const char *)ver, (const char *)op->value};
			size_t vlens[2] = {sizeof(ver), op->value_len};
			rocksdb_writebatch_putv_cf(wb, cf, 2, kparts, klens, 2, vparts, vlens);
			filter_add(b, op->key, op->key_len);
			break;
		}
		case KV_OP_DELETE:
			rocksdb_writebatch_deletev_cf(wb, cf, 2, kparts, klens);
			filter_add(b, op->key, op->key_len);
			break;
		case KV_OP_DELETE_PREFIX: {
			int rc = delete_prefix(s, wb, t, i);
			if (rc)
				return rc;
			b->wide = true;
			break;
		}
		default:
			break; /* guards write nothing */
		}
	}
	return 0;
}

/* --- batches ------------------------------------------------------------------- */

/* Empties b (its first index is set by the next add). */
static void batch_reset(struct kv_batch *b)
{
	if (b->wb)
		rocksdb_writebatch_destroy(b->wb);
	b->wb = NULL;
	b->n = 0;
	b->wide = false;
	b->n_nodes = 0;
	memset(b->written, 0, sizeof(b->written));
}

static int batch_node_find(const struct kv_batch *b, uint64_t id)
{
	for (uint32_t i = 0; i < b->n_nodes; i++)
		if (b->nodes[i].id == id)
			return (int)i;
	return -1;
}

/* Whether t reads what the batch wrote (the state's reads do not see it
 * yet) or needs a slot the batch has not got. */
static bool must_commit_first(const struct kv_batch *b, const struct kv_txn *t)
{
	if (b->n == 0)
		return false;
	if (t->node_id && batch_node_find(b, t->node_id) < 0 && b->n_nodes == KV__BATCH_NODES)
		return true;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		if (op->type == KV_OP_DELETE_PREFIX)
			return true;
		if (op->type >= KV_OP_GUARD_ABSENT &&
		    (b->wide || filter_may_have(b, op->key, op->key_len)))
			return true;
	}
	return false;
}

/* Stale and gap checks against the index due next: 1 if log_idx is it (go
 * on), 0 if it is stale (res says so), -EINVAL on a gap. */
static int check_next(struct kv_store *s, uint64_t next, uint64_t log_idx, struct kv_result *res)
{
	memset(res, 0, sizeof(*res));
	res->log_idx = log_idx;
	if (log_idx < next) {
		res->status = KV_STALE;
		return 0;
	}
	if (log_idx > next) {
		kv__set_errmsg(s, "apply: @%llu would leave a gap after @%llu",
			       (unsigned long long)log_idx, (unsigned long long)next);
		return -EINVAL;
	}
	return 1;
}

/* check_next for the batch's next entry; makes its WriteBatch if empty. */
static int batch_next(struct kv_store *s, struct kv_batch *b, uint64_t log_idx,
		      struct kv_result *res)
{
	if (b->n == 0)
		b->first = atomic_load(&s->applied);
	int rc = check_next(s, b->first + b->n, log_idx, res);
	if (rc == 1 && !b->wb && !(b->wb = rocksdb_writebatch_create()))
		return -ENOMEM;
	return rc;
}

/* t's proposer's dedup record as the batch has it (loaded from the state
 * the first time). */
static int batch_node(struct kv_store *s, struct kv_batch *b, uint64_t id, int *slot)
{
	int i = batch_node_find(b, id);
	if (i < 0) {
		i = (int)b->n_nodes;
		b->nodes[i].id = id;
		b->nodes[i].dirty = false;
		int rc = dedup_load(s, id, &b->nodes[i].d, &b->nodes[i].has);
		if (rc)
			return rc;
		b->n_nodes++;
	}
	*slot = i;
	return 0;
}

static int add_txn(struct kv_store *s, struct kv_batch *b, uint64_t log_idx, const struct kv_txn *t,
		   struct kv_result *res)
{
	res->node_id = t->node_id;
	res->seq = t->seq;
	int slot = -1, rc;
	if (t->node_id) {
		rc = batch_node(s, b, t->node_id, &slot);
		if (rc)
			return rc;
		if (b->nodes[slot].has && kv__dedup_seen(&b->nodes[slot].d, t->seq)) {
			res->status = KV_DUPLICATE;
			return 0;
		}
	}
	res->status = KV_APPLIED;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		if (t->ops[i].type < KV_OP_GUARD_ABSENT)
			continue;
		rc = guard_holds(s, &t->ops[i]);
		if (rc < 0)
			return rc;
		if (!rc) {
			res->status = KV_CONFLICT;
			res->conflict_op = i;
			break;
		}
	}
	if (res->status == KV_APPLIED) {
		rc = add_writes(s, b, t, log_idx);
		if (rc)
			return rc;
		kv__feed_put(s, b->wb, log_idx, t);
	}
	if (slot >= 0) {
		struct kv__dedup *d = &b->nodes[slot].d;
		if (!b->nodes[slot].has) {
			/* The first sequence seen from this node. */
			d->hwm = t->seq;
			d->window[0] = 1;
			b->nodes[slot].has = true;
		} else {
			kv__dedup_mark(d, t->seq);
		}
		b->nodes[slot].dirty = true;
	}
	return 0;
}

int kv_batch_add(struct kv_store *s, struct kv_batch *b, uint64_t log_idx, const struct kv_txn *t,
		 struct kv_result *res)
{
	if (must_commit_first(b, t))
		return -EAGAIN;
	int rc = batch_next(s, b, log_idx, res);
	if (rc <= 0)
		return rc;
	rc = add_txn(s, b, log_idx, t, res);
	if (rc) {
		batch_reset(b);
		return rc;
	}
	b->n++;
	return 0;
}

int kv_batch_add_malformed(struct kv_store *s, struct kv_batch *b, uint64_t log_idx,
			   const void *entry, size_t len, struct kv_result *res)
{
	int rc = batch_next(s, b, log_idx, res);
	if (rc <= 0)
		return rc;
	res->status = KV_MALFORMED;
	res->error = -EBADMSG;
	if (!kv__txn_peek_id(entry, len, &res->node_id, &res->seq))
		res->node_id = res->seq = 0;
	b->n++;
	return 0;
}

/* The proposers' dedup records, the feed's trim and applied = the last
 * entry + 1 go in last: once per batch. */
int kv_batch_commit(struct kv_store *s, struct kv_batch *b, bool sync)
{
	if (b->n == 0)
		return 0;
	uint64_t last = b->first + b->n - 1;
	for (uint32_t i = 0; i < b->n_nodes; i++)
		if (b->nodes[i].dirty)
			dedup_put(s, b->wb, b->nodes[i].id, &b->nodes[i].d);
	uint8_t idx[8];
	put_le64(idx, last + 1);
	kv__feed_trim(s, b->wb, last);
	rocksdb_writebatch_put_cf(b->wb, s->cf_meta, KV__M_APPLIED, strlen(KV__M_APPLIED),
				  (const char *)idx, sizeof(idx));
	int rc = kv__write(s, b->wb, sync, "apply");
	if (!rc)
		atomic_store(&s->applied, last + 1);
	batch_reset(b);
	return rc;
}

uint32_t kv_batch_len(const struct kv_batch *b)
{
	return b->n;
}

struct kv_batch *kv_batch_new(void)
{
	return calloc(1, sizeof(struct kv_batch));
}

void kv_batch_free(struct kv_batch *b)
{
	if (!b)
		return;
	batch_reset(b);
	free(b);
}

/* --- one entry at a time ----------------------------------------------------------- */

/* A batch of one: after the add and the commit it holds nothing (an add or
 * commit that fails empties it; a stale entry never fills it). */
int kv_apply_txn(struct kv_store *s, uint64_t log_idx, const struct kv_txn *t, bool sync,
		 struct kv_result *res)
{
	struct kv_batch b = {0};
	int rc = kv_batch_add(s, &b, log_idx, t, res);
	return rc ? rc : kv_batch_commit(s, &b, sync);
}

int kv_apply_malformed(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len,
		       bool sync, struct kv_result *res)
{
	struct kv_batch b = {0};
	int rc = kv_batch_add_malformed(s, &b, log_idx, entry, len, res);
	return rc ? rc : kv_batch_commit(s, &b, sync);
}

int kv_apply(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len, bool sync,
	     struct kv_result *res)
{
	struct kv_txn t;
	/* Stale and gap first: an entry already applied is not even decoded. */
	int rc = check_next(s, atomic_load(&s->applied), log_idx, res);
	if (rc <= 0)
		return rc;
	rc = kv_txn_decode(&t, entry, len);
	if (rc == -ENOMEM)
		return rc;
	if (rc == -EBADMSG)
		return kv_apply_malformed(s, log_idx, entry, len, sync, res);
	rc = kv_apply_txn(s, log_idx, &t, sync, res);
	kv_txn_free(&t);
	return rc;
}
