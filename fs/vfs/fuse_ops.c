/*
 * The libfuse low-level adapter: the struct fuse_lowlevel_ops table, thin
 * handlers that turn requests into ofs_op_* calls and results into replies,
 * and the mount/run/stop/unmount lifecycle.
 *
 * Each handler answers exactly once, after its change is applied locally
 * (the ofs_op_* call blocks on the commit), and holds no lock while replying.
 * Lookup counts: every successful entry reply adds one (counted before the
 * reply so a quick forget cannot underflow, undone if the reply fails);
 * readdirplus counts only entries that fit, never "." and "..". Does not
 * parse command lines: the daemon passes a mountpoint and a struct ofs.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fuse_locks.h"
#include "log.h"
#include "ofs_int.h"
#include "readahead.h"

#define MAX_READ (1u << 20)

/* Every handler starts here: the caller's uid goes with the changes this
 * thread commits for it (change notes, ofs_note.c). */
static struct ofs *ofs_of(fuse_req_t req)
{
	ofs_note_set_caller((uint32_t)fuse_req_ctx(req)->uid);
	return fuse_req_userdata(req);
}

static struct ofs_file *file_of(struct fuse_file_info *fi)
{
	return (struct ofs_file *)(uintptr_t)fi->fh;
}

static void fill_entry(struct ofs *o, const struct ofs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 0; /* inode numbers are never reused */
	ofs_attr_to_stat(a, &e->attr);
	bool virt = ofs_ino_is_virtual(a->ino);
	e->attr_timeout = virt ? 0 : o->cfg.attr_timeout_s;
	e->entry_timeout = virt ? 0 : o->cfg.entry_timeout_s;
}

static void reply_entry(fuse_req_t req, int rc, const struct ofs_attr *a)
{
	struct ofs *o = ofs_of(req);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e;
	fill_entry(o, a, &e);
	ofs_lookup_ref(o, a->ino);
	if (fuse_reply_entry(req, &e) != 0)
		ofs_forget(o, a->ino, 1);
}

static void reply_attr(fuse_req_t req, int rc, const struct ofs_attr *a)
{
	struct ofs *o = ofs_of(req);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct stat st;
	ofs_attr_to_stat(a, &st);
	fuse_reply_attr(req, &st, ofs_ino_is_virtual(a->ino) ? 0 : o->cfg.attr_timeout_s);
}

/*
 * The caller of a change: fs uid and gid from the request, supplementary
 * groups read by libfuse from /proc (a caller already gone has its primary
 * group only, which can deny more but never allow more). Root needs none.
 */
#define CRED_GROUPS 64
struct req_cred {
	struct ofs_cred cr;
	gid_t local[CRED_GROUPS];
	gid_t *heap; /* more groups than local holds */
};

static const struct ofs_cred *cred_get(fuse_req_t req, struct req_cred *rc)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	rc->cr = (struct ofs_cred){c->uid, c->gid, NULL, 0, (int)c->pid};
	rc->heap = NULL;
	if (c->uid == 0)
		return &rc->cr;
	const gid_t *g = rc->local;
	int n = fuse_req_getgroups(req, CRED_GROUPS, rc->local);
	if (n > CRED_GROUPS) {
		rc->heap = malloc((size_t)n * sizeof(gid_t));
		int m = rc->heap ? fuse_req_getgroups(req, n, rc->heap) : -ENOMEM;
		if (m > 0 && m <= n) {
			g = rc->heap;
			n = m;
		} else {
			n = CRED_GROUPS; /* the ones we have */
		}
	}
	if (n > 0) {
		rc->cr.groups = g;
		rc->cr.ngroups = (size_t)n;
	}
	return &rc->cr;
}

static void cred_put(struct req_cred *rc)
{
	free(rc->heap);
	rc->heap = NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC reaches open, so the truncation can be committed lazily
	 * with the new content (no setattr(size=0) round first). */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* No writeback cache: write() must reach the node's buffer, which
	 * flush/fsync commit. */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* The kernel clears set-user-ID and set-group-ID on write, truncate
	 * and chown (a SETATTR of the mode, replicated like any other): our
	 * write and setattr do not. libfuse 3.14 wants HANDLE_KILLPRIV by
	 * default yet never sends it; later versions send it when wanted.
	 * Its v2 would not spare the security.capability getxattr that comes
	 * with the first write to each inode either (the kernel skips that
	 * only once the inode is marked S_NOSEC, after such a write). */
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	/* flock and fcntl locks come to us (fuse_locks.c): cluster-wide.
	 * Without a lock keeper the kernel keeps them, node-local. */
	struct ofs *o = userdata;
	unsigned locks = FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS;
	if (o->locks)
		conn->want |= conn->capable & locks;
	else
		conn->want &= ~locks;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_LOOKUP);
	struct ofs_attr a;
	int rc = ofs_op_lookup(ofs_of(req), parent, name, &a);
	reply_entry(req, rc, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	ofs_forget(ofs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		ofs_forget(ofs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_GETATTR);
	struct ofs_attr a;
	int rc = ofs_op_getattr(ofs_of(req), ino, &a);
	reply_attr(req, rc, &a);
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_SETATTR);
	struct ofs_setattr sa = {0};
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.mask |= OFS_SET_MODE;
		sa.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.mask |= OFS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.mask |= OFS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.mask |= OFS_SET_SIZE | (fi ? OFS_SET_HANDLE : 0);
		sa.size = attr->st_size < 0 ? 0 : (uint64_t)attr->st_size;
		if (attr->st_size < 0) {
			fuse_reply_err(req, EINVAL);
			return;
		}
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		sa.mask |= OFS_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.mask |= OFS_SET_ATIME;
		sa.atime_ns = ts_ns(&attr->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.mask |= OFS_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.mask |= OFS_SET_MTIME;
		sa.mtime_ns = ts_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.mask |= OFS_SET_CTIME;
		sa.ctime_ns = ts_ns(&attr->st_ctim);
	}
	struct ofs_attr a;
	struct req_cred rcr;
	int rc = ofs_op_setattr(ofs_of(req), ino, &sa, cred_get(req, &rcr), &a);
	cred_put(&rcr);
	reply_attr(req, rc, &a);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_READLINK);
	char buf[OFS_SYMLINK_MAX + 1];
	int rc = ofs_op_readlink(ofs_of(req), ino, buf, sizeof(buf));
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_MKNOD);
	struct req_cred rcr;
	struct ofs_attr a;
	int rc = ofs_op_mknod(ofs_of(req), parent, name, mode, (uint32_t)rdev, cred_get(req, &rcr),
			      &a);
	cred_put(&rcr);
	reply_entry(req, rc, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_MKDIR);
	struct req_cred rcr;
	struct ofs_attr a;
	int rc = ofs_op_mknod(ofs_of(req), parent, name, S_IFDIR | (mode & 07777), 0,
			      cred_get(req, &rcr), &a);
	cred_put(&rcr);
	reply_entry(req, rc, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_SYMLINK);
	struct req_cred rcr;
	struct ofs_attr a;
	int rc = ofs_op_symlink(ofs_of(req), parent, name, link, cred_get(req, &rcr), &a);
	cred_put(&rcr);
	reply_entry(req, rc, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_LINK);
	struct req_cred rcr;
	struct ofs_attr a;
	int rc = ofs_op_link(ofs_of(req), ino, newparent, newname, cred_get(req, &rcr), &a);
	cred_put(&rcr);
	reply_entry(req, rc, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_UNLINK);
	struct req_cred rcr;
	int rc = ofs_op_unlink(ofs_of(req), parent, name, cred_get(req, &rcr));
	cred_put(&rcr);
	fuse_reply_err(req, -rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_RMDIR);
	struct req_cred rcr;
	int rc = ofs_op_rmdir(ofs_of(req), parent, name, cred_get(req, &rcr));
	cred_put(&rcr);
	fuse_reply_err(req, -rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_RENAME);
	struct req_cred rcr;
	int rc = ofs_op_rename(ofs_of(req), parent, name, newparent, newname, flags,
			       cred_get(req, &rcr));
	cred_put(&rcr);
	fuse_reply_err(req, -rc);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_OPEN);
	struct ofs *o = ofs_of(req);
	struct ofs_file *f;
	struct req_cred rcr;
	int rc = ofs_op_open(o, ino, fi->flags, cred_get(req, &rcr), &f);
	cred_put(&rcr);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)f;
	fi->direct_io = ofs_ino_is_virtual(ino);
	fi->keep_cache = 0; /* drop cached pages at open: never older than the KV */
	if (fuse_reply_open(req, fi) != 0)
		ofs_op_release(o, f);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_CREATE);
	struct ofs *o = ofs_of(req);
	struct req_cred rcr;
	struct ofs_attr a;
	struct ofs_file *f;
	int rc = ofs_op_create(o, parent, name, mode, fi->flags, cred_get(req, &rcr), &a, &f);
	cred_put(&rcr);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e;
	fill_entry(o, &a, &e);
	fi->fh = (uintptr_t)f;
	ofs_lookup_ref(o, a.ino);
	if (fuse_reply_create(req, &e, fi) != 0) {
		ofs_op_release(o, f);
		ofs_forget(o, a.ino, 1);
	}
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_READ);
	if (size > MAX_READ)
		size = MAX_READ;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = ofs_op_read(ofs_of(req), file_of(fi), buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_WRITE);
	ssize_t n = ofs_op_write(ofs_of(req), file_of(fi), buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_FLUSH);
	ofs_locks_flush(ofs_of(req), ino, fi);
	fuse_reply_err(req,
		       -ofs_op_flush_by(ofs_of(req), file_of(fi), (int)fuse_req_ctx(req)->pid));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_RELEASE);
	ofs_locks_release(ofs_of(req), ino, fi);
	fuse_reply_err(req, -ofs_op_release(ofs_of(req), file_of(fi)));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_FSYNC);
	fuse_reply_err(req, -ofs_flush_ino(ofs_of(req), ino));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_OPENDIR);
	struct ofs *o = ofs_of(req);
	struct ofs_file *f = calloc(1, sizeof(*f));
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = ofs_op_opendir(o, ino, &f->dir);
	if (rc) {
		free(f);
		fuse_reply_err(req, -rc);
		return;
	}
	f->ino = ino;
	f->fresh = true;
	ofs_file_track(o, f);
	fi->fh = (uintptr_t)f;
	if (fuse_reply_open(req, fi) != 0)
		ofs_op_release(o, f);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct ofs *o = ofs_of(req);
	struct ofs_file *f = file_of(fi);
	if (off == 0 && f->ino != OFS_VINO_DIR && !f->fresh) {
		/* rewinddir: a fresh listing (the first read uses opendir's) */
		struct ofs_dirent_list *l;
		if (ofs_op_opendir(o, f->ino, &l) == 0) {
			ofs_dirent_list_free(f->dir);
			f->dir = l;
		}
	}
	f->fresh = false;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	struct ofs_dirent_list *l = f->dir;
	for (size_t i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
		struct ofs_dirent_item *it = &l->items[i];
		size_t want;
		if (!plus) {
			struct stat st = {0};
			st.st_ino = it->ino;
			st.st_mode = (mode_t)DTTOIF(it->dtype);
			want = fuse_add_direntry(req, buf + used, size - used, it->name, &st,
						 (off_t)(i + 1));
			if (want > size - used)
				break;
			used += want;
			continue;
		}
		struct fuse_entry_param e;
		bool dot = strcmp(it->name, ".") == 0 || strcmp(it->name, "..") == 0;
		struct ofs_attr a;
		if (dot || ofs_op_getattr(o, it->ino, &a) != 0) {
			/* no lookup for these: the kernel only takes the name */
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = it->ino;
			e.attr.st_mode = (mode_t)DTTOIF(it->dtype);
			want = fuse_add_direntry_plus(req, buf + used, size - used, it->name, &e,
						      (off_t)(i + 1));
			if (want > size - used)
				break;
			used += want;
			continue;
		}
		fill_entry(o, &a, &e);
		want = fuse_add_direntry_plus(req, buf + used, size - used, it->name, &e,
					      (off_t)(i + 1));
		if (want > size - used)
			break; /* did not fit: not counted */
		ofs_lookup_ref(o, a.ino);
		used += want;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_READDIR);
	do_readdir(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_READDIRPLUS);
	do_readdir(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_RELEASEDIR);
	ofs_op_release(ofs_of(req), file_of(fi));
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_FSYNCDIR);
	/* Directory changes are committed before their requests return. */
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_STATFS);
	struct ofs_statfs s;
	int rc = ofs_op_statfs(ofs_of(req), &s);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct statvfs sv = {0};
	sv.f_bsize = s.bsize;
	sv.f_frsize = s.bsize;
	sv.f_blocks = s.blocks;
	sv.f_bfree = s.bfree;
	sv.f_bavail = s.bfree;
	sv.f_files = s.files;
	sv.f_ffree = s.ffree;
	sv.f_favail = s.ffree;
	sv.f_namemax = s.namemax;
	fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_SETXATTR);
	struct req_cred rcr;
	int rc = ofs_op_setxattr(ofs_of(req), ino, name, value, size, flags, cred_get(req, &rcr));
	cred_put(&rcr);
	fuse_reply_err(req, -rc);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_GETXATTR);
	char *buf = NULL;
	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	int rc = ofs_op_getxattr(ofs_of(req), ino, name, buf, size);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_LISTXATTR);
	char *buf = NULL;
	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	int rc = ofs_op_listxattr(ofs_of(req), ino, buf, size);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_REMOVEXATTR);
	struct req_cred rcr;
	int rc = ofs_op_removexattr(ofs_of(req), ino, name, cred_get(req, &rcr));
	cred_put(&rcr);
	fuse_reply_err(req, -rc);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_ACCESS);
	/* default_permissions: the kernel checked the mode bits already. */
	struct ofs_attr a;
	int rc = ofs_op_getattr(ofs_of(req), ino, &a);
	if (rc == 0 && (mask & W_OK) && ofs_ino_is_virtual(ino))
		rc = -EROFS;
	fuse_reply_err(req, -rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_FALLOCATE);
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -ofs_op_fallocate(ofs_of(req), file_of(fi), mode, (uint64_t)offset,
					      (uint64_t)length));
}

static const struct fuse_lowlevel_ops ofs_ll_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.access = op_access,
	.fallocate = op_fallocate,
	.getlk = ofs_ll_getlk,
	.setlk = ofs_ll_setlk,
	.flock = ofs_ll_flock,
};

/*
 * Requests whose reply gives the kernel an inode run counted, around every
 * other layer (ofs_entry_reply_begin): an entry applied meanwhile keeps its
 * invalidations (inval.c). The ofs is taken before the call: the reply
 * frees req.
 */
static const struct fuse_lowlevel_ops *inner_of(struct ofs *o)
{
	return o->entry_inner_ops;
}

#define ENTRY_REPLY(call)                     \
	do {                                  \
		struct ofs *o_ = ofs_of(req); \
		ofs_entry_reply_begin(o_);    \
		inner_of(o_)->call;           \
		ofs_entry_reply_end(o_);      \
	} while (0)

static void ct_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	ENTRY_REPLY(lookup(req, parent, name));
}

static void ct_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	ENTRY_REPLY(mknod(req, parent, name, mode, rdev));
}

static void ct_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	ENTRY_REPLY(mkdir(req, parent, name, mode));
}

static void ct_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	ENTRY_REPLY(symlink(req, link, parent, name));
}

static void ct_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	ENTRY_REPLY(link(req, ino, newparent, newname));
}

static void ct_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	ENTRY_REPLY(create(req, parent, name, mode, fi));
}

static void ct_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	ENTRY_REPLY(readdirplus(req, ino, size, off, fi));
}

/* ops: inner, with the requests that give the kernel an inode counted. */
static int count_entry_replies(struct ofs *o, struct fuse_lowlevel_ops *ops,
			       const struct fuse_lowlevel_ops *inner)
{
	struct fuse_lowlevel_ops *copy = malloc(sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	*copy = *inner;
	o->entry_inner_ops = copy;
	*ops = *inner;
	ops->lookup = ct_lookup;
	ops->mknod = ct_mknod;
	ops->mkdir = ct_mkdir;
	ops->symlink = ct_symlink;
	ops->link = ct_link;
	ops->create = ct_create;
	ops->readdirplus = ct_readdirplus;
	return 0;
}

static void *waker_main(void *arg);

/* A directory that is not already a mount point (a stale FUSE mount left by
 * a killed daemon answers ENOTCONN). */
static int check_mountpoint(const char *path)
{
	struct stat st, up;
	char parent[PATH_MAX];
	if (stat(path, &st) != 0) {
		int e = errno;
		if (e == ENOTCONN) {
			log_err("fs: %s is a stale mount (a daemon died): run fusermount3 -u -z %s",
				path, path);
			return -EBUSY;
		}
		log_err("fs: mountpoint %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("fs: mountpoint %s is not a directory", path);
		return -ENOTDIR;
	}
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(parent, &up) == 0 && up.st_dev != st.st_dev) {
		log_err("fs: %s is already a mount point", path);
		return -EBUSY;
	}
	return 0;
}

int ofs_mount(struct ofs *o, const char *mountpoint)
{
	if (o->mounted)
		return -EBUSY;
	int rc = check_mountpoint(mountpoint);
	if (rc)
		return rc;
	/* nosuid, nodev: setuid bits and device nodes are replicated data
	 * that any member can write, never rights on this machine. libfuse
	 * mounts with both unless told "suid" or "dev", even as root; written
	 * out here, they cannot go with a change of its defaults or ours
	 * (tests/integration/test_fs_ops.sh reads them back). */
	char *argv[] = {"omnifs", "-o",
			"allow_other,default_permissions,nosuid,nodev,fsname=omnifs,subtype=omnifs",
			"-d", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(o->cfg.debug ? 4 : 3, argv);
	o->mountpoint = strdup(mountpoint);
	if (!o->mountpoint)
		return -ENOMEM;
	o->mount_real = realpath(mountpoint, NULL); /* NULL: flushes never deferred */
	/* The replay thread's requests are answered by wrappers around these
	 * (fuse_replay.c), and the entry count wraps both; libfuse copies the
	 * table. */
	struct fuse_lowlevel_ops replayed, ops;
	ofs_replay_wrap(o, &replayed, &ofs_ll_ops);
	if (count_entry_replies(o, &ops, &replayed) != 0) {
		log_err("fs: out of memory setting up the mount");
		fuse_opt_free_args(&args);
		goto out_free_mountpoint;
	}
	o->se = fuse_session_new(&args, &ops, sizeof(ops), o);
	fuse_opt_free_args(&args);
	if (!o->se) {
		log_err("fs: cannot create the FUSE session");
		goto out_free_mountpoint;
	}
	if (fuse_session_mount(o->se, mountpoint) != 0) {
		log_err("fs: cannot mount on %s (see the message above)", mountpoint);
		goto out_destroy_session;
	}
	o->mounted = true;
	if (o->mount_real)
		ofs_set_readahead_after_init(o->mount_real, o->cfg.read_ahead_kb);
	rc = ofs_inval_start(o);
	if (rc == 0)
		rc = ofs_replay_start(o);
	if (rc == 0)
		rc = ofs_reaper_start(o);
	if (rc == 0 && pipe2(o->wake_pipe, O_CLOEXEC) != 0)
		rc = -errno;
	if (rc == 0) {
		rc = -pthread_create(&o->waker, NULL, waker_main, o);
		o->waker_running = rc == 0;
	}
	if (rc) {
		log_err("fs: cannot start a thread: %s", strerror(-rc));
		ofs_unmount(o);
		return rc;
	}
	log_info("fs: mounted on %s", mountpoint);
	return 0;

out_destroy_session:
	fuse_session_destroy(o->se);
	o->se = NULL;
out_free_mountpoint:
	free(o->mountpoint);
	o->mountpoint = NULL;
	free(o->mount_real);
	o->mount_real = NULL;
	free(o->entry_inner_ops);
	o->entry_inner_ops = NULL;
	return -EIO;
}

int ofs_run(struct ofs *o)
{
	if (!o->mounted)
		return -EINVAL;
	/* SIGTERM, SIGINT, SIGHUP end the loop, unless the process has its own
	 * handlers (libfuse installs its only over default dispositions). */
	bool handlers = fuse_set_signal_handlers(o->se) == 0;
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	/* Workers that go idle stay (as many as may run): with fewer kept,
	 * parallel writers, whose flushes each hold a worker for a round,
	 * made the loop end and start a thread for about every third file
	 * (8 writers: 1,265 threads in 3,200 files; 6% of the daemons' CPU
	 * per file). */
	fuse_loop_cfg_set_max_threads(lc, 16);
	fuse_loop_cfg_set_idle_threads(lc, 16);
	int rc = fuse_session_loop_mt(o->se, lc);
	fuse_loop_cfg_destroy(lc);
	if (handlers)
		fuse_remove_signal_handlers(o->se);
	if (rc < 0)
		return rc;
	return 0; /* > 0: ended by a signal, a normal stop */
}

/*
 * The loop's workers wait in read(2) on /dev/fuse and look at the exit flag
 * after each request, so stopping means sending one: a statfs on the
 * mountpoint (never cached by the kernel). It may block until the request is
 * served or the connection goes away at unmount, so it runs on this thread,
 * which ofs_stop wakes with one byte on a pipe (async-signal-safe, and
 * independent of what the caller did with signal masks).
 *
 * Before the exit flag, this thread stops the invalidation thread and the
 * replay thread (fuse_replay.c, whose calls on the mount wait the same way),
 * while the workers still serve: an entry invalidation waits in the kernel for its
 * directory's lock, which a rename or create in that directory holds until
 * it is answered. Once the loop has ended, nothing answers it, and the join
 * in ofs_unmount would wait forever (a SIGTERM under load hung the daemon).
 */
static void *waker_main(void *arg)
{
	struct ofs *o = arg;
	pthread_setname_np(pthread_self(), "ofs-waker");
	bool woken = false;
	for (;;) {
		struct pollfd pfd = {.fd = o->wake_pipe[0], .events = POLLIN};
		int n = poll(&pfd, 1, 1000);
		char c = 0;
		if (n > 0 && read(o->wake_pipe[0], &c, 1) == 1 && c == 'q')
			break;
		/* Also libfuse's own signal handlers, when a signal lands on a
		 * thread outside the loop, only set the exit flag: look at it. */
		if (c == 'w' || (!woken && fuse_session_exited(o->se))) {
			struct statvfs sv;
			woken = true;
			ofs_inval_stop(o);
			ofs_replay_stop(o);
			fuse_session_exit(o->se);
			(void)statvfs(o->mountpoint, &sv);
		}
	}
	return NULL;
}

void ofs_stop(struct ofs *o)
{
	if (!o->se)
		return;
	if (!o->waker_running) {
		fuse_session_exit(o->se);
		return;
	}
	/* The waker sets the exit flag once the invalidation thread is stopped. */
	char c = 'w';
	ssize_t n = write(o->wake_pipe[1], &c, 1);
	(void)n;
}

int ofs_unmount(struct ofs *o)
{
	if (!o->se)
		return 0;
	ofs_locks_unmounting(o);
	ofs_flush_all(o);
	ofs_reaper_stop(o);
	ofs_inval_stop(o);
	ofs_replay_stop(o);
	if (o->mounted) {
		fuse_session_unmount(o->se); /* fails a statfs of the waker, if pending */
		o->mounted = false;
		log_info("fs: unmounted %s", o->mountpoint ? o->mountpoint : "");
	}
	if (o->waker_running) {
		char c = 'q';
		ssize_t n = write(o->wake_pipe[1], &c, 1);
		(void)n;
		pthread_join(o->waker, NULL);
		o->waker_running = false;
	}
	if (o->wake_pipe[0] >= 0) {
		close(o->wake_pipe[0]);
		close(o->wake_pipe[1]);
		o->wake_pipe[0] = o->wake_pipe[1] = -1;
	}
	fuse_session_destroy(o->se);
	o->se = NULL;
	free(o->mountpoint);
	o->mountpoint = NULL;
	free(o->mount_real);
	o->mount_real = NULL;
	free(o->entry_inner_ops);
	o->entry_inner_ops = NULL;
	return 0;
}
