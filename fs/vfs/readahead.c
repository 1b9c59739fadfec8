/* The readahead window of an omnifs mount: see readahead.h. */
#include "readahead.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

/* Does the mountinfo field [f, end), with its octal escapes (\040 for a
 * space, \011, \012, \134), spell path? */
static bool field_is(const char *f, const char *end, const char *path)
{
	while (f < end && *path) {
		char c = *f;
		if (c == '\\' && end - f >= 4 && f[1] >= '0' && f[1] <= '3' && f[2] >= '0' &&
		    f[2] <= '7' && f[3] >= '0' && f[3] <= '7') {
			c = (char)((f[1] - '0') * 64 + (f[2] - '0') * 8 + (f[3] - '0'));
			f += 4;
		} else {
			f++;
		}
		if (c != *path++)
			return false;
	}
	return f == end && !*path;
}

/* The bounds of field n (0-based, space-separated) of the line [p, eol). */
static bool field(const char *p, const char *eol, int n, const char **b, const char **e)
{
	for (int i = 0;; i++) {
		const char *s = p;
		while (p < eol && *p != ' ')
			p++;
		if (i == n) {
			*b = s;
			*e = p;
			return s < p;
		}
		if (p == eol)
			return false;
		p++;
	}
}

int ofs_mountinfo_dev(const char *mountinfo, const char *mountpoint, char *dev, size_t cap)
{
	int rc = -ENOENT;
	for (const char *p = mountinfo; *p;) {
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		const char *db, *de, *mb, *me;
		/* id parent major:minor root mountpoint ...: the last line wins,
		 * as the last mount on a path is the one seen there. */
		if (field(p, eol, 2, &db, &de) && field(p, eol, 4, &mb, &me) &&
		    field_is(mb, me, mountpoint)) {
			if ((size_t)(de - db) >= cap) {
				rc = -ENAMETOOLONG;
			} else {
				memcpy(dev, db, (size_t)(de - db));
				dev[de - db] = '\0';
				rc = 0;
			}
		}
		p = *eol ? eol + 1 : eol;
	}
	return rc;
}

/* The device of the last mount on mountpoint in this process's mountinfo,
 * read line by line: 0, -ENOENT, or -errno if it cannot be read. */
static int mount_dev(const char *mountpoint, char *dev, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t len = 0;
	int rc = -ENOENT;
	while (getline(&line, &len, f) > 0)
		if (ofs_mountinfo_dev(line, mountpoint, dev, cap) == 0)
			rc = 0; /* a later mount on the same path hides this one */
	free(line);
	fclose(f);
	return rc;
}

int ofs_set_readahead(const char *mountpoint, uint32_t kb)
{
	if (kb == 0)
		return 0;
	char dev[32], path[96];
	int rc = mount_dev(mountpoint, dev, sizeof(dev));
	if (rc) {
		log_warn("fs: readahead left as it is: %s not found in /proc/self/mountinfo: %s",
			 mountpoint, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	char num[16];
	int len = snprintf(num, sizeof(num), "%u\n", kb);
	if (fd < 0 || write(fd, num, (size_t)len) != len) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		/* Not fatal: reads work, only large ones are slower. */
		log_notice("fs: readahead left at the kernel's default: cannot write %s: %s "
			   "(needs root and a writable /sys)",
			   path, strerror(-rc));
		return rc;
	}
	close(fd);
	log_info("fs: readahead of %s set to %u KiB", mountpoint, kb);
	return 0;
}

struct after_init {
	uint32_t kb;
	char path[]; /* the mountpoint */
};

static void *after_init_main(void *arg)
{
	struct after_init *a = arg;
	pthread_setname_np(pthread_self(), "ofs-after-init");
	struct statvfs sv;
	if (statvfs(a->path, &sv) == 0)
		ofs_set_readahead(a->path, a->kb);
	free(a);
	return NULL;
}

int ofs_set_readahead_after_init(const char *mountpoint, uint32_t kb)
{
	if (kb == 0)
		return 0;
	size_t len = strlen(mountpoint) + 1;
	struct after_init *a = malloc(sizeof(*a) + len);
	if (!a)
		return -ENOMEM;
	a->kb = kb;
	memcpy(a->path, mountpoint, len);
	pthread_t t;
	pthread_attr_t attr;
	int rc = pthread_attr_init(&attr);
	if (rc == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &attr, after_init_main, a);
		pthread_attr_destroy(&attr);
	}
	if (rc) {
		free(a);
		log_warn("fs: readahead left at the kernel's default: no thread: %s", strerror(rc));
		return -rc;
	}
	return 0;
}
