/*
 * omnifs-floor: the floor under any replicated write on this machine, what
 * three processes on loopback can commit with no consensus logic at all.
 * The leader takes one batch per round from its closed-loop clients (each
 * client has one entry outstanding, so a round carries CLIENTS entries),
 * sends it to both followers over ZeroMQ, appends it to its own file and
 * fdatasyncs; each follower appends, fdatasyncs and acknowledges. A batch
 * is committed once a majority has it on disk: the leader and the first
 * follower to answer. Prints the result line of omnifs-kvload (entries as
 * "puts"; every entry's latency is its round's), so tools/bench-kv.sh
 * prints it beside omnifs and etcd.
 *
 *   omnifs-floor [-c CLIENTS] [-b BYTES] [-d SECONDS] [-D DIR]
 *
 * Defaults: 1 client, 256 bytes, 5 s, files in the current directory
 * (floor.0, floor.1, floor.2, removed at the end). Put DIR on the disk the
 * compared systems use. No CURVE, no framing beyond a sequence number, no
 * retries: anything that fails ends the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "loadstats.h"

static void die(const char *what)
{
	fprintf(stderr, "omnifs-floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void append_synced(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0)
			die("write");
		p += w;
		len -= (size_t)w;
	}
	if (fdatasync(fd))
		die("fdatasync");
}

/* A follower: bind, tell the leader where (through the pipe), then append,
 * sync and acknowledge each batch until an empty message. */
static void follower(const char *path, int pipe_w)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_PAIR);
	if (!ctx || !s || zmq_bind(s, "tcp://127.0.0.1:*"))
		die("follower: bind");
	char ep[256];
	size_t ep_len = sizeof(ep);
	if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &ep_len))
		die("follower: endpoint");
	if (write(pipe_w, ep, ep_len) != (ssize_t)ep_len)
		die("follower: pipe");
	close(pipe_w);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path);
	zmq_msg_t m;
	zmq_msg_init(&m);
	for (;;) {
		if (zmq_msg_recv(&m, s, 0) < 0)
			die("follower: recv");
		size_t len = zmq_msg_size(&m);
		if (len < 8)
			break;
		append_synced(fd, zmq_msg_data(&m), len);
		if (zmq_send(s, zmq_msg_data(&m), 8, 0) != 8) /* the sequence number */
			die("follower: send");
	}
	zmq_msg_close(&m);
	close(fd);
	unlink(path);
	zmq_close(s);
	zmq_ctx_term(ctx);
	exit(0);
}

int main(int argc, char **argv)
{
	int clients = 1, bytes = 256, opt;
	double secs = 5;
	const char *dir = ".";
	while ((opt = getopt(argc, argv, "c:b:d:D:")) != -1) {
		switch (opt) {
		case 'c':
			clients = atoi(optarg);
			break;
		case 'b':
			bytes = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 'D':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-c CLIENTS] [-b BYTES] [-d SECONDS] [-D DIR]\n",
				argv[0]);
			return 2;
		}
	}
	if (clients < 1 || bytes < 1 || secs <= 0)
		return 2;
	char path[3][PATH_MAX];
	pid_t pid[2];
	char ep[2][256];
	for (int i = 0; i < 3; i++)
		snprintf(path[i], sizeof(path[i]), "%s/floor.%d", dir, i);
	for (int f = 0; f < 2; f++) {
		int p[2];
		if (pipe(p))
			die("pipe");
		pid[f] = fork();
		if (pid[f] < 0)
			die("fork");
		if (pid[f] == 0) {
			close(p[0]);
			follower(path[f + 1], p[1]);
		}
		close(p[1]);
		ssize_t r = read(p[0], ep[f], sizeof(ep[f]) - 1);
		if (r <= 0)
			die("follower endpoint");
		ep[f][r] = '\0';
		close(p[0]);
	}

	void *ctx = zmq_ctx_new();
	void *s[2];
	for (int f = 0; f < 2; f++) {
		s[f] = zmq_socket(ctx, ZMQ_PAIR);
		if (!s[f] || zmq_connect(s[f], ep[f]))
			die("connect");
	}
	int fd = open(path[0], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path[0]);

	/* One round's batch: the sequence number, then each client's entry. */
	size_t batch_len = 8 + (size_t)clients * (size_t)bytes;
	uint8_t *batch = malloc(batch_len);
	size_t lat_cap = 1 << 16;
	uint64_t n = 0;
	double *lat = malloc(lat_cap * sizeof(*lat));
	if (!batch || !lat)
		die("malloc");
	memset(batch, 'x', batch_len);
	zmq_pollitem_t items[2] = {{s[0], 0, ZMQ_POLLIN, 0}, {s[1], 0, ZMQ_POLLIN, 0}};
	double start = load_now_s(), end = start + secs;
	uint64_t seq = 0;
	while (load_now_s() < end) {
		double t0 = load_now_s();
		seq++;
		memcpy(batch, &seq, 8);
		for (int f = 0; f < 2; f++)
			if (zmq_send(s[f], batch, batch_len, 0) != (int)batch_len)
				die("send");
		append_synced(fd, batch, batch_len);
		/* The first follower to have this round on disk makes a majority;
		 * acknowledgements of older rounds from the slower one are stale. */
		for (bool done = false; !done;) {
			if (zmq_poll(items, 2, -1) < 0)
				die("poll");
			for (int f = 0; f < 2; f++) {
				uint64_t got;
				if (!(items[f].revents & ZMQ_POLLIN))
					continue;
				if (zmq_recv(s[f], &got, 8, 0) != 8)
					die("recv");
				if (got == seq)
					done = true;
			}
		}
		double dt = load_now_s() - t0;
		for (int c = 0; c < clients; c++) {
			if (n == lat_cap) {
				lat_cap *= 2;
				lat = realloc(lat, lat_cap * sizeof(*lat));
				if (!lat)
					die("realloc");
			}
			lat[n++] = dt;
		}
	}
	double elapsed = load_now_s() - start;
	for (int f = 0; f < 2; f++) {
		zmq_send(s[f], "", 0, 0);
		waitpid(pid[f], NULL, 0);
		zmq_close(s[f]);
	}
	zmq_ctx_term(ctx);
	close(fd);
	unlink(path[0]);
	printf("%" PRIu64 " rounds of %d: ", seq, clients);
	fflush(stdout);
	load_report(n, 0, 0, 0, elapsed, lat, n);
	free(lat);
	free(batch);
	return 0;
}
