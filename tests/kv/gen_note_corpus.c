/*
 * Writes the seed corpus of fuzz_note: real encoded change notes (a plain
 * one, a rename, a KV key) and a feed batch holding them.
 *
 *   kv_gen_note_corpus DIR   (the checked-in copy is tests/kv/fuzz_note_corpus)
 *
 * Regenerate after a change of the note or batch encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "corpus.h"
#include "kv.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	static const struct {
		const char *name;
		struct kv_note n;
	} notes[] = {
		{"create", {KV_NOTE_CREATE, 0, 1700000000000, "/etc/app.conf", 13, NULL, 0}},
		{"rename", {KV_NOTE_RENAME, 1000, 1700000000001, "/a/.x.swp", 9, "/a/x", 4}},
		{"kv-put", {KV_NOTE_KV_PUT, 0, 1700000000002, "config/leader", 13, NULL, 0}},
	};
	uint8_t batch[1024], note[KV_NOTE_MAX_LEN];
	size_t blen = KV_FEED_HDR_LEN;
	put_le64(batch, 5);
	put_le64(batch + 8, 40);
	int rc = 0;
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
		size_t len = kv_note_encode(&notes[i].n, note, sizeof(note));
		if (!len)
			return 1;
		rc |= corpus_write(argv[1], notes[i].name, note, len);
		put_le64(batch + blen, 7 + 10 * i);
		put_le64(batch + blen + 8, i + 1);
		put_le32(batch + blen + 16, (uint32_t)len);
		memcpy(batch + blen + 20, note, len);
		blen += 20 + len;
	}
	put_le64(batch + 8, 7 + 10 * 3);
	rc |= corpus_write(argv[1], "batch", batch, blen);
	return rc ? 1 : 0;
}
