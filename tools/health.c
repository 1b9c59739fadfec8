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
 * It reads the daemon's status by field name ("quorum", "lag_ms"...) from
 * the object omnifsd itself writes; it is not a general JSON reader.
 */
#include "health.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl.h"

#define MAX_LAG_MS_DEFAULT 2000u

/* The value of the top-level field name in the status object, as its raw
 * JSON text ("true", "42", "\"direct\"") copied into buf; "" when absent.
 * The status's names are distinct at every depth, so the first match is it. */
static const char *field(const char *json, const char *name, char *buf, size_t len)
{
	char key[64];
	snprintf(key, sizeof(key), "\"%s\":", name);
	const char *p = strstr(json, key);
	buf[0] = '\0';
	if (!p)
		return buf;
	p += strlen(key);
	size_t n = 0;
	bool quoted = *p == '"';
	while (p[n] && n + 1 < len) {
		if (quoted ? n > 0 && p[n] == '"' : p[n] == ',' || p[n] == '}' || p[n] == ']')
			break;
		n++;
	}
	if (quoted && p[n] == '"' && n + 1 < len)
		n++;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static bool is_true(const char *json, const char *name)
{
	char v[16];
	return strcmp(field(json, name, v, sizeof(v)), "true") == 0;
}

static unsigned long long number(const char *json, const char *name)
{
	char v[32];
	return strtoull(field(json, name, v, sizeof(v)), NULL, 10);
}

/* s as a JSON string on stdout. */
static void put_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
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

int health_judge(const char *st, unsigned long long max_lag_ms, char *why, size_t len)
{
	char route[32];
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
	if (!is_true(st, "quorum")) {
		snprintf(why, len, "no quorum (%s, leader route %s): writes here cannot be decided",
			 is_true(st, "no_majority") ? "cannot reach a majority" : "no leader yet",
			 field(st, "leader_route", route, sizeof(route)));
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
	snprintf(why, len, "member with quorum, %llu entries behind, %s", lag,
		 is_true(st, "mount_wanted") ? "mounted" : "no mount configured");
	return HEALTH_OK;
}

static void print_json(int code, const char *why, const char *st)
{
	static const char *const copied[] = {"node",	     "role",	    "quorum",
					     "leader_route", "lag_entries", "lag_ms",
					     "stale_since",  "no_majority", "state_transfer",
					     "mount_wanted", "mounted",	    NULL};
	printf("{\"healthy\":%s,\"state\":\"%s\",\"exit\":%d,\"reason\":",
	       code == HEALTH_OK ? "true" : "false", state_name(code), code);
	put_json_string(why);
	for (int i = 0; st && copied[i]; i++) {
		char v[64];
		if (field(st, copied[i], v, sizeof(v))[0])
			printf(",\"%s\":%s", copied[i], v);
	}
	printf("}\n");
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
	} else {
		code = health_judge(body, max_lag_ms, why, sizeof(why));
	}
	if (json)
		print_json(code, why, body);
	else
		printf("%s: %s\n", code == HEALTH_OK ? "ok" : state_name(code), why);
	free(body);
	return code;
}
