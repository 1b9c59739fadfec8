/*
 * libFuzzer target for the in-step frames a peer sends (fs/replica/
 * step_codec.h: STEP reports, fetch answers, relayed proposals). Build with
 * -Dfuzz=true and CC=clang; tools/fuzz.sh runs it.
 *
 * The first byte picks the frame kind, the rest is the frame. Oracles
 * besides ASan/UBSan: a report that decodes encodes to the same bytes; an
 * entry list read to its end re-encodes to the bytes it was read from, and
 * every entry lies inside the frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "step_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the list to its end; if it is well formed, re-encodes it and
 * compares with the bytes it came from (prefix: the RELAY count). */
static void check_list(struct step_entries *it, const uint8_t *from, const uint8_t *prefix,
		       size_t prefix_len)
{
	const uint8_t *start = it->p, *end = it->end;
	struct step_buf again = {0};
	if (prefix_len && step_buf_add(&again, prefix, prefix_len) != 0)
		abort();
	const uint8_t *e;
	uint32_t len;
	int rc;
	while ((rc = step_entries_next(it, &e, &len)) == 1) {
		if (e < start || e + len > end)
			abort();
		if (step_buf_add_entry(&again, e, len) != 0)
			abort();
	}
	if (rc != 0 && rc != -EBADMSG)
		abort();
	size_t read = (size_t)(it->p - from);
	if (rc == 0 && (again.len != read || (read && memcmp(again.data, from, read) != 0)))
		abort();
	step_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t kind = data[0];
	size_t len = size - 1;
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *in = malloc(len ? len : 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, len);

	switch (kind % 3) {
	case 0: {
		struct step_report r;
		if (step_report_decode(&r, in, len) == 0) {
			uint8_t out[STEP_REPORT_MAX];
			size_t n = step_report_encode(&r, out);
			if (n != len || memcmp(out, in, len) != 0)
				abort();
		}
		break;
	}
	case 1: {
		struct step_fetch_answer a;
		if (step_fetch_answer_decode(&a, in, len) == 0) {
			uint8_t hdr[STEP_FETCH_HDR];
			step_fetch_hdr_encode(&a, hdr);
			if (memcmp(hdr, in, STEP_FETCH_HDR) != 0)
				abort();
			struct step_entries it;
			step_entries_init(&it, a.entries, a.entries_len, a.n);
			check_list(&it, a.entries, NULL, 0);
		}
		break;
	}
	default: {
		struct step_entries it;
		if (step_relay_decode(&it, in, len) == 0)
			check_list(&it, in, in, 4);
		break;
	}
	}
	free(in);
	return 0;
}
