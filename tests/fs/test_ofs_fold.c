/*
 * Setattrs folded into the commit of a file's buffered writes
 * (fs/vfs/ofs_fold.c), without a mount: two struct ofs over one real KV
 * (the local backend, RocksDB in a temp dir) act as two nodes. What tar and
 * cp -a do to each file (write, then set times, owner and mode through the
 * descriptor, then close) costs one commit at the close, not one per call;
 * this node shows the new attributes at once, the other node with the
 * commit; rights are checked at the call with the errno a direct change
 * gives, and again at the commit; fsync commits the folded changes; an
 * empty file made with O_EXCL commits its setattrs at its close; a caller
 * that is not the file's writer, or a file with nothing buffered that it
 * did not just make, commits at once as before.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "ofs_pair.h"
#include "ofs_int.h"

#define ROOT OFS_ROOT_INO

/* Callers, each on a thread of its own (the pid is what tells a file's
 * writer from anyone else). */
static const struct ofs_cred root_w = {0, 0, NULL, 0, 4001};
static const struct ofs_cred root_other = {0, 0, NULL, 0, 4002};
static const uint32_t alice_groups[] = {100, 300};
static const struct ofs_cred alice_w = {1000, 100, alice_groups, 2, 4003};

/* Two nodes (ofs_pair.h): node 1's proposals first run the pair's `before`
 * hook once, another node's change landing before node 1's commit. */
struct fx {
	struct ofs_pair p; /* first: hooks cast it back */
	uint64_t file;	   /* what the hook changes */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	ofs_pair_open(&f->p, "fold");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ofs_pair_close(&f->p);
	free(f);
	return 0;
}

static struct ofs_attr attr_of(struct ofs *o, uint64_t ino)
{
	struct ofs_attr a;
	assert_int_equal(ofs_op_getattr(o, ino, &a), 0);
	return a;
}

static void expect_content(struct ofs *o, uint64_t ino, const char *want)
{
	struct ofs_file *h;
	char buf[64] = {0};
	assert_int_equal(ofs_op_open(o, ino, O_RDONLY, &root_other, &h), 0);
	assert_int_equal(ofs_op_read(o, h, buf, sizeof(buf) - 1, 0), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(ofs_op_release(o, h), 0);
}

static int setattr(struct ofs *o, uint64_t ino, const struct ofs_setattr *sa,
		   const struct ofs_cred *cr)
{
	struct ofs_attr a;
	return ofs_op_setattr(o, ino, sa, cr, &a);
}

/* What tar x sets on a file it extracts, as root, and what it then shows. */
#define TAR_MTIME 1600000000000000000
static const struct ofs_setattr tar_times = {.mask = OFS_SET_MTIME, .mtime_ns = TAR_MTIME};
static const struct ofs_setattr tar_owner = {
	.mask = OFS_SET_UID | OFS_SET_GID, .uid = 1000, .gid = 300};
static const struct ofs_setattr tar_mode = {.mask = OFS_SET_MODE, .mode = 0640};

static void expect_tar_attrs(struct ofs *o, uint64_t ino, uint64_t size)
{
	struct ofs_attr a = attr_of(o, ino);
	assert_int_equal(a.mode, S_IFREG | 0640);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 300);
	assert_int_equal(a.mtime_ns, TAR_MTIME);
	assert_int_equal(a.size, size);
}

/* root_w's O_EXCL create of name on node 1 (a commit): its attributes. */
static struct ofs_attr excl_create(struct fx *f, const char *name, struct ofs_file **w)
{
	struct ofs_attr a;
	assert_int_equal(ofs_op_create(f->p.n1, ROOT, name, 0600, O_WRONLY | O_CREAT | O_EXCL,
				       &root_w, &a, w),
			 0);
	return a;
}

/* What tar x does to a file it extracts, as root: O_EXCL create (a commit:
 * the cluster's answer), write, futimens, fchown, fchmod, close. The close
 * is the only other commit, and carries data and attributes. */
static void test_fold_tar_file_commits_once_at_close(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	assert_int_equal(ofs_op_getattr(f->p.n1, ROOT, &a), 0); /* the root made */
	unsigned c0 = f->p.commits;
	a = excl_create(f, "svc.conf", &w);
	uint64_t ino = a.ino;
	assert_int_equal(f->p.commits, c0 + 1);
	assert_int_equal(ofs_op_write(f->p.n1, w, "port = 80\n", 10, 0), 10);
	assert_int_equal(ofs_op_setattr(f->p.n1, ino, &tar_times, &root_w, &a), 0);
	assert_int_equal(a.mtime_ns, TAR_MTIME);
	assert_int_equal(a.size, 10); /* the reply shows the buffer too */
	assert_int_equal(setattr(f->p.n1, ino, &tar_owner, &root_w), 0);
	assert_int_equal(setattr(f->p.n1, ino, &tar_mode, &root_w), 0);
	assert_int_equal(f->p.commits, c0 + 1); /* all three wait for the close */

	/* this node shows them at once; the other node sees the file as
	 * created until the commit */
	expect_tar_attrs(f->p.n1, ino, 10);
	a = attr_of(f->p.n2, ino);
	assert_int_equal(a.mode, S_IFREG | 0600);
	assert_int_equal(a.uid, 0);
	assert_int_equal(a.size, 0);

	int64_t before_close = ofs_now_ns();
	assert_int_equal(ofs_op_flush(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 2);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 2);
	expect_tar_attrs(f->p.n2, ino, 10);
	assert_true(attr_of(f->p.n2, ino).ctime_ns >= before_close);
	expect_content(f->p.n2, ino, "port = 80\n");
}

/* An empty file tar x makes: O_EXCL create, no write, then its owner, mode
 * and times through the descriptor. They wait for the close, which commits
 * them alone: two rounds, not five. A made file closed without setattrs
 * costs no second round; one given only an owner keeps its mtime. */
static void test_fold_empty_made_file(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	assert_int_equal(ofs_op_getattr(f->p.n1, ROOT, &a), 0); /* the root made */
	unsigned c0 = f->p.commits;
	a = excl_create(f, "empty", &w);
	uint64_t ino = a.ino;
	assert_int_equal(setattr(f->p.n1, ino, &tar_owner, &root_w), 0);
	assert_int_equal(setattr(f->p.n1, ino, &tar_mode, &root_w), 0);
	assert_int_equal(setattr(f->p.n1, ino, &tar_times, &root_w), 0);
	assert_int_equal(f->p.commits, c0 + 1); /* the create alone */
	expect_tar_attrs(f->p.n1, ino, 0);
	assert_int_equal(attr_of(f->p.n2, ino).uid, 0);
	assert_int_equal(ofs_op_flush(f->p.n1, w), 0);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 2);
	expect_tar_attrs(f->p.n2, ino, 0);

	/* made and closed as it is: the create's round alone */
	a = excl_create(f, "lock", &w);
	assert_int_equal(ofs_op_flush(f->p.n1, w), 0);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 3);

	/* an owner alone: the close commits it, the mtime stays the create's */
	a = excl_create(f, "owned", &w);
	ino = a.ino;
	int64_t made_mtime = a.mtime_ns;
	assert_int_equal(setattr(f->p.n1, ino, &tar_owner, &root_w), 0);
	assert_int_equal(f->p.commits, c0 + 4);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 5);
	a = attr_of(f->p.n2, ino);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.mtime_ns, made_mtime);
	assert_true(a.ctime_ns > made_mtime);
}

/* A create without O_EXCL is pending until its close: its setattrs join
 * the one commit of name, inode and data. */
static void test_fold_pending_create_one_commit(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	assert_int_equal(ofs_op_getattr(f->p.n1, ROOT, &a), 0); /* the root made */
	unsigned c0 = f->p.commits;
	assert_int_equal(
		ofs_op_create(f->p.n1, ROOT, "new", 0600, O_WRONLY | O_CREAT, &root_w, &a, &w), 0);
	uint64_t ino = a.ino;
	assert_int_equal(ofs_op_write(f->p.n1, w, "x\n", 2, 0), 2);
	struct ofs_setattr mode = {.mask = OFS_SET_MODE, .mode = 0755};
	assert_int_equal(setattr(f->p.n1, ino, &mode, &root_w), 0);
	assert_int_equal(attr_of(f->p.n1, ino).mode, S_IFREG | 0755);
	assert_int_equal(f->p.commits, c0);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 1);
	assert_int_equal(ofs_op_lookup(f->p.n2, ROOT, "new", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0755);
	assert_int_equal(a.size, 2);
}

/* fsync is a durability point: it commits the folded changes with the
 * data, and the close after it has nothing left to commit. */
static void test_fold_fsync_commits_them(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	a = excl_create(f, "f", &w);
	assert_int_equal(ofs_op_write(f->p.n1, w, "abc", 3, 0), 3);
	unsigned c0 = f->p.commits;
	struct ofs_setattr owner = {.mask = OFS_SET_UID, .uid = 77};
	assert_int_equal(setattr(f->p.n1, a.ino, &owner, &root_w), 0);
	assert_int_equal(ofs_flush_ino(f->p.n1, a.ino), 0); /* what fsync does */
	assert_int_equal(f->p.commits, c0 + 1);
	assert_int_equal(attr_of(f->p.n2, a.ino).uid, 77);
	assert_int_equal(attr_of(f->p.n2, a.ino).size, 3);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 1);
}

/* A write after a folded utimens is newer: the commit's mtime is its own,
 * as when the utimens had committed first. */
static void test_fold_write_after_times(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	a = excl_create(f, "f", &w);
	assert_int_equal(ofs_op_write(f->p.n1, w, "abc", 3, 0), 3);
	struct ofs_setattr times = {.mask = OFS_SET_MTIME | OFS_SET_ATIME,
				    .mtime_ns = 1000000000,
				    .atime_ns = 2000000000};
	assert_int_equal(setattr(f->p.n1, a.ino, &times, &root_w), 0);
	assert_int_equal(ofs_op_write(f->p.n1, w, "d", 1, 3), 1);
	int64_t t0 = ofs_now_ns();
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	a = attr_of(f->p.n2, a.ino);
	assert_true(a.mtime_ns >= t0);
	assert_int_equal(a.atime_ns, 2000000000); /* not touched by the write */
	assert_int_equal(a.size, 4);
}

/* Alice's home (0777 hers, group 100) and, in it, a file she creates
 * (O_EXCL, 0600) and holds open for writing on node 1 (*w): its inode. */
static uint64_t alice_creates(struct fx *f, const char *name, struct ofs_file **w)
{
	struct ofs_attr a;
	struct ofs_setattr sa = {.mask = OFS_SET_MODE | OFS_SET_UID | OFS_SET_GID,
				 .mode = 0777,
				 .uid = 1000,
				 .gid = 100};
	assert_int_equal(ofs_op_mknod(f->p.n1, ROOT, "home", S_IFDIR | 0700, 0, &root_other, &a),
			 0);
	assert_int_equal(setattr(f->p.n1, a.ino, &sa, &root_other), 0);
	assert_int_equal(ofs_op_create(f->p.n1, a.ino, name, 0600, O_WRONLY | O_CREAT | O_EXCL,
				       &alice_w, &a, w),
			 0);
	return a.ino;
}

/*
 * Rights at the call: a non-root writer cannot give its file away or pick
 * a group it is not in (EPERM now, not at close), and nothing of the
 * refused change reaches the commit; what it may do folds.
 */
static void test_fold_checks_rights_at_the_call(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	uint64_t ino = alice_creates(f, "f", &w);
	assert_int_equal(ofs_op_write(f->p.n1, w, "abc", 3, 0), 3);
	unsigned c0 = f->p.commits;
	struct ofs_setattr give = {.mask = OFS_SET_UID, .uid = 1001};
	struct ofs_setattr bad_group = {.mask = OFS_SET_GID, .gid = 999};
	struct ofs_setattr good_group = {.mask = OFS_SET_GID, .gid = 300};
	struct ofs_setattr mode = {.mask = OFS_SET_MODE, .mode = 02750};
	assert_int_equal(setattr(f->p.n1, ino, &give, &alice_w), -EPERM);
	assert_int_equal(setattr(f->p.n1, ino, &bad_group, &alice_w), -EPERM);
	assert_int_equal(setattr(f->p.n1, ino, &good_group, &alice_w), 0);
	assert_int_equal(setattr(f->p.n1, ino, &mode, &alice_w), 0);
	assert_int_equal(f->p.commits, c0);
	a = attr_of(f->p.n1, ino);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 300);
	assert_int_equal(a.mode, S_IFREG | 02750); /* 300 is alice's: setgid stays */
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 1);
	a = attr_of(f->p.n2, ino);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 300);
	assert_int_equal(a.mode, S_IFREG | 02750);
}

/* Node 2: root takes f->file from alice. */
static void take_file_from_alice(struct ofs_pair *p)
{
	struct fx *f = (struct fx *)p;
	struct ofs_setattr sa = {.mask = OFS_SET_UID | OFS_SET_GID, .uid = 0, .gid = 0};
	assert_int_equal(setattr(f->p.n2, f->file, &sa, &root_other), 0);
}

/* Rights again at the commit: a setuid bit alice set on her file while
 * writing it must not land on the file root took from her meanwhile. The
 * commit fails as a commit fails (the close says EPERM). */
static void test_fold_checks_rights_again_at_commit(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	f->file = alice_creates(f, "tool", &w);
	assert_int_equal(ofs_op_write(f->p.n1, w, "#!", 2, 0), 2);
	struct ofs_setattr suid = {.mask = OFS_SET_MODE, .mode = 04755};
	assert_int_equal(setattr(f->p.n1, f->file, &suid, &alice_w), 0);
	f->p.before = take_file_from_alice;
	assert_int_equal(ofs_op_flush(f->p.n1, w), -EPERM);
	assert_int_equal(ofs_op_release(f->p.n1, w), -EPERM);
	a = attr_of(f->p.n2, f->file);
	assert_int_equal(a.uid, 0);
	assert_int_equal(a.mode & S_ISUID, 0);
}

/* Not folded: a caller that is not the file's writer here (another
 * process's chmod), a size change, and a file with nothing buffered. Each
 * commits at once, after the buffer it finds, as before. */
static void test_fold_only_for_the_writer(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *w;
	a = excl_create(f, "f", &w);
	uint64_t ino = a.ino;
	assert_int_equal(ofs_op_write(f->p.n1, w, "abc", 3, 0), 3);
	unsigned c0 = f->p.commits;
	struct ofs_setattr mode = {.mask = OFS_SET_MODE, .mode = 0644};
	assert_int_equal(setattr(f->p.n1, ino, &mode, &root_other), 0);
	assert_int_equal(f->p.commits, c0 + 2); /* the data, then the chmod */
	assert_int_equal(attr_of(f->p.n2, ino).mode, S_IFREG | 0644);
	assert_int_equal(attr_of(f->p.n2, ino).size, 3);
	/* nothing buffered now: the writer's own chmod commits at once too */
	mode.mode = 0600;
	assert_int_equal(setattr(f->p.n1, ino, &mode, &root_w), 0);
	assert_int_equal(f->p.commits, c0 + 3);
	/* a truncation does not fold */
	assert_int_equal(ofs_op_write(f->p.n1, w, "defg", 4, 3), 4);
	struct ofs_setattr size = {.mask = OFS_SET_SIZE | OFS_SET_HANDLE, .size = 5};
	assert_int_equal(setattr(f->p.n1, ino, &size, &root_w), 0);
	assert_int_equal(f->p.commits, c0 + 5);
	assert_int_equal(attr_of(f->p.n2, ino).size, 5);
	assert_int_equal(ofs_op_release(f->p.n1, w), 0);
	assert_int_equal(f->p.commits, c0 + 5);
	expect_content(f->p.n2, ino, "abcde");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fold_tar_file_commits_once_at_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fold_empty_made_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_pending_create_one_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fold_fsync_commits_them, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_write_after_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fold_checks_rights_at_the_call, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fold_checks_rights_again_at_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fold_only_for_the_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
