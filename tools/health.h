/*
 * omnifsctl health: one verdict on this node for monitoring checks and
 * scripts, as an exit status (see health.c for the codes).
 */
#ifndef OMNIFS_HEALTH_H
#define OMNIFS_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit statuses of `omnifsctl health`; 3 is every omnifsctl command's
 * "the daemon could not be reached". */
enum {
	HEALTH_OK = 0,
	HEALTH_NOT_RUNNING = 3,
	HEALTH_NO_QUORUM = 10,
	HEALTH_LAGGING = 11,
	HEALTH_NOT_MEMBER = 12,
	HEALTH_NOT_MOUNTED = 13,
};

/* The verdict (a HEALTH_ code) on the daemon's JSON status object st
 * (borrowed), with its reason in words in why. */
int health_judge(const json_t *st, unsigned long long max_lag_ms, char *why, size_t len);

/* sock: the control socket (borrowed); wait_ms: how long to wait for the
 * daemon; argv[0] is "health". Returns the exit status. */
int health_main(const char *sock, uint32_t wait_ms, int argc, char **argv);

#endif /* OMNIFS_HEALTH_H */
