/*
 * Compare-and-set on the control commands (kv-get --version, kv-put and
 * kv-del with --if-version), on three replicas in one process
 * (tests/lib/replica_cluster.h): the version a get shows is the one a put
 * answered, a guard at the wrong version writes nothing and answers
 * ECANCELED, and of several compare-and-sets from the same version on every
 * node at once exactly one wins; values sent as base64 are decoded and
 * held to the limit. omnifsctl's side (options, exit status 4,
 * the value from stdin) is in tests/integration/test_kv_cas.sh; the
 * linearizability of the whole under faults in tests/lin/.
 */
#include "test.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "replica_cluster.h"

#define ELECTION_WAIT_MS 10000

static int teardown(void **state)
{
	struct rcl *c = *state;
	rcl_destroy(&c);
	*state = NULL;
	return 0;
}

static struct rcl *up(void **state)
{
	struct rcl *c;
	assert_int_equal(rcl_new(&c, 3, NULL), 0);
	*state = c;
	assert_int_equal(rcl_start_all(c), 0);
	assert_true(rcl_wait_leader(c, ELECTION_WAIT_MS) != 0);
	return c;
}

/* The version a successful put answered ("V\n"). */
static uint64_t answered_version(const char *out)
{
	char *end;
	uint64_t v = strtoull(out, &end, 10);
	assert_true(v > 0);
	assert_string_equal(end, "\n");
	return v;
}

/* Node id's "version\nvalue" of key, after a barrier there. */
static void expect_versioned(struct rcl *c, uint64_t id, const char *key, uint64_t version,
			     const char *value)
{
	char out[256], want[256];
	assert_int_equal(rcl_control(c, id, out, sizeof(out), "barrier", NULL), 0);
	assert_int_equal(rcl_control(c, id, out, sizeof(out), "kv-get", "--version", key, NULL), 0);
	snprintf(want, sizeof(want), "%" PRIu64 "\n%s", version, value);
	assert_string_equal(out, want);
}

static void test_kv_cas_versions(void **state)
{
	struct rcl *c = up(state);
	char out[256], v[32];

	assert_int_equal(rcl_control(c, 1, out, sizeof(out), "kv-get", "--version", "k", NULL),
			 ENOENT);
	/* Version 0: only if absent. */
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--if-version", "0", "k", "a", NULL),
		0);
	uint64_t v1 = answered_version(out);
	assert_int_equal(
		rcl_control(c, 2, out, sizeof(out), "kv-put", "--if-version", "0", "k", "b", NULL),
		ECANCELED);
	assert_non_null(strstr(out, "version mismatch"));
	expect_versioned(c, 3, "k", v1, "a");

	/* At v1: the first put from v1 wins, a second one from v1 is refused. */
	snprintf(v, sizeof(v), "%" PRIu64, v1);
	assert_int_equal(
		rcl_control(c, 2, out, sizeof(out), "kv-put", "--if-version", v, "k", "b", NULL),
		0);
	uint64_t v2 = answered_version(out);
	assert_true(v2 > v1);
	assert_int_equal(
		rcl_control(c, 3, out, sizeof(out), "kv-put", "--if-version", v, "k", "c", NULL),
		ECANCELED);
	expect_versioned(c, 1, "k", v2, "b");

	/* A guarded delete: refused at the old version, done at the current one. */
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-del", "--if-version", v, "k", NULL),
		ECANCELED);
	expect_versioned(c, 1, "k", v2, "b");
	snprintf(v, sizeof(v), "%" PRIu64, v2);
	assert_int_equal(
		rcl_control(c, 3, out, sizeof(out), "kv-del", "--if-version", v, "k", NULL), 0);
	assert_int_equal(rcl_control(c, 3, out, sizeof(out), "kv-get", "k", NULL), ENOENT);
	assert_int_equal(
		rcl_control(c, 3, out, sizeof(out), "kv-del", "--if-version", v, "k", NULL),
		ECANCELED);
	assert_non_null(strstr(out, "absent"));

	/* An unguarded put answers its version too; plain get is the raw value. */
	assert_int_equal(rcl_control(c, 2, out, sizeof(out), "kv-put", "k", "d", NULL), 0);
	assert_true(answered_version(out) > v2);
	assert_int_equal(rcl_control(c, 2, out, sizeof(out), "kv-get", "k", NULL), 0);
	assert_string_equal(out, "d");

	/* Bad guards. */
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-del", "--if-version", "0", "k", NULL),
		EINVAL);
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--if-version", "x", "k", "e", NULL),
		EINVAL);
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--if-vers", "1", "k", "e", NULL),
		EINVAL);
	assert_int_equal(rcl_control(c, 2, out, sizeof(out), "kv-get", "k", NULL), 0);
	assert_string_equal(out, "d");
}

#define RACERS 9

struct racer {
	struct rcl *c;
	uint64_t node;
	const char *version;
	char value[16];
	int status;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char out[256];
	r->status = rcl_control(r->c, r->node, out, sizeof(out), "kv-put", "--if-version",
				r->version, "race", r->value, NULL);
	return NULL;
}

static void test_kv_cas_one_winner(void **state)
{
	struct rcl *c = up(state);
	char out[256], v[32];
	assert_int_equal(rcl_control(c, 1, out, sizeof(out), "kv-put", "race", "start", NULL), 0);
	snprintf(v, sizeof(v), "%" PRIu64, answered_version(out));
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(rcl_control(c, id, out, sizeof(out), "barrier", NULL), 0);

	struct racer racers[RACERS];
	pthread_t th[RACERS];
	for (int i = 0; i < RACERS; i++) {
		racers[i] = (struct racer){.c = c, .node = 1 + (uint64_t)i % 3, .version = v};
		snprintf(racers[i].value, sizeof(racers[i].value), "r%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
	}
	int winner = -1;
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		if (racers[i].status == 0) {
			assert_int_equal(winner, -1);
			winner = i;
		} else {
			assert_int_equal(racers[i].status, ECANCELED);
		}
	}
	assert_true(winner >= 0);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(rcl_control(c, id, out, sizeof(out), "barrier", NULL), 0);
		assert_int_equal(rcl_control(c, id, out, sizeof(out), "kv-get", "race", NULL), 0);
		assert_string_equal(out, racers[winner].value);
	}
}

/* kv-put --base64 (what omnifsctl sends): decoded, checked, limited. */
static void test_kv_cas_base64_values(void **state)
{
	struct rcl *c = up(state);
	char out[256];
	assert_int_equal(rcl_control(c, 1, out, sizeof(out), "kv-put", "--if-version", "0",
				     "--base64", "--", "--b", "aGVsbG8=", NULL),
			 0);
	uint64_t v = answered_version(out);
	expect_versioned(c, 2, "--b", v, "hello");
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--base64", "b", "aGVsbG8", NULL),
		EINVAL);
	assert_non_null(strstr(out, "base64"));

	/* One byte over the limit: refused, nothing proposed. */
	size_t n = CTL_KV_MAX_VALUE + 1;
	char *raw = calloc(1, n);
	assert_non_null(raw);
	char *b64 = ctl_b64_encode(raw, n);
	assert_non_null(b64);
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--base64", "big", b64, NULL), EFBIG);
	assert_non_null(strstr(out, "limit"));
	free(b64);
	/* At the limit: written. */
	b64 = ctl_b64_encode(raw, n - 1);
	assert_non_null(b64);
	assert_int_equal(
		rcl_control(c, 1, out, sizeof(out), "kv-put", "--base64", "big", b64, NULL), 0);
	free(b64);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_kv_cas_versions, teardown),
		cmocka_unit_test_teardown(test_kv_cas_one_winner, teardown),
		cmocka_unit_test_teardown(test_kv_cas_base64_values, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
