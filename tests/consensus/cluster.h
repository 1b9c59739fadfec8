/*
 * Small helpers the simulator tests share: predicates for sim_run_until and
 * assertions that print the simulator's verdict. Header-only, static.
 */
#ifndef OMNIFS_TEST_CLUSTER_H
#define OMNIFS_TEST_CLUSTER_H

#include "test.h"
#include "sim.h"
#include "storage_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails the test with the simulator's report if a safety check tripped. */
#define assert_sim_ok(s)                             \
	do {                                         \
		const char *e__ = sim_error(s);      \
		if (e__)                             \
			fail_msg("safety: %s", e__); \
	} while (0)

/* Runs until pred holds, failing the test otherwise. */
#define run_until(s, pred, arg, ticks)                                    \
	do {                                                              \
		if (!sim_run_until((s), (pred), (arg), (ticks))) {        \
			assert_sim_ok(s);                                 \
			fail_msg("not within %llu ticks: %s (tick %llu)", \
				 (unsigned long long)(ticks), #pred,      \
				 (unsigned long long)sim_now_ticks(s));   \
		}                                                         \
	} while (0)

static inline bool has_leader(struct sim *s, void *arg)
{
	(void)arg;
	return sim_leader(s) >= 0;
}

/* every running node decided at least *(uint64_t *)arg */
static inline bool all_decided(struct sim *s, void *arg)
{
	return sim_all_decided(s, *(const uint64_t *)arg);
}

struct node_idx {
	uint32_t node;
	uint64_t idx;
};

static inline bool node_decided(struct sim *s, void *arg)
{
	const struct node_idx *ni = arg;
	return sim_core(s, ni->node) && opx_decided_idx(sim_core(s, ni->node)) >= ni->idx;
}

/* A leader other than node *arg. */
static inline bool leader_not(struct sim *s, void *arg)
{
	int l = sim_leader(s);
	return l >= 0 && (uint32_t)l != *(const uint32_t *)arg;
}

static inline struct sim *new_sim(uint32_t n, void (*tune)(struct sim_opts *o))
{
	struct sim_opts o;
	sim_opts_default(&o, n);
	if (tune)
		tune(&o);
	struct sim *s = sim_new(&o);
	assert_non_null(s);
	return s;
}

/* Appends k entries at node i (each must be accepted by the core). */
static inline void append_n(struct sim *s, uint32_t i, uint32_t k)
{
	for (uint32_t j = 0; j < k; j++)
		assert_int_equal(sim_append(s, i, 16), 0);
}

/* Waits until every running node decided idx. */
static inline void wait_all_decided(struct sim *s, uint64_t idx, uint64_t ticks)
{
	run_until(s, all_decided, &idx, ticks);
}

/* A leader in the Accept phase that stayed for a few more ticks (the first
 * rounds may see a leader superseded at once, losing what it accepted). */
static inline int wait_leader(struct sim *s, uint64_t ticks)
{
	run_until(s, has_leader, NULL, ticks);
	int l = sim_leader(s);
	if (!sim_run_ticks(s, 5))
		assert_sim_ok(s);
	if (sim_leader(s) != l)
		run_until(s, has_leader, NULL, ticks);
	return sim_leader(s);
}

/* Number of entries node i holds as Decided items (not compacted). */
static inline uint64_t decided_items(struct sim *s, uint32_t i, uint64_t from)
{
	struct opx_read r = {0};
	assert_int_equal(opx_read_decided_suffix(sim_core(s, i), from, &r), 0);
	uint64_t n = r.n;
	opx_read_free(&r);
	return n;
}

#endif /* OMNIFS_TEST_CLUSTER_H */
