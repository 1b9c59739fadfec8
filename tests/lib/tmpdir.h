/*
 * A test's own temporary directory, under $TMPDIR (or /tmp), and its
 * removal with everything in it: for tests whose setup and teardown need
 * nothing more.
 */
#ifndef OMNIFS_TEST_TMPDIR_H
#define OMNIFS_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static inline int tmpdir_remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

/* Makes "$TMPDIR/omnifs-NAME-XXXXXX" into dir (len bytes): 0 or -1. */
static inline int tmpdir_make(char *dir, size_t len, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, len, "%s/omnifs-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and everything in it: 0 or -1. */
static inline int tmpdir_remove(const char *dir)
{
	return nftw(dir, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* OMNIFS_TEST_TMPDIR_H */
