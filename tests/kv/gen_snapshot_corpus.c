/*
 * Writes the seed corpus of fuzz_snapshot: real snapshot files
 * (kv_snapshot_write) of a store in a temp dir that applied a few
 * transactions from two proposers (user keys, an empty value, dedup
 * records), with a fixed creation time so the files are the same each run.
 *
 *   kv_gen_snapshot_corpus DIR   (the checked-in copy is tests/kv/fuzz_snapshot_corpus)
 *
 * Regenerate after a change of the snapshot or chunk format.
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

static int snapshot(struct kv_store *s, const char *dir, const char *name)
{
	struct kv_view *v;
	struct kv_snap_info info = {
		.cluster_id = 0x1234, .node_id = 2, .created_ms = 1700000000000};
	char err[256];
	snprintf(info.cluster, sizeof(info.cluster), "seed");
	FILE *f = tmpfile();
	if (!f || kv_view_open(s, &v) != 0)
		return 1;
	int rc = kv_snapshot_write(v, f, &info, NULL, NULL, err, sizeof(err));
	kv_view_close(&v);
	if (rc) {
		fprintf(stderr, "snapshot: %s\n", err);
		fclose(f);
		return 1;
	}
	long len = ftell(f);
	char *buf = malloc((size_t)len);
	rewind(f);
	rc = !buf || fread(buf, 1, (size_t)len, f) != (size_t)len;
	if (!rc)
		rc = corpus_write(dir, name, buf, (size_t)len);
	free(buf);
	fclose(f);
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
	snprintf(tmp, sizeof(tmp), "%s/omnifs-gen-snap-XXXXXX", t && *t ? t : "/tmp");
	struct kv_store *s = NULL;
	if (!mkdtemp(tmp) || kv_open(&s, tmp, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: cannot open a store in %s: %s\n", argv[0], tmp, err);
		return 1;
	}
	int rc = apply(s, 0, 1, 1, "a", "first value");
	rc |= snapshot(s, argv[1], "one-key");
	rc |= apply(s, 1, 2, (uint64_t)3 << 32 | 1, "b/1", "");
	rc |= apply(s, 2, 1, 2, "b/2", "a value of a few more bytes than the others");
	rc |= apply(s, 3, 2, (uint64_t)3 << 32 | 2, "c", "z");
	rc |= snapshot(s, argv[1], "four-keys");
	kv_close(&s);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
}
