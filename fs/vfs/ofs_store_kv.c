/*
 * The ofs_store over the replicated KV (fs/kv.h) and a backend that commits
 * through consensus (struct ofs_backend: omnifsd wires it to the replica), and
 * a local backend that applies each transaction at once to a kv_store at the
 * next index (single node, no consensus: tests and ofs_local_mount).
 *
 * Reads use the node's applied state (kv_get, and one view per scan). A
 * commit converts the filesystem's transaction into a struct kv_txn with no
 * proposal id (node 0: the replica stamps its own (node, sequence) if it
 * deduplicates) and maps the result: KV_APPLIED is 0, KV_CONFLICT -EAGAIN
 * (the caller re-reads and rebuilds), anything else -EIO; the backend's own
 * errors (-EROFS, -ETIMEDOUT, -ESHUTDOWN) pass through.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "ofs.h"

static int kvs_get(void *ctx, const void *key, size_t key_len, void **val, size_t *len,
		   uint64_t *version)
{
	struct ofs_backend *b = ctx;
	int rc = kv_get(b->kv, key, key_len, val, len, version);
	return rc == -ENOENT || rc == 0 || rc == -ENOMEM ? rc : -EIO;
}

static int kvs_scan(void *ctx, const void *prefix, size_t prefix_len, const void *after,
		    size_t after_len, ofs_scan_fn fn, void *arg)
{
	struct ofs_backend *b = ctx;
	struct kv_view *v;
	struct kv_iter *it;
	int rc = kv_view_open(b->kv, &v);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	rc = kv_iter_open(v, prefix, prefix_len, after_len ? after : NULL, after_len, &it);
	if (rc) {
		kv_view_close(&v);
		return rc == -ENOMEM ? rc : -EIO;
	}
	for (;;) {
		const uint8_t *k, *val;
		size_t kl, vl;
		uint64_t ver;
		rc = kv_iter_next(it, &k, &kl, &val, &vl, &ver);
		if (rc <= 0) {
			rc = rc < 0 ? -EIO : 0;
			break;
		}
		if (after_len && kl == after_len && memcmp(k, after, kl) == 0)
			continue; /* strictly after */
		rc = fn(arg, k, kl, val, vl, ver);
		if (rc) {
			rc = rc < 0 ? rc : 0;
			break;
		}
	}
	kv_iter_close(&it);
	kv_view_close(&v);
	return rc;
}

/* Builds the kv_txn for t; 0, -EFBIG (over the KV's limits) or -ENOMEM. */
static int to_kv_txn(const struct ofs_txn *t, struct kv_txn *kt)
{
	kv_txn_init(kt, 0, 0);
	for (size_t i = 0; i < t->n; i++) {
		const struct ofs_txn_op *op = &t->ops[i];
		const uint8_t *k = op->key.b;
		size_t kl = op->key.len;
		int rc = 0;
		switch (op->type) {
		case OFS_OP_PUT:
			rc = kv_txn_add_put(kt, k, kl, op->val, op->val_len);
			break;
		case OFS_OP_DELETE:
			rc = kv_txn_add_delete(kt, k, kl);
			break;
		case OFS_OP_DELETE_PREFIX:
			rc = kv_txn_add_delete_prefix(kt, k, kl);
			break;
		case OFS_GUARD_ABSENT:
			rc = kv_txn_add_guard_absent(kt, k, kl);
			break;
		case OFS_GUARD_VERSION:
			rc = kv_txn_add_guard_version(kt, k, kl, op->version);
			break;
		}
		if (rc) {
			kv_txn_free(kt);
			return rc == -EINVAL ? -EFBIG : rc;
		}
	}
	return 0;
}

static int kvs_commit(void *ctx, const struct ofs_txn *t)
{
	struct ofs_backend *b = ctx;
	struct kv_txn kt;
	struct kv_result res;
	if (t->err)
		return t->err;
	int rc = to_kv_txn(t, &kt);
	if (rc)
		return rc;
	memset(&res, 0, sizeof(res));
	rc = b->propose(b->ctx, &kt, &res);
	kv_txn_free(&kt);
	if (rc)
		return rc;
	switch (res.status) {
	case KV_APPLIED:
		return 0;
	case KV_CONFLICT:
		return -EAGAIN;
	default:
		log_err("fs: a transaction came back with status %d (error %d)", (int)res.status,
			res.error);
		return -EIO;
	}
}

static int kvs_can_write(void *ctx)
{
	struct ofs_backend *b = ctx;
	return b->can_write ? b->can_write(b->ctx) : 0;
}

void ofs_store_bind_backend(struct ofs_store *s, struct ofs_backend *b)
{
	memset(s, 0, sizeof(*s));
	s->ctx = b;
	s->get = kvs_get;
	s->scan = kvs_scan;
	s->commit = kvs_commit;
	s->can_write = kvs_can_write;
}

/* --- local backend ------------------------------------------------------------- */

struct ofs_local_backend {
	pthread_mutex_t lock; /* one apply at a time: the KV has one writer */
	struct kv_store *kv;
};

static int local_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct ofs_local_backend *lb = ctx;
	uint8_t *buf;
	size_t len;
	int rc = kv_txn_encode(t, &buf, &len);
	if (rc)
		return rc;
	pthread_mutex_lock(&lb->lock);
	rc = kv_apply(lb->kv, kv_applied_idx(lb->kv), buf, len, false, res);
	if (rc)
		log_err("fs: local apply failed: %s", kv_errmsg(lb->kv));
	pthread_mutex_unlock(&lb->lock);
	free(buf);
	return rc ? -EIO : 0;
}

int ofs_local_backend_open(struct ofs_local_backend **out, const char *path, uint64_t cluster_id,
			   struct ofs_backend *b, char *err, size_t err_len)
{
	struct ofs_local_backend *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	int rc = kv_open(&lb->kv, path, cluster_id, err, err_len);
	if (rc) {
		free(lb);
		return rc;
	}
	pthread_mutex_init(&lb->lock, NULL);
	memset(b, 0, sizeof(*b));
	b->ctx = lb;
	b->propose = local_propose;
	b->kv = lb->kv;
	*out = lb;
	return 0;
}

void ofs_local_backend_close(struct ofs_local_backend **lbp)
{
	struct ofs_local_backend *lb = *lbp;
	if (!lb)
		return;
	pthread_mutex_lock(&lb->lock);
	kv_sync(lb->kv);
	pthread_mutex_unlock(&lb->lock);
	kv_close(&lb->kv);
	pthread_mutex_destroy(&lb->lock);
	free(lb);
	*lbp = NULL;
}
