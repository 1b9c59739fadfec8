/*
 * The filesystem's one door to the replicated KV: reads of the node's
 * applied state (kv_get, and one kv_view per scan) and commits of the
 * struct kv_txn an operation built, through the backend's propose.
 *
 * A commit maps the KV's answer to what the operations handle: KV_APPLIED is
 * 0, KV_CONFLICT -EAGAIN (a guard failed: re-read and rebuild), any other
 * status -EIO; the backend's own errors (-EROFS, -ETIMEDOUT, -ESHUTDOWN)
 * pass through. The transactions carry no proposal id (node 0): the replica
 * stamps its own. The add helpers are the KV's builder with the schema's
 * keys, and -EFBIG where the KV says a transaction would be over its limits
 * (-EINVAL). Does not retry: ofs_run_txn (ofs_core.c) does. Each commit
 * carries its change note (ofs_note.c) for the feed, and the previous
 * versions it replaces (ofs_history.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "ofs_history.h"
#include "ofs_int.h"

int ofs_kv_get(struct ofs *o, const void *key, size_t key_len, void **val, size_t *len,
	       uint64_t *version)
{
	int rc = kv_get(o->b.kv, key, key_len, val, len, version);
	return rc == -ENOENT || rc == 0 || rc == -ENOMEM ? rc : -EIO;
}

int ofs_kv_scan_view(struct kv_view *v, const void *prefix, size_t prefix_len, const void *after,
		     size_t after_len, ofs_scan_fn fn, void *arg)
{
	struct kv_iter *it;
	int rc = kv_iter_open(v, prefix, prefix_len, after_len ? after : NULL, after_len, &it);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
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
	return rc;
}

int ofs_kv_scan_store(struct kv_store *kv, const void *prefix, size_t prefix_len, const void *after,
		      size_t after_len, ofs_scan_fn fn, void *arg)
{
	struct kv_view *v;
	int rc = kv_view_open(kv, &v);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	rc = ofs_kv_scan_view(v, prefix, prefix_len, after, after_len, fn, arg);
	kv_view_close(&v);
	return rc;
}

int ofs_kv_scan(struct ofs *o, const void *prefix, size_t prefix_len, const void *after,
		size_t after_len, ofs_scan_fn fn, void *arg)
{
	return ofs_kv_scan_store(o->b.kv, prefix, prefix_len, after, after_len, fn, arg);
}

int ofs_commit(struct ofs *o, struct kv_txn *t)
{
	struct kv_result res;
	memset(&res, 0, sizeof(res));
	int rc = t->n_ops ? ofs_note_attach(o, t) : 0;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		/* A path over KV_NOTE_PATH_MAX, or a read that failed: logged at
		 * the 1st, 2nd, 4th, 8th... time, so a user cannot flood the log. */
		uint64_t n = __atomic_add_fetch(&o->notes_missed, 1, __ATOMIC_RELAXED);
		if ((n & (n - 1)) == 0)
			log_warn("fs: a change goes without its note, so the feed (omnifsctl "
				 "watch) does not show it: %s (%llu so far)",
				 strerror(-rc), (unsigned long long)n);
	}
	rc = ofs_history_capture(o, t);
	if (rc)
		return rc;
	rc = o->b.propose(o->b.ctx, t, &res);
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

/* The KV refuses an add with -EINVAL only for its limits here: the keys the
 * schema makes are never empty nor longer than KV_MAX_KEY_LEN. */
static int add_rc(int rc)
{
	return rc == -EINVAL ? -EFBIG : rc;
}

int ofs_add_put(struct kv_txn *t, const struct ofs_key *k, const void *val, size_t len)
{
	return add_rc(kv_txn_add_put(t, k->b, k->len, val, len));
}

int ofs_add_delete(struct kv_txn *t, const struct ofs_key *k)
{
	return add_rc(kv_txn_add_delete(t, k->b, k->len));
}

int ofs_add_delete_prefix(struct kv_txn *t, const struct ofs_key *prefix)
{
	return add_rc(kv_txn_add_delete_prefix(t, prefix->b, prefix->len));
}

int ofs_add_guard_absent(struct kv_txn *t, const struct ofs_key *k)
{
	return add_rc(kv_txn_add_guard_absent(t, k->b, k->len));
}

int ofs_add_guard_version(struct kv_txn *t, const struct ofs_key *k, uint64_t version)
{
	return add_rc(kv_txn_add_guard_version(t, k->b, k->len, version));
}
