/*
 * What the two put load generators (omnifs-kvload, omnifs-etcdload) share:
 * the clock and the one result line tools/bench-kv.sh parses.
 */
#ifndef OMNIFS_LOADSTATS_H
#define OMNIFS_LOADSTATS_H

#include <stdint.h>

/* CLOCK_MONOTONIC in seconds. */
double load_now_s(void);

/* Sorts lat[0..n) (seconds, of acknowledged puts) and prints
 * "puts OK ok FAILED failed (R EROFS, T ETIMEDOUT) in E s: X puts/s, p50 ... ms, p99 ... ms". */
void load_report(uint64_t ok, uint64_t failed, uint64_t rofs, uint64_t timedout, double elapsed,
		 double *lat, uint64_t n);

#endif /* OMNIFS_LOADSTATS_H */
