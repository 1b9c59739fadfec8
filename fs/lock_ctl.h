/*
 * omnifsd's control commands for cluster-wide locks (lock_ctl.c):
 *   lock NAME WAIT_MS PID   (omnifsctl lock) takes the named lock NAME for
 *                           the client, waiting up to WAIT_MS (-1: for ever,
 *                           0: not at all), answers once held and keeps it
 *                           until the client closes its connection;
 *   locks [--json]          every holder and this node's waiters.
 */
#ifndef OMNIFS_LOCK_CTL_H
#define OMNIFS_LOCK_CTL_H

#include <stdatomic.h>

struct ofs_locks;
struct ctl_buf;

/* Runs "lock" or "locks" (argv[0]) as a control handler does: 0 or a
 * positive errno, text in out. stopping: set when the daemon stops (a
 * waiting lock gives up). Blocks while it waits for or holds a lock. */
int lock_control(struct ofs_locks *locks, atomic_bool *stopping, int argc, char **argv,
		 struct ctl_buf *out);

#endif /* OMNIFS_LOCK_CTL_H */
