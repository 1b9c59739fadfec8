/*
 * Permission checks against the replicated state, as Linux's VFS makes them
 * (generic_permission, may_create, may_delete, setattr_prepare).
 *
 * The kernel checks every request first (default_permissions), but against
 * this node's cached attributes, and a change that failed a guard is built
 * again on newer state: another node may have revoked the caller's access in
 * between. So each build_* function checks the caller again against the
 * attributes it has just read, and the guards it adds on them tie the check
 * to the state the change commits on. The caller's identity comes as data
 * (struct ofs_cred: fs uid, fs gid, supplementary groups), so this file knows
 * nothing of FUSE. uid 0 is root and passes every check, as CAP_DAC_OVERRIDE,
 * CAP_FOWNER and CAP_CHOWN give it on Linux (search on a directory included;
 * a file with no x bit for anyone is never executed, but no change here asks
 * for x on a file). Does not check reads of data or lookups: those change
 * nothing.
 */
#include <errno.h>
#include <sys/stat.h>

#include "ofs_int.h"

bool ofs_cred_in_group(const struct ofs_cred *cr, uint32_t gid)
{
	if (cr->gid == gid)
		return true;
	for (size_t i = 0; i < cr->ngroups; i++)
		if (cr->groups[i] == gid)
			return true;
	return false;
}

static bool is_root(const struct ofs_cred *cr)
{
	return cr->uid == 0;
}

static bool is_owner(const struct ofs_cred *cr, const struct ofs_attr *a)
{
	return is_root(cr) || cr->uid == a->uid;
}

int ofs_perm(const struct ofs_cred *cr, const struct ofs_attr *a, unsigned may)
{
	if (is_root(cr))
		return 0;
	uint32_t bits; /* rwx of the one class the caller falls in, as POSIX says */
	if (cr->uid == a->uid)
		bits = (a->mode >> 6) & 7;
	else if (ofs_cred_in_group(cr, a->gid))
		bits = (a->mode >> 3) & 7;
	else
		bits = a->mode & 7;
	return (bits & may) == may ? 0 : -EACCES;
}

int ofs_perm_search(const struct ofs_cred *cr, const struct ofs_attr *dir)
{
	return ofs_perm(cr, dir, OFS_MAY_EXEC);
}

int ofs_perm_create(const struct ofs_cred *cr, const struct ofs_attr *dir)
{
	return ofs_perm(cr, dir, OFS_MAY_WRITE | OFS_MAY_EXEC);
}

int ofs_perm_delete(const struct ofs_cred *cr, const struct ofs_attr *dir,
		    const struct ofs_attr *victim)
{
	int rc = ofs_perm(cr, dir, OFS_MAY_WRITE | OFS_MAY_EXEC);
	if (rc)
		return rc;
	/* In a sticky directory (/tmp) only the file's owner, the directory's
	 * owner or root may remove or replace a name. */
	if ((dir->mode & S_ISVTX) && !is_owner(cr, victim) && !is_owner(cr, dir))
		return -EPERM;
	return 0;
}

uint32_t ofs_perm_new_mode(const struct ofs_cred *cr, const struct ofs_attr *dir, uint32_t mode)
{
	/* A group-executable setgid file made in a setgid directory takes the
	 * directory's group: it keeps its setgid bit only if the caller could
	 * have set it on a file of that group (Linux's mode_strip_sgid). */
	if (S_ISDIR(mode) || !(dir->mode & S_ISGID))
		return mode;
	if ((mode & (S_ISGID | S_IXGRP)) != (S_ISGID | S_IXGRP))
		return mode;
	if (is_root(cr) || ofs_cred_in_group(cr, dir->gid))
		return mode;
	return mode & ~(uint32_t)S_ISGID;
}

int ofs_perm_setattr(const struct ofs_cred *cr, const struct ofs_attr *a,
		     const struct ofs_setattr *sa, uint32_t *mode)
{
	unsigned m = sa->mask;
	*mode = sa->mode;
	if (is_root(cr))
		return 0;
	/* Truncation by name needs write permission; through a handle, the
	 * handle was opened for writing and that is enough (ftruncate). */
	if ((m & OFS_SET_SIZE) && !(m & OFS_SET_HANDLE)) {
		int rc = ofs_perm(cr, a, OFS_MAY_WRITE);
		if (rc)
			return rc;
	}
	/* Only root gives a file away; the owner may "change" it to itself. */
	if ((m & OFS_SET_UID) && (cr->uid != a->uid || sa->uid != a->uid))
		return -EPERM;
	/* The owner may change the group to one of its own groups. */
	if ((m & OFS_SET_GID) &&
	    (cr->uid != a->uid || (sa->gid != a->gid && !ofs_cred_in_group(cr, sa->gid))))
		return -EPERM;
	if (m & OFS_SET_MODE) {
		/* Anyone who may write the file may drop its setuid and setgid
		 * bits: the kernel asks for that after a write or truncation by
		 * someone else than the owner (file_remove_privs). */
		uint32_t dropped = a->mode & (S_ISUID | S_ISGID) & ~*mode;
		bool only_drops = dropped && (*mode & 07777) == (a->mode & 07777 & ~dropped);
		if (cr->uid != a->uid) {
			if (!only_drops)
				return -EPERM;
			int rc = ofs_perm(cr, a, OFS_MAY_WRITE);
			if (rc)
				return rc;
		}
		uint32_t gid = (m & OFS_SET_GID) ? sa->gid : a->gid;
		if (cr->uid == a->uid && !ofs_cred_in_group(cr, gid))
			*mode &= ~(uint32_t)S_ISGID;
	}
	/* Explicit times: the owner only. "Now": the owner or a writer. */
	if ((m & (OFS_SET_ATIME | OFS_SET_MTIME)) && cr->uid != a->uid)
		return -EPERM;
	if ((m & (OFS_SET_ATIME_NOW | OFS_SET_MTIME_NOW)) && cr->uid != a->uid) {
		int rc = ofs_perm(cr, a, OFS_MAY_WRITE);
		if (rc)
			return rc;
	}
	return 0;
}
