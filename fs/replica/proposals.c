/*
 * Proposals waiting for their entry to be applied. See proposals.h.
 *
 * Memory: a proposal has two references, the waiter's and the table's. The
 * table's is dropped by the replica thread when it completes, fails or
 * expires the proposal, after waking its waiter; the waiter's when it
 * returns. Whoever drops the last frees it, so the replica thread may use a
 * proposal's entry bytes until it finishes the proposal, whatever the waiter
 * does, and signal its condition variable after unlocking. The count is
 * atomic for that last step, taken outside the lock.
 */
#include "proposals.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

uint64_t proposals_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A condition variable whose timed waits count in CLOCK_MONOTONIC. */
static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
	return -rc;
}

int proposals_init(struct proposals *p, int wake_fd, uint64_t first_seq, unsigned max_in_flight)
{
	*p = (struct proposals){
		.wake_fd = wake_fd, .next_seq = first_seq, .max_in_flight = max_in_flight};
	int rc = cond_init_monotonic(&p->changed);
	if (rc != 0)
		return rc;
	return -pthread_mutex_init(&p->lock, NULL);
}

static void proposal_free(struct proposal *pr)
{
	pthread_cond_destroy(&pr->done_cond);
	free(pr->entry);
	free(pr);
}

static void release(struct proposal *pr)
{
	if (atomic_fetch_sub(&pr->refs, 1) == 1)
		proposal_free(pr);
}

/* Under the lock: marks pr done with rc (and res if rc is 0) and puts it on
 * *woken, for wake_finished once the lock is released. */
static void finish(struct proposals *p, struct proposal *pr, int rc, const struct kv_result *res,
		   struct proposal **woken)
{
	pr->done = true;
	pr->rc = rc;
	if (res)
		pr->res = *res;
	p->n_in_flight--;
	pr->woken = *woken;
	*woken = pr;
}

/* Not under the lock: wakes the waiters of the proposals finish put on
 * woken and drops the table's references. A waiter that has not started to
 * wait yet sees done when it takes the lock, as finish set it under it. */
static void wake_finished(struct proposal *woken)
{
	while (woken) {
		struct proposal *pr = woken;
		woken = pr->woken;
		/* Its own waiter only: with one condition variable for all,
		 * every completion woke every waiting proposer, to find its own
		 * not done. */
		pthread_cond_signal(&pr->done_cond);
		release(pr);
	}
}

/* Under the lock: removes pr from the singly linked list at *head. */
static void unlink_from(struct proposal **head, struct proposal *pr)
{
	for (struct proposal **pp = head; *pp; pp = &(*pp)->next) {
		if (*pp == pr) {
			*pp = pr->next;
			pr->next = NULL;
			return;
		}
	}
}

static void fail_list(struct proposals *p, struct proposal **head, int rc, struct proposal **woken)
{
	while (*head) {
		struct proposal *pr = *head;
		*head = pr->next;
		pr->next = NULL;
		finish(p, pr, rc, NULL, woken);
	}
}

void proposals_close(struct proposals *p)
{
	pthread_mutex_lock(&p->lock);
	p->closed = true; /* no new submissions from here on */
	pthread_mutex_unlock(&p->lock);
	proposals_fail_all(p, -ESHUTDOWN);
}

void proposals_destroy(struct proposals *p)
{
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
}

static void wake_replica(struct proposals *p)
{
	uint64_t one = 1;
	ssize_t n = write(p->wake_fd, &one, sizeof(one));
	(void)n; /* a full eventfd counter is still a pending wake-up */
}

/* The waiter gives the replica thread this long past the deadline to answer
 * before giving up by itself (a stuck replica thread must not hang callers). */
#define PROPOSALS__GRACE_MS 2000

int proposals_submit(struct proposals *p, const struct kv_txn *txn, uint64_t node_id,
		     uint32_t timeout_ms, struct kv_result *res)
{
	uint64_t t0_ns = metrics_now_ns();
	struct proposal *pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	int rc = cond_init_monotonic(&pr->done_cond);
	if (rc != 0) {
		free(pr);
		return rc;
	}
	uint64_t deadline = proposals_now_ms() + timeout_ms;
	struct timespec abs = {.tv_sec = (time_t)((deadline + PROPOSALS__GRACE_MS) / 1000),
			       .tv_nsec =
				       (long)((deadline + PROPOSALS__GRACE_MS) % 1000) * 1000000};

	pthread_mutex_lock(&p->lock);
	/* Bounded in flight: the KV's dedup window must cover every retry. */
	while (!p->closed && p->n_in_flight >= p->max_in_flight) {
		if (pthread_cond_timedwait(&p->changed, &p->lock, &abs) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			proposal_free(pr);
			return -ETIMEDOUT;
		}
	}
	if (p->closed) {
		pthread_mutex_unlock(&p->lock);
		proposal_free(pr);
		return -ESHUTDOWN;
	}
	pr->seq = p->next_seq++;
	p->n_in_flight++;
	pthread_mutex_unlock(&p->lock);

	struct kv_txn stamped = *txn; /* shallow: the same operations, this proposal's id */
	stamped.node_id = node_id;
	stamped.seq = pr->seq;
	rc = kv_txn_encode(&stamped, &pr->entry, &pr->len);
	pthread_mutex_lock(&p->lock);
	if (rc != 0 || p->closed) {
		p->n_in_flight--;
		pthread_cond_broadcast(&p->changed);
		pthread_mutex_unlock(&p->lock);
		proposal_free(pr);
		return rc != 0 ? rc : -ESHUTDOWN;
	}
	pr->deadline_ms = deadline;
	atomic_init(&pr->refs, 2);
	/* Behind others not taken yet: the first of them wakes the replica
	 * thread after queueing, and its next take empties the queue, this
	 * one included (it takes up to REPLICA__TAKE_PER_TURN, above the
	 * most in flight); while it holds the queue back (no quorum, a
	 * configuration change) a wake would do nothing either. Many
	 * proposers at once then wake it once, not each. */
	bool behind = p->queue_head != NULL;
	if (p->queue_tail)
		p->queue_tail->next = pr;
	else
		p->queue_head = pr;
	p->queue_tail = pr;
	pthread_mutex_unlock(&p->lock);
	if (!behind)
		wake_replica(p);

	pthread_mutex_lock(&p->lock);
	while (!pr->done) {
		if (pthread_cond_timedwait(&pr->done_cond, &p->lock, &abs) == ETIMEDOUT &&
		    !pr->done) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	if (pr->done) {
		rc = pr->rc;
		if (rc == 0)
			*res = pr->res;
	}
	pthread_mutex_unlock(&p->lock);
	release(pr);
	if (rc == 0 && p->latency)
		metrics_observe_ns(p->latency, metrics_now_ns() - t0_ns);
	return rc;
}

size_t proposals_take_queued(struct proposals *p, struct proposal **out, size_t cap)
{
	size_t n = 0;
	pthread_mutex_lock(&p->lock);
	while (p->queue_head && n < cap) {
		struct proposal *pr = p->queue_head;
		p->queue_head = pr->next;
		if (!p->queue_head)
			p->queue_tail = NULL;
		pr->next = p->in_flight;
		p->in_flight = pr;
		pr->appended = true;
		out[n++] = pr;
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

void proposals_complete(struct proposals *p, const struct kv_result *res)
{
	struct proposal *woken = NULL;
	pthread_mutex_lock(&p->lock);
	for (struct proposal *pr = p->in_flight; pr; pr = pr->next) {
		if (pr->seq == res->seq) {
			unlink_from(&p->in_flight, pr);
			finish(p, pr, 0, res, &woken);
			pthread_cond_broadcast(&p->changed);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	wake_finished(woken);
}

void proposals_fail_queued(struct proposals *p, int rc)
{
	struct proposal *woken = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->queue_head) {
		fail_list(p, &p->queue_head, rc, &woken);
		p->queue_tail = NULL;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	wake_finished(woken);
}

void proposals_fail_all(struct proposals *p, int rc)
{
	struct proposal *woken = NULL;
	pthread_mutex_lock(&p->lock);
	fail_list(p, &p->queue_head, rc, &woken);
	p->queue_tail = NULL;
	fail_list(p, &p->in_flight, rc, &woken);
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	wake_finished(woken);
}

void proposals_expire(struct proposals *p, uint64_t now_ms)
{
	bool any = false;
	struct proposal *woken = NULL;
	pthread_mutex_lock(&p->lock);
	struct proposal **lists[] = {&p->queue_head, &p->in_flight};
	for (size_t l = 0; l < 2; l++) {
		struct proposal **pp = lists[l];
		while (*pp) {
			struct proposal *pr = *pp;
			if (pr->deadline_ms > now_ms) {
				pp = &pr->next;
				continue;
			}
			*pp = pr->next;
			pr->next = NULL;
			finish(p, pr, -ETIMEDOUT, NULL, &woken);
			any = true;
		}
	}
	p->queue_tail = NULL;
	for (struct proposal *pr = p->queue_head; pr; pr = pr->next)
		p->queue_tail = pr;
	if (any)
		pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	wake_finished(woken);
}

void proposals_settle(struct proposals *p,
		      int (*decide)(void *ctx, const struct proposal *pr, struct kv_result *res),
		      void *ctx)
{
	struct proposal *woken = NULL;
	pthread_mutex_lock(&p->lock);
	for (struct proposal **pp = &p->in_flight; *pp;) {
		struct proposal *pr = *pp;
		struct kv_result res;
		int rc = decide(ctx, pr, &res);
		if (rc == 0) {
			pp = &pr->next;
			continue;
		}
		*pp = pr->next;
		pr->next = NULL;
		finish(p, pr, rc > 0 ? 0 : rc, rc > 0 ? &res : NULL, &woken);
	}
	if (woken)
		pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	wake_finished(woken);
}

unsigned proposals_for_each_in_flight(struct proposals *p,
				      void (*fn)(void *ctx, const struct proposal *pr), void *ctx)
{
	unsigned n = 0;
	pthread_mutex_lock(&p->lock);
	for (struct proposal *pr = p->in_flight; pr; pr = pr->next, n++)
		fn(ctx, pr);
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned proposals_in_flight(struct proposals *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->n_in_flight;
	pthread_mutex_unlock(&p->lock);
	return n;
}
