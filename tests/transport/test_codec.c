/*
 * The wire codec: every message type survives a round trip; the decoder
 * rejects truncated, padded, foreign, wrong-version and random frames with an
 * error instead of crashing or over-reading (ASan watches); decoding is
 * canonical (a frame that decodes re-encodes to the same bytes); the encoder
 * refuses what the decoder would refuse.
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "samples.h"

#define CLUSTER 0x1122334455667788ull

/* A decode with an exactly-sized, heap-allocated frame copy so ASan sees any over-read. */
struct decoded {
	uint8_t *frame;
	void *scratch;
	struct tp_frame f;
};

static int decode_copy(const uint8_t *buf, size_t len, uint64_t cluster, struct decoded *d)
{
	d->frame = malloc(len ? len : 1);
	assert_non_null(d->frame);
	if (len)
		memcpy(d->frame, buf, len);
	size_t cap = tp_decode_scratch_len(len);
	d->scratch = malloc(cap);
	assert_non_null(d->scratch);
	struct tp_scratch s = {.buf = d->scratch, .cap = cap};
	return tp_decode(d->frame, len, cluster, &s, &d->f);
}

static void decoded_free(struct decoded *d)
{
	free(d->frame);
	free(d->scratch);
}

static uint8_t *encode(const struct opx_msg *m, size_t *len)
{
	assert_int_equal(tp_encode_msg(CLUSTER, m, NULL, 0, len), -ENOBUFS);
	uint8_t *buf = malloc(*len);
	assert_non_null(buf);
	size_t len2 = 0;
	assert_int_equal(tp_encode_msg(CLUSTER, m, buf, *len, &len2), 0);
	assert_int_equal(len2, *len);
	return buf;
}

static void test_codec_round_trip_every_type(void **state)
{
	struct samples *s = malloc(sizeof(*s));
	assert_non_null(s);
	samples_init(s, 3, 1);
	bool seen[OPX_MSG_TYPE_MAX + 1] = {false};
	for (size_t i = 0; i < s->n; i++) {
		size_t len;
		uint8_t *buf = encode(&s->msgs[i], &len);
		struct decoded d;
		assert_int_equal(decode_copy(buf, len, CLUSTER, &d), 0);
		assert_false(d.f.is_app);
		assert_int_equal(d.f.hdr.from, 3);
		assert_int_equal(d.f.hdr.to, 1);
		assert_int_equal(d.f.hdr.cluster_id, CLUSTER);
		if (!samples_msg_equal(&s->msgs[i], &d.f.msg))
			fail_msg("sample %zu (%s) changed in the round trip", i,
				 opx_msg_type_name(s->msgs[i].type));
		seen[s->msgs[i].type] = true;
		decoded_free(&d);

		/* The growable-buffer encoder writes the same bytes. */
		struct tp_buf b = {0};
		assert_int_equal(tp_encode_msg_buf(CLUSTER, &s->msgs[i], &b), 0);
		assert_int_equal(b.len, len);
		assert_memory_equal(b.data, buf, len);
		tp_buf_free(&b);
		free(buf);
	}
	for (int t = 1; t <= OPX_MSG_TYPE_MAX; t++)
		if (!seen[t])
			fail_msg("no sample of %s", opx_msg_type_name((enum opx_msg_type)t));
	free(s);
}

static void test_codec_app_frame_round_trip(void **state)
{
	uint8_t payload[300];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	uint32_t lens[] = {0, 1, sizeof(payload)};
	for (size_t k = 0; k < 3; k++) {
		struct tp_app app = {.app_type = 0xbeef, .data = payload, .len = lens[k]};
		uint8_t buf[512];
		size_t len;
		assert_int_equal(tp_encode_app(CLUSTER, 2, 5, 9, &app, buf, 10, &len), -ENOBUFS);
		assert_int_equal(len, tp_app_encoded_len(lens[k]));
		assert_int_equal(tp_encode_app(CLUSTER, 2, 5, 9, &app, buf, sizeof(buf), &len), 0);
		struct decoded d;
		assert_int_equal(decode_copy(buf, len, CLUSTER, &d), 0);
		assert_true(d.f.is_app);
		assert_int_equal(d.f.app.app_type, 0xbeef);
		assert_int_equal(d.f.app.len, lens[k]);
		if (lens[k])
			assert_memory_equal(d.f.app.data, payload, lens[k]);
		assert_int_equal(d.f.hdr.from, 2);
		assert_int_equal(d.f.hdr.to, 5);
		assert_int_equal(d.f.hdr.config_id, 9);
		decoded_free(&d);
	}
}

/* The largest entry the core allows, and a large app payload, both pass intact. */
static void test_codec_max_size_payloads(void **state)
{
	uint8_t *big = malloc(OPX_MAX_ENTRY_LEN);
	assert_non_null(big);
	for (size_t i = 0; i < OPX_MAX_ENTRY_LEN; i += 4096)
		big[i] = (uint8_t)(i >> 12);
	big[OPX_MAX_ENTRY_LEN - 1] = 0xab;
	struct opx_entry e = {.data = big, .len = OPX_MAX_ENTRY_LEN};
	struct opx_msg m = {.from = 1, .to = 2, .config_id = 1, .type = OPX_MSG_ACCEPT_DECIDE};
	m.u.accept_decide.entries = &e;
	m.u.accept_decide.n_entries = 1;
	struct tp_buf b = {0};
	assert_int_equal(tp_encode_msg_buf(CLUSTER, &m, &b), 0);
	struct tp_frame f;
	uint8_t scratch[256] __attribute__((aligned(16)));
	struct tp_scratch s = {.buf = scratch, .cap = sizeof(scratch)};
	assert_int_equal(tp_decode(b.data, b.len, CLUSTER, &s, &f), 0);
	assert_true(samples_msg_equal(&m, &f.msg));

	/* One byte more than the limit is refused both ways. */
	e.len = OPX_MAX_ENTRY_LEN + 1;
	size_t len;
	assert_int_equal(tp_encoded_len(&m, &len), -EINVAL);
	tp_buf_free(&b);

	struct tp_app app = {.app_type = 1, .data = big, .len = OPX_MAX_ENTRY_LEN};
	size_t need = tp_app_encoded_len(app.len);
	uint8_t *buf = malloc(need);
	assert_non_null(buf);
	assert_int_equal(tp_encode_app(CLUSTER, 1, 2, 1, &app, buf, need, &len), 0);
	assert_int_equal(tp_decode(buf, len, CLUSTER, &s, &f), 0);
	assert_int_equal(f.app.len, OPX_MAX_ENTRY_LEN);
	assert_memory_equal(f.app.data, big, OPX_MAX_ENTRY_LEN);
	free(buf);
	free(big);
}

/* Every proper prefix of every sample frame is rejected, and so is any padding. */
static void test_codec_truncated_and_padded_frames_rejected(void **state)
{
	struct samples *s = malloc(sizeof(*s));
	assert_non_null(s);
	samples_init(s, 3, 1);
	for (size_t i = 0; i < s->n; i++) {
		size_t len;
		uint8_t *buf = encode(&s->msgs[i], &len);
		uint8_t *work = malloc(len + 8);
		assert_non_null(work);
		for (size_t cut = 0; cut < len; cut++) {
			/* Truncated as received, header length left alone. */
			struct decoded d;
			assert_int_equal(decode_copy(buf, cut, CLUSTER, &d), -EBADMSG);
			decoded_free(&d);
			/* Truncated with a consistent header: the payload itself runs short. */
			if (cut >= TP_HDR_LEN) {
				memcpy(work, buf, cut);
				uint32_t pl = (uint32_t)(cut - TP_HDR_LEN);
				for (int b = 0; b < 4; b++)
					work[36 + b] = (uint8_t)(pl >> (8 * b));
				int rc = decode_copy(work, cut, CLUSTER, &d);
				if (rc != -EBADMSG)
					fail_msg("%s cut at %zu of %zu: got %d",
						 opx_msg_type_name(s->msgs[i].type), cut, len, rc);
				decoded_free(&d);
			}
		}
		/* Trailing bytes the header owns up to are not part of any message. */
		memcpy(work, buf, len);
		memset(work + len, 0, 8);
		uint32_t pl = (uint32_t)(len + 8 - TP_HDR_LEN);
		for (int b = 0; b < 4; b++)
			work[36 + b] = (uint8_t)(pl >> (8 * b));
		struct decoded d;
		assert_int_equal(decode_copy(work, len + 8, CLUSTER, &d), -EBADMSG);
		decoded_free(&d);
		/* ... and bytes beyond the header's length are refused too. */
		assert_int_equal(decode_copy(buf, len, CLUSTER, &d), 0);
		decoded_free(&d);
		memcpy(work, buf, len);
		assert_int_equal(decode_copy(work, len + 1, CLUSTER, &d), -EBADMSG);
		decoded_free(&d);
		free(work);
		free(buf);
	}
	free(s);
}

static void test_codec_header_checks(void **state)
{
	struct opx_msg m = {.from = 1, .to = 2, .config_id = 1, .type = OPX_MSG_HB_REQUEST};
	uint8_t buf[64], work[64];
	size_t len;
	assert_int_equal(tp_encode_msg(CLUSTER, &m, buf, sizeof(buf), &len), 0);
	struct decoded d;

	assert_int_equal(decode_copy(buf, len, CLUSTER + 1, &d), -EACCES);
	decoded_free(&d);

	memcpy(work, buf, len);
	work[4] = TP_WIRE_VERSION + 1;
	assert_int_equal(decode_copy(work, len, CLUSTER, &d), -EPROTONOSUPPORT);
	decoded_free(&d);

	memcpy(work, buf, len);
	work[0] ^= 1; /* magic */
	assert_int_equal(decode_copy(work, len, CLUSTER, &d), -EBADMSG);
	decoded_free(&d);

	memcpy(work, buf, len);
	work[6] = 1; /* flags */
	assert_int_equal(decode_copy(work, len, CLUSTER, &d), -EBADMSG);
	decoded_free(&d);

	uint8_t bad_types[] = {0, OPX_MSG_TYPE_MAX + 1, 127, 129, 255};
	for (size_t i = 0; i < sizeof(bad_types); i++) {
		memcpy(work, buf, len);
		work[5] = bad_types[i];
		assert_int_equal(decode_copy(work, len, CLUSTER, &d), -EBADMSG);
		decoded_free(&d);
	}
	/* An app frame too short for its app type. */
	memcpy(work, buf, TP_HDR_LEN);
	work[5] = TP_FRAME_APP;
	work[36] = 1;
	work[37] = work[38] = work[39] = 0;
	work[TP_HDR_LEN] = 7;
	assert_int_equal(decode_copy(work, TP_HDR_LEN + 1, CLUSTER, &d), -EBADMSG);
	decoded_free(&d);
}

/* Finds the offset of a byte pattern in a frame, to patch one field. */
static size_t find(const uint8_t *buf, size_t len, const void *pat, size_t plen)
{
	for (size_t i = TP_HDR_LEN; i + plen <= len; i++)
		if (!memcmp(buf + i, pat, plen))
			return i;
	fail_msg("pattern not found");
	return 0;
}

static void expect_bad(uint8_t *buf, size_t len, size_t off, uint8_t value)
{
	uint8_t old = buf[off];
	buf[off] = value;
	struct decoded d;
	int rc = decode_copy(buf, len, CLUSTER, &d);
	decoded_free(&d);
	buf[off] = old;
	if (rc != -EBADMSG)
		fail_msg("byte %zu = %u: got %d, expected -EBADMSG", off, value, rc);
}

/* Out-of-range enums, bools and counts are refused, not taken at face value. */
static void test_codec_field_ranges_checked(void **state)
{
	struct opx_stopsign *ss = calloc(1, sizeof(*ss));
	assert_non_null(ss);
	ss->next.config_id = 0xa1a2a3a4;
	ss->next.n_nodes = 1;
	ss->next.nodes[0] = 0x0102030405060708ull;
	uint8_t snap[3] = {9, 9, 9};
	struct opx_entry e = {.data = snap, .len = 3};

	struct opx_msg m = {.from = 1, .to = 2, .type = OPX_MSG_ACCEPT_SYNC};
	m.u.accept_sync.log_sync = (struct opx_log_sync){OPX_SNAPSHOT_DELTA,	snap, 3, &e, 1,
							 0x5555555555555555ull, ss};
	uint8_t buf[512];
	size_t len;
	assert_int_equal(tp_encode_msg(CLUSTER, &m, buf, sizeof(buf), &len), 0);
	/* log sync starts after ballot (20) + seq (16) + decided_idx (8) */
	size_t ls = TP_HDR_LEN + 44;
	assert_int_equal(buf[ls], OPX_SNAPSHOT_DELTA);
	expect_bad(buf, len, ls, 3);			/* snapshot kind */
	expect_bad(buf, len, ls, OPX_SNAPSHOT_NONE);	/* NONE with bytes */
	size_t n_off = ls + 1 + 4 + 3 + 8;		/* suffix count */
	expect_bad(buf, len, n_off + 3, 0x40);		/* count beyond the frame */
	size_t opt = len - (4 + 4 + 8 + 4 + 4 + 4) - 1; /* stop-sign present flag */
	assert_int_equal(buf[opt], 1);
	expect_bad(buf, len, opt, 2);
	uint8_t cfg_id[4] = {0xa4, 0xa3, 0xa2, 0xa1};
	size_t nn = find(buf, len, cfg_id, 4) + 4; /* n_nodes */
	expect_bad(buf, len, nn, OPX_MAX_NODES + 1);
	expect_bad(buf, len, len - 1 - 0, 1); /* metadata_len's top byte: too long */

	struct opx_msg r = {.from = 1, .to = 2, .type = OPX_MSG_HB_REPLY};
	r.u.hb_reply.happy = true;
	assert_int_equal(tp_encode_msg(CLUSTER, &r, buf, sizeof(buf), &len), 0);
	expect_bad(buf, len, len - 1, 2); /* happy */

	struct opx_msg c = {.from = 1, .to = 2, .type = OPX_MSG_COMPACTION};
	c.u.compaction = (struct opx_msg_compaction){OPX_COMPACTION_TRIM, true, 5};
	assert_int_equal(tp_encode_msg(CLUSTER, &c, buf, sizeof(buf), &len), 0);
	expect_bad(buf, len, TP_HDR_LEN, 0);	 /* kind */
	expect_bad(buf, len, TP_HDR_LEN, 3);	 /* kind */
	expect_bad(buf, len, TP_HDR_LEN + 1, 0); /* Trim without index */
	buf[TP_HDR_LEN] = OPX_COMPACTION_SNAPSHOT;
	expect_bad(buf, len, TP_HDR_LEN + 1, 0); /* Snapshot(None) with a stray index */

	/* Entry length over OPX_MAX_ENTRY_LEN (a count the frame could never hold anyway). */
	struct opx_msg f = {.from = 1, .to = 2, .type = OPX_MSG_PROPOSAL_FORWARD};
	f.u.proposal_forward.entries = &e;
	f.u.proposal_forward.n_entries = 1;
	assert_int_equal(tp_encode_msg(CLUSTER, &f, buf, sizeof(buf), &len), 0);
	expect_bad(buf, len, TP_HDR_LEN + 4 + 3, 0x10);
	free(ss);
}

static void test_codec_encoder_refuses_invalid(void **state)
{
	struct opx_stopsign *ss = calloc(1, sizeof(*ss));
	assert_non_null(ss);
	struct opx_msg m = {.from = 1, .to = 2, .type = OPX_MSG_FORWARD_STOPSIGN};
	m.u.forward_stopsign.ss = ss;
	size_t len;
	assert_int_equal(tp_encoded_len(&m, &len), 0);
	ss->next.n_nodes = OPX_MAX_NODES + 1;
	assert_int_equal(tp_encoded_len(&m, &len), -EINVAL);
	ss->next.n_nodes = 0;
	ss->metadata_len = OPX_MAX_METADATA_LEN + 1;
	assert_int_equal(tp_encoded_len(&m, &len), -EINVAL);
	m.u.forward_stopsign.ss = NULL;
	assert_int_equal(tp_encoded_len(&m, &len), -EINVAL);

	struct opx_msg c = {.type = OPX_MSG_COMPACTION};
	c.u.compaction.kind = OPX_COMPACTION_TRIM; /* without index */
	assert_int_equal(tp_encoded_len(&c, &len), -EINVAL);
	c.u.compaction.kind = (enum opx_compaction_kind)7;
	assert_int_equal(tp_encoded_len(&c, &len), -EINVAL);

	struct opx_msg a = {.type = OPX_MSG_ACCEPT_SYNC};
	a.u.accept_sync.log_sync.snapshot_kind = (enum opx_snapshot_kind)9;
	assert_int_equal(tp_encoded_len(&a, &len), -EINVAL);
	a.u.accept_sync.log_sync.snapshot_kind = OPX_SNAPSHOT_NONE;
	a.u.accept_sync.log_sync.snapshot_len = 1; /* bytes without a snapshot */
	assert_int_equal(tp_encoded_len(&a, &len), -EINVAL);

	struct opx_msg u = {.type = (enum opx_msg_type)99};
	assert_int_equal(tp_encoded_len(&u, &len), -EINVAL);
	free(ss);
}

/* A scratch area that is too small is reported with the size that suffices. */
static void test_codec_scratch_too_small_reports_need(void **state)
{
	struct samples *s = malloc(sizeof(*s));
	assert_non_null(s);
	samples_init(s, 3, 1);
	for (size_t i = 0; i < s->n; i++) {
		size_t len;
		uint8_t *buf = encode(&s->msgs[i], &len);
		struct tp_frame f;
		struct tp_scratch sc = {0};
		int rc = tp_decode(buf, len, CLUSTER, &sc, &f);
		if (rc == -ENOBUFS) {
			assert_true(sc.need > 0);
			assert_true(sc.need <= tp_decode_scratch_len(len));
			sc.buf = malloc(sc.need);
			sc.cap = sc.need;
			rc = tp_decode(buf, len, CLUSTER, &sc, &f);
			assert_int_equal(rc, -0);
			assert_true(samples_msg_equal(&s->msgs[i], &f.msg));
			free(sc.buf);
		} else {
			assert_int_equal(rc, 0);
		}
		free(buf);
	}
	free(s);
}

static uint64_t next_rand(uint64_t *x)
{
	/* xorshift64*: deterministic from the printed seed. */
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 0x2545f4914f6cdd1dull;
}

/*
 * Random bytes and random mutations of valid frames: never a crash or an
 * over-read, and whatever decodes re-encodes to exactly the same bytes.
 */
static void test_codec_random_and_mutated_frames(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	const char *env = getenv("OMNIFS_SEED");
	if (env)
		seed = strtoull(env, NULL, 0) | 1;
	printf("# seed: OMNIFS_SEED=%" PRIu64 "\n", seed);
	uint64_t x = seed;

	struct samples *s = malloc(sizeof(*s));
	assert_non_null(s);
	samples_init(s, 3, 1);
	size_t decoded_ok = 0;
	for (int round = 0; round < 20000; round++) {
		size_t len;
		uint8_t *buf;
		if (round % 4 == 0) {
			len = next_rand(&x) % 200;
			buf = malloc(len + 1);
			assert_non_null(buf);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)next_rand(&x);
			if (len >= 8 && (round & 8)) { /* a valid-looking header start */
				buf[0] = 'O', buf[1] = 'M', buf[2] = 'F', buf[3] = 'S';
				buf[4] = TP_WIRE_VERSION;
			}
		} else {
			buf = encode(&s->msgs[next_rand(&x) % s->n], &len);
			int flips = 1 + (int)(next_rand(&x) % 4);
			for (int k = 0; k < flips; k++)
				buf[TP_HDR_LEN + next_rand(&x) % (len - TP_HDR_LEN)] ^=
					(uint8_t)(1u << (next_rand(&x) % 8));
		}
		struct decoded d;
		int rc = decode_copy(buf, len, CLUSTER, &d);
		if (rc == 0 && !d.f.is_app) {
			decoded_ok++;
			size_t len2;
			uint8_t *again = encode(&d.f.msg, &len2);
			assert_int_equal(len2, len);
			assert_memory_equal(again, buf, len);
			free(again);
		} else if (rc != 0) {
			assert_true(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EACCES);
		}
		decoded_free(&d);
		free(buf);
	}
	/* Flips inside plain integers keep frames valid: the property was exercised. */
	assert_true(decoded_ok > 1000);
	free(s);
}

/* The fuzzer's checked-in seeds are still valid frames of this wire version. */
static void test_codec_fuzz_seeds_decode(void **state)
{
	const char *dir = getenv("OMNIFS_FUZZ_CORPUS");
	assert_non_null(dir);
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t seeds = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		uint8_t buf[8192];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		struct tp_hdr h;
		assert_int_equal(tp_decode_hdr(buf, len, &h), 0);
		struct decoded dec;
		if (decode_copy(buf, len, h.cluster_id, &dec) != 0)
			fail_msg("seed %s no longer decodes: regenerate with tp_gen_corpus", path);
		decoded_free(&dec);
		seeds++;
	}
	closedir(d);
	assert_true(seeds >= OPX_MSG_TYPE_MAX + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip_every_type),
		cmocka_unit_test(test_codec_app_frame_round_trip),
		cmocka_unit_test(test_codec_max_size_payloads),
		cmocka_unit_test(test_codec_truncated_and_padded_frames_rejected),
		cmocka_unit_test(test_codec_header_checks),
		cmocka_unit_test(test_codec_field_ranges_checked),
		cmocka_unit_test(test_codec_encoder_refuses_invalid),
		cmocka_unit_test(test_codec_scratch_too_small_reports_need),
		cmocka_unit_test(test_codec_random_and_mutated_frames),
		cmocka_unit_test(test_codec_fuzz_seeds_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
