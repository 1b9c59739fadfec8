/*
 * The store behind the seed generators that need real KV state
 * (gen_chunk_corpus.c, gen_snapshot_corpus.c): opened in a fresh temp dir,
 * fed a fixed list of transactions so the seeds are the same each run, and
 * removed with its dir at the end.
 */
#ifndef OMNIFS_TESTS_GEN_STORE_H
#define OMNIFS_TESTS_GEN_STORE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* The fixed transactions, log index i applying gen_store_txns[i]: user keys
 * from two proposers (so the state holds dedup records) and an empty value. */
static const struct {
	uint64_t node, seq;
	const char *key, *val;
} gen_store_txns[] = {
	{1, 1, "a", "first value"},
	{2, (uint64_t)3 << 32 | 1, "b/1", ""},
	{1, 2, "b/2", "a value of a few more bytes than the others"},
	{2, (uint64_t)3 << 32 | 2, "c", "z"},
};
#define GEN_STORE_TXNS (sizeof(gen_store_txns) / sizeof(gen_store_txns[0]))

/* Opens a store in a fresh temp dir named after tag, its path in tmp.
 * NULL, with the reason on stderr, if it cannot. */
static inline struct kv_store *gen_store_open(const char *tag, char *tmp, size_t len)
{
	char err[KV_ERR_MAX] = "";
	const char *t = getenv("TMPDIR");
	struct kv_store *s = NULL;
	snprintf(tmp, len, "%s/omnifs-gen-%s-XXXXXX", t && *t ? t : "/tmp", tag);
	if (!mkdtemp(tmp) || kv_open(&s, tmp, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "cannot open a store in %s: %s\n", tmp, err);
		return NULL;
	}
	return s;
}

/* Applies the fixed transactions from kv_applied_idx(s) up to log index
 * upto (exclusive). 0, or non-zero if one failed. */
static inline int gen_store_fill(struct kv_store *s, uint64_t upto)
{
	int rc = 0;
	for (uint64_t i = kv_applied_idx(s); rc == 0 && i < upto && i < GEN_STORE_TXNS; i++) {
		struct kv_txn t;
		struct kv_result res;
		kv_txn_init(&t, gen_store_txns[i].node, gen_store_txns[i].seq);
		rc = kv_txn_add_put(&t, gen_store_txns[i].key, strlen(gen_store_txns[i].key),
				    gen_store_txns[i].val, strlen(gen_store_txns[i].val));
		if (rc == 0)
			rc = kv_apply_txn(s, i, &t, false, &res);
		kv_txn_free(&t);
	}
	return rc;
}

static int gen_store_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

/* Closes s and removes its temp dir tmp. */
static inline void gen_store_remove(struct kv_store **s, const char *tmp)
{
	kv_close(s);
	nftw(tmp, gen_store_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* OMNIFS_TESTS_GEN_STORE_H */
