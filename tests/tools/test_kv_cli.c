/*
 * omnifsctl kv's pure parts: reading a value of any bytes up to the limit
 * (and refusing one byte more), the JSON of `kv get --json`, and the
 * base64 the values travel in (fs/base/ctl_b64.c), strict on what it takes.
 * The whole command against daemons is in tests/integration/test_kv_cas.sh.
 */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "kv_cli.h"

struct feeder {
	int fd;
	const char *data;
	size_t len;
};

/* Writes the bytes into the pipe and closes it (a thread: a pipe holds
 * less than the values these tests read). */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;
	while (off < f->len) {
		ssize_t w = write(f->fd, f->data + off, f->len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(f->fd);
	return NULL;
}

/* kv_cli_read_value on a pipe carrying data; its status. */
static int read_through_pipe(const char *data, size_t len, size_t max, char **out, size_t *got)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct feeder f = {p[1], data, len};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, feed, &f), 0);
	int rc = kv_cli_read_value(p[0], max, out, got);
	close(p[0]); /* a feeder still writing gets EPIPE and stops */
	pthread_join(th, NULL);
	return rc;
}

static void test_kv_cli_reads_any_bytes_up_to_the_limit(void **state)
{
	size_t max = 1u << 20;
	char *data = malloc(max + 1);
	assert_non_null(data);
	for (size_t i = 0; i <= max; i++)
		data[i] = (char)(i * 7 % 256); /* NUL bytes every 256 */
	char *out;
	size_t got;
	assert_int_equal(read_through_pipe(data, max, max, &out, &got), 0);
	assert_int_equal(got, max);
	assert_memory_equal(out, data, max);
	free(out);

	assert_int_equal(read_through_pipe(data, max + 1, max, &out, &got), -EFBIG);

	assert_int_equal(read_through_pipe("", 0, max, &out, &got), 0);
	assert_int_equal(got, 0);
	assert_string_equal(out, "");
	free(out);
	free(data);
}

static void test_kv_cli_get_json_carries_the_value_in_base64(void **state)
{
	static const char body[] = "42\na\0b\n";
	char err[256];
	char *line = kv_cli_get_json("cfg/x", body, sizeof(body) - 1, err, sizeof(err));
	assert_non_null(line);
	assert_int_equal(line[strlen(line) - 1], '\n');
	json_error_t jerr;
	json_t *o = json_loads(line, 0, &jerr);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "key")), "cfg/x");
	assert_int_equal(json_integer_value(json_object_get(o, "version")), 42);
	const char *b64 = json_string_value(json_object_get(o, "value"));
	assert_string_equal(b64, "YQBiCg==");
	void *v;
	size_t len;
	assert_int_equal(ctl_b64_decode(b64, &v, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(v, "a\0b\n", 4);
	free(v);
	json_decref(o);
	free(line);

	/* An empty value. */
	line = kv_cli_get_json("k", "7\n", 2, err, sizeof(err));
	assert_non_null(line);
	assert_string_equal(line, "{\"key\":\"k\",\"version\":7,\"value\":\"\"}\n");
	free(line);
}

static void test_kv_cli_get_json_refuses_what_it_cannot_show(void **state)
{
	char err[256];
	assert_null(kv_cli_get_json("k", "value without version", 21, err, sizeof(err)));
	assert_non_null(strstr(err, "version"));
	assert_null(kv_cli_get_json("k", "x7\nv", 4, err, sizeof(err)));
	assert_null(kv_cli_get_json("k", "0\nv", 3, err, sizeof(err)));
	assert_null(kv_cli_get_json("\xff\xfe", "1\nv", 3, err, sizeof(err)));
	assert_non_null(strstr(err, "UTF-8"));
}

static void test_kv_cli_base64_round_trip(void **state)
{
	unsigned char bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	/* Every length mod 3, so every padding. */
	for (size_t n = 0; n <= sizeof(bytes); n++) {
		char *s = ctl_b64_encode(bytes, n);
		assert_non_null(s);
		assert_int_equal(strlen(s), (n + 2) / 3 * 4);
		void *back;
		size_t len;
		assert_int_equal(ctl_b64_decode(s, &back, &len), 0);
		assert_int_equal(len, n);
		if (n)
			assert_memory_equal(back, bytes, n);
		free(back);
		free(s);
	}
}

static void test_kv_cli_base64_is_strict(void **state)
{
	static const char *const bad[] = {
		"YQ",	    /* not a multiple of 4 */
		"YQ=",	    /* idem */
		"Y===",	    /* three padding characters */
		"YQ=A",	    /* padding inside */
		"=QAA",	    /* idem */
		" YQ=",	    /* a blank */
		"YQ==\n",   /* a newline */
		"YQ-_",	    /* the URL alphabet */
		"YWJj====", /* padding after a whole group */
	};
	void *v;
	size_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ctl_b64_decode(bad[i], &v, &len), -EINVAL);
	}
	assert_int_equal(ctl_b64_decode("", &v, &len), 0);
	assert_int_equal(len, 0);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_cli_reads_any_bytes_up_to_the_limit),
		cmocka_unit_test(test_kv_cli_get_json_carries_the_value_in_base64),
		cmocka_unit_test(test_kv_cli_get_json_refuses_what_it_cannot_show),
		cmocka_unit_test(test_kv_cli_base64_round_trip),
		cmocka_unit_test(test_kv_cli_base64_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
