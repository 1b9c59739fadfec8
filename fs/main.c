/*
 * omnifsd: one node of an omnifs cluster.
 *
 * Reads the config, starts the replica (consensus log, KV state, transport),
 * the control socket, the metrics' HTTP endpoint if [metrics] listen asks
 * for it, and, unless told not to, the FUSE mount; then runs until
 * SIGTERM or SIGINT and shuts down in reverse order; SIGHUP reloads the
 * config's log level (reload_config). Runs in the foreground,
 * logging to stderr (the journal under systemd, Type=notify).
 *
 * Exit status: 0 after a clean stop, 1 when the node failed (a storage
 * error: fail-stop, systemd restarts it and it recovers from disk), 2 for a
 * bad config (the unit does not restart it), 3 when it could not start
 * (data dir, ports, mountpoint...), 64 (EX_USAGE) for a bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "guard.h"
#include "kv.h"
#include "lock_ctl.h"
#include "locks.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "ofs.h"
#include "recover.h"
#include "replica.h"
#include "rocks_crc32c.h"
#include "rocks_memory.h"
#include "sdnotify.h"
#include "snapshot_ctl.h"

#define DEFAULT_CONFIG "/etc/omnifs/omnifs.conf"
/* How long a start waits for a dying daemon of this node to let go of the
 * data dir once its mount is aborted (it exits within milliseconds then). */
#define STALE_WAIT_MS 10000

/* What the replica's apply hook serves: the lock keeper always, the mount's
 * invalidations once mounted. Switched as a whole by replica_set_apply_hook. */
struct hook_ctx {
	struct ofs_locks *locks;
	struct ofs *ofs;
};

/*
 * Threads: the main thread (start, the FUSE loop, stop), the notifier, the
 * signal thread (with a mount), the control socket's workers, and those of
 * the layers below. Who may touch what here:
 */
struct daemon {
	/* Set before the first other thread starts, then only read. */
	struct cfg cfg;
	bool mount;
	sigset_t signals; /* blocked everywhere, taken with sigtimedwait */
	struct replica *replica;
	struct ofs_locks *locks; /* cluster-wide locks: before the control socket, gone after */
	struct hook_ctx hook_locks, hook_fs; /* the apply hook's, switched by the main thread */
	/* The metrics page's sources (process, replica, filesystem), filled
	 * before the control socket starts; read by whoever renders it. */
	struct metrics_registry metrics;
	struct ofs_metrics fs_metrics; /* the mount's FUSE requests; outlives the mount */
	/* The main thread's. */
	struct ctl_server *ctl;
	struct metrics_http *http; /* [metrics] listen; stopped with the control socket */
	struct guard guard;	   /* aborts the mount if we die with it (guard.c) */
	pthread_t notifier;
	/* Written by the main thread while mounted is false. Other threads read
	 * it once they have seen mounted true: it stays valid until the control
	 * server and the signal thread are stopped and the FUSE loop has ended. */
	struct ofs *ofs;
	atomic_bool mounted; /* READY=1 waits for it when mounting */
	atomic_bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: omnifsd [-c CONFIG] [--no-mount] [--check-config] [--clear-dead-mount]\n"
		   "       omnifsd [-c CONFIG] --restore-snapshot FILE | --drop-state [--yes]\n"
		   "       omnifsd [-c CONFIG] --force-new-cluster [--yes] [ID HOST:PORT [KEY]]\n"
		   "       omnifsd --help | --version\n"
		   "\n"
		   "  -c, --config FILE   the node's config (default " DEFAULT_CONFIG ")\n"
		   "      --no-mount      run the replicated KV only, without FUSE\n"
		   "      --check-config  validate the config file and exit\n"
		   "      --clear-dead-mount\n"
		   "                      abort and unmount what a dead or dying daemon of\n"
		   "                      this node left on its mountpoint, and exit\n"
		   "  -h, --help          print this help and exit\n"
		   "  -V, --version       print the version and exit\n"
		   "\n"
		   "On a stopped node (each does one job on the data dir and exits):\n"
		   "      --restore-snapshot FILE\n"
		   "                      seed this empty node of a new cluster (another\n"
		   "                      [node] cluster name) with FILE's state\n"
		   "      --force-new-cluster [ID HOST:PORT [KEY]]\n"
		   "                      after a majority is lost for good: this node alone\n"
		   "                      (or with the new, empty node ID) forms the cluster,\n"
		   "                      continuing this node's log\n"
		   "      --drop-state    move a damaged state aside: the next start fetches\n"
		   "                      it from the other members\n"
		   "      --yes           do not ask for a confirmation\n"
		   "\n"
		   "Exit status: 0 stopped cleanly, 1 failed (storage error), 2 bad config,\n"
		   "3 could not start, 64 bad usage. Signals: SIGTERM or SIGINT stop it.\n");
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define BARRIER_DEFAULT_MS 30000u /* omnifsctl's default wait */

/*
 * barrier [TIMEOUT_MS] (omnifsctl passes its -t): succeeds once this node has
 * applied everything the leader had decided when it was called AND, with a
 * mount, the kernel was told of every change applied so far, so reads
 * through the mount are fresh. Both phases count against one deadline:
 * ETIMEDOUT if they do not finish within it.
 * (d->ofs stays valid while this runs: see struct daemon.)
 */
static int barrier_cmd(struct daemon *d, int argc, char **argv, struct ctl_buf *out)
{
	uint32_t timeout_ms = BARRIER_DEFAULT_MS;
	if (argc == 2) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(argv[1], &end, 10);
		if (errno || *end || end == argv[1] || v < 1 || v > 86400000) {
			ctl_buf_printf(out, "usage: barrier [TIMEOUT_MS], 1 to 86400000\n");
			return EINVAL;
		}
		timeout_ms = (uint32_t)v;
	}
	uint64_t deadline = monotonic_ms() + timeout_ms;
	int rc = replica_barrier_within(d->replica, timeout_ms);
	switch (rc) {
	case 0:
		break;
	case -ETIMEDOUT:
		ctl_buf_printf(out,
			       "this node had not applied everything decided within %u ms (is the "
			       "leader reachable?)\n",
			       timeout_ms);
		return ETIMEDOUT;
	case -EROFS:
		ctl_buf_printf(out, "%s\n",
			       replica_is_joining(d->replica)
				       ? "this node has not been added to the cluster yet"
				       : "this node cannot reach a majority of the cluster");
		return EROFS;
	default:
		ctl_buf_printf(out, "%s\n", strerror(-rc));
		return -rc;
	}
	if (!atomic_load(&d->mounted))
		return 0;
	uint64_t now = monotonic_ms();
	unsigned left_ms = now < deadline ? (unsigned)(deadline - now) : 0;
	if (ofs_wait_invalidations(d->ofs, left_ms) != 0) {
		ctl_buf_printf(out,
			       "applied, but the kernel was not told of every change within %u ms: "
			       "the mount may still show older data\n",
			       timeout_ms);
		return ETIMEDOUT;
	}
	return 0;
}

/* The JSON status is the replica's object ("...}\n") with this daemon's
 * fields spliced in: cuts out at its closing brace so that fields can
 * follow; false if there is no object to extend. The caller ends with "}\n". */
static bool json_reopen(struct ctl_buf *out)
{
	while (out->len && out->data[out->len - 1] != '}')
		out->len--;
	if (out->len == 0)
		return false;
	out->len--;
	return true;
}

/* Status also shows the mount's kernel cache invalidations: how often they
 * had to turn coarse (never dropped); and the replays of other nodes'
 * changes for inotify watchers, which may be dropped (counted). */
static void fs_status_lines(struct daemon *d, bool json, struct ctl_buf *out)
{
	struct ofs_stats st;
	ofs_get_stats(d->ofs, &st);
	if (json) {
		ctl_buf_printf(
			out,
			",\"invals_queued\":%llu,\"invals_unheld\":%llu,\"invals_sent\":%llu,"
			"\"invals_coarse\":%llu,"
			"\"invals_overflow\":%llu,\"invals_replaced\":%llu,"
			"\"invals_all_sent\":%llu,\"replays_queued\":%llu,\"replays_done\":%llu,"
			"\"replays_failed\":%llu,\"replays_dropped\":%llu,\"replays_unseen\":%llu,"
			"\"replays_pending\":%llu,"
			"\"replay_p50_us\":%llu,\"replay_p99_us\":%llu,\"replay_max_us\":%llu",
			(unsigned long long)st.invals_queued, (unsigned long long)st.invals_unheld,
			(unsigned long long)st.invals_sent, (unsigned long long)st.invals_coarse,
			(unsigned long long)st.invals_overflow,
			(unsigned long long)st.invals_replaced,
			(unsigned long long)st.invals_all_sent,
			(unsigned long long)st.replays_queued, (unsigned long long)st.replays_done,
			(unsigned long long)st.replays_failed,
			(unsigned long long)st.replays_dropped,
			(unsigned long long)st.replays_unseen,
			(unsigned long long)st.replays_pending,
			(unsigned long long)st.replay_p50_us, (unsigned long long)st.replay_p99_us,
			(unsigned long long)st.replay_max_us);
	} else {
		ctl_buf_printf(
			out,
			"invalidations: %llu queued, %llu sent, %llu not needed (not cached "
			"here); coarser: %llu names as directories, %llu overflows and %llu "
			"state transfers as everything\n",
			(unsigned long long)st.invals_queued, (unsigned long long)st.invals_sent,
			(unsigned long long)st.invals_unheld, (unsigned long long)st.invals_coarse,
			(unsigned long long)st.invals_overflow,
			(unsigned long long)st.invals_replaced);
		ctl_buf_printf(out,
			       "replays for inotify: %llu queued, %llu done, %llu failed, "
			       "%llu dropped, %llu unseen (no watch could see them)\n",
			       (unsigned long long)st.replays_queued,
			       (unsigned long long)st.replays_done,
			       (unsigned long long)st.replays_failed,
			       (unsigned long long)st.replays_dropped,
			       (unsigned long long)st.replays_unseen);
	}
}

/* Status as the replica gives it, extended with the mount's lines (when
 * mounted), this node's locks (held, in doubt, lost) and, in JSON, whether
 * the node is meant to mount and is mounted (omnifsctl health reads both).
 * Text lines are appended; JSON fields go into the replica's object. */
/* Resident memory of this process in bytes, from /proc/self/statm; 0 if
 * unreadable. */
static uint64_t resident_bytes(void)
{
	unsigned long long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The memory part of the status: the process's resident memory and what
 * RocksDB holds of its [storage] budget. */
static void memory_lines(bool json, struct ctl_buf *out)
{
	struct rocks_memory m;
	rocks_memory_get(&m);
	uint64_t rss = resident_bytes();
	if (json) {
		ctl_buf_printf(
			out,
			",\"rss_bytes\":%llu,\"storage_budget_bytes\":%llu,"
			"\"storage_memtables_bytes\":%llu,\"storage_block_cache_bytes\":%llu,"
			"\"storage_table_readers_bytes\":%llu",
			(unsigned long long)rss, (unsigned long long)m.budget,
			(unsigned long long)m.memtables, (unsigned long long)m.block_cache,
			(unsigned long long)m.readers);
		return;
	}
	double mib = 1024.0 * 1024.0;
	ctl_buf_printf(out,
		       "memory:      %.1f MiB resident; storage %.1f MiB of its %.0f MiB budget "
		       "(memtables %.1f, block cache %.1f, table readers %.1f)\n",
		       rss / mib, (m.memtables + m.block_cache + m.readers) / mib, m.budget / mib,
		       m.memtables / mib, m.block_cache / mib, m.readers / mib);
}

static void status_extend(struct daemon *d, bool json, struct ctl_buf *out)
{
	if (json && !json_reopen(out))
		return;
	if (atomic_load(&d->mounted))
		fs_status_lines(d, json, out);
	ofs_locks_status(d->locks, json, out);
	memory_lines(json, out);
	if (json)
		ctl_buf_printf(out, ",\"mount_wanted\":%s,\"mounted\":%s}\n",
			       d->mount ? "true" : "false",
			       atomic_load(&d->mounted) ? "true" : "false");
}

/* Sets the log threshold and says so, in the line that the more verbose of
 * the old and the new threshold lets through. why: "omnifsctl log-level"... */
static void change_log_level(enum log_level to, const char *why)
{
	enum log_level was = log_get_level();
	if (to >= was)
		log_set_level(to);
	log_notice("omnifsd: log level %s (was %s), set by %s", log_level_name(to),
		   log_level_name(was), why);
	log_set_level(to);
}

/* log-level [LEVEL]: prints the log threshold, or sets it until the next
 * start or SIGHUP (which goes back to the config's log_level). */
static int log_level_cmd(int argc, char **argv, struct ctl_buf *out)
{
	enum log_level to;
	if (argc == 1) {
		ctl_buf_printf(out, "%s\n", log_level_name(log_get_level()));
		return 0;
	}
	if (log_level_parse(argv[1], &to) != 0) {
		ctl_buf_printf(out, "log levels: error, warning, notice, info, debug\n");
		return EINVAL;
	}
	enum log_level was = log_get_level();
	change_log_level(to, "omnifsctl log-level");
	ctl_buf_printf(out, "%s (was %s)\n", log_level_name(to), log_level_name(was));
	return 0;
}

/* metrics: the page /.omnifs/metrics and [metrics] listen serve. */
static int metrics_cmd(struct daemon *d, struct ctl_buf *out)
{
	if (metrics_render(&d->metrics, out) == 0)
		return 0;
	out->len = 0; /* not half a page */
	ctl_buf_printf(out, "out of memory\n");
	return ENOMEM;
}

static int control_handler(void *ctx, int argc, char **argv, struct ctl_buf *out)
{
	struct daemon *d = ctx;
	if (strcmp(argv[0], "barrier") == 0 && argc <= 2)
		return barrier_cmd(d, argc, argv, out);
	if (strcmp(argv[0], "lock") == 0 || strcmp(argv[0], "locks") == 0)
		return lock_control(d->locks, &d->stopping, argc, argv, out);
	if (strcmp(argv[0], "snapshot-save") == 0)
		return snapshot_save_cmd(replica_kv(d->replica), &d->cfg, argc, argv, out);
	if (strcmp(argv[0], "log-level") == 0 && argc <= 2)
		return log_level_cmd(argc, argv, out);
	if (strcmp(argv[0], "metrics") == 0 && argc == 1)
		return metrics_cmd(d, out);
	int rc = replica_control(d->replica, argc, argv, out);
	if (rc == 0 && strcmp(argv[0], "status") == 0)
		status_extend(d, argc == 2, out);
	return rc;
}

/* The replica's apply hook (struct hook_ctx). */
static void apply_hook(void *ctx, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	struct hook_ctx *h = ctx;
	ofs_locks_on_applied(h->locks, t);
	if (h->ofs)
		ofs_apply_hook(h->ofs, idx, t, proposed_here);
}

/* The filesystem's way to the replica (struct ofs_backend). */
static int fs_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	return replica_propose(ctx, t, res);
}

static int fs_can_write(void *ctx)
{
	return replica_can_write(ctx);
}

/* /.omnifs/status.json, members.json and metrics: the same as omnifsctl
 * status --json, member list --json and metrics. */
static int fs_status(void *ctx, enum ofs_status_file which, char *buf, size_t cap)
{
	struct daemon *d = ctx;
	struct ctl_buf b = {0};
	int rc = which == OFS_STATUS_JSON    ? replica_status_json(d->replica, &b)
		 : which == OFS_MEMBERS_JSON ? replica_members_json(d->replica, &b)
					     : metrics_render(&d->metrics, &b);
	if (rc == 0 && which == OFS_STATUS_JSON)
		status_extend(d, true, &b); /* as `status --json` shows it */
	if (rc == 0 && b.len > cap)
		rc = -ENOSPC;
	else if (rc == 0) {
		memcpy(buf, b.data, b.len);
		rc = (int)b.len;
	}
	ctl_buf_free(&b);
	return rc;
}

/* The metrics page's sources (struct daemon.metrics). */
static void metrics_of_replica(void *ctx, struct metrics_text *t)
{
	struct daemon *d = ctx;
	replica_metrics_write(d->replica, t);
}

/* FUSE requests always (zero before a mount); the mount's own counters
 * while it is up (d->ofs is valid then: see struct daemon). */
static void metrics_of_fs(void *ctx, struct metrics_text *t)
{
	struct daemon *d = ctx;
	bool mounted = atomic_load(&d->mounted);
	metrics_family(t, "omnifs_mounted", "gauge", "1 while the filesystem is mounted, else 0.");
	metrics_sample_u64(t, "omnifs_mounted", NULL, 0, mounted);
	ofs_metrics_write(&d->fs_metrics, t);
	if (mounted)
		ofs_stats_metrics_write(d->ofs, t);
}

/*
 * Builds the filesystem over the replica and mounts it. Creating the root on
 * a fresh cluster needs a quorum: wait for one (a node may start before the
 * others), but give up on a signal.
 */
static int start_fs(struct daemon *d)
{
	struct ofs_config oc;
	ofs_config_from_cfg(&oc, &d->cfg);
	struct ofs_backend b = {.ctx = d->replica,
				.propose = fs_propose,
				.kv = replica_kv(d->replica),
				.can_write = fs_can_write};
	bool told = false;
	while (!(d->ofs = ofs_new(&oc, &b))) {
		if (!told)
			log_notice("omnifsd: waiting for a quorum to set up the filesystem");
		told = true;
		sigset_t pending;
		sigpending(&pending);
		if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))
			return -EINTR;
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
	/* Returns once the replica thread calls it: no change applied from
	 * here on misses its invalidation. */
	d->hook_fs.locks = d->locks;
	d->hook_fs.ofs = d->ofs;
	int rc = replica_set_apply_hook(d->replica, apply_hook, &d->hook_fs);
	ofs_set_status_source(d->ofs, fs_status, d);
	ofs_set_metrics(d->ofs, &d->fs_metrics);
	ofs_set_locks(d->ofs, d->locks);
	if (rc == 0)
		rc = ofs_mount(d->ofs, d->cfg.mountpoint);
	if (rc != 0) {
		/* Returns once the hook can no longer run: the ofs may go. */
		replica_set_apply_hook(d->replica, apply_hook, &d->hook_locks);
		ofs_destroy(&d->ofs);
		return rc;
	}
	log_notice("omnifsd: mounted at %s", d->cfg.mountpoint);
	return 0;
}

/*
 * SIGHUP: reads the config file again and applies what can change while the
 * node runs: the log level. Everything else (peers, timing, compaction...)
 * is only compared, and a change is said to wait for the next start. A file
 * that no longer loads changes nothing, and says why with file, line and key.
 */
static void reload_config(struct daemon *d)
{
	char err[CFG_ERR_MAX + 256];
	struct cfg *c = malloc(sizeof(*c));
	if (!c) {
		log_err("omnifsd: SIGHUP: out of memory: nothing reloaded");
		return;
	}
	if (cfg_load(c, d->cfg.path, err, sizeof(err)) != 0) {
		log_err("omnifsd: SIGHUP: %s: nothing changed", err);
		free(c);
		return;
	}
	enum log_level to = c->log_level;
	/* Both loads start from zeroed memory: equal files give equal bytes. */
	c->log_level = d->cfg.log_level;
	bool others = memcmp(c, &d->cfg, sizeof(*c)) != 0;
	free(c);
	/* Said under the more verbose of the two levels, as change_log_level. */
	enum log_level was = log_get_level();
	if (to >= was)
		log_set_level(to);
	log_notice("omnifsd: SIGHUP: reloaded %s: log level %s (was %s); %s", d->cfg.path,
		   log_level_name(to), log_level_name(was),
		   others ? "other settings changed in the file take effect at the next start"
			  : "no other setting changed");
	log_set_level(to);
}

/* How often the thread that waits for signals hands the allocator's free
 * memory back to the system. */
#define TRIM_INTERVAL_S 10

/*
 * The next signal (0 on an error). Every TRIM_INTERVAL_S meanwhile it gives
 * the allocator's free memory back to the system: glibc keeps what a burst
 * of work freed (ZeroMQ's queues to a slow follower, batches of large
 * entries) in its arenas, so resident memory would stay at the burst's peak
 * for good (after bench-kv's 64-client cells: 101 MiB, and 42 MiB once
 * trimmed). malloc_trim(0) returns the free whole pages of every arena; it
 * takes milliseconds, on this otherwise idle thread.
 */
static int next_signal(struct daemon *d)
{
	const struct timespec every = {TRIM_INTERVAL_S, 0};
	for (;;) {
		int sig = sigtimedwait(&d->signals, NULL, &every);
		if (sig > 0)
			return sig;
		if (errno == EAGAIN)
			malloc_trim(0);
		else if (errno != EINTR)
			return 0;
	}
}

/* With a mount, the main thread serves FUSE; this thread waits for the
 * signal that ends it, and reloads the config on SIGHUP. */
static void *signal_main(void *arg)
{
	struct daemon *d = arg;
	pthread_setname_np(pthread_self(), "ofs-signals");
	int sig;
	while ((sig = next_signal(d)) != 0) {
		if (sig == SIGHUP)
			reload_config(d);
		if (sig == SIGTERM || sig == SIGINT) {
			log_notice("omnifsd: %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
			atomic_store(&d->stopping, true);
			ofs_stop(d->ofs);
			return NULL;
		}
	}
	return NULL;
}

/*
 * Serves the mounted filesystem on this thread until a signal or an
 * unmount from outside, then takes it down: first everything that may
 * still use d->ofs from another thread (the signal thread, the control
 * socket's workers, the replica's apply hook), then the mount itself.
 */
static void serve_fs(struct daemon *d)
{
	pthread_t sigthread;
	guard_mounted(&d->guard);
	if (pthread_create(&sigthread, NULL, signal_main, d) != 0) {
		log_err("omnifsd: cannot start the signal thread: stopping");
	} else {
		atomic_store(&d->mounted, true);
		int run = ofs_run(d->ofs);
		if (!atomic_load(&d->stopping)) {
			log_warn("omnifsd: the mount at %s ended (%s): stopping", d->cfg.mountpoint,
				 run ? strerror(-run) : "unmounted from outside");
			atomic_store(&d->stopping, true);
			pthread_kill(sigthread, SIGTERM);
		}
		pthread_join(sigthread, NULL);
	}
	sdn_notify("STOPPING=1");
	atomic_store(&d->stopping, true);
	ctl_server_stop(&d->ctl);
	metrics_http_stop(&d->http);
	replica_set_apply_hook(d->replica, apply_hook, &d->hook_locks);
	ofs_unmount(d->ofs);
	guard_unmounted(&d->guard);
	ofs_destroy(&d->ofs);
}

/*
 * Tells systemd how the node is doing, every half second: READY=1 once the
 * filesystem is mounted (units ordered after omnifsd rely on the tree being
 * there) and the node has caught up with the cluster (or, without quorum,
 * after a bounded wait, saying so; a node waiting to be added to the cluster
 * is not ready before it is added and caught up), STATUS= with role, leader, the route to
 * it and lag. The STATUS= sent with READY=1 is sampled right after the check, so it
 * shows at least what the node had applied when it declared itself ready. Also notices a
 * fail-stopped replica and ends the daemon.
 */
static void *notifier_main(void *arg)
{
	struct daemon *d = arg;
	pthread_setname_np(pthread_self(), "ofs-notify");
	bool ready = false;
	uint64_t waited_ms = 0;
	const uint64_t ready_wait_ms = 10ull * d->cfg.election_timeout_ms + 5000;
	char line[256];
	while (!atomic_load(&d->stopping)) {
		if (replica_has_failed(d->replica)) {
			sdn_status("failed: storage error, restarting recovers from disk");
			kill(getpid(), SIGTERM);
			return NULL;
		}
		bool serving = !d->mount || atomic_load(&d->mounted);
		/* Caught up first, the line after: being caught up means a route
		 * to a leader with a quorum, so the line then says so too. */
		bool caught_up = replica_is_caught_up(d->replica);
		replica_status_line(d->replica, line, sizeof(line));
		if (!ready && serving && caught_up) {
			sdn_notify("READY=1");
			log_notice("omnifsd: ready: %s", line);
			ready = true;
		} else if (!ready && serving && waited_ms >= ready_wait_ms &&
			   !replica_is_joining(d->replica)) {
			sdn_notify("READY=1");
			log_warn("omnifsd: not caught up after %llu ms (%s): serving reads of "
				 "local state",
				 (unsigned long long)waited_ms, line);
			ready = true;
		}
		sdn_status("%s", line);
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
		waited_ms += 500;
	}
	return NULL;
}

static int wait_for_signal(struct daemon *d)
{
	int sig;
	while ((sig = next_signal(d)) != 0) {
		if (sig == SIGHUP)
			reload_config(d);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	const char *config = DEFAULT_CONFIG;
	bool check_only = false, clear_only = false, force_new = false, drop_state = false;
	bool yes = false;
	const char *restore = NULL;
	d.mount = true;
	d.guard.fd = -1;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"no-mount", no_argument, NULL, 'n'},
		{"check-config", no_argument, NULL, 'k'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"clear-dead-mount", no_argument, NULL, 'x'},
		{"restore-snapshot", required_argument, NULL, 'R'},
		{"force-new-cluster", no_argument, NULL, 'F'},
		{"drop-state", no_argument, NULL, 'D'},
		{"yes", no_argument, NULL, 'y'},
		{NULL, 0, NULL, 0},
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			d.mount = false;
			break;
		case 'k':
			check_only = true;
			break;
		case 'x':
			clear_only = true;
			break;
		case 'R':
			restore = optarg;
			break;
		case 'F':
			force_new = true;
			break;
		case 'D':
			drop_state = true;
			break;
		case 'y':
			yes = true;
			break;
		case 'V':
			printf("omnifsd %s\n", OMNIFS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if ((optind != argc && !force_new) || (!!restore + force_new + drop_state) > 1) {
		usage(stderr);
		return EX_USAGE;
	}

	char err[CFG_ERR_MAX + 256];
	if (cfg_load(&d.cfg, config, err, sizeof(err)) != 0) {
		log_err("omnifsd: %s", err);
		return 2;
	}
	if (check_only) {
		printf("%s: ok (node %llu of cluster %s, %zu members)\n", config,
		       (unsigned long long)d.cfg.node_id, d.cfg.cluster, d.cfg.n_peers);
		return 0;
	}
	log_set_node(d.cfg.node_id);
	log_set_level(d.cfg.log_level);
	rocks_memory_set_budget((size_t)d.cfg.storage_memory_mb << 20);
	if (clear_only) {
		/* The unit's ExecStopPost: the daemon is gone (or, after systemd's
		 * final SIGKILL, stuck dying); leave no dead mount behind. */
		if (d.cfg.mountpoint[0] != '\0')
			guard_release_stale(d.cfg.mountpoint, d.cfg.data_dir, STALE_WAIT_MS);
		return 0;
	}
	/* Every path from here opens the stores. */
	log_info("omnifsd: RocksDB's checksums computed in %s", rocks_crc32c_engine());
	if (restore)
		return recover_restore(&d.cfg, restore);
	if (force_new)
		return recover_force_new_cluster(&d.cfg, yes, argc - optind, argv + optind);
	if (drop_state)
		return recover_drop_state(&d.cfg, yes);
	if (d.mount && d.cfg.mountpoint[0] == '\0') {
		log_notice("omnifsd: no [node] mountpoint in %s: running the replicated KV only",
			   config);
		d.mount = false;
	}

	/* glibc gives each thread that allocates its own arena (up to 8 per
	 * core), and memory freed in one is not reused by another: with some
	 * twenty threads that is megabytes held for nothing. One arena serves
	 * a daemon whose threads mostly wait (each thread's cache still takes
	 * its small blocks without the lock), and only the first arena's top
	 * is given back by malloc_trim (see next_signal). */
	mallopt(M_ARENA_MAX, 1);
	/* A large file moves through the daemon in buffers of megabytes (a
	 * step's entries, the batches that carry them to the log and the
	 * state, the messages to the followers). Above the default mmap
	 * threshold each was mapped fresh and unmapped when freed, so every
	 * page of it faulted and was zeroed again: some 1,900 page faults per
	 * MiB written, summed over three nodes, a tenth of their CPU. Served
	 * from the arena, whose top is kept up to 32 MiB while the stream
	 * lasts, they fault once; the periodic trim gives the pages back once
	 * the burst is over. */
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);

	/* Signals go to the main thread only: block them before any thread starts. */
	sigemptyset(&d.signals);
	sigaddset(&d.signals, SIGTERM);
	sigaddset(&d.signals, SIGINT);
	sigaddset(&d.signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &d.signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (d.mount) {
		/* A daemon of this node that died (or is stuck dying, its guardian
		 * lost too) may have left its mount here: clear it, or the data dir
		 * stays locked and the mountpoint unusable. Then the guardian,
		 * forked now, while no thread runs and nothing is open yet. */
		guard_release_stale(d.cfg.mountpoint, d.cfg.data_dir, STALE_WAIT_MS);
		int rc = guard_start(&d.guard, d.cfg.mountpoint);
		if (rc != 0) {
			log_err("omnifsd: cannot start: the mount's guardian: %s", strerror(-rc));
			return 3;
		}
	}

	int status = 0;
	if (replica_start(&d.replica, &d.cfg, err, sizeof(err)) != 0) {
		log_err("omnifsd: cannot start: %s", err);
		recover_hint(&d.cfg, err);
		return 3;
	}
	struct ofs_locks_config lc = {.node_id = d.cfg.node_id, .lease_ms = d.cfg.lock_lease_ms};
	struct ofs_backend lb = {.ctx = d.replica,
				 .propose = fs_propose,
				 .kv = replica_kv(d.replica),
				 .can_write = fs_can_write};
	d.locks = ofs_locks_new(&lc, &lb);
	if (!d.locks) {
		log_err("omnifsd: cannot start the lock keeper: %s", strerror(errno));
		status = 3;
		goto out_replica;
	}
	d.hook_locks.locks = d.locks;
	replica_set_apply_hook(d.replica, apply_hook, &d.hook_locks);
	metrics_registry_add(&d.metrics, metrics_process_source, NULL);
	metrics_registry_add(&d.metrics, metrics_of_replica, &d);
	metrics_registry_add(&d.metrics, metrics_of_fs, &d);
	d.ctl = ctl_server_start(d.cfg.control_socket, control_handler, &d, err, sizeof(err));
	if (!d.ctl) {
		log_err("omnifsd: cannot start: %s", err);
		status = 3;
		goto out_locks;
	}
	if (d.cfg.metrics_listen[0]) {
		d.http = metrics_http_start(d.cfg.metrics_listen, &d.metrics, err, sizeof(err));
		if (!d.http) {
			log_err("omnifsd: cannot start: %s", err);
			status = 3;
			goto out_ctl;
		}
		log_notice("omnifsd: metrics at http://%s/metrics", d.cfg.metrics_listen);
	}
	if (pthread_create(&d.notifier, NULL, notifier_main, &d) != 0) {
		log_err("omnifsd: cannot start the notifier thread");
		status = 3;
		goto out_ctl;
	}

	if (d.mount) {
		int rc = start_fs(&d);
		if (rc == 0) {
			serve_fs(&d);
		} else if (!replica_has_failed(d.replica)) {
			log_err("omnifsd: cannot mount at %s: %s", d.cfg.mountpoint, strerror(-rc));
			status = rc == -EINTR ? 0 : 3;
		}
	} else {
		int sig = wait_for_signal(&d);
		log_notice("omnifsd: %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		sdn_notify("STOPPING=1");
	}
	atomic_store(&d.stopping, true);
	pthread_join(d.notifier, NULL);
	if (replica_has_failed(d.replica)) {
		/* The stores hit an error: closing RocksDB now may abort inside it,
		 * and nothing more may be written. Leave at once; a restart
		 * recovers from what is on disk. */
		ctl_server_stop(&d.ctl);
		metrics_http_stop(&d.http);
		log_err("omnifsd: stopped after a storage failure: fix the cause, then restart");
		_exit(1);
	}
out_ctl:
	ctl_server_stop(&d.ctl);
	metrics_http_stop(&d.http);
out_locks:
	/* Returns once the hook can no longer run: the keeper may go. */
	replica_set_apply_hook(d.replica, NULL, NULL);
	ofs_locks_destroy(&d.locks);
out_replica:
	replica_stop(&d.replica);
	log_notice("omnifsd: stopped");
	return status;
}
