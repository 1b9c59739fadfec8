/*
 * Proposals waiting for their entry to be applied: the hand-off between the
 * threads that propose (FUSE workers, control commands) and the replica
 * thread.
 *
 * A proposer calls proposals_submit: the entry is queued, the replica thread
 * is woken (through the eventfd given at init), and the proposer sleeps until
 * the replica completes it or its deadline passes. The replica thread takes
 * queued entries (proposals_take_queued), appends them to the log and, when
 * it applies an entry carrying this node's id, completes the waiter
 * (proposals_complete). After a leader change it re-appends everything still
 * in flight with the same id (proposals_for_each_in_flight): the KV's
 * dedup table applies each id at most once. After a state transfer it
 * finishes those the transferred state processed (proposals_settle): no
 * entry of theirs is applied here any more.
 *
 * One mutex protects everything here; it is never held while calling out,
 * but for the callbacks of proposals_for_each_in_flight and _settle (the
 * replica thread appending to the core, or reading the KV, neither of which
 * takes a lock of omnifs). Waiters are woken
 * after it is released: a waiter woken under it would at once sleep again
 * on the mutex, two more context switches per proposal.
 */
#ifndef OMNIFS_PROPOSALS_H
#define OMNIFS_PROPOSALS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"
#include "metrics.h"

struct proposal {
	uint64_t seq;	/* this node's sequence number for it */
	uint8_t *entry; /* the encoded log entry (owned) */
	size_t len;
	uint64_t deadline_ms; /* CLOCK_MONOTONIC ms: fail with -ETIMEDOUT after */
	int rc;		      /* result, valid once done */
	struct kv_result res; /* what applying it did, valid once done with rc 0 */
	bool done;
	bool appended;		  /* handed to the core at least once */
	atomic_uint refs;	  /* the waiter and the table each hold one */
	pthread_cond_t done_cond; /* signalled when done: its waiter alone wakes */
	struct proposal *next;	  /* in the queue or the in-flight list */
	struct proposal *woken;	  /* finished, its waiter still to be woken */
};

struct proposals {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* broadcast when room may have come (submitters
				 * waiting for a place in flight) */
	int wake_fd;		/* eventfd of the replica thread */
	uint64_t next_seq;
	unsigned max_in_flight;
	unsigned n_in_flight;			  /* queued + appended, not yet done */
	struct proposal *queue_head, *queue_tail; /* submitted, not yet taken */
	struct proposal *in_flight;		  /* taken, not yet done */
	bool closed;				  /* replica stopping: refuse */
	/* Where submit counts how long applied proposals took (NULL: nowhere);
	 * set before the first submit. */
	struct metrics_histogram *latency;
};

/* first_seq: sequences start above anything this node used before. */
int proposals_init(struct proposals *p, int wake_fd, uint64_t first_seq, unsigned max_in_flight);
/* Fails every waiter with -ESHUTDOWN and refuses new ones. */
void proposals_close(struct proposals *p);
/* After close, once no proposer can be inside submit any more. */
void proposals_destroy(struct proposals *p);

/*
 * Queues txn (borrowed for the call) as the log entry of proposal
 * (node_id, the next sequence) and waits until it is applied or fails. The
 * sequence is taken under the lock, the entry encoded outside it (so two
 * proposers may queue out of sequence order; the KV's dedup window does not
 * mind). txn's own id is ignored. Returns 0 with *res filled, or
 * -ETIMEDOUT, -ESHUTDOWN, -EROFS (failed by the replica), -ENOMEM, ...
 */
int proposals_submit(struct proposals *p, const struct kv_txn *txn, uint64_t node_id,
		     uint32_t timeout_ms, struct kv_result *res);

/* Replica thread: moves up to cap queued proposals to in-flight and puts
 * them in out, oldest first. They stay valid until the replica thread itself
 * completes, fails or expires them. Returns the count. */
size_t proposals_take_queued(struct proposals *p, struct proposal **out, size_t cap);

/* Replica thread: the entry with res->seq was applied with this result. */
void proposals_complete(struct proposals *p, const struct kv_result *res);

/* Replica thread: fails queued (not yet appended) proposals with rc,
 * e.g. -EROFS when this node knows it has no quorum. */
void proposals_fail_queued(struct proposals *p, int rc);

/* Replica thread: fails every proposal, queued or in flight, with rc (this
 * node left the cluster: none of them can be decided through it any more). */
void proposals_fail_all(struct proposals *p, int rc);

/* Replica thread: fails proposals whose deadline passed with -ETIMEDOUT. */
void proposals_expire(struct proposals *p, uint64_t now_ms);

/* Replica thread: finishes the in-flight proposals decide (called under the
 * lock, as proposals_for_each_in_flight's fn) returns non-zero for: 1
 * completes one with *res, a negative errno fails it with that; 0 leaves it
 * in flight. */
void proposals_settle(struct proposals *p,
		      int (*decide)(void *ctx, const struct proposal *pr, struct kv_result *res),
		      void *ctx);

/* Replica thread: calls fn for every in-flight proposal (to re-append),
 * newest first, under the lock: fn must not call back into p. Returns how
 * many it called fn for. */
unsigned proposals_for_each_in_flight(struct proposals *p,
				      void (*fn)(void *ctx, const struct proposal *pr), void *ctx);

/* Counts for status. */
unsigned proposals_in_flight(struct proposals *p);

uint64_t proposals_now_ms(void);

#endif /* OMNIFS_PROPOSALS_H */
