/*
 * omnifsctl health [--json] [--max-lag-ms MS]: asks the daemon for its JSON
 * status and turns it into one verdict, printed on a line (or as a JSON
 * object) and as the exit status, checked in this order:
 *
 *   3  not running: the control socket could not be reached
 *  12  not a member: removed from the cluster, or not added yet
 *  10  no quorum: a write made here cannot be decided now
 *  11  lagging: a state transfer runs, or entries known to be decided have
 *      waited longer than MS (default 2000) to be applied here
 *  13  not mounted: the daemon runs with a mountpoint it has not mounted
 *   0  healthy: a member with quorum, caught up and mounted
 *
 * The status is read and the verdict written with jansson.
 */
#include "health.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "ctl.h"

#define MAX_LAG_MS_DEFAULT 2000u

static bool is_true(const json_t *st, const char *name)
{
	return json_is_true(json_object_get(st, name));
}

static unsigned long long number(const json_t *st, const char *name)
{
	json_int_t v = json_integer_value(json_object_get(st, name));
	return v > 0 ? (unsigned long long)v : 0;
}

static const char *state_name(int code)
{
	switch (code) {
	case HEALTH_OK:
		return "ok";
	case HEALTH_NOT_RUNNING:
		return "not-running";
	case HEALTH_NO_QUORUM:
		return "no-quorum";
	case HEALTH_LAGGING:
		return "lagging";
	case HEALTH_NOT_MEMBER:
		return "not-member";
	case HEALTH_NOT_MOUNTED:
		return "not-mounted";
	default:
		return "error";
	}
}

int health_judge(const json_t *st, unsigned long long max_lag_ms, char *why, size_t len)
{
	unsigned long long lag_ms = number(st, "lag_ms"), lag = number(st, "lag_entries");
	if (is_true(st, "removed")) {
		snprintf(why, len, "removed from the cluster by a membership change");
		return HEALTH_NOT_MEMBER;
	}
	if (is_true(st, "joining")) {
		snprintf(why, len,
			 "not added to the cluster yet (omnifsctl member add on a member)");
		return HEALTH_NOT_MEMBER;
	}
	const char *route = json_string_value(json_object_get(st, "leader_route"));
	if (!is_true(st, "quorum")) {
		snprintf(why, len, "no quorum (%s, leader route %s): writes here cannot be decided",
			 is_true(st, "no_majority") ? "cannot reach a majority" : "no leader yet",
			 route ? route : "unknown");
		return HEALTH_NO_QUORUM;
	}
	if (is_true(st, "state_transfer")) {
		snprintf(why, len, "fetching the state from a peer (state transfer)");
		return HEALTH_LAGGING;
	}
	if (lag_ms > max_lag_ms) {
		snprintf(why, len, "%llu entries behind, last in step %llu ms ago (limit %llu)",
			 lag, lag_ms, max_lag_ms);
		return HEALTH_LAGGING;
	}
	if (is_true(st, "mount_wanted") && !is_true(st, "mounted")) {
		snprintf(why, len, "the filesystem is not mounted (yet)");
		return HEALTH_NOT_MOUNTED;
	}
	/* A learner's leader is the one its source follows (it has no vote). */
	char leader[40] = "";
	if (number(st, "leader"))
		snprintf(leader, sizeof(leader), ", leader n%llu", number(st, "leader"));
	snprintf(why, len, "%s with quorum%s, %llu entries behind, %s",
		 is_true(st, "learner") ? "learner" : "member", leader, lag,
		 is_true(st, "mount_wanted") ? "mounted" : "no mount configured");
	return HEALTH_OK;
}

static void print_json(int code, const char *why, const json_t *st)
{
	static const char *const copied[] = {
		"node",		"role",	   "leader",	  "quorum",	 "leader_route",
		"lag_entries",	"lag_ms",  "stale_since", "no_majority", "state_transfer",
		"mount_wanted", "mounted", NULL};
	json_t *h = json_pack("{s:b, s:s, s:i, s:s}", "healthy", code == HEALTH_OK, "state",
			      state_name(code), "exit", code, "reason", why);
	if (!h) {
		fprintf(stderr, "omnifsctl: health: out of memory\n");
		return;
	}
	for (int i = 0; st && copied[i]; i++) {
		json_t *v = json_object_get(st, copied[i]);
		if (v)
			json_object_set(h, copied[i], v);
	}
	json_dumpf(h, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(h);
}

static int usage_err(const char *what)
{
	fprintf(stderr,
		"omnifsctl: health: %s\nusage: omnifsctl health [--json] [--max-lag-ms MS]\n",
		what);
	return CLI_EXIT_USAGE;
}

int health_main(const char *sock, uint32_t wait_ms, int argc, char **argv)
{
	bool json = false;
	uint64_t max_lag_ms = MAX_LAG_MS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--max-lag-ms") != 0 || i + 1 == argc)
			return usage_err("unknown option or missing value");
		else if (!cli_parse_u64(argv[++i], 0, 86400000, &max_lag_ms))
			return usage_err("--max-lag-ms takes milliseconds, 0 to 86400000");
	}
	char *args[] = {"status", "--json"};
	char err[512], why[600];
	uint32_t status;
	json_t *st = NULL;
	json_error_t jerr = {0};
	char *body = NULL;
	size_t body_len;
	int code;
	if (ctl_call(sock, 2, args, wait_ms, &status, &body, &body_len, err, sizeof(err)) != 0) {
		snprintf(why, sizeof(why), "omnifsd not running or not answering: %s", err);
		code = HEALTH_NOT_RUNNING;
		body = NULL;
	} else if (status != 0) {
		snprintf(why, sizeof(why), "the daemon refused the status: %s",
			 strerror((int)status));
		code = 1;
		free(body);
		body = NULL;
	} else if (!(st = json_loads(body, 0, &jerr)) || !json_is_object(st)) {
		snprintf(why, sizeof(why), "the daemon's status is no JSON object: %s", jerr.text);
		code = 1;
	} else {
		code = health_judge(st, max_lag_ms, why, sizeof(why));
	}
	if (json)
		print_json(code, why, st);
	else
		printf("%s: %s\n", code == HEALTH_OK ? "ok" : state_name(code), why);
	json_decref(st);
	free(body);
	return code;
}
