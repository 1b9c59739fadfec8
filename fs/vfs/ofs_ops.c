/*
 * Namespace and metadata operations: lookup, getattr/setattr, mknod/mkdir,
 * symlink, link, unlink, rmdir, rename, readlink, directory listings,
 * extended attributes and statfs.
 *
 * Each change is one transaction built by a build_* function from the
 * node's applied state, with a guard on every key it read that the result
 * depends on (ofs_run_txn commits and, when a guard fails because another
 * node got there first, calls the builder again on the new state). Each
 * build checks the caller's rights against the attributes it read
 * (ofs_perm.c), so a rebuild on newer state checks them again. Errno
 * values follow Linux (tmpfs where the choice is free). Does not do file
 * data (ofs_data.c) or the /.omnifs files (ofs_virt.c).
 */
#include <dirent.h>
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "log.h"
#include "ofs_int.h"

#define LINK_MAX_N 65000u

static int check_name(const char *name, size_t *len)
{
	*len = strlen(name);
	if (*len > OFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!ofs_name_is_valid(name, *len))
		return -EINVAL;
	return 0;
}

static bool is_vdir_name(uint64_t parent, const char *name)
{
	return parent == OFS_ROOT_INO && strcmp(name, OFS_VDIR_NAME) == 0;
}

int ofs_op_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out)
{
	size_t len = strlen(name);
	if (len > OFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (ofs_ino_is_virtual(parent) || is_vdir_name(parent, name))
		return ofs_virt_lookup(o, parent, name, out);
	uint64_t child;
	uint8_t dtype;
	int rc = ofs_pending_by_name(o, parent, name, len, out); /* this node's first */
	if (rc == 0) {
		child = out->ino;
	} else {
		rc = ofs_read_dirent(o, parent, name, len, &child, &dtype, NULL);
		if (rc)
			return rc;
		rc = ofs_read_attr(o, child, out, NULL);
		if (rc)
			return rc;
	}
	ofs_overlay_attr(o, out);
	ofs_names_learn(o, child, parent, name, len); /* for change notes */
	return 0;
}

/* An inode the kernel asks about by number but that is gone was removed by
 * another node (this node keeps its own unlinked files while the kernel
 * knows them). ESTALE, as NFS says it, makes the kernel redo the path lookup
 * once with revalidation: a stat or open that raced with a rename over the
 * file on another node then finds the new file instead of failing. */
int ofs_op_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out)
{
	if (ofs_ino_is_virtual(ino))
		return ofs_virt_getattr(o, ino, out);
	int rc = ofs_attr_any(o, ino, out, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	ofs_overlay_attr(o, out);
	return 0;
}

/* --- setattr ------------------------------------------------------------ */

struct setattr_arg {
	uint64_t ino;
	const struct ofs_setattr *sa;
	const struct ofs_cred *cr;
	struct ofs_attr out;
};

/* Shrinks the stored data of ino from size old to size new: drops whole
 * blocks past the end and cuts the last one, so that growing again later
 * reads zeros. */
struct trunc_scan {
	struct kv_txn *t;
	uint64_t first_dead; /* first block entirely past the end */
	uint64_t cut_block;  /* block to cut, or UINT64_MAX */
	uint32_t cut_len;
};

static int trunc_block(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		       uint64_t version)
{
	struct trunc_scan *ts = arg;
	uint64_t ino, blk;
	if (ofs_key_parse_block(key, key_len, &ino, &blk))
		return 0;
	struct ofs_key k;
	ofs_key_block(&k, ino, blk);
	if (blk >= ts->first_dead)
		return ofs_add_delete(ts->t, &k);
	if (blk == ts->cut_block && val_len > ts->cut_len)
		return ofs_add_put(ts->t, &k, val, ts->cut_len);
	return 0;
}

static int shrink_data(struct ofs *o, struct kv_txn *t, uint64_t ino, uint64_t newsize)
{
	struct trunc_scan ts = {t, (newsize + OFS_BLOCK_SIZE - 1) / OFS_BLOCK_SIZE, UINT64_MAX, 0};
	if (newsize % OFS_BLOCK_SIZE) {
		ts.cut_block = newsize / OFS_BLOCK_SIZE;
		ts.cut_len = (uint32_t)(newsize % OFS_BLOCK_SIZE);
	}
	struct ofs_key p, from;
	ofs_key_block_prefix(&p, ino);
	if (newsize == 0)
		return ofs_add_delete_prefix(t, &p);
	uint64_t start = newsize / OFS_BLOCK_SIZE;
	/* The scan returns trunc_block's error (-ENOMEM, -EFBIG) or its own. */
	if (start == 0)
		return ofs_kv_scan(o, p.b, p.len, NULL, 0, trunc_block, &ts);
	ofs_key_block(&from, ino, start - 1); /* scan from start onwards */
	return ofs_kv_scan(o, p.b, p.len, from.b, from.len, trunc_block, &ts);
}

static int build_setattr(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct setattr_arg *s = arg;
	const struct ofs_setattr *sa = s->sa;
	struct ofs_attr a;
	uint64_t ver;
	uint32_t mode;
	int rc = ofs_read_attr(o, s->ino, &a, &ver);
	if (rc)
		return rc;
	rc = ofs_perm_setattr(s->cr, &a, sa, &mode);
	if (rc)
		return rc;
	int64_t now = ofs_now_ns();
	int64_t dbytes = 0;
	if (sa->mask & OFS_SET_SIZE) {
		if (S_ISDIR(a.mode))
			return -EISDIR;
		if (!S_ISREG(a.mode))
			return -EINVAL;
		if (sa->size > o->cfg.max_file_size)
			return -EFBIG;
		if (sa->size < a.size) {
			rc = shrink_data(o, t, s->ino, sa->size);
			if (rc)
				return rc;
		}
		dbytes = (int64_t)sa->size - (int64_t)a.size;
		if (sa->size != a.size)
			a.mtime_ns = now;
		a.size = sa->size;
	}
	ofs_setattr_apply(&a, sa, mode, now);
	a.change++;
	struct ofs_key k;
	ofs_key_inode(&k, s->ino);
	rc = ofs_add_guard_version(t, &k, ver);
	if (rc)
		return rc;
	rc = ofs_put_attr(t, &a);
	if (rc)
		return rc;
	if (dbytes) {
		rc = ofs_noderec_update(o, t, dbytes, 0, NULL);
		if (rc)
			return rc;
	}
	s->out = a;
	return 0;
}

int ofs_op_setattr(struct ofs *o, uint64_t ino, const struct ofs_setattr *sa,
		   const struct ofs_cred *cr, struct ofs_attr *out)
{
	if (ofs_ino_is_virtual(ino))
		return -EROFS;
	/* The writer of a file with buffered writes: the change commits with
	 * them (ofs_fold.c). */
	int rc = ofs_fold_setattr(o, ino, sa, cr, out);
	if (rc)
		return rc < 0 ? rc : 0;
	/* Buffered writes first: their commit sets mtime, which an explicit
	 * utimens (cp -p, tar) that follows must be able to override. */
	rc = ofs_flush_ino(o, ino);
	if (rc)
		return rc;
	struct setattr_arg s = {ino, sa, cr, {0}};
	rc = ofs_run_txn(o, build_setattr, &s);
	if (rc)
		return rc;
	*out = s.out;
	ofs_overlay_attr(o, out);
	return 0;
}

/* --- creating entries ---------------------------------------------------- */

/* Reads parent for a change of its entries: must be a live directory. */
static int read_parent(struct ofs *o, uint64_t parent, struct ofs_attr *pa, uint64_t *pver)
{
	if (ofs_ino_is_virtual(parent))
		return -EROFS;
	int rc = ofs_read_attr(o, parent, pa, pver);
	if (rc)
		return rc;
	if (!S_ISDIR(pa->mode))
		return -ENOTDIR;
	if (pa->nlink == 0)
		return -ENOENT; /* removed while someone's cwd */
	return 0;
}

/* Depth of dir below the root (root: 0), following parent fields; guards
 * every directory on the way so a concurrent move of one of them retries. */
static int dir_depth(struct ofs *o, struct kv_txn *t, uint64_t dir, uint32_t *depth,
		     uint64_t stop_at)
{
	uint32_t d = 0;
	while (dir != OFS_ROOT_INO) {
		if (dir == stop_at)
			return -EINVAL;
		struct ofs_attr a;
		uint64_t ver;
		int rc = ofs_read_attr(o, dir, &a, &ver);
		if (rc)
			return rc == -ENOENT ? -ENOENT : rc;
		if (t) {
			struct ofs_key k;
			ofs_key_inode(&k, dir);
			rc = ofs_add_guard_version(t, &k, ver);
			if (rc)
				return rc;
		}
		dir = a.parent;
		if (++d > o->cfg.max_depth + 1 || dir == 0)
			break;
	}
	*depth = d;
	return 0;
}

struct mknod_arg {
	uint64_t parent;
	const char *name;
	size_t len;
	uint32_t mode;
	uint32_t rdev;
	const char *target; /* symlinks */
	const struct ofs_cred *cr;
	struct ofs_attr out;
};

static int build_mknod(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct mknod_arg *m = arg;
	struct ofs_attr pa;
	uint64_t pver, child;
	int rc = read_parent(o, m->parent, &pa, &pver);
	if (rc)
		return rc;
	rc = ofs_perm_search(m->cr, &pa);
	if (rc)
		return rc;
	rc = ofs_read_dirent(o, m->parent, m->name, m->len, &child, NULL, NULL);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = ofs_perm_create(m->cr, &pa);
	if (rc)
		return rc;
	if (S_ISDIR(m->mode)) {
		uint32_t depth;
		rc = dir_depth(o, NULL, m->parent, &depth, 0);
		if (rc)
			return rc;
		if (depth + 1 > o->cfg.max_depth)
			return -ENAMETOOLONG;
		if (pa.nlink >= LINK_MAX_N)
			return -EMLINK;
	}
	uint64_t ino;
	rc = ofs_noderec_update(o, t, 0, 1, &ino);
	if (rc)
		return rc;
	int64_t now = ofs_now_ns();
	struct ofs_attr a = {0};
	a.ino = ino;
	a.mode = ofs_perm_new_mode(m->cr, &pa, m->mode);
	a.uid = m->cr->uid;
	a.gid = m->cr->gid;
	if (pa.mode & S_ISGID) { /* BSD group semantics on setgid dirs, as Linux */
		a.gid = pa.gid;
		if (S_ISDIR(m->mode))
			a.mode |= S_ISGID;
	}
	a.nlink = S_ISDIR(m->mode) ? 2 : 1;
	a.rdev = m->rdev;
	a.atime_ns = a.mtime_ns = a.ctime_ns = now;
	if (S_ISDIR(m->mode))
		a.parent = m->parent;
	if (m->target) {
		struct ofs_key k;
		a.size = strlen(m->target);
		ofs_key_symlink(&k, ino);
		rc = ofs_add_put(t, &k, m->target, a.size);
		if (rc)
			return rc;
	}
	rc = ofs_put_attr(t, &a);
	if (rc)
		return rc;

	struct ofs_key k;
	uint8_t dv[OFS_DIRENT_LEN];
	ofs_key_dirent(&k, m->parent, m->name, m->len);
	rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	ofs_dirent_encode(ino, ofs_mode_dtype(m->mode), dv);
	rc = ofs_add_put(t, &k, dv, sizeof(dv));
	if (rc)
		return rc;

	ofs_key_inode(&k, m->parent);
	rc = ofs_add_guard_version(t, &k, pver);
	if (rc)
		return rc;
	if (S_ISDIR(m->mode))
		pa.nlink++;
	pa.mtime_ns = pa.ctime_ns = now;
	pa.change++;
	rc = ofs_put_attr(t, &pa);
	if (rc)
		return rc;
	m->out = a;
	return 0;
}

int ofs_op_mknod(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
		 const struct ofs_cred *cr, struct ofs_attr *out)
{
	size_t len;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	if (is_vdir_name(parent, name))
		return -EEXIST;
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFDIR:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (cr->uid != 0)
			return -EPERM; /* CAP_MKNOD, which only root has here */
		break;
	default:
		return -EINVAL;
	}
	if (ofs_pending_by_name(o, parent, name, len, out) == 0)
		return -EEXIST; /* a create on this node not committed yet */
	struct mknod_arg m = {parent, name, len, mode, rdev, NULL, cr, {0}};
	rc = ofs_run_txn(o, build_mknod, &m);
	if (rc == 0)
		*out = m.out;
	return rc;
}

int ofs_op_symlink(struct ofs *o, uint64_t parent, const char *name, const char *target,
		   const struct ofs_cred *cr, struct ofs_attr *out)
{
	size_t len;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	if (is_vdir_name(parent, name))
		return -EEXIST;
	size_t tlen = strlen(target);
	if (tlen > OFS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if (tlen == 0)
		return -ENOENT;
	if (ofs_pending_by_name(o, parent, name, len, out) == 0)
		return -EEXIST;
	struct mknod_arg m = {parent, name, len, S_IFLNK | 0777, 0, target, cr, {0}};
	rc = ofs_run_txn(o, build_mknod, &m);
	if (rc == 0)
		*out = m.out;
	return rc;
}

struct link_arg {
	uint64_t ino, parent;
	const char *name;
	size_t len;
	const struct ofs_cred *cr;
	struct ofs_attr out;
};

static int build_link(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct link_arg *l = arg;
	struct ofs_attr pa, a;
	uint64_t pver, ver, child;
	int rc = read_parent(o, l->parent, &pa, &pver);
	if (rc)
		return rc;
	rc = ofs_perm_search(l->cr, &pa);
	if (rc)
		return rc;
	rc = ofs_read_attr(o, l->ino, &a, &ver);
	if (rc)
		return rc;
	if (S_ISDIR(a.mode))
		return -EPERM;
	if (a.nlink == 0)
		return -ENOENT;
	if (a.nlink >= LINK_MAX_N)
		return -EMLINK;
	rc = ofs_read_dirent(o, l->parent, l->name, l->len, &child, NULL, NULL);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = ofs_perm_create(l->cr, &pa);
	if (rc)
		return rc;
	int64_t now = ofs_now_ns();
	struct ofs_key k;
	uint8_t dv[OFS_DIRENT_LEN];
	ofs_key_dirent(&k, l->parent, l->name, l->len);
	rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	ofs_dirent_encode(l->ino, ofs_mode_dtype(a.mode), dv);
	rc = ofs_add_put(t, &k, dv, sizeof(dv));
	if (rc)
		return rc;
	ofs_key_inode(&k, l->ino);
	rc = ofs_add_guard_version(t, &k, ver);
	if (rc)
		return rc;
	a.nlink++;
	a.ctime_ns = now;
	a.change++;
	rc = ofs_put_attr(t, &a);
	if (rc)
		return rc;
	if (l->parent != l->ino) {
		ofs_key_inode(&k, l->parent);
		rc = ofs_add_guard_version(t, &k, pver);
		if (rc)
			return rc;
		pa.mtime_ns = pa.ctime_ns = now;
		pa.change++;
		rc = ofs_put_attr(t, &pa);
		if (rc)
			return rc;
	}
	l->out = a;
	return 0;
}

int ofs_op_link(struct ofs *o, uint64_t ino, uint64_t newparent, const char *newname,
		const struct ofs_cred *cr, struct ofs_attr *out)
{
	size_t len;
	int rc = check_name(newname, &len);
	if (rc)
		return rc;
	if (ofs_ino_is_virtual(ino))
		return -EPERM;
	if (is_vdir_name(newparent, newname))
		return -EEXIST;
	if (ofs_pending_by_name(o, newparent, newname, len, out) == 0)
		return -EEXIST;
	rc = ofs_flush_ino(o, ino); /* a file created here and not committed yet */
	if (rc)
		return rc;
	struct link_arg l = {ino, newparent, newname, len, cr, {0}};
	rc = ofs_run_txn(o, build_link, &l);
	if (rc == 0) {
		*out = l.out;
		ofs_overlay_attr(o, out);
	}
	return rc;
}

/* Before a removal or a rename in the applied state: commits this node's
 * pending create of name, or (name a directory) of names in it, which
 * would otherwise not count (ofs_pending.c). */
static int commit_pending(struct ofs *o, uint64_t parent, const char *name, size_t len)
{
	uint64_t child;
	uint8_t dtype;
	int rc = ofs_pending_commit_name(o, parent, name, len);
	if (rc)
		return rc;
	rc = ofs_read_dirent(o, parent, name, len, &child, &dtype, NULL);
	if (rc == 0 && dtype == DT_DIR)
		return ofs_pending_commit_dir(o, child);
	return rc == -ENOENT || rc == 0 ? 0 : rc;
}

/* --- removing entries ------------------------------------------------------ */

/* Drops one link of a (already guarded, version-checked by the caller) in t.
 * A regular file left without links is not deleted at once but marked an
 * orphan of this node: its data stays for handles still open on it, here
 * or on other nodes (which this node cannot see), and this node's reaper
 * frees it once it is neither open nor known to the kernel here and the
 * grace period has passed (ofs_reap). Other inodes go at once. */
static int drop_link(struct ofs *o, struct kv_txn *t, struct ofs_attr *a, int64_t now)
{
	struct ofs_key k;
	bool dir = S_ISDIR(a->mode);
	a->nlink = dir ? 0 : a->nlink - 1;
	a->ctime_ns = now;
	a->change++;
	if (a->nlink > 0)
		return ofs_put_attr(t, a);
	if (S_ISREG(a->mode)) {
		uint8_t v[OFS_ORPHAN_LEN];
		int rc = ofs_put_attr(t, a);
		if (rc)
			return rc;
		ofs_key_orphan(&k, a->ino);
		ofs_orphan_encode(o->cfg.node_id, now, v);
		return ofs_add_put(t, &k, v, sizeof(v));
	}
	int rc;
	ofs_key_inode(&k, a->ino);
	rc = ofs_add_delete(t, &k);
	if (rc)
		return rc;
	ofs_key_xattr_prefix(&k, a->ino);
	rc = ofs_add_delete_prefix(t, &k);
	if (rc)
		return rc;
	if (S_ISLNK(a->mode)) {
		ofs_key_symlink(&k, a->ino);
		rc = ofs_add_delete(t, &k);
		if (rc)
			return rc;
	}
	return ofs_noderec_update(o, t, 0, -1, NULL);
}

struct has_any {
	bool found;
};

static int note_any(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		    uint64_t version)
{
	((struct has_any *)arg)->found = true;
	return 1;
}

static int dir_is_empty(struct ofs *o, uint64_t dir)
{
	struct ofs_key p;
	struct has_any h = {false};
	ofs_key_dir_prefix(&p, dir);
	if (ofs_kv_scan(o, p.b, p.len, NULL, 0, note_any, &h))
		return -EIO;
	return h.found ? -ENOTEMPTY : 0;
}

struct unlink_arg {
	uint64_t parent;
	const char *name;
	size_t len;
	bool dir; /* rmdir */
	const struct ofs_cred *cr;
	uint64_t child;
};

static int build_unlink(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct unlink_arg *u = arg;
	struct ofs_attr pa, a;
	uint64_t pver, dver, ver;
	uint8_t dtype;
	int rc = read_parent(o, u->parent, &pa, &pver);
	if (rc)
		return rc;
	rc = ofs_perm_search(u->cr, &pa);
	if (rc)
		return rc;
	rc = ofs_read_dirent(o, u->parent, u->name, u->len, &u->child, &dtype, &dver);
	if (rc)
		return rc;
	rc = ofs_read_attr(o, u->child, &a, &ver);
	if (rc)
		return rc == -ENOENT ? -EIO : rc;
	rc = ofs_perm_delete(u->cr, &pa, &a);
	if (rc)
		return rc;
	if (u->dir && !S_ISDIR(a.mode))
		return -ENOTDIR;
	if (!u->dir && S_ISDIR(a.mode))
		return -EISDIR;
	if (u->dir) {
		rc = dir_is_empty(o, u->child);
		if (rc)
			return rc;
	}
	int64_t now = ofs_now_ns();
	struct ofs_key k;
	ofs_key_dirent(&k, u->parent, u->name, u->len);
	rc = ofs_add_guard_version(t, &k, dver);
	if (rc)
		return rc;
	rc = ofs_add_delete(t, &k);
	if (rc)
		return rc;
	ofs_key_inode(&k, u->child);
	rc = ofs_add_guard_version(t, &k, ver);
	if (rc)
		return rc;
	ofs_key_inode(&k, u->parent);
	rc = ofs_add_guard_version(t, &k, pver);
	if (rc)
		return rc;
	if (u->dir)
		pa.nlink--;
	pa.mtime_ns = pa.ctime_ns = now;
	pa.change++;
	rc = ofs_put_attr(t, &pa);
	if (rc)
		return rc;
	return drop_link(o, t, &a, now);
}

static int do_unlink(struct ofs *o, uint64_t parent, const char *name, bool dir,
		     const struct ofs_cred *cr)
{
	size_t len = strlen(name);
	if (len > OFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (is_vdir_name(parent, name) || ofs_ino_is_virtual(parent))
		return -EROFS;
	if (dir && strcmp(name, ".") == 0)
		return -EINVAL;
	if (dir && strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	int rc = commit_pending(o, parent, name, len);
	if (rc)
		return rc;
	struct unlink_arg u = {parent, name, len, dir, cr, 0};
	return ofs_run_txn(o, build_unlink, &u);
}

int ofs_op_unlink(struct ofs *o, uint64_t parent, const char *name, const struct ofs_cred *cr)
{
	return do_unlink(o, parent, name, false, cr);
}

int ofs_op_rmdir(struct ofs *o, uint64_t parent, const char *name, const struct ofs_cred *cr)
{
	return do_unlink(o, parent, name, true, cr);
}

/* --- rename ----------------------------------------------------------------- */

/* The distinct inodes a rename touches, each read, guarded and written once. */
struct rn_set {
	struct ofs_attr a[4];
	uint64_t ver[4];
	bool keep[4]; /* write back (false: dropped by drop_link already) */
	size_t n;
};

static int rn_get(struct ofs *o, struct rn_set *s, uint64_t ino, struct ofs_attr **out)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->a[i].ino == ino) {
			*out = &s->a[i];
			return 0;
		}
	}
	int rc = ofs_read_attr(o, ino, &s->a[s->n], &s->ver[s->n]);
	if (rc)
		return rc;
	s->keep[s->n] = true;
	*out = &s->a[s->n++];
	return 0;
}

struct rename_arg {
	uint64_t parent, newparent;
	const char *name, *newname;
	size_t len, newlen;
	unsigned flags;
	const struct ofs_cred *cr;
};

/* The caller's rights for a rename of sa (in pa) onto the name of da (in
 * npa; NULL if there is none), as Linux's vfs_rename asks for them. */
static int rename_perm(const struct rename_arg *r, const struct ofs_attr *pa,
		       const struct ofs_attr *npa, const struct ofs_attr *sa,
		       const struct ofs_attr *da)
{
	int rc = ofs_perm_delete(r->cr, pa, sa);
	if (rc)
		return rc;
	rc = da ? ofs_perm_delete(r->cr, npa, da) : ofs_perm_create(r->cr, npa);
	if (rc)
		return rc;
	if (r->parent == r->newparent)
		return 0;
	/* A directory that moves elsewhere has its ".." rewritten. */
	if (S_ISDIR(sa->mode)) {
		rc = ofs_perm(r->cr, sa, OFS_MAY_WRITE);
		if (rc)
			return rc;
	}
	if (da && S_ISDIR(da->mode) && (r->flags & RENAME_EXCHANGE))
		return ofs_perm(r->cr, da, OFS_MAY_WRITE);
	return 0;
}

static int build_rename(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct rename_arg *r = arg;
	struct rn_set s = {.n = 0};
	struct ofs_attr *pa, *npa, *sa, *da = NULL;
	uint64_t sino, dino = 0, sdver, ddver = 0;
	uint8_t sdt, ddt = 0;
	struct ofs_key k;
	uint8_t dv[OFS_DIRENT_LEN];
	int rc = rn_get(o, &s, r->parent, &pa);
	if (rc)
		return rc;
	rc = rn_get(o, &s, r->newparent, &npa);
	if (rc)
		return rc;
	if (!S_ISDIR(pa->mode) || !S_ISDIR(npa->mode))
		return -ENOTDIR;
	rc = ofs_perm_search(r->cr, pa);
	if (rc == 0)
		rc = ofs_perm_search(r->cr, npa);
	if (rc)
		return rc;
	if (npa->nlink == 0)
		return -ENOENT;
	rc = ofs_read_dirent(o, r->parent, r->name, r->len, &sino, &sdt, &sdver);
	if (rc)
		return rc;
	rc = ofs_read_dirent(o, r->newparent, r->newname, r->newlen, &dino, &ddt, &ddver);
	if (rc && rc != -ENOENT)
		return rc;
	bool dst_exists = rc == 0;
	if ((r->flags & RENAME_NOREPLACE) && dst_exists)
		return -EEXIST;
	if ((r->flags & RENAME_EXCHANGE) && !dst_exists)
		return -ENOENT;
	if (dst_exists && dino == sino)
		return 0; /* two links to one inode: POSIX says do nothing */
	rc = rn_get(o, &s, sino, &sa);
	if (rc)
		return rc;
	if (dst_exists) {
		rc = rn_get(o, &s, dino, &da);
		if (rc)
			return rc;
	}
	bool sdir = S_ISDIR(sa->mode), ddir = da && S_ISDIR(da->mode);
	bool exchange = r->flags & RENAME_EXCHANGE;
	rc = rename_perm(r, pa, npa, sa, da);
	if (rc)
		return rc;
	if (dst_exists && !exchange) {
		if (sdir && !ddir)
			return -ENOTDIR;
		if (!sdir && ddir)
			return -EISDIR;
		if (ddir) {
			rc = dir_is_empty(o, dino);
			if (rc)
				return rc;
		}
	}
	/* A directory must not move into its own subtree; the parent chain is
	 * guarded, so two crossing moves on two nodes cannot make a cycle. */
	uint32_t depth;
	if (sdir && r->newparent != r->parent) {
		rc = dir_depth(o, t, r->newparent, &depth, sino);
		if (rc)
			return rc;
		if (depth + 1 > o->cfg.max_depth)
			return -ENAMETOOLONG;
	}
	if (exchange && ddir && r->newparent != r->parent) {
		rc = dir_depth(o, t, r->parent, &depth, dino);
		if (rc)
			return rc;
	}

	int64_t now = ofs_now_ns();
	ofs_key_dirent(&k, r->parent, r->name, r->len);
	rc = ofs_add_guard_version(t, &k, sdver);
	if (rc)
		return rc;
	ofs_key_dirent(&k, r->newparent, r->newname, r->newlen);
	if (dst_exists)
		rc = ofs_add_guard_version(t, &k, ddver);
	else
		rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	for (size_t i = 0; i < s.n; i++) {
		ofs_key_inode(&k, s.a[i].ino);
		rc = ofs_add_guard_version(t, &k, s.ver[i]);
		if (rc)
			return rc;
	}

	/* entries */
	ofs_key_dirent(&k, r->parent, r->name, r->len);
	if (exchange) {
		ofs_dirent_encode(dino, ddt, dv);
		rc = ofs_add_put(t, &k, dv, sizeof(dv));
	} else {
		rc = ofs_add_delete(t, &k);
	}
	if (rc)
		return rc;
	ofs_key_dirent(&k, r->newparent, r->newname, r->newlen);
	ofs_dirent_encode(sino, sdt, dv);
	rc = ofs_add_put(t, &k, dv, sizeof(dv));
	if (rc)
		return rc;

	/* link counts of the parents, parent fields of moved directories */
	if (r->parent != r->newparent) {
		if (sdir) {
			pa->nlink--;
			npa->nlink++;
			sa->parent = r->newparent;
		}
		if (exchange && ddir) {
			npa->nlink--;
			pa->nlink++;
			da->parent = r->parent;
		}
	}
	sa->ctime_ns = now;
	sa->change++;
	pa->mtime_ns = pa->ctime_ns = now;
	pa->change++;
	npa->mtime_ns = npa->ctime_ns = now;
	npa->change++;
	if (exchange) {
		da->ctime_ns = now;
		da->change++;
	} else if (dst_exists) {
		if (ddir)
			npa->nlink--;
		size_t di = (size_t)(da - s.a);
		s.keep[di] = false;
		rc = drop_link(o, t, da, now);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < s.n; i++) {
		if (!s.keep[i])
			continue;
		rc = ofs_put_attr(t, &s.a[i]);
		if (rc)
			return rc;
	}
	return 0;
}

int ofs_op_rename(struct ofs *o, uint64_t parent, const char *name, uint64_t newparent,
		  const char *newname, unsigned flags, const struct ofs_cred *cr)
{
	size_t len, newlen;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	int rc = check_name(name, &len);
	if (rc)
		return rc;
	rc = check_name(newname, &newlen);
	if (rc)
		return rc;
	if (is_vdir_name(parent, name) || is_vdir_name(newparent, newname) ||
	    ofs_ino_is_virtual(parent) || ofs_ino_is_virtual(newparent))
		return -EROFS;
	rc = commit_pending(o, parent, name, len);
	if (rc == 0)
		rc = commit_pending(o, newparent, newname, newlen);
	if (rc)
		return rc;
	struct rename_arg r = {parent, newparent, name, newname, len, newlen, flags, cr};
	return ofs_run_txn(o, build_rename, &r);
}

int ofs_op_readlink(struct ofs *o, uint64_t ino, char *buf, size_t cap)
{
	struct ofs_key k;
	void *val;
	size_t len;
	uint64_t ver;
	if (ofs_ino_is_virtual(ino))
		return -EINVAL;
	ofs_key_symlink(&k, ino);
	int rc = ofs_kv_get(o, k.b, k.len, &val, &len, &ver);
	if (rc == -ENOENT) {
		struct ofs_attr a;
		rc = ofs_attr_any(o, ino, &a, NULL);
		return rc ? rc : -EINVAL; /* not a symlink */
	}
	if (rc)
		return -EIO;
	if (len + 1 > cap) {
		free(val);
		return -ENAMETOOLONG;
	}
	memcpy(buf, val, len);
	buf[len] = '\0';
	free(val);
	return (int)len;
}

/* --- directories -------------------------------------------------------------- */

int ofs_dirent_list_add(struct ofs_dirent_list *l, uint64_t ino, uint8_t dtype, const char *name,
			size_t len)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct ofs_dirent_item *it = realloc(l->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		l->items = it;
		l->cap = cap;
	}
	char *nm = strndup(name, len);
	if (!nm)
		return -ENOMEM;
	l->items[l->n++] = (struct ofs_dirent_item){ino, dtype, nm};
	return 0;
}

void ofs_dirent_list_free(struct ofs_dirent_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].name);
	free(l->items);
	free(l);
}

static int list_entry(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	uint64_t parent, child;
	const char *name;
	size_t len;
	uint8_t dtype;
	if (ofs_key_parse_dirent(key, key_len, &parent, &name, &len) ||
	    ofs_dirent_decode(val, val_len, &child, &dtype))
		return 0; /* not ours to judge here; fsck material */
	return ofs_dirent_list_add(arg, child, dtype, name, len);
}

int ofs_op_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out)
{
	if (ofs_ino_is_virtual(ino))
		return ofs_virt_opendir(o, ino, out);
	struct ofs_attr a;
	int rc = ofs_read_attr(o, ino, &a, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	if (!S_ISDIR(a.mode))
		return -ENOTDIR;
	struct ofs_dirent_list *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	rc = ofs_dirent_list_add(l, ino, DT_DIR, ".", 1);
	if (!rc)
		rc = ofs_dirent_list_add(l, a.parent ? a.parent : ino, DT_DIR, "..", 2);
	if (!rc && ino == OFS_ROOT_INO)
		rc = ofs_dirent_list_add(l, OFS_VINO_DIR, DT_DIR, OFS_VDIR_NAME,
					 strlen(OFS_VDIR_NAME));
	if (!rc) {
		struct ofs_key p;
		ofs_key_dir_prefix(&p, ino);
		rc = ofs_kv_scan(o, p.b, p.len, NULL, 0, list_entry, l);
		if (rc && rc != -ENOMEM)
			rc = -EIO;
	}
	if (!rc)
		rc = ofs_pending_list(o, ino, l);
	if (rc) {
		ofs_dirent_list_free(l);
		return rc;
	}
	/* A listing with attributes (readdirplus) hands the kernel inodes it
	 * never looks up: remember their names for change notes. */
	for (size_t i = 2; i < l->n; i++)
		if (l->items[i].ino != OFS_VINO_DIR)
			ofs_names_learn(o, l->items[i].ino, ino, l->items[i].name,
					strlen(l->items[i].name));
	*out = l;
	return 0;
}

/* --- extended attributes ---------------------------------------------------- */

/* "system." names are POSIX ACLs and the like, which omnifs does not
 * enforce: refuse them rather than store something that looks applied. */
static int check_xattr_name(const char *name, size_t *len)
{
	*len = strlen(name);
	if (*len == 0)
		return -EINVAL;
	if (*len > OFS_NAME_MAX)
		return -ERANGE;
	if (strncmp(name, "system.", 7) == 0)
		return -EOPNOTSUPP;
	return 0;
}

struct xattr_arg {
	uint64_t ino;
	const char *name;
	size_t len;
	const void *val;
	size_t val_len;
	int flags;
	bool remove;
	const struct ofs_cred *cr;
};

/* Changing an extended attribute, as Linux's xattr_permission allows it:
 * trusted.* and security.* need root (CAP_SYS_ADMIN), user.* exist only on
 * files and directories, and a sticky directory's belong to its owner. */
static int xattr_perm(const struct ofs_cred *cr, const struct ofs_attr *a, const char *name)
{
	if (cr->uid == 0)
		return 0;
	if (strncmp(name, "trusted.", 8) == 0 || strncmp(name, "security.", 9) == 0)
		return -EPERM;
	if (strncmp(name, "user.", 5) == 0) {
		if (!S_ISREG(a->mode) && !S_ISDIR(a->mode))
			return -EPERM;
		if (S_ISDIR(a->mode) && (a->mode & S_ISVTX) && cr->uid != a->uid)
			return -EPERM;
	}
	return ofs_perm(cr, a, OFS_MAY_WRITE);
}

static int build_xattr(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct xattr_arg *x = arg;
	struct ofs_attr a;
	uint64_t ver, xver;
	struct ofs_key k;
	void *old;
	size_t olen;
	int rc = ofs_read_attr(o, x->ino, &a, &ver);
	if (rc)
		return rc;
	rc = xattr_perm(x->cr, &a, x->name);
	if (rc)
		return rc;
	ofs_key_xattr(&k, x->ino, x->name, x->len);
	rc = ofs_kv_get(o, k.b, k.len, &old, &olen, &xver);
	if (rc == 0)
		free(old);
	else if (rc != -ENOENT)
		return -EIO;
	bool exists = rc == 0;
	if (x->remove && !exists)
		return -ENODATA;
	if ((x->flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((x->flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	if (exists)
		rc = ofs_add_guard_version(t, &k, xver);
	else
		rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	if (x->remove)
		rc = ofs_add_delete(t, &k);
	else
		rc = ofs_add_put(t, &k, x->val, x->val_len);
	if (rc)
		return rc;
	ofs_key_inode(&k, x->ino);
	rc = ofs_add_guard_version(t, &k, ver);
	if (rc)
		return rc;
	a.ctime_ns = ofs_now_ns();
	a.change++;
	rc = ofs_put_attr(t, &a);
	if (rc)
		return rc;
	return 0;
}

int ofs_op_setxattr(struct ofs *o, uint64_t ino, const char *name, const void *val, size_t len,
		    int flags, const struct ofs_cred *cr)
{
	size_t nlen;
	if (ofs_ino_is_virtual(ino))
		return -EROFS;
	int rc = check_xattr_name(name, &nlen);
	if (rc)
		return rc;
	if (len > OFS_XATTR_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	rc = ofs_flush_ino(o, ino); /* a pending create first (ofs_pending.c) */
	if (rc)
		return rc;
	struct xattr_arg x = {ino, name, nlen, val, len, flags, false, cr};
	return ofs_run_txn(o, build_xattr, &x);
}

int ofs_op_removexattr(struct ofs *o, uint64_t ino, const char *name, const struct ofs_cred *cr)
{
	size_t nlen;
	if (ofs_ino_is_virtual(ino))
		return -EROFS;
	int rc = check_xattr_name(name, &nlen);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	rc = ofs_flush_ino(o, ino);
	if (rc)
		return rc;
	struct xattr_arg x = {ino, name, nlen, NULL, 0, 0, true, cr};
	return ofs_run_txn(o, build_xattr, &x);
}

int ofs_op_getxattr(struct ofs *o, uint64_t ino, const char *name, void *buf, size_t cap)
{
	size_t nlen;
	struct ofs_key k;
	void *val;
	size_t len;
	uint64_t ver;
	if (ofs_ino_is_virtual(ino))
		return -ENODATA;
	int rc = check_xattr_name(name, &nlen);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	ofs_key_xattr(&k, ino, name, nlen);
	rc = ofs_kv_get(o, k.b, k.len, &val, &len, &ver);
	if (rc == -ENOENT) {
		struct ofs_attr a;
		rc = ofs_attr_any(o, ino, &a, NULL);
		return rc ? rc : -ENODATA;
	}
	if (rc)
		return -EIO;
	if (cap > 0 && len > cap)
		rc = -ERANGE;
	else if (cap > 0)
		memcpy(buf, val, len);
	free(val);
	return rc ? rc : (int)len;
}

struct xlist {
	char *buf;
	size_t cap, len;
};

static int list_xattr(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	struct xlist *x = arg;
	uint64_t ino;
	const char *name;
	size_t len;
	if (ofs_key_parse_xattr(key, key_len, &ino, &name, &len))
		return 0;
	if (x->cap && x->len + len + 1 <= x->cap) {
		memcpy(x->buf + x->len, name, len);
		x->buf[x->len + len] = '\0';
	}
	x->len += len + 1;
	return 0;
}

int ofs_op_listxattr(struct ofs *o, uint64_t ino, char *buf, size_t cap)
{
	if (ofs_ino_is_virtual(ino))
		return 0;
	struct ofs_attr a;
	int rc = ofs_attr_any(o, ino, &a, NULL);
	if (rc)
		return rc;
	struct ofs_key p;
	struct xlist x = {buf, cap, 0};
	ofs_key_xattr_prefix(&p, ino);
	if (ofs_kv_scan(o, p.b, p.len, NULL, 0, list_xattr, &x))
		return -EIO;
	if (cap && x.len > cap)
		return -ERANGE;
	return (int)x.len;
}

int ofs_op_statfs(struct ofs *o, struct ofs_statfs *s)
{
	int64_t bytes, inodes;
	int rc = ofs_usage(o, &bytes, &inodes);
	if (rc)
		return rc;
	s->bsize = 4096;
	s->blocks = o->cfg.max_total_size / s->bsize;
	uint64_t used = ((uint64_t)bytes + s->bsize - 1) / s->bsize;
	s->bfree = used < s->blocks ? s->blocks - used : 0;
	s->files = o->cfg.max_inodes;
	s->ffree = (uint64_t)inodes < s->files ? s->files - (uint64_t)inodes : 0;
	s->namemax = OFS_NAME_MAX;
	return 0;
}
