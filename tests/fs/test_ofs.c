/*
 * The filesystem's operations without a mount (and without libfuse: this
 * links omnifs_vfs_core): two struct ofs with different node ids over one
 * real KV (the local backend, RocksDB in a temp dir) behave like two nodes
 * at the same applied state. Covers what users rely on: one winner for
 * concurrent creates, inode numbers that never collide or repeat, buffered
 * writes invisible elsewhere until close and then whole, lazy O_TRUNC, one
 * block replicated for a small write, open-unlinked files, errors from the
 * backend, limits, invalidation of kernel caches for other nodes' changes.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "kv.h"
#include "local_backend.h"
#include "ofs_int.h"

/*
 * Every node proposes through a test double of the backend's propose, over
 * one real local backend (kv_apply_txn on RocksDB in a temp dir: the guards
 * are the KV's). The double adds what the tests steer and watch: the next
 * fail_n proposals fail with fail_err without reaching the KV (a replica
 * without quorum, timing out, stopping), and each applied transaction is
 * counted, as an apply hook would see it. Node 1's double first runs a
 * callback once, if set: "another node got there first".
 */
struct fx {
	char dir[64];
	struct ofs_local_backend *lb;
	struct ofs_backend kv; /* the local backend itself */
	int fail_n, fail_err;
	void (*before)(void *arg); /* node 1: once, just before its next proposal */
	void *arg;
	struct ofs *n1, *n2;
	struct ofs_cred cr;
	/* the last applied transaction's counts */
	size_t last_block_puts;
	size_t last_ops;
	struct ofs *watch; /* if set, node 1's applied transactions reach its apply hook */
};

/* Root: the fixture's caller for everything that is not about permissions. */
static const struct ofs_cred root_cr = {0, 0, NULL, 0, 0};

static void count_applied(struct fx *f, const struct kv_txn *t)
{
	f->last_block_puts = 0;
	f->last_ops = t->n_ops;
	for (uint32_t i = 0; i < t->n_ops; i++)
		if (t->ops[i].type == KV_OP_PUT &&
		    ofs_key_kind(t->ops[i].key, t->ops[i].key_len) == OFS_K_BLOCK)
			f->last_block_puts++;
}

static int shared_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct fx *f = ctx;
	if (f->fail_n > 0) {
		f->fail_n--;
		return f->fail_err;
	}
	int rc = f->kv.propose(f->kv.ctx, t, res);
	if (rc == 0 && res->status == KV_APPLIED)
		count_applied(f, t);
	return rc;
}

static int n1_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct fx *f = ctx;
	void (*before)(void *) = f->before;
	f->before = NULL;
	if (before)
		before(f->arg);
	int rc = shared_propose(ctx, t, res);
	if (rc == 0 && res->status == KV_APPLIED && f->watch)
		ofs_on_applied(f->watch, kv_applied_idx(f->kv.kv) - 1, t, false);
	return rc;
}

static void fail_next(struct fx *f, int n, int err)
{
	f->fail_n = n;
	f->fail_err = err;
}

/* Keys in the KV, counted with an iterator over everything. */
/* Every key but the nodes' records (their shares come and go with the
 * changes in flight: usage is checked with ofs_usage). */
static size_t count_keys(struct fx *f)
{
	struct kv_view *v;
	struct kv_iter *it;
	const uint8_t *k, *val;
	size_t kl, vl, n = 0;
	uint64_t ver;
	int rc;
	assert_int_equal(kv_view_open(f->kv.kv, &v), 0);
	assert_int_equal(kv_iter_open(v, NULL, 0, NULL, 0, &it), 0);
	while ((rc = kv_iter_next(it, &k, &kl, &val, &vl, &ver)) == 1)
		n += ofs_key_kind(k, kl) != OFS_K_NODE;
	assert_int_equal(rc, 0);
	kv_iter_close(&it);
	kv_view_close(&v);
	return n;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

/* A temp dir and the local backend in it. */
static void open_kv(struct fx *f)
{
	const char *tmp = getenv("TMPDIR");
	char err[KV_ERR_MAX];
	snprintf(f->dir, sizeof(f->dir), "%s/omnifs-fs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(ofs_local_backend_open(&f->lb, f->dir, 77, &f->kv, err, sizeof(err)), 0);
}

static void close_kv(struct fx *f)
{
	ofs_local_backend_close(&f->lb);
	assert_null(f->lb);
	assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static struct ofs *make_node(struct fx *f, uint64_t id,
			     int (*propose)(void *, const struct kv_txn *, struct kv_result *),
			     void (*tune)(struct ofs_config *))
{
	struct ofs_config c;
	ofs_config_defaults(&c, id);
	if (tune)
		tune(&c);
	struct ofs_backend b = {.ctx = f, .propose = propose, .kv = f->kv.kv};
	struct ofs *o = ofs_new(&c, &b);
	assert_non_null(o);
	return o;
}

static int setup_with(void **state, void (*tune)(struct ofs_config *))
{
	struct fx *f = calloc(1, sizeof(*f));
	open_kv(f);
	f->n1 = make_node(f, 1, n1_propose, tune);
	f->n2 = make_node(f, 2, shared_propose, tune);
	f->cr = root_cr;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

static void tiny(struct ofs_config *c)
{
	c->max_inodes = 5;
	c->max_total_size = 100000;
	c->max_file_size = 70000;
}

static int setup_tiny(void **state)
{
	return setup_with(state, tiny);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ofs_destroy(&f->n1);
	ofs_destroy(&f->n2);
	assert_null(f->n1);
	close_kv(f);
	free(f);
	return 0;
}

static uint64_t mkfile(struct ofs *o, struct fx *f, uint64_t parent, const char *name,
		       const char *content)
{
	struct ofs_attr a;
	struct ofs_file *h;
	assert_int_equal(ofs_op_create(o, parent, name, 0644, O_WRONLY, &f->cr, &a, &h), 0);
	if (content)
		assert_int_equal(ofs_op_write(o, h, content, strlen(content), 0),
				 (ssize_t)strlen(content));
	assert_int_equal(ofs_op_release(o, h), 0);
	return a.ino;
}

static void expect_content(struct ofs *o, uint64_t ino, const char *want)
{
	struct ofs_file *h;
	char buf[256] = {0};
	assert_int_equal(ofs_op_open(o, ino, O_RDONLY, &root_cr, &h), 0);
	ssize_t n = ofs_op_read(o, h, buf, sizeof(buf) - 1, 0);
	assert_int_equal(n, (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(ofs_op_release(o, h), 0);
}

static void test_ofs_root_exists_once(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, b;
	assert_int_equal(ofs_op_getattr(f->n1, OFS_ROOT_INO, &a), 0);
	assert_int_equal(ofs_op_getattr(f->n2, OFS_ROOT_INO, &b), 0);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(a.ctime_ns, b.ctime_ns); /* the same root, not two */
	assert_int_equal(a.nlink, 2);
}

static void n2_mkdir_x(void *arg)
{
	struct fx *f = arg;
	struct ofs_attr a;
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "x", S_IFDIR | 0755, 0, &f->cr, &a), 0);
}

static void test_ofs_concurrent_mkdir_one_winner(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	f->before = n2_mkdir_x; /* node 2 commits between node 1's read and commit */
	f->arg = f;
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "x", S_IFDIR | 0755, 0, &f->cr, &a),
			 -EEXIST);
	struct ofs_stats st;
	ofs_get_stats(f->n1, &st);
	assert_true(st.conflicts >= 1);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "x", &a), 0);
	assert_int_equal(ofs_ino_node(a.ino), 2);
	assert_int_equal(ofs_op_getattr(f->n1, OFS_ROOT_INO, &a), 0);
	assert_int_equal(a.nlink, 3); /* counted once */
}

static void n2_create_y(void *arg)
{
	struct fx *f = arg;
	mkfile(f->n2, f, OFS_ROOT_INO, "y", "from node 2");
}

static void test_ofs_create_in_same_dir_retries(void **state)
{
	struct fx *f = *state;
	f->before = n2_create_y; /* changes the parent node 1 guarded */
	f->arg = f;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "z", "from node 1");
	struct ofs_attr a;
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "z", &a), 0);
	assert_int_equal(a.ino, ino);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "y", &a), 0);
	expect_content(f->n2, ino, "from node 1");
}

static void test_ofs_inode_numbers_never_repeat(void **state)
{
	struct fx *f = *state;
	uint64_t seen[40];
	size_t n = 0;
	char name[16];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		seen[n++] = mkfile(f->n1, f, OFS_ROOT_INO, name, NULL);
		snprintf(name, sizeof(name), "b%d", i);
		seen[n++] = mkfile(f->n2, f, OFS_ROOT_INO, name, NULL);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		assert_int_equal(ofs_op_unlink(f->n1, OFS_ROOT_INO, name, &f->cr), 0);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		seen[n++] = mkfile(f->n1, f, OFS_ROOT_INO, name, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		assert_true(ofs_ino_node(seen[i]) == 1 || ofs_ino_node(seen[i]) == 2);
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(seen[i], seen[j]);
	}
}

/* Node 1's changes spread over the shares of its record (schema.h); a
 * restarted node 1 (a new ofs, its counter in memory gone) still hands out
 * numbers above every one before, whichever share it reads first; and usage
 * is the sum of the shares. */
static void test_ofs_record_shares_survive_a_restart(void **state)
{
	struct fx *f = *state;
	uint64_t seen[2 * OFS_NODE_SHARES + 3];
	size_t n = 0;
	char name[16];
	int64_t bytes0, inodes0, bytes, inodes;
	/* the root's creation took share 0: these take 1 to 15, so share 0,
	 * the one a restarted node reads first, is the oldest */
	const int count = OFS_NODE_SHARES - 1;
	assert_int_equal(ofs_usage(f->n1, &bytes0, &inodes0), 0);
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "a%d", i);
		seen[n++] = mkfile(f->n1, f, OFS_ROOT_INO, name, "12345");
	}
	assert_int_equal(ofs_usage(f->n1, &bytes, &inodes), 0);
	assert_int_equal(bytes - bytes0, 5 * count);
	assert_int_equal(inodes - inodes0, count);

	/* more than one share was written: every change took the next free one */
	struct ofs_key k;
	void *val;
	size_t len;
	uint64_t ver;
	ofs_key_node(&k, 1, 1);
	assert_int_equal(ofs_kv_get(f->n1, k.b, k.len, &val, &len, &ver), 0);
	free(val);

	ofs_destroy(&f->n1);
	f->n1 = make_node(f, 1, n1_propose, NULL);
	/* a number reserved at once (no guard behind it, as for a create that
	 * commits at its close) is above every number handed out before */
	uint64_t fresh;
	assert_int_equal(ofs_ino_reserve(f->n1, &fresh), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(fresh > seen[i]);
	seen[n++] = fresh;
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		seen[n++] = mkfile(f->n1, f, OFS_ROOT_INO, name, NULL);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(seen[i], seen[j]);
}

static void test_ofs_writes_appear_whole_at_close(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "cfg", "old content");
	struct ofs_file *w;
	struct ofs_attr a;
	assert_int_equal(ofs_op_open(f->n1, ino, O_WRONLY | O_TRUNC, &f->cr, &w), 0);
	/* lazy O_TRUNC: nothing committed yet, other nodes still see the old file */
	expect_content(f->n2, ino, "old content");
	assert_int_equal(ofs_op_getattr(f->n1, ino, &a), 0);
	assert_int_equal(a.size, 0); /* ... while this node sees its own truncation */
	assert_int_equal(ofs_op_write(f->n1, w, "new", 3, 0), 3);
	assert_int_equal(ofs_op_write(f->n1, w, " content!", 9, 3), 9);
	/* read-your-writes on the node; closing a reader publishes nothing */
	expect_content(f->n1, ino, "new content!");
	expect_content(f->n2, ino, "old content");
	assert_int_equal(ofs_op_flush(f->n1, w), 0);
	expect_content(f->n2, ino, "new content!");
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	assert_int_equal(ofs_op_getattr(f->n2, ino, &a), 0);
	assert_int_equal(a.size, 12);
}

static void test_ofs_small_write_replicates_one_block(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	size_t big = 16 * OFS_BLOCK_SIZE;
	char *buf = malloc(big);
	memset(buf, 'a', big);
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "big", 0644, O_RDWR, &f->cr, &a, &h),
			 0);
	assert_int_equal(ofs_op_write(f->n1, h, buf, big, 0), (ssize_t)big);
	assert_int_equal(ofs_op_flush(f->n1, h), 0);
	assert_int_equal(f->last_block_puts, 16);
	assert_int_equal(ofs_op_write(f->n1, h, "ZZZZ", 4, 5 * OFS_BLOCK_SIZE + 100), 4);
	assert_int_equal(ofs_op_flush(f->n1, h), 0);
	assert_int_equal(f->last_block_puts, 1);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	/* node 2 reads the merged block: old bytes around the new ones */
	assert_int_equal(ofs_op_open(f->n2, a.ino, O_RDONLY, &f->cr, &h), 0);
	char got[8];
	assert_int_equal(ofs_op_read(f->n2, h, got, 8, 5 * OFS_BLOCK_SIZE + 98), 8);
	assert_memory_equal(got, "aaZZZZaa", 8);
	assert_int_equal(ofs_op_release(f->n2, h), 0);
	free(buf);
}

static void n2_append_to_shared(void *arg)
{
	struct fx *f = arg;
	struct ofs_attr a;
	struct ofs_file *h;
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "shared", &a), 0);
	assert_int_equal(ofs_op_open(f->n2, a.ino, O_WRONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_write(f->n2, h, "2222", 4, 4), 4);
	assert_int_equal(ofs_op_release(f->n2, h), 0);
}

static void test_ofs_concurrent_writes_merge(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "shared", "....");
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(f->n1, ino, O_WRONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_write(f->n1, h, "11", 2, 0), 2);
	f->before = n2_append_to_shared; /* node 2 commits first */
	f->arg = f;
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	expect_content(f->n2, ino, "11..2222"); /* node 1's commit redone on top */
}

static void test_ofs_open_unlinked_file_stays_readable(void **state)
{
	struct fx *f = *state;
	mkfile(f->n1, f, OFS_ROOT_INO, "other", NULL);
	size_t before = count_keys(f);
	int64_t bytes_before, inodes_before, bytes, inodes;
	assert_int_equal(ofs_usage(f->n1, &bytes_before, &inodes_before), 0);
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "ghost", "boo");
	struct ofs_file *h;
	struct ofs_attr a;
	assert_int_equal(ofs_op_open(f->n1, ino, O_RDWR, &f->cr, &h), 0);
	assert_int_equal(ofs_op_unlink(f->n1, OFS_ROOT_INO, "ghost", &f->cr), 0);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "ghost", &a), -ENOENT);
	char buf[8] = {0};
	assert_int_equal(ofs_op_read(f->n1, h, buf, sizeof(buf), 0), 3);
	assert_string_equal(buf, "boo");
	assert_int_equal(ofs_op_write(f->n1, h, "!", 1, 3), 1);
	assert_int_equal(ofs_op_flush(f->n1, h), 0);
	assert_int_equal(ofs_op_getattr(f->n1, ino, &a), 0);
	assert_int_equal(a.nlink, 0);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	/* kept for the grace period (handles on other nodes), then freed:
	 * inode, data, orphan mark and usage */
	assert_int_equal(ofs_reap(f->n1, ofs_now_ns()), 0);
	assert_int_equal(ofs_op_getattr(f->n2, ino, &a), 0);
	assert_int_equal(ofs_reap(f->n2, INT64_MAX), 0); /* not node 2's to free */
	ofs_lookup_ref(f->n1, ino);			 /* the kernel here knows it */
	assert_int_equal(ofs_reap(f->n1, INT64_MAX), 0);
	ofs_forget(f->n1, ino, 1);
	assert_int_equal(ofs_reap(f->n1, INT64_MAX), 1);
	assert_int_equal(ofs_op_getattr(f->n1, ino, &a), -ESTALE);
	/* what stays is the history of the deleted file (on by default): its
	 * version as it was unlinked, that version's one block, and its path */
	assert_int_equal(count_keys(f), before + 3);
	assert_int_equal(ofs_usage(f->n1, &bytes, &inodes), 0);
	assert_int_equal(bytes, bytes_before);
	assert_int_equal(inodes, inodes_before);
}

static void test_ofs_hard_links_count(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, d;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "f", "x");
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &d), 0);
	assert_int_equal(ofs_op_link(f->n2, ino, d.ino, "g", &f->cr, &a), 0);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(ofs_op_link(f->n2, d.ino, OFS_ROOT_INO, "dd", &f->cr, &a), -EPERM);
	assert_int_equal(ofs_op_unlink(f->n1, OFS_ROOT_INO, "f", &f->cr), 0);
	assert_int_equal(ofs_op_getattr(f->n1, ino, &a), 0);
	assert_int_equal(a.nlink, 1);
	expect_content(f->n2, ino, "x");
	/* rename onto another link of the same inode: nothing happens */
	assert_int_equal(ofs_op_link(f->n1, ino, d.ino, "h", &f->cr, &a), 0);
	assert_int_equal(ofs_op_rename(f->n1, d.ino, "g", d.ino, "h", 0, &f->cr), 0);
	assert_int_equal(ofs_op_lookup(f->n1, d.ino, "g", &a), 0);
	assert_int_equal(a.nlink, 2);
}

static void test_ofs_rename_rules(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, b, c, r;
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "a", S_IFDIR | 0755, 0, &f->cr, &a), 0);
	assert_int_equal(ofs_op_mknod(f->n1, a.ino, "b", S_IFDIR | 0755, 0, &f->cr, &b), 0);
	assert_int_equal(ofs_op_mknod(f->n1, b.ino, "c", S_IFDIR | 0755, 0, &f->cr, &c), 0);
	/* into its own subtree */
	assert_int_equal(ofs_op_rename(f->n2, OFS_ROOT_INO, "a", c.ino, "a", 0, &f->cr), -EINVAL);
	assert_int_equal(ofs_op_rename(f->n2, OFS_ROOT_INO, "a", a.ino, "x", 0, &f->cr), -EINVAL);
	/* over a non-empty dir, over a file, file over dir */
	uint64_t fino = mkfile(f->n1, f, OFS_ROOT_INO, "f", "F");
	assert_int_equal(ofs_op_rename(f->n2, b.ino, "c", OFS_ROOT_INO, "a", 0, &f->cr),
			 -ENOTEMPTY);
	assert_int_equal(ofs_op_rename(f->n2, b.ino, "c", OFS_ROOT_INO, "f", 0, &f->cr), -ENOTDIR);
	assert_int_equal(ofs_op_rename(f->n2, OFS_ROOT_INO, "f", a.ino, "b", 0, &f->cr), -EISDIR);
	assert_int_equal(
		ofs_op_rename(f->n2, OFS_ROOT_INO, "f", a.ino, "nf", RENAME_NOREPLACE, &f->cr), 0);
	assert_int_equal(ofs_op_rename(f->n2, a.ino, "nf", a.ino, "b", RENAME_NOREPLACE, &f->cr),
			 -EEXIST);
	/* exchange a file and a dir across parents: link counts follow */
	assert_int_equal(ofs_op_rename(f->n2, a.ino, "nf", b.ino, "c", RENAME_EXCHANGE, &f->cr), 0);
	assert_int_equal(ofs_op_lookup(f->n1, a.ino, "nf", &r), 0);
	assert_int_equal(r.ino, c.ino);
	assert_int_equal(r.parent, a.ino);
	assert_int_equal(ofs_op_lookup(f->n1, b.ino, "c", &r), 0);
	assert_int_equal(r.ino, fino);
	assert_int_equal(ofs_op_getattr(f->n1, a.ino, &r), 0);
	assert_int_equal(r.nlink, 4); /* ., b, nf */
	assert_int_equal(ofs_op_getattr(f->n1, b.ino, &r), 0);
	assert_int_equal(r.nlink, 2);
	/* a dir over an empty dir; the moved dir's ".." follows */
	assert_int_equal(ofs_op_rename(f->n1, a.ino, "nf", OFS_ROOT_INO, "top", 0, &f->cr), 0);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "e", S_IFDIR | 0755, 0, &f->cr, &r), 0);
	assert_int_equal(ofs_op_rename(f->n1, OFS_ROOT_INO, "top", OFS_ROOT_INO, "e", 0, &f->cr),
			 0);
	assert_int_equal(ofs_op_getattr(f->n1, c.ino, &r), 0);
	assert_int_equal(r.parent, OFS_ROOT_INO);
	assert_int_equal(ofs_op_getattr(f->n1, OFS_ROOT_INO, &r), 0);
	assert_int_equal(r.nlink, 4); /* ., a, e */
	assert_int_equal(
		ofs_op_rename(f->n1, OFS_ROOT_INO, ".omnifs", OFS_ROOT_INO, "o", 0, &f->cr),
		-EROFS);
	assert_int_equal(ofs_op_rename(f->n1, OFS_ROOT_INO, "e", OFS_ROOT_INO, "o", 4, &f->cr),
			 -EINVAL);
}

static void test_ofs_remove_errors(void **state)
{
	struct fx *f = *state;
	struct ofs_attr d, s;
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "d", S_IFDIR | 0700, 0, &f->cr, &d), 0);
	mkfile(f->n1, f, d.ino, "in", NULL);
	assert_int_equal(ofs_op_rmdir(f->n2, OFS_ROOT_INO, "d", &f->cr), -ENOTEMPTY);
	assert_int_equal(ofs_op_rmdir(f->n2, d.ino, "in", &f->cr), -ENOTDIR);
	assert_int_equal(ofs_op_unlink(f->n2, OFS_ROOT_INO, "d", &f->cr), -EISDIR);
	assert_int_equal(ofs_op_unlink(f->n2, OFS_ROOT_INO, "none", &f->cr), -ENOENT);
	assert_int_equal(ofs_op_unlink(f->n2, d.ino, "in", &f->cr), 0);
	assert_int_equal(ofs_op_rmdir(f->n2, OFS_ROOT_INO, "d", &f->cr), 0);
	assert_int_equal(ofs_op_getattr(f->n1, d.ino, &s), -ESTALE);
	char name[300];
	memset(name, 'n', sizeof(name));
	name[256] = '\0';
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, name, S_IFREG | 0644, 0, &f->cr, &s),
			 -ENAMETOOLONG);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, name, &s), -ENAMETOOLONG);
	name[255] = '\0';
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, name, S_IFREG | 0644, 0, &f->cr, &s), 0);
	assert_int_equal(
		ofs_op_mknod(f->n1, OFS_ROOT_INO, ".omnifs", S_IFDIR | 0755, 0, &f->cr, &s),
		-EEXIST);
}

static void test_ofs_backend_errors_reach_the_caller(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	fail_next(f, 1, -EROFS);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &a),
			 -EROFS);
	fail_next(f, 1, -ETIMEDOUT);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &a),
			 -ETIMEDOUT);
	fail_next(f, 1, -ESHUTDOWN);
	assert_int_equal(ofs_op_unlink(f->n2, OFS_ROOT_INO, "x", &f->cr), -ENOENT); /* read first */
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &a),
			 -EIO);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "d", &a), -ENOENT);
	/* once cut off, opening for writing fails at once, reading still works;
	 * the probe that finds the quorum back clears it */
	uint64_t rino = mkfile(f->n2, f, OFS_ROOT_INO, "r", "ro");
	struct ofs_file *rh;
	fail_next(f, 2, -EROFS);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &a),
			 -EROFS);
	assert_int_equal(ofs_op_open(f->n2, rino, O_WRONLY, &f->cr, &rh), -EROFS);
	assert_int_equal(ofs_op_open(f->n2, rino, O_RDONLY, &f->cr, &rh), 0);
	assert_int_equal(ofs_op_release(f->n2, rh), 0);
	assert_int_equal(ofs_op_open(f->n2, rino, O_RDWR, &f->cr, &rh), 0);
	assert_int_equal(ofs_op_release(f->n2, rh), 0);
	/* a write whose commit fails reports it at close */
	uint64_t ino = mkfile(f->n2, f, OFS_ROOT_INO, "f", "v1");
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(f->n2, ino, O_WRONLY | O_TRUNC, &f->cr, &h), 0);
	assert_int_equal(ofs_op_write(f->n2, h, "v2", 2, 0), 2);
	fail_next(f, 1, -EROFS);
	assert_int_equal(ofs_op_flush(f->n2, h), -EROFS);
	assert_int_equal(ofs_op_release(f->n2, h), 0); /* the retry at release works */
	expect_content(f->n1, ino, "v2");
}

static void test_ofs_limits(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	struct ofs_statfs s;
	assert_int_equal(ofs_op_statfs(f->n1, &s), 0);
	assert_int_equal(s.files, 5);
	assert_int_equal(s.ffree, 4); /* the root */
	assert_int_equal(s.namemax, 255);
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "f", 0644, O_RDWR, &f->cr, &a, &h), 0);
	char *buf = calloc(1, 80000);
	assert_int_equal(ofs_op_write(f->n1, h, buf, 80000, 0), -EFBIG);
	assert_int_equal(ofs_op_write(f->n1, h, buf, 60000, 0), 60000);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	assert_int_equal(ofs_op_create(f->n2, OFS_ROOT_INO, "g", 0644, O_RDWR, &f->cr, &a, &h), 0);
	assert_int_equal(ofs_op_write(f->n2, h, buf, 50000, 0), -ENOSPC); /* 110000 > 100000 */
	assert_int_equal(ofs_op_write(f->n2, h, buf, 30000, 0), 30000);
	assert_int_equal(ofs_op_release(f->n2, h), 0);
	struct ofs_setattr sa = {.mask = OFS_SET_SIZE, .size = 90000};
	assert_int_equal(ofs_op_setattr(f->n2, a.ino, &sa, &f->cr, &a), -EFBIG);
	sa.size = 50000;
	assert_int_equal(ofs_op_setattr(f->n2, a.ino, &sa, &f->cr, &a), -ENOSPC);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "h", S_IFREG, 0, &f->cr, &a), 0);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "i", S_IFREG, 0, &f->cr, &a), 0);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "j", S_IFREG, 0, &f->cr, &a), -ENOSPC);
	assert_int_equal(ofs_op_statfs(f->n2, &s), 0);
	assert_int_equal(s.ffree, 0);
	assert_int_equal(s.bfree, (100000 / 4096) - (90000 + 4095) / 4096);
	/* freeing on one node makes room for the other (once reaped) */
	assert_int_equal(ofs_op_unlink(f->n2, OFS_ROOT_INO, "f", &f->cr), 0);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "j", S_IFREG, 0, &f->cr, &a), -ENOSPC);
	assert_int_equal(ofs_reap(f->n2, INT64_MAX), 1);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "j", S_IFREG, 0, &f->cr, &a), 0);
	free(buf);
}

static void test_ofs_truncate_and_sparse(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	size_t n = 3 * OFS_BLOCK_SIZE;
	char *buf = malloc(n);
	memset(buf, 'q', n);
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "t", 0644, O_RDWR, &f->cr, &a, &h), 0);
	assert_int_equal(ofs_op_write(f->n1, h, buf, n, 0), (ssize_t)n);
	assert_int_equal(ofs_op_flush(f->n1, h), 0);
	struct ofs_setattr sa = {.mask = OFS_SET_SIZE, .size = 100};
	assert_int_equal(ofs_op_setattr(f->n1, a.ino, &sa, &f->cr, &a), 0);
	sa.size = 2 * OFS_BLOCK_SIZE; /* grow again: the old bytes must not come back */
	assert_int_equal(ofs_op_setattr(f->n1, a.ino, &sa, &f->cr, &a), 0);
	memset(buf, 'x', n);
	assert_int_equal(ofs_op_read(f->n1, h, buf, n, 0), (ssize_t)(2 * OFS_BLOCK_SIZE));
	for (size_t i = 0; i < 2 * OFS_BLOCK_SIZE; i++)
		if (buf[i] != (i < 100 ? 'q' : 0))
			fail_msg("byte %zu is %d", i, buf[i]);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	free(buf);
}

/* A file whose middle block was never written (a hole between two stored
 * blocks) and whose last block is short reads back zeros exactly in the
 * hole and past the short block, at any offset (the read fills the caller's
 * buffer itself, which holds other bytes before). */
static void test_ofs_read_holes_between_blocks(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	const size_t bs = OFS_BLOCK_SIZE, n = 3 * OFS_BLOCK_SIZE;
	char *buf = malloc(n);
	memset(buf, 'a', bs);
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "holes", 0644, O_RDWR, &f->cr, &a, &h),
			 0);
	assert_int_equal(ofs_op_write(f->n1, h, buf, bs, 0), (ssize_t)bs);
	memset(buf, 'c', 10);
	assert_int_equal(ofs_op_write(f->n1, h, buf, 10, 2 * bs + 5), 10);
	assert_int_equal(ofs_op_flush(f->n1, h), 0);
	assert_int_equal(ofs_op_release(f->n1, h), 0);

	/* Expected byte i: 'a' in block 0, 'c' at 2 bs + 5 .. + 15, else 0. */
	const size_t size = 2 * bs + 15;
	const size_t offs[] = {0, 7, bs - 3, bs + 9, 2 * bs, 2 * bs + 6};
	assert_int_equal(ofs_op_open(f->n1, a.ino, O_RDONLY, &f->cr, &h), 0);
	for (size_t k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
		memset(buf, 'x', n);
		ssize_t got = ofs_op_read(f->n1, h, buf, n, offs[k]);
		assert_int_equal(got, (ssize_t)(size - offs[k]));
		for (size_t i = 0; i < (size_t)got; i++) {
			size_t at = offs[k] + i;
			char want = at < bs ? 'a' : at >= 2 * bs + 5 ? 'c' : 0;
			if (buf[i] != want)
				fail_msg("read at %zu: byte %zu is %d, not %d", offs[k], at, buf[i],
					 want);
		}
	}
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	free(buf);
}

static void test_ofs_xattrs(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "f", NULL);
	char buf[64];
	assert_int_equal(ofs_op_setxattr(f->n1, ino, "user.a", "1", 1, XATTR_REPLACE, &f->cr),
			 -ENODATA);
	assert_int_equal(ofs_op_setxattr(f->n1, ino, "user.a", "1", 1, XATTR_CREATE, &f->cr), 0);
	assert_int_equal(ofs_op_setxattr(f->n2, ino, "user.a", "2", 1, XATTR_CREATE, &f->cr),
			 -EEXIST);
	assert_int_equal(ofs_op_setxattr(f->n2, ino, "user.a", "22", 2, XATTR_REPLACE, &f->cr), 0);
	assert_int_equal(ofs_op_setxattr(f->n2, ino, "user.b", "", 0, 0, &f->cr), 0);
	assert_int_equal(ofs_op_getxattr(f->n1, ino, "user.a", NULL, 0), 2);
	assert_int_equal(ofs_op_getxattr(f->n1, ino, "user.a", buf, 1), -ERANGE);
	assert_int_equal(ofs_op_getxattr(f->n1, ino, "user.a", buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "22", 2);
	assert_int_equal(ofs_op_listxattr(f->n1, ino, NULL, 0), 14);
	assert_int_equal(ofs_op_listxattr(f->n1, ino, buf, 5), -ERANGE);
	assert_int_equal(ofs_op_listxattr(f->n1, ino, buf, sizeof(buf)), 14);
	assert_memory_equal(buf, "user.a\0user.b\0", 14);
	assert_int_equal(ofs_op_removexattr(f->n1, ino, "user.a", &f->cr), 0);
	assert_int_equal(ofs_op_removexattr(f->n1, ino, "user.a", &f->cr), -ENODATA);
	assert_int_equal(ofs_op_getxattr(f->n2, ino, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(ofs_op_setxattr(f->n1, ino, "system.posix_acl_access", "x", 1, 0, &f->cr),
			 -EOPNOTSUPP);
}

static void test_ofs_invalidates_for_other_nodes_only(void **state)
{
	struct fx *f = *state;
	uint64_t ino = mkfile(f->n2, f, OFS_ROOT_INO, "watched", "1");
	struct ofs_attr a;
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "watched", &a), 0);
	ofs_lookup_ref(f->n1, a.ino); /* the kernel on node 1 knows it */
	/* node 2's next change, fed to node 1's apply hook */
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	struct ofs_key k;
	ofs_key_inode(&k, ino);
	assert_int_equal(kv_txn_add_put(&t, k.b, k.len, "x", 1), 0);
	ofs_key_dirent(&k, OFS_ROOT_INO, "other", 5);
	assert_int_equal(kv_txn_add_delete(&t, k.b, k.len), 0);
	ofs_key_block(&k, ino + 1, 0); /* an inode node 1's kernel never saw */
	assert_int_equal(kv_txn_add_put(&t, k.b, k.len, "x", 1), 0);
	ofs_key_block(&k, ino, 0); /* ino again: told once for the entry */
	assert_int_equal(kv_txn_add_put(&t, k.b, k.len, "x", 1), 0);
	ofs_on_applied(f->n1, 10, &t, true);
	struct inval_item *it;
	assert_false(ofs_inval_pop(f->n1, &it)); /* own entries: nothing */
	/* Other nodes' entries: every inode and name they touch that this
	 * node's kernel may cache; while a request that gives the kernel an
	 * inode runs (its reply may hold the state before the entry, its inode
	 * not counted yet), every one. */
	struct ofs_stats st0, st1;
	for (uint64_t idx = 11; idx <= 12; idx++) {
		bool lookup_running = idx == 12;
		ofs_get_stats(f->n1, &st0);
		if (lookup_running)
			ofs_entry_reply_begin(f->n1);
		ofs_on_applied(f->n1, idx, &t, false);
		if (lookup_running)
			ofs_entry_reply_end(f->n1);
		assert_true(ofs_inval_pop(f->n1, &it));
		assert_int_equal(it->ino, ino);
		assert_null(it->name);
		assert_int_equal(it->covers, 2); /* a barrier counts both keys */
		free(it);
		assert_true(ofs_inval_pop(f->n1, &it));
		assert_int_equal(it->ino, OFS_ROOT_INO);
		assert_string_equal(it->name, "other");
		free(it->name);
		free(it);
		ofs_get_stats(f->n1, &st1);
		if (lookup_running) {
			assert_true(ofs_inval_pop(f->n1, &it));
			assert_int_equal(it->ino, ino + 1);
			assert_null(it->name);
			free(it);
			assert_int_equal(st1.invals_unheld, st0.invals_unheld);
		} else {
			assert_int_equal(st1.invals_unheld, st0.invals_unheld + 1);
		}
		assert_false(ofs_inval_pop(f->n1, &it));
	}
	/* Forgotten by the kernel: nothing of it is cached any more. */
	ofs_forget(f->n1, ino, 1);
	ofs_get_stats(f->n1, &st0);
	ofs_on_applied(f->n1, 13, &t, false);
	assert_true(ofs_inval_pop(f->n1, &it));
	assert_int_equal(it->ino, OFS_ROOT_INO); /* the root is always held */
	free(it->name);
	free(it);
	assert_false(ofs_inval_pop(f->n1, &it));
	ofs_get_stats(f->n1, &st1);
	assert_int_equal(st1.invals_unheld, st0.invals_unheld + 3);
	kv_txn_free(&t);
}

/* The next replay item node 2 queued for node 1's changes (NULL: none). */
static struct ofs_replay_item *next_replay(struct fx *f)
{
	bool stopped;
	return ofs_replay_pop(f->n2, ofs_now_ns() + 1000000, &stopped);
}

static struct ofs_replay_item *expect_replay(struct fx *f, enum ofs_replay_kind kind)
{
	struct ofs_replay_item *it = next_replay(f);
	assert_non_null(it);
	assert_int_equal(it->kind, kind);
	return it;
}

/*
 * The node records a node keeps in memory follow the applied state: moved
 * along by its apply hook, read again when an entry came without the hook.
 * Every commit guards its share's version and takes an inode number from
 * them, so a wrong version would fail the creates (each change takes the
 * next share: 20 creates reuse shares the hook updated), a wrong counter
 * would repeat a number, and a wrong sum would show in the usage.
 */
static void test_ofs_node_records_follow_the_state(void **state)
{
	struct fx *f = *state;
	int64_t b0, i0, b, i;
	char name[16];
	uint64_t inos[22];
	assert_int_equal(ofs_usage(f->n1, &b0, &i0), 0);
	f->watch = f->n1; /* node 1's changes reach its own hook */
	uint64_t conflicts = f->n1->stats.conflicts;
	for (int k = 0; k < 20; k++) {
		snprintf(name, sizeof(name), "f%d", k);
		inos[k] = mkfile(f->n1, f, OFS_ROOT_INO, name, "abc");
		assert_int_equal(ofs_usage(f->n1, &b, &i), 0);
		assert_int_equal(b, b0 + 3 * (k + 1));
		assert_int_equal(i, i0 + k + 1);
	}
	/* Not one guard failed: each version the table gave was right. */
	assert_int_equal(f->n1->stats.conflicts, conflicts);
	/* Node 2's change reaches no hook of node 1: its table is behind. */
	inos[20] = mkfile(f->n2, f, OFS_ROOT_INO, "g", "hello");
	assert_int_equal(ofs_usage(f->n1, &b, &i), 0);
	assert_int_equal(b, b0 + 65);
	assert_int_equal(i, i0 + 21);
	inos[21] = mkfile(f->n1, f, OFS_ROOT_INO, "h", "z");
	assert_int_equal(ofs_usage(f->n1, &b, &i), 0);
	assert_int_equal(b, b0 + 66);
	assert_int_equal(i, i0 + 22);
	assert_int_equal(ofs_usage(f->n2, &b, &i), 0);
	assert_int_equal(b, b0 + 66);
	assert_int_equal(i, i0 + 22);
	for (int k = 0; k < 22; k++)
		for (int j = 0; j < k; j++)
			assert_true(inos[j] != inos[k]);
	f->watch = NULL;
}

/* a holds the inode's attributes as the state has them now. */
static bool is_today(struct ofs *o, const struct ofs_attr *a)
{
	struct ofs_attr t;
	return ofs_read_attr(o, a->ino, &t, NULL) == 0 && t.mode == a->mode &&
	       t.nlink == a->nlink && t.size == a->size && t.mtime_ns == a->mtime_ns &&
	       t.ctime_ns == a->ctime_ns && t.change == a->change;
}

/*
 * What node 2 replays on its mount for inotify, for node 1's changes: one
 * item per change, of the kind the change is, with the names as they were
 * before it and its paths as they were then; nothing for usage-only
 * changes and for freeing an unlinked file.
 */
static void test_ofs_replays_other_nodes_changes(void **state)
{
	struct fx *f = *state;
	struct ofs_replay_item *it;
	struct ofs_attr a, d;
	struct ofs_setattr sa = {0};
	char path[256];
	uint64_t old = mkfile(f->n1, f, OFS_ROOT_INO, "old", "1"); /* before: name unknown */
	ofs_replay_enable(f->n2);
	f->watch = f->n2;

	/* A file whose name node 2 never saw: found by a scan of the names. */
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(f->n1, old, O_WRONLY, &root_cr, &h), 0);
	assert_int_equal(ofs_op_write(f->n1, h, "2", 1, 0), 1);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	it = expect_replay(f, OFS_REPLAY_MODIFY);
	assert_int_equal(ofs_replay_path(f->n2, it, old, NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/old");
	ofs_replay_item_free(it);

	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &d), 0);
	it = expect_replay(f, OFS_REPLAY_CREATE);
	assert_string_equal(it->to.name, "d");
	assert_false(it->to.present);
	assert_int_equal(it->after.ino, d.ino);
	assert_true(S_ISDIR(it->after.mode));
	ofs_replay_item_free(it);

	/* A name made in a directory node 2's kernel does not hold: no watch
	 * there could see it, no item (replay.c: only_new_names_unseen). */
	struct ofs_attr q;
	struct ofs_stats st0, st1;
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "q", S_IFDIR | 0755, 0, &f->cr, &q), 0);
	ofs_replay_item_free(expect_replay(f, OFS_REPLAY_CREATE)); /* the root is held */
	ofs_get_stats(f->n2, &st0);
	mkfile(f->n1, f, q.ino, "unseen", "x");
	assert_null(next_replay(f));
	ofs_get_stats(f->n2, &st1);
	assert_int_equal(st1.replays_unseen, st0.replays_unseen + 1);
	/* d held from here on, as a watch on it holds it: items for it. */
	ofs_lookup_ref(f->n2, d.ino);

	uint64_t ino = mkfile(f->n1, f, d.ino, "f", "hello");
	it = expect_replay(f, OFS_REPLAY_CREATE);
	assert_int_equal(it->to.parent, d.ino);
	assert_int_equal(it->after.ino, ino);
	assert_int_equal(ofs_replay_path(f->n2, it, d.ino, "f", path, sizeof(path)), 0);
	assert_string_equal(path, "/d/f");
	/* created with its content in one change: one item, which knows the
	 * size (the replay's create reports IN_MODIFY too) */
	assert_int_equal(it->after.size, 5);
	assert_false(it->attrib); /* no setattr came with it */
	ofs_replay_item_free(it);
	/* content written later: its own item */
	struct ofs_file *w;
	assert_int_equal(ofs_op_open(f->n1, ino, O_WRONLY, &root_cr, &w), 0);
	assert_int_equal(ofs_op_write(f->n1, w, "!", 1, 5), 1);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	it = expect_replay(f, OFS_REPLAY_MODIFY);
	assert_int_equal(it->ino, ino);
	assert_int_equal(ofs_replay_path(f->n2, it, ino, NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/d/f");
	ofs_replay_item_free(it);

	sa.mask = OFS_SET_MODE;
	sa.mode = 0600;
	assert_int_equal(ofs_op_setattr(f->n1, ino, &sa, &root_cr, &a), 0);
	it = expect_replay(f, OFS_REPLAY_ATTRIB);
	assert_false(it->mtime_only);
	ofs_replay_item_free(it);
	sa.mask = OFS_SET_MTIME;
	sa.mtime_ns = 1000000000;
	assert_int_equal(ofs_op_setattr(f->n1, ino, &sa, &root_cr, &a), 0);
	it = expect_replay(f, OFS_REPLAY_ATTRIB);
	assert_true(it->mtime_only); /* IN_MODIFY, as utimensat makes it */
	ofs_replay_item_free(it);
	assert_int_equal(ofs_op_setxattr(f->n1, ino, "user.k", "v", 1, 0, &root_cr), 0);
	ofs_replay_item_free(expect_replay(f, OFS_REPLAY_ATTRIB));
	sa.mask = OFS_SET_SIZE;
	sa.size = 2;
	assert_int_equal(ofs_op_setattr(f->n1, ino, &sa, &root_cr, &a), 0);
	it = expect_replay(f, OFS_REPLAY_MODIFY);
	assert_false(it->attrib);
	ofs_replay_item_free(it);
	/* A writer's setattrs committed with its data (ofs_fold.c): content,
	 * and attributes too (IN_MODIFY and IN_ATTRIB); data alone is not. */
	const struct ofs_cred writer = {0, 0, NULL, 0, 4242};
	assert_int_equal(ofs_op_open(f->n1, ino, O_WRONLY, &writer, &w), 0);
	assert_int_equal(ofs_op_write(f->n1, w, "ab", 2, 0), 2);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	it = expect_replay(f, OFS_REPLAY_MODIFY);
	assert_false(it->attrib);
	ofs_replay_item_free(it);
	assert_int_equal(ofs_op_open(f->n1, ino, O_WRONLY, &writer, &w), 0);
	assert_int_equal(ofs_op_write(f->n1, w, "abc", 3, 0), 3);
	sa.mask = OFS_SET_MODE;
	sa.mode = 0640;
	assert_int_equal(ofs_op_setattr(f->n1, ino, &sa, &writer, &a), 0);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	it = expect_replay(f, OFS_REPLAY_MODIFY);
	assert_true(it->attrib);
	ofs_replay_item_free(it);
	/* the same for a file created with its data */
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "made", 0600, O_WRONLY | O_CREAT, &writer, &a, &w), 0);
	assert_int_equal(ofs_op_write(f->n1, w, "x", 1, 0), 1);
	sa.mask = OFS_SET_UID;
	sa.uid = 5;
	assert_int_equal(ofs_op_setattr(f->n1, a.ino, &sa, &writer, &a), 0);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	it = expect_replay(f, OFS_REPLAY_CREATE);
	assert_true(it->attrib);
	ofs_replay_item_free(it);
	/* a new link changes the ctime alone: no attributes set */
	assert_int_equal(ofs_op_link(f->n1, a.ino, d.ino, "made2", &root_cr, &a), 0);
	it = expect_replay(f, OFS_REPLAY_CREATE);
	assert_false(it->attrib);
	ofs_replay_item_free(it);
	assert_int_equal(ofs_op_unlink(f->n1, d.ino, "made2", &root_cr), 0);
	ofs_replay_item_free(expect_replay(f, OFS_REPLAY_REMOVE));
	assert_int_equal(ofs_op_unlink(f->n1, d.ino, "made", &root_cr), 0);
	ofs_replay_item_free(expect_replay(f, OFS_REPLAY_REMOVE));
	assert_true(ofs_reap(f->n1, ofs_now_ns() + 60 * INT64_C(1000000000)) >= 1);

	/* A rename: the source as it was, the target absent then. */
	assert_int_equal(ofs_op_rename(f->n1, d.ino, "f", OFS_ROOT_INO, "g", 0, &root_cr), 0);
	it = expect_replay(f, OFS_REPLAY_RENAME);
	assert_true(it->from.present);
	assert_int_equal(it->from.attr.ino, ino);
	assert_int_equal(it->from.parent, d.ino);
	assert_false(it->to.present);
	assert_string_equal(it->to.name, "g");
	ofs_replay_item_free(it);

	/* Removals, replayed after the directory is gone: the paths are those
	 * before each change, which the kernel still has then. */
	uint64_t ino2 = mkfile(f->n1, f, d.ino, "h", NULL);
	ofs_replay_item_free(expect_replay(f, OFS_REPLAY_CREATE));
	assert_int_equal(ofs_op_unlink(f->n1, d.ino, "h", &root_cr), 0);
	assert_int_equal(ofs_op_rmdir(f->n1, OFS_ROOT_INO, "d", &root_cr), 0);
	it = expect_replay(f, OFS_REPLAY_REMOVE);
	assert_int_equal(it->from.attr.ino, ino2);
	assert_int_equal(ofs_replay_path(f->n2, it, d.ino, "h", path, sizeof(path)), 0);
	assert_string_equal(path, "/d/h");
	/* The replay's lookups on the way answer as then: d is still there.
	 * Attributes said to be today's (those the kernel may keep) are. */
	bool now;
	assert_int_equal(ofs_replay_lookup(f->n2, OFS_ROOT_INO, "d", &a, &now), 1);
	assert_int_equal(a.ino, d.ino);
	assert_true(!now || is_today(f->n2, &a));
	assert_int_equal(ofs_replay_lookup(f->n2, d.ino, "h", &a, &now), 1);
	assert_int_equal(a.ino, ino2);
	/* The inode the removal unlinks: the kernel drops its link count
	 * itself after the call, so the answer is for the call only. */
	assert_false(now);
	assert_int_equal(ofs_replay_getattr(f->n2, ino2, &a, &now), 1);
	assert_false(now);
	assert_int_equal(ofs_replay_getattr(f->n2, d.ino, &a, &now), 1);
	assert_true(!now || is_today(f->n2, &a));
	/* The root still exists: its attributes as they are now, to keep. */
	assert_int_equal(ofs_replay_getattr(f->n2, OFS_ROOT_INO, &a, &now), 1);
	assert_true(now);
	assert_true(is_today(f->n2, &a));
	assert_int_equal(ofs_replay_lookup(f->n2, OFS_ROOT_INO, "none", &a, &now), -ENOENT);
	ofs_replay_set_current(f->n2, NULL);
	assert_int_equal(ofs_replay_lookup(f->n2, OFS_ROOT_INO, "d", &a, &now), 0);
	ofs_replay_item_free(it);
	it = expect_replay(f, OFS_REPLAY_REMOVE);
	assert_true(S_ISDIR(it->from.attr.mode));
	ofs_replay_item_free(it);
	assert_null(next_replay(f));

	/* Freeing the unlinked file later: no event. */
	assert_true(ofs_reap(f->n1, ofs_now_ns() + 60 * INT64_C(1000000000)) >= 1);
	assert_null(next_replay(f));
	f->watch = NULL;
	ofs_replay_disable(f->n2);
}

/* The replay queue never grows past its bound, and an item that waited too
 * long is dropped at its turn: both counted, never queued without end. */
static void test_ofs_replay_queue_is_bounded(void **state)
{
	struct fx *f = *state;
	struct ofs_stats st;
	struct ofs_setattr sa = {.mask = OFS_SET_MODE};
	struct ofs_attr a;
	uint64_t ino = mkfile(f->n1, f, OFS_ROOT_INO, "f", "x");
	ofs_replay_enable(f->n2);
	f->watch = f->n2;
	for (uint32_t i = 0; i < OFS_REPLAY_QUEUE_MAX + 3; i++) {
		sa.mode = (i & 1) ? 0600 : 0644;
		assert_int_equal(ofs_op_setattr(f->n1, ino, &sa, &root_cr, &a), 0);
	}
	ofs_get_stats(f->n2, &st);
	assert_int_equal(st.replays_queued, OFS_REPLAY_QUEUE_MAX);
	assert_int_equal(st.replays_dropped, 3);
	assert_int_equal(st.replays_pending, OFS_REPLAY_QUEUE_MAX);
	/* The oldest waited past the delay: dropped at its turn. */
	f->n2->rp_head->queued_ns = 0;
	struct ofs_replay_item *it = next_replay(f);
	assert_non_null(it);
	assert_true(it->queued_ns > 0);
	ofs_replay_set_current(f->n2, NULL);
	ofs_replay_item_free(it);
	ofs_get_stats(f->n2, &st);
	assert_int_equal(st.replays_dropped, 4);
	assert_int_equal(st.replays_pending, OFS_REPLAY_QUEUE_MAX - 2);
	f->watch = NULL;
	ofs_replay_disable(f->n2);
}

static void bound_4(struct ofs_config *c)
{
	c->inval_queue_max = 4;
}

static int setup_bound_4(void **state)
{
	return setup_with(state, bound_4);
}

/* A transaction of another node putting n keys: dirents name0.. in dir, or
 * (dir 0) inodes first.. */
static void feed_puts(struct fx *f, uint64_t dir, uint64_t first, int n)
{
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	for (int i = 0; i < n; i++) {
		struct ofs_key k;
		char name[16];
		snprintf(name, sizeof(name), "name%d", i);
		if (dir)
			ofs_key_dirent(&k, dir, name, strlen(name));
		else
			ofs_key_inode(&k, first + (uint64_t)i);
		assert_int_equal(kv_txn_add_put(&t, k.b, k.len, "x", 1), 0);
	}
	ofs_on_applied(f->n1, 100, &t, false);
	kv_txn_free(&t);
}

/* What an expansion asked the kernel, one "ino" or "ino/name" per call. */
struct told {
	char lines[64][48];
	size_t n;
};

static void record(void *ctx, uint64_t ino, const char *name, size_t name_len)
{
	struct told *t = ctx;
	assert_true(t->n < 64);
	if (name)
		snprintf(t->lines[t->n++], 48, "%llu/%.*s", (unsigned long long)ino, (int)name_len,
			 name);
	else
		snprintf(t->lines[t->n++], 48, "%llu", (unsigned long long)ino);
}

static bool was_told(const struct told *t, uint64_t ino, const char *name)
{
	char want[48];
	if (name)
		snprintf(want, sizeof(want), "%llu/%s", (unsigned long long)ino, name);
	else
		snprintf(want, sizeof(want), "%llu", (unsigned long long)ino);
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->lines[i], want) == 0)
			return true;
	return false;
}

/*
 * A flood of other nodes' changes past the queue's bound (4 here) turns
 * coarser, never into nothing: names become their whole directory, then
 * the whole queue one "everything" that accounts for every change queued,
 * and that tells the kernel about every inode it knows and the names in its
 * directories. A state transfer queues "everything" too.
 */
static void test_ofs_invalidation_degrades_never_drops(void **state)
{
	struct fx *f = *state;
	struct ofs_attr d;
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &d), 0);
	uint64_t fa = mkfile(f->n2, f, d.ino, "a", "1");
	uint64_t fb = mkfile(f->n2, f, d.ino, "b", "2");
	ofs_lookup_ref(f->n1, d.ino); /* node 1's kernel knows d and d/a */
	ofs_lookup_ref(f->n1, fa);
	/* A lookup runs throughout: the inodes below that node 1's kernel does
	 * not hold are queued too (drop_unheld). */
	ofs_entry_reply_begin(f->n1);

	/* Up to the bound: names as they are; past it, their directory. */
	feed_puts(f, OFS_ROOT_INO, 0, 4);
	feed_puts(f, d.ino, 0, 3);
	struct ofs_stats st;
	ofs_get_stats(f->n1, &st);
	assert_int_equal(st.invals_queued, 7);
	assert_int_equal(st.invals_coarse, 3);
	assert_int_equal(st.invals_overflow, 0);
	struct inval_item *it = f->n1->iq_head;
	for (int i = 0; i < 4; i++, it = it->next) {
		assert_int_equal(it->kind, OFS_INVAL_ENTRY);
		assert_int_equal(it->ino, OFS_ROOT_INO);
		assert_non_null(it->name);
	}
	assert_int_equal(it->kind, OFS_INVAL_DIR); /* one for the three names */
	assert_int_equal(it->ino, d.ino);
	assert_int_equal(it->covers, 3);
	assert_null(it->next);
	/* ... and for a name in it after another change: still one */
	feed_puts(f, 0, 500, 1);
	feed_puts(f, d.ino, 0, 1);
	assert_int_equal(it->covers, 4);
	assert_int_equal(it->next->kind, OFS_INVAL_INODE);
	assert_null(it->next->next);

	/* Past twice the bound: one "everything" for all of it and for what
	 * comes until the thread takes it. */
	feed_puts(f, 0, 1000, 9);
	ofs_get_stats(f->n1, &st);
	assert_int_equal(st.invals_queued, 18);
	assert_int_equal(st.invals_coarse, 4);
	assert_int_equal(st.invals_overflow, 1);
	assert_true(ofs_inval_pop(f->n1, &it));
	assert_int_equal(it->kind, OFS_INVAL_ALL);
	assert_int_equal(it->covers, 18); /* every change queued: none dropped */
	struct told told = {.n = 0};
	assert_int_equal(ofs_inval_expand(f->n1, it, record, &told), 0);
	assert_true(was_told(&told, OFS_ROOT_INO, NULL));
	assert_true(was_told(&told, OFS_ROOT_INO, "d"));
	assert_true(was_told(&told, d.ino, NULL));
	assert_true(was_told(&told, d.ino, "a"));
	assert_true(was_told(&told, d.ino, "b"));
	assert_true(was_told(&told, fa, NULL));
	assert_false(was_told(&told, fb, NULL)); /* the kernel never saw it */
	ofs_inval_done(f->n1, it);
	free(it);
	assert_false(ofs_inval_pop(f->n1, &it));

	/* Taken: what follows is queued as it comes again. */
	feed_puts(f, OFS_ROOT_INO, 0, 1);
	assert_true(ofs_inval_pop(f->n1, &it));
	assert_int_equal(it->kind, OFS_INVAL_ENTRY);
	assert_string_equal(it->name, "name0");
	free(it->name);
	free(it);

	/* The replica switched to a transferred state. */
	ofs_apply_hook(f->n1, 200, NULL, false);
	ofs_get_stats(f->n1, &st);
	assert_int_equal(st.invals_replaced, 1);
	assert_true(ofs_inval_pop(f->n1, &it));
	assert_int_equal(it->kind, OFS_INVAL_ALL);
	assert_int_equal(it->covers, 1);
	free(it);
	assert_false(ofs_inval_pop(f->n1, &it));
	ofs_entry_reply_end(f->n1);
}

static int render(void *ctx, enum ofs_status_file which, char *buf, size_t cap)
{
	const char *s = which == OFS_STATUS_JSON    ? "{\"role\":\"leader\"}"
			: which == OFS_METRICS_TEXT ? "omnifs_x 1\n"
						    : "[1,2,3]";
	size_t n = strlen(s);
	if (n > cap)
		return -ENOSPC;
	memcpy(buf, s, n);
	return (int)n;
}

static void test_ofs_status_files(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	struct ofs_dirent_list *l;
	char buf[64] = {0};
	ofs_set_status_source(f->n1, render, NULL);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, ".omnifs", &a), 0);
	assert_int_equal(ofs_op_lookup(f->n1, a.ino, "status.json", &a), 0);
	assert_int_equal(a.size, 17);
	assert_int_equal(ofs_op_open(f->n1, a.ino, O_RDONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_read(f->n1, h, buf, sizeof(buf), 0), 17);
	assert_string_equal(buf, "{\"role\":\"leader\"}");
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	assert_int_equal(ofs_op_open(f->n1, a.ino, O_WRONLY, &f->cr, &h), -EROFS);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_VINO_DIR, "x", S_IFREG, 0, &f->cr, &a), -EROFS);
	assert_int_equal(ofs_op_opendir(f->n1, OFS_ROOT_INO, &l), 0);
	assert_int_equal(l->n, 3);
	assert_string_equal(l->items[2].name, ".omnifs");
	ofs_dirent_list_free(l);
	/* metrics: the same source, its own file, listed with the others */
	uint64_t dir = OFS_VINO_DIR;
	assert_int_equal(ofs_op_lookup(f->n1, dir, "metrics", &a), 0);
	assert_int_equal(a.size, 11);
	assert_true(ofs_ino_is_virtual(a.ino));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(ofs_op_open(f->n1, a.ino, O_RDONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_read(f->n1, h, buf, sizeof(buf), 0), 11);
	assert_string_equal(buf, "omnifs_x 1\n");
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	assert_int_equal(ofs_op_open(f->n1, a.ino, O_RDWR, &f->cr, &h), -EROFS);
	assert_int_equal(ofs_op_opendir(f->n1, dir, &l), 0);
	bool listed = false;
	for (size_t i = 0; i < l->n; i++)
		listed = listed || strcmp(l->items[i].name, "metrics") == 0;
	assert_true(listed);
	ofs_dirent_list_free(l);
	assert_int_equal(ofs_op_lookup(f->n1, dir, "metric", &a), -ENOENT);
}

static uint64_t commits_of(struct ofs *o)
{
	struct ofs_stats st;
	ofs_get_stats(o, &st);
	return st.commits;
}

static bool listed(struct ofs *o, uint64_t dir, const char *name, uint64_t *ino)
{
	struct ofs_dirent_list *l;
	bool found = false;
	assert_int_equal(ofs_op_opendir(o, dir, &l), 0);
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0) {
			found = true;
			if (ino)
				*ino = l->items[i].ino;
		}
	ofs_dirent_list_free(l);
	return found;
}

/*
 * A create without O_EXCL commits nothing at open: its name is this node's
 * at once (lookup, getattr, readdir, another handle's open and read), other
 * nodes see nothing, and the close commits name, inode and data in one
 * transaction, after which every node sees the whole file.
 */
static void test_ofs_create_commits_once_with_its_data(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, b;
	struct ofs_file *w, *r;
	uint64_t c0 = commits_of(f->n1), ino;
	assert_int_equal(
		ofs_op_create(f->n1, OFS_ROOT_INO, "new", 0640, O_WRONLY | O_CREAT, &f->cr, &a, &w),
		0);
	assert_int_equal(commits_of(f->n1), c0); /* nothing yet */
	assert_int_equal(ofs_op_write(f->n1, w, "hello", 5, 0), 5);
	/* this node: visible at once, with its buffered content */
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "new", &b), 0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(b.size, 5);
	assert_int_equal(b.mode, S_IFREG | 0640);
	assert_int_equal(ofs_op_getattr(f->n1, a.ino, &b), 0);
	assert_int_equal(b.nlink, 1);
	assert_true(listed(f->n1, OFS_ROOT_INO, "new", &ino));
	assert_int_equal(ino, a.ino);
	expect_content(f->n1, a.ino, "hello");
	assert_int_equal(ofs_op_getxattr(f->n1, a.ino, "user.x", NULL, 0), -ENODATA);
	assert_int_equal(ofs_op_listxattr(f->n1, a.ino, NULL, 0), 0);
	/* another local create of the name opens the same file */
	assert_int_equal(
		ofs_op_create(f->n1, OFS_ROOT_INO, "new", 0600, O_RDONLY | O_CREAT, &f->cr, &b, &r),
		0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(ofs_op_release(f->n1, r), 0); /* a reader's close commits nothing */
	/* ... and names already taken on this node count as taken */
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "new", 0644,
				       O_WRONLY | O_CREAT | O_EXCL, &f->cr, &b, &r),
			 -EEXIST);
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "new", S_IFDIR | 0755, 0, &f->cr, &b),
			 -EEXIST);
	assert_int_equal(commits_of(f->n1), c0);
	/* other nodes: nothing yet */
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "new", &b), -ENOENT);
	assert_false(listed(f->n2, OFS_ROOT_INO, "new", NULL));
	assert_int_equal(ofs_op_getattr(f->n2, a.ino, &b), -ESTALE);
	/* the close: one transaction with everything */
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	assert_int_equal(commits_of(f->n1), c0 + 1);
	assert_int_equal(f->last_block_puts, 1);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "new", &b), 0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(b.size, 5);
	assert_int_equal(b.mode, S_IFREG | 0640);
	expect_content(f->n2, a.ino, "hello");
	assert_int_equal(ofs_op_getattr(f->n2, OFS_ROOT_INO, &b), 0);
	assert_int_equal(b.mtime_ns, b.ctime_ns); /* the parent's times too */
	struct ofs_statfs sfs;
	assert_int_equal(ofs_op_statfs(f->n2, &sfs), 0);
	assert_int_equal(sfs.files - sfs.ffree, 2); /* root and new: counted once */
	/* a create that writes nothing commits at its close too */
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "empty", 0644, O_WRONLY | O_CREAT,
				       &f->cr, &a, &w),
			 0);
	assert_int_equal(ofs_op_flush(f->n1, w), 0);
	assert_int_equal(commits_of(f->n1), c0 + 2);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "empty", &b), 0);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	assert_int_equal(commits_of(f->n1), c0 + 2);
}

static void n2_excl_create_x(void *arg)
{
	struct fx *f = arg;
	struct ofs_attr a;
	struct ofs_file *h;
	assert_int_equal(ofs_op_create(f->n2, OFS_ROOT_INO, "x", 0644, O_WRONLY | O_CREAT | O_EXCL,
				       &f->cr, &a, &h),
			 0);
	assert_int_equal(ofs_op_release(f->n2, h), 0);
}

/* O_EXCL needs the cluster's answer at open: such a create commits there,
 * and of two nodes' creates of one name, one gets EEXIST. */
static void test_ofs_excl_create_one_winner(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	f->before = n2_excl_create_x; /* node 2 commits between node 1's read and commit */
	f->arg = f;
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "x", 0644, O_WRONLY | O_CREAT | O_EXCL,
				       &f->cr, &a, &h),
			 -EEXIST);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "x", &a), 0);
	assert_int_equal(ofs_ino_node(a.ino), 2);
	/* an O_EXCL create is on every node once open returns */
	uint64_t c0 = commits_of(f->n1);
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "y", 0644, O_WRONLY | O_CREAT | O_EXCL,
				       &f->cr, &a, &h),
			 0);
	assert_int_equal(commits_of(f->n1), c0 + 1);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "y", &a), 0);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
}

/*
 * Another node commits the name first: this node's commit fails with
 * EEXIST and never replaces that file (it may be a lock file someone holds
 * a lock on); the last close forgets the new file.
 */
static void test_ofs_create_finds_its_name_taken(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, b;
	struct ofs_file *w;
	assert_int_equal(
		ofs_op_create(f->n1, OFS_ROOT_INO, "p", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w),
		0);
	assert_int_equal(ofs_op_write(f->n1, w, "one", 3, 0), 3);
	uint64_t other = mkfile(f->n2, f, OFS_ROOT_INO, "p", "two");
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "p", &b), 0);
	assert_int_equal(b.ino, a.ino); /* this node still sees its own */
	assert_int_equal(ofs_op_flush(f->n1, w), -EEXIST);
	assert_int_equal(ofs_op_release(f->n1, w), -EEXIST); /* the last close gives up */
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "p", &b), 0);
	assert_int_equal(b.ino, other);
	expect_content(f->n1, other, "two");
	assert_int_equal(ofs_op_getattr(f->n1, a.ino, &b), -ESTALE);

	/* the same with a directory under the name, and a lock's commit */
	assert_int_equal(
		ofs_op_create(f->n1, OFS_ROOT_INO, "q", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w),
		0);
	assert_int_equal(ofs_op_mknod(f->n2, OFS_ROOT_INO, "q", S_IFDIR | 0755, 0, &f->cr, &b), 0);
	assert_int_equal(ofs_pending_commit_ino(f->n1, a.ino), -ESTALE);
	assert_int_equal(ofs_op_release(f->n1, w), -EEXIST);
	assert_int_equal(ofs_op_lookup(f->n1, OFS_ROOT_INO, "q", &b), 0);
	assert_true(S_ISDIR(b.mode));
	/* a lock's commit of a free name: committed, as any other */
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "lock", 0644, O_WRONLY | O_CREAT,
				       &f->cr, &a, &w),
			 0);
	assert_int_equal(ofs_pending_commit_ino(f->n1, a.ino), 0);
	assert_int_equal(ofs_op_lookup(f->n2, OFS_ROOT_INO, "lock", &b), 0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(ofs_pending_commit_ino(f->n1, a.ino), 0); /* nothing left to do */
	assert_int_equal(ofs_op_release(f->n1, w), 0);
}

/* A change that needs the new file in the applied state commits it first. */
static void test_ofs_create_committed_before_namespace_changes(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a, b, d;
	struct ofs_file *w, *v;
	assert_int_equal(ofs_op_mknod(f->n1, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f->cr, &d), 0);
	/* rename before close (write, rename into place, close) */
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "tmp", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w), 0);
	assert_int_equal(ofs_op_write(f->n1, w, "abc", 3, 0), 3);
	assert_int_equal(ofs_op_rename(f->n1, d.ino, "tmp", d.ino, "final", 0, &f->cr), 0);
	assert_int_equal(ofs_op_lookup(f->n2, d.ino, "final", &b), 0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(ofs_op_lookup(f->n2, d.ino, "tmp", &b), -ENOENT);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	expect_content(f->n2, a.ino, "abc");
	/* rmdir of a directory holding a new file: not empty */
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "more", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w), 0);
	assert_int_equal(ofs_op_unlink(f->n1, d.ino, "final", &f->cr), 0);
	assert_int_equal(ofs_op_rmdir(f->n1, OFS_ROOT_INO, "d", &f->cr), -ENOTEMPTY);
	assert_int_equal(ofs_op_lookup(f->n2, d.ino, "more", &b), 0);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	/* unlink of a new file still open: gone, and its handle still works */
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "gone", 0644, O_RDWR | O_CREAT, &f->cr, &a, &w), 0);
	assert_int_equal(ofs_op_unlink(f->n1, d.ino, "gone", &f->cr), 0);
	assert_int_equal(ofs_op_lookup(f->n1, d.ino, "gone", &b), -ENOENT);
	assert_int_equal(ofs_op_write(f->n1, w, "zz", 2, 0), 2);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	/* chmod, link and xattrs of a new file */
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "attrs", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w), 0);
	struct ofs_setattr sa = {.mask = OFS_SET_MODE, .mode = 0600};
	assert_int_equal(ofs_op_setattr(f->n1, a.ino, &sa, &f->cr, &b), 0);
	assert_int_equal(ofs_op_getattr(f->n2, a.ino, &b), 0);
	assert_int_equal(b.mode, S_IFREG | 0600);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	assert_int_equal(
		ofs_op_create(f->n1, d.ino, "linked", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &w), 0);
	assert_int_equal(ofs_op_link(f->n1, a.ino, d.ino, "alias", &f->cr, &b), 0);
	assert_int_equal(b.nlink, 2);
	assert_int_equal(ofs_op_setxattr(f->n1, a.ino, "user.k", "v", 1, 0, &f->cr), 0);
	assert_int_equal(ofs_op_release(f->n1, w), 0);
	assert_int_equal(ofs_op_getxattr(f->n2, a.ino, "user.k", NULL, 0), 1);
	/* a create over an existing name opens that file, O_TRUNC lazily */
	uint64_t e = mkfile(f->n2, f, d.ino, "exists", "old content");
	assert_int_equal(ofs_op_create(f->n1, d.ino, "exists", 0644, O_WRONLY | O_CREAT | O_TRUNC,
				       &f->cr, &a, &v),
			 0);
	assert_int_equal(a.ino, e);
	assert_int_equal(a.size, 0);
	expect_content(f->n2, e, "old content");
	assert_int_equal(ofs_op_write(f->n1, v, "new", 3, 0), 3);
	assert_int_equal(ofs_op_release(f->n1, v), 0);
	expect_content(f->n2, e, "new");
	assert_int_equal(
		ofs_op_create(f->n1, OFS_ROOT_INO, "d", 0644, O_WRONLY | O_CREAT, &f->cr, &a, &v),
		-EISDIR);
}

/* The inode limit counts creates not committed yet. */
static void test_ofs_create_limits_count_pending(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h[5];
	/* root + 4 more: the fifth new file is refused at open */
	for (int i = 0; i < 4; i++) {
		char name[8];
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, name, 0644, O_WRONLY | O_CREAT,
					       &f->cr, &a, &h[i]),
				 0);
	}
	assert_int_equal(ofs_op_create(f->n1, OFS_ROOT_INO, "n4", 0644, O_WRONLY | O_CREAT, &f->cr,
				       &a, &h[4]),
			 -ENOSPC);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ofs_op_release(f->n1, h[i]), 0);
	struct ofs_statfs s;
	assert_int_equal(ofs_op_statfs(f->n2, &s), 0);
	assert_int_equal(s.ffree, 0);
}

/* The check a flush defers on: does a process hold a file open for that
 * access under a directory (here a real one, the test's own descriptors)? */
static void test_ofs_proc_has_open(void **state)
{
	struct fx *f = *state;
	char path[128], *real = realpath(f->dir, NULL);
	assert_non_null(real);
	snprintf(path, sizeof(path), "%s/probe", real);
	int w = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(w >= 0);
	struct stat st;
	assert_int_equal(fstat(w, &st), 0);
	int d = dup(w);
	assert_true(d >= 0);
	assert_true(ofs_proc_has_open(getpid(), real, st.st_ino, O_WRONLY));
	assert_false(ofs_proc_has_open(getpid(), real, st.st_ino, O_RDONLY));
	/* A file here that nothing holds open (the store's own files are open
	 * under this directory too, so a made-up inode number could be one). */
	char closed[160];
	snprintf(closed, sizeof(closed), "%s/closed", real);
	int c = open(closed, O_WRONLY | O_CREAT, 0600);
	assert_true(c >= 0);
	struct stat cst;
	assert_int_equal(fstat(c, &cst), 0);
	close(c);
	assert_false(ofs_proc_has_open(getpid(), real, cst.st_ino, O_WRONLY));
	assert_int_equal(unlink(closed), 0);
	assert_false(ofs_proc_has_open(getpid(), "/nonexistent", st.st_ino, O_WRONLY));
	assert_false(ofs_proc_has_open(0, real, st.st_ino, O_WRONLY));
	close(w);
	assert_true(ofs_proc_has_open(getpid(), real, st.st_ino, O_WRONLY)); /* the dup */
	close(d);
	assert_false(ofs_proc_has_open(getpid(), real, st.st_ino, O_WRONLY));
	assert_int_equal(unlink(path), 0);
	free(real);
}

/* Two nodes straight on the local backend, without the test double in
 * between (as ofs_local_mount runs): guards, versions and prefixes as
 * kv_apply_txn implements them. */
static void test_ofs_over_the_kv(void **state)
{
	struct fx f = {.cr = root_cr};
	open_kv(&f);
	struct ofs_config c;
	ofs_config_defaults(&c, 1);
	struct ofs *o1 = ofs_new(&c, &f.kv);
	c.node_id = 2;
	struct ofs *o2 = ofs_new(&c, &f.kv);
	assert_non_null(o1);
	assert_non_null(o2);
	struct ofs_attr a;
	assert_int_equal(ofs_op_mknod(o1, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f.cr, &a), 0);
	assert_int_equal(ofs_op_mknod(o2, OFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &f.cr, &a),
			 -EEXIST);
	uint64_t ino = mkfile(o2, &f, a.ino, "f", "over rocksdb");
	expect_content(o1, ino, "over rocksdb");
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(o1, ino, O_WRONLY | O_TRUNC, &f.cr, &h), 0);
	assert_int_equal(ofs_op_write(o1, h, "new", 3, 0), 3);
	assert_int_equal(ofs_op_release(o1, h), 0);
	expect_content(o2, ino, "new");
	assert_int_equal(ofs_op_rename(o2, a.ino, "f", OFS_ROOT_INO, "g", 0, &f.cr), 0);
	assert_int_equal(ofs_op_unlink(o1, OFS_ROOT_INO, "g", &f.cr), 0);
	assert_int_equal(ofs_op_rmdir(o1, OFS_ROOT_INO, "d", &f.cr), 0);
	struct ofs_dirent_list *l;
	assert_int_equal(ofs_op_opendir(o2, OFS_ROOT_INO, &l), 0);
	assert_int_equal(l->n, 3); /* ., .., .omnifs */
	ofs_dirent_list_free(l);
	ofs_destroy(&o1);
	ofs_destroy(&o2);
	close_kv(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ofs_root_exists_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_concurrent_mkdir_one_winner, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_create_in_same_dir_retries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_inode_numbers_never_repeat, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_writes_appear_whole_at_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_small_write_replicates_one_block, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_concurrent_writes_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_record_shares_survive_a_restart, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_open_unlinked_file_stays_readable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_hard_links_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_rename_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_remove_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_backend_errors_reach_the_caller, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_limits, setup_tiny, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_truncate_and_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_read_holes_between_blocks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_node_records_follow_the_state, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_replays_other_nodes_changes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_replay_queue_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_invalidates_for_other_nodes_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_invalidation_degrades_never_drops,
						setup_bound_4, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_status_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_create_commits_once_with_its_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_excl_create_one_winner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_create_finds_its_name_taken, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_create_committed_before_namespace_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_create_limits_count_pending, setup_tiny,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_proc_has_open, setup, teardown),
		cmocka_unit_test(test_ofs_over_the_kv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
