/*
 * Change notes and the feed: a note's encoding round-trips and every
 * malformed one (each cut, a trailing byte, a bad kind, version, path) is
 * refused; a transaction carries its note through encode and decode, and
 * one without a note encodes exactly as before notes; only an applied
 * transaction leaves a record (not a conflict, a duplicate, a malformed
 * entry); reads page through every record once; the feed keeps its bound,
 * says -ERANGE below it and survives a reopen; a data dir from before the
 * feed opens with its feed starting at its applied index; a state transfer
 * restarts the feed at the imported index; and notes change neither the
 * state's digest nor differ between two stores fed the same log.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "kv.h"
#include "kvt.h"

static struct kv_note note_of(enum kv_note_kind kind, const char *path, const char *path2)
{
	struct kv_note n = {
		.kind = kind,
		.uid = 1000,
		.time_ms = 1700000000123,
		.path = path,
		.path_len = strlen(path),
		.path2 = path2,
		.path2_len = path2 ? strlen(path2) : 0,
	};
	return n;
}

static void test_kv_feed_note_roundtrip(void **state)
{
	(void)state;
	static const enum kv_note_kind kinds[] = {
		KV_NOTE_CREATE, KV_NOTE_MKDIR,	KV_NOTE_DELETE, KV_NOTE_RMDIR,	KV_NOTE_RENAME,
		KV_NOTE_MODIFY, KV_NOTE_ATTRIB, KV_NOTE_KV_PUT, KV_NOTE_KV_DEL,
	};
	uint8_t buf[KV_NOTE_MAX_LEN + 1];
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		bool rename = kinds[i] == KV_NOTE_RENAME;
		struct kv_note n = note_of(kinds[i], "/etc/nginx/x.conf", rename ? "/y" : NULL), d;
		size_t len = kv_note_encode(&n, buf, sizeof(buf));
		assert_int_equal(len, kv_note_encoded_len(&n));
		assert_true(len > 0);
		assert_int_equal(kv_note_decode(&d, buf, len), 0);
		assert_int_equal(d.kind, n.kind);
		assert_int_equal(d.uid, 1000);
		assert_int_equal(d.time_ms, 1700000000123);
		assert_int_equal(d.path_len, n.path_len);
		assert_memory_equal(d.path, n.path, n.path_len);
		assert_int_equal(d.path2_len, n.path2_len);
		if (rename)
			assert_memory_equal(d.path2, "/y", 2);
		assert_string_not_equal(kv_note_kind_name(kinds[i]), "?");
		assert_int_equal(kv_note_kind_is_fs(kinds[i]), kinds[i] < KV_NOTE_KV_PUT);
		/* Every cut and a trailing byte are refused. */
		for (size_t cut = 0; cut < len; cut++)
			assert_int_equal(kv_note_decode(&d, buf, cut), -EBADMSG);
		buf[len] = 0;
		assert_int_equal(kv_note_decode(&d, buf, len + 1), -EBADMSG);
		/* So is any other version or an unknown kind. */
		buf[0] = KV_NOTE_VERSION + 1;
		assert_int_equal(kv_note_decode(&d, buf, len), -EBADMSG);
		buf[0] = KV_NOTE_VERSION;
		buf[1] = 99;
		assert_int_equal(kv_note_decode(&d, buf, len), -EBADMSG);
	}
	/* The longest paths fit; one byte more does not. */
	char *big = malloc(KV_NOTE_PATH_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', KV_NOTE_PATH_MAX + 1);
	big[KV_NOTE_PATH_MAX] = '\0';
	struct kv_note n = note_of(KV_NOTE_RENAME, big, big), d;
	size_t len = kv_note_encode(&n, buf, sizeof(buf));
	assert_int_equal(len, KV_NOTE_MAX_LEN);
	assert_int_equal(kv_note_decode(&d, buf, len), 0);
	n.path_len++;
	assert_int_equal(kv_note_encoded_len(&n), 0);
	free(big);
	/* Bad notes do not encode: empty path, a NUL, path2 against the kind. */
	n = note_of(KV_NOTE_CREATE, "", NULL);
	assert_int_equal(kv_note_encode(&n, buf, sizeof(buf)), 0);
	n = note_of(KV_NOTE_CREATE, "/a", NULL);
	n.path_len = 3; /* takes the NUL */
	assert_int_equal(kv_note_encoded_len(&n), 0);
	n = note_of(KV_NOTE_CREATE, "/a", "/b");
	assert_int_equal(kv_note_encoded_len(&n), 0);
	n = note_of(KV_NOTE_RENAME, "/a", NULL);
	assert_int_equal(kv_note_encoded_len(&n), 0);
	n = note_of((enum kv_note_kind)8, "/a", NULL);
	assert_int_equal(kv_note_encoded_len(&n), 0);
	/* Too small a buffer. */
	n = note_of(KV_NOTE_CREATE, "/a", NULL);
	assert_int_equal(kv_note_encode(&n, buf, kv_note_encoded_len(&n) - 1), 0);
}

static void test_kv_feed_txn_carries_note(void **state)
{
	(void)state;
	struct kv_txn t, d;
	uint8_t *plain, *noted;
	size_t plain_len, noted_len;
	kv_txn_init(&t, 3, 9);
	assert_int_equal(kv_txn_add_put(&t, "k", 1, "v", 1), 0);
	assert_int_equal(kv_txn_encode(&t, &plain, &plain_len), 0);
	assert_int_equal(plain[1], 0); /* no note: the encoding from before notes */
	struct kv_note n = note_of(KV_NOTE_MKDIR, "/old", NULL);
	assert_int_equal(kv_txn_set_note(&t, &n), 0);
	n = note_of(KV_NOTE_RENAME, "/a", "/b/c"); /* replaces */
	assert_int_equal(kv_txn_set_note(&t, &n), 0);
	assert_int_equal(kv_txn_encode(&t, &noted, &noted_len), 0);
	assert_int_equal(noted_len, t.enc_len);
	assert_int_equal(noted_len, plain_len + 4 + kv_note_encoded_len(&n));
	assert_memory_equal(noted + 2, plain + 2, plain_len - 2);

	assert_int_equal(kv_txn_decode(&d, noted, noted_len), 0);
	assert_int_equal(d.n_ops, 1);
	assert_int_equal(d.note_len, t.note_len);
	assert_memory_equal(d.note, t.note, t.note_len);
	struct kv_note dn;
	assert_int_equal(kv_note_decode(&dn, d.note, d.note_len), 0);
	assert_int_equal(dn.kind, KV_NOTE_RENAME);
	assert_memory_equal(dn.path2, "/b/c", 4);
	kv_txn_free(&d);
	assert_int_equal(kv_txn_decode(&d, plain, plain_len), 0);
	assert_null(d.note);
	kv_txn_free(&d);

	/* An unknown flag, a cut note, a bad note: the whole entry is malformed. */
	noted[1] = 3;
	assert_int_equal(kv_txn_decode(&d, noted, noted_len), -EBADMSG);
	noted[1] = 1;
	assert_int_equal(kv_txn_decode(&d, noted, noted_len - 1), -EBADMSG);
	noted[plain_len + 4 + 1] = 99; /* the note's kind */
	assert_int_equal(kv_txn_decode(&d, noted, noted_len), -EBADMSG);
	plain[1] = 1; /* says a note follows, none does */
	assert_int_equal(kv_txn_decode(&d, plain, plain_len), -EBADMSG);
	/* A bad note is refused by the builder, t unchanged. */
	size_t before = t.enc_len;
	n = note_of(KV_NOTE_CREATE, "", NULL);
	assert_int_equal(kv_txn_set_note(&t, &n), -EINVAL);
	assert_int_equal(t.enc_len, before);
	free(plain);
	free(noted);
	kv_txn_free(&t);
}

/* Applies a put of key with a note on path (NULL: none) by node/seq. */
static void apply_noted(struct kv_store *s, uint64_t node, uint64_t seq, const char *key,
			const char *path, bool guard_absent, enum kv_status want)
{
	struct kv_txn t;
	struct kv_result r;
	kv_txn_init(&t, node, seq);
	if (guard_absent)
		assert_int_equal(kv_txn_add_guard_absent(&t, key, strlen(key)), 0);
	assert_int_equal(kv_txn_add_put(&t, key, strlen(key), "v", 1), 0);
	if (path) {
		struct kv_note n = note_of(KV_NOTE_KV_PUT, path, NULL);
		assert_int_equal(kv_txn_set_note(&t, &n), 0);
	}
	assert_int_equal(kvt_apply(s, &t, &r), 0);
	assert_int_equal(r.status, want);
}

/* Reads every record from since on in pages of max_bytes: the indexes into
 * idx (cap entries), their count as the result; *next where it ended. */
static size_t read_all(struct kv_store *s, uint64_t since, size_t max_bytes, uint64_t *idx,
		       size_t cap, uint64_t *next)
{
	size_t n = 0;
	for (;;) {
		struct kv_buf b;
		uint64_t first, nx;
		assert_int_equal(kv_feed_read(s, since, max_bytes, &b, &first), 0);
		assert_int_equal(kv_feed_header(b.data, b.len, &first, &nx), 0);
		assert_true(first <= since);
		size_t pos = KV_FEED_HDR_LEN;
		struct kv_feed_rec r;
		uint64_t min = since;
		int rc;
		while ((rc = kv_feed_next(b.data, b.len, &pos, min, &r)) == 1) {
			assert_true(r.idx < nx);
			assert_true(n < cap);
			idx[n++] = r.idx;
			min = r.idx + 1;
		}
		assert_int_equal(rc, 0);
		free(b.data);
		if (nx == since || nx == kv_applied_idx(s)) {
			*next = nx;
			return n;
		}
		assert_true(nx > since);
		since = nx;
	}
}

static void test_kv_feed_records_applied_only(void **state)
{
	struct kvt_pair *f = *state;
	apply_noted(f->a, 1, 1, "x", "x", true, KV_APPLIED);	/* @0 */
	apply_noted(f->a, 1, 2, "x", "x", true, KV_CONFLICT);	/* @1 */
	apply_noted(f->a, 1, 1, "y", "y", false, KV_DUPLICATE); /* @2 */
	apply_noted(f->a, 2, 1, "z", NULL, false, KV_APPLIED);	/* @3: no note */
	struct kv_result r;
	assert_int_equal(kv_apply(f->a, 4, "junk", 4, false, &r), 0); /* @4 */
	assert_int_equal(r.status, KV_MALFORMED);
	apply_noted(f->a, 2, 2, "w", "w", false, KV_APPLIED); /* @5 */

	struct kv_buf b;
	uint64_t first, next;
	assert_int_equal(kv_feed_read(f->a, 0, 1 << 20, &b, &first), 0);
	assert_int_equal(kv_feed_header(b.data, b.len, &first, &next), 0);
	assert_int_equal(first, 0);
	assert_int_equal(next, 6);
	size_t pos = KV_FEED_HDR_LEN;
	struct kv_feed_rec rec;
	assert_int_equal(kv_feed_next(b.data, b.len, &pos, 0, &rec), 1);
	assert_int_equal(rec.idx, 0);
	assert_int_equal(rec.node, 1);
	assert_int_equal(rec.note.kind, KV_NOTE_KV_PUT);
	assert_memory_equal(rec.note.path, "x", 1);
	assert_int_equal(kv_feed_next(b.data, b.len, &pos, 1, &rec), 1);
	assert_int_equal(rec.idx, 5);
	assert_int_equal(rec.node, 2);
	assert_int_equal(kv_feed_next(b.data, b.len, &pos, 6, &rec), 0);
	/* Indexes must grow: asking from above a record refuses the batch. */
	pos = KV_FEED_HDR_LEN;
	assert_int_equal(kv_feed_next(b.data, b.len, &pos, 1, &rec), -EBADMSG);
	/* Every cut of the batch is refused or ends early, never misread. */
	for (size_t cut = KV_FEED_HDR_LEN + 1; cut < b.len; cut++) {
		pos = KV_FEED_HDR_LEN;
		int rc, n = 0;
		while ((rc = kv_feed_next(b.data, cut, &pos, 0, &rec)) == 1)
			n++;
		assert_true(rc == -EBADMSG || (rc == 0 && n < 2));
	}
	free(b.data);

	/* Paging with a tiny max_bytes sees each record once. */
	uint64_t idx[8];
	size_t n = read_all(f->a, 0, 1, idx, 8, &next);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[1], 5);
	assert_int_equal(next, 6);
	/* From beyond the applied index: nothing yet, come back at since. */
	assert_int_equal(kv_feed_read(f->a, 9, 1 << 20, &b, &first), 0);
	assert_int_equal(kv_feed_header(b.data, b.len, &first, &next), 0);
	assert_int_equal(next, 9);
	assert_int_equal(b.len, KV_FEED_HDR_LEN);
	free(b.data);
}

static void test_kv_feed_bounds(void **state)
{
	struct kvt_pair *f = *state;
	const uint64_t keep = 16;
	kv_feed_set_keep(f->a, keep);
	for (uint64_t i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%llu", (unsigned long long)i);
		apply_noted(f->a, 1, i + 1, k, k, false, KV_APPLIED);
		/* Never fewer than keep indexes, never more than keep plus a step. */
		struct kv_buf b;
		uint64_t first;
		int rc = kv_feed_read(f->a, 0, 1 << 20, &b, &first);
		free(b.data);
		assert_int_equal(rc, first > 0 ? -ERANGE : 0);
		assert_true(first + keep <= i + 1 || first == 0);
		assert_true(i + 1 - first <= keep + keep / 8 + 1);
	}
	struct kv_buf b;
	uint64_t first, next, idx[64];
	assert_int_equal(kv_feed_read(f->a, 0, 1 << 20, &b, &first), -ERANGE);
	assert_null(b.data);
	assert_int_equal(kv_feed_read(f->a, first - 1, 1 << 20, &b, &first), -ERANGE);
	size_t n = read_all(f->a, first, 64, idx, 64, &next);
	assert_int_equal(n, 200 - first);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(idx[i], first + i);
	/* The bound and the records survive a reopen (the default keep then). */
	uint64_t before = first;
	kv_close(&f->a);
	f->a = kvt_open(f->pa);
	assert_int_equal(kv_feed_read(f->a, before - 1, 1 << 20, &b, &first), -ERANGE);
	assert_int_equal(first, before);
	assert_int_equal(read_all(f->a, first, 1 << 20, idx, 64, &next), n);
	assert_int_equal(next, 200);
}

/* Removes what a state from before the feed did not have: "feed-first" and
 * every record, with RocksDB directly. */
static void make_pre_feed(const char *path)
{
	static const char *names[3] = {"default", "state0", "state1"};
	rocksdb_options_t *o = rocksdb_options_create();
	const rocksdb_options_t *cfo[3] = {o, o, o};
	rocksdb_column_family_handle_t *cfs[3];
	char *e = NULL;
	rocksdb_t *db = rocksdb_open_column_families(o, path, 3, names, cfo, cfs, &e);
	assert_null(e);
	rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
	rocksdb_delete_cf(db, w, cfs[0], "feed-first", 10, &e);
	assert_null(e);
	rocksdb_delete_range_cf(db, w, cfs[0], "\x01", 1, "\x02", 1, &e);
	assert_null(e);
	rocksdb_writeoptions_destroy(w);
	for (int i = 0; i < 3; i++)
		rocksdb_column_family_handle_destroy(cfs[i]);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
}

static void test_kv_feed_opens_pre_feed_state(void **state)
{
	struct kvt_pair *f = *state;
	for (uint64_t i = 0; i < 5; i++)
		apply_noted(f->a, 1, i + 1, "k", "k", false, KV_APPLIED);
	uint8_t d0[KV_DIGEST_LEN], d1[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(f->a, d0), 0);
	kv_close(&f->a);
	make_pre_feed(f->pa);
	f->a = kvt_open(f->pa);
	assert_int_equal(kv_applied_idx(f->a), 5);
	assert_int_equal(kv_digest(f->a, d1), 0);
	assert_memory_equal(d0, d1, KV_DIGEST_LEN);
	struct kv_buf b;
	uint64_t first, next, idx[4];
	assert_int_equal(kv_feed_read(f->a, 4, 1 << 20, &b, &first), -ERANGE);
	assert_int_equal(first, 5);
	apply_noted(f->a, 1, 6, "k", "k", false, KV_APPLIED);
	assert_int_equal(read_all(f->a, 5, 1 << 20, idx, 4, &next), 1);
	assert_int_equal(idx[0], 5);
}

static void test_kv_feed_restarts_after_transfer(void **state)
{
	struct kvt_pair *f = *state;
	for (uint64_t i = 0; i < 10; i++)
		apply_noted(f->a, 1, i + 1, "k", "k", false, KV_APPLIED);
	apply_noted(f->b, 1, 1, "k", "k", false, KV_APPLIED);
	struct kv_view *v;
	assert_int_equal(kv_view_open(f->a, &v), 0);
	assert_int_equal(kv_import_begin(f->b, 10), 0);
	bool last = false;
	struct kv_buf cursor = {0}, chunk, next;
	while (!last) {
		assert_int_equal(
			kv_export_chunk(v, cursor.data, cursor.len, 1 << 20, &chunk, &next, &last),
			0);
		assert_int_equal(kv_import_chunk(f->b, chunk.data, chunk.len), 0);
		free(cursor.data);
		free(chunk.data);
		cursor = next;
	}
	free(cursor.data);
	kv_view_close(&v);
	assert_int_equal(kv_import_finish(f->b), 0);
	struct kv_buf b;
	uint64_t first, nx, idx[4];
	assert_int_equal(kv_feed_read(f->b, 0, 1 << 20, &b, &first), -ERANGE);
	assert_int_equal(first, 10);
	apply_noted(f->b, 1, 11, "k", "k", false, KV_APPLIED);
	assert_int_equal(read_all(f->b, 10, 1 << 20, idx, 4, &nx), 1);
	assert_int_equal(idx[0], 10);
}

static void test_kv_feed_deterministic(void **state)
{
	struct kvt_pair *f = *state;
	uint64_t seed = kvt_seed(), x = seed;
	uint8_t da[KV_DIGEST_LEN], db[KV_DIGEST_LEN];
	for (int i = 0; i < 300; i++) {
		char k[8], p[8];
		snprintf(k, sizeof(k), "k%d", (int)(kvt_rand(&x) % 20));
		snprintf(p, sizeof(p), "/p%d", i);
		bool guard = kvt_rand(&x) % 3 == 0;
		uint64_t node = 1 + kvt_rand(&x) % 3;
		/* Same log on both stores; a has notes, b none: same state. */
		struct kv_txn t;
		uint8_t *buf;
		size_t len;
		struct kv_result ra, rb;
		kv_txn_init(&t, node, (uint64_t)i + 1);
		if (guard)
			assert_int_equal(kv_txn_add_guard_absent(&t, k, strlen(k)), 0);
		assert_int_equal(kv_txn_add_put(&t, k, strlen(k), p, strlen(p)), 0);
		assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
		assert_int_equal(kv_apply(f->b, (uint64_t)i, buf, len, false, &rb), 0);
		free(buf);
		struct kv_note n = note_of(KV_NOTE_CREATE, p, NULL);
		assert_int_equal(kv_txn_set_note(&t, &n), 0);
		assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
		assert_int_equal(kv_apply(f->a, (uint64_t)i, buf, len, false, &ra), 0);
		free(buf);
		kv_txn_free(&t);
		assert_int_equal(ra.status, rb.status);
	}
	assert_int_equal(kv_digest(f->a, da), 0);
	assert_int_equal(kv_digest(f->b, db), 0);
	assert_memory_equal(da, db, KV_DIGEST_LEN);
	/* A second store fed a's log has a's feed, byte for byte. */
	char pc[320];
	snprintf(pc, sizeof(pc), "%s/c", f->dir);
	struct kv_store *c = kvt_open(pc);
	x = seed;
	for (int i = 0; i < 300; i++) {
		char k[8], p[8];
		snprintf(k, sizeof(k), "k%d", (int)(kvt_rand(&x) % 20));
		snprintf(p, sizeof(p), "/p%d", i);
		bool guard = kvt_rand(&x) % 3 == 0;
		uint64_t node = 1 + kvt_rand(&x) % 3;
		struct kv_txn t;
		struct kv_result r;
		kv_txn_init(&t, node, (uint64_t)i + 1);
		if (guard)
			assert_int_equal(kv_txn_add_guard_absent(&t, k, strlen(k)), 0);
		assert_int_equal(kv_txn_add_put(&t, k, strlen(k), p, strlen(p)), 0);
		struct kv_note n = note_of(KV_NOTE_CREATE, p, NULL);
		assert_int_equal(kv_txn_set_note(&t, &n), 0);
		assert_int_equal(kvt_apply(c, &t, &r), 0);
	}
	struct kv_buf ba, bc;
	uint64_t first;
	assert_int_equal(kv_feed_read(f->a, 0, 1 << 30, &ba, &first), 0);
	assert_int_equal(kv_feed_read(c, 0, 1 << 30, &bc, &first), 0);
	assert_int_equal(ba.len, bc.len);
	assert_memory_equal(ba.data, bc.data, ba.len);
	assert_true(ba.len > KV_FEED_HDR_LEN);
	free(ba.data);
	free(bc.data);
	kv_close(&c);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, kvt_pair_setup, kvt_pair_teardown)
	const struct CMUnitTest tests[] = {
		T(test_kv_feed_note_roundtrip),	      T(test_kv_feed_txn_carries_note),
		T(test_kv_feed_records_applied_only), T(test_kv_feed_bounds),
		T(test_kv_feed_opens_pre_feed_state), T(test_kv_feed_restarts_after_transfer),
		T(test_kv_feed_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
