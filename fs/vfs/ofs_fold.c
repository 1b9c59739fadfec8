/*
 * Setattrs folded into the commit of the file's buffered writes: tar and
 * cp -a write a file, then set its times, owner and mode through the
 * descriptor before they close it; each of those was a consensus round of
 * its own, and the first also committed the data early. A setattr that
 * folds commits with the data at flush, fsync or close instead, in the same
 * transaction. Why each promise still holds:
 *
 * - Only the thread that holds the file open for writing on this node, on a
 *   handle that will commit at its close (it wrote, created or truncated
 *   through it), folds: that close, or an fsync, is then the durability
 *   point of its setattrs as of its data, and a crash before it loses only
 *   what was not promised yet. So does the handle whose O_EXCL open made
 *   the file, until it writes: an empty file tar makes costs its create and
 *   its close, not a round per setattr (the close commits them alone, the
 *   mtime untouched). Any other caller (another process, a chmod by path
 *   from a shell, a file with nothing buffered) commits at once, as before,
 *   after the buffer it finds (ofs_op_setattr).
 * - Rights are checked at the call, against the attributes this node shows
 *   (applied or created here, with the earlier folds over them), with the
 *   errno a direct change would give. The commit checks each change again
 *   on the attributes it lands on, with a copy of the caller's identity: if
 *   another node changed the owner or mode meanwhile and the change is no
 *   longer allowed (a chmod u+s of a file given to root in between), the
 *   commit fails with that errno, as a commit that fails any other way.
 * - This node shows the folded attributes at once (ofs_overlay_attr, so
 *   getattr, lookup and the setattr's reply); other nodes see them with the
 *   commit, as they see the data. Changes fold in call order and commit in
 *   that order; a write after a fold that set the mtime gives the commit's
 *   time, as writes after a utimens do.
 * - Sizes do not fold (a truncation goes the direct way), and at most
 *   OFS_FOLD_MAX changes wait per file: the next one commits them first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ofs_int.h"

#define OFS_FOLD_MAX	8u  /* setattrs waiting per file; then a direct commit */
#define OFS_FOLD_GROUPS 32u /* supplementary groups kept; more: no fold */

struct ofs_fold {
	struct ofs_setattr sa; /* as asked ("now" flags included) */
	int64_t at_ns;	       /* when it was made: its ctime and "now" */
	bool write_before;     /* a write came between the previous fold and this */
	uint32_t uid, gid;     /* the caller, for the check at commit */
	uint32_t groups[OFS_FOLD_GROUPS];
	size_t ngroups;
};

void ofs_setattr_apply(struct ofs_attr *a, const struct ofs_setattr *sa, uint32_t mode, int64_t now)
{
	if (sa->mask & OFS_SET_MODE)
		a->mode = (a->mode & S_IFMT) | (mode & 07777);
	if (sa->mask & OFS_SET_UID)
		a->uid = sa->uid;
	if (sa->mask & OFS_SET_GID)
		a->gid = sa->gid;
	if (sa->mask & OFS_SET_ATIME_NOW)
		a->atime_ns = now;
	else if (sa->mask & OFS_SET_ATIME)
		a->atime_ns = sa->atime_ns;
	if (sa->mask & OFS_SET_MTIME_NOW)
		a->mtime_ns = now;
	else if (sa->mask & OFS_SET_MTIME)
		a->mtime_ns = sa->mtime_ns;
	a->ctime_ns = (sa->mask & OFS_SET_CTIME) ? sa->ctime_ns : now;
}

/*
 * The handle through which cr's thread holds n open for writing and whose
 * close commits n's buffer (it wrote, created or truncated through it), or
 * that made n with O_EXCL and has not written it; NULL if none. n->mu held:
 * a handle found stays valid while it is (a release frees its handle only
 * after it has taken n->mu).
 */
static struct ofs_file *writer_handle(struct ofs *o, const struct onode *n,
				      const struct ofs_cred *cr)
{
	struct ofs_file *found = NULL;
	pthread_mutex_lock(&o->lock);
	for (struct ofs_file *f = o->files; f && !found; f = f->next)
		if (f->n == n && f->pid == cr->pid && (f->dirtied || f->made) &&
		    (f->flags & O_ACCMODE) != O_RDONLY)
			found = f;
	pthread_mutex_unlock(&o->lock);
	return found;
}

/* Applies fold f over a (its rights checked on a first): 0 or -errno. */
static int apply_one(const struct ofs_fold *f, struct ofs_attr *a)
{
	const struct ofs_cred cr = {f->uid, f->gid, f->groups, f->ngroups, 0};
	uint32_t mode;
	int rc = ofs_perm_setattr(&cr, a, &f->sa, &mode);
	if (rc)
		return rc;
	ofs_setattr_apply(a, &f->sa, mode, f->at_ns);
	return 0;
}

int ofs_fold_apply(const struct onode *n, struct ofs_attr *a, int64_t now)
{
	for (size_t i = 0; i < n->nfold; i++) {
		if (n->fold[i].write_before)
			a->mtime_ns = now;
		int rc = apply_one(&n->fold[i], a);
		if (rc)
			return rc;
	}
	if (n->nfold) {
		if (n->wrote_since_fold)
			a->mtime_ns = now;
		/* The change as a whole is made now, its attributes after its
		 * data: a nanosecond later if the mtime is now too, so that the
		 * other nodes' replays tell a commit that also set attributes
		 * (IN_ATTRIB) from one of data alone, whose ctime is its mtime. */
		a->ctime_ns = a->mtime_ns == now ? now + 1 : now;
	}
	return 0;
}

void ofs_fold_view(const struct onode *n, struct ofs_attr *a)
{
	for (size_t i = 0; i < n->nfold; i++) {
		struct ofs_attr next = *a;
		if (apply_one(&n->fold[i], &next) == 0)
			*a = next;
	}
}

void ofs_fold_note_write(struct onode *n)
{
	if (n->nfold)
		n->wrote_since_fold = true;
}

void ofs_fold_drop(struct onode *n)
{
	free(n->fold);
	n->fold = NULL;
	n->nfold = 0;
	n->wrote_since_fold = false;
}

/* Whether sa may wait for the commit at all: not a size, and a caller
 * that can be told apart. */
static bool foldable(const struct ofs_setattr *sa, const struct ofs_cred *cr)
{
	unsigned fields = OFS_SET_MODE | OFS_SET_UID | OFS_SET_GID | OFS_SET_ATIME | OFS_SET_MTIME |
			  OFS_SET_ATIME_NOW | OFS_SET_MTIME_NOW | OFS_SET_CTIME | OFS_SET_HANDLE;
	return cr->pid > 0 && sa->mask && !(sa->mask & ~fields) && cr->ngroups <= OFS_FOLD_GROUPS;
}

int ofs_fold_setattr(struct ofs *o, uint64_t ino, const struct ofs_setattr *sa,
		     const struct ofs_cred *cr, struct ofs_attr *out)
{
	if (!foldable(sa, cr))
		return 0;
	struct onode *n = ofs_onode_get(o, ino, false);
	if (!n)
		return 0;
	int rc = 0;
	struct ofs_file *h;
	pthread_mutex_lock(&n->mu);
	/* Nothing buffered: only the handle that made the file folds. */
	if (n->nfold == OFS_FOLD_MAX || !(h = writer_handle(o, n, cr)) || (!n->dirty && h->dirtied))
		goto out;
	struct ofs_attr a;
	if (n->pend) {
		ofs_pending_attr(n, &a);
	} else {
		if (ofs_read_attr(o, ino, &a, NULL))
			goto out; /* gone, or unreadable: the direct way says how */
	}
	if (!S_ISREG(a.mode))
		goto out;
	const struct ofs_attr base = a;
	ofs_fold_view(n, &a);
	uint32_t mode;
	rc = ofs_perm_setattr(cr, &a, sa, &mode);
	if (rc)
		goto out;
	if (!n->fold) {
		n->fold = calloc(OFS_FOLD_MAX, sizeof(*n->fold));
		if (!n->fold)
			goto out; /* the direct way needs no memory here */
	}
	struct ofs_fold *f = &n->fold[n->nfold];
	memset(f, 0, sizeof(*f));
	/* "Now" (the _NOW flags) is the call's time, whenever the commit comes:
	 * apply_one sets them to at_ns. */
	f->at_ns = ofs_now_ns();
	f->sa = *sa;
	f->write_before = n->wrote_since_fold;
	f->uid = cr->uid;
	f->gid = cr->gid;
	f->ngroups = cr->ngroups;
	if (cr->ngroups)
		memcpy(f->groups, cr->groups, cr->ngroups * sizeof(*cr->groups));
	n->nfold++;
	n->wrote_since_fold = false;
	if (!n->dirty) {
		/* The first fold into a made file: its flush and last close
		 * now commit. */
		h->dirtied = true;
		pthread_mutex_lock(&o->lock);
		n->dirty = true;
		pthread_mutex_unlock(&o->lock);
	}
	*out = base;
	ofs_overlay_locked(n, out);
	rc = 1;
out:
	pthread_mutex_unlock(&n->mu);
	ofs_onode_put(o, n);
	return rc;
}
