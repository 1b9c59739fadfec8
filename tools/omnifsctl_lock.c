/*
 * omnifsctl lock: like flock(1), `etcdctl lock` or `consul lock`, runs a
 * command while holding a lock, here a named lock of the whole cluster.
 *
 * The daemon takes the lock for this process's control connection and
 * answers once it holds it; the connection then stays open, idle, while
 * the command runs. Closing it releases the lock: when the command ends and
 * this program exits, or when this program dies (even by SIGKILL; the
 * kernel closes the socket). The connection is close-on-exec, so the command
 * does not keep it: the lock ends with this program, not with the command's
 * children. If the node's lease expires meanwhile (it lost the majority for
 * the lease), the lock is lost without the command being told; `omnifsctl
 * status` says so.
 *
 * Exit status: the command's (128 + N if signal N ended it); 1 if the lock
 * was not taken (held elsewhere past --wait, or the cluster could not
 * decide); 2 bad usage; 3 the daemon could not be reached; 126/127 the
 * command could not be run.
 */
#include "omnifsctl_lock.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

static int lock_usage(void)
{
	fprintf(stderr, "usage: omnifsctl lock NAME [--wait SECONDS] -- CMD [ARGS...]\n");
	return CLI_EXIT_USAGE;
}

int lock_main(const char *sock, int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '\0' || strcmp(argv[1], "--") == 0)
		return lock_usage();
	const char *name = argv[1];
	long long wait_ms = -1; /* for ever */
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			double s = strtod(argv[++i], &end);
			if (errno || *end || end == argv[i] || s < 0 || s > 86400.0 * 366) {
				fprintf(stderr, "omnifsctl: lock: --wait takes seconds, 0 to "
						"31622400\n");
				return CLI_EXIT_USAGE;
			}
			wait_ms = (long long)(s * 1000.0);
		} else {
			return lock_usage();
		}
	}
	if (i + 1 >= argc)
		return lock_usage();
	char **cmd = argv + i + 1;

	char err[512];
	int fd = ctl_connect(sock, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "omnifsctl: %s\n", err);
		return 3;
	}
	char wait_s[24], pid_s[24];
	snprintf(wait_s, sizeof(wait_s), "%lld", wait_ms);
	snprintf(pid_s, sizeof(pid_s), "%ld", (long)getpid());
	char *req[] = {"lock", (char *)name, wait_s, pid_s};
	/* The daemon keeps to the wait itself; give its answer time to come. */
	uint32_t answer_ms = wait_ms < 0 || wait_ms > UINT32_MAX - 30000
				     ? UINT32_MAX
				     : (uint32_t)wait_ms + 30000;
	uint32_t status;
	char *body;
	size_t body_len;
	int rc = ctl_request(fd, 4, req, answer_ms, &status, &body, &body_len, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "omnifsctl: lock: %s\n", err);
		close(fd);
		return 3;
	}
	if (status != 0) {
		fprintf(stderr, "omnifsctl: lock: %s: %s", strerror((int)status),
			body_len ? body : "\n");
		free(body);
		close(fd);
		return status == EINVAL ? 2 : 1;
	}
	free(body);

	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "omnifsctl: lock: fork: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	if (child == 0) {
		execvp(cmd[0], cmd);
		int e = errno;
		fprintf(stderr, "omnifsctl: lock: %s: %s\n", cmd[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	int ws;
	while (waitpid(child, &ws, 0) < 0) {
		if (errno != EINTR) {
			ws = 1 << 8;
			break;
		}
	}
	close(fd); /* releases the lock */
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 1;
}
