/*
 * Writes the fuzzer's seed corpus: one file per sample message (every type
 * and variant in samples.c) plus app frames, each a real encoded frame.
 *
 *   tp_gen_corpus DIR      (the checked-in copy is tests/transport/fuzz_corpus)
 *
 * Regenerate after a wire format change; test_codec checks that every seed
 * still decodes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "samples.h"
#include "corpus.h"

#define CORPUS_CLUSTER 0x0123456789abcdefull

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	struct samples *s = malloc(sizeof(*s));
	if (!s)
		return 1;
	samples_init(s, 2, 1);
	int rc = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct tp_buf b = {0};
		if (tp_encode_msg_buf(CORPUS_CLUSTER, &s->msgs[i], &b) != 0) {
			fprintf(stderr, "sample %zu does not encode\n", i);
			return 1;
		}
		char name[64];
		snprintf(name, sizeof(name), "%02zu-%s.bin", i, opx_msg_type_name(s->msgs[i].type));
		rc |= corpus_write(argv[1], name, b.data, b.len);
		tp_buf_free(&b);
	}
	const uint8_t chunk[] = "chunk 0 of a state transfer";
	uint32_t lens[] = {0, sizeof(chunk)};
	for (int k = 0; k < 2; k++) {
		struct tp_app app = {.app_type = (uint16_t)(k + 1), .data = chunk, .len = lens[k]};
		uint8_t buf[128];
		size_t len;
		if (tp_encode_app(CORPUS_CLUSTER, 2, 1, 1, &app, buf, sizeof(buf), &len) != 0)
			return 1;
		char name[64];
		snprintf(name, sizeof(name), "app-%d.bin", k);
		rc |= corpus_write(argv[1], name, buf, len);
	}
	free(s);
	return rc;
}
