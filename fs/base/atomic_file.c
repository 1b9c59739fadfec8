/* See atomic_file.h. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int atomic_file_write(const char *dir, const char *name, const void *data, size_t len, char *err,
		      size_t err_len)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		goto fail;
	atomic_file_sync_parent(path);
	return 0;
fail:
	snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
	return errno == ENOSPC ? -ENOSPC : -EIO;
}

int atomic_file_sync_parent(const char *path)
{
	char copy[PATH_MAX + 64]; /* as long as atomic_file_write's paths */
	snprintf(copy, sizeof(copy), "%s", path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}
