/*
 * bench_snapshot: snapshot save, verify and restore throughput in MB/s, on
 * the KV's own code paths (what `omnifsctl snapshot save`, `snapshot
 * verify` and `omnifsd --restore-snapshot` run): a store filled with
 * MIB MiB of values (VALUE bytes each, 64 keys per transaction) in a temp
 * dir under DIR, saved to a file (fsynced), checked offline, restored
 * into a fresh store. MB/s count the snapshot file's bytes.
 *
 *   build/release/tools/bench_snapshot [-d DIR] [-m MIB] [-v VALUE]
 *
 * Defaults: $TMPDIR or /tmp, 256 MiB, 4096-byte values. Prints figures only;
 * never part of the test suite.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

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

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_snapshot: %s: %s\n", what, why);
	exit(1);
}

int main(int argc, char **argv)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	size_t mib = 256, value_len = 4096;
	int opt;
	while ((opt = getopt(argc, argv, "d:m:v:")) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 'm':
			mib = strtoul(optarg, NULL, 10);
			break;
		case 'v':
			value_len = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: bench_snapshot [-d DIR] [-m MIB] [-v VALUE]\n");
			return 2;
		}
	}
	if (!mib || !value_len || value_len > KV_MAX_VALUE_LEN)
		die("usage", "-m and -v must be positive (-v at most 16 MiB)");
	char root[512], src[600], dst[600], file[600], err[KV_ERR_MAX];
	snprintf(root, sizeof(root), "%s/omnifs-bench-snap-XXXXXX", dir);
	if (!mkdtemp(root))
		die(root, strerror(errno));
	snprintf(src, sizeof(src), "%s/src", root);
	snprintf(dst, sizeof(dst), "%s/dst", root);
	snprintf(file, sizeof(file), "%s/snap", root);

	struct kv_store *s = NULL, *d = NULL;
	if (kv_open(&s, src, 1, err, sizeof(err)) != 0)
		die(src, err);
	char *val = malloc(value_len), key[64];
	for (size_t i = 0; i < value_len; i++)
		val[i] = (char)('a' + (i * 7) % 26);
	size_t n_keys = mib * (1u << 20) / value_len, k = 0;
	double t0 = now_s();
	for (uint64_t idx = 0; k < n_keys; idx++) {
		struct kv_txn t;
		struct kv_result res;
		kv_txn_init(&t, 1, idx + 1);
		for (int j = 0; j < 64 && k < n_keys; j++, k++) {
			snprintf(key, sizeof(key), "bench/%010zu", k);
			val[0] = (char)k;
			if (kv_txn_add_put(&t, key, strlen(key), val, value_len) != 0)
				die("txn", "add");
		}
		if (kv_apply_txn(s, idx, &t, false, &res) != 0)
			die("apply", kv_errmsg(s));
		kv_txn_free(&t);
	}
	kv_sync(s);
	printf("filled %zu keys of %zu bytes (%zu MiB) in %.1f s\n", n_keys, value_len, mib,
	       now_s() - t0);

	struct kv_view *v = NULL;
	struct kv_snap_info info = {.cluster_id = 1, .node_id = 1};
	snprintf(info.cluster, sizeof(info.cluster), "bench");
	FILE *f = fopen(file, "w+");
	if (!f || kv_view_open(s, &v) != 0)
		die(file, "open");
	t0 = now_s();
	if (kv_snapshot_write(v, f, &info, NULL, NULL, err, sizeof(err)) != 0)
		die("save", err);
	fflush(f);
	fsync(fileno(f));
	double save = now_s() - t0;
	kv_view_close(&v);
	fclose(f);
	double mb = (double)info.bytes / 1e6;
	printf("save:    %8.1f MB in %6.2f s = %7.1f MB/s (%llu records)\n", mb, save, mb / save,
	       (unsigned long long)info.records);

	f = fopen(file, "r");
	t0 = now_s();
	if (!f || kv_snapshot_read(f, NULL, &info, NULL, NULL, err, sizeof(err)) != 0)
		die("verify", err);
	double verify = now_s() - t0;
	printf("verify:  %8.1f MB in %6.2f s = %7.1f MB/s\n", mb, verify, mb / verify);

	if (kv_open(&d, dst, 2, err, sizeof(err)) != 0)
		die(dst, err);
	rewind(f);
	t0 = now_s();
	if (kv_snapshot_read(f, d, &info, NULL, NULL, err, sizeof(err)) != 0)
		die("restore", err);
	double restore = now_s() - t0;
	fclose(f);
	printf("restore: %8.1f MB in %6.2f s = %7.1f MB/s (import into a fresh store, synced)\n",
	       mb, restore, mb / restore);
	printf("restore as omnifsd --restore-snapshot runs it (verify, then import): %.1f MB/s\n",
	       mb / (verify + restore));
	uint8_t a[KV_DIGEST_LEN], b[KV_DIGEST_LEN];
	if (kv_digest(s, a) != 0 || kv_digest(d, b) != 0 || memcmp(a, b, sizeof(a)) != 0)
		die("restore", "the restored digest differs");
	kv_close(&s);
	kv_close(&d);
	free(val);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
