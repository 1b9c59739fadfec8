/*
 * Creates committed with their file's first data: create + write + close
 * of a small file is one consensus round, not two.
 *
 * A create without O_EXCL of a name absent here commits nothing at open.
 * The name is made on this node only (a struct ofs_pending: name, the
 * inode's attributes, a reserved inode number) and the transaction that
 * commits the file's buffered writes at flush, fsync or close also writes
 * the entry, the inode, the parent's times and the node's record. Why each
 * promise of the README still holds:
 *
 * - Written and closed means majority-durable when close returns: the
 *   close's flush commits name, inode and data in one transaction and
 *   returns once it is decided and applied, as a write's close did. A
 *   commit that fails fails the close (the data stays for the last close
 *   to try again, as for any write); only a failed last close forgets the
 *   file, as it forgets any buffered data it could not commit.
 * - O_EXCL: such a create still commits at once, guarded absent, so two
 *   nodes' O_EXCL creates of one name are ordered by the log and one gets
 *   EEXIST at open. A pending name here counts as existing for it (EEXIST
 *   without a round), as for mknod, mkdir, symlink and link.
 * - The name is visible at once on this node: lookup, getattr, readdir,
 *   open, read and write of another local process find the pending file
 *   (this file's ofs_pending_by_*, ofs_attr_any, ofs_pending_list), and a
 *   second local create of the name opens the same file. Other nodes see
 *   it at the commit, as they see buffered writes only then.
 * - A change that needs the file in the applied state commits the create
 *   first (setattr, link, unlink, rename of or onto it, xattr changes,
 *   locks, an rmdir or rename over its directory); reads of xattrs answer
 *   "none". A setattr by the file's writer is the exception: it joins the
 *   create's commit (ofs_fold.c).
 * - Another node may commit the same name first (a plain create there, or
 *   an O_EXCL one, whose open succeeded and so must keep the name). Our
 *   commit then finds the name taken and fails with EEXIST: the close
 *   reports it, and the last close forgets the file, as any close whose
 *   commit failed. It never replaces the other file: that file may be a
 *   lock file someone holds a lock on (locks belong to the inode), and a
 *   new inode under its name would let a third process lock it too. On
 *   one node the race cannot happen: a second create finds the pending
 *   name and opens the same file.
 * - Locks: a lock taken on a file not committed yet would lock an inode
 *   no other node knows, so two nodes creating one lock file at once
 *   (`exec 9>lock; flock 9`) would both get it. A lock request commits
 *   the create first (ofs_pending_commit_ino); if the name went to another
 *   node's file meanwhile, the request fails with ESTALE and no lock is
 *   taken.
 * - The directory removed elsewhere before the commit: the commit fails
 *   with ENOENT, as a create in a directory removed first would.
 * - Inode numbers: reserved at open from the node's counter
 *   (ofs_ino_reserve), never handed out again; the inode key is guarded
 *   absent at commit. A crash before the commit loses the name with the
 *   unwritten data: nothing was promised durable yet.
 * - Limits: the inode limit is checked at open against the applied usage
 *   plus the pending creates here, and again at commit.
 *
 * `echo x > f` closes its first descriptor after dup2(2) before it writes:
 * a FLUSH on a handle that only created or truncated its file and wrote
 * nothing would commit an empty file, one round before the content's.
 * ofs_op_flush_by defers that flush while the closing process still has the
 * file open for the same access on another descriptor (read from
 * /proc/PID/fd and fdinfo): the close of that descriptor flushes the same
 * handle. Should that descriptor be a second open of the file instead, the
 * release of this handle commits, just after this close returned: the one
 * case where the commit lags a close, and only for a file that handle never
 * wrote. When /proc cannot tell, the flush commits.
 *
 * Does not defer O_EXCL creates (they need the cluster's answer at open),
 * nor mknod, mkdir or symlink (no data follows them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ofs_int.h"

struct ofs_pending {
	uint64_t parent;
	size_t len;
	char name[OFS_NAME_MAX + 1];
	struct ofs_attr a; /* as created: size 0, nlink 1 */
	struct onode *n;   /* its buffer */
	struct ofs_pending *next;
};

static struct ofs_pending *find_name_locked(struct ofs *o, uint64_t parent, const char *name,
					    size_t len)
{
	for (struct ofs_pending *p = o->pending; p; p = p->next)
		if (p->parent == parent && p->len == len && memcmp(p->name, name, len) == 0)
			return p;
	return NULL;
}

int ofs_pending_by_ino(struct ofs *o, uint64_t ino, struct ofs_attr *a)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&o->lock);
	for (struct ofs_pending *p = o->pending; p; p = p->next)
		if (p->a.ino == ino) {
			*a = p->a;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

int ofs_pending_by_name(struct ofs *o, uint64_t parent, const char *name, size_t len,
			struct ofs_attr *a)
{
	pthread_mutex_lock(&o->lock);
	struct ofs_pending *p = find_name_locked(o, parent, name, len);
	if (p)
		*a = p->a;
	pthread_mutex_unlock(&o->lock);
	return p ? 0 : -ENOENT;
}

int ofs_attr_any(struct ofs *o, uint64_t ino, struct ofs_attr *a, uint64_t *version)
{
	/* Pending first: once committed it is gone from the list and in the
	 * applied state, so no moment finds it in neither. */
	if (ofs_pending_by_ino(o, ino, a) == 0) {
		if (version)
			*version = 0;
		return 0;
	}
	return ofs_read_attr(o, ino, a, version);
}

int ofs_pending_list(struct ofs *o, uint64_t dir, struct ofs_dirent_list *l)
{
	int rc = 0;
	size_t applied = l->n; /* the applied state's entries come first */
	pthread_mutex_lock(&o->lock);
	for (struct ofs_pending *p = o->pending; p && rc == 0; p = p->next) {
		if (p->parent != dir)
			continue;
		size_t i;
		for (i = 0; i < applied; i++)
			if (strlen(l->items[i].name) == p->len &&
			    memcmp(l->items[i].name, p->name, p->len) == 0)
				break;
		if (i < applied) {
			l->items[i].ino = p->a.ino;
			l->items[i].dtype = DT_REG;
		} else {
			rc = ofs_dirent_list_add(l, p->a.ino, DT_REG, p->name, p->len);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

int ofs_pending_commit_name(struct ofs *o, uint64_t parent, const char *name, size_t len)
{
	struct ofs_attr a;
	if (ofs_pending_by_name(o, parent, name, len, &a))
		return 0;
	return ofs_flush_ino(o, a.ino);
}

int ofs_pending_commit_ino(struct ofs *o, uint64_t ino)
{
	struct ofs_attr a;
	if (ofs_pending_by_ino(o, ino, &a))
		return 0;
	int rc = ofs_flush_ino(o, ino);
	/* The name went to another node's file first: this descriptor's file
	 * is not the one the name gives any more, as after a rename over it. */
	return rc == -EEXIST ? -ESTALE : rc;
}

int ofs_pending_commit_dir(struct ofs *o, uint64_t dir)
{
	for (;;) {
		uint64_t ino = 0;
		pthread_mutex_lock(&o->lock);
		for (struct ofs_pending *p = o->pending; p; p = p->next)
			if (p->parent == dir) {
				ino = p->a.ino;
				break;
			}
		pthread_mutex_unlock(&o->lock);
		if (!ino)
			return 0;
		int rc = ofs_flush_ino(o, ino);
		if (rc)
			return rc;
	}
}

void ofs_pending_attr(const struct onode *n, struct ofs_attr *a)
{
	*a = n->pend->a;
}

void ofs_pending_drop_locked(struct ofs *o, struct onode *n)
{
	struct ofs_pending *p = n->pend;
	if (!p)
		return;
	struct ofs_pending **pp = &o->pending;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = p->next;
		o->n_pending--;
	}
	n->pend = NULL;
	free(p);
}

void ofs_pending_free_all(struct ofs *o)
{
	while (o->pending) {
		struct ofs_pending *p = o->pending;
		o->pending = p->next;
		if (p->n)
			p->n->pend = NULL;
		free(p);
	}
	o->n_pending = 0;
}

int ofs_pending_build(struct ofs *o, struct kv_txn *t, const struct onode *n, int64_t dbytes,
		      int64_t now)
{
	const struct ofs_pending *p = n->pend;
	struct ofs_attr pa;
	uint64_t pver, child;
	struct ofs_key k;
	uint8_t dv[OFS_DIRENT_LEN];
	int rc = ofs_read_attr(o, p->parent, &pa, &pver);
	if (rc)
		return rc;
	if (!S_ISDIR(pa.mode) || pa.nlink == 0)
		return -ENOENT; /* removed elsewhere before this commit */
	rc = ofs_read_dirent(o, p->parent, p->name, p->len, &child, NULL, NULL);
	if (rc == 0)
		return -EEXIST; /* another node's file took the name first */
	if (rc != -ENOENT)
		return rc;
	ofs_key_dirent(&k, p->parent, p->name, p->len);
	rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	ofs_dirent_encode(p->a.ino, DT_REG, dv);
	rc = ofs_add_put(t, &k, dv, sizeof(dv));
	if (rc)
		return rc;
	ofs_key_inode(&k, p->parent);
	rc = ofs_add_guard_version(t, &k, pver);
	if (rc)
		return rc;
	pa.mtime_ns = pa.ctime_ns = now;
	pa.change++;
	rc = ofs_put_attr(t, &pa);
	if (rc)
		return rc;
	ofs_key_inode(&k, p->a.ino);
	rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	return ofs_noderec_update(o, t, dbytes, 1, NULL);
}

int ofs_pending_create(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, int flags,
		       const struct ofs_cred *cr, struct ofs_attr *out, struct ofs_file **f)
{
	size_t len = strlen(name);
	struct ofs_attr pa;
	int rc = ofs_read_attr(o, parent, &pa, NULL);
	if (rc)
		return rc;
	if (!S_ISDIR(pa.mode))
		return -ENOTDIR;
	if (pa.nlink == 0)
		return -ENOENT;
	rc = ofs_perm_search(cr, &pa);
	if (rc == 0)
		rc = ofs_perm_create(cr, &pa);
	if (rc == 0)
		rc = ofs_can_write(o);
	if (rc)
		return rc;
	int64_t bytes, inodes;
	rc = ofs_usage(o, &bytes, &inodes);
	if (rc)
		return rc;
	pthread_mutex_lock(&o->lock);
	size_t pending = o->n_pending;
	pthread_mutex_unlock(&o->lock);
	if ((uint64_t)inodes + pending + 1 > o->cfg.max_inodes)
		return -ENOSPC;
	struct ofs_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	rc = ofs_ino_reserve(o, &p->a.ino);
	if (rc) {
		free(p);
		return rc;
	}
	int64_t now = ofs_now_ns();
	p->parent = parent;
	p->len = len;
	memcpy(p->name, name, len);
	p->a.mode = ofs_perm_new_mode(cr, &pa, S_IFREG | (mode & 07777));
	p->a.uid = cr->uid;
	p->a.gid = (pa.mode & S_ISGID) ? pa.gid : cr->gid;
	p->a.nlink = 1;
	p->a.atime_ns = p->a.mtime_ns = p->a.ctime_ns = now;
	struct ofs_file *h;
	rc = ofs_open_node(o, p->a.ino, flags & ~O_TRUNC, &h);
	if (rc) {
		free(p);
		return rc;
	}
	struct onode *n = h->n;
	pthread_mutex_lock(&n->mu);
	pthread_mutex_lock(&o->lock);
	bool taken = find_name_locked(o, parent, name, len) != NULL;
	if (!taken) {
		p->n = n;
		p->next = o->pending;
		o->pending = p;
		o->n_pending++;
		n->pend = p;
		n->dirty = true;
		h->dirtied = true;
		*out = p->a;
	}
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_unlock(&n->mu);
	if (taken) {
		/* another local create of the name got there first: the caller
		 * opens that one */
		ofs_op_release(o, h);
		free(p);
		return -EAGAIN;
	}
	*f = h;
	return 0;
}

/* The flags and inode of descriptor fd (a name in /proc/PID/fdinfo, dirfd)
 * from its "flags:" and "ino:" lines. */
static bool fdinfo_of(int dirfd, const char *fd, unsigned long *flags, unsigned long long *ino)
{
	char buf[512];
	int fi = openat(dirfd, fd, O_RDONLY | O_CLOEXEC);
	if (fi < 0)
		return false;
	ssize_t n = read(fi, buf, sizeof(buf) - 1);
	close(fi);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	bool got_flags = false, got_ino = false;
	char *line = buf;
	while (*line) {
		if (strncmp(line, "flags:", 6) == 0)
			got_flags = sscanf(line + 6, "%lo", flags) == 1;
		else if (strncmp(line, "ino:", 4) == 0)
			got_ino = sscanf(line + 4, "%llu", ino) == 1;
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return got_flags && got_ino;
}

bool ofs_proc_has_open(int pid, const char *mount, uint64_t ino, int accmode)
{
	if (pid <= 0 || !mount)
		return false;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	int infofd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (infofd < 0) {
		closedir(d);
		return false;
	}
	size_t mlen = strlen(mount);
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char target[4096];
		ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if ((size_t)n <= mlen || strncmp(target, mount, mlen) != 0 || target[mlen] != '/')
			continue;
		unsigned long fl;
		unsigned long long fino;
		if (fdinfo_of(infofd, e->d_name, &fl, &fino) && fino == ino &&
		    (int)(fl & O_ACCMODE) == (accmode & O_ACCMODE))
			found = true;
	}
	close(infofd);
	closedir(d);
	return found;
}
