/*
 * The FUSE side of cluster-wide locks: getlk, setlk and flock requests
 * become requests to the node's lock keeper (locks.h), and close releases
 * what the kernel no longer holds.
 *
 * Who owns a lock: the kernel's lock owner id (fi->lock_owner): for POSIX
 * locks the process's file table, for flock and open file description locks
 * the open file. A blocking request (F_SETLKW, flock without LOCK_NB) does
 * not hold a FUSE thread: it is answered from the keeper's thread when
 * granted, or with EINTR when the kernel interrupts it (a signal), which
 * cancels it in the keeper so no waiter is left behind.
 *
 * Releases: flush (every close(2)) drops the closing process's POSIX locks
 * on the file, as POSIX says; release (the last close of an open file)
 * drops its flock and open file description locks, and anything else still
 * taken through it. Both skip the round trip when this node holds nothing on
 * the file. A process that exits closes its files, so its locks go too.
 *
 * F_GETLK reports a conflicting holder's pid when it is on this node, and
 * l_pid 0 when it is on another node (a pid of another machine would name
 * an unrelated local process): `omnifsctl locks` shows node and pid.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>

#include "fuse_locks.h"
#include "locks.h"
#include "ofs_int.h"

void ofs_set_locks(struct ofs *o, struct ofs_locks *l)
{
	o->locks = l;
}

/* What the kernel is told when the cluster could not decide (no quorum, a
 * timeout, shutting down): fcntl(2) and flock(2) document ENOLCK for a lock
 * service that failed. */
static int lock_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case -EAGAIN:
	case -EINTR:
	case -ENOMEM:
		return -rc;
	default:
		return ENOLCK;
	}
}

static void reply_done(void *ctx, int rc)
{
	fuse_req_t req = ctx;
	struct ofs *o = fuse_req_userdata(req);
	/* What the previous holder wrote was applied here before its release
	 * and our grant: once the kernel has dropped what it cached of it, the
	 * new holder reads it through the mount. Best effort, bounded (this
	 * runs on the keeper: other lock requests of the node wait). */
	if (rc == 0)
		ofs_wait_invalidations(o, ofs_locks_lease_ms(o->locks) / 2);
	fuse_reply_err(req, lock_errno(rc));
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct ofs *o = fuse_req_userdata(req);
	ofs_locks_cancel(o->locks, (uint64_t)(uintptr_t)data);
}

/* Hands q to the keeper; the answer goes out from its thread. */
static void submit(fuse_req_t req, struct ofs *o, fuse_ino_t ino, const struct lk_holder *q,
		   bool wait)
{
	struct lk_key res;
	lk_res_inode(&res, ino);
	/* A file created here and not committed yet: its inode must be the
	 * name's everywhere before anyone locks it (ofs_pending.c). */
	int rc = q->type == LK_UNLOCK ? 0 : ofs_pending_commit_ino(o, ino);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	uint64_t id = ofs_locks_new_id(o->locks);
	if (wait) /* before the submit: the request may be answered at once */
		fuse_req_interrupt_func(req, on_interrupt, (void *)(uintptr_t)id);
	ofs_locks_submit(o->locks, id, OFS_LOCK_SET, &res, q, wait, o, reply_done, req);
}

void ofs_ll_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_GETLK);
	struct ofs *o = fuse_req_userdata(req);
	if (!o->locks) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	struct lk_holder q = {.owner = fi->lock_owner, .kind = LK_POSIX};
	q.type = lock->l_type == F_WRLCK ? LK_WRITE : LK_READ;
	q.start = (uint64_t)lock->l_start;
	q.end = lock->l_len == 0 ? LK_EOF : (uint64_t)(lock->l_start + lock->l_len - 1);
	struct lk_key res;
	lk_res_inode(&res, ino);
	struct lk_holder h;
	int rc = ofs_locks_test(o->locks, &res, &q, &h);
	if (rc < 0) {
		fuse_reply_err(req, lock_errno(rc));
		return;
	}
	struct flock out = *lock;
	if (rc == 0) {
		out.l_type = F_UNLCK;
	} else {
		out.l_type = h.type == LK_WRITE ? F_WRLCK : F_RDLCK;
		out.l_whence = SEEK_SET;
		out.l_start = (off_t)h.start;
		out.l_len = h.end == LK_EOF ? 0 : (off_t)(h.end - h.start + 1);
		out.l_pid = h.node == ofs_locks_node(o->locks) ? (pid_t)h.pid : 0;
	}
	fuse_reply_lock(req, &out);
}

void ofs_ll_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
		  int sleep)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_SETLK);
	struct ofs *o = fuse_req_userdata(req);
	if (!o->locks) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	struct lk_holder q = {.owner = fi->lock_owner, .fh = fi->fh, .kind = LK_POSIX};
	q.type = lock->l_type == F_WRLCK ? LK_WRITE : lock->l_type == F_RDLCK ? LK_READ : LK_UNLOCK;
	q.start = (uint64_t)lock->l_start;
	q.end = lock->l_len == 0 ? LK_EOF : (uint64_t)(lock->l_start + lock->l_len - 1);
	q.pid = lock->l_pid > 0 ? (uint32_t)lock->l_pid : (uint32_t)fuse_req_ctx(req)->pid;
	submit(req, o, ino, &q, sleep && q.type != LK_UNLOCK);
}

void ofs_ll_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	OFS_FOP_TIMED(fuse_req_userdata(req), OFS_FOP_FLOCK);
	struct ofs *o = fuse_req_userdata(req);
	if (!o->locks) {
		fuse_reply_err(req, ENOLCK);
		return;
	}
	struct lk_holder q = {.owner = fi->lock_owner, .fh = fi->fh, .kind = LK_FLOCK};
	int what = op & (LOCK_SH | LOCK_EX | LOCK_UN);
	q.type = what == LOCK_EX ? LK_WRITE : what == LOCK_SH ? LK_READ : LK_UNLOCK;
	q.start = 0;
	q.end = LK_EOF;
	q.pid = (uint32_t)fuse_req_ctx(req)->pid;
	submit(req, o, ino, &q, !(op & LOCK_NB) && q.type != LK_UNLOCK);
}

void ofs_locks_flush(struct ofs *o, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lk_key res;
	lk_res_inode(&res, ino);
	if (!o->locks || !ofs_locks_maybe_held(o->locks, &res))
		return;
	struct lk_holder q = {.owner = fi->lock_owner, .kind = LK_POSIX};
	ofs_locks_call(o->locks, OFS_LOCK_DROP_OWNER, &res, &q);
}

void ofs_locks_release(struct ofs *o, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lk_key res;
	lk_res_inode(&res, ino);
	if (!o->locks || !ofs_locks_maybe_held(o->locks, &res))
		return;
	if (fi->flock_release) {
		struct lk_holder q = {.owner = fi->lock_owner, .kind = LK_FLOCK};
		ofs_locks_call(o->locks, OFS_LOCK_DROP_OWNER, &res, &q);
	}
	struct lk_holder q = {.fh = fi->fh};
	ofs_locks_call(o->locks, OFS_LOCK_DROP_FH, &res, &q);
}

void ofs_locks_unmounting(struct ofs *o)
{
	if (o->locks)
		ofs_locks_cancel_tag(o->locks, o);
}
