/*
 * omnifs-kvload: a load generator for the replicated KV, through omnifsd's
 * control socket (the same path `omnifsctl kv put` takes).
 *
 *   omnifs-kvload -s SOCKET[,SOCKET...] [-n COUNT] [-c CLIENTS] [-b VALUE_BYTES]
 *                 [-p PREFIX] [-l LEDGER] [-d SECONDS]
 *
 * Client thread k talks to socket k mod the number of sockets.
 * CLIENTS threads each put keys PREFIX<i> (i = thread, thread + CLIENTS, ...)
 * until COUNT puts were made or SECONDS passed. Every acknowledged put is
 * appended to LEDGER ("key\n"), so a test can check afterwards that nothing
 * acknowledged was lost. Prints puts/s, errors and latency p50/p99 in ms.
 * Failed puts are counted by errno and the run goes on.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadstats.h"

#include "ctl.h"

struct load {
	char *socks[16];
	unsigned n_socks;
	const char *prefix;
	unsigned clients;
	uint64_t count;
	size_t value_len;
	double seconds;
	char *value;
	FILE *ledger;
	pthread_mutex_t ledger_lock;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t ok, failed, rofs, timedout;
	double deadline;
	double *lat; /* latencies of acknowledged puts, up to max_lat */
	size_t max_lat;
	atomic_uint_fast64_t n_lat;
};

/* Each client keeps one connection, as a long-lived application would;
 * after an error it reconnects. */
struct client {
	struct load *L;
	unsigned id;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct load *L = c->L;
	const char *sock = L->socks[c->id % L->n_socks];
	char key[256], err[512];
	int fd = -1;
	for (;;) {
		uint64_t i = atomic_fetch_add(&L->next, 1);
		if (i >= L->count || (L->seconds > 0 && load_now_s() > L->deadline)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		snprintf(key, sizeof(key), "%s%llu", L->prefix, (unsigned long long)i);
		char *argv[] = {"kv-put", key, L->value};
		uint32_t status;
		char *body;
		size_t len;
		double t0 = load_now_s();
		if (fd < 0)
			fd = ctl_connect(sock, err, sizeof(err));
		int rc = fd < 0 ? fd
				: ctl_request(fd, 3, argv, 60000, &status, &body, &len, err,
					      sizeof(err));
		double dt = load_now_s() - t0;
		if (rc == 0)
			free(body);
		else if (fd >= 0) {
			close(fd);
			fd = -1;
		}
		if (rc == 0 && status == 0) {
			atomic_fetch_add(&L->ok, 1);
			uint64_t slot = atomic_fetch_add(&L->n_lat, 1);
			if (slot < L->max_lat)
				L->lat[slot] = dt;
			if (L->ledger) {
				pthread_mutex_lock(&L->ledger_lock);
				fprintf(L->ledger, "%s\n", key);
				fflush(L->ledger);
				pthread_mutex_unlock(&L->ledger_lock);
			}
		} else {
			atomic_fetch_add(&L->failed, 1);
			if (rc == 0 && status == EROFS)
				atomic_fetch_add(&L->rofs, 1);
			if (rc == 0 && status == ETIMEDOUT)
				atomic_fetch_add(&L->timedout, 1);
		}
	}
}

int main(int argc, char **argv)
{
	static struct load L = {.prefix = "load/", .clients = 1, .count = 1000, .value_len = 256};
	const char *ledger = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "s:n:c:b:p:l:d:h")) != -1) {
		switch (opt) {
		case 's':
			for (char *tok = strtok(optarg, ","); tok && L.n_socks < 16;
			     tok = strtok(NULL, ","))
				L.socks[L.n_socks++] = tok;
			break;
		case 'n':
			L.count = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			L.clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			L.value_len = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			L.prefix = optarg;
			break;
		case 'l':
			ledger = optarg;
			break;
		case 'd':
			L.seconds = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr, "usage: omnifs-kvload -s SOCKET [-n COUNT] [-c CLIENTS] "
					"[-b VALUE_BYTES] [-p PREFIX] [-l LEDGER] [-d SECONDS]\n");
			return 2;
		}
	}
	if (L.n_socks == 0 || L.clients == 0 || L.clients > 1024 || L.value_len == 0 ||
	    L.value_len > (1u << 20)) {
		fprintf(stderr, "omnifs-kvload: need -s SOCKET, 1..1024 clients, 1..1048576 "
				"value bytes\n");
		return 2;
	}
	if (L.seconds > 0 && L.count == 1000)
		L.count = UINT64_MAX / 2;
	L.value = malloc(L.value_len + 1);
	for (size_t i = 0; i < L.value_len; i++)
		L.value[i] = (char)('a' + i % 26);
	L.value[L.value_len] = '\0';
	L.max_lat = L.count < 10000000 ? (size_t)L.count : 10000000;
	L.lat = malloc(L.max_lat * sizeof(double));
	if (ledger && !(L.ledger = fopen(ledger, "a"))) {
		perror(ledger);
		return 2;
	}
	pthread_mutex_init(&L.ledger_lock, NULL);

	pthread_t *t = calloc(L.clients, sizeof(*t));
	struct client *cs = calloc(L.clients, sizeof(*cs));
	double t0 = load_now_s();
	L.deadline = t0 + L.seconds;
	for (unsigned i = 0; i < L.clients; i++) {
		cs[i] = (struct client){.L = &L, .id = i};
		pthread_create(&t[i], NULL, client_main, &cs[i]);
	}
	for (unsigned i = 0; i < L.clients; i++)
		pthread_join(t[i], NULL);
	double elapsed = load_now_s() - t0;

	uint64_t n = atomic_load(&L.n_lat);
	if (n > L.max_lat)
		n = L.max_lat;
	load_report(atomic_load(&L.ok), atomic_load(&L.failed), atomic_load(&L.rofs),
		    atomic_load(&L.timedout), elapsed, L.lat, n);
	if (L.ledger)
		fclose(L.ledger);
	free(L.lat);
	free(L.value);
	free(t);
	free(cs);
	return atomic_load(&L.ok) > 0 ? 0 : 1;
}
