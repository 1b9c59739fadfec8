/*
 * Learners (fs/replica/replica_learn.c) on real replicas in one process:
 * three voters and four learners, the fourth learner placed behind the
 * first (it fetches from a learner, not a voter). Writes through learners
 * and voters land everywhere with equal digests; a learner stopped and
 * started again, or cut off and healed, catches up; a learner whose source is down falls back to a
 * voter; learners show the voters' leader, a new one too once the old
 * leader stops; a learner is promoted while a voter is down, the dead voter is
 * removed, a voter is demoted and a learner removed, with writes going on
 * after each step.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replica_cluster.h"

#define ELECTION_WAIT_MS 10000
#define CATCH_UP_WAIT_MS 20000
#define PUT_WAIT_MS	 10000
#define VOTERS		 3
#define LEARNERS	 4

static uint64_t started_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define step(...)                                                                             \
	do {                                                                                  \
		fprintf(stderr, "# %6llu ms: ", (unsigned long long)(now_ms() - started_ms)); \
		fprintf(stderr, __VA_ARGS__);                                                 \
		fputc('\n', stderr);                                                          \
	} while (0)

static int teardown(void **state)
{
	struct rcl *c = *state;
	rcl_destroy(&c);
	*state = NULL;
	return 0;
}

struct want {
	uint64_t id;
	const char *role;
	uint64_t idx;
	uint32_t config_id;
};

/* Node w->id runs, in configuration >= w->config_id, in role w->role (NULL:
 * any), has applied at least w->idx and says it is caught up. */
static bool is_there(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.config_id >= w->config_id &&
	       (!w->role || strcmp(st.role, w->role) == 0) && st.applied_idx >= w->idx &&
	       st.caught_up && st.quorum;
}

struct source {
	uint64_t id, from;
};

static uint64_t voters_leader(struct rcl *c, uint64_t stopped);

/* Learner s->id fetches from s->from; from a voter, from the next one if
 * s->from leads now: the leader serves no learner. */
static bool fetches_from(struct rcl *c, void *arg)
{
	struct source *s = arg;
	char out[4096], want[48];
	uint64_t from = s->from;
	if (from <= VOTERS && from == voters_leader(c, 0))
		from = from % VOTERS + 1;
	snprintf(want, sizeof(want), "\"fetching_from\":%llu,", (unsigned long long)from);
	return rcl_control(c, s->id, out, sizeof(out), "status", "--json", NULL) == 0 &&
	       strstr(out, want) != NULL;
}

struct leader_of {
	uint64_t id, leader; /* leader 0: the one the running voters agree on now */
	uint64_t stopped;    /* a voter not running (0: none) */
};

/* The leader every running voter shows now, or 0 if they differ. */
static uint64_t voters_leader(struct rcl *c, uint64_t stopped)
{
	uint64_t agreed = 0;
	for (uint64_t v = 1; v <= VOTERS; v++) {
		struct rcl_status st;
		if (v == stopped)
			continue;
		if (rcl_status(c, v, &st) != 0 || st.leader == 0 || (agreed && st.leader != agreed))
			return 0;
		agreed = st.leader;
	}
	return agreed;
}

/* Node l->id shows l->leader as its leader (status JSON and text). */
static bool shows_leader(struct rcl *c, void *arg)
{
	struct leader_of *l = arg;
	struct rcl_status st;
	char out[4096], want[48];
	uint64_t leader = l->leader ? l->leader : voters_leader(c, l->stopped);
	if (leader == 0 || leader == l->stopped)
		return false;
	snprintf(want, sizeof(want), "leader:      n%llu, ballot b", (unsigned long long)leader);
	return rcl_status(c, l->id, &st) == 0 && st.leader == leader &&
	       rcl_control(c, l->id, out, sizeof(out), "status", NULL) == 0 &&
	       strstr(out, want) != NULL;
}

/* Every learner (ids VOTERS + 1 ..) shows leader; leader 0: the one the
 * running voters agree on (stopped: a voter not running), which may change
 * again while an election settles. */
static void learners_show_leader(struct rcl *c, uint64_t leader, uint64_t stopped)
{
	for (uint64_t id = VOTERS + 1; id <= VOTERS + LEARNERS; id++) {
		struct leader_of l = {.id = id, .leader = leader, .stopped = stopped};
		assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, shows_leader, &l,
				     "a learner to show the voters' leader"));
	}
}

static bool is_removed(struct rcl *c, void *arg)
{
	struct want *w = arg;
	struct rcl_status st;
	return rcl_status(c, w->id, &st) == 0 && st.removed;
}

/* Runs a membership command on node id; it must succeed. */
static void change(struct rcl *c, uint64_t id, const char *cmd, const char *a1, const char *a2,
		   const char *a3, const char *a4)
{
	char out[1024];
	uint64_t t0 = now_ms();
	int st = rcl_control(c, id, out, sizeof(out), cmd, a1, a2, a3, a4, NULL);
	if (st != 0)
		fprintf(stderr, "%s %s on n%llu: status %d: %s", cmd, a1, (unsigned long long)id,
			st, out);
	assert_int_equal(st, 0);
	step("n%llu: %s %s took %llu ms: %.*s", (unsigned long long)id, cmd, a1,
	     (unsigned long long)(now_ms() - t0), (int)strcspn(out, "\n"), out);
}

/* Puts tag/n<id>/<i> for i < count through node id. */
static void puts_through(struct rcl *c, uint64_t id, const char *tag, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s/n%llu/%u", tag, (unsigned long long)id, i);
		int rc = rcl_put_retry(c, id, key, "v", PUT_WAIT_MS);
		if (rc != 0)
			fprintf(stderr, "put %s through n%llu: %s\n", key, (unsigned long long)id,
				strerror(-rc));
		assert_int_equal(rc, 0);
	}
}

/* Every key puts_through wrote through node via is on node on. */
static void has_puts(struct rcl *c, uint64_t on, uint64_t via, const char *tag, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		char key[64], *v = NULL;
		snprintf(key, sizeof(key), "%s/n%llu/%u", tag, (unsigned long long)via, i);
		int rc = rcl_get(c, on, key, &v, NULL);
		if (rc != 0)
			fprintf(stderr, "n%llu lacks %s: %s\n", (unsigned long long)on, key,
				strerror(-rc));
		assert_int_equal(rc, 0);
		free(v);
	}
}

/* Writes through every running node, then every node holds all of them and
 * the same state. */
static void writes_everywhere(struct rcl *c, const char *tag)
{
	for (uint64_t id = 1; id <= c->n; id++) {
		struct rcl_status st;
		if (rcl_status(c, id, &st) == 0 && !st.removed && !st.joining)
			puts_through(c, id, tag, 5);
	}
	assert_true(rcl_wait_same_state(c, CATCH_UP_WAIT_MS));
	for (uint64_t on = 1; on <= c->n; on++) {
		struct rcl_status st;
		if (rcl_status(c, on, &st) != 0 || st.removed)
			continue;
		for (uint64_t via = 1; via <= c->n; via++) {
			struct rcl_status vs;
			if (rcl_status(c, via, &vs) == 0 && !vs.removed && !vs.joining)
				has_puts(c, on, via, tag, 5);
		}
	}
	step("writes through every node (%s) are on every node, digests equal", tag);
}

/* Adds a new node as a learner through the leader (a voter that lags could
 * propose on top of a configuration already ended). */
static void add_learner(struct rcl *c)
{
	uint64_t via = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(via != 0);
	const uint64_t voters[] = {1, 2, 3};
	uint64_t id = rcl_add_joiner(c, voters, VOTERS);
	assert_true(id != 0);
	assert_int_equal(rcl_start(c, id), 0);
	const struct rcl_node *nd = rcl_node(c, id);
	char id_s[16];
	snprintf(id_s, sizeof(id_s), "%llu", (unsigned long long)id);
	change(c, via, "member-add", "--learner", id_s, nd->address, nd->public_key);
	struct want w = {.id = id, .role = "learner", .idx = rcl_applied_idx(c, via)};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_there, &w, "the learner to catch up"));
}

static void role_is(struct rcl *c, uint64_t id, const char *role)
{
	struct want w = {.id = id, .role = role};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_there, &w, "a node in its role"));
}

static void test_replica_learners_fleet(void **state)
{
	started_ms = now_ms();
	struct rcl *c;
	assert_int_equal(rcl_new(&c, VOTERS, NULL), 0);
	*state = c;
	assert_int_equal(rcl_start_all(c), 0);
	uint64_t leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	puts_through(c, leader, "before", 20);
	for (unsigned i = 0; i < LEARNERS; i++)
		add_learner(c);
	step("%u learners added", LEARNERS);

	/* Roles: the voters' core is unchanged, the learners say what they are. */
	char out[4096];
	assert_int_equal(rcl_control(c, 1, out, sizeof(out), "member-list", "--json", NULL), 0);
	assert_non_null(strstr(out, "\"id\":7,"));
	assert_non_null(strstr(out, "\"role\":\"learner\""));
	assert_int_equal(rcl_control(c, 7, out, sizeof(out), "status", NULL), 0);
	assert_non_null(strstr(out, "role:        learner"));
	assert_non_null(strstr(out, "(as its source says), writes go via n"));
	assert_non_null(strstr(out, "fetching:    from n"));
	assert_non_null(strstr(out, "voters 1,2,3, learners 4,5,6,7"));
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	learners_show_leader(c, 0, 0);
	leader = voters_leader(c, 0);
	assert_true(leader != 0);
	assert_int_equal(rcl_control(c, 7, out, sizeof(out), "status", "--json", NULL), 0);
	assert_non_null(strstr(out, "\"ballot\":\""));
	assert_null(strstr(out, "\"ballot\":\"0.0.0\""));

	/* The leader stops: the learners, n7 two hops from the voters, show
	 * the one elected after it. */
	rcl_stop(c, leader);
	uint64_t next = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(next != 0 && next != leader);
	learners_show_leader(c, 0, leader);
	next = voters_leader(c, leader);
	step("learners show leader n%llu, then n%llu once n%llu stopped",
	     (unsigned long long)leader, (unsigned long long)next, (unsigned long long)leader);
	assert_int_equal(rcl_start(c, leader), 0);
	role_is(c, leader, NULL); /* any voter role: it may lead again */
	assert_int_equal(rcl_control(c, 4, out, sizeof(out), "barrier", NULL), 0);
	assert_int_not_equal(rcl_control(c, 4, out, sizeof(out), "member-remove", "5", NULL), 0);
	assert_non_null(strstr(out, "learner"));
	writes_everywhere(c, "fleet");

	/* A learner stopped, written past, started again. */
	rcl_stop(c, 5);
	puts_through(c, 1, "while-down", 10);
	assert_int_equal(rcl_start(c, 5), 0);
	struct want back = {.id = 5, .role = "learner", .idx = rcl_applied_idx(c, 1)};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_there, &back, "n5 to catch up again"));
	has_puts(c, 5, 1, "while-down", 10);
	step("n5 restarted and caught up");

	/* A learner cut off from everyone: the voters write on; healed, it
	 * catches up. */
	assert_int_equal(rcl_cut(c, 6, true), 0);
	puts_through(c, 1, "while-cut", 10);
	puts_through(c, 5, "while-cut", 5);
	assert_int_equal(rcl_cut(c, 6, false), 0);
	struct want healed = {.id = 6, .role = "learner", .idx = rcl_applied_idx(c, 1)};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_there, &healed, "n6 to catch up when healed"));
	has_puts(c, 6, 1, "while-cut", 10);
	has_puts(c, 6, 5, "while-cut", 5);
	step("n6 cut off, written past, healed and caught up");

	/* n7 fetches from n4 (the first learner): with n4 down it asks a
	 * voter, and its writes go on. */
	for (uint64_t id = 4; id <= 7; id++) {
		struct source want = {.id = id, .from = id == 7 ? 4 : id - VOTERS};
		assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, fetches_from, &want,
				     "a learner to fetch from its place in the fan-out"));
	}
	rcl_stop(c, 4);
	puts_through(c, 7, "source-down", 5);
	puts_through(c, 2, "source-down", 5);
	struct want seven = {.id = 7, .role = "learner", .idx = rcl_applied_idx(c, 2)};
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_there, &seven, "n7 to catch up without n4"));
	has_puts(c, 7, 2, "source-down", 5);
	assert_int_equal(rcl_start(c, 4), 0);
	role_is(c, 4, "learner");
	step("n7 went on while its source n4 was down");

	/* A voter dies: a learner takes its place, then the dead one goes. */
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	uint64_t dead = leader == 3 ? 2 : 3, runner = leader;
	rcl_stop(c, dead);
	change(c, runner, "member-promote", "4", NULL, NULL, NULL);
	char dead_s[16];
	snprintf(dead_s, sizeof(dead_s), "%llu", (unsigned long long)dead);
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	assert_true(leader != 0);
	change(c, leader, "member-remove", dead_s, NULL, NULL, NULL);
	assert_true(rcl_wait_leader(c, ELECTION_WAIT_MS) != 0);
	struct rcl_status st;
	assert_int_equal(rcl_status(c, 4, &st), 0);
	assert_string_not_equal(st.role, "learner");
	writes_everywhere(c, "promoted");

	/* And a voter that follows becomes a learner (two voters stay). */
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	uint64_t demoted = 0;
	for (uint64_t id = 1; id <= c->n && !demoted; id++)
		if (rcl_status(c, id, &st) == 0 && strcmp(st.role, "follower") == 0)
			demoted = id;
	assert_true(demoted != 0);
	char demoted_s[16];
	snprintf(demoted_s, sizeof(demoted_s), "%llu", (unsigned long long)demoted);
	change(c, leader, "member-demote", demoted_s, NULL, NULL, NULL);
	role_is(c, demoted, "learner");
	assert_true(rcl_wait_leader(c, ELECTION_WAIT_MS) != 0);
	writes_everywhere(c, "demoted");

	/* A learner removed learns it, from the fetch that ends its
	 * configuration, and refuses writes. */
	leader = rcl_wait_leader(c, ELECTION_WAIT_MS);
	change(c, leader, "member-remove", "6", NULL, NULL, NULL);
	assert_true(rcl_wait(c, CATCH_UP_WAIT_MS, is_removed, &(struct want){.id = 6},
			     "n6 to learn it was removed"));
	assert_int_equal(rcl_put(c, 6, "after-removal", "v"), -EROFS);
	writes_everywhere(c, "removed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_replica_learners_fleet, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
