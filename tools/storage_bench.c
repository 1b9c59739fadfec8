/*
 * omnifs_storage_bench: figures for the two RocksDB stores of a node, so the
 * replica loop can size its group commit. Prints, for a data dir on the
 * given filesystem:
 *   - consensus log: synced write_atomically of 1 entry + decided index, and
 *     of a batch of 64 entries + decided index (latency, entries/s);
 *   - replicated KV: apply of transactions with one 4 KiB PUT, synced each,
 *     and unsynced with one kv_sync per 64 (group commit);
 *   - state transfer: export + import of the resulting state in 1 MiB chunks.
 * It asserts nothing; numbers depend on the disk.
 *
 * Usage (release build):  build/release/tools/omnifs_storage_bench [dir] [n]
 *   dir  where to create a temporary data dir (default $TMPDIR or /tmp)
 *   n    transactions per figure (default 2000)
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"
#include "storage_rocksdb.h"

#define CLUSTER 0xbe7cbe7cull

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void die(const char *what, int rc, const char *msg)
{
	fprintf(stderr, "omnifs_storage_bench: %s: %s (%s)\n", what, strerror(-rc), msg);
	exit(1);
}

static void bench_log(const char *dir, int n)
{
	char path[512], err[512];
	struct opx_rocks *r;
	snprintf(path, sizeof(path), "%s/log", dir);
	int rc = opx_rocks_open(&r, path, CLUSTER, err, sizeof(err));
	if (rc)
		die("open log", rc, err);
	struct opx_storage st = opx_rocks_storage(r);
	uint8_t data[256];
	memset(data, 'e', sizeof(data));
	struct opx_entry es[64];
	for (int i = 0; i < 64; i++)
		es[i] = (struct opx_entry){.data = data, .len = sizeof(data)};
	uint64_t end = 0;

	for (int batch = 1; batch <= 64; batch *= 64) {
		struct opx_storage_op ops[2] = {{.type = OPX_OP_APPEND_ENTRIES},
						{.type = OPX_OP_SET_DECIDED_IDX}};
		ops[0].u.append.entries = es;
		ops[0].u.append.n = (uint32_t)batch;
		int calls = batch == 1 ? n : n / 8;
		double t0 = now_s();
		for (int i = 0; i < calls; i++) {
			end += (uint64_t)batch;
			ops[1].u.idx = end;
			rc = st.ops->write_atomically(st.impl, ops, 2);
			if (rc)
				die("write", rc, opx_rocks_errmsg(r));
		}
		double dt = now_s() - t0;
		printf("log: synced write of %2d x 256 B entries + decided: %8.1f us/write, %9.0f entries/s\n",
		       batch, dt / calls * 1e6, calls * batch / dt);
	}
	opx_rocks_close(&r);
}

static void put_txn(uint64_t i, uint8_t **buf, size_t *len)
{
	static uint8_t val[4096];
	char key[32];
	struct kv_txn t;
	memset(val, (int)(i & 0xff), sizeof(val));
	snprintf(key, sizeof(key), "blk/%08llu", (unsigned long long)(i % 5000));
	kv_txn_init(&t, 1, i + 1);
	if (kv_txn_add_put(&t, key, strlen(key), val, sizeof(val)) || kv_txn_encode(&t, buf, len))
		die("txn", -ENOMEM, "");
	kv_txn_free(&t);
}

static void bench_kv(const char *dir, int n)
{
	char path[512], path2[512], err[KV_ERR_MAX];
	struct kv_store *s, *s2;
	struct kv_result res;
	snprintf(path, sizeof(path), "%s/state", dir);
	int rc = kv_open(&s, path, CLUSTER, err, sizeof(err));
	if (rc)
		die("open state", rc, err);
	for (int mode = 0; mode < 2; mode++) {
		double t0 = now_s();
		for (int i = 0; i < n; i++) {
			uint8_t *buf;
			size_t len;
			uint64_t idx = kv_applied_idx(s);
			put_txn(idx, &buf, &len);
			rc = kv_apply(s, idx, buf, len, mode == 0, &res);
			free(buf);
			if (rc)
				die("apply", rc, kv_errmsg(s));
			if (mode == 1 && i % 64 == 63 && (rc = kv_sync(s)))
				die("sync", rc, kv_errmsg(s));
		}
		double dt = now_s() - t0;
		printf("kv: apply of one 4 KiB put, %-22s %8.1f us/txn, %9.0f txn/s\n",
		       mode == 0 ? "synced each:" : "kv_sync every 64:", dt / n * 1e6, n / dt);
	}

	snprintf(path2, sizeof(path2), "%s/state2", dir);
	rc = kv_open(&s2, path2, CLUSTER, err, sizeof(err));
	if (rc)
		die("open state2", rc, err);
	struct kv_view *v;
	if ((rc = kv_view_open(s, &v)))
		die("view", rc, "");
	double t0 = now_s();
	size_t bytes = 0;
	int chunks = 0;
	bool last = false;
	struct kv_buf cursor = {0};
	if ((rc = kv_import_begin(s2, kv_view_applied_idx(v))))
		die("import", rc, kv_errmsg(s2));
	while (!last) {
		struct kv_buf chunk, next;
		rc = kv_export_chunk(v, cursor.data, cursor.len, 1 << 20, &chunk, &next, &last);
		if (rc)
			die("export", rc, "");
		if ((rc = kv_import_chunk(s2, chunk.data, chunk.len)))
			die("import", rc, kv_errmsg(s2));
		bytes += chunk.len;
		chunks++;
		free(chunk.data);
		free(cursor.data);
		cursor = next;
	}
	free(cursor.data);
	if ((rc = kv_import_finish(s2)))
		die("finish", rc, kv_errmsg(s2));
	double dt = now_s() - t0;
	uint8_t d1[KV_DIGEST_LEN], d2[KV_DIGEST_LEN];
	kv_view_digest(v, d1);
	kv_digest(s2, d2);
	printf("kv: state transfer of %.1f MiB in %d chunks of 1 MiB: %.1f MiB/s, digests %s\n",
	       bytes / 1048576.0, chunks, bytes / 1048576.0 / dt,
	       memcmp(d1, d2, sizeof(d1)) ? "DIFFER" : "equal");
	t0 = now_s();
	kv_view_digest(v, d1);
	printf("kv: digest of the state: %.1f ms\n", (now_s() - t0) * 1e3);
	kv_view_close(&v);
	kv_close(&s2);
	kv_close(&s);
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	const char *base = argc > 1 ? argv[1] : tmp && *tmp ? tmp : "/tmp";
	int n = argc > 2 ? atoi(argv[2]) : 2000;
	char dir[400];
	if (n < 64)
		n = 64;
	snprintf(dir, sizeof(dir), "%s/omnifs-bench-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	printf("data dir %s, %d operations per figure\n", dir, n);
	bench_log(dir, n);
	bench_kv(dir, n);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
