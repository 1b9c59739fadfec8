/*
 * The logger's journal fields (fs/base/log.c): what log_kv hands to
 * sd_journal_sendv for a message with and without node, peer and index,
 * and a text that fills the buffer; and the plain line a pipe gets.
 * That journald stores the fields is checked under the real systemd
 * (tests/integration/test_systemd_walkthrough.sh).
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Field i of m as a string. */
static const char *field(const struct log_journal_msg *m, int i, char *buf, size_t len)
{
	assert_true(i < m->n);
	assert_true(m->iov[i].iov_len < len);
	memcpy(buf, m->iov[i].iov_base, m->iov[i].iov_len);
	buf[m->iov[i].iov_len] = '\0';
	return buf;
}

static void test_log_journal_fields_of_a_peer_and_an_index(void **state)
{
	struct log_journal_msg m;
	char b[LOG_TEXT_MAX + 64];
	log_journal_build(&m, LOG_LEVEL_NOTICE, "omnifsd", 2, 3, 41,
			  "replica: sending state @41 to n3");
	assert_int_equal(m.n, 6);
	assert_string_equal(field(&m, 0, b, sizeof(b)), "PRIORITY=5");
	assert_string_equal(field(&m, 1, b, sizeof(b)),
			    "MESSAGE=n2 replica: sending state @41 to n3");
	assert_string_equal(field(&m, 2, b, sizeof(b)), "SYSLOG_IDENTIFIER=omnifsd");
	assert_string_equal(field(&m, 3, b, sizeof(b)), "OMNIFS_NODE=2");
	assert_string_equal(field(&m, 4, b, sizeof(b)), "OMNIFS_PEER=3");
	assert_string_equal(field(&m, 5, b, sizeof(b)), "OMNIFS_INDEX=41");
}

static void test_log_journal_fields_left_out(void **state)
{
	struct log_journal_msg m;
	char b[LOG_TEXT_MAX + 64];
	/* Index 0 is an index (the first entry); only LOG_NO_INDEX is none. */
	log_journal_build(&m, LOG_LEVEL_ERR, "omnifsd", 7, LOG_NO_PEER, 0, "x");
	assert_int_equal(m.n, 5);
	assert_string_equal(field(&m, 3, b, sizeof(b)), "OMNIFS_NODE=7");
	assert_string_equal(field(&m, 4, b, sizeof(b)), "OMNIFS_INDEX=0");

	log_journal_build(&m, LOG_LEVEL_DEBUG, "omnifsctl", 0, LOG_NO_PEER, LOG_NO_INDEX, "y");
	assert_int_equal(m.n, 3);
	assert_string_equal(field(&m, 0, b, sizeof(b)), "PRIORITY=7");
	assert_string_equal(field(&m, 1, b, sizeof(b)), "MESSAGE=y");
	assert_string_equal(field(&m, 2, b, sizeof(b)), "SYSLOG_IDENTIFIER=omnifsctl");

	log_journal_build(&m, LOG_LEVEL_INFO, "omnifsd", 1, UINT64_MAX - 1, LOG_NO_INDEX, "z");
	assert_int_equal(m.n, 5);
	assert_string_equal(field(&m, 4, b, sizeof(b)), "OMNIFS_PEER=18446744073709551614");
}

static void test_log_journal_message_of_the_longest_text(void **state)
{
	struct log_journal_msg m;
	char text[LOG_TEXT_MAX], b[LOG_TEXT_MAX + 64];
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	log_journal_build(&m, LOG_LEVEL_INFO, "omnifsd", 18446744073709551615ull, 1, 1, text);
	field(&m, 1, b, sizeof(b));
	/* Whole: "MESSAGE=", the longest tag, a blank and every byte of text. */
	assert_int_equal(strlen(b), strlen("MESSAGE=n18446744073709551615 ") + strlen(text));
	assert_int_equal(b[strlen(b) - 1], 'a');
}

/* Where stderr is not the journal, a plain line: tag, level word, text. */
static void test_log_plain_line_on_a_pipe(void **state)
{
	int p[2], saved = dup(STDERR_FILENO);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	log_set_node(4);
	log_kv(LOG_LEVEL_WARNING, 2, 9, "replica: link to n%d is down", 2);
	log_set_node(0);
	log_msg(LOG_LEVEL_ERR, "untagged");
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "n4 warning: replica: link to n2 is down\nerror: untagged\n");
}

int main(void)
{
	/* JOURNAL_STREAM inherited from a test runner under systemd must not
	 * send this test's lines to the journal. */
	unsetenv("JOURNAL_STREAM");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_journal_fields_of_a_peer_and_an_index),
		cmocka_unit_test(test_log_journal_fields_left_out),
		cmocka_unit_test(test_log_journal_message_of_the_longest_text),
		cmocka_unit_test(test_log_plain_line_on_a_pipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
