/*
 * The apply hook belongs to the replica thread and is handed to it through
 * its request queue (replica_set_apply_hook): a hook that is set is called
 * for every entry applied after the call returns; a hook that is cleared is
 * not running when the call returns and never runs again (the filesystem
 * frees its context right after); once the replica thread has stopped,
 * setting and clearing return at once. Also: requests for the replica thread
 * posted from several threads at once each get their own answer.
 *
 * Two real replicas in this process: RocksDB in a temp dir, ZeroMQ on
 * loopback. Under ThreadSanitizer (build/tsan) a hook handed over without
 * synchronisation is also reported as a race.
 */
#include "test.h"

#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "log.h"
#include "replica_int.h"

#define WAIT_MS 20000 /* bound on every wait for the cluster */

struct hook_state {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	unsigned calls;
	char want[16]; /* a key to look for */
	bool seen;     /* an entry putting want was applied */
	bool block;    /* the next call holds on until release (at most 500 ms) */
	bool inside;   /* a call is running */
	bool release;
};

struct fixture {
	char dir[64];
	struct replica *r[2];
	struct hook_state h;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A TCP port nobody listens on right now. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t len = sizeof(sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/omnifs-hook.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	pthread_mutex_init(&f->h.mu, NULL);
	pthread_cond_init(&f->h.changed, NULL);
	int port[2] = {free_port(), free_port()};
	for (int i = 0; i < 2; i++) {
		char text[1024], err[CFG_ERR_MAX];
		snprintf(text, sizeof(text),
			 "[node]\nid = %d\ncluster = hook\ndata_dir = %s/n%d\n"
			 "[peers]\n1 = 127.0.0.1:%d\n2 = 127.0.0.1:%d\n"
			 "[timing]\ntick_ms = 10\nelection_timeout_ms = 100\n"
			 "[security]\nplaintext = true\n",
			 i + 1, f->dir, i + 1, port[0], port[1]);
		struct cfg *c = calloc(1, sizeof(*c));
		assert_non_null(c);
		if (cfg_parse_string(c, text, "test", err, sizeof(err)) != 0)
			fail_msg("config: %s", err);
		if (replica_start(&f->r[i], c, err, sizeof(err)) != 0)
			fail_msg("replica_start: %s", err);
		free(c);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	replica_stop(&f->r[0]);
	replica_stop(&f->r[1]);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	pthread_mutex_destroy(&f->h.mu);
	pthread_cond_destroy(&f->h.changed);
	free(f);
	return 0;
}

static void hook(void *ctx, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	struct hook_state *h = ctx;
	pthread_mutex_lock(&h->mu);
	h->calls++;
	h->inside = true;
	for (uint32_t i = 0; i < t->n_ops; i++)
		if (t->ops[i].key_len == strlen(h->want) &&
		    memcmp(t->ops[i].key, h->want, t->ops[i].key_len) == 0)
			h->seen = true;
	pthread_cond_broadcast(&h->changed);
	if (h->block) {
		/* Long enough that a clear that does not wait returns first. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 500 * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!h->release && pthread_cond_timedwait(&h->changed, &h->mu, &until) == 0)
			;
		h->block = false;
	}
	h->inside = false;
	pthread_mutex_unlock(&h->mu);
}

/* Puts key through r, retrying while the cluster has no leader yet. Returns
 * replica_propose's result (any thread: no assertion here). */
static int try_put(struct replica *r, const char *key)
{
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	int rc = kv_txn_add_put(&t, key, strlen(key), "v", 1);
	uint64_t end = now_ms() + WAIT_MS;
	struct kv_result res;
	while (rc == 0) {
		rc = replica_propose(r, &t, &res);
		if ((rc != -EROFS && rc != -ETIMEDOUT) || now_ms() > end)
			break;
		rc = 0;
		pause_ms(20);
	}
	kv_txn_free(&t);
	return rc == 0 && res.status != KV_APPLIED ? -EAGAIN : rc;
}

static void put(struct replica *r, const char *key)
{
	assert_int_equal(try_put(r, key), 0);
}

/* Reads the hook's state under its lock; asserts run on the copy, so a
 * failing one does not leave the lock held for the hook to wait on. */
static struct hook_state seen_by_hook(struct hook_state *h)
{
	pthread_mutex_lock(&h->mu);
	struct hook_state copy = *h;
	pthread_mutex_unlock(&h->mu);
	return copy;
}

/* From here on the hook looks for an entry putting key. */
static void expect(struct hook_state *h, const char *key)
{
	pthread_mutex_lock(&h->mu);
	snprintf(h->want, sizeof(h->want), "%s", key);
	h->seen = false;
	pthread_mutex_unlock(&h->mu);
}

/* Waits (bounded) until the hook has seen the entry expect named. */
static void wait_seen(struct hook_state *h)
{
	uint64_t end = now_ms() + WAIT_MS;
	while (!seen_by_hook(h).seen && now_ms() < end)
		pause_ms(5);
	if (!seen_by_hook(h).seen)
		fail_msg("the hook never saw the entry putting %s", seen_by_hook(h).want);
}

static void test_apply_hook_set_is_called_for_later_entries(void **state)
{
	struct fixture *f = *state;
	put(f->r[0], "before"); /* a leader, and an entry applied without a hook */
	assert_int_equal(replica_set_apply_hook(f->r[0], hook, &f->h), 0);
	expect(&f->h, "a");
	put(f->r[0], "a");
	wait_seen(&f->h);
	/* Entries proposed elsewhere too: the filesystem's invalidations. */
	expect(&f->h, "b");
	put(f->r[1], "b");
	wait_seen(&f->h);
	assert_int_equal(replica_set_apply_hook(f->r[0], NULL, NULL), 0);
}

struct putter {
	struct replica *r;
	const char *key;
	int rc;
	pthread_t t;
};

static void *put_main(void *arg)
{
	struct putter *p = arg;
	p->rc = try_put(p->r, p->key);
	return NULL;
}

static void test_apply_hook_clear_waits_for_a_running_hook(void **state)
{
	struct fixture *f = *state;
	struct hook_state *h = &f->h;
	put(f->r[0], "before");
	assert_int_equal(replica_set_apply_hook(f->r[0], hook, h), 0);
	pthread_mutex_lock(&h->mu);
	h->block = true;
	pthread_mutex_unlock(&h->mu);
	struct putter p = {.r = f->r[0], .key = "slow"};
	assert_int_equal(pthread_create(&p.t, NULL, put_main, &p), 0);

	/* The hook is running (and holds on). */
	uint64_t end = now_ms() + WAIT_MS;
	while (!seen_by_hook(h).inside && now_ms() < end)
		pause_ms(1);
	bool entered = seen_by_hook(h).inside;

	/* Clearing returns only once it has returned. */
	int rc = replica_set_apply_hook(f->r[0], NULL, NULL);
	struct hook_state after_clear = seen_by_hook(h);
	pthread_join(p.t, NULL);
	assert_true(entered);
	assert_int_equal(rc, 0);
	assert_false(after_clear.inside);
	assert_int_equal(p.rc, 0);

	/* And it is never called again. */
	put(f->r[0], "after");
	put(f->r[1], "elsewhere");
	assert_int_equal(replica_barrier(f->r[0]), 0);
	assert_int_equal(seen_by_hook(h).calls, after_clear.calls);
}

static void test_apply_hook_after_the_thread_stopped_returns_at_once(void **state)
{
	struct fixture *f = *state;
	struct replica *r = f->r[0];
	put(r, "before");
	assert_int_equal(replica_set_apply_hook(r, hook, &f->h), 0);
	/* What a storage failure does (replica_fail): the loop ends. */
	atomic_store(&r->stop, true);
	uint64_t one = 1;
	assert_int_equal(write(r->wake_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	uint64_t t0 = now_ms();
	int rc = replica_set_apply_hook(r, NULL, NULL);
	/* 0 if the thread took it in its last turn; after that, -ESHUTDOWN. */
	assert_true(rc == 0 || rc == -ESHUTDOWN);
	assert_int_equal(replica_set_apply_hook(r, hook, &f->h), -ESHUTDOWN);
	assert_int_equal(replica_set_apply_hook(r, NULL, NULL), -ESHUTDOWN);
	assert_true(now_ms() - t0 < 5000);
}

struct faulter {
	struct replica *r;
	int idx;
	unsigned mixed_up; /* answers that were not this thread's */
	pthread_t t;
};

static void *fault_main(void *arg)
{
	struct faulter *q = arg;
	for (int i = 0; i < 50; i++) {
		/* Peer 2 exists (0); peer 99 does not (-ENOENT). */
		bool known = (i + q->idx) % 2 == 0;
		int rc = replica_set_fault(q->r, known ? 2 : 99, false, false);
		if (rc != (known ? 0 : -ENOENT))
			q->mixed_up++;
	}
	return NULL;
}

static void test_apply_hook_requests_from_many_threads_get_their_own_answers(void **state)
{
	struct fixture *f = *state;
	struct faulter q[4];
	for (int i = 0; i < 4; i++) {
		q[i] = (struct faulter){.r = f->r[0], .idx = i};
		assert_int_equal(pthread_create(&q[i].t, NULL, fault_main, &q[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(q[i].t, NULL);
		assert_int_equal(q[i].mixed_up, 0);
	}
}

int main(void)
{
	log_set_level(LOG_LEVEL_WARNING);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_hook_set_is_called_for_later_entries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_hook_clear_waits_for_a_running_hook,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_apply_hook_after_the_thread_stopped_returns_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_apply_hook_requests_from_many_threads_get_their_own_answers, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
