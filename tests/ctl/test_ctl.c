/*
 * The control socket: requests and answers pass whole and binary-safe, the
 * socket is private (0600), a stale socket is replaced, a live one refused,
 * malformed requests get an error instead of reaching the handler,
 * stopping does not wait for a client that keeps its connection idle, and a
 * handler can hold its answer's connection until the client leaves
 * (ctl_hold) or the server stops.
 */
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* The process umask is shared by every thread, so the server must never
 * change it: this test's own umask() replaces libc's for the whole
 * executable (the server's library included) and counts the calls made
 * while counting is on. */
static int umask_calls;
static bool umask_counting;

mode_t umask(mode_t mask)
{
	if (umask_counting)
		umask_calls++;
	return (mode_t)syscall(SYS_umask, mask);
}

struct fixture {
	char dir[40];
	char path[60];
	struct ctl_server *srv;
	int calls;
	atomic_bool held;     /* "hold": ctl_hold returned */
	atomic_int hold_rc;   /* ... with this */
	atomic_bool was_gone; /* ctl_client_gone before the hold */
};

/* Echoes its arguments joined by '|'; "fail" answers ENOENT with a message. */
static int echo_handler(void *ctx, int argc, char **argv, struct ctl_buf *out)
{
	struct fixture *f = ctx;
	f->calls++;
	if (strcmp(argv[0], "fail") == 0) {
		ctl_buf_printf(out, "no such thing\n");
		return ENOENT;
	}
	if (strcmp(argv[0], "hold") == 0) {
		atomic_store(&f->was_gone, ctl_client_gone());
		int rc = ctl_hold("held\n", 5);
		ctl_buf_printf(out, "dropped"); /* the answer went out already */
		atomic_store(&f->hold_rc, rc);
		atomic_store(&f->held, true);
		return 0;
	}
	for (int i = 0; i < argc; i++)
		ctl_buf_printf(out, "%s%s", i ? "|" : "", argv[i]);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/omnifs-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	char err[256];
	f->srv = ctl_server_start(f->path, echo_handler, f, err, sizeof(err));
	assert_non_null(f->srv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	ctl_server_stop(&f->srv);
	assert_null(f->srv);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_ctl_round_trip(void **state)
{
	struct fixture *f = *state;
	char *argv[] = {"kv-put", "key with spaces", "line1\nline2"};
	uint32_t status;
	char *body, err[256];
	size_t len;
	assert_int_equal(ctl_call(f->path, 3, argv, 2000, &status, &body, &len, err, sizeof(err)),
			 0);
	assert_int_equal(status, 0);
	assert_string_equal(body, "kv-put|key with spaces|line1\nline2");
	assert_int_equal(len, strlen(body));
	free(body);
}

static void test_ctl_many_requests_on_one_connection(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int fd = ctl_connect(f->path, err, sizeof(err));
	assert_true(fd >= 0);
	for (int i = 0; i < 3; i++) {
		char n[8];
		snprintf(n, sizeof(n), "%d", i);
		char *argv[] = {"echo", n};
		uint32_t status;
		char *body, expect[16];
		size_t len;
		assert_int_equal(
			ctl_request(fd, 2, argv, 2000, &status, &body, &len, err, sizeof(err)), 0);
		snprintf(expect, sizeof(expect), "echo|%d", i);
		assert_string_equal(body, expect);
		free(body);
	}
	close(fd);
	assert_int_equal(f->calls, 3);
}

static void test_ctl_error_status(void **state)
{
	struct fixture *f = *state;
	char *argv[] = {"fail"};
	uint32_t status;
	char *body, err[256];
	size_t len;
	assert_int_equal(ctl_call(f->path, 1, argv, 2000, &status, &body, &len, err, sizeof(err)),
			 0);
	assert_int_equal(status, ENOENT);
	assert_string_equal(body, "no such thing\n");
	free(body);
}

static void test_ctl_socket_is_private(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 077, 0);
}

/* Under any umask the socket is exactly 0600, and starting the server
 * never touched the umask another thread may be relying on. */
static void test_ctl_socket_mode_ignores_the_umask(void **state)
{
	(void)state;
	static const mode_t masks[] = {0, 002, 022, 077, 0277};
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		char dir[40], path[60], err[256];
		snprintf(dir, sizeof(dir), "/tmp/omnifs-ctl-XXXXXX");
		assert_non_null(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/ctl.sock", dir);
		mode_t old = umask(masks[i]);
		umask_calls = 0;
		umask_counting = true;
		struct ctl_server *srv =
			ctl_server_start(path, echo_handler, NULL, err, sizeof(err));
		umask_counting = false;
		mode_t during = umask(old);
		assert_non_null(srv);
		assert_int_equal(umask_calls, 0);
		assert_int_equal(during, masks[i]);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISSOCK(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0600);
		ctl_server_stop(&srv);
		rmdir(dir);
	}
}

static void test_ctl_refuses_a_live_socket(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct ctl_server *other = ctl_server_start(f->path, echo_handler, f, err, sizeof(err));
	assert_null(other);
	assert_non_null(strstr(err, "is in use"));
}

static void test_ctl_replaces_a_stale_socket(void **state)
{
	struct fixture *f = *state;
	char stale[100], err[256];
	snprintf(stale, sizeof(stale), "%s/stale.sock", f->dir);
	/* A socket file nobody listens on, as a killed daemon leaves behind. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	struct ctl_server *s = ctl_server_start(stale, echo_handler, f, err, sizeof(err));
	assert_non_null(s);
	ctl_server_stop(&s);
	assert_int_equal(access(stale, F_OK), -1); /* removed on stop */
}

static void test_ctl_rejects_malformed_requests(void **state)
{
	struct fixture *f = *state;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* 3 bytes of arguments without the closing NUL */
	unsigned char req[] = {3, 0, 0, 0, 'a', 'b', 'c'};
	assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
	unsigned char hdr[8];
	assert_int_equal(read(fd, hdr, 8), 8);
	assert_int_equal(hdr[0], EBADMSG);
	close(fd);
	assert_int_equal(f->calls, 0);

	/* an absurd length is refused before anything is allocated */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	unsigned char huge[] = {0xff, 0xff, 0xff, 0x7f};
	assert_int_equal(write(fd, huge, sizeof(huge)), 4);
	assert_int_equal(read(fd, hdr, 8), 8);
	assert_int_equal(hdr[0], EMSGSIZE);
	close(fd);
	assert_int_equal(f->calls, 0);
}

static void test_ctl_client_reports_missing_daemon(void **state)
{
	char *argv[] = {"status"};
	uint32_t status;
	char *body, err[256];
	size_t len;
	int rc = ctl_call("/nonexistent/ctl.sock", 1, argv, 1000, &status, &body, &len, err,
			  sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(err, "is the daemon running?"));
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A client that keeps a connection open between requests (kvload does)
 * must not hold up a stopping daemon for the idle timeout (10 minutes). */
static void test_ctl_stop_closes_idle_connections(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int fd = ctl_connect(f->path, err, sizeof(err));
	assert_true(fd >= 0);
	char *argv[] = {"echo"};
	uint32_t status;
	char *body;
	size_t len;
	assert_int_equal(ctl_request(fd, 1, argv, 2000, &status, &body, &len, err, sizeof(err)), 0);
	free(body);
	uint64_t t0 = now_ms();
	ctl_server_stop(&f->srv);
	uint64_t took = now_ms() - t0;
	char c;
	ssize_t n = read(fd, &c, 1); /* the server closed its end */
	close(fd);
	assert_true(took < 5000);
	assert_int_equal(n, 0);
}

static bool wait_held(struct fixture *f, int ms)
{
	for (int i = 0; i < ms && !atomic_load(&f->held); i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return atomic_load(&f->held);
}

static void test_ctl_hold_until_the_client_leaves(void **state)
{
	struct fixture *f = *state;
	char err[256];
	/* Outside a handler: refused. */
	assert_int_equal(ctl_hold("x", 1), -EINVAL);
	assert_false(ctl_client_gone());
	int fd = ctl_connect(f->path, err, sizeof(err));
	assert_true(fd >= 0);
	char *argv[] = {"hold"};
	uint32_t status;
	char *body;
	size_t len;
	assert_int_equal(ctl_request(fd, 1, argv, 2000, &status, &body, &len, err, sizeof(err)), 0);
	assert_int_equal(status, 0);
	assert_string_equal(body, "held\n");
	free(body);
	assert_false(atomic_load(&f->was_gone));
	/* Held while the client stays. */
	assert_false(wait_held(f, 200));
	close(fd);
	assert_true(wait_held(f, 5000));
	assert_int_equal(atomic_load(&f->hold_rc), 0);
}

static void test_ctl_hold_ends_when_the_server_stops(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int fd = ctl_connect(f->path, err, sizeof(err));
	assert_true(fd >= 0);
	char *argv[] = {"hold"};
	uint32_t status;
	char *body;
	size_t len;
	assert_int_equal(ctl_request(fd, 1, argv, 2000, &status, &body, &len, err, sizeof(err)), 0);
	free(body);
	ctl_server_stop(&f->srv); /* returns: the hold ends */
	assert_true(atomic_load(&f->held));
	assert_int_equal(atomic_load(&f->hold_rc), -ESHUTDOWN);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ctl_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_hold_until_the_client_leaves, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_hold_ends_when_the_server_stops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_many_requests_on_one_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctl_error_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_socket_is_private, setup, teardown),
		cmocka_unit_test(test_ctl_socket_mode_ignores_the_umask),
		cmocka_unit_test_setup_teardown(test_ctl_refuses_a_live_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_replaces_a_stale_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_rejects_malformed_requests, setup,
						teardown),
		cmocka_unit_test(test_ctl_client_reports_missing_daemon),
		cmocka_unit_test_setup_teardown(test_ctl_stop_closes_idle_connections, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
