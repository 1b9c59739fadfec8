/*
 * The lock keepers of three nodes over one real KV (the local backend, each
 * proposal applied at once and shown to every keeper as the apply hook
 * does), without FUSE: exclusion across nodes, a waiter woken by a release
 * elsewhere, a cancelled waiter that leaves nothing behind, F_GETLK of a
 * holder on another node, a lease kept by renewals, a lease expired when
 * its node is cut off (its locks in doubt, then lost once it is back), and
 * a stale holder dropped only while its lease is still gone, a release
 * that failed for want of a quorum, done later all the same, and a lease
 * kept while the keeper is busy for longer than it.
 */
#include "test.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "kv.h"
#include "local_backend.h"
#include "locks.h"
#include "log.h"

#define LEASE_MS 400u
#define NODES	 3

struct fx;
struct node {
	struct fx *f;
	int i;
	struct ofs_locks *l;
	atomic_bool cut; /* proposals fail with -EROFS, as without a quorum */
	/* Applied just before this node's next proposal, once: a change that
	 * another node made after this one read the table. */
	_Atomic(struct kv_txn *) before_next;
};

struct fx {
	char dir[256];
	struct ofs_local_backend *lb;
	struct ofs_backend kv;
	struct node n[NODES];
	pthread_mutex_t hook_mu; /* the keepers' pointers, read by the hook */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int node_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct node *n = ctx;
	if (atomic_load(&n->cut))
		return -EROFS;
	struct kv_txn *first = atomic_exchange(&n->before_next, NULL);
	if (first) {
		struct kv_result fr;
		assert_int_equal(n->f->kv.propose(n->f->kv.ctx, first, &fr), 0);
		assert_int_equal(fr.status, KV_APPLIED);
	}
	int rc = n->f->kv.propose(n->f->kv.ctx, t, res);
	if (rc == 0) {
		pthread_mutex_lock(&n->f->hook_mu);
		for (int i = 0; i < NODES; i++)
			if (n->f->n[i].l)
				ofs_locks_on_applied(n->f->n[i].l, t);
		pthread_mutex_unlock(&n->f->hook_mu);
	}
	return rc;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char err[KV_ERR_MAX];
	snprintf(f->dir, sizeof(f->dir), "%s/omnifs-locks-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(ofs_local_backend_open(&f->lb, f->dir, 77, &f->kv, err, sizeof(err)), 0);
	pthread_mutex_init(&f->hook_mu, NULL);
	for (int i = 0; i < NODES; i++) {
		struct node *n = &f->n[i];
		n->f = f;
		n->i = i;
		struct ofs_locks_config c = {.node_id = (uint64_t)i + 1, .lease_ms = LEASE_MS};
		struct ofs_backend b = {.ctx = n, .propose = node_propose, .kv = f->kv.kv};
		struct ofs_locks *l = ofs_locks_new(&c, &b);
		assert_non_null(l);
		pthread_mutex_lock(&f->hook_mu);
		n->l = l;
		pthread_mutex_unlock(&f->hook_mu);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < NODES; i++) {
		atomic_store(&f->n[i].cut, false);
		pthread_mutex_lock(&f->hook_mu);
		struct ofs_locks *l = f->n[i].l;
		f->n[i].l = NULL;
		pthread_mutex_unlock(&f->hook_mu);
		ofs_locks_destroy(&l);
	}
	pthread_mutex_destroy(&f->hook_mu);
	ofs_local_backend_close(&f->lb);
	assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

static struct lk_holder named(uint64_t owner)
{
	struct lk_holder q = {.owner = owner, .kind = LK_NAMED, .type = LK_WRITE, .end = LK_EOF};
	return q;
}

/* A request answered later: its done sets rc. */
struct pending {
	atomic_int rc;
	atomic_bool done;
};

static void pending_done(void *ctx, int rc)
{
	struct pending *p = ctx;
	atomic_store(&p->rc, rc);
	atomic_store(&p->done, true);
}

static bool wait_done(struct pending *p, unsigned ms)
{
	uint64_t end = now_ms() + ms;
	while (!atomic_load(&p->done) && now_ms() < end)
		nap(5);
	return atomic_load(&p->done);
}

static void test_locks_exclusion_and_waiter(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_named(&res, "job", 3);
	struct lk_holder a = named(11), b = named(22);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	/* Another node: busy, at once. */
	assert_int_equal(ofs_locks_call(f->n[1].l, OFS_LOCK_SET, &res, &b), -EAGAIN);
	/* Waiting: granted only once node 1 lets go. */
	struct pending p = {0};
	struct ofs_locks *l2 = f->n[1].l;
	ofs_locks_submit(l2, ofs_locks_new_id(l2), OFS_LOCK_SET, &res, &b, true, NULL, pending_done,
			 &p);
	assert_false(wait_done(&p, 300));
	assert_true(ofs_locks_maybe_held(l2, &res)); /* a request of its own is pending */
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_DROP_OWNER, &res, &a), 0);
	assert_true(wait_done(&p, 5000));
	assert_int_equal(atomic_load(&p.rc), 0);
	assert_false(ofs_locks_maybe_held(f->n[0].l, &res));
	assert_true(ofs_locks_maybe_held(l2, &res));
	/* The listing shows the holder with its node. */
	struct ctl_buf out = {0};
	assert_int_equal(ofs_locks_list(f->n[2].l, true, &out), 0);
	assert_non_null(strstr(out.data, "\"resource\":\"name job\""));
	assert_non_null(strstr(out.data, "\"node\":2"));
	ctl_buf_free(&out);
}

static void test_locks_cancelled_waiter_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_named(&res, "c", 1);
	struct lk_holder a = named(1), b = named(2), c = named(3);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	struct pending p = {0};
	struct ofs_locks *l2 = f->n[1].l;
	uint64_t id = ofs_locks_new_id(l2);
	ofs_locks_submit(l2, id, OFS_LOCK_SET, &res, &b, true, NULL, pending_done, &p);
	assert_false(wait_done(&p, 100));
	ofs_locks_cancel(l2, id);
	assert_true(wait_done(&p, 5000));
	assert_int_equal(atomic_load(&p.rc), -EINTR);
	/* A cancel before the submit ends the request at once. */
	struct pending q = {0};
	id = ofs_locks_new_id(l2);
	ofs_locks_cancel(l2, id);
	ofs_locks_submit(l2, id, OFS_LOCK_SET, &res, &b, true, NULL, pending_done, &q);
	assert_true(wait_done(&q, 5000));
	assert_int_equal(atomic_load(&q.rc), -EINTR);
	/* Released: node 3 takes it; node 2's waiters are gone for good. */
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_DROP_OWNER, &res, &a), 0);
	assert_int_equal(ofs_locks_call(f->n[2].l, OFS_LOCK_SET, &res, &c), 0);
	nap(2 * LEASE_MS / 8 + 50); /* a tick of node 2's keeper */
	struct lk_holder h;
	struct lk_holder probe = named(99);
	assert_int_equal(ofs_locks_test(f->n[0].l, &res, &probe, &h), 1);
	assert_int_equal(h.node, 3);
}

static void test_locks_posix_ranges_across_nodes(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_inode(&res, 1234);
	struct lk_holder w = {
		.owner = 5, .kind = LK_POSIX, .type = LK_WRITE, .start = 0, .end = 9, .pid = 4242};
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &w), 0);
	/* F_GETLK from node 2 over 5..14 finds node 1's lock, whole. */
	struct lk_holder probe = {
		.owner = 5, .kind = LK_POSIX, .type = LK_READ, .start = 5, .end = 14};
	struct lk_holder h;
	assert_int_equal(ofs_locks_test(f->n[1].l, &res, &probe, &h), 1);
	assert_int_equal(h.node, 1);
	assert_int_equal(h.start, 0);
	assert_int_equal(h.end, 9);
	assert_int_equal(h.pid, 4242);
	/* Beside it: free. */
	struct lk_holder other = {
		.owner = 5, .kind = LK_POSIX, .type = LK_WRITE, .start = 10, .end = LK_EOF};
	assert_int_equal(ofs_locks_call(f->n[1].l, OFS_LOCK_SET, &res, &other), 0);
	/* Node 1 unlocks 0..4: node 3 may take 0..4 but not 5..9. */
	struct lk_holder un = w;
	un.type = LK_UNLOCK;
	un.end = 4;
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &un), 0);
	struct lk_holder c = {.owner = 8, .kind = LK_POSIX, .type = LK_WRITE, .start = 0, .end = 4};
	assert_int_equal(ofs_locks_call(f->n[2].l, OFS_LOCK_SET, &res, &c), 0);
	c.start = 5;
	c.end = 5;
	assert_int_equal(ofs_locks_call(f->n[2].l, OFS_LOCK_SET, &res, &c), -EAGAIN);
}

static bool status_has(struct ofs_locks *l, const char *what)
{
	struct ctl_buf out = {0};
	ofs_locks_status(l, false, &out);
	bool has = out.data && strstr(out.data, what);
	ctl_buf_free(&out);
	return has;
}

static void test_locks_renewal_keeps_lease(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_named(&res, "long", 4);
	struct lk_holder a = named(1), b = named(2);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	uint64_t end = now_ms() + 4 * LEASE_MS;
	while (now_ms() < end) {
		assert_int_equal(ofs_locks_call(f->n[1].l, OFS_LOCK_SET, &res, &b), -EAGAIN);
		nap(LEASE_MS / 4);
	}
	assert_false(status_has(f->n[0].l, "IN DOUBT"));
	assert_true(status_has(f->n[0].l, "lost 0 times"));
}

static void test_locks_expiry_when_cut_off(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_named(&res, "exp", 3);
	struct lk_holder a = named(1), b = named(2);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	struct pending p = {0};
	struct ofs_locks *l2 = f->n[1].l;
	ofs_locks_submit(l2, ofs_locks_new_id(l2), OFS_LOCK_SET, &res, &b, true, NULL, pending_done,
			 &p);
	assert_false(wait_done(&p, 100));
	/* Node 1 loses the majority: it cannot renew. It must report its
	 * locks in doubt before anyone else can have them. */
	uint64_t cut_at = now_ms(), doubt_at = 0, end = cut_at + 20 * LEASE_MS;
	atomic_store(&f->n[0].cut, true);
	while (now_ms() < end) {
		bool done = atomic_load(&p.done);
		if (!doubt_at && status_has(f->n[0].l, "IN DOUBT"))
			doubt_at = now_ms();
		if (done)
			break;
		nap(5);
	}
	assert_true(atomic_load(&p.done));
	assert_int_equal(atomic_load(&p.rc), 0);
	assert_true(doubt_at != 0);
	/* Not before a lease without renewal (it renewed at most a quarter
	 * of a lease before the cut). */
	assert_true(now_ms() - cut_at >= LEASE_MS * 3 / 4);
	/* ... and, back, it learns its locks were lost. */
	atomic_store(&f->n[0].cut, false);
	end = now_ms() + 20 * LEASE_MS;
	while (!status_has(f->n[0].l, "lost 1 times") && now_ms() < end)
		nap(20);
	assert_true(status_has(f->n[0].l, "lost 1 times"));
	assert_false(ofs_locks_maybe_held(f->n[0].l, &res));
	/* Its stale holder is no obstacle: node 3 sees node 2 alone. Polled,
	 * with what node 3 saw printed on failure: under ThreadSanitizer the
	 * keepers' sweeps may still be rewriting the record. */
	struct lk_holder h = {0}, probe = named(9);
	int rc = 0;
	end = now_ms() + 20 * LEASE_MS;
	while ((rc = ofs_locks_test(f->n[2].l, &res, &probe, &h)) != 1 && now_ms() < end)
		nap(20);
	if (rc != 1 || h.node != 2)
		print_error("node 3 sees: test %d, holder node %llu\n", rc,
			    (unsigned long long)h.node);
	assert_int_equal(rc, 1);
	assert_int_equal(h.node, 2);
}

/*
 * A holder is dropped as stale on the strength of the leases as this node
 * read them. If its node's lease is there again by the time the drop is
 * applied (a read of the leases that came before the lease's creation, as
 * when the two reads straddle another node's first grant), the drop must
 * not go through: the holder is valid and the lock is not free.
 */
static void test_locks_stale_drop_rechecks_the_lease(void **state)
{
	struct fx *f = *state;
	struct lk_key res, lease, rec;
	lk_res_named(&res, "stale", 5);
	lk_key_lease(&lease, 1);
	lk_key_record(&rec, &res);
	struct lk_holder a = named(1), b = named(2);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	/* Node 1's holder, with the epoch of its lease. */
	void *v = NULL;
	size_t len;
	uint64_t ver;
	assert_int_equal(kv_get(f->kv.kv, rec.b, rec.len, &v, &len, &ver), 0);
	struct lk_record r;
	assert_int_equal(lk_record_decode(&r, v, len), 0);
	free(v);
	assert_int_equal(r.n, 1);
	uint64_t epoch = r.h[0].epoch;
	lk_record_free(&r);
	/* Node 1's lease is gone, as after an expiry; its holder stays
	 * behind. Every node is cut meanwhile, so no keeper's sweep can take
	 * the holder away first. */
	for (int i = 0; i < NODES; i++)
		atomic_store(&f->n[i].cut, true);
	struct kv_txn gone;
	struct kv_result gr;
	kv_txn_init(&gone, 0, 0);
	assert_int_equal(kv_txn_add_delete(&gone, lease.b, lease.len), 0);
	assert_int_equal(f->kv.propose(f->kv.ctx, &gone, &gr), 0);
	assert_int_equal(gr.status, KV_APPLIED);
	kv_txn_free(&gone);
	/* The lease is back with that epoch just before node 2's first change
	 * is applied: a sweep of its keeper, or its own request. Either way
	 * the holder must stay and the lock must stay taken. */
	uint8_t e[8];
	lk_lease_encode(epoch, e);
	struct kv_txn back;
	kv_txn_init(&back, 0, 0);
	assert_int_equal(kv_txn_add_put(&back, lease.b, lease.len, e, sizeof(e)), 0);
	atomic_store(&f->n[1].before_next, &back);
	atomic_store(&f->n[1].cut, false);
	assert_int_equal(ofs_locks_call(f->n[1].l, OFS_LOCK_SET, &res, &b), -EAGAIN);
	assert_null(atomic_load(&f->n[1].before_next));
	kv_txn_free(&back);
}

static void test_locks_failed_release_is_retried(void **state)
{
	struct fx *f = *state;
	struct lk_key res;
	lk_res_named(&res, "rel", 3);
	struct lk_holder a = named(1), b = named(2);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	/* The release meets a node without a quorum: the caller hears so... */
	atomic_store(&f->n[0].cut, true);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_DROP_OWNER, &res, &a), -EROFS);
	atomic_store(&f->n[0].cut, false);
	/* ... and the keeper releases it once it can: not by an expiry. */
	struct pending p = {0};
	struct ofs_locks *l2 = f->n[1].l;
	ofs_locks_submit(l2, ofs_locks_new_id(l2), OFS_LOCK_SET, &res, &b, true, NULL, pending_done,
			 &p);
	assert_true(wait_done(&p, 20 * LEASE_MS));
	assert_int_equal(atomic_load(&p.rc), 0);
	nap(2 * LEASE_MS);
	assert_true(status_has(f->n[0].l, "lost 0 times"));
	assert_false(ofs_locks_maybe_held(f->n[0].l, &res));
}

/* A done callback that keeps the keeper busy (it runs on its thread). */
static void slow_done(void *ctx, int rc)
{
	(void)rc;
	nap(3 * LEASE_MS);
	atomic_store((atomic_bool *)ctx, true);
}

static void test_locks_busy_keeper_keeps_lease(void **state)
{
	struct fx *f = *state;
	struct lk_key res, other;
	lk_res_named(&res, "busy", 4);
	lk_res_named(&other, "other", 5);
	struct lk_holder a = named(1), b = named(2), c = named(3);
	assert_int_equal(ofs_locks_call(f->n[0].l, OFS_LOCK_SET, &res, &a), 0);
	/* Node 1's keeper is stuck for three leases... */
	atomic_bool slow_over = false;
	struct ofs_locks *l1 = f->n[0].l;
	ofs_locks_submit(l1, ofs_locks_new_id(l1), OFS_LOCK_SET, &other, &c, false, NULL, slow_done,
			 &slow_over);
	/* ... while its lease is renewed all the same: nobody else gets res. */
	while (!atomic_load(&slow_over)) {
		assert_int_equal(ofs_locks_call(f->n[1].l, OFS_LOCK_SET, &res, &b), -EAGAIN);
		nap(LEASE_MS / 4);
	}
	assert_true(status_has(l1, "lost 0 times"));
}

int main(void)
{
	/* OMNIFS_TEST_LOG_LEVEL=debug shows what the keepers do. */
	enum log_level level;
	const char *env = getenv("OMNIFS_TEST_LOG_LEVEL");
	if (env && log_level_parse(env, &level) == 0)
		log_set_level(level);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_locks_exclusion_and_waiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks_cancelled_waiter_leaves_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks_posix_ranges_across_nodes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks_renewal_keeps_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks_expiry_when_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks_stale_drop_rechecks_the_lease, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks_failed_release_is_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks_busy_keeper_keeps_lease, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
