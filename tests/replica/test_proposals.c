/*
 * The hand-off between proposers and the replica thread (fs/replica/proposals.c):
 * a proposer wakes the replica through the eventfd and gets the result the
 * replica completes it with; a proposal the replica fails or lets expire
 * fails its proposer; sequences grow; close fails everyone with ESHUTDOWN;
 * in-flight proposals are bounded; proposers queued behind one not taken
 * yet do not wake the replica again; settle finishes the proposals a
 * verdict names and leaves the others in flight.
 */
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "proposals.h"

struct fixture {
	struct proposals p;
	int efd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(f->efd >= 0);
	assert_int_equal(proposals_init(&f->p, f->efd, 100, 4), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	proposals_close(&f->p);
	proposals_destroy(&f->p);
	close(f->efd);
	free(f);
	return 0;
}

#define NODE 7

/* The proposal id its queued entry carries. */
static uint64_t entry_seq(const struct proposal *pr)
{
	struct kv_txn t;
	assert_int_equal(kv_txn_decode(&t, pr->entry, pr->len), 0);
	assert_int_equal(t.node_id, NODE);
	uint64_t seq = t.seq;
	kv_txn_free(&t);
	return seq;
}

struct submitter {
	struct proposals *p;
	uint32_t timeout_ms;
	int rc;
	struct kv_result res;
	pthread_t t;
};

static void *submit_main(void *arg)
{
	struct submitter *s = arg;
	struct kv_txn empty;
	kv_txn_init(&empty, 0, 0);
	s->rc = proposals_submit(s->p, &empty, NODE, s->timeout_ms, &s->res);
	kv_txn_free(&empty);
	return NULL;
}

static void start(struct submitter *s, struct proposals *p, uint32_t timeout_ms)
{
	*s = (struct submitter){.p = p, .timeout_ms = timeout_ms};
	pthread_create(&s->t, NULL, submit_main, s);
}

/* Waits (bounded) until n proposals are queued, as the replica thread would
 * after a wake-up, and takes them. */
static size_t take(struct fixture *f, struct proposal **out, size_t n)
{
	size_t got = 0;
	for (int i = 0; i < 2000 && got < n; i++) {
		got += proposals_take_queued(&f->p, out + got, n - got);
		if (got < n)
			usleep(1000);
	}
	return got;
}

/* Whether a proposal is queued (read under the lock, as the replica would). */
static bool queued(struct fixture *f)
{
	pthread_mutex_lock(&f->p.lock);
	bool any = f->p.queue_head != NULL;
	pthread_mutex_unlock(&f->p.lock);
	return any;
}

/* How many proposals are queued, not taken yet. */
static size_t n_queued(struct fixture *f)
{
	size_t n = 0;
	pthread_mutex_lock(&f->p.lock);
	for (struct proposal *pr = f->p.queue_head; pr; pr = pr->next)
		n++;
	pthread_mutex_unlock(&f->p.lock);
	return n;
}

/* The eventfd's count of wake-ups (0 if none), which it resets. */
static uint64_t wakes(struct fixture *f)
{
	uint64_t n = 0;
	return read(f->efd, &n, sizeof(n)) == sizeof(n) ? n : 0;
}

/* Completes the n proposals in pr with KV_APPLIED. */
static void complete_all(struct fixture *f, struct proposal **pr, size_t n)
{
	uint64_t seqs[8];
	for (size_t i = 0; i < n; i++)
		seqs[i] = pr[i]->seq; /* pr[i] may be freed once completed */
	for (size_t i = 0; i < n; i++) {
		struct kv_result res = {.status = KV_APPLIED, .seq = seqs[i]};
		proposals_complete(&f->p, &res);
	}
}

/* The first proposer queued wakes the replica; those queued behind it
 * before the replica takes the queue do not (its take gets them all); the
 * first one queued after the take wakes it again. */
static void test_proposals_one_wake_for_a_queue(void **state)
{
	struct fixture *f = *state;
	struct submitter s[4];
	start(&s[0], &f->p, 10000);
	struct pollfd pfd = {.fd = f->efd, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 10000), 1); /* queued, then woke the replica */
	start(&s[1], &f->p, 10000);
	start(&s[2], &f->p, 10000);
	for (int i = 0; i < 2000 && n_queued(f) < 3; i++)
		usleep(1000);
	struct proposal *pr[3];
	assert_int_equal(proposals_take_queued(&f->p, pr, 3), 3);
	complete_all(f, pr, 3);
	for (int i = 0; i < 3; i++) {
		pthread_join(s[i].t, NULL); /* past its wake-up, if it made one */
		assert_int_equal(s[i].rc, 0);
	}
	assert_int_equal(wakes(f), 1);

	start(&s[3], &f->p, 10000);
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(take(f, pr, 1), 1);
	complete_all(f, pr, 1);
	pthread_join(s[3].t, NULL);
	assert_int_equal(s[3].rc, 0);
	assert_int_equal(wakes(f), 1);
}

static void test_proposals_complete_wakes_the_proposer(void **state)
{
	struct fixture *f = *state;
	struct submitter s;
	start(&s, &f->p, 10000);
	struct proposal *pr[1];
	assert_int_equal(take(f, pr, 1), 1);
	uint64_t wake;
	assert_int_equal(read(f->efd, &wake, 8), 8); /* the replica was woken */
	assert_int_equal(entry_seq(pr[0]), 100);     /* the entry carries the proposal's id */
	assert_int_equal(pr[0]->seq, 100);
	struct kv_result res = {.status = KV_CONFLICT, .seq = 100, .conflict_op = 2};
	proposals_complete(&f->p, &res);
	pthread_join(s.t, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(s.res.status, KV_CONFLICT);
	assert_int_equal(s.res.conflict_op, 2);
	assert_int_equal(proposals_in_flight(&f->p), 0);
}

static void test_proposals_fail_queued_and_expire(void **state)
{
	struct fixture *f = *state;
	struct submitter a, b;
	start(&a, &f->p, 10000);
	for (int i = 0; i < 2000 && !queued(f); i++)
		usleep(1000);
	proposals_fail_queued(&f->p, -EROFS);
	pthread_join(a.t, NULL);
	assert_int_equal(a.rc, -EROFS);

	start(&b, &f->p, 50);
	struct proposal *pr[1];
	assert_int_equal(take(f, pr, 1), 1);
	uint64_t seq = pr[0]->seq; /* pr[0] is freed once the replica expires it */
	/* Appended but never applied: the replica expires it at its deadline. */
	usleep(100 * 1000);
	proposals_expire(&f->p, proposals_now_ms());
	pthread_join(b.t, NULL);
	assert_int_equal(b.rc, -ETIMEDOUT);
	/* A late result for it finds nobody, and harms nothing. */
	struct kv_result res = {.status = KV_APPLIED, .seq = seq};
	proposals_complete(&f->p, &res);
	assert_int_equal(proposals_in_flight(&f->p), 0);
}

/* What a state transfer settles (settle's verdicts by sequence): one
 * proposal completes with the result given, one fails with the errno given,
 * one stays in flight and completes later as usual. */
struct verdicts {
	uint64_t done, failed;
};

static int verdict(void *ctx, const struct proposal *pr, struct kv_result *res)
{
	const struct verdicts *v = ctx;
	if (pr->seq == v->done) {
		*res = (struct kv_result){.status = KV_APPLIED, .seq = pr->seq, .log_idx = 41};
		return 1;
	}
	return pr->seq == v->failed ? -ETIMEDOUT : 0;
}

static void test_proposals_settle(void **state)
{
	struct fixture *f = *state;
	struct submitter s[3];
	struct proposal *pr[3];
	for (int i = 0; i < 3; i++)
		start(&s[i], &f->p, 10000);
	assert_int_equal(take(f, pr, 3), 3);
	struct verdicts v = {.done = pr[0]->seq, .failed = pr[1]->seq};
	uint64_t later = pr[2]->seq;
	proposals_settle(&f->p, verdict, &v);
	assert_int_equal(proposals_in_flight(&f->p), 1);
	struct kv_result res = {.status = KV_APPLIED, .seq = later, .log_idx = 50};
	proposals_complete(&f->p, &res);
	for (int i = 0; i < 3; i++)
		pthread_join(s[i].t, NULL);
	for (int i = 0; i < 3; i++) {
		if (s[i].rc == 0 && s[i].res.seq == v.done)
			assert_int_equal(s[i].res.log_idx, 41);
		else if (s[i].rc == 0)
			assert_int_equal(s[i].res.seq, later);
		else
			assert_int_equal(s[i].rc, -ETIMEDOUT);
	}
	assert_int_equal((s[0].rc != 0) + (s[1].rc != 0) + (s[2].rc != 0), 1);
	assert_int_equal(proposals_in_flight(&f->p), 0);
}

/* Each completion wakes its own proposer with its own result, in any order,
 * and the room it makes lets a proposer waiting for a place in. */
static void test_proposals_each_proposer_gets_its_result(void **state)
{
	struct fixture *f = *state;
	struct submitter s[5];
	for (int i = 0; i < 5; i++)
		start(&s[i], &f->p, 10000);
	struct proposal *pr[5];
	assert_int_equal(take(f, pr, 4), 4); /* max_in_flight is 4 */
	uint64_t seqs[5];
	for (int i = 0; i < 4; i++)
		seqs[i] = pr[i]->seq;
	/* The last one taken first: a room waiter gets in, and is taken. */
	struct kv_result res = {.status = KV_CONFLICT, .seq = seqs[3], .conflict_op = 3};
	proposals_complete(&f->p, &res);
	assert_int_equal(take(f, pr + 4, 1), 1);
	seqs[4] = pr[4]->seq;
	for (int i = 4; i >= 0; i--) {
		if (i == 3)
			continue;
		res = (struct kv_result){.status = KV_CONFLICT, .seq = seqs[i], .conflict_op = i};
		proposals_complete(&f->p, &res);
	}
	/* Every proposer got the result of its own sequence. */
	for (int i = 0; i < 5; i++) {
		pthread_join(s[i].t, NULL);
		assert_int_equal(s[i].rc, 0);
		assert_int_equal(s[i].res.status, KV_CONFLICT);
		int k = -1;
		for (int j = 0; j < 5; j++)
			if (s[i].res.seq == seqs[j])
				k = j;
		assert_true(k >= 0);
		assert_int_equal(s[i].res.conflict_op, k);
	}
	assert_int_equal(proposals_in_flight(&f->p), 0);
}

static void count_cb(void *ctx, const struct proposal *pr)
{
	(*(int *)ctx)++;
}

static void test_proposals_bounded_and_closed(void **state)
{
	struct fixture *f = *state;
	struct submitter s[5];
	for (int i = 0; i < 5; i++)
		start(&s[i], &f->p, 10000);
	struct proposal *pr[5];
	/* max_in_flight is 4: the fifth waits for room. */
	assert_int_equal(take(f, pr, 4), 4);
	usleep(50 * 1000);
	assert_int_equal(proposals_take_queued(&f->p, pr + 4, 1), 0);
	int n = 0;
	proposals_for_each_in_flight(&f->p, count_cb, &n);
	assert_int_equal(n, 4);
	/* Distinct sequences. Not necessarily in queue order: a submitter takes
	 * its sequence under the lock but encodes outside it, so another may
	 * queue first; the KV's dedup window does not care about order. */
	uint64_t seqs[4];
	for (int i = 0; i < 4; i++) {
		seqs[i] = pr[i]->seq;
		assert_int_equal(entry_seq(pr[i]), seqs[i]);
	}
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			assert_true(seqs[i] != seqs[j]);
	proposals_close(&f->p);
	for (int i = 0; i < 5; i++) {
		pthread_join(s[i].t, NULL);
		assert_int_equal(s[i].rc, -ESHUTDOWN);
	}
	struct kv_result r;
	struct kv_txn empty;
	kv_txn_init(&empty, 0, 0);
	assert_int_equal(proposals_submit(&f->p, &empty, NODE, 1000, &r), -ESHUTDOWN);
	kv_txn_free(&empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_proposals_complete_wakes_the_proposer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_proposals_fail_queued_and_expire, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_proposals_bounded_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proposals_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proposals_each_proposer_gets_its_result, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_proposals_one_wake_for_a_queue, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
