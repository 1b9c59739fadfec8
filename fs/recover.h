/*
 * omnifsd's offline recovery commands, run on a stopped node (they open its
 * data dir, do one job and exit): seeding a node of a new cluster from a
 * snapshot file, turning a survivor into a one-member cluster after the
 * permanent loss of a majority, and dropping a damaged state so that the
 * node fetches it again from its peers. Each returns omnifsd's exit status
 * (0 done, 1 refused or failed, with the reason logged).
 */
#ifndef OMNIFS_RECOVER_H
#define OMNIFS_RECOVER_H

#include <stdbool.h>

#include "config.h"

/* --restore-snapshot FILE: seeds this node's empty data dir with FILE's
 * state, as a member of the new cluster that c's [peers] describe. */
int recover_restore(const struct cfg *c, const char *file);

/* --force-new-cluster [ID HOST:PORT [KEY]]: this node alone (or with the
 * new, empty node ID) becomes the cluster, from this node's applied state;
 * says what may be lost and asks first unless yes. argv: the new member
 * (borrowed), argc 0 for none. */
int recover_force_new_cluster(const struct cfg *c, bool yes, int argc, char **argv);

/* --drop-state: moves <data_dir>/state aside, so that the next start
 * fetches the state again (state transfer or the log); asks unless yes. */
int recover_drop_state(const struct cfg *c, bool yes);

/* After a failed start with message err: logs what to do if err names this
 * node's state or log (a damaged store), else nothing. */
void recover_hint(const struct cfg *c, const char *err);

#endif /* OMNIFS_RECOVER_H */
