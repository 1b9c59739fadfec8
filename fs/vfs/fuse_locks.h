/*
 * The FUSE handlers of cluster-wide locks (fuse_locks.c), for the adapter's
 * operation table and its flush and release handlers in fuse_ops.c.
 */
#ifndef OMNIFS_FUSE_LOCKS_H
#define OMNIFS_FUSE_LOCKS_H

#include <fuse_lowlevel.h>

struct ofs;

void ofs_ll_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock);
void ofs_ll_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
		  int sleep);
void ofs_ll_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
/* From flush: drops the closing process's POSIX locks on ino (waits). */
void ofs_locks_flush(struct ofs *o, fuse_ino_t ino, struct fuse_file_info *fi);
/* From release: drops the open file's flock and everything taken through it. */
void ofs_locks_release(struct ofs *o, fuse_ino_t ino, struct fuse_file_info *fi);
/* Before the session goes: blocked lock requests are answered EINTR. */
void ofs_locks_unmounting(struct ofs *o);

#endif /* OMNIFS_FUSE_LOCKS_H */
