/*
 * The kernel's readahead window for an omnifs mount.
 *
 * A FUSE mount starts with the kernel's default window (128 KiB) and the
 * FUSE INIT reply can only shrink it, so a large sequential read reaches
 * the daemon as 128 KiB requests, one or two at a time, each paying a
 * lookup and a pass over the state store. A wider window lets the kernel
 * ask for up to 1 MiB per request and several requests ahead of the reader.
 * The window belongs to the mount's backing device info,
 * /sys/class/bdi/<major>:<minor>/read_ahead_kb; the device number comes
 * from /proc/self/mountinfo, never from a stat of the mountpoint, which
 * would ask this very daemon before it serves requests.
 */
#ifndef OMNIFS_READAHEAD_H
#define OMNIFS_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

/*
 * The "major:minor" of the last mount on mountpoint (an absolute path with
 * no symlinks) in mountinfo, the text of /proc/self/mountinfo: 0 with dev
 * filled (NUL-terminated), -ENOENT if no line mounts there, -ENAMETOOLONG
 * if dev's cap is too small. Pure: no I/O.
 */
int ofs_mountinfo_dev(const char *mountinfo, const char *mountpoint, char *dev, size_t cap);

/*
 * Sets the readahead window of the mount on mountpoint to kb KiB (0: leaves
 * the kernel's). Returns 0 or a negative errno (the mount not found, no
 * right to write sysfs); logs what it did or why not.
 */
int ofs_set_readahead(const char *mountpoint, uint32_t kb);

/*
 * ofs_set_readahead once the kernel has the FUSE INIT reply, whose
 * max_readahead would otherwise shrink the window back: on a detached
 * thread that first asks the mount for statfs (answered only after INIT,
 * and only once the session loop runs; a mount torn down first answers an
 * error, and the thread just ends). 0 or -errno if no thread started.
 */
int ofs_set_readahead_after_init(const char *mountpoint, uint32_t kb);

#endif
