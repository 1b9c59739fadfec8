/*
 * Config parser: every field, the defaults, the shipped example, and
 * malformed files each rejected with a message naming file, line and key.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define KEY_A "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
#define KEY_B "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

static const char good[] = "[node]\n"
			   "id = 2\n"
			   "cluster = prod-configs\n"
			   "listen = 0.0.0.0:7102\n"
			   "data_dir = /var/lib/omnifs\n"
			   "mountpoint = /srv/omnifs\n"
			   "control_socket = /run/omnifs/ctl.sock\n"
			   "log_level = debug\n"
			   "join = true\n"
			   "[peers]\n"
			   "1 = 10.0.0.1:7101\n"
			   "2 = 10.0.0.2:7102\n"
			   "3 = node3.example.org:7103\n"
			   "[peer_keys]\n"
			   "1 = " KEY_A "\n"
			   "3 = " KEY_B "\n"
			   "[timing]\n"
			   "tick_ms = 5\n"
			   "election_timeout_ms = 300\n"
			   "resend_timeout_ms = 900\n"
			   "flush_timeout_ms = 20\n"
			   "commit_timeout_ms = 7000\n"
			   "[consensus]\n"
			   "batch_size = 128\n"
			   "leader_priority = 7\n"
			   "read_quorum = 2\n"
			   "write_quorum = 2\n"
			   "[compaction]\n"
			   "max_entries = 5000\n"
			   "max_bytes_mb = 8\n"
			   "retain_entries = 100\n"
			   "[security]\n"
			   "secret_key_file = /etc/omnifs/node2.key\n"
			   "[fs]\n"
			   "max_file_size_mb = 1024\n"
			   "max_total_size_mb = 20000\n"
			   "max_inodes = 5000\n"
			   "write_buffer_mb = 8\n"
			   "[metrics]\n"
			   "listen = [::1]:9465\n"
			   "[storage]\n"
			   "memory_mb = 48\n";

static void test_config_reads_every_field(void **state)
{
	struct cfg c;
	char err[CFG_ERR_MAX];
	assert_int_equal(cfg_parse_string(&c, good, "good.conf", err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(c.node_id, 2);
	assert_string_equal(c.cluster, "prod-configs");
	assert_int_equal(c.cluster_id, cfg_cluster_hash("prod-configs"));
	assert_string_equal(c.listen, "0.0.0.0:7102");
	assert_string_equal(c.data_dir, "/var/lib/omnifs");
	assert_string_equal(c.mountpoint, "/srv/omnifs");
	assert_string_equal(c.control_socket, "/run/omnifs/ctl.sock");
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_true(c.join);
	assert_int_equal(c.n_peers, 3);
	assert_int_equal(c.peers[0].id, 1);
	assert_string_equal(c.peers[0].address, "10.0.0.1:7101");
	assert_string_equal(c.peers[0].public_key, KEY_A);
	assert_string_equal(c.peers[1].public_key, "");
	assert_string_equal(cfg_find_peer(&c, 3)->address, "node3.example.org:7103");
	assert_string_equal(cfg_find_peer(&c, 3)->public_key, KEY_B);
	assert_null(cfg_find_peer(&c, 4));
	assert_int_equal(c.tick_ms, 5);
	assert_int_equal(c.election_timeout_ms, 300);
	assert_int_equal(c.resend_timeout_ms, 900);
	assert_int_equal(c.flush_timeout_ms, 20);
	assert_int_equal(c.commit_timeout_ms, 7000);
	assert_int_equal(c.batch_size, 128);
	assert_int_equal(c.leader_priority, 7);
	assert_int_equal(c.read_quorum, 2);
	assert_int_equal(c.write_quorum, 2);
	assert_int_equal(c.compact_max_entries, 5000);
	assert_int_equal(c.compact_max_bytes, 8u << 20);
	assert_int_equal(c.compact_retain_entries, 100);
	assert_false(c.plaintext);
	assert_string_equal(c.secret_key_file, "/etc/omnifs/node2.key");
	assert_int_equal(c.fs_max_file_size_mb, 1024);
	assert_int_equal(c.fs_max_total_size_mb, 20000);
	assert_int_equal(c.fs_max_inodes, 5000);
	assert_int_equal(c.fs_write_buffer_mb, 8);
	assert_string_equal(c.metrics_listen, "[::1]:9465");
	assert_int_equal(c.storage_memory_mb, 48);
}

static void test_config_defaults(void **state)
{
	static const char minimal[] = "[node]\nid = 1\ncluster = c\ndata_dir = /d\n"
				      "[peers]\n1 = 127.0.0.1:7101\n2 = [::1]:7102\n"
				      "[security]\nplaintext = true\n";
	struct cfg c;
	char err[CFG_ERR_MAX];
	assert_int_equal(cfg_parse_string(&c, minimal, "min.conf", err, sizeof(err)), 0);
	assert_string_equal(c.listen, "127.0.0.1:7101"); /* own peer address */
	assert_string_equal(c.mountpoint, "");		 /* KV only */
	assert_string_equal(c.control_socket, "/d/control.sock");
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_false(c.join);			   /* a new node forms the cluster with its peers */
	assert_string_equal(c.metrics_listen, ""); /* no HTTP endpoint unless asked for */
	assert_int_equal(c.tick_ms, 10);
	assert_int_equal(c.election_timeout_ms, 200);
	assert_int_equal(c.resend_timeout_ms, 500);
	assert_int_equal(c.flush_timeout_ms, 10);
	assert_int_equal(c.commit_timeout_ms, 5000);
	assert_int_equal(c.batch_size, 64);
	assert_int_equal(c.leader_priority, 0);
	assert_int_equal(c.read_quorum, 0);
	assert_int_equal(c.write_quorum, 0);
	assert_int_equal(c.compact_max_entries, 20000);
	assert_int_equal(c.compact_max_bytes, 64u << 20);
	assert_int_equal(c.compact_retain_entries, 1000);
	assert_int_equal(c.feed_entries, 100000);
	assert_true(c.plaintext);
	assert_int_equal(c.fs_max_file_size_mb, 64);
	assert_int_equal(c.fs_max_total_size_mb, 10240);
	assert_int_equal(c.fs_max_inodes, 1000000);
	assert_int_equal(c.fs_write_buffer_mb, 4);
	assert_int_equal(c.storage_memory_mb, 16);
}

static void test_config_example_file_parses(void **state)
{
	const char *path = getenv("OMNIFS_EXAMPLE_CONF");
	assert_non_null(path);
	struct cfg c;
	char err[CFG_ERR_MAX];
	int rc = cfg_load(&c, path, err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c.n_peers, 3);
	assert_false(c.plaintext); /* what gets copied from it is CURVE */
	assert_string_equal(c.secret_key_file, "/etc/omnifs/keys/node1.key");
}

static void test_config_missing_file(void **state)
{
	struct cfg c;
	char err[CFG_ERR_MAX];
	assert_int_equal(cfg_load(&c, "/nonexistent/omnifs.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/omnifs.conf: cannot read the config file"));
}

/* A base that parses, into which each case splices one bad line. */
#define BASE_NODE  "[node]\nid = 1\ncluster = c\ndata_dir = /d\n"
#define BASE_PEERS "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:7102\n3 = 127.0.0.1:7103\n"
#define PLAIN	   "[security]\nplaintext = true\n"

struct bad_case {
	const char *text;
	const char *expect; /* substring of the error */
};

static const struct bad_case bad_cases[] = {
	/* duplicate node id */
	{BASE_NODE "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:7102\n2 = 127.0.0.1:7103\n" PLAIN,
	 "x.conf:8: [peers] node id 2 is listed twice"},
	/* own id not among peers */
	{"[node]\nid = 9\ncluster = c\ndata_dir = /d\n" BASE_PEERS PLAIN,
	 "x.conf: [node] id = 9 is not among [peers]"},
	/* bad address */
	{BASE_NODE "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1\n" PLAIN,
	 "x.conf:7: [peers] 2 = '127.0.0.1': expected host:port"},
	{BASE_NODE "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:99999\n" PLAIN,
	 "x.conf:7: [peers] 2 = '127.0.0.1:99999': expected host:port"},
	/* same address twice */
	{BASE_NODE "[peers]\n1 = 127.0.0.1:7101\n2 = 127.0.0.1:7101\n" PLAIN,
	 "x.conf:7: [peers] 2 = '127.0.0.1:7101': the same address as node 1"},
	/* non-numeric values */
	{"[node]\nid = one\ncluster = c\ndata_dir = /d\n" BASE_PEERS PLAIN,
	 "x.conf:2: [node] id = 'one': expected a node id from 1 to 65535"},
	{BASE_NODE BASE_PEERS PLAIN "[timing]\ntick_ms = 10ms\n",
	 "x.conf:12: [timing] tick_ms = '10ms': expected milliseconds, 1 to 1000"},
	{BASE_NODE BASE_PEERS PLAIN "[consensus]\nbatch_size = -3\n",
	 "x.conf:12: [consensus] batch_size = '-3': expected a number of entries"},
	{BASE_NODE BASE_PEERS PLAIN "[timing]\nelection_timeout_ms = 0\n",
	 "[timing] election_timeout_ms = '0': expected milliseconds, 1 to 600000"},
	/* missing required keys */
	{"[node]\nid = 1\ncluster = c\n" BASE_PEERS PLAIN, "x.conf: [node] data_dir is missing"},
	{"[node]\ncluster = c\ndata_dir = /d\n" BASE_PEERS PLAIN, "x.conf: [node] id is missing"},
	{"[node]\nid = 1\ndata_dir = /d\n" BASE_PEERS PLAIN, "x.conf: [node] cluster is missing"},
	{BASE_NODE BASE_PEERS, "[security] secret_key_file is missing"},
	{BASE_NODE BASE_PEERS "[security]\nsecret_key_file = /k\n",
	 "[peer_keys] node 2 has no public key"},
	/* unknown section and key */
	{BASE_NODE BASE_PEERS PLAIN "[cache]\nsize = 1\n", "x.conf:12: unknown section [cache]"},
	{BASE_NODE "mount_point = /m\n" BASE_PEERS PLAIN,
	 "x.conf:5: unknown key 'mount_point' in [node]"},
	/* key outside any section */
	{"id = 1\n" BASE_NODE BASE_PEERS PLAIN, "x.conf:1: 'id' is outside any section"},
	/* syntax error */
	{BASE_NODE "this is not a key\n" BASE_PEERS PLAIN, "x.conf:5: syntax error"},
	/* a key set twice */
	{BASE_NODE "id = 2\n" BASE_PEERS PLAIN, "x.conf:5: [node] id is set twice"},
	/* a single-node cluster */
	{BASE_NODE "[peers]\n1 = 127.0.0.1:7101\n" PLAIN, "[peers] lists 1 node(s)"},
	/* relative path */
	{"[node]\nid = 1\ncluster = c\ndata_dir = var/lib\n" BASE_PEERS PLAIN,
	 "x.conf:4: [node] data_dir = 'var/lib': expected an absolute path"},
	/* bad cluster name */
	{"[node]\nid = 1\ncluster = my cluster\ndata_dir = /d\n" BASE_PEERS PLAIN,
	 "x.conf:3: [node] cluster = 'my cluster': expected a cluster name"},
	/* quorums that do not intersect */
	{BASE_NODE BASE_PEERS PLAIN "[consensus]\nread_quorum = 2\nwrite_quorum = 1\n",
	 "read_quorum = 2, write_quorum = 1 do not fit 3 nodes"},
	{BASE_NODE BASE_PEERS PLAIN "[consensus]\nread_quorum = 2\n",
	 "read_quorum and write_quorum must be set together"},
	/* a timeout shorter than the tick */
	{BASE_NODE BASE_PEERS PLAIN "[timing]\ntick_ms = 50\nflush_timeout_ms = 10\n",
	 "must each be at least tick_ms = 50"},
	/* compaction that would keep more than it compacts */
	{BASE_NODE BASE_PEERS PLAIN "[compaction]\nmax_entries = 500\nretain_entries = 500\n",
	 "[compaction] retain_entries = 500 must be below max_entries = 500"},
	{BASE_NODE BASE_PEERS PLAIN "[compaction]\nmax_bytes_mb = 0\n",
	 "x.conf:12: [compaction] max_bytes_mb = '0': expected mebibytes"},
	/* bad key, key for an unknown peer */
	{BASE_NODE BASE_PEERS PLAIN "[peer_keys]\n2 = short\n",
	 "x.conf:12: [peer_keys] 2: expected a 40-character Z85 public key"},
	{BASE_NODE BASE_PEERS PLAIN "[peer_keys]\n7 = " KEY_A "\n",
	 "x.conf:12: [peer_keys] 7: no such node in [peers]"},
	/* bad boolean, bad log level, bad peer id key */
	{BASE_NODE BASE_PEERS "[security]\nplaintext = maybe\n",
	 "x.conf:10: [security] plaintext = 'maybe': expected true or false"},
	{BASE_NODE "join = 1\n" BASE_PEERS PLAIN,
	 "x.conf:5: [node] join = '1': expected true or false"},
	{BASE_NODE "join = false\njoin = true\n" BASE_PEERS PLAIN,
	 "x.conf:6: [node] join is set twice"},
	{BASE_NODE "log_level = loud\n" BASE_PEERS PLAIN,
	 "x.conf:5: [node] log_level = 'loud': expected one of error"},
	{BASE_NODE "[peers]\nzero = 127.0.0.1:7101\n" PLAIN,
	 "x.conf:6: [peers] 'zero': expected a node id from 1 to 65535 as the key"},
	/* filesystem limits out of range */
	{BASE_NODE BASE_PEERS PLAIN "[fs]\nmax_file_size_mb = 0\n",
	 "x.conf:12: [fs] max_file_size_mb = '0': expected MiB, 1 to 1048576"},
	{BASE_NODE BASE_PEERS PLAIN "[fs]\nmax_inodes = 3\n",
	 "x.conf:12: [fs] max_inodes = '3': expected a number of inodes"},
	{BASE_NODE BASE_PEERS PLAIN "[fs]\nwrite_buffer_mb = 64\n",
	 "x.conf:12: [fs] write_buffer_mb = '64': expected MiB, 1 to 32"},
	/* [metrics] listen is an address like the others, off the peers' port */
	{BASE_NODE BASE_PEERS PLAIN "[metrics]\nlisten = 127.0.0.1\n",
	 "x.conf:12: [metrics] listen = '127.0.0.1': expected host:port, e.g. 127.0.0.1:9465"},
	{BASE_NODE BASE_PEERS PLAIN "[metrics]\nlisten = 127.0.0.1:99999\n",
	 "x.conf:12: [metrics] listen = '127.0.0.1:99999': expected host:port"},
	{BASE_NODE BASE_PEERS PLAIN "[metrics]\nlisten = 127.0.0.1:7101\n",
	 "x.conf: [metrics] listen = 127.0.0.1:7101 is [node] listen too"},
	{BASE_NODE BASE_PEERS PLAIN "[storage]\nmemory_mb = 4\n",
	 "x.conf:12: [storage] memory_mb = '4': expected MiB, 8 to 1048576"},
	/* plaintext listens on loopback only unless plaintext_allow_network says otherwise */
	{BASE_NODE "listen = 0.0.0.0:7101\n" BASE_PEERS PLAIN,
	 "x.conf: [node] listen = 0.0.0.0:7101 with [security] plaintext = true: plaintext links "
	 "are neither encrypted nor authenticated"},
	{BASE_NODE "[peers]\n1 = 10.0.0.1:7101\n2 = 10.0.0.2:7101\n" PLAIN,
	 "set [security] plaintext_allow_network = true"},
	{BASE_NODE "[peers]\n1 = node1.example.org:7101\n2 = 127.0.0.1:7102\n" PLAIN,
	 "x.conf: [node] listen = node1.example.org:7101 with [security] plaintext = true"},
	{BASE_NODE "listen = [::]:7101\n" BASE_PEERS PLAIN, "listen = [::]:7101 with [security]"},
	{BASE_NODE "listen = 0.0.0.0:7101\n" BASE_PEERS PLAIN "plaintext_allow_network = maybe\n",
	 "x.conf:12: [security] plaintext_allow_network = 'maybe': expected true or false"},
	/* a '#' after a path is no comment to libinih: refused, not taken as the path */
	{"[node]\nid = 1\ncluster = c\ndata_dir = /var/lib/omnifs # the data\n" BASE_PEERS PLAIN,
	 "x.conf:4: [node] data_dir = '/var/lib/omnifs # the data': a path may not contain "
	 "whitespace or '#'"},
	{BASE_NODE "mountpoint = /srv/omni#fs\n" BASE_PEERS PLAIN,
	 "x.conf:5: [node] mountpoint = '/srv/omni#fs': a path may not contain"},
	{BASE_NODE "control_socket = /run/my omnifs.sock\n" BASE_PEERS PLAIN,
	 "x.conf:5: [node] control_socket = '/run/my omnifs.sock': a path may not contain"},
	{BASE_NODE "control_socket = /run/x\t.sock\n" BASE_PEERS PLAIN,
	 "x.conf:5: [node] control_socket = '/run/x\t.sock': a path may not contain"},
	{BASE_NODE BASE_PEERS "[security]\nsecret_key_file = /etc/omnifs/k # node 1\n",
	 "x.conf:10: [security] secret_key_file = '/etc/omnifs/k # node 1': a path may not"},
};

static void test_config_rejects_malformed_files(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct cfg c;
		char err[CFG_ERR_MAX];
		int rc = cfg_parse_string(&c, bad_cases[i].text, "x.conf", err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("case %zu: accepted, expected error '%s'", i, bad_cases[i].expect);
		if (!strstr(err, bad_cases[i].expect))
			fail_msg("case %zu: error '%s' lacks '%s'", i, err, bad_cases[i].expect);
	}
}

/* " ;" starts a comment after a value; '#' and ';' start whole-line ones. */
static void test_config_comments(void **state)
{
	static const char text[] = "# a comment\n; another\n  # indented\n"
				   "[node]\nid = 1 ; the first node\ncluster = c\n"
				   "data_dir = /var/lib/omnifs ; the data\n" BASE_PEERS PLAIN;
	struct cfg c;
	char err[CFG_ERR_MAX];
	int rc = cfg_parse_string(&c, text, "x.conf", err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_int_equal(c.node_id, 1);
	assert_string_equal(c.data_dir, "/var/lib/omnifs");
}

/* libinih reads lines of at most 197 characters (as Debian builds it) and
 * parses the rest of a longer one as a line of its own: such a line is
 * refused by its number, from a string and from a file, whatever its end. */
static void test_config_rejects_long_lines(void **state)
{
	static const size_t lens[] = {198, 199, 200, 201, 400, 5000};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int crlf = 0; crlf < 2; crlf++) {
			/* "data_dir = " is 11 characters of the line's lens[i] */
			size_t dir_len = lens[i] - 11;
			char *dir = malloc(dir_len + 1);
			memset(dir, 'a', dir_len);
			dir[0] = '/';
			dir[dir_len] = '\0';
			char *text;
			assert_true(
				asprintf(&text,
					 "[node]\nid = 1\ncluster = c\ndata_dir = %s%s\n" BASE_PEERS
						 PLAIN,
					 dir, crlf ? "\r" : "") > 0);
			struct cfg c;
			char err[CFG_ERR_MAX];
			assert_int_equal(cfg_parse_string(&c, text, "x.conf", err, sizeof(err)),
					 -EINVAL);
			if (!strstr(err, "x.conf:4: the line is longer than 197 characters"))
				fail_msg("%zu: %s", lens[i], err);

			char path[] = "/tmp/omnifs-config-XXXXXX";
			int fd = mkstemp(path);
			assert_true(fd >= 0);
			FILE *f = fdopen(fd, "w");
			assert_non_null(f);
			fputs(text, f);
			fclose(f);
			assert_int_equal(cfg_load(&c, path, err, sizeof(err)), -EINVAL);
			unlink(path);
			if (!strstr(err, ":4: the line is longer than 197 characters"))
				fail_msg("file, %zu: %s", lens[i], err);
			free(text);
			free(dir);
		}
	}

	/* the longest line it takes: 197 characters, ended by \n or \r\n */
	char dir[187];
	memset(dir, 'b', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	for (int crlf = 0; crlf < 2; crlf++) {
		char *text;
		assert_true(
			asprintf(&text,
				 "[node]\nid = 1\ncluster = c\ndata_dir = %s%s\n" BASE_PEERS PLAIN,
				 dir, crlf ? "\r" : "") > 0);
		struct cfg c;
		char err[CFG_ERR_MAX];
		int rc = cfg_parse_string(&c, text, "x.conf", err, sizeof(err));
		if (rc != 0)
			fail_msg("%s", err);
		assert_string_equal(c.data_dir, dir);
		free(text);
	}
}

/* A plaintext node may listen beyond loopback once that is named explicitly;
 * CURVE needs no such setting. */
static void test_config_plaintext_network(void **state)
{
	static const char allowed[] = BASE_NODE "listen = 0.0.0.0:7101\n" BASE_PEERS PLAIN
						"plaintext_allow_network = true\n";
	static const char loopback[] = BASE_NODE "listen = 127.0.0.9:7101\n" BASE_PEERS PLAIN;
	struct cfg c;
	char err[CFG_ERR_MAX];
	int rc = cfg_parse_string(&c, allowed, "x.conf", err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_true(c.plaintext);
	assert_true(c.plaintext_allow_network);
	assert_string_equal(c.listen, "0.0.0.0:7101");
	rc = cfg_parse_string(&c, loopback, "x.conf", err, sizeof(err));
	if (rc != 0)
		fail_msg("%s", err);
	assert_false(c.plaintext_allow_network);
	assert_int_equal(cfg_parse_string(&c, good, "good.conf", err, sizeof(err)), 0);
	assert_false(c.plaintext); /* CURVE on 0.0.0.0 */

	static const char *const local[] = {"127.0.0.1:1", "127.255.0.3:7100", "[::1]:7100",
					    "localhost:7100"};
	static const char *const remote[] = {"0.0.0.0:7100",	      "10.0.0.1:7100",
					     "128.0.0.1:7100",	      "[::]:7100",
					     "127.0.0.1.nip.io:7100", "localhost.example:7100",
					     "127.0.0.256:7100",      "[::ffff:127.0.0.1]:7100",
					     "127.0.0:7100",	      "127.0.0.1"};
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (!cfg_address_is_loopback(local[i]))
			fail_msg("%s is loopback", local[i]);
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		if (cfg_address_is_loopback(remote[i]))
			fail_msg("%s is not loopback", remote[i]);
}

static void test_config_address_validation(void **state)
{
	assert_true(cfg_address_is_valid("127.0.0.1:1"));
	assert_true(cfg_address_is_valid("[fe80::1]:65535"));
	assert_true(cfg_address_is_valid("host-1.example:7100"));
	assert_false(cfg_address_is_valid(":7100"));
	assert_false(cfg_address_is_valid("host:0"));
	assert_false(cfg_address_is_valid("host:"));
	assert_false(cfg_address_is_valid("host:7a"));
	assert_false(cfg_address_is_valid("[]:7100"));
	assert_false(cfg_address_is_valid("ho st:7100"));
	assert_false(cfg_address_is_valid("tcp://host:7100"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_reads_every_field),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_example_file_parses),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_rejects_malformed_files),
		cmocka_unit_test(test_config_comments),
		cmocka_unit_test(test_config_rejects_long_lines),
		cmocka_unit_test(test_config_plaintext_network),
		cmocka_unit_test(test_config_address_validation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
