/*
 * The Prometheus text writer and the latency histograms: the exact text of
 * families, samples and histograms (escaped label values and help,
 * cumulative buckets up to +Inf, _sum in seconds, _count), the registry's
 * order and bound, the process source, and histograms observed from many
 * threads at once losing nothing.
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* The text written so far, NUL-ended (ctl_buf keeps it so). */
static const char *text_of(struct metrics_text *t)
{
	assert_int_equal(t->rc, 0);
	return t->buf.data ? t->buf.data : "";
}

static void test_metrics_family_and_samples(void **state)
{
	struct metrics_text t = {0};
	metrics_family(&t, "omnifs_applied_index", "gauge", "Entries applied.");
	metrics_sample_u64(&t, "omnifs_applied_index", NULL, 0, 18446744073709551615u);
	struct metrics_label two[] = {{"peer", "2"}, {"dir", "out"}};
	metrics_family(&t, "omnifs_x_bytes_total", "counter", "Bytes.");
	metrics_sample_u64(&t, "omnifs_x_bytes_total", two, 2, 0);
	metrics_sample_double(&t, "omnifs_x_ratio", two, 1, 0.5);
	assert_string_equal(text_of(&t), "# HELP omnifs_applied_index Entries applied.\n"
					 "# TYPE omnifs_applied_index gauge\n"
					 "omnifs_applied_index 18446744073709551615\n"
					 "# HELP omnifs_x_bytes_total Bytes.\n"
					 "# TYPE omnifs_x_bytes_total counter\n"
					 "omnifs_x_bytes_total{peer=\"2\",dir=\"out\"} 0\n"
					 "omnifs_x_ratio{peer=\"2\"} 0.5\n");
	ctl_buf_free(&t.buf);
}

static void test_metrics_escapes_label_values_and_help(void **state)
{
	struct metrics_text t = {0};
	metrics_family(&t, "omnifs_e", "gauge", "a \"quoted\" back\\slash\nand a newline");
	struct metrics_label l = {"path", "say \"hi\"\\n\nend"};
	metrics_sample_u64(&t, "omnifs_e", &l, 1, 7);
	struct metrics_label empty = {"v", ""};
	metrics_sample_u64(&t, "omnifs_e", &empty, 1, 8);
	assert_string_equal(text_of(&t),
			    "# HELP omnifs_e a \"quoted\" back\\\\slash\\nand a newline\n"
			    "# TYPE omnifs_e gauge\n"
			    "omnifs_e{path=\"say \\\"hi\\\"\\\\n\\nend\"} 7\n"
			    "omnifs_e{v=\"\"} 8\n");
	ctl_buf_free(&t.buf);
}

static void test_metrics_histogram_buckets_are_cumulative(void **state)
{
	struct metrics_histogram h = {0};
	metrics_observe_ns(&h, 30000);	     /* 30 us: the first bucket */
	metrics_observe_ns(&h, 50000);	     /* on the first bound: le is inclusive */
	metrics_observe_ns(&h, 2000000);     /* 2 ms: le="0.0025" */
	metrics_observe_ns(&h, 20000000000); /* 20 s: above every bound, +Inf only */
	struct metrics_text t = {0};
	struct metrics_label op = {"op", "write"};
	metrics_family(&t, "omnifs_d_seconds", "histogram", "Durations.");
	metrics_histogram_write(&t, "omnifs_d_seconds", &op, 1, &h);
	assert_string_equal(text_of(&t), "# HELP omnifs_d_seconds Durations.\n"
					 "# TYPE omnifs_d_seconds histogram\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"5e-05\"} 2\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.0001\"} 2\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.00025\"} 2\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.0005\"} 2\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.001\"} 2\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.0025\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.005\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.01\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.025\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.05\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.1\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.25\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"0.5\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"1\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"2.5\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"5\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"10\"} 3\n"
					 "omnifs_d_seconds_bucket{op=\"write\",le=\"+Inf\"} 4\n"
					 "omnifs_d_seconds_sum{op=\"write\"} 20.002080000\n"
					 "omnifs_d_seconds_count{op=\"write\"} 4\n");
	ctl_buf_free(&t.buf);
}

static void test_metrics_empty_histogram_without_labels(void **state)
{
	struct metrics_histogram h = {0};
	struct metrics_text t = {0};
	metrics_histogram_family(&t, "omnifs_s_seconds", "S.", &h);
	const char *s = text_of(&t);
	assert_non_null(strstr(s, "# TYPE omnifs_s_seconds histogram\n"
				  "omnifs_s_seconds_bucket{le=\"5e-05\"} 0\n"));
	assert_non_null(strstr(s, "omnifs_s_seconds_bucket{le=\"+Inf\"} 0\n"
				  "omnifs_s_seconds_sum 0.000000000\n"
				  "omnifs_s_seconds_count 0\n"));
	ctl_buf_free(&t.buf);
}

static void source_a(void *ctx, struct metrics_text *t)
{
	metrics_family(t, "omnifs_a", "gauge", "A.");
	metrics_sample_u64(t, "omnifs_a", NULL, 0, *(unsigned *)ctx);
}

static void source_b(void *ctx, struct metrics_text *t)
{
	metrics_family(t, "omnifs_b", "counter", "B.");
	metrics_sample_u64(t, "omnifs_b", NULL, 0, 2);
}

static void test_metrics_registry_renders_in_order(void **state)
{
	struct metrics_registry r = {0};
	unsigned a = 1;
	assert_int_equal(metrics_registry_add(&r, source_a, &a), 0);
	assert_int_equal(metrics_registry_add(&r, source_b, NULL), 0);
	struct ctl_buf out = {0};
	assert_int_equal(metrics_render(&r, &out), 0);
	assert_string_equal(out.data, "# HELP omnifs_a A.\n# TYPE omnifs_a gauge\nomnifs_a 1\n"
				      "# HELP omnifs_b B.\n# TYPE omnifs_b counter\nomnifs_b 2\n");
	/* Each render asks the sources again. */
	a = 5;
	out.len = 0;
	assert_int_equal(metrics_render(&r, &out), 0);
	assert_non_null(strstr(out.data, "omnifs_a 5\n"));
	ctl_buf_free(&out);
	for (size_t i = r.n; i < METRICS_MAX_SOURCES; i++)
		assert_int_equal(metrics_registry_add(&r, source_b, NULL), 0);
	assert_int_equal(metrics_registry_add(&r, source_b, NULL), -ENOSPC);
}

static void test_metrics_process_source(void **state)
{
	struct metrics_text t = {0};
	metrics_process_source(NULL, &t);
	const char *s = text_of(&t);
	const char *rss = strstr(s, "\nomnifs_resident_memory_bytes ");
	assert_non_null(rss);
	assert_true(strtoull(rss + strlen("\nomnifs_resident_memory_bytes "), NULL, 10) > 4096);
	assert_non_null(strstr(s, "omnifs_build_info{version=\"" OMNIFS_VERSION "\"} 1\n"));
	ctl_buf_free(&t.buf);
}

#define THREADS	     4
#define OBSERVE_EACH 100000

static void *observer(void *arg)
{
	struct metrics_histogram *h = arg;
	for (unsigned i = 0; i < OBSERVE_EACH; i++)
		metrics_observe_ns(h, (uint64_t)(i % 7) * 300000); /* 0 to 1.8 ms */
	return NULL;
}

static void test_metrics_concurrent_observations_all_count(void **state)
{
	struct metrics_histogram h = {0};
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, observer, &h), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	struct metrics_text t = {0};
	metrics_histogram_write(&t, "omnifs_c_seconds", NULL, 0, &h);
	const char *s = text_of(&t);
	char want[96];
	snprintf(want, sizeof(want), "omnifs_c_seconds_count %u\n", THREADS * OBSERVE_EACH);
	assert_non_null(strstr(s, want));
	/* Each thread: (0+1+...+6) * 300 us per 7 observations. */
	uint64_t per_thread_ns = 0;
	for (unsigned i = 0; i < OBSERVE_EACH; i++)
		per_thread_ns += (uint64_t)(i % 7) * 300000;
	uint64_t sum = THREADS * per_thread_ns;
	snprintf(want, sizeof(want), "omnifs_c_seconds_sum %llu.%09llu\n",
		 (unsigned long long)(sum / 1000000000u), (unsigned long long)(sum % 1000000000u));
	assert_non_null(strstr(s, want));
	ctl_buf_free(&t.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_family_and_samples),
		cmocka_unit_test(test_metrics_escapes_label_values_and_help),
		cmocka_unit_test(test_metrics_histogram_buckets_are_cumulative),
		cmocka_unit_test(test_metrics_empty_histogram_without_labels),
		cmocka_unit_test(test_metrics_registry_renders_in_order),
		cmocka_unit_test(test_metrics_process_source),
		cmocka_unit_test(test_metrics_concurrent_observations_all_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
