/*
 * Snapshot files: a store written to a file while it goes on applying reads
 * back with the header's index and digest, and restores into a fresh store
 * of another cluster with the same digest. A truncated file, a flipped byte,
 * a wrong format version, a file that is no snapshot and trailing bytes are
 * each refused with their own message, and a refused restore leaves the
 * store untouched.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "kvt.h"

struct fixture {
	char dir[256];
	char pa[300], pb[300];
	struct kv_store *a, *b;
	uint8_t *file; /* a snapshot of a, written by setup */
	size_t file_len;
	struct kv_snap_info info;
	uint8_t digest_at_snap[KV_DIGEST_LEN];
};

static void put(struct kv_store *s, const char *key, size_t value_len, uint64_t node)
{
	struct kv_txn t;
	struct kv_result res;
	char *val = malloc(value_len + 1);
	assert_non_null(val);
	memset(val, 'v', value_len);
	kv_txn_init(&t, node, kv_applied_idx(s) + 1);
	assert_int_equal(kv_txn_add_put(&t, key, strlen(key), val, value_len), 0);
	assert_int_equal(kvt_apply(s, &t, &res), 0);
	assert_int_equal(res.status, KV_APPLIED);
	free(val);
}

static void progress(void *ctx, uint64_t bytes)
{
	*(uint64_t *)ctx = bytes;
}

/* Once for the group: a store of 301 entries (one value bigger than a
 * chunk) and a snapshot of it taken while it goes on applying. */
static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || kvt_mkdtemp(f->dir, sizeof(f->dir))) {
		free(f);
		return -1;
	}
	snprintf(f->pa, sizeof(f->pa), "%s/a", f->dir);
	snprintf(f->pb, sizeof(f->pb), "%s/b", f->dir);
	f->a = kvt_open(f->pa);
	char err[KV_ERR_MAX];
	char key[32];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "key/%04d", i);
		put(f->a, key, (size_t)(i % 7) * 1000 + 1, 1 + (uint64_t)(i % 3));
	}
	put(f->a, "big", 5u << 20, 9); /* more than one chunk */

	/* The view is the snapshot; applies after it stay out of the file. */
	struct kv_view *v;
	assert_int_equal(kv_view_open(f->a, &v), 0);
	assert_int_equal(kv_view_digest(v, f->digest_at_snap), 0);
	put(f->a, "after", 10, 1);
	FILE *out = tmpfile();
	assert_non_null(out);
	f->info.cluster_id = KVT_CLUSTER;
	snprintf(f->info.cluster, sizeof(f->info.cluster), "test-cluster");
	f->info.node_id = 2;
	f->info.created_ms = 1700000000000;
	uint64_t seen = 0;
	assert_int_equal(kv_snapshot_write(v, out, &f->info, progress, &seen, err, sizeof(err)), 0);
	kv_view_close(&v);
	assert_int_equal(f->info.applied_idx, 301);
	assert_memory_equal(f->info.digest, f->digest_at_snap, KV_DIGEST_LEN);
	assert_int_equal(f->info.records, 301 + 4); /* keys + dedup of nodes 1, 2, 3, 9 */
	assert_true(seen > 0 && seen <= f->info.bytes);
	f->file_len = (size_t)ftell(out);
	assert_int_equal(f->file_len, f->info.bytes);
	f->file = malloc(f->file_len);
	rewind(out);
	assert_int_equal(fread(f->file, 1, f->file_len, out), f->file_len);
	fclose(out);
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	kv_close(&f->a);
	kvt_rmtree(f->dir);
	free(f->file);
	free(f);
	return 0;
}

/* Each test: a fresh, empty store b of another cluster. */
static int setup(void **state)
{
	struct fixture *f = *state;
	char err[KV_ERR_MAX];
	kvt_rmtree(f->pb);
	return kv_open(&f->b, f->pb, 0x5eed, err, sizeof(err)) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	kv_close(&f->b);
	return 0;
}

/* Reads len bytes of buf as a snapshot (into dst if not NULL). */
static int read_bytes(const uint8_t *buf, size_t len, struct kv_store *dst,
		      struct kv_snap_info *info, char *err, size_t err_len)
{
	FILE *in = tmpfile();
	assert_non_null(in);
	assert_int_equal(fwrite(buf, 1, len, in), len);
	rewind(in);
	int rc = kv_snapshot_read(in, dst, info, NULL, NULL, err, err_len);
	fclose(in);
	return rc;
}

static void test_kv_snapshot_round_trip(void **state)
{
	struct fixture *f = *state;
	struct kv_snap_info info;
	char err[256] = "";
	assert_int_equal(read_bytes(f->file, f->file_len, NULL, &info, err, sizeof(err)), 0);
	assert_int_equal(info.version, KV_SNAP_VERSION);
	assert_int_equal(info.cluster_id, KVT_CLUSTER);
	assert_string_equal(info.cluster, "test-cluster");
	assert_int_equal(info.node_id, 2);
	assert_int_equal(info.created_ms, 1700000000000);
	assert_int_equal(info.applied_idx, 301);
	assert_int_equal(info.records, f->info.records);
	assert_int_equal(info.bytes, f->file_len);
	assert_memory_equal(info.digest, f->digest_at_snap, KV_DIGEST_LEN);
}

static void test_kv_snapshot_restore(void **state)
{
	struct fixture *f = *state;
	struct kv_snap_info info;
	char err[256] = "";
	assert_int_equal(read_bytes(f->file, f->file_len, f->b, &info, err, sizeof(err)), 0);
	assert_int_equal(kv_applied_idx(f->b), 301);
	uint8_t d[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(f->b, d), 0);
	assert_memory_equal(d, f->digest_at_snap, KV_DIGEST_LEN);
	char *v = kvt_get(f->b, "key/0003", NULL);
	assert_non_null(v);
	assert_int_equal(strlen(v), 3001);
	free(v);
	assert_null(kvt_get(f->b, "after", NULL));
	/* Once restored, the store is not behind the snapshot any more. */
	assert_int_equal(read_bytes(f->file, f->file_len, f->b, &info, err, sizeof(err)), -ESTALE);
}

/* A refused file leaves the store as it was. */
static void refused(struct fixture *f, const uint8_t *buf, size_t len, const char *want)
{
	struct kv_snap_info info;
	char err[256] = "";
	assert_int_equal(read_bytes(buf, len, f->b, &info, err, sizeof(err)), -EBADMSG);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not say \"%s\"", err, want);
	assert_int_equal(kv_applied_idx(f->b), 0);
	assert_null(kvt_get(f->b, "key/0001", NULL));
}

static void test_kv_snapshot_truncated(void **state)
{
	struct fixture *f = *state;
	size_t cuts[] = {0, 5, 30, 100, f->file_len / 2, f->file_len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		refused(f, f->file, cuts[i], "truncated");
}

static void test_kv_snapshot_bad_checksum(void **state)
{
	struct fixture *f = *state;
	uint8_t *c = malloc(f->file_len);
	memcpy(c, f->file, f->file_len);
	c[f->file_len - 5] ^= 1; /* the checksum itself */
	refused(f, c, f->file_len, "checksum mismatch");
	memcpy(c, f->file, f->file_len);
	c[30] ^= 0x40; /* the header's node id */
	refused(f, c, f->file_len, "checksum mismatch");
	memcpy(c, f->file, f->file_len);
	c[f->file_len / 2] ^= 0x01; /* inside the big value */
	refused(f, c, f->file_len, "damaged");
	free(c);
}

static void test_kv_snapshot_wrong_version(void **state)
{
	struct fixture *f = *state;
	uint8_t *c = malloc(f->file_len);
	memcpy(c, f->file, f->file_len);
	c[8] = KV_SNAP_VERSION + 1;
	refused(f, c, f->file_len, "format version 2");
	memcpy(c, f->file, 8);
	c[0] = 'X';
	refused(f, c, f->file_len, "not an omnifs snapshot");
	free(c);
}

static void test_kv_snapshot_trailing_bytes(void **state)
{
	struct fixture *f = *state;
	uint8_t *c = malloc(f->file_len + 1);
	memcpy(c, f->file, f->file_len);
	c[f->file_len] = 0;
	refused(f, c, f->file_len + 1, "bytes after the trailer");
	free(c);
}

static void test_kv_snapshot_empty_state(void **state)
{
	struct fixture *f = *state;
	struct kv_view *v;
	struct kv_snap_info info = {.cluster_id = 1};
	char err[256] = "";
	snprintf(info.cluster, sizeof(info.cluster), "x");
	FILE *out = tmpfile();
	assert_int_equal(kv_view_open(f->b, &v), 0);
	assert_int_equal(kv_snapshot_write(v, out, &info, NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	kv_view_close(&v);
	fclose(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kv_snapshot_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_bad_checksum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_wrong_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_trailing_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_snapshot_empty_state, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
