/*
 * The filesystem's metrics: the FUSE requests' latency histograms (timed by
 * the adapter with OFS_FOP_TIMED, counted into the daemon's struct
 * ofs_metrics) and the mount's own counters and gauges, written in the
 * Prometheus text format (metrics.h). It keeps no state of its own.
 */
#include <stddef.h>
#include <string.h>

#include "ofs_int.h"

/* Label values of enum ofs_fuse_op, as the kernel's FUSE requests are named. */
static const char *const op_names[OFS_FUSE_OPS] = {
	[OFS_FOP_LOOKUP] = "lookup",
	[OFS_FOP_GETATTR] = "getattr",
	[OFS_FOP_SETATTR] = "setattr",
	[OFS_FOP_READLINK] = "readlink",
	[OFS_FOP_MKNOD] = "mknod",
	[OFS_FOP_MKDIR] = "mkdir",
	[OFS_FOP_SYMLINK] = "symlink",
	[OFS_FOP_LINK] = "link",
	[OFS_FOP_UNLINK] = "unlink",
	[OFS_FOP_RMDIR] = "rmdir",
	[OFS_FOP_RENAME] = "rename",
	[OFS_FOP_OPEN] = "open",
	[OFS_FOP_CREATE] = "create",
	[OFS_FOP_READ] = "read",
	[OFS_FOP_WRITE] = "write",
	[OFS_FOP_FLUSH] = "flush",
	[OFS_FOP_RELEASE] = "release",
	[OFS_FOP_FSYNC] = "fsync",
	[OFS_FOP_OPENDIR] = "opendir",
	[OFS_FOP_READDIR] = "readdir",
	[OFS_FOP_READDIRPLUS] = "readdirplus",
	[OFS_FOP_RELEASEDIR] = "releasedir",
	[OFS_FOP_FSYNCDIR] = "fsyncdir",
	[OFS_FOP_STATFS] = "statfs",
	[OFS_FOP_SETXATTR] = "setxattr",
	[OFS_FOP_GETXATTR] = "getxattr",
	[OFS_FOP_LISTXATTR] = "listxattr",
	[OFS_FOP_REMOVEXATTR] = "removexattr",
	[OFS_FOP_ACCESS] = "access",
	[OFS_FOP_FALLOCATE] = "fallocate",
	[OFS_FOP_GETLK] = "getlk",
	[OFS_FOP_SETLK] = "setlk",
	[OFS_FOP_FLOCK] = "flock",
};

void ofs_set_metrics(struct ofs *o, struct ofs_metrics *m)
{
	o->metrics = m;
}

struct ofs_op_timer ofs_op_timer_start(struct ofs *o, enum ofs_fuse_op op)
{
	if (!o->metrics)
		return (struct ofs_op_timer){0};
	return (struct ofs_op_timer){.h = &o->metrics->ops[op], .t0_ns = metrics_now_ns()};
}

void ofs_op_timer_end(struct ofs_op_timer *t)
{
	if (t->h)
		metrics_observe_ns(t->h, metrics_now_ns() - t->t0_ns);
}

void ofs_metrics_write(const struct ofs_metrics *m, struct metrics_text *t)
{
	static const char name[] = "omnifs_fuse_operation_duration_seconds";
	metrics_family(t, name, "histogram",
		       "FUSE requests served by this node's mount, by operation: time from the "
		       "request's arrival in its handler to the handler's return.");
	for (unsigned i = 0; i < OFS_FUSE_OPS; i++) {
		struct metrics_label l = {"op", op_names[i]};
		metrics_histogram_write(t, name, &l, 1, &m->ops[i]);
	}
}

void ofs_stats_metrics_write(struct ofs *o, struct metrics_text *t)
{
	struct ofs_stats st;
	ofs_get_stats(o, &st);
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} rows[] = {
		{"omnifs_fs_commits_total", "counter",
		 "Transactions of this mount's operations applied.",
		 offsetof(struct ofs_stats, commits)},
		{"omnifs_fs_conflicts_total", "counter",
		 "Commits of this mount that failed a guard (another node changed the same thing "
		 "first) and were retried.",
		 offsetof(struct ofs_stats, conflicts)},
		{"omnifs_invalidation_queue_depth", "gauge",
		 "Kernel cache invalidations queued for other nodes' changes and not yet issued.",
		 offsetof(struct ofs_stats, invals_pending)},
		{"omnifs_invalidations_queued_total", "counter",
		 "Kernel cache invalidations queued for other nodes' changes.",
		 offsetof(struct ofs_stats, invals_queued)},
		{"omnifs_invalidations_unheld_total", "counter",
		 "Kernel cache invalidations not needed for other nodes' changes: the kernel held "
		 "neither the inode nor, for a name, its directory.",
		 offsetof(struct ofs_stats, invals_unheld)},
		{"omnifs_invalidations_sent_total", "counter",
		 "Kernel cache invalidations issued to the kernel.",
		 offsetof(struct ofs_stats, invals_sent)},
		{"omnifs_invalidation_overflows_total", "counter",
		 "Times the invalidation queue collapsed into invalidating everything the kernel "
		 "caches.",
		 offsetof(struct ofs_stats, invals_overflow)},
		{"omnifs_replays_dropped_total", "counter",
		 "Other nodes' changes not replayed for inotify watchers on this mount.",
		 offsetof(struct ofs_stats, replays_dropped)},
		{"omnifs_replays_unseen_total", "counter",
		 "Other nodes' changes with no replay needed: the kernel held none of the inodes "
		 "they touch, so no inotify watch on this mount could see them.",
		 offsetof(struct ofs_stats, replays_unseen)},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t v;
		memcpy(&v, (const char *)&st + rows[i].offset, sizeof(v));
		metrics_family(t, rows[i].name, rows[i].type, rows[i].help);
		metrics_sample_u64(t, rows[i].name, NULL, 0, v);
	}
}
