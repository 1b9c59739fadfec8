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
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "kv.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int apply(struct kv_store *s, uint64_t idx, uint64_t node, uint64_t seq, const char *key,
		 const char *val)
{
	struct kv_txn t;
	struct kv_result res;
	kv_txn_init(&t, node, seq);
	int rc = kv_txn_add_put(&t, key, strlen(key), val, strlen(val));
	if (rc == 0)
		rc = kv_apply_txn(s, idx, &t, false, &res);
	kv_txn_free(&t);
	return rc;
}

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
	char tmp[64], err[KV_ERR_MAX];
	const char *t = getenv("TMPDIR");
	snprintf(tmp, sizeof(tmp), "%s/omnifs-gen-chunk-XXXXXX", t && *t ? t : "/tmp");
	struct kv_store *s = NULL;
	if (!mkdtemp(tmp) || kv_open(&s, tmp, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cannot open a store in %s: %s\n", argv[0], tmp, err);
		return 1;
	}
	int rc = export_all(s, 1 << 20, argv[1], "empty");
	rc |= apply(s, 0, 1, 1, "a", "first value");
	rc |= apply(s, 1, 2, (uint64_t)3 << 32 | 1, "b/1", "");
	rc |= apply(s, 2, 1, 2, "b/2", "a value of a few more bytes than the others");
	rc |= apply(s, 3, 2, (uint64_t)3 << 32 | 2, "c", "z");
	rc |= export_all(s, 1 << 20, argv[1], "whole");
	rc |= export_all(s, 64, argv[1], "small");
	kv_close(&s);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
}
