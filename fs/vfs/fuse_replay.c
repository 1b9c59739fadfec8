/*
 * The replay thread and the answers to its requests (see replay.c for why
 * changes from other nodes are replayed on the mount at all).
 *
 * The thread pops one item at a time and performs it as a system call on
 * this node's mount, by path (ofs_replay_path: names as they were before the
 * change, as the kernel has them once the items before it are replayed). The
 * kernel sends the FUSE requests that call makes with the thread's id as
 * their pid, so the wrapped handlers below tell them apart and answer from
 * the state already applied, never proposing anything: a lookup or getattr
 * answers as the state was before the change (the item's view: the names on
 * the way are those the kernel has then, a directory removed by a later
 * change included; negative answers are not cached, names and attributes
 * taken from that view get no timeout, so nothing stale outlives the call,
 * while the attributes of an inode that still exists, read from the state
 * now as any getattr's, get the usual timeout unless the kernel is about to
 * change them itself (the link count of an unlink's or rename's victim):
 * the next replay in the same directory then asks only for what changed
 * since), a create, mknod, mkdir or
 * symlink answers with the entry now, an unlink, rmdir or rename answers 0,
 * a setattr answers the
 * attributes now, and an open answers with a handle of its own on which
 * flush, fallocate and release do nothing. None of them writes, so the
 * replay neither proposes again nor touches atime or mtime.
 *
 * The kernel: a create must not find a valid positive dentry for its name
 * (a reader may have looked the new name up since the apply), so its name,
 * and a rename's target, is invalidated first, and an EEXIST is retried
 * once after invalidating again. A call that still fails is counted
 * (replays_failed) and its names are invalidated, so no answer of the
 * replay stays in the kernel's cache.
 *
 * Directory locks: the thread's calls take the kernel's directory locks
 * like any program's, and may wait behind a local change that waits for a
 * quorum; that delays the replay only: the apply hook never waits for this
 * thread (the queue is bounded and drops). Stopping: the waker stops this
 * thread before it ends the loop (its last call is still answered), and
 * ofs_unmount stops it too; a daemon that dies has its connection aborted
 * by the guardian, which fails any call in flight.
 *
 * The kernel checks permissions for these calls as for any caller: the
 * daemon must be root with CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_MKNOD (for
 * device nodes), or the replays of what it may not do fail and are counted.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ofs_int.h"

/* The handle of the thread's opens: nothing behind it. */
static const char replay_handle;
#define REPLAY_FH ((uint64_t)(uintptr_t)&replay_handle)

static struct ofs *ofs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const struct fuse_lowlevel_ops *base_of(fuse_req_t req)
{
	return ofs_of(req)->rp_base_ops;
}

static bool from_replay(fuse_req_t req)
{
	int tid = __atomic_load_n(&ofs_of(req)->rp_tid, __ATOMIC_ACQUIRE);
	return tid != 0 && fuse_req_ctx(req)->pid == tid;
}

/* --- the handlers ------------------------------------------------------------- */

/* The timeout of what the replay answers: what the view says holds for
 * this call only (0); what the state says now may be cached as any
 * request's answer (then the change's next replay need not ask again). */
static double timeout_of(uint64_t ino, bool now, double t)
{
	return now && !ofs_ino_is_virtual(ino) ? t : 0;
}

/* An entry whose name the view gave (entry_now false: the kernel keeps the
 * name for this call only) and whose attributes are the view's or now's. */
static void reply_entry(fuse_req_t req, int rc, const struct ofs_attr *a, bool entry_now,
			bool attr_now)
{
	struct ofs *o = ofs_of(req);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	ofs_attr_to_stat(a, &e.attr);
	e.entry_timeout = timeout_of(a->ino, entry_now, o->cfg.entry_timeout_s);
	e.attr_timeout = timeout_of(a->ino, attr_now, o->cfg.attr_timeout_s);
	ofs_lookup_ref(o, a->ino);
	if (fuse_reply_entry(req, &e) != 0)
		ofs_forget(o, a->ino, 1);
}

static void rp_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ofs_attr a;
	bool now = false;
	int rc = from_replay(req) ? ofs_replay_lookup(ofs_of(req), parent, name, &a, &now) : 0;
	if (rc == 0)
		base_of(req)->lookup(req, parent, name);
	else
		reply_entry(req, rc > 0 ? 0 : rc, &a, false, now);
}

static void rp_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ofs *o = ofs_of(req);
	struct ofs_attr a;
	bool now;
	if (!from_replay(req) || ofs_replay_getattr(o, ino, &a, &now) != 1) {
		base_of(req)->getattr(req, ino, fi);
		return;
	}
	struct stat st;
	ofs_attr_to_stat(&a, &st);
	fuse_reply_attr(req, &st, timeout_of(a.ino, now, o->cfg.attr_timeout_s));
}

static void created(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ofs_attr a;
	bool now;
	int rc = ofs_replay_created(ofs_of(req), parent, name, &a, &now);
	reply_entry(req, rc, &a, now, now);
}

static void rp_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (from_replay(req))
		created(req, parent, name);
	else
		base_of(req)->mknod(req, parent, name, mode, rdev);
}

static void rp_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	if (from_replay(req))
		created(req, parent, name);
	else
		base_of(req)->mkdir(req, parent, name, mode);
}

static void rp_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	if (from_replay(req))
		created(req, parent, name);
	else
		base_of(req)->symlink(req, link, parent, name);
}

static void rp_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	if (!from_replay(req)) {
		base_of(req)->create(req, parent, name, mode, fi);
		return;
	}
	struct ofs *o = ofs_of(req);
	struct ofs_attr a;
	bool now;
	int rc = ofs_replay_created(o, parent, name, &a, &now);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	ofs_attr_to_stat(&a, &e.attr);
	e.entry_timeout = timeout_of(a.ino, now, o->cfg.entry_timeout_s);
	e.attr_timeout = timeout_of(a.ino, now, o->cfg.attr_timeout_s);
	fi->fh = REPLAY_FH;
	fi->noflush = 1; /* see rp_open */
	ofs_lookup_ref(o, a.ino);
	if (fuse_reply_create(req, &e, fi) != 0)
		ofs_forget(o, a.ino, 1);
}

static void rp_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (from_replay(req))
		fuse_reply_err(req, 0);
	else
		base_of(req)->unlink(req, parent, name);
}

static void rp_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (from_replay(req))
		fuse_reply_err(req, 0);
	else
		base_of(req)->rmdir(req, parent, name);
}

static void rp_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	if (from_replay(req))
		fuse_reply_err(req, 0);
	else
		base_of(req)->rename(req, parent, name, newparent, newname, flags);
}

static void rp_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	if (!from_replay(req)) {
		base_of(req)->setattr(req, ino, attr, to_set, fi);
		return;
	}
	struct ofs *o = ofs_of(req);
	struct ofs_attr a;
	int rc = ofs_op_getattr(o, ino, &a);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct stat st;
	ofs_attr_to_stat(&a, &st);
	fuse_reply_attr(req, &st, 0);
}

static void rp_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!from_replay(req)) {
		base_of(req)->open(req, ino, fi);
		return;
	}
	fi->fh = REPLAY_FH;
	fi->keep_cache = 0; /* the open drops cached pages: readers see the change */
	/* No FLUSH at its close (FOPEN_NOFLUSH; inotify's IN_CLOSE_WRITE comes
	 * from the close itself): a daemon killed while the thread holds the
	 * file would otherwise wait, as it exits, for its own answer to the
	 * flush of its own mount, in D state for ever once its guardian is gone
	 * too (systemd's final SIGKILL to the whole unit). */
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void rp_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, EBADF);
	else
		base_of(req)->read(req, ino, size, off, fi);
}

static void rp_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, EBADF);
	else
		base_of(req)->write(req, ino, buf, size, off, fi);
}

static void rp_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, 0);
	else
		base_of(req)->flush(req, ino, fi);
}

static void rp_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, 0);
	else
		base_of(req)->release(req, ino, fi);
}

static void rp_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, 0);
	else
		base_of(req)->fsync(req, ino, datasync, fi);
}

static void rp_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	if (fi->fh == REPLAY_FH)
		fuse_reply_err(req, 0);
	else
		base_of(req)->fallocate(req, ino, mode, offset, length, fi);
}

void ofs_replay_wrap(struct ofs *o, struct fuse_lowlevel_ops *ops,
		     const struct fuse_lowlevel_ops *base)
{
	o->rp_base_ops = base;
	*ops = *base;
	ops->lookup = rp_lookup;
	ops->getattr = rp_getattr;
	ops->mknod = rp_mknod;
	ops->mkdir = rp_mkdir;
	ops->symlink = rp_symlink;
	ops->create = rp_create;
	ops->unlink = rp_unlink;
	ops->rmdir = rp_rmdir;
	ops->rename = rp_rename;
	ops->setattr = rp_setattr;
	ops->open = rp_open;
	ops->read = rp_read;
	ops->write = rp_write;
	ops->flush = rp_flush;
	ops->release = rp_release;
	ops->fsync = rp_fsync;
	ops->fallocate = rp_fallocate;
}

/* --- the thread ---------------------------------------------------------------- */

static void inval_entry(struct ofs *o, const struct ofs_replay_entry *e)
{
	int rc = fuse_lowlevel_notify_inval_entry(o->se, e->parent, e->name, strlen(e->name));
	if (rc && rc != -ENOENT)
		log_debug("fs: replay: invalidation of %s failed: %s", e->name, strerror(-rc));
}

/* How long the thread waits for the kernel to forget a directory it let go
 * (let_go): its FORGET comes within microseconds unless someone holds it. */
#define LET_GO_WAIT_US 5000
#define LET_GO_POLL_US 100

/*
 * The kernel holds a directory the replay just made for the replay alone:
 * the thread lets it go, so that changes made in it while nobody here looks
 * at it need no replay either (ofs_replay_unseen). Dropping its name makes
 * the kernel evict it and send its FORGET at once; the thread waits for
 * that (briefly: a watch set on it meanwhile keeps it held), as the changes
 * made in a new directory often come right behind its creation.
 */
static void let_go(struct ofs *o, const struct ofs_replay_entry *e, uint64_t ino)
{
	inval_entry(o, e);
	const struct timespec poll = {0, LET_GO_POLL_US * 1000};
	for (unsigned waited = 0; waited < LET_GO_WAIT_US && ofs_ino_known(o, ino);
	     waited += LET_GO_POLL_US)
		nanosleep(&poll, NULL);
}

/* The mount's path of name in directory dir (name NULL: dir itself). */
static int full_path(struct ofs *o, const struct ofs_replay_item *it, uint64_t dir,
		     const char *name, char *buf, size_t cap)
{
	size_t mlen = strlen(o->mountpoint);
	if (mlen >= cap)
		return -ENAMETOOLONG;
	memcpy(buf, o->mountpoint, mlen);
	int rc = ofs_replay_path(o, it, dir, name, buf + mlen, cap - mlen);
	if (rc == 0 && strcmp(buf + mlen, "/") == 0)
		buf[mlen] = '\0';
	return rc;
}

/*
 * A file the thread keeps open for writing between items: a program on
 * another node that creates a file, writes it and sets its attributes holds
 * it open across those changes, and its watchers here should see one IN_OPEN
 * ... IN_CLOSE_WRITE around them, not one per change; above all, not an
 * IN_CLOSE_WRITE between the create and the content, which are two entries
 * of the log (a watcher would read an empty file), nor between an empty
 * commit and the content (`echo x > f` in a shell flushes the truncation
 * when it closes its first descriptor, then the content). The log does not
 * say when that program closed the file: the thread closes it when an item
 * about another file comes, or when none came for OFS_REPLAY_LINGER_MS
 * after a change that left content, OFS_REPLAY_LINGER_EMPTY_MS after a
 * create or a change that left the file empty (content likely follows).
 * Two exceptions close it at once. A change of attributes alone to a file
 * with content: attributes set through the descriptor while writing commit
 * with the content (ofs_fold.c), so that program had closed the file before
 * (`cp f; chmod 755 f`), and its close comes first here too. And a file with
 * content and an execute bit: the kernel refuses to run a file open for
 * writing (ETXTBSY), and a script or program written on one node is run on
 * another as soon as it is seen there.
 */
#define OFS_REPLAY_LINGER_MS	   25
#define OFS_REPLAY_LINGER_EMPTY_MS 1000

struct held {
	int fd; /* -1: none */
	uint64_t ino;
	bool full;     /* the last change through it left content */
	bool runnable; /* ... and an execute bit: not kept open after it */
};

static void set_holding(struct ofs *o, bool holding)
{
	pthread_mutex_lock(&o->rp_lock);
	o->rp_holding = holding;
	pthread_mutex_unlock(&o->rp_lock);
}

static void release_held(struct ofs *o, struct held *h)
{
	if (h->fd < 0)
		return;
	close(h->fd); /* IN_CLOSE_WRITE */
	h->fd = -1;
	h->ino = 0;
	h->full = false;
	h->runnable = false;
	set_holding(o, false);
}

static void hold(struct ofs *o, struct held *h, int fd, uint64_t ino)
{
	h->fd = fd;
	h->ino = ino;
	h->full = false;
	h->runnable = false;
	set_holding(o, true);
}

/*
 * The IN_MODIFY of new content, on a file the thread holds open: a
 * futimens of the mtime alone (the kernel reports IN_MODIFY for it, as for
 * a write), which rp_setattr answers with the state's attributes, changing
 * nothing. One request, where a write or a fallocate would be two: the
 * kernel asks for the file's security.capability before either, to drop
 * it as any write must.
 */
static int signal_modify(int fd)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {0, 0}};
	return futimens(fd, ts) ? -errno : 0;
}

static int do_create(struct ofs *o, const struct ofs_replay_item *it, const char *path,
		     struct held *h)
{
	uint32_t mode = it->after.mode;
	int rc;
	if (S_ISREG(mode) && it->after.nlink <= 1) {
		/* As creat(2) makes it: IN_CREATE, IN_OPEN; IN_CLOSE_WRITE later. */
		int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NONBLOCK | O_CLOEXEC,
			      mode & 07777);
		if (fd < 0)
			return -errno;
		hold(o, h, fd, it->after.ino);
		/* Created with its content in one change (ofs_pending.c): the
		 * IN_MODIFY of its writes too, as do_modify makes it. */
		if (it->after.size > 0 && (rc = signal_modify(fd)) != 0)
			return rc;
		h->full = it->after.size > 0;
		h->runnable = (mode & 0111) != 0;
		return 0;
	}
	if (S_ISDIR(mode))
		rc = mkdir(path, mode & 07777);
	else if (S_ISLNK(mode))
		rc = symlink(".", path); /* the target is the state's, not this */
	else
		rc = mknod(path, mode, it->after.rdev); /* also a new link of a file */
	return rc ? -errno : 0;
}

static int do_modify(struct ofs *o, uint64_t ino, const char *path, struct held *h)
{
	struct ofs_attr a;
	if (h->fd < 0 || h->ino != ino) {
		int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		hold(o, h, fd, ino);
	}
	int rc = signal_modify(h->fd);
	if (rc)
		return rc;
	bool known = ofs_read_attr(o, ino, &a, NULL) == 0;
	h->full = known && a.size > 0;
	h->runnable = known && (a.mode & 0111) != 0;
	return 0;
}

static int do_attrib(uint64_t ino, bool mtime_only, const char *path, const struct held *h)
{
	/* Explicit times, whatever they are (the handler answers with the
	 * state's attributes): the kernel reports IN_ATTRIB for both,
	 * IN_MODIFY for the mtime alone, as for the call made on the other
	 * node; and does not follow a symlink. */
	struct timespec ts[2] = {{0, 0}, {0, 0}};
	if (mtime_only)
		ts[0].tv_nsec = UTIME_OMIT;
	if (h->fd >= 0 && h->ino == ino)
		return futimens(h->fd, ts) ? -errno : 0;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int replay(struct ofs *o, const struct ofs_replay_item *it, struct held *h)
{
	char from[PATH_MAX], to[PATH_MAX];
	int rc;
	bool same_file =
		h->fd >= 0 && h->ino == it->ino &&
		(it->kind == OFS_REPLAY_MODIFY || (it->kind == OFS_REPLAY_ATTRIB && !h->full));
	if (!same_file)
		release_held(o, h);
	switch (it->kind) {
	case OFS_REPLAY_CREATE:
		rc = full_path(o, it, it->to.parent, it->to.name, to, sizeof(to));
		if (rc)
			return rc;
		for (int attempt = 0; attempt < 2; attempt++) {
			inval_entry(o, &it->to);
			rc = do_create(o, it, to, h);
			if (rc != -EEXIST)
				break;
		}
		if (rc == 0 && it->attrib)
			rc = do_attrib(it->after.ino, false, to, h);
		if (rc == 0)
			ofs_names_learn(o, it->after.ino, it->to.parent, it->to.name,
					strlen(it->to.name));
		if (rc == 0 && S_ISDIR(it->after.mode))
			let_go(o, &it->to, it->after.ino);
		return rc;
	case OFS_REPLAY_REMOVE:
		rc = full_path(o, it, it->from.parent, it->from.name, from, sizeof(from));
		if (rc)
			return rc;
		rc = S_ISDIR(it->from.attr.mode) ? rmdir(from) : unlink(from);
		return rc ? -errno : 0;
	case OFS_REPLAY_RENAME:
		rc = full_path(o, it, it->from.parent, it->from.name, from, sizeof(from));
		if (rc == 0)
			rc = full_path(o, it, it->to.parent, it->to.name, to, sizeof(to));
		if (rc)
			return rc;
		for (int attempt = 0; attempt < 2; attempt++) {
			/* A reader may have cached the new name with the moved
			 * inode: the kernel would see a rename onto itself. */
			inval_entry(o, &it->to);
			rc = rename(from, to) ? -errno : 0;
			if (rc != -EEXIST && rc != -ENOTEMPTY)
				break;
		}
		if (rc == 0)
			ofs_names_learn(o, it->after.ino, it->to.parent, it->to.name,
					strlen(it->to.name));
		return rc;
	case OFS_REPLAY_MODIFY:
		rc = same_file ? 0 : full_path(o, it, it->ino, NULL, to, sizeof(to));
		if (rc == 0)
			rc = do_modify(o, it->ino, to, h);
		return rc || !it->attrib ? rc : do_attrib(it->ino, false, to, h);
	case OFS_REPLAY_ATTRIB:
		rc = same_file ? 0 : full_path(o, it, it->ino, NULL, to, sizeof(to));
		return rc ? rc : do_attrib(it->ino, it->mtime_only, to, h);
	}
	return -EINVAL;
}

static void *replay_main(void *arg)
{
	struct ofs *o = arg;
	pthread_setname_np(pthread_self(), "ofs-replay");
	struct held h = {-1, 0, false, false};
	struct log_ratelimit rl = {.interval_ms = 10000};
	bool stopped = false;
	__atomic_store_n(&o->rp_tid, (int)gettid(), __ATOMIC_RELEASE);
	while (!stopped) {
		/* Without a file held, wait as long as it takes. */
		int64_t until = 0;
		if (h.fd >= 0)
			until = ofs_now_ns() +
				(h.full ? OFS_REPLAY_LINGER_MS : OFS_REPLAY_LINGER_EMPTY_MS) *
					1000000LL;
		struct ofs_replay_item *it = ofs_replay_pop(o, until, &stopped);
		if (!it) {
			release_held(o, &h);
			continue;
		}
		/* Nothing the kernel holds: no watch to tell (most changes, on a
		 * node where nobody looks at their directory). The file held
		 * open is another one (it is known): its close comes now, as
		 * the replay of this item would have made it. */
		if (ofs_replay_unseen(o, it)) {
			release_held(o, &h);
			ofs_replay_set_current(o, NULL);
			ofs_count(o, &o->stats.replays_unseen, 1);
			ofs_replay_item_free(it);
			continue;
		}
		/* The kernel's caches first: a watcher that reads on the event
		 * must read the change (a late invalidation only delays). */
		(void)ofs_wait_invalidations_upto(o, it->invals, 1000);
		int rc = replay(o, it, &h); /* the current item since the pop */
		if (h.full && h.runnable)
			release_held(o, &h);
		ofs_replay_set_current(o, NULL);
		if (rc) {
			/* Nothing the replay answered may stay cached. */
			if (it->kind == OFS_REPLAY_CREATE || it->kind == OFS_REPLAY_RENAME)
				inval_entry(o, &it->to);
			if (it->kind == OFS_REPLAY_REMOVE || it->kind == OFS_REPLAY_RENAME)
				inval_entry(o, &it->from);
			release_held(o, &h);
			uint64_t more;
			if (log_ratelimit_pass(&rl, (uint64_t)(ofs_now_ns() / 1000000), &more))
				log_notice("fs: replay of @%llu for inotify watchers failed: %s "
					   "(%llu more not logged)",
					   (unsigned long long)it->idx, strerror(-rc),
					   (unsigned long long)more);
		}
		ofs_count(o, rc ? &o->stats.replays_failed : &o->stats.replays_done, 1);
		if (rc == 0) {
			int64_t lat_ns = ofs_now_ns() - it->queued_ns;
			ofs_replay_note_latency(o, lat_ns > 0 ? (uint64_t)lat_ns / 1000 : 0);
		}
		ofs_replay_item_free(it);
	}
	release_held(o, &h);
	__atomic_store_n(&o->rp_tid, 0, __ATOMIC_RELEASE);
	return NULL;
}

int ofs_replay_start(struct ofs *o)
{
	ofs_replay_enable(o);
	int rc = -pthread_create(&o->rp_thread, NULL, replay_main, o);
	if (rc) {
		ofs_replay_disable(o);
		return rc;
	}
	pthread_mutex_lock(&o->rp_lock);
	o->rp_running = true;
	pthread_mutex_unlock(&o->rp_lock);
	return 0;
}

/* The waker and ofs_unmount may both call it: one joins. */
void ofs_replay_stop(struct ofs *o)
{
	ofs_replay_disable(o);
	pthread_mutex_lock(&o->rp_lock);
	bool running = o->rp_running;
	o->rp_running = false;
	pthread_mutex_unlock(&o->rp_lock);
	if (running)
		pthread_join(o->rp_thread, NULL);
	ofs_replay_drain(o);
}
