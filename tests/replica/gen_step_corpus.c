/*
 * Writes the seed corpus of fuzz_step: real in-step frames, each behind the
 * byte that picks its kind (0 STEP report, 1 fetch answer, 2 relay).
 *
 *   replica_gen_step_corpus DIR   (the checked-in copy is tests/replica/fuzz_step_corpus)
 *
 * Regenerate after a change of the frames' encoding (fs/replica/step_codec.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "step_codec.h"

static int write_framed(const char *dir, const char *name, uint8_t kind, const uint8_t *frame,
			size_t len)
{
	uint8_t *buf = malloc(len + 1);
	if (!buf)
		return 1;
	buf[0] = kind;
	memcpy(buf + 1, frame, len);
	int rc = corpus_write(dir, name, buf, len + 1);
	free(buf);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	int rc = 0;
	uint8_t buf[STEP_REPORT_MAX];
	struct step_report leader = {.decided = 120,
				     .compacted = 20,
				     .applied = 120,
				     .leader = 1,
				     .flags = STEP_LEADING,
				     .n_heard = 2,
				     .heard = {2, 3}};
	rc |= write_framed(argv[1], "report-leader", 0, buf, step_report_encode(&leader, buf));
	struct step_report alone = {.decided = 7, .applied = 9, .leader = 3};
	rc |= write_framed(argv[1], "report-alone", 0, buf, step_report_encode(&alone, buf));

	struct step_buf b = {0};
	uint8_t hdr[STEP_FETCH_HDR] = {0};
	rc |= step_buf_add(&b, hdr, sizeof(hdr)) != 0;
	rc |= step_buf_add_entry(&b, (const uint8_t *)"an entry", 8) != 0;
	rc |= step_buf_add_entry(&b, (const uint8_t *)"", 0) != 0;
	struct step_fetch_answer a = {.status = STEP_FETCH_OK,
				      .first = 100,
				      .decided = 120,
				      .compacted = 20,
				      .n = 2,
				      .leader_round = 4,
				      .leader = 1};
	step_fetch_hdr_encode(&a, b.data);
	rc |= write_framed(argv[1], "fetch-entries", 1, b.data, b.len);
	a = (struct step_fetch_answer){.status = STEP_FETCH_COMPACTED, .first = 5, .compacted = 20};
	step_fetch_hdr_encode(&a, b.data);
	rc |= write_framed(argv[1], "fetch-compacted", 1, b.data, STEP_FETCH_HDR);
	step_buf_free(&b);

	uint8_t count[4] = {2, 0, 0, 0};
	rc |= step_buf_add(&b, count, 4) != 0;
	rc |= step_buf_add_entry(&b, (const uint8_t *)"proposal one", 12) != 0;
	rc |= step_buf_add_entry(&b, (const uint8_t *)"two", 3) != 0;
	rc |= write_framed(argv[1], "relay", 2, b.data, b.len);
	step_buf_free(&b);
	return rc;
}
