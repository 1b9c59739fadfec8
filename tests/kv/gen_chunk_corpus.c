/*
 * Writes the seed corpus of fuzz_chunk: real state-transfer chunks, exported
 * (kv_export_chunk) from a store in a temp dir that applied a few
 * transactions from two proposers (so the state holds user keys, an empty
 * value and dedup records): the whole state in one chunk, the same state in
 * small chunks (first, middle with a cursor, last), and an empty state's.
 *
 *   kv_gen_chunk_corpus DIR   (the checked-in copy is tests/kv/fuzz_chunk_corpus)
 *
 * Regenerate after a change of the chunk format or of the stored records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "gen_store.h"
#include "kv.h"

/* Exports s's state in chunks of about max_bytes, written as NAME-0, NAME-1... */
static int export_all(struct kv_store *s, size_t max_bytes, const char *dir, const char *name)
{
	struct kv_view *v;
	struct kv_buf chunk, next, cursor = {NULL, 0};
	bool last = false;
	int rc = kv_view_open(s, &v);
	for (int i = 0; rc == 0 && !last; i++) {
		char file[64];
		rc = kv_export_chunk(v, cursor.data, cursor.len, max_bytes, &chunk, &next, &last);
		if (rc)
			break;
		snprintf(file, sizeof(file), "%s-%d", name, i);
		rc = corpus_write(dir, file, chunk.data, chunk.len);
		free(chunk.data);
		free(cursor.data);
		cursor = next;
	}
	free(cursor.data);
	kv_view_close(&v);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	char tmp[64];
	struct kv_store *s = gen_store_open("chunk", tmp, sizeof(tmp));
	if (!s)
		return 1;
	int rc = export_all(s, 1 << 20, argv[1], "empty");
	rc |= gen_store_fill(s, GEN_STORE_TXNS);
	rc |= export_all(s, 1 << 20, argv[1], "whole");
	rc |= export_all(s, 64, argv[1], "small");
	gen_store_remove(&s, tmp);
	return rc ? 1 : 0;
}
