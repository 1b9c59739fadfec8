/*
 * File history (ofs_history.c) without a mount: its keys and values, the
 * bounds, and determinism. Two nodes, each with its own real KV (RocksDB in
 * a temp dir), propose through a double that applies every transaction to
 * both stores at the same index, as two replicas apply the decided log: the
 * copies of old versions and the trimming are in the transactions, so the
 * stores agree (equal digests) even when the nodes' [history] bounds differ.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"
#include "ofs_history.h"
#include "ofs_int.h"

static const struct ofs_cred root_cr = {0, 0, NULL, 0, 0};

struct fx {
	char dir[2][64];
	struct kv_store *kv[2];
	struct ofs *n[2];
};

/* Applies t to both stores at the next index; res is the first store's. */
static int propose_both(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct fx *f = ctx;
	uint64_t idx = kv_applied_idx(f->kv[0]);
	assert_int_equal(kv_applied_idx(f->kv[1]), idx);
	struct kv_result other;
	int rc = kv_apply_txn(f->kv[0], idx, t, false, res);
	if (rc)
		return rc;
	rc = kv_apply_txn(f->kv[1], idx, t, false, &other);
	assert_int_equal(rc, 0);
	assert_int_equal(other.status, res->status);
	return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static void make_nodes(struct fx *f, void (*tune)(struct ofs_config *, int node))
{
	const char *tmp = getenv("TMPDIR");
	char err[KV_ERR_MAX];
	for (int i = 0; i < 2; i++) {
		snprintf(f->dir[i], sizeof(f->dir[i]), "%s/omnifs-hist-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		assert_non_null(mkdtemp(f->dir[i]));
		assert_int_equal(kv_open(&f->kv[i], f->dir[i], 77, err, sizeof(err)), 0);
	}
	for (int i = 0; i < 2; i++) {
		struct ofs_config c;
		ofs_config_defaults(&c, (uint64_t)i + 1);
		if (tune)
			tune(&c, i + 1);
		/* each node reads its own store, and proposes to both */
		struct ofs_backend b = {.ctx = f, .propose = propose_both, .kv = f->kv[i]};
		f->n[i] = ofs_new(&c, &b);
		assert_non_null(f->n[i]);
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 2; i++) {
		ofs_destroy(&f->n[i]);
		if (f->kv[i]) {
			kv_close(&f->kv[i]);
			assert_int_equal(nftw(f->dir[i], rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
		}
	}
	free(f);
	return 0;
}

static uint64_t lookup(struct ofs *o, uint64_t parent, const char *name)
{
	struct ofs_attr a;
	int rc = ofs_op_lookup(o, parent, name, &a);
	return rc ? 0 : a.ino;
}

/* Writes content over name in the root (creating it). */
static void put(struct ofs *o, const char *name, const char *content)
{
	struct ofs_attr a;
	struct ofs_file *h;
	uint64_t ino = lookup(o, OFS_ROOT_INO, name);
	if (ino)
		assert_int_equal(ofs_op_open(o, ino, O_WRONLY | O_TRUNC, &root_cr, &h), 0);
	else
		assert_int_equal(
			ofs_op_create(o, OFS_ROOT_INO, name, 0644, O_WRONLY, &root_cr, &a, &h), 0);
	assert_int_equal(ofs_op_write(o, h, content, strlen(content), 0), (ssize_t)strlen(content));
	assert_int_equal(ofs_op_release(o, h), 0);
}

/* The history directory of /name on o: its inode, or 0. */
static uint64_t hist_dir(struct ofs *o, const char *name)
{
	uint64_t d = lookup(o, OFS_ROOT_INO, ".omnifs");
	d = d ? lookup(o, d, "history") : 0;
	return d ? lookup(o, d, name) : 0;
}

/* The versions listed for /name on o, as "idx,idx,..." into buf. */
static size_t list_versions(struct ofs *o, const char *name, uint64_t *idx, size_t cap)
{
	struct ofs_dirent_list *l;
	uint64_t d = hist_dir(o, name);
	assert_true(d != 0);
	assert_int_equal(ofs_op_opendir(o, d, &l), 0);
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++) {
		char *end;
		unsigned long long v = strtoull(l->items[i].name, &end, 10);
		if (*end == '\0' && v > 0 && n < cap)
			idx[n++] = v;
	}
	ofs_dirent_list_free(l);
	return n;
}

static void expect_version(struct ofs *o, const char *name, uint64_t idx, const char *want)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)idx);
	uint64_t v = lookup(o, hist_dir(o, name), num);
	assert_true(v != 0);
	struct ofs_file *h;
	char buf[256] = {0};
	assert_int_equal(ofs_op_open(o, v, O_RDONLY, &root_cr, &h), 0);
	assert_int_equal(ofs_op_read(o, h, buf, sizeof(buf) - 1, 0), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(ofs_op_release(o, h), 0);
	/* read-only */
	assert_int_equal(ofs_op_open(o, v, O_WRONLY, &root_cr, &h), -EROFS);
}

static void expect_same_state(struct fx *f)
{
	uint8_t a[KV_DIGEST_LEN], b[KV_DIGEST_LEN];
	assert_int_equal(kv_digest(f->kv[0], a), 0);
	assert_int_equal(kv_digest(f->kv[1], b), 0);
	assert_memory_equal(a, b, KV_DIGEST_LEN);
}

static void test_ofs_history_keys(void **state)
{
	(void)state;
	struct ofs_hkey w, v1, v2, d, p;
	uint64_t ino = 0, idx = 0;
	ofs_hkey_writer(&w, 0x0001000000000007ull);
	ofs_hkey_version(&v1, 0x0001000000000007ull, 9);
	ofs_hkey_version(&v2, 0x0001000000000007ull, 300);
	assert_int_equal(ofs_hkey_parse(w.b, w.len, &ino, &idx), 0);
	assert_int_equal(ino, 0x0001000000000007ull);
	assert_int_equal(ofs_hkey_parse(v2.b, v2.len, &ino, &idx), 1);
	assert_int_equal(idx, 300);
	/* one prefix per file, the writer first, versions in index order */
	assert_true(memcmp(w.b, v1.b, w.len) == 0);
	assert_true(memcmp(v1.b, v2.b, v1.len) < 0);
	assert_int_equal(ofs_hkey_parse(v1.b, v1.len - 1, &ino, &idx), -EBADMSG);
	ofs_hkey_data(&d, 5, 9, 2);
	assert_int_equal(d.len, 26);
	assert_int_equal(ofs_key_kind(d.b, d.len), 0); /* not a file key: the reaper's */
	/* paths */
	const char *path;
	size_t len;
	assert_int_equal(ofs_hkey_path(&p, "/etc/app.conf", 13, 42), 0);
	assert_int_equal(ofs_hkey_parse_path(p.b, p.len, &path, &len, &ino), 0);
	assert_int_equal(len, 13);
	assert_memory_equal(path, "/etc/app.conf", 13);
	assert_int_equal(ino, 42);
	assert_int_equal(ofs_hkey_path(&p, "a\0b", 3, 1), -EINVAL);
	assert_int_equal(ofs_hkey_path(&p, "", 0, 1), -EINVAL);
	p.b[p.len - 9] = 'x';
	assert_int_equal(ofs_hkey_parse_path(p.b, p.len, &path, &len, &ino), -EBADMSG);
	/* values */
	struct ofs_hversion hv = {0100640, 1000, 100, 3, 1001, -5, 12345, 777, true, true}, back;
	uint8_t buf[OFS_HVERSION_LEN];
	ofs_hversion_encode(&hv, buf);
	assert_int_equal(ofs_hversion_decode(&back, buf, sizeof(buf)), 0);
	assert_memory_equal(&back, &hv, sizeof(hv));
	assert_int_equal(ofs_hversion_decode(&back, buf, sizeof(buf) - 1), -EBADMSG);
	buf[0] = 9;
	assert_int_equal(ofs_hversion_decode(&back, buf, sizeof(buf)), -EBADMSG);
	struct ofs_hwriter hw = {2, 0, 99}, hb;
	uint8_t wb[OFS_HWRITER_LEN];
	ofs_hwriter_encode(&hw, wb);
	assert_int_equal(ofs_hwriter_decode(&hb, wb, sizeof(wb)), 0);
	assert_memory_equal(&hb, &hw, sizeof(hw));
}

static size_t count_history_keys(struct kv_store *s, const char *kinds);

static void three_versions(struct ofs_config *c, int node)
{
	(void)node;
	c->hist_versions = 3;
}

/* Edits from both nodes: each keeps the version it replaces, on both
 * stores alike; the per-file bound holds; a deleted file's last version
 * stays, by its path. */
static void test_ofs_history_versions_and_bound(void **state)
{
	struct fx *f = *state;
	make_nodes(f, three_versions);
	put(f->n[0], "app.conf", "v1");
	put(f->n[1], "app.conf", "v2");
	put(f->n[0], "app.conf", "v3");
	uint64_t idx[16];
	assert_int_equal(list_versions(f->n[1], "app.conf", idx, 16), 2);
	expect_version(f->n[1], "app.conf", idx[0], "v1");
	expect_version(f->n[0], "app.conf", idx[1], "v2");
	for (int k = 4; k <= 9; k++) {
		char v[8];
		snprintf(v, sizeof(v), "v%d", k);
		put(f->n[k % 2], "app.conf", v);
	}
	assert_int_equal(list_versions(f->n[0], "app.conf", idx, 16), 3);
	expect_version(f->n[0], "app.conf", idx[0], "v6");
	expect_version(f->n[0], "app.conf", idx[2], "v8");
	/* deleted: still listed, by path */
	assert_int_equal(ofs_op_unlink(f->n[1], OFS_ROOT_INO, "app.conf", &root_cr), 0);
	assert_int_equal(list_versions(f->n[0], "app.conf", idx, 16), 3);
	expect_version(f->n[0], "app.conf", idx[2], "v9");
	/* created again: the old inode's versions and the new one's */
	put(f->n[0], "app.conf", "w1");
	put(f->n[0], "app.conf", "w2");
	assert_int_equal(list_versions(f->n[1], "app.conf", idx, 16), 4);
	expect_version(f->n[1], "app.conf", idx[3], "w1");
	expect_same_state(f);
}

static void tiny_total(struct ofs_config *c, int node)
{
	c->hist_max_total = 10;
	c->hist_max_file = 64;
	/* node 2 keeps one version per file, node 1 the default: still one
	 * state, since what is kept is decided in the transactions */
	if (node == 2)
		c->hist_versions = 1;
}

/* Age and total bounds are enforced by the trim pass, as plain decided
 * deletes; a file over max_file keeps nothing. */
static void test_ofs_history_trim(void **state)
{
	struct fx *f = *state;
	make_nodes(f, tiny_total);
	put(f->n[0], "a", "1234");
	put(f->n[0], "a", "5678");
	put(f->n[0], "a", "abcd");
	put(f->n[0], "b", "1234");
	put(f->n[0], "b", "xyzw");
	uint64_t idx[16];
	assert_int_equal(list_versions(f->n[0], "a", idx, 16), 2);
	assert_int_equal(list_versions(f->n[0], "b", idx, 16), 1);
	put(f->n[1], "a", "efgh"); /* node 2's bound: one version of a */
	assert_int_equal(list_versions(f->n[0], "a", idx, 16), 1);
	expect_version(f->n[0], "a", idx[0], "abcd");
	/* 8 bytes kept, bound 10: nothing to do */
	assert_int_equal(ofs_history_trim(f->n[0], ofs_now_ns()), 0);
	put(f->n[0], "b", "12345678"); /* 4 + 4 + 4: over 10 */
	assert_int_equal(ofs_history_trim(f->n[1], ofs_now_ns()), 1);
	/* kept first, dropped first: b's 1234 (a's abcd was kept after it) */
	assert_int_equal(list_versions(f->n[0], "a", idx, 16), 1);
	assert_int_equal(list_versions(f->n[0], "b", idx, 16), 1);
	expect_version(f->n[1], "b", idx[0], "xyzw");
	/* age: 30 days by default */
	assert_int_equal(ofs_history_trim(f->n[0], ofs_now_ns() + 86400ll * 1000000000), 0);
	assert_int_equal(ofs_history_trim(f->n[0], ofs_now_ns() + 31 * 86400ll * 1000000000), 2);
	assert_int_equal(list_versions(f->n[1], "b", idx, 16), 0);
	/* with their versions, the data and the paths went; the writers of
	 * the two live files stay */
	assert_int_equal(count_history_keys(f->kv[1], "vp"), 0);
	assert_int_equal(count_history_keys(f->kv[1], "h"), 2);
	/* over max_file: no version */
	char big[100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(f->n[0], "big", big);
	put(f->n[0], "big", "small now");
	assert_int_equal(list_versions(f->n[0], "big", idx, 16), 0);
	expect_same_state(f);
}

static void off(struct ofs_config *c, int node)
{
	(void)node;
	c->hist_enabled = false;
}

/* Keys of the given history kinds ("hvp": all) in s. */
static size_t count_history_keys(struct kv_store *s, const char *kinds)
{
	struct kv_view *v;
	struct kv_iter *it;
	const uint8_t *k, *val;
	size_t kl, vl, n = 0;
	uint64_t ver;
	assert_int_equal(kv_view_open(s, &v), 0);
	assert_int_equal(kv_iter_open(v, NULL, 0, NULL, 0, &it), 0);
	while (kv_iter_next(it, &k, &kl, &val, &vl, &ver) == 1)
		n += kl >= 2 && k[0] == 'F' && strchr(kinds, k[1]) != NULL;
	kv_iter_close(&it);
	kv_view_close(&v);
	return n;
}

static void test_ofs_history_off_keeps_nothing(void **state)
{
	struct fx *f = *state;
	make_nodes(f, off);
	put(f->n[0], "a", "1");
	put(f->n[1], "a", "2");
	assert_int_equal(ofs_op_unlink(f->n[0], OFS_ROOT_INO, "a", &root_cr), 0);
	assert_int_equal(count_history_keys(f->kv[0], "hvp"), 0);
	expect_same_state(f);
}

/* A deleted file's version is kept in place: the delete copies no block,
 * the reaper leaves the blocks to the version, and dropping the version
 * takes them, whether the inode was freed before or after. */
static void test_ofs_history_delete_keeps_in_place(void **state)
{
	struct fx *f = *state;
	make_nodes(f, NULL);
	put(f->n[0], "a", "v1");
	put(f->n[0], "a", "v2");
	assert_int_equal(count_history_keys(f->kv[0], "v"), 1); /* v1, copied */
	assert_int_equal(ofs_op_unlink(f->n[1], OFS_ROOT_INO, "a", &root_cr), 0);
	uint64_t idx[16];
	assert_int_equal(list_versions(f->n[0], "a", idx, 16), 2);
	expect_version(f->n[0], "a", idx[1], "v2");
	assert_int_equal(count_history_keys(f->kv[0], "v"), 1); /* nothing copied */
	assert_int_equal(count_history_keys(f->kv[0], "b"), 1);
	/* freed by node 2's reaper (it unlinked it): its blocks stay */
	assert_int_equal(ofs_reap(f->n[1], INT64_MAX), 1);
	assert_int_equal(count_history_keys(f->kv[0], "i"), 1); /* the root alone */
	assert_int_equal(count_history_keys(f->kv[1], "b"), 1);
	expect_version(f->n[1], "a", idx[1], "v2");
	/* the other order: c's version dropped before the reaper frees it */
	put(f->n[0], "c", "c1");
	assert_int_equal(ofs_op_unlink(f->n[0], OFS_ROOT_INO, "c", &root_cr), 0);
	assert_int_equal(count_history_keys(f->kv[0], "b"), 2);
	int64_t later = ofs_now_ns() + 31 * 86400ll * 1000000000;
	assert_int_equal(ofs_history_trim(f->n[1], later), 3);
	/* a's went with its version; c's wait for the reaper */
	assert_int_equal(count_history_keys(f->kv[0], "b"), 1);
	assert_int_equal(ofs_reap(f->n[0], INT64_MAX), 1);
	assert_int_equal(count_history_keys(f->kv[0], "bhvp"), 0);
	assert_int_equal(count_history_keys(f->kv[0], "i"), 1);
	expect_same_state(f);
}

static void second_off(struct ofs_config *c, int node)
{
	if (node == 2)
		c->hist_enabled = false;
}

/* A write through a handle still open on a file renamed over: the version
 * kept in place is copied first, even by a node with history off, so it
 * still reads as it was. */
static void test_ofs_history_write_after_delete(void **state)
{
	struct fx *f = *state;
	make_nodes(f, second_off);
	put(f->n[0], "b", "old");
	struct ofs_file *h;
	assert_int_equal(
		ofs_op_open(f->n[1], lookup(f->n[1], OFS_ROOT_INO, "b"), O_RDWR, &root_cr, &h), 0);
	put(f->n[0], "new", "fresh");
	assert_int_equal(
		ofs_op_rename(f->n[0], OFS_ROOT_INO, "new", OFS_ROOT_INO, "b", 0, &root_cr), 0);
	uint64_t idx[16];
	assert_int_equal(list_versions(f->n[0], "b", idx, 16), 1);
	expect_version(f->n[0], "b", idx[0], "old");
	assert_int_equal(count_history_keys(f->kv[0], "v"), 0);
	assert_int_equal(ofs_op_write(f->n[1], h, "NEW", 3, 0), 3);
	assert_int_equal(ofs_op_release(f->n[1], h), 0);
	assert_int_equal(count_history_keys(f->kv[0], "v"), 1);
	expect_version(f->n[1], "b", idx[0], "old");
	/* the reaper now frees the blocks: the version has its copy */
	assert_int_equal(ofs_reap(f->n[0], INT64_MAX), 1);
	assert_int_equal(count_history_keys(f->kv[0], "b"), 1); /* b's, "fresh" */
	expect_version(f->n[0], "b", idx[0], "old");
	expect_same_state(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ofs_history_keys),
		cmocka_unit_test_setup_teardown(test_ofs_history_versions_and_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_history_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_history_off_keeps_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_history_delete_keeps_in_place, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_history_write_after_delete, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
