/*
 * Applying transactions to the replicated KV: every operation, each guard
 * holding and failing (a conflict writes only the index and the dedup
 * record), exactly-once by proposal id (duplicates, out-of-order ids in the
 * window, ids below it, node 0), DELETE_PREFIX, malformed entries, stale and
 * gapped indexes, read views and prefix iterators, persistence across
 * close/open, refusal of foreign/other-format/garbage dirs, and determinism:
 * two stores fed the same seeded random log have equal digests, a different
 * log gives a different one; kv_apply_txn / kv_apply_malformed on an
 * entry decoded once give what kv_apply gives; and batches (kv_batch) give
 * every entry the result, and the state the digest, of one entry at a time,
 * holding back what reads their own writes until their commit.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "kv.h"
#include "kv_int.h"
#include "kvt.h"
#include "rocks_memory.h"

struct fixture {
	char dir[256];
	char path[300]; /* dir/state */
	struct kv_store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || kvt_mkdtemp(f->dir, sizeof(f->dir))) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/state", f->dir);
	f->s = kvt_open(f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kv_close(&f->s);
	kvt_rmtree(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	kv_close(&f->s);
	assert_null(f->s);
	f->s = kvt_open(f->path);
}

static void check_value(struct kv_store *s, const char *key, const char *want, uint64_t version)
{
	uint64_t ver = 0;
	char *v = kvt_get(s, key, &ver);
	if (!want) {
		if (v)
			fail_msg("%s: expected absent, got '%s'", key, v);
		return;
	}
	if (!v)
		fail_msg("%s: expected '%s', absent", key, want);
	assert_string_equal(v, want);
	assert_int_equal(ver, version);
	free(v);
}

/* a and b hold the same state at the same applied index. */
static void expect_same_digest(struct kv_store *a, struct kv_store *b)
{
	uint8_t da[KV_DIGEST_LEN], db[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(a, da), 0);
	assert_int_equal(kv_digest(b, db), 0);
	assert_memory_equal(da, db, KV_DIGEST_LEN);
}

static void put1(struct kv_store *s, uint64_t node, uint64_t seq, const char *k, const char *v,
		 enum kv_status want)
{
	struct kv_txn t;
	struct kv_result r;
	kv_txn_init(&t, node, seq);
	assert_int_equal(kv_txn_add_put(&t, k, strlen(k), v, strlen(v)), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, want);
	assert_int_equal(r.node_id, node);
	assert_int_equal(r.seq, seq);
}

static void test_kv_apply_put_get_delete(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;
	struct kv_txn t;
	struct kv_result r;

	assert_int_equal(kv_applied_idx(s), 0);
	kv_txn_init(&t, 1, 1);
	assert_int_equal(kv_txn_add_put(&t, "a", 1, "1", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "b", 1, "2", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "e", 1, NULL, 0), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	assert_int_equal(r.log_idx, 0);
	assert_int_equal(kv_applied_idx(s), 1);
	check_value(s, "a", "1", 0);
	check_value(s, "b", "2", 0);
	check_value(s, "e", "", 0); /* present and empty */
	check_value(s, "c", NULL, 0);

	kv_txn_init(&t, 1, 2);
	assert_int_equal(kv_txn_add_put(&t, "a", 1, "three", 5), 0);
	assert_int_equal(kv_txn_add_delete(&t, "b", 1), 0);
	assert_int_equal(kv_txn_add_delete(&t, "never", 5), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	check_value(s, "a", "three", 1);
	check_value(s, "b", NULL, 0);
	check_value(s, "e", "", 0);

	/* Writes land in list order: put then delete is a delete, and a put
	 * after a DELETE_PREFIX that covers it survives. */
	kv_txn_init(&t, 1, 3);
	assert_int_equal(kv_txn_add_put(&t, "x", 1, "1", 1), 0);
	assert_int_equal(kv_txn_add_delete(&t, "x", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "p/1", 3, "old", 3), 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "p/", 2), 0);
	assert_int_equal(kv_txn_add_put(&t, "p/2", 3, "new", 3), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	check_value(s, "x", NULL, 0);
	check_value(s, "p/1", NULL, 0);
	check_value(s, "p/2", "new", 2);

	/* NULL outputs are allowed. */
	assert_int_equal(kv_get(s, "a", 1, NULL, NULL, NULL), 0);
	assert_int_equal(kv_get(s, "zz", 2, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(kv_applied_idx(s), 3);
}

static void test_kv_apply_delete_prefix(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;
	const char *keys[] = {"f1", "f1/", "f1/0", "f1/1", "f1/1/deep", "f10", "f2/0", "f0"};
	struct kv_txn t;
	struct kv_result r;
	kv_txn_init(&t, 0, 0);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(kv_txn_add_put(&t, keys[i], strlen(keys[i]), "v", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "\xff\xff", 2, "v", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "\xff\xff\x01", 3, "v", 1), 0);
	assert_int_equal(kv_txn_add_put(&t, "\xff\xfe\xff", 3, "v", 1), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);

	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "f1/", 3), 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "\xff\xff", 2), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	check_value(s, "f1", "v", 0);
	check_value(s, "f1/", NULL, 0);
	check_value(s, "f1/0", NULL, 0);
	check_value(s, "f1/1", NULL, 0);
	check_value(s, "f1/1/deep", NULL, 0);
	check_value(s, "f10", "v", 0);
	check_value(s, "f2/0", "v", 0);
	check_value(s, "f0", "v", 0);
	assert_int_equal(kv_get(s, "\xff\xff", 2, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(kv_get(s, "\xff\xff\x01", 3, NULL, NULL, NULL), -ENOENT);
	assert_int_equal(kv_get(s, "\xff\xfe\xff", 3, NULL, NULL, NULL), 0);

	/* Keys written afterwards under the prefix are there. */
	put1(s, 0, 0, "f1/9", "again", KV_APPLIED);
	check_value(s, "f1/9", "again", 2);

	/* Prefixes of as many keys as are deleted one by one (256), and of
	 * more (then a range is deleted), with keys beside them kept. */
	static const struct {
		const char *prefix;
		int n;
	} sets[] = {{"edge/", 256}, {"big/", 300}};
	for (size_t i = 0; i < 2; i++) {
		char k[32];
		kv_txn_init(&t, 0, 0);
		for (int j = 0; j < sets[i].n; j++) {
			int kl = snprintf(k, sizeof(k), "%s%04d", sets[i].prefix, j);
			assert_int_equal(kv_txn_add_put(&t, k, (size_t)kl, "v", 1), 0);
		}
		assert_int_equal(kvt_apply(s, &t, &r), 0);
	}
	put1(s, 0, 0, "big", "kept", KV_APPLIED);
	put1(s, 0, 0, "edge0", "kept", KV_APPLIED);
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "edge/", 5), 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "big/", 4), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	for (size_t i = 0; i < 2; i++) {
		for (int j = 0; j < sets[i].n; j++) {
			char k[32];
			int kl = snprintf(k, sizeof(k), "%s%04d", sets[i].prefix, j);
			assert_int_equal(kv_get(s, k, (size_t)kl, NULL, NULL, NULL), -ENOENT);
		}
	}
	check_value(s, "big", "kept", 5);
	check_value(s, "edge0", "kept", 6);
}

static void test_kv_apply_guards(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;
	struct kv_txn t;
	struct kv_result r;

	put1(s, 0, 0, "k", "v0", KV_APPLIED); /* k at version 0 */
	put1(s, 0, 0, "k", "v1", KV_APPLIED); /* k at version 1 */

	struct {
		enum kv_op_type type;
		const char *key;
		uint64_t version;
		bool holds;
	} cases[] = {
		{KV_OP_GUARD_ABSENT, "nope", 0, true}, {KV_OP_GUARD_ABSENT, "k", 0, false},
		{KV_OP_GUARD_PRESENT, "k", 0, true},   {KV_OP_GUARD_PRESENT, "nope", 0, false},
		{KV_OP_GUARD_VERSION, "k", 1, true},   {KV_OP_GUARD_VERSION, "k", 0, false},
		{KV_OP_GUARD_VERSION, "k", 2, false},  {KV_OP_GUARD_VERSION, "nope", 0, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t idx = kv_applied_idx(s);
		char val[16];
		snprintf(val, sizeof(val), "w%zu", i);
		kv_txn_init(&t, 9, 100 + i);
		/* The write comes first: guards bind wherever they sit. */
		assert_int_equal(kv_txn_add_put(&t, "w", 1, val, strlen(val)), 0);
		assert_int_equal(kv_txn_add_guard_present(&t, "k", 1), 0);
		const char *k = cases[i].key;
		int rc = cases[i].type == KV_OP_GUARD_ABSENT
				 ? kv_txn_add_guard_absent(&t, k, strlen(k))
			 : cases[i].type == KV_OP_GUARD_PRESENT
				 ? kv_txn_add_guard_present(&t, k, strlen(k))
				 : kv_txn_add_guard_version(&t, k, strlen(k), cases[i].version);
		assert_int_equal(rc, 0);
		uint8_t before[KV_DIGEST_LEN], after[KV_DIGEST_LEN];
		char *prev = kvt_get(s, "w", NULL);
		assert_int_equal(kv_digest(s, before), 0);
		assert_int_equal(kvt_apply(s, &t, &r), 0);
		assert_int_equal(kv_applied_idx(s), idx + 1);
		if (cases[i].holds) {
			assert_int_equal(r.status, KV_APPLIED);
			check_value(s, "w", val, idx);
		} else {
			assert_int_equal(r.status, KV_CONFLICT);
			assert_int_equal(r.conflict_op, 2);
			assert_int_equal(r.error, 0);
			char *now = kvt_get(s, "w", NULL);
			if (prev)
				assert_string_equal(now, prev);
			else
				assert_null(now);
			free(now);
			/* The index and the dedup record changed, nothing else: a
			 * retry of the id is a duplicate. */
			assert_int_equal(kv_digest(s, after), 0);
			assert_memory_not_equal(before, after, KV_DIGEST_LEN);
			kv_txn_init(&t, 9, 100 + i);
			assert_int_equal(kv_txn_add_put(&t, "w", 1, "retry", 5), 0);
			assert_int_equal(kvt_apply(s, &t, &r), 0);
			assert_int_equal(r.status, KV_DUPLICATE);
			now = kvt_get(s, "w", NULL);
			assert_true(!now || strcmp(now, "retry"));
			free(now);
		}
		free(prev);
	}

	/* The first failing guard is the one reported. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_add_guard_present(&t, "k", 1), 0);
	assert_int_equal(kv_txn_add_guard_absent(&t, "k", 1), 0);
	assert_int_equal(kv_txn_add_guard_present(&t, "nope", 4), 0);
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, KV_CONFLICT);
	assert_int_equal(r.conflict_op, 1);
}

static void test_kv_apply_dedup(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;

	put1(s, 5, 10, "a", "first", KV_APPLIED);
	put1(s, 5, 10, "a", "again", KV_DUPLICATE);
	check_value(s, "a", "first", 0);
	assert_int_equal(kv_applied_idx(s), 2); /* a duplicate still advances */

	/* Out of order within the window. */
	put1(s, 5, 13, "b", "13", KV_APPLIED);
	put1(s, 5, 11, "c", "11", KV_APPLIED);
	put1(s, 5, 12, "d", "12", KV_APPLIED);
	put1(s, 5, 11, "c", "x", KV_DUPLICATE);
	put1(s, 5, 13, "b", "x", KV_DUPLICATE);
	check_value(s, "c", "11", 3);

	/* Other nodes have their own sequences; node 0 is never deduplicated. */
	put1(s, 6, 10, "e", "n6", KV_APPLIED);
	put1(s, 0, 10, "z", "1", KV_APPLIED);
	put1(s, 0, 10, "z", "2", KV_APPLIED);
	check_value(s, "z", "2", 9);

	/* Jump far ahead: the window follows the high-water mark. */
	uint64_t hi = 13 + 5000;
	put1(s, 5, hi, "f", "hi", KV_APPLIED);
	put1(s, 5, hi - KV_DEDUP_WINDOW, "g", "below", KV_DUPLICATE);
	put1(s, 5, 14, "g", "old", KV_DUPLICATE);
	put1(s, 5, hi - KV_DEDUP_WINDOW + 1, "g", "edge", KV_APPLIED);
	put1(s, 5, hi - KV_DEDUP_WINDOW + 1, "g", "x", KV_DUPLICATE);
	put1(s, 5, hi - 1, "h", "in", KV_APPLIED);
	put1(s, 5, hi, "f", "x", KV_DUPLICATE);

	/* Small steps keep what the window still covers: 64 and 65 apart,
	 * across word boundaries of the bitmap. */
	put1(s, 7, 1000, "i", "a", KV_APPLIED);
	put1(s, 7, 1064, "i", "b", KV_APPLIED);
	put1(s, 7, 1065, "i", "c", KV_APPLIED);
	put1(s, 7, 1000, "i", "x", KV_DUPLICATE);
	put1(s, 7, 1064, "i", "x", KV_DUPLICATE);
	put1(s, 7, 1001, "i", "d", KV_APPLIED);
	/* A shift of 1023: 1064 falls out of the window, 1065 stays marked. */
	put1(s, 7, 1065 + KV_DEDUP_WINDOW - 1, "i", "e", KV_APPLIED);
	put1(s, 7, 1064, "i", "x", KV_DUPLICATE);
	put1(s, 7, 1065, "i", "x", KV_DUPLICATE);
	put1(s, 7, 1066, "i", "x2", KV_APPLIED);
	put1(s, 7, 1000 + 65 + 64, "i", "f", KV_APPLIED);
	put1(s, 7, 1000 + 65 + 64, "i", "x", KV_DUPLICATE);
	check_value(s, "i", "f", kv_applied_idx(s) - 2);

	/* A marked sequence carried across a word of the window. */
	put1(s, 8, 2000, "j", "a", KV_APPLIED);
	put1(s, 8, 2063, "j", "b", KV_APPLIED);
	put1(s, 8, 2064, "j", "c", KV_APPLIED);
	put1(s, 8, 2000, "j", "x", KV_DUPLICATE);
	put1(s, 8, 2063, "j", "x", KV_DUPLICATE);

	/* The high-water marks a restarting proposer can read back. */
	struct kv_view *v;
	uint64_t seq = 0;
	assert_int_equal(kv_view_open(s, &v), 0);
	assert_int_equal(kv_view_dedup_hwm(v, 5, &seq), 0);
	assert_int_equal(seq, hi);
	assert_int_equal(kv_view_dedup_hwm(v, 6, &seq), 0);
	assert_int_equal(seq, 10);
	assert_int_equal(kv_view_dedup_hwm(v, 12, &seq), -ENOENT);
	assert_int_equal(kv_view_dedup_hwm(v, 0, &seq), -ENOENT);
	kv_view_close(&v);

	/* The table survives a restart. */
	reopen(f);
	s = f->s;
	put1(s, 5, 10, "a", "x", KV_DUPLICATE);
	put1(s, 5, hi - 2, "j", "new", KV_APPLIED);
	put1(s, 6, 10, "e", "x", KV_DUPLICATE);
	put1(s, 6, 9, "e", "n6-9", KV_APPLIED);
}

/* Exactly-once against a model: random sequences of one proposer, jumping
 * ahead and falling back, each reported DUPLICATE iff the model says so. */
static void test_kv_apply_dedup_model(void **state)
{
	struct fixture *f = *state;
	uint64_t x = kvt_seed();
	enum { MAX_SEQ = 20000 };
	bool *seen = calloc(MAX_SEQ, sizeof(*seen));
	uint64_t hwm = 0, base = 1500;
	bool any = false;
	int dups = 0;
	assert_non_null(seen);
	for (int i = 0; i < 3000; i++) {
		uint64_t r = kvt_rand(&x);
		if (r % 50 == 0 && base + 700 < MAX_SEQ - 200)
			base += r % 700; /* sometimes a jump */
		uint64_t seq = base - 1400 + (r >> 8) % 1500;
		bool dup = any && seq <= hwm && (hwm - seq >= KV_DEDUP_WINDOW || seen[seq]);
		put1(f->s, 11, seq, "m", "v", dup ? KV_DUPLICATE : KV_APPLIED);
		dups += dup;
		if (!dup) {
			seen[seq] = true;
			if (!any || seq > hwm)
				hwm = seq;
			any = true;
		}
		if (base < MAX_SEQ - 200)
			base++;
	}
	printf("# %d of 3000 duplicates\n", dups);
	assert_true(dups > 100 && dups < 2900);
	/* kv_proposal_seen reads the same record: processed (or below the
	 * window) for the model, not for a sequence never sent, nor for another
	 * node. */
	for (uint64_t seq = 1; seq < MAX_SEQ; seq++) {
		bool want = seq <= hwm && (hwm - seq >= KV_DEDUP_WINDOW || seen[seq]), got;
		assert_int_equal(kv_proposal_seen(f->s, 11, seq, &got), 0);
		if (got != want)
			fail_msg("seq %llu: seen %d, want %d", (unsigned long long)seq, got, want);
	}
	bool other;
	assert_int_equal(kv_proposal_seen(f->s, 12, hwm, &other), 0);
	assert_false(other);
	free(seen);
}

static void test_kv_apply_malformed_stale_gap(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;
	struct kv_result r;

	put1(s, 0, 0, "a", "1", KV_APPLIED);
	uint8_t before[KV_DIGEST_LEN], after[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(s, before), 0);
	assert_int_equal(kv_apply(s, 1, "garbage", 7, true, &r), 0);
	assert_int_equal(r.status, KV_MALFORMED);
	assert_int_equal(r.error, -EBADMSG);
	assert_int_equal(r.node_id, 0);
	assert_int_equal(kv_applied_idx(s), 2);

	/* A valid header with a broken body still names its proposal. */
	struct kv_txn t;
	uint8_t *buf;
	size_t len;
	kv_txn_init(&t, 4, 44);
	assert_int_equal(kv_txn_add_put(&t, "b", 1, "2", 1), 0);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	kv_txn_free(&t);
	assert_int_equal(kv_apply(s, 2, buf, len - 1, false, &r), 0);
	assert_int_equal(r.status, KV_MALFORMED);
	assert_int_equal(r.node_id, 4);
	assert_int_equal(r.seq, 44);
	check_value(s, "b", NULL, 0);
	/* ... and is not recorded: the intact entry applies. */
	assert_int_equal(kv_apply(s, 3, buf, len, false, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	check_value(s, "b", "2", 3);

	/* Already applied: nothing happens. A gap is refused. */
	assert_int_equal(kv_digest(s, before), 0);
	assert_int_equal(kv_apply(s, 1, buf, len, false, &r), 0);
	assert_int_equal(r.status, KV_STALE);
	assert_int_equal(kv_apply(s, 9, buf, len, false, &r), -EINVAL);
	assert_non_null(strstr(kv_errmsg(s), "gap"));
	assert_int_equal(kv_digest(s, after), 0);
	assert_memory_equal(before, after, KV_DIGEST_LEN);
	assert_int_equal(kv_applied_idx(s), 4);
	free(buf);
}

static void test_kv_apply_views_and_iterators(void **state)
{
	struct fixture *f = *state;
	struct kv_store *s = f->s;
	const char *keys[] = {"d/a", "d/b", "d/c", "d0", "c", "d/b/x"};
	for (size_t i = 0; i < 6; i++)
		put1(s, 0, 0, keys[i], keys[i], KV_APPLIED);

	struct kv_view *v;
	assert_int_equal(kv_view_open(s, &v), 0);
	assert_int_equal(kv_view_applied_idx(v), 6);
	/* Later writes are not seen by the view. */
	put1(s, 0, 0, "d/a", "changed", KV_APPLIED);
	put1(s, 0, 0, "d/aa", "new", KV_APPLIED);
	void *val;
	size_t len;
	uint64_t ver;
	assert_int_equal(kv_view_get(v, "d/a", 3, &val, &len, &ver), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(val, "d/a", 3);
	assert_int_equal(ver, 0);
	free(val);
	assert_int_equal(kv_view_get(v, "d/aa", 4, NULL, NULL, NULL), -ENOENT);

	/* Prefix listing in key order, from a start key. */
	struct kv_iter *it;
	const uint8_t *k, *vv;
	size_t klen, vlen;
	const char *want[] = {"d/a", "d/b", "d/b/x", "d/c"};
	assert_int_equal(kv_iter_open(v, "d/", 2, NULL, 0, &it), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 1);
		assert_int_equal(klen, strlen(want[i]));
		assert_memory_equal(k, want[i], klen);
		assert_memory_equal(vv, want[i], vlen);
	}
	assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 0);
	assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 0); /* stays at the end */
	kv_iter_close(&it);
	assert_null(it);
	assert_int_equal(kv_iter_open(v, "d/", 2, "d/b0", 4, &it), 0);
	assert_int_equal(kv_iter_next(it, &k, &klen, NULL, NULL, NULL), 1);
	assert_memory_equal(k, "d/c", 3);
	assert_int_equal(kv_iter_next(it, &k, &klen, NULL, NULL, NULL), 0);
	kv_iter_close(&it);
	/* A start before the prefix starts at the prefix. */
	assert_int_equal(kv_iter_open(v, "d/", 2, "a", 1, &it), 0);
	assert_int_equal(kv_iter_next(it, &k, &klen, NULL, NULL, NULL), 1);
	assert_memory_equal(k, "d/a", 3);
	kv_iter_close(&it);
	/* The empty prefix lists everything. */
	assert_int_equal(kv_iter_open(v, NULL, 0, NULL, 0, &it), 0);
	int n = 0;
	while (kv_iter_next(it, &k, &klen, NULL, NULL, NULL) == 1)
		n++;
	assert_int_equal(n, 6);
	kv_iter_close(&it);
	kv_view_close(&v);
	assert_null(v);

	/* A new view sees the new state. */
	assert_int_equal(kv_view_open(s, &v), 0);
	assert_int_equal(kv_view_applied_idx(v), 8);
	assert_int_equal(kv_iter_open(v, "d/a", 3, NULL, 0, &it), 0);
	assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 1);
	assert_memory_equal(vv, "changed", 7);
	assert_int_equal(ver, 6);
	assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 1);
	assert_memory_equal(k, "d/aa", 4);
	assert_int_equal(kv_iter_next(it, &k, &klen, &vv, &vlen, &ver), 0);
	kv_iter_close(&it);
	kv_view_close(&v);
}

static void test_kv_apply_persists(void **state)
{
	struct fixture *f = *state;
	struct kv_result r;
	put1(f->s, 3, 1, "a", "1", KV_APPLIED);
	put1(f->s, 3, 2, "b", "2", KV_APPLIED);
	struct kv_txn t;
	uint8_t *buf;
	size_t len;
	kv_txn_init(&t, 3, 3);
	assert_int_equal(kv_txn_add_delete(&t, "a", 1), 0);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	kv_txn_free(&t);
	assert_int_equal(kv_apply(f->s, 2, buf, len, true, &r), 0);
	free(buf);
	uint8_t before[KV_DIGEST_LEN], after[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(f->s, before), 0);
	reopen(f);
	assert_int_equal(kv_applied_idx(f->s), 3);
	assert_int_equal(kv_digest(f->s, after), 0);
	assert_memory_equal(before, after, KV_DIGEST_LEN);
	check_value(f->s, "a", NULL, 0);
	check_value(f->s, "b", "2", 1);
	put1(f->s, 3, 2, "b", "x", KV_DUPLICATE);

	/* The directory is created with its parents. */
	kv_close(&f->s);
	snprintf(f->path, sizeof(f->path), "%s/a/b/state", f->dir);
	f->s = kvt_open(f->path);
	assert_int_equal(kv_applied_idx(f->s), 0);
}

static void expect_refused(const char *path, uint64_t cluster, int want_rc, const char *word)
{
	struct kv_store *s = (void *)path;
	char err[KV_ERR_MAX];
	int rc = kv_open(&s, path, cluster, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("kv_open gave %d (%s), expected %d", rc, err, want_rc);
	assert_null(s);
	assert_non_null(strstr(err, path));
	if (word && !strstr(err, word))
		fail_msg("'%s' not in '%s'", word, err);
}

static void test_kv_apply_refuses_foreign(void **state)
{
	struct fixture *f = *state;
	put1(f->s, 0, 0, "a", "1", KV_APPLIED);
	kv_close(&f->s);
	expect_refused(f->path, 0x42, -EINVAL, "belongs to cluster 0xc1c1c1c1c1c1c1c1");
	expect_refused(f->path, 0x42, -EINVAL, "configured for cluster 0x42");

	/* Another format. */
	rocksdb_options_t *o = rocksdb_options_create();
	const char *names[3] = {"default", "state0", "state1"};
	const rocksdb_options_t *cfo[3] = {o, o, o};
	rocksdb_column_family_handle_t *cfs[3];
	char *e = NULL;
	rocksdb_t *db = rocksdb_open_column_families(o, f->path, 3, names, cfo, cfs, &e);
	assert_null(e);
	uint8_t id[20] = "omnifsKV";
	id[8] = 7;
	memset(id + 12, 0xc1, 8);
	rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
	rocksdb_put_cf(db, w, cfs[0], "identity", 8, (const char *)id, sizeof(id), &e);
	assert_null(e);
	rocksdb_writeoptions_destroy(w);
	for (int i = 0; i < 3; i++)
		rocksdb_column_family_handle_destroy(cfs[i]);
	rocksdb_close(db);
	expect_refused(f->path, KVT_CLUSTER, -EINVAL, "format 7");

	/* A directory with other things in it, and another RocksDB. */
	char p[400];
	snprintf(p, sizeof(p), "%s/other", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/other/file", f->dir);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(p, sizeof(p), "%s/other", f->dir);
	expect_refused(p, KVT_CLUSTER, -EINVAL, "is not an omnifs KV state");
	snprintf(p, sizeof(p), "%s/plain", f->dir);
	rocksdb_options_set_create_if_missing(o, 1);
	db = rocksdb_open(o, p, &e);
	assert_null(e);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	expect_refused(p, KVT_CLUSTER, -EINVAL, "is not an omnifs KV state");
}

/* --- a write that fails -------------------------------------------------------- */

#define BIG_LEN (2u * 1024 * 1024)

static void big_entry(uint8_t **buf, size_t *len)
{
	struct kv_txn t;
	char *big = malloc(BIG_LEN);
	assert_non_null(big);
	memset(big, 'x', BIG_LEN);
	kv_txn_init(&t, 1, 1);
	assert_int_equal(kv_txn_add_put(&t, "big", 3, big, BIG_LEN), 0);
	assert_int_equal(kv_txn_add_put(&t, "small", 5, "s", 1), 0);
	assert_int_equal(kv_txn_encode(&t, buf, len), 0);
	kv_txn_free(&t);
	free(big);
}

/* Caps file sizes a little above the largest file in dir, so that the next
 * big write fails in the middle (EFBIG: what a full disk looks like to
 * RocksDB, without needing one). */
static int cap_file_size(const char *dir)
{
	off_t largest = 0;
	char p[600];
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		struct stat sb;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (!stat(p, &sb) && sb.st_size > largest)
			largest = sb.st_size;
	}
	closedir(d);
	struct rlimit rl;
	if (getrlimit(RLIMIT_FSIZE, &rl))
		return -1;
	rl.rlim_cur = (rlim_t)largest + 64 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	return setrlimit(RLIMIT_FSIZE, &rl);
}

/* Applies the big entry at 1 in a batch between two small ones, synced. */
static int apply_batch_around(struct kv_store *s, const uint8_t *buf, size_t len)
{
	struct kv_batch *b = kv_batch_new();
	struct kv_txn t, small;
	struct kv_result r;
	int rc = b ? kv_txn_decode(&t, buf, len) : -ENOMEM;
	if (rc) {
		kv_batch_free(b);
		return rc;
	}
	kv_txn_init(&small, 2, 1);
	rc = kv_txn_add_put(&small, "before", 6, "b", 1);
	if (rc == 0)
		rc = kv_batch_add(s, b, 1, &small, &r);
	if (rc == 0)
		rc = kv_batch_add(s, b, 2, &t, &r);
	kv_txn_free(&small);
	kv_txn_init(&small, 2, 2);
	if (rc == 0)
		rc = kv_txn_add_put(&small, "after", 5, "a", 1);
	if (rc == 0)
		rc = kv_batch_add(s, b, 3, &small, &r);
	if (rc == 0 && kv_batch_len(b) != 3)
		rc = -EPROTO;
	if (rc == 0)
		rc = kv_batch_commit(s, b, true);
	kv_txn_free(&small);
	kv_txn_free(&t);
	kv_batch_free(b);
	return rc;
}

/* The exec'd child (a fresh process: RocksDB's background threads do not
 * survive a fork, and the apply now needs them to flush): the synced apply
 * (of the big entry alone, or in a batch of three if how is "batch")
 * fails, says so, and the applied index stays. */
static int failing_apply_child(const char *path, const char *how)
{
	struct kv_store *s;
	struct kv_result r;
	char err[KV_ERR_MAX];
	uint8_t *buf;
	size_t len;
	big_entry(&buf, &len);
	if (kv_open(&s, path, KVT_CLUSTER, err, sizeof(err)))
		return 10;
	if (cap_file_size(path))
		return 11;
	int rc = strcmp(how, "batch") == 0 ? apply_batch_around(s, buf, len)
					   : kv_apply(s, 1, buf, len, true, &r);
	if (rc != -EIO && rc != -ENOSPC)
		return 12;
	if (kv_applied_idx(s) != 1 || !kv_errmsg(s)[0])
		return 13;
	printf("# failed apply: %d %s\n", rc, kv_errmsg(s));
	fflush(stdout);
	_exit(0); /* no close: a failed flush stops a daemon as it stands */
}

/* This program again, as a child in mode ("--failing-child", ...). */
static pid_t exec_child(const char *mode, char *path, char *arg)
{
	char *argv[] = {"test_kv_apply", (char *)mode, path, arg, NULL};
	return test_exec_self(argv);
}

static void test_kv_apply_failed_write_writes_nothing(void **state)
{
	TEST_SKIP_FORK_UNDER_TSAN();
	struct fixture *f = *state;
	uint8_t *buf;
	size_t len;
	struct kv_result r;

	put1(f->s, 0, 0, "a", "1", KV_APPLIED);
	kv_close(&f->s);
	test_expect_child_ok(exec_child("--failing-child", f->path, ""));

	/* After the restart nothing of it is there, and it replays. */
	f->s = kvt_open(f->path);
	assert_int_equal(kv_applied_idx(f->s), 1);
	check_value(f->s, "a", "1", 0);
	check_value(f->s, "small", NULL, 0);
	assert_int_equal(kv_get(f->s, "big", 3, NULL, NULL, NULL), -ENOENT);

	/* The same entry in a batch between two small ones: nothing of the
	 * batch is there either. */
	kv_close(&f->s);
	test_expect_child_ok(exec_child("--failing-child", f->path, "batch"));
	f->s = kvt_open(f->path);
	assert_int_equal(kv_applied_idx(f->s), 1);
	check_value(f->s, "before", NULL, 0);
	check_value(f->s, "small", NULL, 0);
	check_value(f->s, "after", NULL, 0);
	assert_int_equal(kv_get(f->s, "big", 3, NULL, NULL, NULL), -ENOENT);
	big_entry(&buf, &len);
	assert_int_equal(kv_apply(f->s, 1, buf, len, true, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	check_value(f->s, "small", "s", 1);
	size_t vlen;
	assert_int_equal(kv_get(f->s, "big", 3, NULL, &vlen, NULL), 0);
	assert_int_equal(vlen, BIG_LEN);
	assert_int_equal(kv_sync(f->s), 0);
	free(buf);
}

/* --- determinism ---------------------------------------------------------------- */

/* A random transaction over a small key space, so guards both hold and fail
 * and prefixes overlap. */
static void random_txn(uint64_t *x, uint64_t idx, uint8_t **buf, size_t *len)
{
	struct kv_txn t;
	char k[16], v[64];
	uint64_t node = kvt_rand(x) % 4; /* 0: no id */
	uint64_t seq = kvt_rand(x) % 64;
	kv_txn_init(&t, node, seq);
	int n = (int)(kvt_rand(x) % 6);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%c/%u", 'a' + (int)(kvt_rand(x) % 3),
			 (unsigned)(kvt_rand(x) % 8));
		switch (kvt_rand(x) % 8) {
		case 0:
			assert_int_equal(kv_txn_add_delete(&t, k, strlen(k)), 0);
			break;
		case 1:
			assert_int_equal(kv_txn_add_delete_prefix(&t, k, 2), 0);
			break;
		case 2:
			assert_int_equal(kv_txn_add_guard_absent(&t, k, strlen(k)), 0);
			break;
		case 3:
			assert_int_equal(
				kv_txn_add_guard_version(&t, k, strlen(k), idx - kvt_rand(x) % 4),
				0);
			break;
		default: {
			int vl = snprintf(v, sizeof(v), "v%llu-%d", (unsigned long long)idx, i);
			assert_int_equal(kv_txn_add_put(&t, k, strlen(k), v, (size_t)vl), 0);
		}
		}
	}
	assert_int_equal(kv_txn_encode(&t, buf, len), 0);
	kv_txn_free(&t);
}

static void feed(struct kv_store *s, uint64_t seed, int n, int change_at, int *counts)
{
	uint64_t x = seed;
	for (int i = 0; i < n; i++) {
		uint8_t *buf;
		size_t len;
		struct kv_result r;
		random_txn(&x, (uint64_t)i, &buf, &len);
		if (i == change_at) {
			/* Another entry here: a key nothing else touches. */
			struct kv_txn t;
			free(buf);
			kv_txn_init(&t, 0, 0);
			assert_int_equal(kv_txn_add_put(&t, "zz", 2, "changed", 7), 0);
			assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
			kv_txn_free(&t);
		}
		assert_int_equal(kv_apply(s, (uint64_t)i, buf, len, false, &r), 0);
		if (counts)
			counts[r.status]++;
		free(buf);
	}
}

static void test_kv_apply_deterministic_digest(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = kvt_seed();
	const int n = 600;
	int counts[5] = {0};
	char other[400];
	uint8_t da[KV_DIGEST_LEN], db[KV_DIGEST_LEN], dc[KV_DIGEST_LEN];
	char ha[65], hb[65];

	feed(f->s, seed, n, -1, counts);
	printf("# applied %d conflict %d duplicate %d malformed %d\n", counts[KV_APPLIED],
	       counts[KV_CONFLICT], counts[KV_DUPLICATE], counts[KV_MALFORMED]);
	/* The log exercises every outcome, or the test proves little. */
	assert_true(counts[KV_APPLIED] > 0 && counts[KV_CONFLICT] > 0 && counts[KV_DUPLICATE] > 0);
	assert_int_equal(kv_digest(f->s, da), 0);

	/* Another store, restarted halfway, fed the same log. */
	snprintf(other, sizeof(other), "%s/other", f->dir);
	struct kv_store *b = kvt_open(other);
	uint64_t x = seed;
	for (int i = 0; i < n; i++) {
		uint8_t *buf;
		size_t len;
		struct kv_result r;
		random_txn(&x, (uint64_t)i, &buf, &len);
		assert_int_equal(kv_apply(b, (uint64_t)i, buf, len, i % 50 == 0, &r), 0);
		free(buf);
		if (i == n / 2) {
			kv_close(&b);
			b = kvt_open(other);
		}
	}
	assert_int_equal(kv_digest(b, db), 0);
	kv_digest_hex(da, ha);
	kv_digest_hex(db, hb);
	printf("# digest %s\n", ha);
	assert_string_equal(ha, hb);
	kv_close(&b);

	/* One entry different: another digest. */
	snprintf(other, sizeof(other), "%s/third", f->dir);
	b = kvt_open(other);
	feed(b, seed, n, n / 3, NULL);
	assert_int_equal(kv_digest(b, dc), 0);
	assert_memory_not_equal(da, dc, KV_DIGEST_LEN);
	kv_close(&b);

	/* The same state at another applied index: another digest too. */
	struct kv_txn t;
	struct kv_result r;
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kvt_apply(f->s, &t, &r), 0);
	assert_int_equal(kv_digest(f->s, dc), 0);
	assert_memory_not_equal(da, dc, KV_DIGEST_LEN);
}

/* The two halves of kv_apply (decode once, then kv_apply_txn or
 * kv_apply_malformed) do exactly what kv_apply does: the same result for
 * every entry of a seeded log with malformed entries mixed in, and the same
 * digest. A builder-owned transaction applies as its encoding would. */
static void test_kv_apply_decoded_as_kv_apply(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = kvt_seed();
	const int n = 300;
	char other[400];
	int malformed = 0;

	snprintf(other, sizeof(other), "%s/decoded", f->dir);
	struct kv_store *b = kvt_open(other);
	uint64_t x = seed;
	for (int i = 0; i < n; i++) {
		uint8_t *buf;
		size_t len;
		struct kv_result ra, rb;
		struct kv_txn t;
		random_txn(&x, (uint64_t)i, &buf, &len);
		if (i % 17 == 5)
			len--; /* a broken body under a readable header */
		else if (i % 29 == 7)
			buf[0] = 0xee; /* an unknown version: no proposal id */
		assert_int_equal(kv_apply(f->s, (uint64_t)i, buf, len, false, &ra), 0);
		int rc = kv_txn_decode(&t, buf, len);
		if (rc == 0) {
			assert_int_equal(kv_apply_txn(b, (uint64_t)i, &t, false, &rb), 0);
			kv_txn_free(&t);
		} else {
			assert_int_equal(rc, -EBADMSG);
			assert_int_equal(kv_apply_malformed(b, (uint64_t)i, buf, len, false, &rb),
					 0);
			assert_int_equal(rb.status, KV_MALFORMED);
			malformed++;
		}
		assert_int_equal(rb.status, ra.status);
		assert_int_equal(rb.error, ra.error);
		assert_int_equal(rb.node_id, ra.node_id);
		assert_int_equal(rb.seq, ra.seq);
		assert_int_equal(rb.conflict_op, ra.conflict_op);
		assert_int_equal(rb.log_idx, (uint64_t)i);
		assert_int_equal(kv_applied_idx(b), (uint64_t)i + 1);
		free(buf);
	}
	assert_true(malformed > 10);

	/* A built transaction, never encoded, applied to both ways. */
	struct kv_txn t;
	struct kv_result ra, rb;
	kv_txn_init(&t, 3, 1000);
	assert_int_equal(kv_txn_add_put(&t, "built", 5, "yes", 3), 0);
	assert_int_equal(kv_apply_txn(b, (uint64_t)n, &t, true, &rb), 0);
	assert_int_equal(kvt_apply(f->s, &t, &ra), 0);
	assert_int_equal(rb.status, KV_APPLIED);
	assert_int_equal(ra.status, KV_APPLIED);
	check_value(b, "built", "yes", (uint64_t)n);

	expect_same_digest(f->s, b);

	/* Stale and gap, as kv_apply. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_apply_txn(b, 0, &t, false, &rb), 0);
	assert_int_equal(rb.status, KV_STALE);
	assert_int_equal(kv_apply_malformed(b, 1, "x", 1, false, &rb), 0);
	assert_int_equal(rb.status, KV_STALE);
	assert_int_equal(kv_apply_txn(b, (uint64_t)n + 5, &t, false, &rb), -EINVAL);
	assert_int_equal(kv_apply_malformed(b, (uint64_t)n + 5, "x", 1, false, &rb), -EINVAL);
	assert_int_equal(kv_applied_idx(b), (uint64_t)n + 1);
	expect_same_digest(f->s, b);
	kv_close(&b);
}

/* --- batches --------------------------------------------------------------------- */

/* Adds t (decoded) or the malformed entry buf at idx to b, committing first
 * when the batch says so; counts those commits, and the commits of more
 * than one entry. */
static void batch_add_or_commit(struct kv_store *s, struct kv_batch *b, uint64_t idx,
				const uint8_t *buf, size_t len, struct kv_result *r, int *early,
				int *multi)
{
	struct kv_txn t;
	int drc = kv_txn_decode(&t, buf, len);
	int rc = drc == 0 ? kv_batch_add(s, b, idx, &t, r)
			  : kv_batch_add_malformed(s, b, idx, buf, len, r);
	if (rc == -EAGAIN) {
		(*early)++;
		assert_true(kv_batch_len(b) > 0);
		*multi += kv_batch_len(b) > 1;
		assert_int_equal(kv_batch_commit(s, b, false), 0);
		rc = drc == 0 ? kv_batch_add(s, b, idx, &t, r)
			      : kv_batch_add_malformed(s, b, idx, buf, len, r);
	}
	assert_int_equal(rc, 0);
	if (drc == 0)
		kv_txn_free(&t);
}

/* A seeded log applied in batches of random sizes gives every entry the
 * result it gets applied alone, and the same state: guards on keys written
 * earlier in the batch, prefix deletes over them and duplicates within a
 * batch included (the log's small key space makes them common). Until its
 * commit a batch's entries are not applied. */
static void test_kv_apply_batched_as_one_by_one(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = kvt_seed(), x = seed, sizes = seed ^ 0x5bd1e995;
	const int n = 1200;
	char other[400];
	int early = 0, multi = 0, malformed = 0;

	snprintf(other, sizeof(other), "%s/batched", f->dir);
	struct kv_store *s = kvt_open(other);
	struct kv_batch *b = kv_batch_new();
	assert_non_null(b);
	struct kv_result want[64];
	int i = 0;
	while (i < n) {
		int size = 1 + (int)(kvt_rand(&sizes) % 64), in = 0;
		uint64_t first = kv_applied_idx(s);
		assert_int_equal(first, (uint64_t)i);
		for (; in < size && i < n; in++, i++) {
			uint8_t *buf;
			size_t len;
			struct kv_result r;
			random_txn(&x, (uint64_t)i, &buf, &len);
			if (i % 41 == 9) {
				len--; /* malformed */
				malformed++;
			}
			assert_int_equal(kv_apply(f->s, (uint64_t)i, buf, len, false, &want[in]),
					 0);
			int before = early;
			batch_add_or_commit(s, b, (uint64_t)i, buf, len, &r, &early, &multi);
			if (early != before) {
				/* The entries before it were committed: it starts
				 * the batch. */
				assert_int_equal(kv_applied_idx(s), (uint64_t)i);
				want[0] = want[in];
				in = 0;
			}
			assert_int_equal(r.status, want[in].status);
			assert_int_equal(r.error, want[in].error);
			assert_int_equal(r.node_id, want[in].node_id);
			assert_int_equal(r.seq, want[in].seq);
			assert_int_equal(r.conflict_op, want[in].conflict_op);
			assert_int_equal(r.log_idx, (uint64_t)i);
			free(buf);
		}
		/* Nothing of an uncommitted batch is applied. */
		assert_int_equal(kv_applied_idx(s) + kv_batch_len(b), (uint64_t)i);
		if (kv_batch_len(b) > 1)
			multi++;
		assert_int_equal(kv_batch_commit(s, b, false), 0);
		assert_int_equal(kv_batch_len(b), 0);
		assert_int_equal(kv_applied_idx(s), (uint64_t)i);
	}
	printf("# %d commits of several entries, %d commits early, %d malformed\n", multi, early,
	       malformed);
	assert_true(multi > 10 && early > 10);
	expect_same_digest(f->s, s);

	/* And both survive a reopen alike (the batches' dedup records too). */
	kv_close(&s);
	s = kvt_open(other);
	struct kv_txn t;
	struct kv_result ra, rb;
	kv_txn_init(&t, 1, 63);
	assert_int_equal(kv_txn_add_put(&t, "after", 5, "x", 1), 0);
	assert_int_equal(kv_apply_txn(s, (uint64_t)n, &t, false, &rb), 0);
	assert_int_equal(kvt_apply(f->s, &t, &ra), 0);
	assert_int_equal(rb.status, ra.status);
	expect_same_digest(f->s, s);
	kv_batch_free(b);
	kv_close(&s);
}

static void add_put(struct kv_store *s, struct kv_batch *b, uint64_t idx, uint64_t node,
		    uint64_t seq, const char *k, int want_rc, enum kv_status want)
{
	struct kv_txn t;
	struct kv_result r;
	kv_txn_init(&t, node, seq);
	assert_int_equal(kv_txn_add_put(&t, k, strlen(k), "v", 1), 0);
	assert_int_equal(kv_batch_add(s, b, idx, &t, &r), want_rc);
	if (want_rc == 0)
		assert_int_equal(r.status, want);
	kv_txn_free(&t);
}

/* What a batch holds back until its commit, case by case. */
static void test_kv_apply_batch_reads_wait_for_commit(void **state)
{
	struct fixture *f = *state;
	struct kv_batch *b = kv_batch_new();
	struct kv_txn t;
	struct kv_result r;
	assert_non_null(b);

	add_put(f->s, b, 0, 1, 1, "k", 0, KV_APPLIED);
	assert_int_equal(kv_applied_idx(f->s), 0);
	check_value(f->s, "k", NULL, 0); /* not written yet */
	/* A guard on a key of another entry needs no commit. */
	kv_txn_init(&t, 1, 2);
	assert_int_equal(kv_txn_add_guard_absent(&t, "other", 5), 0);
	assert_int_equal(kv_batch_add(f->s, b, 1, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED);
	kv_txn_free(&t);
	/* A guard on k reads what the batch wrote: after the commit. */
	kv_txn_init(&t, 1, 3);
	assert_int_equal(kv_txn_add_guard_version(&t, "k", 1, 0), 0);
	assert_int_equal(kv_txn_add_put(&t, "k", 1, "w", 1), 0);
	assert_int_equal(kv_batch_add(f->s, b, 2, &t, &r), -EAGAIN);
	assert_int_equal(kv_batch_len(b), 2);
	assert_int_equal(kv_batch_commit(f->s, b, false), 0);
	assert_int_equal(kv_applied_idx(f->s), 2);
	check_value(f->s, "k", "v", 0);
	assert_int_equal(kv_batch_add(f->s, b, 2, &t, &r), 0);
	assert_int_equal(r.status, KV_APPLIED); /* k is at version 0: the guard holds */
	kv_txn_free(&t);

	/* A proposal id seen earlier in the same batch is a duplicate. */
	add_put(f->s, b, 3, 2, 7, "a", 0, KV_APPLIED);
	add_put(f->s, b, 4, 2, 7, "b", 0, KV_DUPLICATE);
	add_put(f->s, b, 5, 1, 3, "c", 0, KV_DUPLICATE); /* seen in the batch before */
	/* A prefix delete lists the state: after the commit. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "z", 1), 0);
	assert_int_equal(kv_batch_add(f->s, b, 6, &t, &r), -EAGAIN);
	assert_int_equal(kv_batch_commit(f->s, b, false), 0);
	assert_int_equal(kv_batch_add(f->s, b, 6, &t, &r), 0);
	kv_txn_free(&t);
	/* After one, any guard waits for the commit. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_add_guard_absent(&t, "other", 5), 0);
	assert_int_equal(kv_batch_add(f->s, b, 7, &t, &r), -EAGAIN);
	kv_txn_free(&t);
	assert_int_equal(kv_batch_commit(f->s, b, false), 0);
	assert_int_equal(kv_applied_idx(f->s), 7);
	check_value(f->s, "a", "v", 3);
	check_value(f->s, "b", NULL, 0);
	check_value(f->s, "c", NULL, 0);

	/* Proposers beyond the batch's table: after the commit. */
	uint64_t idx = 7;
	for (uint64_t node = 10; node < 10 + KV__BATCH_NODES; node++)
		add_put(f->s, b, idx++, node, 1, "n", 0, KV_APPLIED);
	add_put(f->s, b, idx, 99, 1, "n", -EAGAIN, KV_APPLIED);
	add_put(f->s, b, idx, 10, 2, "n", 0, KV_APPLIED); /* one it has: no commit */
	assert_int_equal(kv_batch_commit(f->s, b, false), 0);
	add_put(f->s, b, ++idx, 99, 1, "n", 0, KV_APPLIED);
	/* A gap or a stale index, as kv_apply says. */
	add_put(f->s, b, idx + 5, 98, 1, "n", -EINVAL, KV_APPLIED);
	add_put(f->s, b, 3, 98, 1, "n", 0, KV_STALE);
	assert_int_equal(kv_batch_commit(f->s, b, false), 0);
	assert_int_equal(kv_applied_idx(f->s), idx + 1);

	/* Committed with sync: durable at once. */
	add_put(f->s, b, idx + 1, 98, 1, "s", 0, KV_APPLIED);
	assert_int_equal(kv_batch_commit(f->s, b, true), 0);
	uint64_t durable = 0;
	assert_int_equal(kv_durable_applied_idx(f->s, &durable), 0);
	assert_int_equal(durable, idx + 2);
	kv_batch_free(b);
}

/* --- a crash -------------------------------------------------------------------- */

/* The crash test's log: random entries, and every other one a put of
 * CRASH_FILL bytes that always applies, so that the child's 1 MiB memtables
 * fill, and RocksDB flushes on its own, several times. */
#define CRASH_ENTRIES 600
#define CRASH_FILL    12288

/* Applies entries [from, to) of the crash test's seeded log. */
static void feed_crash_log(struct kv_store *s, uint64_t seed, uint64_t from, uint64_t to)
{
	uint64_t x = seed;
	char *fill = malloc(CRASH_FILL);
	assert_non_null(fill);
	for (uint64_t i = 0; i < to; i++) {
		uint8_t *buf;
		size_t len;
		struct kv_result r;
		if (i % 2) {
			struct kv_txn t;
			char k[16];
			kv_txn_init(&t, 0, 0);
			memset(fill, 'a' + (int)(i % 26), CRASH_FILL);
			snprintf(k, sizeof(k), "f/%u", (unsigned)(i % 16));
			assert_int_equal(kv_txn_add_put(&t, k, strlen(k), fill, CRASH_FILL), 0);
			assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
			kv_txn_free(&t);
		} else {
			random_txn(&x, i, &buf, &len);
		}
		if (i >= from)
			assert_int_equal(kv_apply(s, i, buf, len, false, &r), 0);
		free(buf);
	}
	free(fill);
}

/* Waits up to ms for the flushes RocksDB has pending or running. 0 or -1. */
static int wait_flushes(struct kv_store *s, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		uint64_t busy = 0, v;
		for (size_t c = 0; c < s->rdb.n_cfs; c++)
			if (rocksdb_property_int_cf(s->db, s->rdb.cfs[c],
						    "rocksdb.mem-table-flush-pending", &v) == 0)
				busy += v;
		if (rocksdb_property_int(s->db, "rocksdb.num-running-flushes", &v) == 0)
			busy += v;
		if (!busy)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* The exec'd child: the log applied unsynced, synced once halfway, then an
 * exit without closing (a crash, as far as the state can tell), after
 * writing down what it says a crash leaves. */
static int crash_child(const char *path, const char *seed_text)
{
	uint64_t seed = strtoull(seed_text, NULL, 10), durable;
	struct kv_store *s;
	char err[KV_ERR_MAX], out[400];
	rocks_memory_set_budget((size_t)4 << 20);
	if (kv_open(&s, path, KVT_CLUSTER, err, sizeof(err)))
		return 10;
	feed_crash_log(s, seed, 0, CRASH_ENTRIES / 2);
	if (kv_sync(s))
		return 11;
	feed_crash_log(s, seed, CRASH_ENTRIES / 2, CRASH_ENTRIES);
	/* The flushes RocksDB started on its own: done, so that the test
	 * knows some happened (a crash in the middle of one is RocksDB's to
	 * get right: the flush is not installed). */
	if (wait_flushes(s, 10000))
		return 14;
	if (kv_durable_applied_idx(s, &durable))
		return 12;
	snprintf(out, sizeof(out), "%s.durable", path);
	FILE *fp = fopen(out, "w");
	if (!fp || fprintf(fp, "%llu\n", (unsigned long long)durable) < 0 || fclose(fp))
		return 13;
	_exit(0);
}

/* Without a write-ahead log, a crash leaves the state of some applied index
 * (whole batches, every column family at the same one): at least what the
 * last kv_sync covered, what kv_durable_applied_idx said, and exactly what
 * applying the log up to there gives; applying the rest then gives the
 * state that never crashed. */
static void test_kv_apply_crash_keeps_a_prefix(void **state)
{
	TEST_SKIP_FORK_UNDER_TSAN();
	struct fixture *f = *state;
	uint64_t seed = kvt_seed();
	char seed_text[32], p[400];
	unsigned long long durable = 0;
	kv_close(&f->s);
	snprintf(seed_text, sizeof(seed_text), "%llu", (unsigned long long)seed);
	test_expect_child_ok(exec_child("--crash-child", f->path, seed_text));
	snprintf(p, sizeof(p), "%s.durable", f->path);
	FILE *fp = fopen(p, "r");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%llu", &durable), 1);
	fclose(fp);

	f->s = kvt_open(f->path);
	uint64_t a = kv_applied_idx(f->s);
	printf("# after the crash: applied @%llu of %d (the child said @%llu)\n",
	       (unsigned long long)a, CRASH_ENTRIES, durable);
	assert_int_equal(a, durable);
	assert_true(a > CRASH_ENTRIES / 2); /* flushed on its own past the sync */
	assert_true(a < CRASH_ENTRIES);	    /* and the last ones were lost */

	snprintf(p, sizeof(p), "%s/reference", f->dir);
	struct kv_store *ref = kvt_open(p);
	feed_crash_log(ref, seed, 0, a);
	expect_same_digest(f->s, ref);

	feed_crash_log(f->s, seed, a, CRASH_ENTRIES);
	feed_crash_log(ref, seed, a, CRASH_ENTRIES);
	expect_same_digest(f->s, ref);
	kv_close(&ref);
}

/* kv_sync_start flushes on a thread of the store's own while the writer
 * goes on: the durable index reaches what was applied when it was asked,
 * never more than was applied. */
static void test_kv_apply_background_flush(void **state)
{
	struct fixture *f = *state;
	uint64_t x = kvt_seed(), durable = 0, i;
	struct kv_result r;
	for (i = 0; i < 200; i++) {
		uint8_t *buf;
		size_t len;
		random_txn(&x, i, &buf, &len);
		assert_int_equal(kv_apply(f->s, i, buf, len, false, &r), 0);
		free(buf);
	}
	assert_int_equal(kv_durable_applied_idx(f->s, &durable), 0);
	assert_true(durable < 200); /* small entries: nothing flushed yet */
	assert_int_equal(kv_sync_start(f->s), 0);
	/* Applies go on meanwhile, 10 s at most. */
	for (int waited = 0; durable < 200 && waited < 10000; waited++) {
		uint8_t *buf;
		size_t len;
		random_txn(&x, i, &buf, &len);
		assert_int_equal(kv_apply(f->s, i, buf, len, false, &r), 0);
		free(buf);
		i++;
		assert_int_equal(kv_durable_applied_idx(f->s, &durable), 0);
		assert_true(durable <= kv_applied_idx(f->s));
		usleep(1000);
	}
	printf("# flushed @%llu while applying up to @%llu\n", (unsigned long long)durable,
	       (unsigned long long)i);
	assert_true(durable >= 200);
	assert_int_equal(kv_sync(f->s), 0); /* in line, after the thread's */
	assert_int_equal(kv_durable_applied_idx(f->s, &durable), 0);
	assert_int_equal(durable, kv_applied_idx(f->s));
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--failing-child") == 0)
		return failing_apply_child(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "--crash-child") == 0)
		return crash_child(argv[2], argv[3]);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_kv_apply_put_get_delete),
		T(test_kv_apply_delete_prefix),
		T(test_kv_apply_guards),
		T(test_kv_apply_dedup),
		T(test_kv_apply_dedup_model),
		T(test_kv_apply_malformed_stale_gap),
		T(test_kv_apply_views_and_iterators),
		T(test_kv_apply_persists),
		T(test_kv_apply_refuses_foreign),
		T(test_kv_apply_failed_write_writes_nothing),
		T(test_kv_apply_deterministic_digest),
		T(test_kv_apply_decoded_as_kv_apply),
		T(test_kv_apply_batched_as_one_by_one),
		T(test_kv_apply_batch_reads_wait_for_commit),
		T(test_kv_apply_crash_keeps_a_prefix),
		T(test_kv_apply_background_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
