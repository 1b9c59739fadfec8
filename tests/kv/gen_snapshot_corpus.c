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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "gen_store.h"
#include "kv.h"

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
	char tmp[64];
	struct kv_store *s = gen_store_open("snap", tmp, sizeof(tmp));
	if (!s)
		return 1;
	int rc = gen_store_fill(s, 1);
	rc |= snapshot(s, argv[1], "one-key");
	rc |= gen_store_fill(s, GEN_STORE_TXNS);
	rc |= snapshot(s, argv[1], "four-keys");
	gen_store_remove(&s, tmp);
	return rc ? 1 : 0;
}
