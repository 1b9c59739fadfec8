/* Probing a RocksDB store's directory before opening it. See rocks_dir.h. */
#include "rocks_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* mkdir -p. Returns 0 or a negative errno. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int rc = 0;
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

int rocks_dir_probe(const char *path, enum rocks_dir_kind *kind, char *err, size_t err_len)
{
	struct stat sb;
	if (stat(path, &sb)) {
		int rc = -errno;
		if (rc != -ENOENT) {
			snprintf(err, err_len, "%s: %s", path, strerror(-rc));
			return rc;
		}
		*kind = ROCKS_DIR_NEW;
		rc = mkdir_p(path);
		if (rc)
			snprintf(err, err_len, "%s: cannot create: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(sb.st_mode)) {
		*kind = ROCKS_DIR_OTHER;
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		int rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	bool empty = true, current = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		empty = false;
		current |= !strcmp(de->d_name, "CURRENT");
	}
	closedir(d);
	*kind = empty ? ROCKS_DIR_NEW : current ? ROCKS_DIR_DB : ROCKS_DIR_OTHER;
	return 0;
}
