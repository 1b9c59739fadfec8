/*
 * omnifsctl: the admin tool. Talks to the local omnifsd over its control
 * socket (fs/base/ctl.h); the daemon does the work, this program only frames the
 * arguments and prints the answer.
 *
 * Exit status: 0 success, 1 the daemon refused or failed the command,
 * 3 the daemon could not be reached, 4 a `kv put` or `kv del` with
 * --if-version or --if-absent found the key at another version (nothing
 * written),
 * 5 `watch` or `kv watch` must go on from an index the change feed no
 * longer holds (read afresh, then watch --since the index it names);
 * `health` exits 10 to 13 for what is wrong (health.h); 64 (EX_USAGE) bad
 * usage, also when the daemon refuses the arguments (EINVAL).
 * `watch` and `kv watch` live in watch.c, `health` in health.c, `kv get`,
 * `kv put` and `kv del` in kv_cli.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "ctl.h"
#include "health.h"
#include "history.h"
#include "keygen.h"
#include "kv_cli.h"
#include "snapshot_cli.h"
#include "watch.h"
#include "omnifsctl_lock.h"

#define DEFAULT_CONFIG "/etc/omnifs/omnifs.conf"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: omnifsctl [-c CONFIG | -s SOCKET] [-t SECONDS] COMMAND [ARGS]\n"
		"       omnifsctl --help | --version\n"
		"\n"
		"Commands:\n"
		"  status [--json]          role, leader and route to it, quorum, lag, peers\n"
		"  health [--json] [--max-lag-ms MS]\n"
		"                           one verdict for monitoring: exit 0 when this node\n"
		"                           is a member with quorum, caught up and mounted;\n"
		"                           3 not running, 10 no quorum, 11 lagging (more\n"
		"                           than MS, default 2000, behind), 12 not a member\n"
		"                           (removed, not added yet), 13 not mounted\n"
		"  barrier                  wait until this node has applied everything the\n"
		"                           leader had decided and its mount shows it (a\n"
		"                           fresh read follows); fails with ETIMEDOUT after -t\n"
		"  kv get [--version|--json] KEY\n"
		"                           print KEY's value, as it is (--version: first its\n"
		"                           version, the applied index that showed it, on a\n"
		"                           line; --json: {\"key\", \"version\", \"value\"} with\n"
		"                           the value in base64)\n"
		"  kv put [--if-version V|--if-absent] [--version]\n"
		"         KEY VALUE|-, or [...] --stdin|--file FILE KEY\n"
		"                           set KEY ('-' or --stdin: the value from standard\n"
		"                           input, --file: from FILE; any bytes, at most 1 MiB);\n"
		"                           --if-version: only if KEY is at version V (0 or\n"
		"                           --if-absent: only if absent), else exit status 4;\n"
		"                           --version: print the version written\n"
		"  kv del [--if-version V] KEY\n"
		"                           delete KEY (only if at version V)\n"
		"  kv list [PREFIX]         list keys, one per line\n"
		"  kv watch [OPTIONS] [PREFIX...]\n"
		"                           stream changes of keys starting with PREFIX\n"
		"                           (default: every key); options as watch\n"
		"  watch [-r] [--since INDEX] [--json] [-q] [--exec CMD [--debounce MS]] PATH...\n"
		"                           stream every change under PATH (a file, or a\n"
		"                           directory and its entries; -r: everything below):\n"
		"                           index, time, node, uid, kind, path [new path];\n"
		"                           --since: from that log index on (else from now),\n"
		"                           resume with the last index shown + 1; --json: one\n"
		"                           JSON object a line; -q: print nothing; --exec: run\n"
		"                           CMD (sh -c) after each burst of changes, once no\n"
		"                           change came for MS ms (default 200). Rides out\n"
		"                           daemon restarts; exit status 5 if INDEX is no\n"
		"                           longer in the feed\n"
		"  history [--json] PATH    the kept versions of PATH (a file under the\n"
		"                           mount, or one deleted): index, time, node and\n"
		"                           uid that wrote it, size; the files themselves are\n"
		"                           MOUNT/.omnifs/history/PATH/INDEX\n"
		"  restore PATH [--at INDEX]\n"
		"                           write a kept version (default: the newest) back\n"
		"                           over PATH, or recreate it if deleted; a change\n"
		"                           like any other, kept in the history in turn\n"
		"  digest                   the applied index and a SHA-256 of the replicated\n"
		"                           state (equal on every node at the same index)\n"
		"  metrics                  this node's metrics in the Prometheus text format\n"
		"                           (as MOUNT/.omnifs/metrics and [metrics] listen)\n");
	/* Two strings: C compilers need to support only 4095 bytes in one. */
	fprintf(f,
		"  member list [--json]     the members of the current configuration\n"
		"  member add [--learner] ID HOST:PORT [KEY]\n"
		"                           add node ID (KEY: its Z85 public key); a learner\n"
		"                           applies, mounts and writes, but never votes\n"
		"  member promote ID        make learner ID a voter\n"
		"  member demote ID         make voter ID a learner\n"
		"  member remove ID         remove node ID\n"
		"  member replace OLD ID HOST:PORT [KEY]\n"
		"                           replace node OLD (e.g. dead) by a new node ID\n"
		"  member rekey ID KEY      node ID's new public key (the old one is dropped)\n"
		"  snapshot save FILE       write a snapshot of the whole replicated state\n"
		"                           (written by the daemon, on its machine)\n"
		"  snapshot verify FILE     check a snapshot file offline, print its header\n"
		"  log-level [LEVEL]        show or set the daemon's log level (error,\n"
		"                           warning, notice, info, debug) until it restarts\n"
		"                           or gets SIGHUP (which reloads the config's)\n"
		"  debug fault PEER MODE    drop traffic with PEER: in, out, both or none\n"
		"  lock NAME [--wait SECONDS] -- CMD [ARGS...]\n"
		"                           run CMD holding the cluster-wide lock NAME (waits\n"
		"                           for it, at most SECONDS); exits with CMD's status,\n"
		"                           1 if the lock was not taken\n"
		"  locks [--json]           holders of cluster-wide locks (flock, fcntl, named)\n"
		"                           and this node's waiters: node, pid, age\n"
		"  keygen [-d DIR] [-f] NAME\n"
		"                           write a CURVE keypair DIR/NAME.key and\n"
		"                           DIR/NAME.pub (as omnifs-keygen; no daemon needed)\n"
		"\n"
		"Options:\n"
		"  -c, --config CONFIG    the node's config file (default " DEFAULT_CONFIG ")\n"
		"  -s, --socket SOCKET    the control socket (default: from the config)\n"
		"  -t, --timeout SECONDS  how long to wait for an answer, 1 to 86400\n"
		"                         (default 30)\n"
		"  -h, --help             print this help and exit\n"
		"  -V, --version          print the version and exit\n"
		"\n"
		"Exit status: 0 done, 1 the daemon refused or failed the command, 3 the\n"
		"daemon could not be reached, 4 version mismatch (kv --if-version), 5 the\n"
		"feed no longer holds --since, 10-13 health, 64 bad usage.\n");
}

/* `kv list` answers NUL-separated keys: print one per line. */
static void print_body(const char *cmd, const char *body, size_t len)
{
	if (strcmp(cmd, "kv-list") == 0) {
		for (size_t i = 0; i < len; i++)
			putchar(body[i] == '\0' ? '\n' : body[i]);
		return;
	}
	fwrite(body, 1, len, stdout);
}

int main(int argc, char **argv)
{
	const char *config = NULL, *sock = NULL;
	unsigned timeout_s = 30;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},  {"socket", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},	   {NULL, 0, NULL, 0},
	};
	int opt;
	uint64_t n;
	while ((opt = getopt_long(argc, argv, "+c:s:t:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 't':
			if (!cli_parse_u64(optarg, 1, 86400, &n)) {
				fprintf(stderr,
					"omnifsctl: -t takes a number of seconds, 1 to 86400\n");
				return CLI_EXIT_USAGE;
			}
			timeout_s = (unsigned)n;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("omnifsctl %s\n", OMNIFS_VERSION);
			return 0;
		default:
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "keygen") == 0) {
		optind++;
		return keygen_main(argc - optind + 1, argv + optind - 1);
	}

	if (strcmp(argv[optind], "snapshot") == 0 && optind + 1 < argc &&
	    strcmp(argv[optind + 1], "verify") == 0)
		return snapshot_main(NULL, argc - optind - 1, argv + optind + 1);

	static struct cfg cfg;
	char err[CFG_ERR_MAX + 256];
	if (!sock || config) {
		if (cfg_load(&cfg, config ? config : DEFAULT_CONFIG, err, sizeof(err)) != 0) {
			fprintf(stderr, "omnifsctl: %s\n(use -c CONFIG or -s SOCKET)\n", err);
			return 3;
		}
		if (!sock)
			sock = cfg.control_socket;
	}
	/* watch: the mountpoint maps host paths to paths in the tree. */
	if (strcmp(argv[optind], "watch") == 0)
		return watch_main(sock, cfg.mountpoint, false, argc - optind - 1,
				  argv + optind + 1);
	if (strcmp(argv[optind], "history") == 0 || strcmp(argv[optind], "restore") == 0)
		return history_main(cfg.mountpoint, strcmp(argv[optind], "restore") == 0,
				    argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "kv") == 0 && optind + 1 < argc &&
	    strcmp(argv[optind + 1], "watch") == 0)
		return watch_main(sock, NULL, true, argc - optind - 2, argv + optind + 2);
	if (strcmp(argv[optind], "kv") == 0 && optind + 1 < argc &&
	    strcmp(argv[optind + 1], "list") != 0)
		return kv_cli_main(sock, timeout_s * 1000, argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "health") == 0)
		return health_main(sock, timeout_s * 1000, argc - optind, argv + optind);

	if (strcmp(argv[optind], "lock") == 0)
		return lock_main(sock, argc - optind, argv + optind);
	if (strcmp(argv[optind], "snapshot") == 0)
		return snapshot_main(sock, argc - optind - 1, argv + optind + 1);

	/* The wire command: "kv get" becomes "kv-get", other words pass as they are. */
	char *args[CTL_MAX_ARGS];
	char cmd[32];
	int nargs = 0;
	char *cmd_word = argv[optind];
	int rest = optind + 1;
	if (strcmp(cmd_word, "kv") == 0 || strcmp(cmd_word, "debug") == 0 ||
	    strcmp(cmd_word, "member") == 0) {
		if (rest >= argc) {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
		snprintf(cmd, sizeof(cmd), "%s-%s", cmd_word, argv[rest++]);
	} else {
		snprintf(cmd, sizeof(cmd), "%s", cmd_word);
	}
	args[nargs++] = cmd;
	for (int i = rest; i < argc; i++) {
		if (nargs == CTL_MAX_ARGS) {
			fprintf(stderr, "omnifsctl: too many arguments\n");
			return CLI_EXIT_USAGE;
		}
		args[nargs++] = argv[i];
	}

	/* The daemon's barrier keeps to -t itself and says why it did not
	 * finish: give its answer a moment to arrive after that. */
	char barrier_ms[16];
	uint32_t wait_ms = timeout_s * 1000;
	bool barrier = strcmp(cmd, "barrier") == 0 && nargs == 1;
	if (barrier) {
		snprintf(barrier_ms, sizeof(barrier_ms), "%u", timeout_s * 1000);
		args[nargs++] = barrier_ms;
		wait_ms += 2000;
	}

	uint32_t status;
	char *body;
	size_t body_len;
	int rc = ctl_call(sock, nargs, args, wait_ms, &status, &body, &body_len, err, sizeof(err));
	if (rc == -ETIMEDOUT && barrier) {
		fprintf(stderr, "omnifsctl: barrier: %s: no answer within %u s\n",
			strerror(ETIMEDOUT), timeout_s);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "omnifsctl: %s\n", err);
		return 3;
	}
	if (status != 0) {
		fprintf(stderr, "omnifsctl: %s: %s%s%s", cmd, strerror((int)status),
			body_len ? ": " : "\n", body_len ? body : "");
		if (body_len && body[body_len - 1] != '\n')
			fputc('\n', stderr);
		free(body);
		return status == EINVAL ? CLI_EXIT_USAGE : 1;
	}
	print_body(cmd, body, body_len);
	free(body);
	return 0;
}
