/*
 * omnifsctl health's verdicts on status objects shaped as omnifsd writes
 * them (one per way a node can be unwell, and the healthy one), and the
 * strict number reader every program's options go through.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "health.h"

/* A status object with the fields health reads; the peers array carries
 * names ("lag", "reachable") of its own. */
static const char *status(const char *quorum, const char *removed, const char *joining,
			  const char *xfer, unsigned lag_ms, const char *mount_wanted,
			  const char *mounted)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{\"node\":1,\"role\":\"follower\",\"quorum\":%s,\"removed\":%s,"
		 "\"joining\":%s,\"state_transfer\":%s,\"no_majority\":false,"
		 "\"leader_route\":\"direct\",\"lag_entries\":3,\"lag_ms\":%u,"
		 "\"stale_since\":null,\"peers\":[{\"id\":2,\"reachable\":true,\"lag\":9}],"
		 "\"mount_wanted\":%s,\"mounted\":%s}\n",
		 quorum, removed, joining, xfer, lag_ms, mount_wanted, mounted);
	return buf;
}

static int verdict(const char *text, unsigned long long max_lag_ms)
{
	char why[256] = ""; /* empty unless health_judge says why */
	json_t *st = json_loads(text, 0, NULL);
	assert_non_null(st);
	int code = health_judge(st, max_lag_ms, why, sizeof(why));
	json_decref(st);
	assert_true(why[0] != '\0');
	return code;
}

/* One status of the shape omnifsd writes, and the verdict it must get. */
struct health_case {
	const char *quorum, *removed, *joining, *xfer;
	unsigned lag_ms;
	const char *mount_wanted, *mounted;
	int want;
};

/* Judges each case with a lag bound of 2000 ms, naming the case that fails. */
static void judge_cases(const struct health_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = verdict(status(c[i].quorum, c[i].removed, c[i].joining, c[i].xfer,
					 c[i].lag_ms, c[i].mount_wanted, c[i].mounted),
				  2000);
		if (got != c[i].want)
			print_error("case %zu: verdict %d, want %d\n", i, got, c[i].want);
		assert_int_equal(got, c[i].want);
	}
}

static void test_health_healthy_member(void **state)
{
	(void)state;
	static const struct health_case cases[] = {
		{"true", "false", "false", "false", 0, "true", "true", HEALTH_OK},
		/* Without a mount configured there is nothing to be mounted. */
		{"true", "false", "false", "false", 0, "false", "false", HEALTH_OK},
	};
	judge_cases(cases, sizeof(cases) / sizeof(cases[0]));
	/* An older daemon's status without the mount fields. */
	assert_int_equal(verdict("{\"quorum\":true,\"lag_ms\":0}", 2000), HEALTH_OK);
}

static void test_health_each_problem_has_its_code(void **state)
{
	(void)state;
	static const struct health_case cases[] = {
		{"false", "false", "false", "false", 0, "true", "true", HEALTH_NO_QUORUM},
		{"false", "true", "false", "false", 0, "true", "true", HEALTH_NOT_MEMBER},
		{"false", "false", "true", "false", 0, "true", "true", HEALTH_NOT_MEMBER},
		{"true", "false", "false", "true", 0, "true", "true", HEALTH_LAGGING},
		{"true", "false", "false", "false", 2001, "true", "true", HEALTH_LAGGING},
		{"true", "false", "false", "false", 2000, "true", "true", HEALTH_OK},
		{"true", "false", "false", "false", 0, "true", "false", HEALTH_NOT_MOUNTED},
		/* The worse problem wins: removed before no quorum before lag. */
		{"false", "true", "false", "true", 9999, "true", "false", HEALTH_NOT_MEMBER},
		{"false", "false", "false", "true", 9999, "true", "false", HEALTH_NO_QUORUM},
	};
	judge_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* The healthy verdict says what the node is and which leader it knows of,
 * a learner too (the one its source follows). */
static void test_health_reason_names_role_and_leader(void **state)
{
	(void)state;
	char why[256];
	json_t *st = json_loads("{\"role\":\"learner\",\"learner\":true,\"leader\":2,"
				"\"quorum\":true,\"lag_ms\":0,\"lag_entries\":0}",
				0, NULL);
	assert_non_null(st);
	assert_int_equal(health_judge(st, 2000, why, sizeof(why)), HEALTH_OK);
	json_decref(st);
	assert_non_null(strstr(why, "learner with quorum, leader n2,"));
	st = json_loads("{\"quorum\":true,\"lag_ms\":0}", 0, NULL);
	assert_non_null(st);
	assert_int_equal(health_judge(st, 2000, why, sizeof(why)), HEALTH_OK);
	json_decref(st);
	assert_non_null(strstr(why, "member with quorum, 0 entries behind"));
}

static void test_health_codes_are_distinct(void **state)
{
	(void)state;
	int codes[] = {HEALTH_OK,	  HEALTH_NOT_RUNNING, HEALTH_NO_QUORUM, HEALTH_LAGGING,
		       HEALTH_NOT_MEMBER, HEALTH_NOT_MOUNTED, CLI_EXIT_USAGE};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(codes[i], codes[j]);
}

static void test_cli_numbers_are_strict(void **state)
{
	(void)state;
	uint64_t v = 7;
	assert_true(cli_parse_u64("5", 1, 10, &v));
	assert_int_equal(v, 5);
	assert_true(cli_parse_u64("0", 0, 10, &v));
	assert_int_equal(v, 0);
	v = 7;
	const char *bad[] = {"5x", "", " 5", "-1", "+5", "0x10", "11", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cli_parse_u64(bad[i], 1, 10, &v));
	assert_false(cli_parse_u64("0", 1, 10, &v));
	assert_int_equal(v, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_healthy_member),
		cmocka_unit_test(test_health_each_problem_has_its_code),
		cmocka_unit_test(test_health_reason_names_role_and_leader),
		cmocka_unit_test(test_health_codes_are_distinct),
		cmocka_unit_test(test_cli_numbers_are_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
