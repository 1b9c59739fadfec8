/*
 * The lock table's rules without FUSE or a KV: conflicts between shared and
 * exclusive locks, owners and kinds; POSIX range split and merge; flock
 * conversion; release by owner and by open file; stale holders; records that
 * round-trip and malformed ones that are refused.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock_table.h"

static struct lk_holder posix(uint64_t node, uint64_t owner, uint8_t type, uint64_t start,
			      uint64_t end)
{
	struct lk_holder h = {.node = node,
			      .epoch = 7,
			      .owner = owner,
			      .fh = 100 + owner,
			      .start = start,
			      .end = end,
			      .pid = 1000 + (uint32_t)owner,
			      .type = type,
			      .kind = LK_POSIX};
	return h;
}

static struct lk_holder flk(uint64_t node, uint64_t owner, uint8_t type)
{
	struct lk_holder h = posix(node, owner, type, 0, LK_EOF);
	h.kind = LK_FLOCK;
	return h;
}

/* The owner's ranges of the given type, sorted, as "s-e,s-e". */
static void ranges(const struct lk_record *r, uint64_t owner, uint8_t type, char *buf, size_t cap)
{
	uint64_t s[64], e[64];
	size_t n = 0;
	for (uint32_t i = 0; i < r->n; i++)
		if (r->h[i].owner == owner && r->h[i].type == type && n < 64) {
			s[n] = r->h[i].start;
			e[n++] = r->h[i].end;
		}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (s[j] < s[i]) {
				uint64_t t = s[i];
				s[i] = s[j];
				s[j] = t;
				t = e[i];
				e[i] = e[j];
				e[j] = t;
			}
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char one[64];
		if (e[i] == LK_EOF)
			snprintf(one, sizeof(one), "%s%llu-EOF", i ? "," : "",
				 (unsigned long long)s[i]);
		else
			snprintf(one, sizeof(one), "%s%llu-%llu", i ? "," : "",
				 (unsigned long long)s[i], (unsigned long long)e[i]);
		strncat(buf, one, cap - strlen(buf) - 1);
	}
}

static void apply_ok(struct lk_record *r, struct lk_holder q)
{
	assert_int_equal(lk_find_conflict(r, &q), -1);
	assert_int_equal(lk_apply(r, &q), 0);
}

static void test_lock_table_shared_and_exclusive(void **state)
{
	(void)state;
	struct lk_record r;
	lk_record_init(&r);
	apply_ok(&r, posix(1, 1, LK_READ, 0, 99));
	/* Another reader, on another node, overlapping: fine. */
	apply_ok(&r, posix(2, 1, LK_READ, 50, 149));
	/* A writer overlapping either conflicts; beside them it does not. */
	struct lk_holder w = posix(3, 1, LK_WRITE, 120, 120);
	assert_int_equal(lk_find_conflict(&r, &w), 1);
	w = posix(3, 1, LK_WRITE, 150, LK_EOF);
	assert_int_equal(lk_find_conflict(&r, &w), -1);
	/* The same owner number on another node is another owner. */
	w = posix(2, 1, LK_WRITE, 0, 0);
	assert_int_equal(lk_find_conflict(&r, &w), 0);
	/* A node's own owner never conflicts with itself. */
	w = posix(1, 1, LK_WRITE, 0, 99);
	assert_int_equal(lk_find_conflict(&r, &w), 1); /* ... but with n2's reader */
	w = posix(1, 1, LK_WRITE, 0, 49);
	assert_int_equal(lk_find_conflict(&r, &w), -1);
	/* flock and POSIX locks never conflict, as on Linux. */
	struct lk_holder f = flk(3, 9, LK_WRITE);
	assert_int_equal(lk_find_conflict(&r, &f), -1);
	lk_record_free(&r);
}

static void test_lock_table_posix_split_and_merge(void **state)
{
	(void)state;
	struct lk_record r;
	char buf[256];
	lk_record_init(&r);
	apply_ok(&r, posix(1, 1, LK_WRITE, 0, 99));
	/* Unlocking the middle splits the lock in two. */
	apply_ok(&r, posix(1, 1, LK_UNLOCK, 40, 59));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "0-39,60-99");
	/* Locking the hole again merges the three into one. */
	apply_ok(&r, posix(1, 1, LK_WRITE, 40, 59));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "0-99");
	assert_int_equal(r.n, 1);
	/* Adjacent ranges of the same type merge; of another type they do not. */
	apply_ok(&r, posix(1, 1, LK_WRITE, 100, 109));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "0-109");
	/* A read lock over the middle turns that part into a read lock. */
	apply_ok(&r, posix(1, 1, LK_READ, 10, 19));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "0-9,20-109");
	ranges(&r, 1, LK_READ, buf, sizeof(buf));
	assert_string_equal(buf, "10-19");
	/* To the end of the file, then an unlock from 50 on. */
	apply_ok(&r, posix(1, 1, LK_WRITE, 200, LK_EOF));
	apply_ok(&r, posix(1, 1, LK_UNLOCK, 50, LK_EOF));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "0-9,20-49");
	/* Another owner's locks are never touched. */
	apply_ok(&r, posix(2, 5, LK_READ, 60, 70));
	apply_ok(&r, posix(1, 1, LK_UNLOCK, 0, LK_EOF));
	ranges(&r, 1, LK_WRITE, buf, sizeof(buf));
	assert_string_equal(buf, "");
	ranges(&r, 1, LK_READ, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].owner, 5);
	lk_record_free(&r);
}

static void test_lock_table_flock_convert_and_release(void **state)
{
	(void)state;
	struct lk_record r;
	lk_record_init(&r);
	apply_ok(&r, flk(1, 1, LK_READ));
	apply_ok(&r, flk(2, 2, LK_READ));
	/* An upgrade conflicts with the other reader. */
	struct lk_holder up = flk(1, 1, LK_WRITE);
	assert_int_equal(lk_find_conflict(&r, &up), 1);
	/* Once that one is gone, it converts in place. */
	struct lk_holder un = flk(2, 2, LK_UNLOCK);
	assert_int_equal(lk_apply(&r, &un), 0);
	apply_ok(&r, up);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].type, LK_WRITE);
	/* Release by open file and by owner. */
	apply_ok(&r, posix(1, 3, LK_WRITE, 0, 9));
	assert_int_equal(lk_remove_fh(&r, 1, 103), 1);
	assert_int_equal(lk_remove_fh(&r, 2, 101), 0); /* fh of another node */
	assert_int_equal(lk_remove_owner(&r, 1, 1, LK_POSIX), 0);
	assert_int_equal(lk_remove_owner(&r, 1, 1, LK_FLOCK), 1);
	assert_int_equal(r.n, 0);
	lk_record_free(&r);
}

static bool only_epoch_7(void *ctx, const struct lk_holder *h)
{
	(void)ctx;
	return h->epoch == 7;
}

static void test_lock_table_stale_holders_drop(void **state)
{
	(void)state;
	struct lk_record r;
	lk_record_init(&r);
	apply_ok(&r, flk(1, 1, LK_WRITE));
	struct lk_holder old = flk(2, 2, LK_WRITE);
	old.epoch = 6; /* the node's lease was expired: it holds nothing */
	r.h[r.n++] = old;
	assert_int_equal(lk_drop_stale(&r, only_epoch_7, NULL), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.h[0].node, 1);
	lk_record_free(&r);
}

static void test_lock_table_record_roundtrip(void **state)
{
	(void)state;
	struct lk_record r, d;
	lk_record_init(&r);
	apply_ok(&r, posix(1, 1, LK_WRITE, 5, 10));
	apply_ok(&r, flk(2, 9, LK_READ));
	uint8_t *buf;
	size_t len;
	assert_int_equal(lk_record_encode(&r, &buf, &len), 0);
	assert_int_equal(lk_record_decode(&d, buf, len), 0);
	assert_int_equal(d.n, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(d.h[i].node, r.h[i].node);
		assert_int_equal(d.h[i].epoch, r.h[i].epoch);
		assert_int_equal(d.h[i].owner, r.h[i].owner);
		assert_int_equal(d.h[i].fh, r.h[i].fh);
		assert_int_equal(d.h[i].start, r.h[i].start);
		assert_int_equal(d.h[i].end, r.h[i].end);
		assert_int_equal(d.h[i].pid, r.h[i].pid);
		assert_int_equal(d.h[i].type, r.h[i].type);
		assert_int_equal(d.h[i].kind, r.h[i].kind);
	}
	lk_record_free(&d);
	/* Truncated, trailing bytes, a bad type, a bad range, another format. */
	assert_int_equal(lk_record_decode(&d, buf, len - 1), -EBADMSG);
	uint8_t *big = malloc(len + 1);
	memcpy(big, buf, len);
	big[len] = 0;
	assert_int_equal(lk_record_decode(&d, big, len + 1), -EBADMSG);
	memcpy(big, buf, len);
	big[5 + 52] = 3;
	assert_int_equal(lk_record_decode(&d, big, len), -EBADMSG);
	memcpy(big, buf, len);
	big[5 + 32] = 11; /* start 11 > end 10 */
	assert_int_equal(lk_record_decode(&d, big, len), -EBADMSG);
	memcpy(big, buf, len);
	big[0] = 2;
	assert_int_equal(lk_record_decode(&d, big, len), -EBADMSG);
	free(big);
	free(buf);
	lk_record_free(&d);
	lk_record_free(&r);
}

static void test_lock_table_keys(void **state)
{
	(void)state;
	struct lk_key res, k, p;
	lk_res_inode(&res, 42);
	lk_key_record(&k, &res);
	lk_key_record_prefix(&p);
	assert_true(lk_key_is_lock(k.b, k.len));
	assert_memory_equal(k.b, p.b, p.len);
	const uint8_t *got;
	size_t got_len;
	assert_int_equal(lk_key_parse_record(k.b, k.len, &got, &got_len), 0);
	assert_int_equal(got_len, res.len);
	assert_memory_equal(got, res.b, res.len);
	char what[64];
	lk_res_describe(got, got_len, what, sizeof(what));
	assert_string_equal(what, "ino 42");
	lk_res_named(&res, "deploy \"x\"", 10);
	lk_res_describe(res.b, res.len, what, sizeof(what));
	assert_string_equal(what, "name deploy ?x?"); /* safe inside JSON */
	uint64_t node;
	lk_key_lease(&k, 3);
	assert_int_equal(lk_key_parse_node(k.b, k.len, &node), 0);
	assert_int_equal(node, 3);
	lk_key_renew(&k, 4);
	assert_int_equal(lk_key_parse_node(k.b, k.len, &node), 0);
	assert_int_equal(node, 4);
	assert_int_equal(lk_key_parse_node(p.b, p.len, &node), -EBADMSG);
	assert_false(lk_key_is_lock("Fi", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_table_shared_and_exclusive),
		cmocka_unit_test(test_lock_table_posix_split_and_merge),
		cmocka_unit_test(test_lock_table_flock_convert_and_release),
		cmocka_unit_test(test_lock_table_stale_holders_drop),
		cmocka_unit_test(test_lock_table_record_roundtrip),
		cmocka_unit_test(test_lock_table_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
