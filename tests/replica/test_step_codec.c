/*
 * The in-step frames (fs/replica/step_codec.h): round trips, and refusal of
 * every truncation and of lists that run past their frame.
 */
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "step_codec.h"

static void test_step_codec_report_round_trip(void **state)
{
	struct step_report r = {.decided = 1ull << 40,
				.compacted = 7,
				.applied = 99,
				.leader = 3,
				.flags = STEP_LEADER_DIRECT,
				.n_heard = 2,
				.heard = {1, 5}};
	uint8_t buf[STEP_REPORT_MAX];
	size_t len = step_report_encode(&r, buf);
	assert_int_equal(len, STEP_REPORT_HDR + 16);
	struct step_report back;
	assert_int_equal(step_report_decode(&back, buf, len), 0);
	assert_int_equal(back.decided, r.decided);
	assert_int_equal(back.compacted, r.compacted);
	assert_int_equal(back.applied, r.applied);
	assert_int_equal(back.leader, r.leader);
	assert_int_equal(back.flags, r.flags);
	assert_int_equal(back.n_heard, 2);
	assert_int_equal(back.heard[0], 1);
	assert_int_equal(back.heard[1], 5);
	/* Exactly one report: shorter, longer, a count past the limit. */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(step_report_decode(&back, buf, cut), -EBADMSG);
	assert_int_equal(step_report_decode(&back, buf, len + 1), -EBADMSG);
	buf[33] = STEP_MAX_HEARD + 1;
	assert_int_equal(step_report_decode(&back, buf, STEP_REPORT_HDR + 8 * buf[33]), -EBADMSG);
}

static void test_step_codec_fetch_answer(void **state)
{
	struct step_buf b = {0};
	uint8_t hdr[STEP_FETCH_HDR] = {0};
	assert_int_equal(step_buf_add(&b, hdr, sizeof(hdr)), 0);
	const uint8_t e1[] = "first", e2[] = "";
	assert_int_equal(step_buf_add_entry(&b, e1, 5), 0);
	assert_int_equal(step_buf_add_entry(&b, e2, 0), 0);
	struct step_fetch_answer a = {.status = STEP_FETCH_OK,
				      .first = 10,
				      .decided = 12,
				      .compacted = 4,
				      .n = 2,
				      .leader_round = 7,
				      .leader_priority = 3,
				      .leader = 2};
	step_fetch_hdr_encode(&a, b.data);

	struct step_fetch_answer got;
	assert_int_equal(step_fetch_answer_decode(&got, b.data, b.len), 0);
	assert_int_equal(got.first, 10);
	assert_int_equal(got.decided, 12);
	assert_int_equal(got.compacted, 4);
	assert_int_equal(got.n, 2);
	assert_int_equal(got.leader_round, 7);
	assert_int_equal(got.leader_priority, 3);
	assert_int_equal(got.leader, 2);
	struct step_entries it;
	step_entries_init(&it, got.entries, got.entries_len, got.n);
	const uint8_t *e;
	uint32_t len;
	assert_int_equal(step_entries_next(&it, &e, &len), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(e, "first", 5);
	assert_int_equal(step_entries_next(&it, &e, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(step_entries_next(&it, &e, &len), 0);
	assert_true(step_entries_done(&it));

	/* Cut anywhere in the entries: the list runs past its frame. */
	for (size_t cut = STEP_FETCH_HDR; cut < b.len; cut++) {
		assert_int_equal(step_fetch_answer_decode(&got, b.data, cut), 0);
		step_entries_init(&it, got.entries, got.entries_len, got.n);
		int rc;
		while ((rc = step_entries_next(&it, &e, &len)) == 1)
			;
		assert_true(rc == -EBADMSG || !step_entries_done(&it));
	}
	for (size_t cut = 0; cut < STEP_FETCH_HDR; cut++)
		assert_int_equal(step_fetch_answer_decode(&got, b.data, cut), -EBADMSG);
	b.data[0] = 7; /* no such status */
	assert_int_equal(step_fetch_answer_decode(&got, b.data, b.len), -EBADMSG);
	step_buf_free(&b);
}

static void test_step_codec_relay(void **state)
{
	struct step_buf b = {0};
	uint8_t count[4] = {3, 0, 0, 0};
	assert_int_equal(step_buf_add(&b, count, 4), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(step_buf_add_entry(&b, (const uint8_t *)"abc", 3), 0);
	struct step_entries it;
	assert_int_equal(step_relay_decode(&it, b.data, b.len), 0);
	const uint8_t *e;
	uint32_t len;
	int n = 0;
	while (step_entries_next(&it, &e, &len) == 1)
		n++;
	assert_int_equal(n, 3);
	assert_true(step_entries_done(&it));
	/* A count no frame of this size can hold is refused up front. */
	b.data[0] = 0xff;
	b.data[1] = 0xff;
	assert_int_equal(step_relay_decode(&it, b.data, b.len), -EBADMSG);
	assert_int_equal(step_relay_decode(&it, b.data, 3), -EBADMSG);
	/* An entry length past the end. */
	b.data[0] = 1;
	b.data[1] = 0;
	b.data[4] = 200;
	assert_int_equal(step_relay_decode(&it, b.data, b.len), 0);
	assert_int_equal(step_entries_next(&it, &e, &len), -EBADMSG);
	step_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_codec_report_round_trip),
		cmocka_unit_test(test_step_codec_fetch_answer),
		cmocka_unit_test(test_step_codec_relay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
