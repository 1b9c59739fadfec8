/*
 * libFuzzer target for change notes and feed batches (kv_note.c): notes
 * come from the log (the network) and batches from the control socket, so
 * omnifsctl decodes both. Build with -Dfuzz=true and CC=clang;
 * tools/fuzz.sh runs it.
 *
 * The input is tried both ways. As a note: one that decodes encodes to
 * exactly the input (decoding is canonical), its paths lie inside the input
 * and hold no NUL. As a batch: its records are read in order until the end
 * or a refusal, their indexes only grow, each note re-encodes to its bytes,
 * and a batch read to its end was consumed exactly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_note(const struct kv_note *n, const uint8_t *raw, size_t len)
{
	uint8_t *enc = malloc(len ? len : 1);
	if (!enc)
		return;
	if (kv_note_encoded_len(n) != len || kv_note_encode(n, enc, len) != len ||
	    memcmp(enc, raw, len) != 0)
		abort();
	if (memchr(n->path, '\0', n->path_len) ||
	    (n->path2 && memchr(n->path2, '\0', n->path2_len)))
		abort();
	if ((n->path2_len != 0) != (n->kind == KV_NOTE_RENAME))
		abort();
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	struct kv_note n;
	int rc = kv_note_decode(&n, buf, size);
	if (rc == 0) {
		if ((const uint8_t *)n.path < buf ||
		    (const uint8_t *)n.path + n.path_len > buf + size)
			abort();
		check_note(&n, buf, size);
	} else if (rc != -EBADMSG) {
		abort();
	}

	uint64_t first, next;
	if (kv_feed_header(buf, size, &first, &next) == 0) {
		if (next < first)
			abort();
		size_t pos = KV_FEED_HDR_LEN, before = pos;
		uint64_t min = first;
		struct kv_feed_rec r;
		while ((rc = kv_feed_next(buf, size, &pos, min, &r)) == 1) {
			if (r.idx < min || pos <= before || pos > size)
				abort();
			/* The note is the record's tail: 20 fixed bytes before it. */
			check_note(&r.note, buf + before + 20, pos - before - 20);
			min = r.idx + 1;
			before = pos;
		}
		if (rc == 0 && pos != size)
			abort();
		if (rc != 0 && rc != -EBADMSG)
			abort();
	}
	free(buf);
	return 0;
}
