/*
 * State transfer of the replicated KV: a store exported in small chunks from
 * one view and imported into another store (interrupted by a close/reopen
 * halfway and resumed) ends with an equal digest and keeps applying the log
 * in step; readers of the receiver see the old state until the switch and
 * the new one after, never a mix. Out-of-order, foreign and malformed chunks
 * are refused without effect.
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kvt.h"

/* The entry at log index i of the source's log. */
static void source_entry(uint64_t i, uint8_t **buf, size_t *len)
{
	struct kv_txn t;
	char k[32];
	static char big[5000];
	memset(big, 'B', sizeof(big));
	kv_txn_init(&t, 1 + i % 3, i);
	snprintf(k, sizeof(k), "key/%04llu", (unsigned long long)i);
	if (i == 42)
		assert_int_equal(kv_txn_add_put(&t, k, strlen(k), big, sizeof(big)), 0);
	else
		assert_int_equal(kv_txn_add_put(&t, k, strlen(k), big, (size_t)(i % 40)), 0);
	if (i % 10 == 9) {
		snprintf(k, sizeof(k), "key/%04llu", (unsigned long long)(i - 5));
		assert_int_equal(kv_txn_add_delete(&t, k, strlen(k)), 0);
	}
	assert_int_equal(kv_txn_encode(&t, buf, len), 0);
	kv_txn_free(&t);
}

static void apply_source(struct kv_store *s, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		uint8_t *buf;
		size_t len;
		struct kv_result r;
		source_entry(i, &buf, &len);
		assert_int_equal(kv_apply(s, i, buf, len, false, &r), 0);
		assert_int_equal(r.status, KV_APPLIED);
		free(buf);
	}
}

/* Applies n entries of the receiver's own, different log: entry i puts
 * b-only/<i>. */
static void receiver_state(struct kv_store *s, int n)
{
	for (int i = 0; i < n; i++) {
		struct kv_txn t;
		struct kv_result r;
		char k[32];
		uint64_t idx = kv_applied_idx(s);
		snprintf(k, sizeof(k), "b-only/%llu", (unsigned long long)idx);
		kv_txn_init(&t, 9, idx);
		assert_int_equal(kv_txn_add_put(&t, k, strlen(k), "mine", 4), 0);
		assert_int_equal(kvt_apply(s, &t, &r), 0);
	}
}

/* Sends the chunk that b asks for (its cursor) from view v. */
static int send_next(struct kv_view *v, struct kv_store *b, size_t max, bool *last,
		     size_t *records_len)
{
	bool in_progress, complete;
	uint64_t src;
	struct kv_buf cursor, chunk, next;
	assert_int_equal(kv_import_progress(b, &in_progress, &src, &cursor, &complete), 0);
	assert_true(in_progress);
	assert_false(complete);
	assert_int_equal(src, kv_view_applied_idx(v));
	assert_int_equal(kv_export_chunk(v, cursor.data, cursor.len, max, &chunk, &next, last), 0);
	*records_len = chunk.len;
	int rc = kv_import_chunk(b, chunk.data, chunk.len);
	free(cursor.data);
	free(chunk.data);
	free(next.data);
	return rc;
}

static void test_kv_transfer_export_import_resume(void **state)
{
	struct kvt_pair *f = *state;
	uint8_t da[KV_DIGEST_LEN], db[KV_DIGEST_LEN];
	const size_t max = 512;

	apply_source(f->a, 0, 300);
	receiver_state(f->b, 5);
	struct kv_view *va;
	assert_int_equal(kv_view_open(f->a, &va), 0);
	assert_int_equal(kv_view_applied_idx(va), 300);
	assert_int_equal(kv_view_digest(va, da), 0);
	/* The source moves on; the view does not. */
	apply_source(f->a, 300, 320);

	assert_int_equal(kv_import_begin(f->b, 300), 0);
	bool last = false;
	int chunks = 0;
	size_t clen, biggest = 0;
	while (!last) {
		assert_int_equal(send_next(va, f->b, max, &last, &clen), 0);
		if (clen > biggest)
			biggest = clen;
		chunks++;
		if (chunks == 10) {
			/* Cut off: the receiver restarts and resumes. */
			kv_close(&f->b);
			f->b = kvt_open(f->pb);
			assert_int_equal(kv_import_begin(f->b, 300), 0);
			bool in_progress, complete;
			uint64_t src;
			struct kv_buf cursor;
			assert_int_equal(
				kv_import_progress(f->b, &in_progress, &src, &cursor, &complete),
				0);
			assert_true(in_progress);
			assert_int_equal(src, 300);
			assert_true(cursor.len > 0); /* not back at the start */
			free(cursor.data);
		}
	}
	printf("# %d chunks, the largest %zu bytes\n", chunks, biggest);
	assert_true(chunks > 20);
	assert_true(biggest > 5000); /* the big value travelled whole, alone */

	/* Until the switch, the receiver's readers see its own state. */
	assert_int_equal(kv_applied_idx(f->b), 5);
	char *v = kvt_get(f->b, "b-only/0", NULL);
	assert_non_null(v);
	free(v);
	assert_null(kvt_get(f->b, "key/0000", NULL));
	struct kv_view *old;
	assert_int_equal(kv_view_open(f->b, &old), 0);

	assert_int_equal(kv_import_finish(f->b), 0);
	assert_int_equal(kv_applied_idx(f->b), 300);
	assert_int_equal(kv_digest(f->b, db), 0);
	assert_memory_equal(da, db, KV_DIGEST_LEN);
	assert_null(kvt_get(f->b, "b-only/0", NULL));
	uint64_t ver;
	v = kvt_get(f->b, "key/0299", &ver);
	assert_non_null(v);
	assert_int_equal(ver, 299);
	free(v);
	/* A view opened before still sees the old state, whole. */
	assert_int_equal(kv_view_applied_idx(old), 5);
	assert_int_equal(kv_view_get(old, "b-only/4", 8, NULL, NULL, NULL), 0);
	assert_int_equal(kv_view_get(old, "key/0001", 8, NULL, NULL, NULL), -ENOENT);
	kv_view_close(&old);
	kv_view_close(&va);

	/* The dedup table came along, and the log continues in step. */
	uint8_t *buf;
	size_t len;
	struct kv_result r;
	source_entry(299, &buf, &len);
	assert_int_equal(kv_apply(f->b, 300, buf, len, false, &r), 0);
	assert_int_equal(r.status, KV_DUPLICATE);
	free(buf);
	kv_close(&f->b);
	f->b = kvt_open(f->pb);
	assert_int_equal(kv_applied_idx(f->b), 301);
	bool in_progress, complete;
	uint64_t src;
	assert_int_equal(kv_import_progress(f->b, &in_progress, &src, NULL, &complete), 0);
	assert_false(in_progress);

	/* Same log from 300 on both (b's entry 300 above was a duplicate
	 * there; replay a's real entries 301..320 on b, and on a nothing). */
	kv_close(&f->b);
	kvt_rmtree(f->pb);
	f->b = kvt_open(f->pb);
	assert_int_equal(kv_view_open(f->a, &va), 0);
	assert_int_equal(kv_import_begin(f->b, kv_view_applied_idx(va)), 0);
	last = false;
	while (!last)
		assert_int_equal(send_next(va, f->b, 1 << 20, &last, &clen), 0);
	kv_view_close(&va);
	assert_int_equal(kv_import_finish(f->b), 0);
	apply_source(f->a, 320, 330);
	apply_source(f->b, 320, 330);
	assert_int_equal(kv_digest(f->a, da), 0);
	assert_int_equal(kv_digest(f->b, db), 0);
	assert_memory_equal(da, db, KV_DIGEST_LEN);
}

/* --- readers during the switch ------------------------------------------------------ */

struct reader {
	struct kv_store *s;
	atomic_int stop;
	atomic_int checks; /* views checked so far */
	atomic_int seen_old, seen_new;
	char failure[256]; /* empty while every view was whole */
};

static bool has(struct kv_view *v, const char *k)
{
	return kv_view_get(v, k, strlen(k), NULL, NULL, NULL) == 0;
}

/* Each view must be wholly the receiver's old state at its applied index
 * (b-only/<applied-1> there, b-only/<applied> not, nothing of the source) or
 * wholly the source's state at its applied index (key/<applied-1> there,
 * key/<applied> not, nothing of the old one). */
static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	char k[32];
	while (!atomic_load(&rd->stop)) {
		struct kv_view *v;
		if (kv_view_open(rd->s, &v)) {
			snprintf(rd->failure, sizeof(rd->failure), "view open failed");
			break;
		}
		uint64_t a = kv_view_applied_idx(v);
		char k2[32];
		snprintf(k, sizeof(k), "b-only/%llu", (unsigned long long)(a - 1));
		snprintf(k2, sizeof(k2), "b-only/%llu", (unsigned long long)a);
		bool old = has(v, k) && !has(v, k2) && !has(v, "key/0000");
		snprintf(k, sizeof(k), "key/%04llu", (unsigned long long)(a - 1));
		snprintf(k2, sizeof(k2), "key/%04llu", (unsigned long long)a);
		bool new = has(v, k) && !has(v, k2) && has(v, "key/0000") && !has(v, "b-only/0");
		kv_view_close(&v);
		if (old == new) {
			snprintf(rd->failure, sizeof(rd->failure), "a mixed view at @%llu",
				 (unsigned long long)a);
			break;
		}
		/* Point reads take no view: one that misses the receiver's own
		 * key must find the source's (the switch came between them),
		 * never neither (a read of the old state being cleared). */
		if (kv_get(rd->s, "b-only/0", 8, NULL, NULL, NULL) == -ENOENT &&
		    kv_get(rd->s, "key/0000", 8, NULL, NULL, NULL) == -ENOENT) {
			snprintf(rd->failure, sizeof(rd->failure), "a point read found no state");
			break;
		}
		atomic_fetch_add(old ? &rd->seen_old : &rd->seen_new, 1);
		atomic_fetch_add(&rd->checks, 1);
	}
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until the reader has checked `more` further views (or failed). */
static void wait_checks(struct reader *rd, int more)
{
	int target = atomic_load(&rd->checks) + more;
	uint64_t deadline = now_ms() + 30000;
	while (atomic_load(&rd->checks) < target && !rd->failure[0]) {
		if (now_ms() > deadline)
			fail_msg("reader made no progress");
		sched_yield();
	}
}

static void test_kv_transfer_readers_never_see_a_mix(void **state)
{
	struct kvt_pair *f = *state;
	struct reader rd = {.s = f->b};
	pthread_t th;

	apply_source(f->a, 0, 200);
	receiver_state(f->b, 5);
	assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
	wait_checks(&rd, 1);

	struct kv_view *va;
	assert_int_equal(kv_view_open(f->a, &va), 0);
	assert_int_equal(kv_import_begin(f->b, 200), 0);
	bool last = false;
	while (!last) {
		size_t clen;
		assert_int_equal(send_next(va, f->b, 256, &last, &clen), 0);
		receiver_state(f->b, 1); /* the live state keeps moving meanwhile */
	}
	kv_view_close(&va);
	/* The receiver applied past nothing the source has: 5 + chunks < 200. */
	assert_true(kv_applied_idx(f->b) < 200);
	wait_checks(&rd, 2);
	assert_int_equal(kv_import_finish(f->b), 0);
	wait_checks(&rd, 2);
	/* And the log goes on on top of the imported state. */
	apply_source(f->b, 200, 230);
	wait_checks(&rd, 2);
	atomic_store(&rd.stop, 1);
	pthread_join(th, NULL);
	printf("# reader: %d views of the old state, %d of the new\n", atomic_load(&rd.seen_old),
	       atomic_load(&rd.seen_new));
	if (rd.failure[0])
		fail_msg("reader: %s", rd.failure);
	assert_true(atomic_load(&rd.seen_old) > 0);
	assert_true(atomic_load(&rd.seen_new) > 0);
}

static void test_kv_transfer_refuses_bad_chunks(void **state)
{
	struct kvt_pair *f = *state;
	struct kv_view *va;
	struct kv_buf c1, c2, n1, n2, cur;
	bool last, in_progress, complete;
	uint64_t src;

	apply_source(f->a, 0, 50);
	assert_int_equal(kv_view_open(f->a, &va), 0);
	assert_int_equal(kv_export_chunk(va, NULL, 0, 300, &c1, &n1, &last), 0);
	assert_false(last);
	assert_int_equal(kv_export_chunk(va, n1.data, n1.len, 300, &c2, &n2, &last), 0);

	/* No import in progress; nothing to gain from an older state. */
	assert_int_equal(kv_import_chunk(f->b, c1.data, c1.len), -EINVAL);
	receiver_state(f->b, 3);
	assert_int_equal(kv_import_begin(f->b, 3), -ESTALE);
	assert_int_equal(kv_import_begin(f->b, 2), -ESTALE);
	assert_int_equal(kv_import_begin(f->b, 50), 0);
	assert_int_equal(kv_import_finish(f->b), -EINVAL); /* not complete */

	/* Out of order. */
	assert_int_equal(kv_import_chunk(f->b, c2.data, c2.len), -ESTALE);
	/* Every truncation, and a bad namespace, are malformed. */
	for (size_t n = 0; n < c1.len; n++)
		assert_int_equal(kv_import_chunk(f->b, c1.data, n), -EBADMSG);
	uint8_t *bad = malloc(c1.len + 1);
	assert_non_null(bad);
	memcpy(bad, c1.data, c1.len);
	bad[c1.len] = 0;
	assert_int_equal(kv_import_chunk(f->b, bad, c1.len + 1), -EBADMSG);
	bad[0] = 9;
	assert_int_equal(kv_import_chunk(f->b, bad, c1.len), -EBADMSG);
	memcpy(bad, c1.data, c1.len);
	bad[22] = 'x'; /* the first record's namespace byte */
	assert_int_equal(kv_import_chunk(f->b, bad, c1.len), -EBADMSG);
	free(bad);
	/* None of that moved the import. */
	assert_int_equal(kv_import_progress(f->b, &in_progress, &src, &cur, &complete), 0);
	assert_true(in_progress);
	assert_int_equal(cur.len, 0);
	free(cur.data);
	assert_int_equal(kv_import_chunk(f->b, c1.data, c1.len), 0);
	/* The same chunk twice is out of order too. */
	assert_int_equal(kv_import_chunk(f->b, c1.data, c1.len), -ESTALE);
	assert_int_equal(kv_import_chunk(f->b, c2.data, c2.len), 0);

	/* A chunk of another source index. */
	apply_source(f->a, 50, 51);
	struct kv_view *va2;
	struct kv_buf c3, n3;
	assert_int_equal(kv_view_open(f->a, &va2), 0);
	assert_int_equal(kv_export_chunk(va2, n2.data, n2.len, 300, &c3, &n3, &last), 0);
	assert_int_equal(kv_import_chunk(f->b, c3.data, c3.len), -ESTALE);
	free(c3.data);
	free(n3.data);
	kv_view_close(&va2);

	/* Beginning another source index restarts from scratch. */
	assert_int_equal(kv_import_begin(f->b, 51), 0);
	assert_int_equal(kv_import_progress(f->b, &in_progress, &src, &cur, &complete), 0);
	assert_int_equal(src, 51);
	assert_int_equal(cur.len, 0);
	free(cur.data);
	assert_int_equal(kv_import_abort(f->b), 0);
	assert_int_equal(kv_import_progress(f->b, &in_progress, &src, NULL, &complete), 0);
	assert_false(in_progress);

	/* The state went past the source while importing: refused at finish. */
	assert_int_equal(kv_import_begin(f->b, 50), 0);
	last = false;
	while (!last) {
		size_t clen;
		assert_int_equal(send_next(va, f->b, 1 << 20, &last, &clen), 0);
	}
	receiver_state(f->b, 60);
	assert_int_equal(kv_import_finish(f->b), -ESTALE);
	assert_int_equal(kv_applied_idx(f->b), 63);
	char *v = kvt_get(f->b, "b-only/59", NULL);
	assert_non_null(v);
	free(v);

	kv_view_close(&va);
	free(c1.data);
	free(c2.data);
	free(n1.data);
	free(n2.data);
}

static void test_kv_transfer_empty_state(void **state)
{
	struct kvt_pair *f = *state;
	struct kv_txn t;
	struct kv_result r;
	struct kv_view *va;
	struct kv_buf c, n;
	bool last;
	uint8_t da[KV_DIGEST_LEN], db[KV_DIGEST_LEN];

	/* Only the applied index differs from a fresh store. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kvt_apply(f->a, &t, &r), 0);
	assert_int_equal(kv_view_open(f->a, &va), 0);
	assert_int_equal(kv_export_chunk(va, NULL, 0, 100, &c, &n, &last), 0);
	assert_true(last);
	assert_int_equal(n.len, 0);
	assert_int_equal(kv_import_begin(f->b, 1), 0);
	assert_int_equal(kv_import_chunk(f->b, c.data, c.len), 0);
	assert_int_equal(kv_import_chunk(f->b, c.data, c.len), -EINVAL); /* complete */
	assert_int_equal(kv_import_finish(f->b), 0);
	assert_int_equal(kv_view_digest(va, da), 0);
	assert_int_equal(kv_digest(f->b, db), 0);
	assert_memory_equal(da, db, KV_DIGEST_LEN);
	assert_int_equal(kv_applied_idx(f->b), 1);
	assert_int_equal(kv_import_finish(f->b), -EINVAL);
	kv_view_close(&va);
	free(c.data);
	free(n.data);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, kvt_pair_setup, kvt_pair_teardown)
	const struct CMUnitTest tests[] = {
		T(test_kv_transfer_export_import_resume),
		T(test_kv_transfer_readers_never_see_a_mix),
		T(test_kv_transfer_refuses_bad_chunks),
		T(test_kv_transfer_empty_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
