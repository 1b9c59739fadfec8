/*
 * The daemon's own permission checks (fs/vfs/ofs_perm.c), without a mount:
 * two struct ofs over one real KV (the local backend, RocksDB in a temp
 * dir) act as two nodes. The first test is the reason the checks exist: the
 * kernel checks a caller against its node's cached view, and a change whose
 * guard failed is built again on newer state, so a right revoked on another
 * node in between must refuse the change, with nothing written. The others
 * take the rules one by one (search and write on directories, the sticky
 * bit, ownership for chmod, chown, chgrp and explicit times, write for
 * truncation and for times set to now, setgid rules, supplementary groups,
 * extended attributes), each as Linux answers.
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

#include "kv.h"
#include "ofs_pair.h"
#include "ofs_int.h"

#define ROOT OFS_ROOT_INO

static const struct ofs_cred root = {0, 0, NULL, 0, 0};
static const uint32_t alice_groups[] = {100, 300};
/* alice: uid 1000, group 100, and 300 as a supplementary group */
static const struct ofs_cred alice = {1000, 100, alice_groups, 2, 0};
/* the same alice, as a caller whose supplementary groups are not known */
static const struct ofs_cred alice_primary = {1000, 100, NULL, 0, 0};
static const struct ofs_cred bob = {1001, 101, NULL, 0, 0};

/* Two nodes (ofs_pair.h): node 1's proposals first run the pair's `before`
 * hook once, another node's change landing before node 1's commit. */
struct fx {
	struct ofs_pair p;	   /* first: hooks cast it back */
	uint64_t shared, file;	   /* what the hooks change */
	uint64_t state_after_hook; /* state_sum() once the hook's change landed */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	ofs_pair_open(&f->p, "perm");
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

/* Every key and its version, folded into one number: equal before and after
 * means nothing was written. */
static uint64_t state_sum(struct fx *f)
{
	struct kv_view *v;
	struct kv_iter *it;
	const uint8_t *k, *val;
	size_t kl, vl;
	uint64_t ver, sum = 0;
	int rc;
	assert_int_equal(kv_view_open(f->p.kv.kv, &v), 0);
	assert_int_equal(kv_iter_open(v, NULL, 0, NULL, 0, &it), 0);
	while ((rc = kv_iter_next(it, &k, &kl, &val, &vl, &ver)) == 1)
		sum = sum * 1000003 + ver * 31 + kl + vl;
	assert_int_equal(rc, 0);
	kv_iter_close(&it);
	kv_view_close(&v);
	return sum;
}

/* Makes name in parent as root, then gives it to owner (uid, gid) with mode. */
static uint64_t make(struct ofs *o, uint64_t parent, const char *name, uint32_t type, uint32_t mode,
		     uint32_t uid, uint32_t gid)
{
	struct ofs_attr a;
	assert_int_equal(ofs_op_mknod(o, parent, name, type | 0700, 0, &root, &a), 0);
	struct ofs_setattr sa = {.mask = OFS_SET_MODE | OFS_SET_UID | OFS_SET_GID,
				 .mode = mode,
				 .uid = uid,
				 .gid = gid};
	assert_int_equal(ofs_op_setattr(o, a.ino, &sa, &root, &a), 0);
	assert_int_equal(a.mode & 07777, mode);
	return a.ino;
}

static int chmod_as(struct ofs *o, uint64_t ino, uint32_t mode, const struct ofs_cred *cr)
{
	struct ofs_attr a;
	struct ofs_setattr sa = {.mask = OFS_SET_MODE, .mode = mode};
	return ofs_op_setattr(o, ino, &sa, cr, &a);
}

static uint32_t mode_of(struct ofs *o, uint64_t ino)
{
	struct ofs_attr a;
	assert_int_equal(ofs_op_getattr(o, ino, &a), 0);
	return a.mode & 07777;
}

static bool exists(struct ofs *o, uint64_t parent, const char *name)
{
	struct ofs_attr a;
	int rc = ofs_op_lookup(o, parent, name, &a);
	assert_true(rc == 0 || rc == -ENOENT);
	return rc == 0;
}

/* --- the stale check ------------------------------------------------------ */

static uint64_t state_sum(struct fx *f);

/* Node 2: root takes write on f->shared away from everyone but itself. */
static void revoke_dir(struct ofs_pair *p)
{
	struct fx *f = (struct fx *)p;
	assert_int_equal(chmod_as(f->p.n2, f->shared, 0755, &root), 0);
	f->state_after_hook = state_sum(f);
}

/* Node 2: root gives f->file to bob. */
static void give_file_to_bob(struct ofs_pair *p)
{
	struct fx *f = (struct fx *)p;
	struct ofs_attr a;
	struct ofs_setattr sa = {.mask = OFS_SET_UID, .uid = bob.uid};
	assert_int_equal(ofs_op_setattr(f->p.n2, f->file, &sa, &root, &a), 0);
	f->state_after_hook = state_sum(f);
}

/* Node 2: root makes f->shared sticky (as /tmp). */
static void make_sticky(struct ofs_pair *p)
{
	struct fx *f = (struct fx *)p;
	assert_int_equal(chmod_as(f->p.n2, f->shared, 01777, &root), 0);
	f->state_after_hook = state_sum(f);
}

static void test_ofs_perm_rechecked_after_conflict(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	struct ofs_stats st0, st;
	f->shared = make(f->p.n1, ROOT, "shared", S_IFDIR, 0777, 0, 0);

	/* alice creates in a directory anyone may write; node 2 takes write
	 * away between node 1's check and its commit: the guard on the
	 * directory fails, the rebuild reads the new mode and refuses. */
	ofs_get_stats(f->p.n1, &st0);
	f->p.before = revoke_dir;
	assert_int_equal(ofs_op_create(f->p.n1, f->shared, "late", 0644,
				       O_WRONLY | O_CREAT | O_EXCL, &alice, &a, &h),
			 -EACCES); /* O_EXCL: committed at open */
	ofs_get_stats(f->p.n1, &st);
	assert_true(st.conflicts > st0.conflicts); /* it was built again, and refused */
	assert_false(exists(f->p.n1, f->shared, "late"));
	assert_int_equal(mode_of(f->p.n1, f->shared), 0755);
	/* nothing of it was written: no entry, inode, usage or counter */
	assert_int_equal(state_sum(f), f->state_after_hook);

	/* the same for mkdir */
	assert_int_equal(chmod_as(f->p.n1, f->shared, 0777, &root), 0);
	f->p.before = revoke_dir;
	assert_int_equal(ofs_op_mknod(f->p.n1, f->shared, "late", S_IFDIR | 0755, 0, &alice, &a),
			 -EACCES);
	assert_int_equal(state_sum(f), f->state_after_hook);

	/* chmod by the owner, while node 2 gives the file to bob */
	f->file = make(f->p.n1, f->shared, "mine", S_IFREG, 0644, alice.uid, alice.gid);
	f->p.before = give_file_to_bob;
	assert_int_equal(chmod_as(f->p.n1, f->file, 0666, &alice), -EPERM);
	assert_int_equal(state_sum(f), f->state_after_hook);
	assert_int_equal(mode_of(f->p.n1, f->file), 0644);
	assert_int_equal(ofs_op_getattr(f->p.n1, f->file, &a), 0);
	assert_int_equal(a.uid, bob.uid);

	/* unlink of bob's file, while node 2 makes the folder sticky */
	make(f->p.n1, f->shared, "bobs", S_IFREG, 0644, bob.uid, bob.gid);
	assert_int_equal(chmod_as(f->p.n1, f->shared, 0777, &root), 0);
	f->p.before = make_sticky;
	assert_int_equal(ofs_op_unlink(f->p.n1, f->shared, "bobs", &alice), -EPERM);
	assert_int_equal(state_sum(f), f->state_after_hook);
	assert_true(exists(f->p.n1, f->shared, "bobs"));
}

/* --- one rule at a time ------------------------------------------------- */

static void test_ofs_perm_directories_need_search_and_write(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_file *h;
	uint64_t file = make(f->p.n1, ROOT, "file", S_IFREG, 0644, alice.uid, alice.gid);
	uint64_t ro = make(f->p.n1, ROOT, "ro", S_IFDIR, 0755, 0, 0);		/* no w for alice */
	uint64_t nox = make(f->p.n1, ROOT, "nox", S_IFDIR, 0776, 0, 0);		/* no x for alice */
	uint64_t grp = make(f->p.n1, ROOT, "grp", S_IFDIR, 0770, 0, 300);	/* her 2nd group */
	uint64_t own = make(f->p.n1, ROOT, "own", S_IFDIR, 0577, alice.uid, 0); /* owner: r-x */
	uint64_t dirs[] = {ro, nox, own};
	for (size_t i = 0; i < 3; i++) {
		uint64_t d = dirs[i];
		assert_int_equal(ofs_op_create(f->p.n1, d, "c", 0644, O_WRONLY, &alice, &a, &h),
				 -EACCES);
		assert_int_equal(ofs_op_mknod(f->p.n1, d, "m", S_IFDIR | 0755, 0, &alice, &a),
				 -EACCES);
		assert_int_equal(ofs_op_mknod(f->p.n1, d, "p", S_IFIFO | 0644, 0, &alice, &a),
				 -EACCES);
		assert_int_equal(ofs_op_symlink(f->p.n1, d, "s", "/x", &alice, &a), -EACCES);
		assert_int_equal(ofs_op_link(f->p.n1, file, d, "l", &alice, &a), -EACCES);
		assert_false(exists(f->p.n1, d, "c") || exists(f->p.n1, d, "m") ||
			     exists(f->p.n1, d, "p") || exists(f->p.n1, d, "s") ||
			     exists(f->p.n1, d, "l"));
	}
	/* Search comes first: an existing name behind a directory alice may
	 * not search is EACCES, not EEXIST. */
	make(f->p.n1, nox, "there", S_IFREG, 0644, 0, 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, nox, "there", S_IFREG | 0644, 0, &alice, &a),
			 -EACCES);

	/* A supplementary group counts; without it alice is "other" there. */
	assert_int_equal(ofs_op_mknod(f->p.n1, grp, "m", S_IFDIR | 0755, 0, &alice_primary, &a),
			 -EACCES);
	assert_int_equal(ofs_op_mknod(f->p.n1, grp, "m", S_IFDIR | 0755, 0, &alice, &a), 0);
	assert_int_equal(ofs_op_create(f->p.n1, grp, "c", 0644, O_WRONLY, &alice, &a, &h), 0);
	assert_int_equal(ofs_op_release(f->p.n1, h), 0);
	assert_int_equal(ofs_op_symlink(f->p.n1, grp, "s", "/x", &alice, &a), 0);
	assert_int_equal(ofs_op_link(f->p.n1, file, grp, "l", &alice, &a), 0);
	assert_int_equal(ofs_op_unlink(f->p.n1, grp, "l", &alice_primary), -EACCES);
	assert_int_equal(ofs_op_unlink(f->p.n1, grp, "l", &alice), 0);

	/* Removing needs the same on the directory, whoever owns the file. */
	make(f->p.n1, ro, "hers", S_IFREG, 0666, alice.uid, alice.gid);
	make(f->p.n1, ro, "herdir", S_IFDIR, 0777, alice.uid, alice.gid);
	assert_int_equal(ofs_op_unlink(f->p.n1, ro, "hers", &alice), -EACCES);
	assert_int_equal(ofs_op_rmdir(f->p.n1, ro, "herdir", &alice), -EACCES);
	assert_int_equal(ofs_op_rename(f->p.n1, ro, "hers", grp, "moved", 0, &alice), -EACCES);
	assert_int_equal(ofs_op_rename(f->p.n1, grp, "c", ro, "moved", 0, &alice), -EACCES);
	assert_true(exists(f->p.n1, ro, "hers") && exists(f->p.n1, ro, "herdir") &&
		    exists(f->p.n1, grp, "c") && !exists(f->p.n1, ro, "moved"));

	/* Root passes everywhere, x bits or not. */
	assert_int_equal(chmod_as(f->p.n1, nox, 0, &root), 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, nox, "r", S_IFREG | 0644, 0, &root, &a), 0);
	assert_int_equal(ofs_op_unlink(f->p.n1, nox, "r", &root), 0);
}

static void test_ofs_perm_sticky_directory(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	/* a /tmp owned by carol (1002) */
	const struct ofs_cred carol = {1002, 102, NULL, 0, 0};
	uint64_t tmp = make(f->p.n1, ROOT, "tmp", S_IFDIR, 01777, carol.uid, carol.gid);
	uint64_t open_dir = make(f->p.n1, ROOT, "pub", S_IFDIR, 0777, 0, 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, tmp, "a", S_IFREG | 0666, 0, &alice, &a), 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, tmp, "b", S_IFREG | 0666, 0, &bob, &a), 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, tmp, "bd", S_IFDIR | 0777, 0, &bob, &a), 0);
	assert_int_equal(ofs_op_mknod(f->p.n1, tmp, "b2", S_IFREG | 0666, 0, &bob, &a), 0);

	/* Not alice's: she may not unlink, rmdir, move away or replace them. */
	assert_int_equal(ofs_op_unlink(f->p.n1, tmp, "b", &alice), -EPERM);
	assert_int_equal(ofs_op_rmdir(f->p.n1, tmp, "bd", &alice), -EPERM);
	assert_int_equal(ofs_op_rename(f->p.n1, tmp, "b", tmp, "c", 0, &alice), -EPERM);
	assert_int_equal(ofs_op_rename(f->p.n1, tmp, "b", open_dir, "c", 0, &alice), -EPERM);
	assert_int_equal(ofs_op_rename(f->p.n1, tmp, "a", tmp, "b", 0, &alice), -EPERM);
	assert_int_equal(ofs_op_rename(f->p.n1, tmp, "a", tmp, "b", RENAME_EXCHANGE, &alice),
			 -EPERM);
	assert_true(exists(f->p.n1, tmp, "a") && exists(f->p.n1, tmp, "b") &&
		    exists(f->p.n1, tmp, "bd"));
	/* Her own: yes. The directory's owner and root: anyone's. */
	assert_int_equal(ofs_op_rename(f->p.n1, tmp, "a", tmp, "a2", 0, &alice), 0);
	assert_int_equal(ofs_op_unlink(f->p.n1, tmp, "a2", &alice), 0);
	assert_int_equal(ofs_op_unlink(f->p.n1, tmp, "b", &carol), 0);
	assert_int_equal(ofs_op_rmdir(f->p.n1, tmp, "bd", &root), 0);
	/* Without the sticky bit, write on the directory is enough. */
	assert_int_equal(chmod_as(f->p.n1, tmp, 0777, &carol), 0);
	assert_int_equal(ofs_op_unlink(f->p.n1, tmp, "b2", &alice), 0);
}

static void test_ofs_perm_rename_of_a_directory_rewrites_dotdot(void **state)
{
	struct fx *f = *state;
	uint64_t src = make(f->p.n1, ROOT, "src", S_IFDIR, 0777, 0, 0);
	uint64_t dst = make(f->p.n1, ROOT, "dst", S_IFDIR, 0777, 0, 0);
	make(f->p.n1, src, "bobs", S_IFDIR, 0755, bob.uid, bob.gid);
	make(f->p.n1, dst, "other", S_IFDIR, 0755, bob.uid, bob.gid);
	/* Within its parent: write on the parent is enough. */
	assert_int_equal(ofs_op_rename(f->p.n1, src, "bobs", src, "b2", 0, &alice), 0);
	/* Elsewhere: its ".." changes, which needs write on it. */
	assert_int_equal(ofs_op_rename(f->p.n1, src, "b2", dst, "b3", 0, &alice), -EACCES);
	make(f->p.n1, src, "mine", S_IFDIR, 0755, alice.uid, alice.gid);
	assert_int_equal(ofs_op_rename(f->p.n1, src, "mine", dst, "other", RENAME_EXCHANGE, &alice),
			 -EACCES); /* the other one moves too */
	assert_true(exists(f->p.n1, src, "b2") && exists(f->p.n1, src, "mine"));
	assert_int_equal(ofs_op_rename(f->p.n1, src, "mine", dst, "mine", 0, &alice), 0);
}

static void test_ofs_perm_setattr_rules(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	struct ofs_setattr sa;
	uint64_t d = make(f->p.n1, ROOT, "d", S_IFDIR, 0777, 0, 0);
	uint64_t mine = make(f->p.n1, d, "mine", S_IFREG, 0644, alice.uid, alice.gid);
	uint64_t shared = make(f->p.n1, d, "shared", S_IFREG, 0666, bob.uid, bob.gid);
	uint64_t closed = make(f->p.n1, d, "closed", S_IFREG, 0644, bob.uid, bob.gid);

	/* chmod: the owner or root */
	assert_int_equal(chmod_as(f->p.n1, shared, 0600, &alice), -EPERM);
	assert_int_equal(chmod_as(f->p.n1, mine, 0600, &alice), 0);
	assert_int_equal(chmod_as(f->p.n1, shared, 0666, &root), 0);

	/* chown to another uid: root only, even for the owner */
	sa = (struct ofs_setattr){.mask = OFS_SET_UID, .uid = bob.uid};
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice, &a), -EPERM);
	sa.uid = alice.uid;
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice, &a), 0); /* to herself */
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &alice, &a), -EPERM);
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &root, &a), 0);
	sa.uid = bob.uid;
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &root, &a), 0);

	/* chgrp: the owner, to a group it is in (supplementary ones too) */
	sa = (struct ofs_setattr){.mask = OFS_SET_GID, .gid = 300};
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice_primary, &a), -EPERM);
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice, &a), 0);
	assert_int_equal(a.gid, 300);
	sa.gid = 999;
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice, &a), -EPERM);
	sa.gid = 100;
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &alice, &a), -EPERM);

	/* explicit times: the owner only; "now": the owner or a writer */
	sa = (struct ofs_setattr){
		.mask = OFS_SET_MTIME | OFS_SET_ATIME, .atime_ns = 5, .mtime_ns = 7};
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &alice, &a), -EPERM);
	assert_int_equal(ofs_op_setattr(f->p.n1, mine, &sa, &alice, &a), 0);
	assert_int_equal(a.mtime_ns, 7);
	sa = (struct ofs_setattr){.mask = OFS_SET_MTIME_NOW | OFS_SET_ATIME_NOW};
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &alice, &a), 0);
	assert_int_equal(ofs_op_setattr(f->p.n1, closed, &sa, &alice, &a), -EACCES);

	/* truncation by name needs write; through a handle open for writing
	 * (ftruncate) it needs nothing more */
	sa = (struct ofs_setattr){.mask = OFS_SET_SIZE, .size = 3};
	assert_int_equal(ofs_op_setattr(f->p.n1, closed, &sa, &alice, &a), -EACCES);
	assert_int_equal(ofs_op_setattr(f->p.n1, shared, &sa, &alice, &a), 0);
	sa.mask |= OFS_SET_HANDLE;
	assert_int_equal(ofs_op_setattr(f->p.n1, closed, &sa, &alice, &a), 0);
	assert_int_equal(a.size, 3);

	/* open for writing: write permission on the applied mode */
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(f->p.n1, closed, O_WRONLY, &alice, &h), -EACCES);
	assert_int_equal(ofs_op_open(f->p.n1, closed, O_RDWR | O_TRUNC, &alice, &h), -EACCES);
	assert_int_equal(ofs_op_open(f->p.n1, closed, O_RDONLY, &alice, &h), 0);
	assert_int_equal(ofs_op_release(f->p.n1, h), 0);
	assert_int_equal(ofs_op_open(f->p.n1, shared, O_WRONLY, &alice, &h), 0);
	assert_int_equal(ofs_op_release(f->p.n1, h), 0);
	assert_int_equal(ofs_op_getattr(f->p.n1, closed, &a), 0);
	assert_int_equal(a.size, 3);
}

static void test_ofs_perm_setgid_rules(void **state)
{
	struct fx *f = *state;
	struct ofs_attr a;
	/* chmod by an owner outside the file's group drops setgid */
	uint64_t mine = make(f->p.n1, ROOT, "mine", S_IFREG, 0644, alice.uid, 555);
	assert_int_equal(chmod_as(f->p.n1, mine, 02755, &alice), 0);
	assert_int_equal(mode_of(f->p.n1, mine), 0755);
	assert_int_equal(chmod_as(f->p.n1, mine, 02755, &root), 0);
	assert_int_equal(mode_of(f->p.n1, mine), 02755);
	uint64_t hers = make(f->p.n1, ROOT, "hers", S_IFREG, 0644, alice.uid, 300);
	assert_int_equal(chmod_as(f->p.n1, hers, 02755, &alice), 0);
	assert_int_equal(mode_of(f->p.n1, hers), 02755);

	/* a writer that is not the owner may drop setuid/setgid (what the
	 * kernel asks after its write) but change nothing else */
	uint64_t suid = make(f->p.n1, ROOT, "suid", S_IFREG, 06777, bob.uid, bob.gid);
	assert_int_equal(chmod_as(f->p.n1, suid, 06775, &alice), -EPERM);
	assert_int_equal(chmod_as(f->p.n1, suid, 0777, &alice), 0);
	assert_int_equal(mode_of(f->p.n1, suid), 0777);
	uint64_t suid_ro = make(f->p.n1, ROOT, "suid_ro", S_IFREG, 04755, bob.uid, bob.gid);
	assert_int_equal(chmod_as(f->p.n1, suid_ro, 0755, &alice), -EACCES);
	assert_int_equal(mode_of(f->p.n1, suid_ro), 04755);

	/* in a setgid directory of a group alice is not in, a new
	 * group-executable file loses setgid; in one of hers it keeps it */
	uint64_t other = make(f->p.n1, ROOT, "other", S_IFDIR, 02777, 0, 555);
	uint64_t ours = make(f->p.n1, ROOT, "ours", S_IFDIR, 02777, 0, 300);
	assert_int_equal(ofs_op_mknod(f->p.n1, other, "x", S_IFREG | 02755, 0, &alice, &a), 0);
	assert_int_equal(a.mode & 07777, 0755);
	assert_int_equal(a.gid, 555);
	assert_int_equal(ofs_op_mknod(f->p.n1, ours, "x", S_IFREG | 02755, 0, &alice, &a), 0);
	assert_int_equal(a.mode & 07777, 02755);
	assert_int_equal(ofs_op_mknod(f->p.n1, other, "sub", S_IFDIR | 0755, 0, &alice, &a), 0);
	assert_int_equal(a.mode & 07777, 02755); /* directories inherit it */

	/* device nodes: root only */
	assert_int_equal(ofs_op_mknod(f->p.n1, other, "dev", S_IFCHR | 0666, 0x0103, &alice, &a),
			 -EPERM);
	assert_int_equal(ofs_op_mknod(f->p.n1, other, "dev", S_IFCHR | 0666, 0x0103, &root, &a), 0);
}

static void test_ofs_perm_xattrs(void **state)
{
	struct fx *f = *state;
	uint64_t mine = make(f->p.n1, ROOT, "mine", S_IFREG, 0644, alice.uid, alice.gid);
	uint64_t bobs = make(f->p.n1, ROOT, "bobs", S_IFREG, 0644, bob.uid, bob.gid);
	assert_int_equal(ofs_op_setxattr(f->p.n1, mine, "user.a", "1", 1, 0, &alice), 0);
	assert_int_equal(ofs_op_setxattr(f->p.n1, bobs, "user.a", "1", 1, 0, &alice), -EACCES);
	assert_int_equal(ofs_op_setxattr(f->p.n1, bobs, "user.a", "1", 1, 0, &bob), 0);
	assert_int_equal(ofs_op_removexattr(f->p.n1, bobs, "user.a", &alice), -EACCES);
	assert_int_equal(ofs_op_setxattr(f->p.n1, mine, "trusted.a", "1", 1, 0, &alice), -EPERM);
	assert_int_equal(ofs_op_setxattr(f->p.n1, mine, "security.a", "1", 1, 0, &alice), -EPERM);
	assert_int_equal(ofs_op_setxattr(f->p.n1, mine, "trusted.a", "1", 1, 0, &root), 0);
	assert_int_equal(ofs_op_getxattr(f->p.n1, bobs, "user.a", NULL, 0), 1);
	assert_int_equal(ofs_op_removexattr(f->p.n1, bobs, "user.a", &bob), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ofs_perm_rechecked_after_conflict, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_directories_need_search_and_write,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_sticky_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_rename_of_a_directory_rewrites_dotdot,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_setattr_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_setgid_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ofs_perm_xattrs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
