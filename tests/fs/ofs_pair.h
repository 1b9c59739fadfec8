/*
 * Two filesystem nodes over one real KV, for the unit tests of fs/vfs that
 * need a second node's change to land at a chosen moment: node 1 (n1) and
 * node 2 (n2) are two struct ofs over one local backend (local_backend.h,
 * RocksDB in a temporary directory). Node 1 proposes through a double that
 * first runs `before` once, if set: another node's change landing between
 * node 1's build of a change and its commit, so that the change is built
 * again on newer state. Node 1's proposals are counted.
 *
 * A test's own fixture puts a struct ofs_pair first, so a hook can take the
 * pair back to the fixture with a cast.
 */
#ifndef OMNIFS_TESTS_OFS_PAIR_H
#define OMNIFS_TESTS_OFS_PAIR_H

#include "local_backend.h"
#include "ofs.h"

struct ofs_pair {
	char dir[64];
	struct ofs_local_backend *lb;
	struct ofs_backend kv;
	void (*before)(struct ofs_pair *p); /* run once before node 1's next proposal */
	struct ofs *n1, *n2;
	unsigned commits; /* node 1's proposals */
};

/* Opens the pair in a fresh directory named after `name` under $TMPDIR (or
 * /tmp); asserts (cmocka) on failure. */
void ofs_pair_open(struct ofs_pair *p, const char *name);
/* Destroys both nodes, closes the KV and removes the directory. */
void ofs_pair_close(struct ofs_pair *p);

#endif /* OMNIFS_TESTS_OFS_PAIR_H */
