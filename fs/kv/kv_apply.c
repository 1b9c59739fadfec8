/*
 * Applying decided log entries to the replicated KV, deterministically.
 *
 * One entry becomes one WriteBatch: the transaction's writes (if its guards
 * hold and its proposal id is new), the proposer's dedup record, and the new
 * applied index. Whatever happens to the transaction (applied, conflict,
 * duplicate, malformed) the applied index advances, so every node walks the
 * same log to the same state. Only storage failures write nothing. An
 * applied transaction's change note goes into the feed in the same batch
 * (kv_feed.c).
 *
 * Every decision reads only the entry and the state before it: never the
 * clock, the node id or anything local. Reads here see the latest state
 * because this thread is the only writer.
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

static int add_writes(struct kv_store *s, rocksdb_writebatch_t *wb, const struct kv_txn *t,
		      uint64_t log_idx)
{
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
			break;
		}
		case KV_OP_DELETE:
			rocksdb_writebatch_deletev_cf(wb, cf, 2, kparts, klens);
			break;
		case KV_OP_DELETE_PREFIX: {
			int rc = delete_prefix(s, wb, t, i);
			if (rc)
				return rc;
			break;
		}
		default:
			break; /* guards write nothing */
		}
	}
	return 0;
}

/* Stale and gap checks shared by the entry points: 1 if the entry is the
 * next one (go on), 0 if it is stale (res says so), -EINVAL on a gap. */
static int check_next(struct kv_store *s, uint64_t log_idx, struct kv_result *res)
{
	uint64_t applied = atomic_load(&s->applied);
	memset(res, 0, sizeof(*res));
	res->log_idx = log_idx;
	if (log_idx < applied) {
		res->status = KV_STALE;
		return 0;
	}
	if (log_idx > applied) {
		kv__set_errmsg(s, "apply: @%llu would leave a gap after @%llu",
			       (unsigned long long)log_idx, (unsigned long long)applied);
		return -EINVAL;
	}
	return 1;
}

/* Writes wb plus applied = log_idx + 1; destroys wb. */
static int finish(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t log_idx, bool sync)
{
	uint8_t idx[8];
	put_le64(idx, log_idx + 1);
	kv__feed_trim(s, wb, log_idx);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_APPLIED, strlen(KV__M_APPLIED),
				  (const char *)idx, sizeof(idx));
	int rc = kv__write(s, wb, sync, "apply");
	if (!rc)
		atomic_store(&s->applied, log_idx + 1);
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int kv_apply_txn(struct kv_store *s, uint64_t log_idx, const struct kv_txn *t, bool sync,
		 struct kv_result *res)
{
	int rc = check_next(s, log_idx, res);
	if (rc <= 0)
		return rc;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	res->node_id = t->node_id;
	res->seq = t->seq;

	struct kv__dedup d;
	bool has = false;
	if (t->node_id) {
		rc = dedup_load(s, t->node_id, &d, &has);
		if (rc)
			goto out_destroy;
		if (has && kv__dedup_seen(&d, t->seq)) {
			res->status = KV_DUPLICATE;
			return finish(s, wb, log_idx, sync);
		}
	}
	res->status = KV_APPLIED;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		if (t->ops[i].type < KV_OP_GUARD_ABSENT)
			continue;
		rc = guard_holds(s, &t->ops[i]);
		if (rc < 0)
			goto out_destroy;
		if (!rc) {
			res->status = KV_CONFLICT;
			res->conflict_op = i;
			break;
		}
	}
	if (res->status == KV_APPLIED) {
		rc = add_writes(s, wb, t, log_idx);
		if (rc)
			goto out_destroy;
		kv__feed_put(s, wb, log_idx, t);
	}
	if (t->node_id) {
		if (!has) {
			/* The first sequence seen from this node. */
			d.hwm = t->seq;
			d.window[0] = 1;
		} else {
			kv__dedup_mark(&d, t->seq);
		}
		dedup_put(s, wb, t->node_id, &d);
	}
	return finish(s, wb, log_idx, sync);
out_destroy:
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int kv_apply_malformed(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len,
		       bool sync, struct kv_result *res)
{
	int rc = check_next(s, log_idx, res);
	if (rc <= 0)
		return rc;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	res->status = KV_MALFORMED;
	res->error = -EBADMSG;
	if (!kv__txn_peek_id(entry, len, &res->node_id, &res->seq))
		res->node_id = res->seq = 0;
	return finish(s, wb, log_idx, sync);
}

int kv_apply(struct kv_store *s, uint64_t log_idx, const void *entry, size_t len, bool sync,
	     struct kv_result *res)
{
	struct kv_txn t;
	/* Stale and gap first: an entry already applied is not even decoded. */
	int rc = check_next(s, log_idx, res);
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
