/*
 * Latency histograms, the Prometheus text writer and the registry of
 * sources; see metrics.h. The text follows the exposition format 0.0.4:
 * one "# HELP" and one "# TYPE" line per family, then its samples, each
 * "name{label="value",...} value" on its own line; label values escape
 * backslash, double quote and newline; HELP text escapes backslash and
 * newline.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds of the buckets, in nanoseconds and as written in le="...";
 * from a fast FUSE lookup served from the KV to a commit that waits out an
 * election. */
static const uint64_t bound_ns[METRICS_BUCKETS] = {
	50000,	   100000,     250000,	   500000,     1000000,	    2500000,
	5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
	500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const bound_text[METRICS_BUCKETS] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
	"0.05",	 "0.1",	   "0.25",    "0.5",	"1",	 "2.5",	   "5",	    "10",
};

uint64_t metrics_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void metrics_observe_ns(struct metrics_histogram *h, uint64_t ns)
{
	unsigned i = 0;
	while (i < METRICS_BUCKETS && ns > bound_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static void put(struct metrics_text *t, const char *s, size_t len)
{
	if (t->rc == 0)
		t->rc = ctl_buf_append(&t->buf, s, len);
}

static void put_str(struct metrics_text *t, const char *s)
{
	put(t, s, strlen(s));
}

/* s with backslash and newline escaped, and double quote too if quote. */
static void put_escaped(struct metrics_text *t, const char *s, int quote)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\'		 ? "\\\\"
				  : *s == '\n'		 ? "\\n"
				  : (*s == '"' && quote) ? "\\\""
							 : NULL;
		if (!esc)
			continue;
		put(t, run, (size_t)(s - run));
		put_str(t, esc);
		run = s + 1;
	}
	put(t, run, (size_t)(s - run));
}

void metrics_family(struct metrics_text *t, const char *name, const char *type, const char *help)
{
	put_str(t, "# HELP ");
	put_str(t, name);
	put_str(t, " ");
	put_escaped(t, help, 0);
	put_str(t, "\n# TYPE ");
	put_str(t, name);
	put_str(t, " ");
	put_str(t, type);
	put_str(t, "\n");
}

/* name{a="x",b="y",le="z"} with the extra label last (NULL: none). */
static void put_name(struct metrics_text *t, const char *name, const char *suffix,
		     const struct metrics_label *labels, size_t n, const char *le)
{
	put_str(t, name);
	put_str(t, suffix);
	if (n == 0 && !le)
		return;
	put_str(t, "{");
	for (size_t i = 0; i < n; i++) {
		if (i)
			put_str(t, ",");
		put_str(t, labels[i].name);
		put_str(t, "=\"");
		put_escaped(t, labels[i].value, 1);
		put_str(t, "\"");
	}
	if (le) {
		put_str(t, n ? ",le=\"" : "le=\"");
		put_str(t, le);
		put_str(t, "\"");
	}
	put_str(t, "}");
}

static void put_u64_line(struct metrics_text *t, uint64_t v)
{
	char num[32];
	int len = snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
	put(t, num, (size_t)len);
}

void metrics_sample_u64(struct metrics_text *t, const char *name,
			const struct metrics_label *labels, size_t n, uint64_t value)
{
	put_name(t, name, "", labels, n, NULL);
	put_u64_line(t, value);
}

void metrics_sample_double(struct metrics_text *t, const char *name,
			   const struct metrics_label *labels, size_t n, double value)
{
	put_name(t, name, "", labels, n, NULL);
	char num[48];
	int len = snprintf(num, sizeof(num), " %.17g\n", value);
	put(t, num, (size_t)len);
}

void metrics_histogram_write(struct metrics_text *t, const char *name,
			     const struct metrics_label *labels, size_t n,
			     const struct metrics_histogram *h)
{
	/* Each bucket is read once, so the cumulative counts never go down
	 * and _count is the +Inf bucket, even while others observe; the sum
	 * may include an observation the buckets do not yet (harmless). */
	uint64_t cum = 0;
	for (unsigned i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->count[i], memory_order_relaxed);
		put_name(t, name, "_bucket", labels, n,
			 i < METRICS_BUCKETS ? bound_text[i] : "+Inf");
		put_u64_line(t, cum);
	}
	uint64_t sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
	put_name(t, name, "_sum", labels, n, NULL);
	char num[48];
	int len = snprintf(num, sizeof(num), " %" PRIu64 ".%09" PRIu64 "\n", sum_ns / 1000000000u,
			   sum_ns % 1000000000u);
	put(t, num, (size_t)len);
	put_name(t, name, "_count", labels, n, NULL);
	put_u64_line(t, cum);
}

void metrics_histogram_family(struct metrics_text *t, const char *name, const char *help,
			      const struct metrics_histogram *h)
{
	metrics_family(t, name, "histogram", help);
	metrics_histogram_write(t, name, NULL, 0, h);
}

int metrics_registry_add(struct metrics_registry *r, metrics_source_fn fn, void *ctx)
{
	if (r->n >= METRICS_MAX_SOURCES)
		return -ENOSPC;
	r->src[r->n].fn = fn;
	r->src[r->n].ctx = ctx;
	r->n++;
	return 0;
}

int metrics_render(const struct metrics_registry *r, struct ctl_buf *out)
{
	struct metrics_text t = {.buf = *out};
	for (size_t i = 0; i < r->n && t.rc == 0; i++)
		r->src[i].fn(r->src[i].ctx, &t);
	*out = t.buf;
	return t.rc;
}

void metrics_process_source(void *ctx, struct metrics_text *t)
{
	/* statm: sizes in pages; the second is the resident set. */
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
			long page = sysconf(_SC_PAGESIZE);
			metrics_family(t, "omnifs_resident_memory_bytes", "gauge",
				       "Resident memory of the daemon (/proc/self/statm).");
			metrics_sample_u64(t, "omnifs_resident_memory_bytes", NULL, 0,
					   resident * (uint64_t)(page > 0 ? page : 4096));
		}
		fclose(f);
	}
	metrics_family(t, "omnifs_build_info", "gauge", "Always 1: the version of omnifsd.");
	struct metrics_label l = {"version", OMNIFS_VERSION};
	metrics_sample_u64(t, "omnifs_build_info", &l, 1, 1);
}
