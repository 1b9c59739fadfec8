/*
 * libFuzzer target for the wire decoder (build with -Dfuzz=true and
 * CC=clang; tools/fuzz.sh runs it).
 *
 * Oracles: AddressSanitizer/UBSan (no over-read, no overflow), the scratch
 * area never needs more than tp_decode_scratch_len promises, and decoding is
 * canonical: whatever decodes re-encodes to exactly the input bytes, so no
 * two frames mean the same message and no field is silently ignored.
 *
 * The cluster id is taken from the frame itself so the fuzzer explores
 * payloads instead of stopping at the cluster check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t cluster_of(const uint8_t *data, size_t size)
{
	uint64_t v = 0;
	for (int i = 7; size >= 16 && i >= 0; i--)
		v = v << 8 | data[8 + i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	memcpy(frame, data, size);

	/* Start small so the -ENOBUFS path and its size report are exercised too. */
	uint8_t small[64] __attribute__((aligned(16)));
	struct tp_scratch s = {.buf = small, .cap = sizeof(small)};
	struct tp_frame f;
	void *big = NULL;
	int rc = tp_decode(frame, size, cluster_of(frame, size), &s, &f);
	if (rc == -ENOBUFS) {
		if (s.need <= sizeof(small) || s.need > tp_decode_scratch_len(size))
			abort();
		big = malloc(s.need);
		if (!big)
			abort();
		s = (struct tp_scratch){.buf = big, .cap = s.need};
		rc = tp_decode(frame, size, cluster_of(frame, size), &s, &f);
		if (rc == -ENOBUFS)
			abort();
	}
	if (rc == 0) {
		struct tp_buf b = {0};
		size_t len = 0;
		if (f.is_app) {
			b.cap = tp_app_encoded_len(f.app.len);
			b.data = malloc(b.cap);
			if (!b.data || tp_encode_app(f.hdr.cluster_id, f.hdr.from, f.hdr.to,
						     f.hdr.config_id, &f.app, b.data, b.cap, &len))
				abort();
			b.len = len;
		} else if (tp_encode_msg_buf(f.hdr.cluster_id, &f.msg, &b) != 0) {
			abort();
		}
		if (b.len != size || memcmp(b.data, frame, size) != 0)
			abort();
		tp_buf_free(&b);
	}
	free(big);
	free(frame);
	return 0;
}
