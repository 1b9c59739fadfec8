/*
 * The mount's guardian: makes sure a dead omnifsd never leaves its FUSE
 * mount wedged (see guard.c for why it must be another process).
 *
 *   guard_release_stale   at start (and from the unit's ExecStopPost): a
 *                         mount left on our mountpoint by a dead or dying
 *                         daemon of this node is aborted and unmounted
 *   guard_start           forks the guardian; call before any thread starts
 *   guard_mounted         tells it the filesystem is mounted now
 *   guard_unmounted       tells it the mount is gone by a clean unmount
 *
 * Uses only the C library, /proc, and the kernel's fusectl filesystem.
 */
#ifndef OMNIFS_GUARD_H
#define OMNIFS_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

struct guard {
	pid_t pid; /* the guardian, 0 when none */
	int fd;	   /* write end of the pipe to it, -1 when none */
};

/*
 * Forks the guardian of mountpoint (copied into it). Must run while the
 * daemon has no other thread and holds nothing the guardian must not keep
 * (data dir, sockets, /dev/fuse): the child closes every descriptor but
 * stdin, stdout, stderr and its end of a pipe. 0 or -errno.
 */
int guard_start(struct guard *g, const char *mountpoint);

/* The mount is up (after ofs_mount) or was cleanly unmounted (after
 * ofs_unmount). Never block; a guardian that is gone is ignored. */
void guard_mounted(struct guard *g);
void guard_unmounted(struct guard *g);

/* Closes our end of the pipe: the guardian exits (the daemon's exit does
 * the same). */
void guard_close(struct guard *g);

/*
 * If an omnifs mount sits on mountpoint (looked up in /proc/self/mountinfo,
 * never touched: a wedged mount would hang us), finds out whose it is by the
 * holder of data_dir's RocksDB locks:
 *  - a daemon that is alive: left alone, -EBUSY;
 *  - a daemon that is dying (killed, dumping core, its main thread gone):
 *    its FUSE connection is aborted, which lets it exit; waits up to
 *    wait_ms for it to go, then unmounts lazily;
 *  - nobody (the daemon is gone, and the kernel aborted the connection when
 *    its last descriptor closed): unmounts lazily.
 * 0 when nothing is left on mountpoint (or nothing was there), -EBUSY,
 * -ETIMEDOUT (the dying daemon did not go), or -errno; says what it did in
 * the log.
 */
int guard_release_stale(const char *mountpoint, const char *data_dir, int wait_ms);

#endif
