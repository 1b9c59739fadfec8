/*
 * A cluster of replicas in one process. See replica_cluster.h.
 *
 * Configs are INI text parsed by cfg_parse_string, the same path a config
 * file takes, so a node here is configured exactly as omnifsd would be.
 * Ports come from binding port 0 on 127.0.0.1 and reading it back (then
 * closing: the replica binds it again a moment later, as the integration
 * scripts do).
 */
#include "replica_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "keyfile.h"
#include "kv.h"
#include "log.h"
#include "replica.h"

#define RCL__POLL_MS	5
#define RCL__CONFIG_MAX 16384

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void defaults(struct rcl_options *o)
{
	if (!o->tick_ms)
		o->tick_ms = 5;
	if (!o->election_timeout_ms)
		o->election_timeout_ms = 100;
	if (!o->resend_timeout_ms)
		o->resend_timeout_ms = 100;
	if (!o->commit_timeout_ms)
		o->commit_timeout_ms = 5000;
}

/* n distinct free TCP ports on 127.0.0.1: all bound at once, then let go. */
static int free_ports(uint16_t *ports, size_t n)
{
	int fds[RCL_MAX_NODES];
	int rc = 0;
	size_t opened = 0;
	for (; opened < n && rc == 0; opened++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		fds[opened] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[opened] < 0) {
			rc = -errno;
			break;
		}
		if (bind(fds[opened], (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(fds[opened], (struct sockaddr *)&a, &len) != 0)
			rc = -errno;
		else
			ports[opened] = ntohs(a.sin_port);
	}
	for (size_t i = 0; i < opened; i++)
		close(fds[i]);
	if (rc != 0)
		fprintf(stderr, "rcl: cannot find a free port: %s\n", strerror(-rc));
	return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "rcl: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *root)
{
	nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct rcl_node *node_of(struct rcl *c, uint64_t id)
{
	return id >= 1 && id <= c->n ? c->nodes[id] : NULL;
}

/* An appending snprintf into a fixed buffer; the caller checks *len < cap. */
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	if (*len >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	*len += n > 0 ? (size_t)n : 0;
}

/* Node me's config: peers are the ids in members (me among them). */
static int make_config(struct rcl *c, struct rcl_node *me, const uint64_t *members,
		       size_t n_members, bool join)
{
	char *text = malloc(RCL__CONFIG_MAX);
	if (!text)
		return -ENOMEM;
	size_t len = 0;
	const struct rcl_options *o = &c->opt;
	add(text, RCL__CONFIG_MAX, &len,
	    "[node]\nid = %llu\ncluster = %s\ndata_dir = %s/data\njoin = %s\n[peers]\n",
	    (unsigned long long)me->id, c->cluster, me->dir, join ? "true" : "false");
	for (size_t i = 0; i < n_members; i++)
		add(text, RCL__CONFIG_MAX, &len, "%llu = %s\n", (unsigned long long)members[i],
		    c->nodes[members[i]]->address);
	add(text, RCL__CONFIG_MAX, &len,
	    "[timing]\ntick_ms = %u\nelection_timeout_ms = %u\nresend_timeout_ms = %u\n"
	    "flush_timeout_ms = %u\ncommit_timeout_ms = %u\n",
	    o->tick_ms, o->election_timeout_ms, o->resend_timeout_ms, o->tick_ms,
	    o->commit_timeout_ms);
	if (o->compact_max_entries)
		add(text, RCL__CONFIG_MAX, &len,
		    "[compaction]\nmax_entries = %u\nretain_entries = %u\n", o->compact_max_entries,
		    o->compact_retain_entries);
	if (o->plaintext) {
		add(text, RCL__CONFIG_MAX, &len, "[security]\nplaintext = true\n");
	} else {
		add(text, RCL__CONFIG_MAX, &len, "[security]\nsecret_key_file = %s/node.key\n",
		    me->dir);
		add(text, RCL__CONFIG_MAX, &len, "[peer_keys]\n");
		for (size_t i = 0; i < n_members; i++)
			if (members[i] != me->id)
				add(text, RCL__CONFIG_MAX, &len, "%llu = %s\n",
				    (unsigned long long)members[i],
				    c->nodes[members[i]]->public_key);
	}
	int rc = -ENOSPC;
	char err[CFG_ERR_MAX];
	if (len < RCL__CONFIG_MAX) {
		char name[64];
		snprintf(name, sizeof(name), "n%llu.conf", (unsigned long long)me->id);
		rc = cfg_parse_string(&me->cfg, text, name, err, sizeof(err));
		if (rc != 0)
			fprintf(stderr, "rcl: n%llu's config: %s\n--- config:\n%s---\n",
				(unsigned long long)me->id, err, text);
	}
	free(text);
	return rc;
}

/* Node id's folder, address and (CURVE) keypair; no config yet. */
static int make_node(struct rcl *c, uint64_t id, uint16_t port)
{
	struct rcl_node *nd = calloc(1, sizeof(*nd));
	if (!nd)
		return -ENOMEM;
	nd->id = id;
	c->nodes[id] = nd;
	if (snprintf(nd->dir, sizeof(nd->dir), "%s/n%llu", c->root, (unsigned long long)id) >=
	    (int)sizeof(nd->dir))
		return -ENAMETOOLONG;
	snprintf(nd->address, sizeof(nd->address), "127.0.0.1:%u", (unsigned)port);
	if (mkdir(nd->dir, 0700) != 0) {
		int rc = -errno;
		fprintf(stderr, "rcl: mkdir %s: %s\n", nd->dir, strerror(-rc));
		return rc;
	}
	if (c->opt.plaintext)
		return 0;
	char sec[TP_KEY_Z85_LEN + 1], path[PATH_MAX + 16], name[32], err[512];
	int rc = tp_key_generate(nd->public_key, sec);
	if (rc != 0) {
		fprintf(stderr, "rcl: this libzmq cannot make CURVE keys: %s\n", strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/node.key", nd->dir);
	snprintf(name, sizeof(name), "node%llu", (unsigned long long)id);
	rc = tp_keyfile_write(path, name, nd->public_key, sec, 0, err, sizeof(err));
	memset(sec, 0, sizeof(sec));
	if (rc != 0)
		fprintf(stderr, "rcl: %s\n", err);
	return rc;
}

int rcl_new(struct rcl **out, size_t n, const struct rcl_options *opt)
{
	static unsigned clusters; /* names differ between clusters of one run */
	*out = NULL;
	if (n < 1 || n > RCL_MAX_NODES)
		return -EINVAL;
	struct rcl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opt)
		c->opt = *opt;
	defaults(&c->opt);
	snprintf(c->cluster, sizeof(c->cluster), "rcl-%ld-%u", (long)getpid(), clusters++);
	const char *tmp = getenv("TMPDIR");
	snprintf(c->root, sizeof(c->root), "%s/omnifs-rcl.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->root)) {
		int rc = -errno;
		fprintf(stderr, "rcl: mkdtemp %s: %s\n", c->root, strerror(errno));
		free(c);
		return rc;
	}
	/* The logger is process-wide: a quieter or louder run on request. */
	const char *level = getenv("OMNIFS_TEST_LOG_LEVEL");
	enum log_level lv = LOG_LEVEL_NOTICE;
	if (level)
		log_level_parse(level, &lv);
	log_set_level(lv);

	uint16_t ports[RCL_MAX_NODES];
	uint64_t ids[RCL_MAX_NODES];
	int rc = free_ports(ports, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		ids[i] = i + 1;
		rc = make_node(c, i + 1, ports[i]);
		c->n = i + 1;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = make_config(c, c->nodes[i + 1], ids, n, false);
	if (rc != 0) {
		rcl_destroy(&c);
		return rc;
	}
	*out = c;
	return 0;
}

void rcl_destroy(struct rcl **cp)
{
	struct rcl *c = *cp;
	if (!c)
		return;
	*cp = NULL;
	for (size_t id = 1; id <= c->n; id++)
		rcl_stop(c, id);
	remove_tree(c->root);
	for (size_t id = 1; id <= c->n; id++)
		free(c->nodes[id]);
	free(c);
}

uint64_t rcl_add_joiner(struct rcl *c, const uint64_t *members, size_t n_members)
{
	if (c->n >= RCL_MAX_NODES || n_members >= RCL_MAX_NODES)
		return 0;
	for (size_t i = 0; i < n_members; i++)
		if (!node_of(c, members[i]))
			return 0;
	uint64_t id = c->n + 1, ids[RCL_MAX_NODES];
	uint16_t port;
	int rc = free_ports(&port, 1);
	if (rc == 0) {
		rc = make_node(c, id, port);
		c->n = id;
	}
	memcpy(ids, members, n_members * sizeof(ids[0]));
	ids[n_members] = id;
	if (rc == 0)
		rc = make_config(c, c->nodes[id], ids, n_members + 1, true);
	return rc == 0 ? id : 0;
}

const struct rcl_node *rcl_node(struct rcl *c, uint64_t id)
{
	return node_of(c, id);
}

struct replica *rcl_replica(struct rcl *c, uint64_t id)
{
	struct rcl_node *nd = node_of(c, id);
	return nd ? nd->r : NULL;
}

int rcl_start(struct rcl *c, uint64_t id)
{
	struct rcl_node *nd = node_of(c, id);
	if (!nd)
		return -EINVAL;
	if (nd->r)
		return 0;
	char err[512] = "";
	int rc = replica_start(&nd->r, &nd->cfg, err, sizeof(err));
	if (rc != 0) {
		nd->r = NULL;
		fprintf(stderr, "rcl: starting n%llu: %s (%s)\n", (unsigned long long)id, err,
			strerror(-rc));
	}
	return rc;
}

int rcl_start_all(struct rcl *c)
{
	for (size_t id = 1; id <= c->n; id++) {
		int rc = rcl_start(c, id);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void rcl_stop(struct rcl *c, uint64_t id)
{
	struct rcl_node *nd = node_of(c, id);
	if (nd && nd->r)
		replica_stop(&nd->r);
}

int rcl_restart(struct rcl *c, uint64_t id)
{
	rcl_stop(c, id);
	return rcl_start(c, id);
}

/* --- status ------------------------------------------------------------------- */

/* The value after "name": in a flat JSON object (the status' top-level
 * fields come before its "peers" array and are named differently). */
static const char *json_value(const char *json, const char *name)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", name);
	const char *p = strstr(json, pat);
	return p ? p + strlen(pat) : NULL;
}

static bool json_u64(const char *json, const char *name, uint64_t *v)
{
	const char *p = json_value(json, name);
	char *end;
	if (!p)
		return false;
	*v = strtoull(p, &end, 10);
	return end != p;
}

static bool json_bool(const char *json, const char *name, bool *v)
{
	const char *p = json_value(json, name);
	if (!p)
		return false;
	*v = strncmp(p, "true", 4) == 0;
	return *v || strncmp(p, "false", 5) == 0;
}

static bool json_str(const char *json, const char *name, char *buf, size_t len)
{
	const char *p = json_value(json, name);
	if (!p || *p != '"')
		return false;
	const char *end = strchr(++p, '"');
	if (!end || (size_t)(end - p) >= len)
		return false;
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	return true;
}

static int status_json(struct rcl *c, uint64_t id, struct ctl_buf *out)
{
	struct replica *r = rcl_replica(c, id);
	if (!r)
		return -ESRCH;
	int rc = replica_status_json(r, out);
	if (rc == 0 && !out->data)
		rc = -EBADMSG;
	return rc;
}

int rcl_status(struct rcl *c, uint64_t id, struct rcl_status *st)
{
	struct ctl_buf b = {0};
	int rc = status_json(c, id, &b);
	if (rc != 0) {
		ctl_buf_free(&b);
		return rc;
	}
	memset(st, 0, sizeof(*st));
	uint64_t config_id = 0;
	const char *j = b.data;
	bool ok = json_str(j, "role", st->role, sizeof(st->role)) &&
		  json_u64(j, "leader", &st->leader) && json_bool(j, "quorum", &st->quorum) &&
		  json_bool(j, "caught_up", &st->caught_up) &&
		  json_bool(j, "removed", &st->removed) && json_bool(j, "joining", &st->joining) &&
		  json_bool(j, "state_transfer", &st->transferring) &&
		  json_u64(j, "state_transfers", &st->state_transfers) &&
		  json_u64(j, "state_transfer_bytes", &st->xfer_bytes) &&
		  json_u64(j, "state_transfer_total_bytes", &st->xfer_total) &&
		  json_u64(j, "decided_idx", &st->decided_idx) &&
		  json_u64(j, "applied_idx", &st->applied_idx) &&
		  json_u64(j, "compacted_idx", &st->compacted_idx) &&
		  json_u64(j, "config_id", &config_id) &&
		  json_bool(j, "quorum_connected", &st->ble_quorum) &&
		  json_str(j, "leader_route", st->leader_route, sizeof(st->leader_route)) &&
		  json_u64(j, "via", &st->via) &&
		  json_u64(j, "leader_decided_idx", &st->leader_decided_idx) &&
		  json_u64(j, "lag_entries", &st->lag_entries) &&
		  json_u64(j, "fetched_entries", &st->fetched_entries) &&
		  json_u64(j, "relayed_proposals", &st->relayed_proposals);
	st->config_id = (uint32_t)config_id;
	if (!ok)
		fprintf(stderr, "rcl: n%llu's status lacks a field: %s", (unsigned long long)id, j);
	ctl_buf_free(&b);
	return ok ? 0 : -EBADMSG;
}

void rcl_dump(struct rcl *c, const char *why)
{
	fprintf(stderr, "rcl: --- %s; every node's status:\n", why);
	for (size_t id = 1; id <= c->n; id++) {
		struct ctl_buf b = {0};
		if (status_json(c, id, &b) == 0)
			fprintf(stderr, "rcl: n%zu: %s", id, b.data);
		else
			fprintf(stderr, "rcl: n%zu: stopped\n", id);
		ctl_buf_free(&b);
	}
}

bool rcl_wait(struct rcl *c, uint32_t timeout_ms, rcl_pred pred, void *arg, const char *what)
{
	uint64_t start = now_ms(), deadline = start + timeout_ms;
	for (;;) {
		if (pred(c, arg))
			return true;
		if (now_ms() >= deadline)
			break;
		pause_ms(RCL__POLL_MS);
	}
	char why[512];
	snprintf(why, sizeof(why), "timed out after %u ms waiting for: %s", timeout_ms, what);
	rcl_dump(c, why);
	return false;
}

/* Running, and a member of its configuration as far as it knows. */
static bool is_member(struct rcl *c, uint64_t id, struct rcl_status *st)
{
	return rcl_status(c, id, st) == 0 && !st->joining && !st->removed;
}

static bool one_leader(struct rcl *c, void *arg)
{
	uint64_t *leader = arg, seen = 0;
	size_t members = 0;
	for (size_t id = 1; id <= c->n; id++) {
		struct rcl_status st;
		if (!is_member(c, id, &st) || strcmp(st.role, "learner") == 0)
			continue; /* learners follow none: they show their sources' */
		members++;
		if (!st.leader || !st.quorum || (seen && st.leader != seen))
			return false;
		seen = st.leader;
	}
	struct rcl_status ls;
	if (!members || rcl_status(c, seen, &ls) != 0 || strcmp(ls.role, "leader") != 0 ||
	    ls.leader != seen)
		return false;
	*leader = seen;
	return true;
}

uint64_t rcl_wait_leader(struct rcl *c, uint32_t timeout_ms)
{
	uint64_t leader = 0;
	if (!rcl_wait(c, timeout_ms, one_leader, &leader,
		      "every running member to follow one leader with a quorum"))
		return 0;
	return leader;
}

int rcl_cut_link(struct rcl *c, uint64_t a, uint64_t b, bool cut)
{
	struct replica *ra = rcl_replica(c, a), *rb = rcl_replica(c, b);
	if (!ra || !rb)
		return -ESRCH;
	int rc = replica_set_fault(ra, b, cut, cut);
	if (rc == 0)
		rc = replica_set_fault(rb, a, cut, cut);
	return rc;
}

uint64_t rcl_applied_idx(struct rcl *c, uint64_t id)
{
	struct replica *r = rcl_replica(c, id);
	return r ? kv_applied_idx(replica_kv(r)) : 0;
}

int rcl_digest(struct rcl *c, uint64_t id, char hex[65], uint64_t *applied_idx)
{
	struct replica *r = rcl_replica(c, id);
	if (!r)
		return -ESRCH;
	struct kv_view *v;
	int rc = kv_view_open(replica_kv(r), &v);
	if (rc != 0)
		return rc;
	uint8_t d[KV_DIGEST_LEN];
	rc = kv_view_digest(v, d);
	if (rc == 0) {
		kv_digest_hex(d, hex);
		*applied_idx = kv_view_applied_idx(v);
	}
	kv_view_close(&v);
	return rc;
}

static bool same_state(struct rcl *c, void *arg)
{
	char first[65] = "", hex[65];
	uint64_t first_idx = 0, idx;
	size_t members = 0;
	for (size_t id = 1; id <= c->n; id++) {
		struct rcl_status st;
		if (!is_member(c, id, &st))
			continue;
		if (rcl_digest(c, id, hex, &idx) != 0)
			return false;
		if (members++ == 0) {
			memcpy(first, hex, sizeof(first));
			first_idx = idx;
		} else if (idx != first_idx || strcmp(hex, first) != 0) {
			return false;
		}
	}
	return members > 0;
}

bool rcl_wait_same_state(struct rcl *c, uint32_t timeout_ms)
{
	if (rcl_wait(c, timeout_ms, same_state, NULL,
		     "every running member to hold the same state (applied index and digest)"))
		return true;
	for (size_t id = 1; id <= c->n; id++) {
		char hex[65];
		uint64_t idx;
		if (rcl_digest(c, id, hex, &idx) == 0)
			fprintf(stderr, "rcl: n%zu: applied @%llu digest %s\n", id,
				(unsigned long long)idx, hex);
	}
	return false;
}

/* --- writes and reads ----------------------------------------------------------- */

int rcl_put(struct rcl *c, uint64_t id, const char *key, const char *value)
{
	struct replica *r = rcl_replica(c, id);
	return r ? rcl_replica_put(r, key, value) : -ESRCH;
}

int rcl_replica_put(struct replica *r, const char *key, const char *value)
{
	struct kv_txn t;
	struct kv_result res;
	kv_txn_init(&t, 0, 0);
	int rc = kv_txn_add_put(&t, key, strlen(key), value, strlen(value));
	if (rc == 0)
		rc = replica_propose(r, &t, &res);
	kv_txn_free(&t);
	if (rc == 0 && res.status != KV_APPLIED)
		rc = -EPROTO;
	return rc;
}

int rcl_put_retry(struct rcl *c, uint64_t id, const char *key, const char *value,
		  uint32_t timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		int rc = rcl_put(c, id, key, value);
		if ((rc != -EROFS && rc != -ETIMEDOUT) || now_ms() >= deadline)
			return rc;
		pause_ms(RCL__POLL_MS);
	}
}

struct writer {
	pthread_t thread;
	struct rcl *c;
	uint64_t id;
	const char *prefix;
	unsigned from, step, end; /* keys from, from + step, ... below end */
	uint32_t timeout_ms;
	int rc;
	char failed_key[128];
};

static void *write_keys(void *arg)
{
	struct writer *w = arg;
	for (unsigned i = w->from; i < w->end && w->rc == 0; i += w->step) {
		char key[128], value[32];
		snprintf(key, sizeof(key), "%s%u", w->prefix, i);
		snprintf(value, sizeof(value), "v%u", i);
		/* The replica is thread-safe for proposals: this is what FUSE
		 * workers do. The harness' own structures are only read. */
		w->rc = rcl_put_retry(w->c, w->id, key, value, w->timeout_ms);
		if (w->rc != 0)
			snprintf(w->failed_key, sizeof(w->failed_key), "%s", key);
	}
	return NULL;
}

int rcl_put_many(struct rcl *c, uint64_t id, const char *prefix, unsigned first, unsigned count,
		 unsigned n_threads, uint32_t timeout_ms)
{
	if (n_threads < 1 || n_threads > 64)
		return -EINVAL;
	struct writer *w = calloc(n_threads, sizeof(*w));
	if (!w)
		return -ENOMEM;
	unsigned started = 0;
	int rc = 0;
	for (; started < n_threads; started++) {
		w[started] = (struct writer){.c = c,
					     .id = id,
					     .prefix = prefix,
					     .from = first + started,
					     .step = n_threads,
					     .end = first + count,
					     .timeout_ms = timeout_ms};
		rc = -pthread_create(&w[started].thread, NULL, write_keys, &w[started]);
		if (rc != 0)
			break;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].rc != 0 && rc == 0) {
			rc = w[i].rc;
			fprintf(stderr, "rcl: put %s through n%llu: %s\n", w[i].failed_key,
				(unsigned long long)id, strerror(-rc));
		}
	}
	free(w);
	return rc;
}

int rcl_get(struct rcl *c, uint64_t id, const char *key, char **value, uint64_t *version)
{
	struct replica *r = rcl_replica(c, id);
	if (!r)
		return -ESRCH;
	void *val;
	size_t len;
	int rc = kv_get(replica_kv(r), key, strlen(key), &val, &len, version);
	if (rc != 0)
		return rc;
	char *s = malloc(len + 1);
	if (!s) {
		free(val);
		return -ENOMEM;
	}
	memcpy(s, val, len);
	s[len] = '\0';
	free(val);
	*value = s;
	return 0;
}

/* --- control -------------------------------------------------------------------- */

int rcl_control(struct rcl *c, uint64_t id, char *out, size_t out_len, const char *cmd, ...)
{
	char *argv[CTL_MAX_ARGS];
	int argc = 0;
	va_list ap;
	argv[argc++] = (char *)cmd;
	va_start(ap, cmd);
	const char *a;
	while (argc < CTL_MAX_ARGS && (a = va_arg(ap, const char *)) != NULL)
		argv[argc++] = (char *)a;
	va_end(ap);
	if (out_len)
		out[0] = '\0';
	struct replica *r = rcl_replica(c, id);
	if (!r)
		return ESRCH;
	struct ctl_buf b = {0};
	int st = replica_control(r, argc, argv, &b);
	if (out_len && b.data)
		snprintf(out, out_len, "%.*s", (int)b.len, b.data);
	ctl_buf_free(&b);
	return st;
}

int rcl_cut(struct rcl *c, uint64_t id, bool cut)
{
	struct replica *r = rcl_replica(c, id);
	if (!r)
		return -ESRCH;
	int rc = replica_set_fault(r, 0, cut, cut);
	for (size_t other = 1; other <= c->n && rc == 0; other++) {
		struct replica *o = rcl_replica(c, other);
		if (other == id || !o)
			continue;
		rc = replica_set_fault(o, id, cut, cut);
		if (rc == -ENOENT) /* not its peer (a node not added yet) */
			rc = 0;
	}
	return rc;
}
