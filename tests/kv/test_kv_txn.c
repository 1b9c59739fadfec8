/*
 * Transactions of the replicated KV: the builder's limits, the encoding's
 * round trip, and the decoder's refusal of everything malformed (every
 * truncation, trailing bytes, bad version, flags, types, lengths, and seeded
 * random garbage). Also the SHA-256 the state digest rests on, against the
 * FIPS 180-4 examples.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kv_sha256.h"
#include "kvt.h"

static void build_sample(struct kv_txn *t)
{
	static const uint8_t bin[] = {0, 1, 0, 0xff, 0};
	kv_txn_init(t, 7, 0x1122334455667788ull);
	assert_int_equal(kv_txn_add_guard_absent(t, "new", 3), 0);
	assert_int_equal(kv_txn_add_guard_present(t, bin, sizeof(bin)), 0);
	assert_int_equal(kv_txn_add_guard_version(t, "v", 1, 0xfedcba9876543210ull), 0);
	assert_int_equal(kv_txn_add_put(t, bin, sizeof(bin), "value\0x", 7), 0);
	assert_int_equal(kv_txn_add_put(t, "empty", 5, NULL, 0), 0);
	assert_int_equal(kv_txn_add_delete(t, "old", 3), 0);
	assert_int_equal(kv_txn_add_delete_prefix(t, "\xff", 1), 0);
}

static void assert_same(const struct kv_txn *a, const struct kv_txn *b)
{
	assert_int_equal(a->node_id, b->node_id);
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->n_ops, b->n_ops);
	for (uint32_t i = 0; i < a->n_ops; i++) {
		const struct kv_op *x = &a->ops[i], *y = &b->ops[i];
		assert_int_equal(x->type, y->type);
		assert_int_equal(x->key_len, y->key_len);
		assert_memory_equal(x->key, y->key, x->key_len);
		assert_int_equal(x->value_len, y->value_len);
		if (x->value_len)
			assert_memory_equal(x->value, y->value, x->value_len);
		assert_int_equal(x->version, y->version);
	}
}

static void test_kv_txn_round_trip(void **state)
{
	struct kv_txn t, d;
	uint8_t *buf;
	size_t len;
	build_sample(&t);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	assert_int_equal(len, t.enc_len);
	assert_int_equal(kv_txn_decode(&d, buf, len), 0);
	assert_same(&t, &d);
	kv_txn_free(&d);
	kv_txn_free(&t);
	free(buf);

	/* No operations, and the largest key. */
	kv_txn_init(&t, 0, 0);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	assert_int_equal(kv_txn_decode(&d, buf, len), 0);
	assert_int_equal(d.n_ops, 0);
	assert_int_equal(d.node_id, 0);
	kv_txn_free(&d);
	free(buf);
	char *big = malloc(KV_MAX_KEY_LEN);
	assert_non_null(big);
	memset(big, 'k', KV_MAX_KEY_LEN);
	assert_int_equal(kv_txn_add_put(&t, big, KV_MAX_KEY_LEN, big, KV_MAX_KEY_LEN), 0);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	assert_int_equal(kv_txn_decode(&d, buf, len), 0);
	assert_same(&t, &d);
	kv_txn_free(&d);
	kv_txn_free(&t);
	free(buf);
	free(big);
}

static void test_kv_txn_builder_limits(void **state)
{
	struct kv_txn t;
	static const char small[8];
	kv_txn_init(&t, 1, 1);
	assert_int_equal(kv_txn_add_put(&t, "", 0, "v", 1), -EINVAL);
	assert_int_equal(kv_txn_add_delete(&t, NULL, 1), -EINVAL);
	assert_int_equal(kv_txn_add_delete_prefix(&t, "", 0), -EINVAL);
	/* The lengths are checked before any byte is read. */
	assert_int_equal(kv_txn_add_guard_absent(&t, small, KV_MAX_KEY_LEN + 1), -EINVAL);
	assert_int_equal(kv_txn_add_put(&t, "k", 1, small, (size_t)KV_MAX_VALUE_LEN + 1), -EINVAL);
	assert_int_equal(t.n_ops, 0);
	for (uint32_t i = 0; i < KV_MAX_OPS; i++)
		assert_int_equal(kv_txn_add_delete(&t, "k", 1), 0);
	assert_int_equal(kv_txn_add_delete(&t, "k", 1), -EINVAL);
	assert_int_equal(t.n_ops, KV_MAX_OPS);
	kv_txn_free(&t);
	assert_int_equal(t.n_ops, 0);
}

static void expect_bad(const void *buf, size_t len)
{
	struct kv_txn d;
	int rc = kv_txn_decode(&d, buf, len);
	if (rc != -EBADMSG)
		fail_msg("decode of %zu bytes gave %d, expected -EBADMSG", len, rc);
	assert_int_equal(d.n_ops, 0);
	assert_null(d.ops);
}

static void test_kv_txn_rejects_malformed(void **state)
{
	struct kv_txn t;
	uint8_t *buf;
	size_t len;
	build_sample(&t);
	assert_int_equal(kv_txn_encode(&t, &buf, &len), 0);
	kv_txn_free(&t);

	/* Every truncation. */
	for (size_t n = 0; n < len; n++)
		expect_bad(buf, n);
	expect_bad(NULL, 0);

	/* A trailing byte. */
	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	longer[len] = 0;
	expect_bad(longer, len + 1);
	free(longer);

	/* Header fields: version, flags, an op count beyond what fits. */
	uint8_t *c = malloc(len);
	assert_non_null(c);
	struct {
		size_t off;
		uint8_t val;
	} pokes[] = {
		{0, 2},	    /* version */
		{0, 0},	    /* version */
		{1, 1},	    /* flags */
		{18, 8},    /* n_ops 8 > 7: runs out of bytes */
		{18, 6},    /* n_ops 6 < 7: trailing bytes */
		{21, 0x80}, /* n_ops huge */
		{22, 0},    /* first op type 0 */
		{22, 7},    /* first op type 7 */
		{23, 0},    /* first key length 0 */
		{23, 200},  /* first key length past the end */
		{26, 0x7f}, /* first key length > KV_MAX_KEY_LEN and past the end */
	};
	for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
		memcpy(c, buf, len);
		c[pokes[i].off] = pokes[i].val;
		expect_bad(c, len);
	}
	free(c);
	free(buf);

	/* A key length just over the limit, with the bytes actually there. */
	size_t blen = 22 + 1 + 4 + KV_MAX_KEY_LEN + 1;
	uint8_t *b = calloc(1, blen);
	assert_non_null(b);
	b[0] = KV_TXN_VERSION;
	b[18] = 1;			     /* one op */
	b[22] = KV_OP_DELETE;		     /* type */
	b[23] = (KV_MAX_KEY_LEN + 1) & 0xff; /* key_len, little-endian */
	b[24] = (KV_MAX_KEY_LEN + 1) >> 8;
	expect_bad(b, blen);
	/* ... and exactly at the limit it decodes. */
	b[23] = KV_MAX_KEY_LEN & 0xff;
	b[24] = KV_MAX_KEY_LEN >> 8;
	struct kv_txn d;
	assert_int_equal(kv_txn_decode(&d, b, blen - 1), 0);
	assert_int_equal(d.ops[0].key_len, KV_MAX_KEY_LEN);
	kv_txn_free(&d);
	free(b);
}

static void test_kv_txn_random_garbage(void **state)
{
	uint64_t x = kvt_seed();
	struct kv_txn t;
	uint8_t *enc;
	size_t len;
	build_sample(&t);
	assert_int_equal(kv_txn_encode(&t, &enc, &len), 0);
	kv_txn_free(&t);
	uint8_t buf[256];
	for (int round = 0; round < 20000; round++) {
		size_t n;
		if (round % 2) {
			/* A valid entry with a few bytes changed. */
			n = len;
			memcpy(buf, enc, len);
			int flips = 1 + (int)(kvt_rand(&x) % 4);
			for (int i = 0; i < flips; i++)
				buf[kvt_rand(&x) % len] ^= (uint8_t)(1 + kvt_rand(&x) % 255);
		} else {
			n = kvt_rand(&x) % sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = (uint8_t)kvt_rand(&x);
			if (n > 1) {
				buf[0] = KV_TXN_VERSION;
				buf[1] = 0;
			}
		}
		struct kv_txn d;
		int rc = kv_txn_decode(&d, buf, n);
		assert_true(rc == 0 || rc == -EBADMSG);
		if (rc == 0) {
			/* Whatever decodes re-encodes to the same bytes. */
			uint8_t *again;
			size_t alen;
			assert_int_equal(kv_txn_encode(&d, &again, &alen), 0);
			assert_int_equal(alen, n);
			assert_memory_equal(again, buf, n);
			free(again);
		}
		kv_txn_free(&d);
	}
	free(enc);
}

static void expect_sha(const void *data, size_t len, const char *hex)
{
	struct kv_sha256 c;
	uint8_t d[32];
	char out[65];
	assert_int_equal(kv_sha256_init(&c), 0);
	kv_sha256_update(&c, data, len);
	assert_int_equal(kv_sha256_final(&c, d), 0);
	kv_digest_hex(d, out);
	assert_string_equal(out, hex);

	/* Fed in uneven pieces: the same. */
	assert_int_equal(kv_sha256_init(&c), 0);
	for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 % 71 + 1)
		kv_sha256_update(&c, (const uint8_t *)data + off,
				 off + step > len ? len - off : step);
	assert_int_equal(kv_sha256_final(&c, d), 0);
	kv_digest_hex(d, out);
	assert_string_equal(out, hex);
}

static void test_kv_txn_sha256_vectors(void **state)
{
	expect_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	expect_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	expect_sha(m, strlen(m),
		   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	char *a = malloc(1000000);
	assert_non_null(a);
	memset(a, 'a', 1000000);
	expect_sha(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_txn_round_trip),
		cmocka_unit_test(test_kv_txn_builder_limits),
		cmocka_unit_test(test_kv_txn_rejects_malformed),
		cmocka_unit_test(test_kv_txn_random_garbage),
		cmocka_unit_test(test_kv_txn_sha256_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
