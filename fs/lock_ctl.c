/*
 * omnifsd's control commands for cluster-wide locks (see lock_ctl.h): lock,
 * which holds a named lock for as long as its client stays connected, and
 * locks, the listing. The work is the lock keeper's (fs/vfs/locks.h); this
 * file only speaks the control protocol.
 */
#include "lock_ctl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "locks.h"
#include "log.h"

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct lock_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static void lock_granted(void *ctx, int rc)
{
	struct lock_wait *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/*
 * lock NAME WAIT_MS PID (omnifsctl lock): takes the named lock NAME for the
 * client, waiting up to WAIT_MS (-1: as long as it takes, 0: not at all),
 * answers once it holds it, and keeps it until the client closes the
 * connection (its command ended, or it died). A client that leaves while
 * waiting leaves no waiter behind.
 */
static int lock_cmd(struct ofs_locks *locks, atomic_bool *stopping, char **argv,
		    struct ctl_buf *out)
{
	const char *name = argv[1];
	size_t name_len = strlen(name);
	char *end1, *end2;
	errno = 0;
	long long wait_ms = strtoll(argv[2], &end1, 10);
	unsigned long pid = strtoul(argv[3], &end2, 10);
	if (errno || *end1 || *end2 || end1 == argv[2] || end2 == argv[3] || wait_ms < -1 ||
	    wait_ms > 86400000LL * 366 || pid > UINT32_MAX || name_len == 0 ||
	    name_len > LK_NAME_MAX) {
		ctl_buf_printf(out,
			       "usage: lock NAME WAIT_MS PID (NAME 1 to %u bytes, WAIT_MS "
			       "-1 for ever)\n",
			       LK_NAME_MAX);
		return EINVAL;
	}
	struct lk_key res;
	lk_res_named(&res, name, name_len);
	uint64_t id = ofs_locks_new_id(locks);
	struct lk_holder q = {.owner = id,
			      .kind = LK_NAMED,
			      .type = LK_WRITE,
			      .end = LK_EOF,
			      .pid = (uint32_t)pid};
	struct lock_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	uint64_t deadline = wait_ms < 0 ? UINT64_MAX : monotonic_ms() + (uint64_t)wait_ms;
	ofs_locks_submit(locks, id, OFS_LOCK_SET, &res, &q, wait_ms != 0, NULL, lock_granted, &w);
	bool cancelled = false, gone = false;
	pthread_mutex_lock(&w.mu);
	while (!w.done) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w.cv, &w.mu, &ts);
		if (w.done || cancelled)
			continue;
		gone = ctl_client_gone();
		if (gone || monotonic_ms() >= deadline || atomic_load(stopping)) {
			cancelled = true;
			pthread_mutex_unlock(&w.mu);
			ofs_locks_cancel(locks, id);
			pthread_mutex_lock(&w.mu);
		}
	}
	int rc = w.rc;
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	if (rc == -EINTR || rc == -EAGAIN) {
		ctl_buf_printf(out, "%s is held by another holder%s\n", name,
			       wait_ms ? " (gave up waiting)" : "");
		return EWOULDBLOCK;
	}
	if (rc != 0) {
		ctl_buf_printf(out, "cannot take %s: %s\n", name, strerror(-rc));
		return -rc;
	}
	char body[LK_NAME_MAX + 32];
	int n = snprintf(body, sizeof(body), "acquired %s\n", name);
	int held = gone ? -EPIPE : ctl_hold(body, (size_t)n);
	if (held == -ESHUTDOWN)
		log_notice("locks: releasing %s: the daemon stops", name);
	int rel = ofs_locks_call(locks, OFS_LOCK_DROP_OWNER, &res, &q);
	if (rel != 0)
		log_warn("locks: releasing %s: %s (freed when this node's lease expires)", name,
			 strerror(-rel));
	return 0;
}

int lock_control(struct ofs_locks *locks, atomic_bool *stopping, int argc, char **argv,
		 struct ctl_buf *out)
{
	if (strcmp(argv[0], "lock") == 0 && argc == 4)
		return lock_cmd(locks, stopping, argv, out);
	if (strcmp(argv[0], "locks") == 0 && argc <= 2) {
		bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
		if (argc == 2 && !json) {
			ctl_buf_printf(out, "usage: locks [--json]\n");
			return EINVAL;
		}
		int rc = ofs_locks_list(locks, json, out);
		if (rc)
			ctl_buf_printf(out, "%s\n", strerror(-rc));
		return -rc;
	}
	ctl_buf_printf(out, "usage: lock NAME WAIT_MS PID, or locks [--json]\n");
	return EINVAL;
}
