/*
 * Metrics in the Prometheus text exposition format, version 0.0.4.
 *
 * Three parts:
 *   - latency histograms that hot paths update without a lock: one relaxed
 *     atomic add to a bucket and one to the sum (counters and gauges are
 *     plain C11 atomics in the structs of the layer that owns them);
 *   - a writer of the text (struct metrics_text): families with their HELP
 *     and TYPE lines, samples with escaped label values, histograms with
 *     cumulative buckets, +Inf, _sum and _count;
 *   - a registry of sources, each of which writes its own families; the
 *     daemon registers the layers' sources and renders the whole page for
 *     /.omnifs/metrics, the HTTP endpoint and `omnifsctl metrics`.
 *
 * No global state: every histogram and registry belongs to the object that
 * holds it, so one process may host several nodes. A zeroed histogram is
 * empty and ready. Names follow Prometheus' conventions: an omnifs_ prefix,
 * base units (seconds, bytes) in the name, _total on counters.
 *
 * Layer: fs/base/; every fs/ layer may use it. It does not serve HTTP (the
 * daemon does, fs/metrics_http.c).
 */
#ifndef OMNIFS_METRICS_H
#define OMNIFS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

/* The Content-Type of the text this module writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Finite buckets of every latency histogram: 50 us to 10 s (metrics.c). */
#define METRICS_BUCKETS 17

/* A latency histogram. Any thread may observe into it at any time. */
struct metrics_histogram {
	/* Observations per bucket (not cumulative); [METRICS_BUCKETS]: above the last bound. */
	atomic_uint_fast64_t count[METRICS_BUCKETS + 1];
	atomic_uint_fast64_t sum_ns;
};

/* CLOCK_MONOTONIC in nanoseconds (the vDSO: no system call). */
uint64_t metrics_now_ns(void);

/* Counts one observation of ns nanoseconds. Lock-free; any thread. */
void metrics_observe_ns(struct metrics_histogram *h, uint64_t ns);

/* One label of a sample; value is escaped when written. Both borrowed. */
struct metrics_label {
	const char *name;
	const char *value;
};

/* The text being written. Writers never fail on their own: the first error
 * (-ENOMEM) sticks in rc and later writes are skipped. */
struct metrics_text {
	struct ctl_buf buf;
	int rc;
};

/* "# HELP name help" and "# TYPE name type" (type: counter, gauge,
 * histogram). Once per family, before its samples. help is escaped. */
void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help);

/* "name{labels} value" with an integer value. labels may be NULL when n is 0. */
void metrics_sample_u64(struct metrics_text *t, const char *name,
			const struct metrics_label *labels, size_t n, uint64_t value);

/* The same with a floating-point value. */
void metrics_sample_double(struct metrics_text *t, const char *name,
			   const struct metrics_label *labels, size_t n, double value);

/* The samples of one histogram of family name (its HELP and TYPE written
 * already): name_bucket{labels,le="..."} cumulative up to le="+Inf", then
 * name_sum (seconds) and name_count (the +Inf bucket's count). */
void metrics_histogram_write(struct metrics_text *t, const char *name,
			     const struct metrics_label *labels, size_t n,
			     const struct metrics_histogram *h);

/* A family of one histogram without labels. */
void metrics_histogram_family(struct metrics_text *t, const char *name, const char *help,
			      const struct metrics_histogram *h);

/* Writes a source's families into t. Called from any thread that renders:
 * it must be thread-safe. */
typedef void (*metrics_source_fn)(void *ctx, struct metrics_text *t);

#define METRICS_MAX_SOURCES 8

/* The sources of one page, each writing families no other one writes.
 * Filled before any render, then only read. Zeroed: empty. */
struct metrics_registry {
	struct {
		metrics_source_fn fn;
		void *ctx; /* borrowed: valid while the registry is rendered */
	} src[METRICS_MAX_SOURCES];
	size_t n;
};

/* Adds a source; -ENOSPC past METRICS_MAX_SOURCES. */
int metrics_registry_add(struct metrics_registry *r, metrics_source_fn fn, void *ctx);

/* Renders every source, in the order added, into out (appended). 0 or
 * -ENOMEM (out then holds an incomplete page: do not serve it). */
int metrics_render(const struct metrics_registry *r, struct ctl_buf *out);

/* A source for the process (ctx unused): resident memory from
 * /proc/self/statm and the version as omnifs_build_info. */
void metrics_process_source(void *ctx, struct metrics_text *t);

#endif /* OMNIFS_METRICS_H */
