/* The load generators' clock and result line. See loadstats.h. */
#include "loadstats.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double load_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

void load_report(uint64_t ok, uint64_t failed, uint64_t rofs, uint64_t timedout, double elapsed,
		 double *lat, uint64_t n)
{
	qsort(lat, n, sizeof(double), cmp_double);
	printf("puts %llu ok %llu failed (%llu EROFS, %llu ETIMEDOUT) in %.2f s: %.0f puts/s, "
	       "p50 %.2f ms, p99 %.2f ms\n",
	       (unsigned long long)ok, (unsigned long long)failed, (unsigned long long)rofs,
	       (unsigned long long)timedout, elapsed, (double)ok / elapsed,
	       n ? lat[n / 2] * 1e3 : 0, n ? lat[(n * 99) / 100] * 1e3 : 0);
}
