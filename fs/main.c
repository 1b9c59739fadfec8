/*
 * omnifsd: one node of an omnifs cluster.
 *
 * Reads the config, starts the replica (consensus log, KV state, transport),
 * the control socket and, unless told not to, the FUSE mount; then runs until
 * SIGTERM or SIGINT and shuts down in reverse order. Runs in the foreground,
 * logging to stderr (the journal under systemd, Type=notify).
 *
 * Exit status: 0 after a clean stop, 1 when the node failed (a storage
 * error: fail-stop, systemd restarts it and it recovers from disk), 2 for a
 * bad command line or config, 3 when it could not start (data dir, ports,
 * mountpoint...).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "guard.h"
#include "kv.h"
#include "log.h"
#include "ofs.h"
#include "replica.h"
#include "sdnotify.h"

#define DEFAULT_CONFIG "/etc/omnifs/omnifs.conf"
/* How long a start waits for a dying daemon of this node to let go of the
 * data dir once its mount is aborted (it exits within milliseconds then). */
#define STALE_WAIT_MS 10000

struct daemon {
	struct cfg cfg;
	struct replica *replica;
	struct ctl_server *ctl;
	struct ofs *ofs;
	struct guard guard; /* aborts the mount if we die with it (guard.c) */
	bool mount;
	atomic_bool mounted; /* READY=1 waits for it when mounting */
	atomic_bool stopping;
	pthread_t notifier;
	sigset_t signals; /* handled by the main thread only */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: omnifsd [-c CONFIG] [--no-mount] [--check-config] [--clear-dead-mount]\n"
		   "\n"
		   "  -c, --config FILE   the node's config (default " DEFAULT_CONFIG ")\n"
		   "      --no-mount      run the replicated KV only, without FUSE\n"
		   "      --check-config  validate the config file and exit\n"
		   "      --clear-dead-mount\n"
		   "                      abort and unmount what a dead or dying daemon of\n"
		   "                      this node left on its mountpoint, and exit\n"
		   "  -V, --version       print the version and exit\n");
}

static int control_handler(void *ctx, int argc, char **argv, struct ctl_buf *out)
{
	struct daemon *d = ctx;
	int rc = replica_control(d->replica, argc, argv, out);
	/* A barrier promises fresh reads, also through the mount: the kernel
	 * must have dropped what it cached of the changes applied so far. */
	if (rc == 0 && strcmp(argv[0], "barrier") == 0 && atomic_load(&d->mounted) && d->ofs)
		ofs_wait_invalidations(d->ofs, 5000);
	return rc;
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

/* /.omnifs/status.json and members.json: the same JSON as omnifsctl. */
static int fs_status(void *ctx, enum ofs_status_file which, char *buf, size_t cap)
{
	struct daemon *d = ctx;
	struct ctl_buf b = {0};
	int rc = which == OFS_STATUS_JSON ? replica_status_json(d->replica, &b)
					  : replica_members_json(d->replica, &b);
	if (rc == 0 && b.len > cap)
		rc = -ENOSPC;
	else if (rc == 0) {
		memcpy(buf, b.data, b.len);
		rc = (int)b.len;
	}
	ctl_buf_free(&b);
	return rc;
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
	replica_set_apply_hook(d->replica, ofs_apply_hook, d->ofs);
	ofs_set_status_source(d->ofs, fs_status, d);
	int rc = ofs_mount(d->ofs, d->cfg.mountpoint);
	if (rc != 0) {
		replica_set_apply_hook(d->replica, NULL, NULL);
		ofs_destroy(&d->ofs);
		return rc;
	}
	log_notice("omnifsd: mounted at %s", d->cfg.mountpoint);
	return 0;
}

/* With a mount, the main thread serves FUSE; this thread waits for the
 * signal that ends it. */
static void *signal_main(void *arg)
{
	struct daemon *d = arg;
	int sig;
	while (sigwait(&d->signals, &sig) == 0) {
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
 * Tells systemd how the node is doing, every half second: READY=1 once the
 * filesystem is mounted (units ordered after omnifsd rely on the tree being
 * there) and the node has caught up with the cluster (or, without quorum,
 * after a bounded wait, saying so; a node waiting to be added to the cluster
 * is not ready before it is added and caught up), STATUS= with role, leader and lag. The
 * STATUS= sent right after READY=1 was sampled before it, so it shows what
 * the node had applied when it declared itself ready. Also notices a
 * fail-stopped replica and ends the daemon.
 */
static void *notifier_main(void *arg)
{
	struct daemon *d = arg;
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
		replica_status_line(d->replica, line, sizeof(line));
		bool serving = !d->mount || atomic_load(&d->mounted);
		if (!ready && serving && replica_is_caught_up(d->replica)) {
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
	while (sigwait(&d->signals, &sig) == 0) {
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	const char *config = DEFAULT_CONFIG;
	bool check_only = false, clear_only = false;
	d.mount = true;
	d.guard.fd = -1;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"no-mount", no_argument, NULL, 'n'},
		{"check-config", no_argument, NULL, 'k'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{"clear-dead-mount", no_argument, NULL, 'x'},
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
		case 'V':
			printf("omnifsd %s\n", OMNIFS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
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
	char tag[24];
	snprintf(tag, sizeof(tag), "n%llu", (unsigned long long)d.cfg.node_id);
	log_set_tag(tag);
	log_set_level(d.cfg.log_level);
	if (clear_only) {
		/* The unit's ExecStopPost: the daemon is gone (or, after systemd's
		 * final SIGKILL, stuck dying); leave no dead mount behind. */
		if (d.cfg.mountpoint[0] != '\0')
			guard_release_stale(d.cfg.mountpoint, d.cfg.data_dir, STALE_WAIT_MS);
		return 0;
	}
	if (d.mount && d.cfg.mountpoint[0] == '\0') {
		log_notice("omnifsd: no [node] mountpoint in %s: running the replicated KV only",
			   config);
		d.mount = false;
	}

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
		return 3;
	}
	d.ctl = ctl_server_start(d.cfg.control_socket, control_handler, &d, err, sizeof(err));
	if (!d.ctl) {
		log_err("omnifsd: cannot start: %s", err);
		status = 3;
		goto out_replica;
	}
	if (pthread_create(&d.notifier, NULL, notifier_main, &d) != 0) {
		log_err("omnifsd: cannot start the notifier thread");
		status = 3;
		goto out_ctl;
	}

	if (d.mount) {
		int rc = start_fs(&d);
		if (rc != 0) {
			log_err("omnifsd: cannot mount at %s: %s", d.cfg.mountpoint, strerror(-rc));
			status = rc == -EINTR ? 0 : 3;
			atomic_store(&d.stopping, true);
			pthread_join(d.notifier, NULL);
			goto out_ctl;
		}
		atomic_store(&d.mounted, true);
		guard_mounted(&d.guard);
		pthread_t sigthread;
		pthread_create(&sigthread, NULL, signal_main, &d);
		int run = ofs_run(d.ofs);
		if (!atomic_load(&d.stopping))
			log_warn("omnifsd: the mount at %s ended (%s): stopping", d.cfg.mountpoint,
				 run ? strerror(-run) : "unmounted from outside");
		sdn_notify("STOPPING=1");
		if (!atomic_load(&d.stopping)) {
			atomic_store(&d.stopping, true);
			pthread_kill(sigthread, SIGTERM);
		}
		pthread_join(sigthread, NULL);
		ofs_unmount(d.ofs);
		guard_unmounted(&d.guard);
		replica_set_apply_hook(d.replica, NULL, NULL);
		ofs_destroy(&d.ofs);
	} else {
		int sig = wait_for_signal(&d);
		log_notice("omnifsd: %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		sdn_notify("STOPPING=1");
		atomic_store(&d.stopping, true);
	}
	pthread_join(d.notifier, NULL);
	if (replica_has_failed(d.replica)) {
		/* The stores hit an error: closing RocksDB now may abort inside it,
		 * and nothing more may be written. Leave at once; a restart
		 * recovers from what is on disk. */
		ctl_server_stop(&d.ctl);
		log_err("omnifsd: stopped after a storage failure: fix the cause, then restart");
		_exit(1);
	}
out_ctl:
	ctl_server_stop(&d.ctl);
out_replica:
	replica_stop(&d.replica);
	log_notice("omnifsd: stopped");
	return status;
}
