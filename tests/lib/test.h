/*
 * The one include for cmocka tests: cmocka 1.1.5 needs these standard
 * headers before <cmocka.h>.
 */
#ifndef OMNIFS_TEST_H
#define OMNIFS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/*
 * ThreadSanitizer cannot follow fork(2) in a process that has run threads:
 * RocksDB's thread pool outlives every store, and a child that starts
 * threads again trips TSan's own checks. Tests that fork a child using
 * RocksDB return at once in the tsan build (tools/build.sh tsan), saying so;
 * the asan build runs them. (cmocka's skip() would count as a failure.)
 */
#if defined(__SANITIZE_THREAD__)
#define TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_UNDER_TSAN 1
#endif
#endif
#ifndef TEST_UNDER_TSAN
#define TEST_UNDER_TSAN 0
#endif
#define TEST_SKIP_FORK_UNDER_TSAN()                                                   \
	do {                                                                          \
		if (TEST_UNDER_TSAN) {                                                \
			print_message("# not run under ThreadSanitizer: it forks\n"); \
			return;                                                       \
		}                                                                     \
	} while (0)

/* Runs this test program again in a child, with arguments argv (argv[0]
 * its name, NULL-terminated): a fresh process, where RocksDB starts its
 * background threads again (they do not survive a fork). */
static inline pid_t test_exec_self(char *const argv[])
{
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	return pid;
}

/* Waits for the child pid, which must exit 0. */
static inline void test_expect_child_ok(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("child: status %#x", status);
}

#endif /* OMNIFS_TEST_H */
