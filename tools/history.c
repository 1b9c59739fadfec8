/*
 * omnifsctl history PATH [--json] and omnifsctl restore PATH [--at INDEX].
 *
 * Both work through the node's mount, not the control socket: the versions
 * are files of the read-only view <mount>/.omnifs/history/<path>/ (named by
 * log index, listed with their author in .versions.json), and a restore is
 * an ordinary write of an old version over the file, as `cp` would do it.
 * So the caller's own rights apply (a version has the mode and owner of the
 * file it was), and the restore is a change like any other: it is
 * replicated, shown by the feed, and the content it replaces is kept in the
 * history in turn. A deleted file is restored at its path, with the mode it
 * had (its directories are made again if they are gone).
 *
 * PATH is a host path under the mountpoint (of the config: the default one
 * or -c); a file that no longer exists is named by the path it had.
 */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

struct version {
	uint64_t index, node, size;
	int64_t time_ms;
	unsigned uid, mode;
	bool deleted;
};

/* PATH as a path in the tree ("/etc/x") into rel, or false after a message. */
static bool tree_path(const char *mount, const char *arg, char *rel, size_t cap)
{
	char abs[PATH_MAX * 2];
	cli_abs_path(arg, true, abs, sizeof(abs));
	size_t ml = strlen(mount);
	if (strncmp(abs, mount, ml) != 0 || abs[ml] != '/' || !abs[ml + 1]) {
		fprintf(stderr, "omnifsctl: %s is not a file under the mount %s\n", arg, mount);
		return false;
	}
	if (strlen(abs + ml) >= cap) {
		fprintf(stderr, "omnifsctl: %s: path too long\n", arg);
		return false;
	}
	snprintf(rel, cap, "%s", abs + ml);
	return true;
}

/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL on error. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *b = realloc(buf, cap * 2);
		if (!b) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = b;
		cap *= 2;
	}
	bool bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The versions listed in dir's .versions.json (one object a line). */
static int load_versions(const char *dir, struct version **out, size_t *n)
{
	char path[PATH_MAX * 2 + 32];
	snprintf(path, sizeof(path), "%s/.versions.json", dir);
	size_t len;
	char *json = slurp(path, &len);
	*out = NULL;
	*n = 0;
	if (!json)
		return errno == ENOENT ? 0 : -errno;
	size_t cap = 0;
	for (char *line = strtok(json, "\n"); line; line = strtok(NULL, "\n")) {
		struct version v;
		char del[8];
		unsigned long long idx, node, size;
		long long t;
		unsigned long long ino;
		if (sscanf(line,
			   " {\"index\": %llu, \"time_ms\": %lld, \"node\": %llu, \"uid\": %u, "
			   "\"size\": %llu, \"deleted\": %7[a-z], \"ino\": %llu, \"mode\": %u",
			   &idx, &t, &node, &v.uid, &size, del, &ino, &v.mode) != 8)
			continue;
		v.index = idx;
		v.time_ms = t;
		v.node = node;
		v.size = size;
		v.deleted = strcmp(del, "true") == 0;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			struct version *p = realloc(*out, cap * sizeof(*p));
			if (!p) {
				free(json);
				free(*out);
				return -ENOMEM;
			}
			*out = p;
		}
		(*out)[(*n)++] = v;
	}
	free(json);
	return 0;
}

static void print_time(int64_t ms, char *buf, size_t cap)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int show(const char *rel, const struct version *v, size_t n, bool json)
{
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s\n {\"index\": %" PRIu64 ", \"time_ms\": %" PRId64
			       ", \"node\": %" PRIu64 ", \"uid\": %u, \"size\": %" PRIu64
			       ", \"deleted\": %s}",
			       i ? "," : "", v[i].index, v[i].time_ms, v[i].node, v[i].uid,
			       v[i].size, v[i].deleted ? "true" : "false");
		printf("%s]\n", n ? "\n" : "");
		return 0;
	}
	if (n == 0) {
		printf("%s: no versions kept\n", rel);
		return 0;
	}
	printf("%-10s %-20s %-6s %-6s %10s\n", "INDEX", "TIME", "NODE", "UID", "SIZE");
	for (size_t i = 0; i < n; i++) {
		char t[32];
		print_time(v[i].time_ms, t, sizeof(t));
		printf("%-10" PRIu64 " %-20s n%-5" PRIu64 " %-6u %10" PRIu64 "%s\n", v[i].index, t,
		       v[i].node, v[i].uid, v[i].size, v[i].deleted ? "  (deleted)" : "");
	}
	return 0;
}

/* Makes the directories above path (a host path), as mkdir -p. */
static int make_parents(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		int rc = mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
		*p = '/';
		if (rc)
			return rc;
	}
	return 0;
}

/* mode: the file's when the version was kept, for a file made again (a
 * private file stays private); an existing file keeps its own. */
static int restore(const char *mount, const char *rel, const char *dir, uint64_t idx, unsigned mode)
{
	char src[PATH_MAX * 2 + 32], dst[PATH_MAX * 2];
	snprintf(src, sizeof(src), "%s/%" PRIu64, dir, idx);
	snprintf(dst, sizeof(dst), "%s%s", mount, rel);
	size_t len;
	char *data = slurp(src, &len);
	if (!data) {
		fprintf(stderr, "omnifsctl: restore: %s: %s\n", src, strerror(errno));
		return 1;
	}
	int rc = make_parents(dst);
	int fd = rc ? -1 : open(dst, O_WRONLY | O_CREAT | O_TRUNC, (mode_t)(mode & 07777));
	ssize_t w = 0;
	size_t done = 0;
	while (fd >= 0 && done < len && (w = write(fd, data + done, len - done)) > 0)
		done += (size_t)w;
	bool ok = fd >= 0 && done == len && fsync(fd) == 0;
	int err = ok ? 0 : rc ? -rc : errno;
	if (fd >= 0 && close(fd) != 0 && ok) {
		ok = false;
		err = errno;
	}
	free(data);
	if (!ok) {
		fprintf(stderr, "omnifsctl: restore: %s: %s\n", dst, strerror(err));
		return 1;
	}
	printf("%s: restored the version of index %" PRIu64 " (%zu bytes)\n", rel, idx, len);
	return 0;
}

int history_main(const char *mount, int is_restore, int argc, char **argv)
{
	const char *what = is_restore ? "restore" : "history";
	bool json = false;
	const char *arg = NULL;
	uint64_t at = 0;
	for (int i = 0; i < argc; i++) {
		if (!is_restore && strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (is_restore && strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
			if (!cli_parse_u64(argv[++i], 1, UINT64_MAX, &at)) {
				fprintf(stderr, "omnifsctl: restore: --at takes a log index\n");
				return 2;
			}
		} else if (argv[i][0] != '-' && !arg) {
			arg = argv[i];
		} else {
			fprintf(stderr, "omnifsctl: %s: usage: %s\n", what,
				is_restore ? "restore PATH [--at INDEX]" : "history [--json] PATH");
			return 2;
		}
	}
	if (!arg) {
		fprintf(stderr, "omnifsctl: %s: give a PATH\n", what);
		return 2;
	}
	if (!mount || !mount[0]) {
		fprintf(stderr,
			"omnifsctl: %s works through the mount: give the config (-c) "
			"that names it\n",
			what);
		return 2;
	}
	char rel[PATH_MAX], dir[PATH_MAX * 2];
	if (!tree_path(mount, arg, rel, sizeof(rel)))
		return 2;
	snprintf(dir, sizeof(dir), "%s/.omnifs/history%s", mount, rel);
	struct version *v;
	size_t n;
	int rc = load_versions(dir, &v, &n);
	if (rc) {
		fprintf(stderr, "omnifsctl: %s: %s: %s\n", what, dir, strerror(-rc));
		return 1;
	}
	if (!is_restore) {
		rc = show(rel, v, n, json);
		free(v);
		return rc;
	}
	bool found = false;
	unsigned mode = n ? v[n - 1].mode : 0644;
	for (size_t i = 0; i < n; i++)
		if (v[i].index == at) {
			found = true;
			mode = v[i].mode;
		}
	uint64_t newest = n ? v[n - 1].index : 0;
	free(v);
	if (n == 0) {
		fprintf(stderr, "omnifsctl: restore: %s: no versions kept\n", rel);
		return 1;
	}
	if (!at) {
		at = newest; /* the newest kept */
	} else if (!found) {
		fprintf(stderr,
			"omnifsctl: restore: %s: no version of index %" PRIu64
			" (omnifsctl history lists them)\n",
			rel, at);
		return 1;
	}
	return restore(mount, rel, dir, at, mode);
}
