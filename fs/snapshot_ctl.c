/*
 * `snapshot-save PATH`: a snapshot of this node's applied state, written by
 * the daemon to PATH.
 *
 * The daemon writes the file rather than handing the bytes to omnifsctl:
 * the state is consistent only inside one read view, which lives in the
 * daemon; streaming it through the control socket would need a session
 * that keeps the view across requests of at most 8 MiB each, and a second
 * copy of every byte. Writing in place needs neither, and the writes to the
 * state go on meanwhile (the view pins a RocksDB snapshot). So PATH is on
 * the daemon's machine and must be writable by the daemon.
 *
 * The file appears whole or not at all: written to PATH.part (locked, so
 * two saves to one path cannot interleave), fsynced, renamed, the directory
 * fsynced. omnifsctl shows progress from PATH.part's size.
 */
#include "snapshot_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "log.h"

static uint64_t now_ms(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int snapshot_save_cmd(struct kv_store *kv, const struct cfg *c, int argc, char **argv,
		      struct ctl_buf *out)
{
	if (argc != 2 || argv[1][0] != '/' || strlen(argv[1]) > PATH_MAX - 16) {
		ctl_buf_printf(out,
			       "usage: snapshot-save PATH (absolute, on the daemon's machine)\n");
		return EINVAL;
	}
	const char *path = argv[1];
	char part[PATH_MAX], err[PATH_MAX + 512] = "";
	snprintf(part, sizeof(part), "%s.part", path);
	int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		ctl_buf_printf(out, "%s: %s\n", part, strerror(e));
		return e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		ctl_buf_printf(out, "%s: another save to this path is running\n", part);
		return EBUSY;
	}
	FILE *f = NULL;
	struct kv_view *v = NULL;
	int rc = ftruncate(fd, 0) == 0 ? 0 : -errno;
	if (rc == 0) {
		f = fdopen(fd, "w");
		rc = f ? 0 : -errno;
	}
	if (rc != 0) {
		close(fd);
		snprintf(err, sizeof(err), "%s: %s", part, strerror(-rc));
		goto out;
	}
	rc = kv_view_open(kv, &v);
	if (rc != 0) {
		snprintf(err, sizeof(err), "open a view of the state: %s", strerror(-rc));
		goto out;
	}
	struct kv_snap_info info = {
		.cluster_id = c->cluster_id,
		.node_id = c->node_id,
		.created_ms = (int64_t)now_ms(CLOCK_REALTIME),
	};
	snprintf(info.cluster, sizeof(info.cluster), "%s", c->cluster);
	uint64_t t0 = now_ms(CLOCK_MONOTONIC);
	char why[400];
	rc = kv_snapshot_write(v, f, &info, NULL, NULL, why, sizeof(why));
	kv_view_close(&v);
	if (rc != 0) {
		snprintf(err, sizeof(err), "%s: %s", part, why);
		goto out;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = -errno;
		snprintf(err, sizeof(err), "%s: %s", part, strerror(errno));
		goto out;
	}
	if (rename(part, path) != 0) {
		rc = -errno;
		snprintf(err, sizeof(err), "rename %s: %s", part, strerror(errno));
		goto out;
	}
	atomic_file_sync_parent(path);
	double secs = (double)(now_ms(CLOCK_MONOTONIC) - t0) / 1000.0;
	char hex[2 * KV_DIGEST_LEN + 1];
	kv_digest_hex(info.digest, hex);
	ctl_buf_printf(out,
		       "path %s\ncluster %s\nindex %llu\ndigest %s\nrecords %llu\nbytes %llu\n"
		       "seconds %.3f\n",
		       path, info.cluster, (unsigned long long)info.applied_idx, hex,
		       (unsigned long long)info.records, (unsigned long long)info.bytes, secs);
	log_notice("snapshot: saved %s at @%llu (%llu bytes in %.1f s)", path,
		   (unsigned long long)info.applied_idx, (unsigned long long)info.bytes, secs);
out:
	if (rc != 0) {
		unlink(part);
		log_err("snapshot: %s", err);
		ctl_buf_printf(out, "%s\n", err);
	}
	if (f)
		fclose(f); /* also releases the lock */
	return rc == -ENOSPC ? ENOSPC : rc ? (rc == -EINVAL ? EINVAL : EIO) : 0;
}
