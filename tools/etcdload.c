/*
 * omnifs-etcdload: the same put workload as omnifs-kvload, against etcd's
 * JSON gateway (POST /v3/kv/put), so the KV benchmark can compare the two in
 * one run on the same machine.
 *
 *   omnifs-etcdload -u URL[,URL...] [-n COUNT] [-c CLIENTS] [-b VALUE_BYTES]
 *                   [-p PREFIX] [-d SECONDS]
 *
 * Each client thread keeps one HTTP connection (libcurl easy handle with
 * keep-alive) to one of the URLs, round-robin by thread, like a long-lived
 * application. Prints the same line as omnifs-kvload.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadstats.h"

struct load {
	char *urls[16];
	unsigned n_urls;
	const char *prefix;
	unsigned clients;
	uint64_t count;
	size_t value_len;
	double seconds, deadline;
	char *value_b64;
	atomic_uint_fast64_t next, ok, failed, n_lat;
	double *lat;
	size_t max_lat;
};

static char *base64(const unsigned char *in, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*o++ = tbl[(v >> 18) & 63];
		*o++ = tbl[(v >> 12) & 63];
		*o++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? tbl[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	return size * n;
}

struct client {
	struct load *L;
	unsigned id;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct load *L = c->L;
	char url[512];
	snprintf(url, sizeof(url), "%s/v3/kv/put", L->urls[c->id % L->n_urls]);
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	size_t body_cap = strlen(L->value_b64) + 512;
	char *body = malloc(body_cap);
	for (;;) {
		uint64_t i = atomic_fetch_add(&L->next, 1);
		if (i >= L->count || (L->seconds > 0 && load_now_s() > L->deadline))
			break;
		char key[256];
		snprintf(key, sizeof(key), "%s%llu", L->prefix, (unsigned long long)i);
		char *kb = base64((const unsigned char *)key, strlen(key));
		snprintf(body, body_cap, "{\"key\":\"%s\",\"value\":\"%s\"}", kb, L->value_b64);
		free(kb);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		double t0 = load_now_s();
		CURLcode rc = curl_easy_perform(h);
		double dt = load_now_s() - t0;
		long code = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc == CURLE_OK && code == 200) {
			atomic_fetch_add(&L->ok, 1);
			uint64_t slot = atomic_fetch_add(&L->n_lat, 1);
			if (slot < L->max_lat)
				L->lat[slot] = dt;
		} else {
			atomic_fetch_add(&L->failed, 1);
		}
	}
	free(body);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct load L = {.prefix = "load/", .clients = 1, .count = 1000, .value_len = 256};
	int opt;
	while ((opt = getopt(argc, argv, "u:n:c:b:p:d:")) != -1) {
		switch (opt) {
		case 'u':
			for (char *tok = strtok(optarg, ","); tok && L.n_urls < 16;
			     tok = strtok(NULL, ","))
				L.urls[L.n_urls++] = tok;
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
		case 'd':
			L.seconds = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr, "usage: omnifs-etcdload -u URL[,URL..] [-n COUNT] "
					"[-c CLIENTS] [-b VALUE_BYTES] [-p PREFIX] [-d SECONDS]\n");
			return 2;
		}
	}
	if (L.n_urls == 0 || L.clients == 0 || L.clients > 1024 || L.value_len == 0 ||
	    L.value_len > (1u << 20)) {
		fprintf(stderr, "omnifs-etcdload: need -u URL, 1..1024 clients, 1..1048576 "
				"value bytes\n");
		return 2;
	}
	if (L.seconds > 0 && L.count == 1000)
		L.count = UINT64_MAX / 2;
	unsigned char *value = malloc(L.value_len);
	for (size_t i = 0; i < L.value_len; i++)
		value[i] = (unsigned char)('a' + i % 26);
	L.value_b64 = base64(value, L.value_len);
	free(value);
	L.max_lat = L.count < 10000000 ? (size_t)L.count : 10000000;
	L.lat = malloc(L.max_lat * sizeof(double));
	curl_global_init(CURL_GLOBAL_DEFAULT);

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
	load_report(atomic_load(&L.ok), atomic_load(&L.failed), 0, 0, elapsed, L.lat, n);
	curl_global_cleanup();
	free(L.lat);
	free(L.value_b64);
	free(t);
	free(cs);
	return atomic_load(&L.ok) > 0 ? 0 : 1;
}
