/*
 * Small files a node must never find half-written after a crash
 * (<data_dir>/proposer-epoch, <data_dir>/membership): written to a temporary
 * file, fsynced, renamed over the old one, and the directory fsynced.
 */
#ifndef OMNIFS_ATOMIC_FILE_H
#define OMNIFS_ATOMIC_FILE_H

#include <stddef.h>

/* Replaces dir/name with len bytes of data (mode 0600). 0, or -ENOSPC or
 * -EIO with one line naming the file in err. */
int atomic_file_write(const char *dir, const char *name, const void *data, size_t len, char *err,
		      size_t err_len);

/* fsyncs the directory that holds path, so that a file created in it or
 * renamed into it is there after a crash: 0 or a negative errno. */
int atomic_file_sync_parent(const char *path);

#endif /* OMNIFS_ATOMIC_FILE_H */
