/*
 * Config file parsing on libinih. See config.h.
 *
 * libinih (as Debian builds it) does not pass line numbers to the handler, so
 * the file is fed through a reader that counts lines: when the handler runs,
 * the count is the line being handled. The first error wins; the rest of the
 * file is still read by libinih but ignored.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_kind {
	KEY_U64_ID,
	KEY_U32,
	KEY_MIB,
	KEY_STRING,
	KEY_PATH,
	KEY_BOOL,
	KEY_LEVEL,
	KEY_ADDRESS
};

struct key_spec {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t offset;	    /* into struct cfg */
	size_t size;	    /* of the field, for strings */
	uint32_t min;	    /* for KEY_U32 */
	uint32_t max;	    /* for KEY_U32 */
	const char *expect; /* what a good value looks like, for messages */
};

#define FIELD(f) offsetof(struct cfg, f), sizeof(((struct cfg *)0)->f)

static const struct key_spec keys[] = {
	{"node", "id", KEY_U64_ID, FIELD(node_id), 0, 0, "a node id from 1 to 65535"},
	{"node", "cluster", KEY_STRING, FIELD(cluster), 0, 0,
	 "a cluster name of 1-63 letters, digits, '.', '_' or '-'"},
	{"node", "listen", KEY_ADDRESS, FIELD(listen), 0, 0, "host:port, e.g. 0.0.0.0:7100"},
	{"node", "data_dir", KEY_PATH, FIELD(data_dir), 0, 0, "an absolute path"},
	{"node", "mountpoint", KEY_PATH, FIELD(mountpoint), 0, 0, "an absolute path"},
	{"node", "control_socket", KEY_PATH, FIELD(control_socket), 0, 0, "an absolute path"},
	{"node", "log_level", KEY_LEVEL, FIELD(log_level), 0, 0,
	 "one of error, warning, notice, info, debug"},
	{"node", "join", KEY_BOOL, FIELD(join), 0, 0, "true or false"},
	{"timing", "tick_ms", KEY_U32, FIELD(tick_ms), 1, 1000, "milliseconds, 1 to 1000"},
	{"timing", "election_timeout_ms", KEY_U32, FIELD(election_timeout_ms), 1, 600000,
	 "milliseconds, 1 to 600000"},
	{"timing", "resend_timeout_ms", KEY_U32, FIELD(resend_timeout_ms), 1, 600000,
	 "milliseconds, 1 to 600000"},
	{"timing", "flush_timeout_ms", KEY_U32, FIELD(flush_timeout_ms), 1, 600000,
	 "milliseconds, 1 to 600000"},
	{"timing", "commit_timeout_ms", KEY_U32, FIELD(commit_timeout_ms), 1, 3600000,
	 "milliseconds, 1 to 3600000"},
	{"consensus", "batch_size", KEY_U32, FIELD(batch_size), 1, 1000000,
	 "a number of entries, 1 to 1000000"},
	{"consensus", "leader_priority", KEY_U32, FIELD(leader_priority), 0, INT32_MAX,
	 "a number, 0 to 2147483647"},
	{"consensus", "read_quorum", KEY_U32, FIELD(read_quorum), 0, CFG_MAX_PEERS,
	 "a number of nodes, 0 (majority) to the cluster size"},
	{"consensus", "write_quorum", KEY_U32, FIELD(write_quorum), 0, CFG_MAX_PEERS,
	 "a number of nodes, 0 (majority) to the cluster size"},
	{"compaction", "max_entries", KEY_U32, FIELD(compact_max_entries), 100, 100000000,
	 "a number of entries, 100 to 100000000"},
	{"compaction", "max_bytes_mb", KEY_MIB, FIELD(compact_max_bytes), 1, 1048576,
	 "mebibytes, 1 to 1048576"},
	{"compaction", "retain_entries", KEY_U32, FIELD(compact_retain_entries), 0, 100000000,
	 "a number of entries, 0 to 100000000"},
	{"compaction", "feed_entries", KEY_U32, FIELD(feed_entries), 1, 100000000,
	 "a number of log indexes, 1 to 100000000"},
	{"security", "plaintext", KEY_BOOL, FIELD(plaintext), 0, 0, "true or false"},
	{"security", "plaintext_allow_network", KEY_BOOL, FIELD(plaintext_allow_network), 0, 0,
	 "true or false"},
	{"security", "secret_key_file", KEY_PATH, FIELD(secret_key_file), 0, 0, "an absolute path"},
	{"fs", "max_file_size_mb", KEY_U32, FIELD(fs_max_file_size_mb), 1, 1048576,
	 "MiB, 1 to 1048576"},
	{"fs", "max_total_size_mb", KEY_U32, FIELD(fs_max_total_size_mb), 1, UINT32_MAX,
	 "MiB, 1 to 4294967295"},
	{"fs", "max_inodes", KEY_U32, FIELD(fs_max_inodes), 16, UINT32_MAX,
	 "a number of inodes, 16 to 4294967295"},
	{"fs", "write_buffer_mb", KEY_U32, FIELD(fs_write_buffer_mb), 1, 32, "MiB, 1 to 32"},
	{"fs", "read_ahead_kb", KEY_U32, FIELD(fs_read_ahead_kb), 0, 65536, "KiB, 0 to 65536"},
	/* For tests: a small bound makes the invalidation queue degrade without
	 * 65536 changes; a long kernel cache makes a missed invalidation show. */
	{"fs", "inval_queue_max", KEY_U32, FIELD(fs_inval_queue_max), 1, 16777216,
	 "a number of invalidations, 1 to 16777216"},
	{"fs", "kernel_cache_ms", KEY_U32, FIELD(fs_kernel_cache_ms), 0, 3600000,
	 "milliseconds, 0 to 3600000"},
	{"locks", "lease_ms", KEY_U32, FIELD(lock_lease_ms), 500, 600000,
	 "milliseconds, 500 to 600000"},
	{"history", "enabled", KEY_BOOL, FIELD(hist_enabled), 0, 0, "true or false"},
	{"history", "versions", KEY_U32, FIELD(hist_versions), 1, 1000,
	 "a number of versions, 1 to 1000"},
	{"history", "max_age_s", KEY_U32, FIELD(hist_max_age_s), 0, UINT32_MAX,
	 "seconds, 0 (no bound) to 4294967295"},
	{"history", "max_total_mb", KEY_U32, FIELD(hist_max_total_mb), 1, 1048576,
	 "MiB, 1 to 1048576"},
	{"history", "max_file_kb", KEY_U32, FIELD(hist_max_file_kb), 1, 65536, "KiB, 1 to 65536"},
	/* For tests: the age and total bounds are enforced this often. */
	{"history", "trim_s", KEY_U32, FIELD(hist_trim_s), 1, 86400, "seconds, 1 to 86400"},
	{"metrics", "listen", KEY_ADDRESS, FIELD(metrics_listen), 0, 0,
	 "host:port, e.g. 127.0.0.1:9465"},
	{"storage", "memory_mb", KEY_U32, FIELD(storage_memory_mb), 8, 1048576,
	 "MiB, 8 to 1048576"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* Sections whose keys are node ids rather than fixed names. */
static const char *const id_sections[] = {"peers", "peer_keys"};

struct parse_state {
	struct cfg *c;
	const char *name; /* file name for messages */
	char *err;
	size_t err_len;
	int line; /* line being parsed */
	bool failed;
	bool seen[N_KEYS];
	bool key_seen[CFG_MAX_PEERS]; /* [peer_keys] entries, by peer slot */
	/* reader state: one of the two */
	const char *text;
	FILE *file;
};

static void fail(struct parse_state *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct parse_state *ps, const char *fmt, ...)
{
	if (ps->failed)
		return;
	ps->failed = true;
	char what[CFG_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (ps->line > 0)
		snprintf(ps->err, ps->err_len, "%s:%d: %s", ps->name, ps->line, what);
	else
		snprintf(ps->err, ps->err_len, "%s: %s", ps->name, what);
}

uint64_t cfg_cluster_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
	if (*s == '\0')
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool host_char_ok(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_';
}

bool cfg_address_is_valid(const char *address)
{
	const char *colon;
	if (address[0] == '[') {
		const char *close = strchr(address, ']');
		if (!close || close == address + 1 || close[1] != ':')
			return false;
		for (const char *p = address + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		colon = close + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || colon == address)
			return false;
		for (const char *p = address; p < colon; p++)
			if (!host_char_ok(*p))
				return false;
	}
	uint64_t port;
	return parse_u64(colon + 1, &port) && port >= 1 && port <= 65535;
}

bool cfg_address_is_loopback(const char *address)
{
	if (!cfg_address_is_valid(address))
		return false;
	if (strncmp(address, "[::1]:", 6) == 0 || strncmp(address, "localhost:", 10) == 0)
		return true;
	/* 127.a.b.c: four decimal parts, the first 127 */
	unsigned part[4];
	char tail;
	if (sscanf(address, "%3u.%3u.%3u.%3u%c", &part[0], &part[1], &part[2], &part[3], &tail) !=
		    5 ||
	    tail != ':')
		return false;
	for (int i = 0; i < 4; i++)
		if (part[i] > 255)
			return false;
	return part[0] == 127;
}

static bool cluster_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= CFG_CLUSTER_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return true;
}

bool cfg_key_is_valid(const char *s)
{
	static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  ".-:+=^!/*?&<>()[]{}@%$#";
	return strlen(s) == CFG_KEY_Z85_LEN && strspn(s, z85) == CFG_KEY_Z85_LEN;
}

static int set_value(struct parse_state *ps, const struct key_spec *k, const char *value)
{
	char *field = (char *)ps->c + k->offset;
	uint64_t v;

	switch (k->kind) {
	case KEY_U64_ID:
		if (!parse_u64(value, &v) || v < 1 || v > 65535)
			goto bad;
		*(uint64_t *)(void *)field = v;
		return 0;
	case KEY_U32:
		if (!parse_u64(value, &v) || v < k->min || v > k->max)
			goto bad;
		*(uint32_t *)(void *)field = (uint32_t)v;
		return 0;
	case KEY_MIB:
		if (!parse_u64(value, &v) || v < k->min || v > k->max)
			goto bad;
		*(uint64_t *)(void *)field = v << 20;
		return 0;
	case KEY_STRING:
		if (!cluster_name_ok(value))
			goto bad;
		snprintf(field, k->size, "%s", value);
		return 0;
	case KEY_PATH:
		if (value[0] != '/' || strlen(value) >= k->size)
			goto bad;
		/* libinih ends a value at " ;" only: a "# note" after a path would
		 * silently become part of it, and a path with blanks is more
		 * likely a comment gone wrong than a wish. */
		if (strpbrk(value, " \t\v\f#")) {
			fail(ps,
			     "[%s] %s = '%s': a path may not contain whitespace or '#' (a comment "
			     "after a value starts with ' ;', and '#' only starts a whole-line "
			     "comment)",
			     k->section, k->name, value);
			return -EINVAL;
		}
		snprintf(field, k->size, "%s", value);
		return 0;
	case KEY_ADDRESS:
		if (strlen(value) >= k->size || !cfg_address_is_valid(value))
			goto bad;
		snprintf(field, k->size, "%s", value);
		return 0;
	case KEY_BOOL:
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			*(bool *)(void *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
			*(bool *)(void *)field = false;
		else
			goto bad;
		return 0;
	case KEY_LEVEL:
		if (log_level_parse(value, (enum log_level *)(void *)field) != 0)
			goto bad;
		return 0;
	}
bad:
	fail(ps, "[%s] %s = '%s': expected %s", k->section, k->name, value, k->expect);
	return -EINVAL;
}

static int find_peer_slot(const struct cfg *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (c->peers[i].id == id)
			return (int)i;
	return -1;
}

static void handle_peer(struct parse_state *ps, uint64_t id, const char *value)
{
	struct cfg *c = ps->c;
	if (find_peer_slot(c, id) >= 0) {
		fail(ps,
		     "[peers] node id %llu is listed twice: each node needs exactly one address",
		     (unsigned long long)id);
		return;
	}
	if (c->n_peers == CFG_MAX_PEERS) {
		fail(ps, "[peers] too many members: at most %d are supported", CFG_MAX_PEERS);
		return;
	}
	if (strlen(value) >= CFG_ADDR_MAX || !cfg_address_is_valid(value)) {
		fail(ps, "[peers] %llu = '%s': expected host:port, e.g. 10.0.0.1:7100",
		     (unsigned long long)id, value);
		return;
	}
	for (size_t i = 0; i < c->n_peers; i++) {
		if (strcmp(c->peers[i].address, value) == 0) {
			fail(ps, "[peers] %llu = '%s': the same address as node %llu",
			     (unsigned long long)id, value, (unsigned long long)c->peers[i].id);
			return;
		}
	}
	struct cfg_peer *p = &c->peers[c->n_peers++];
	p->id = id;
	snprintf(p->address, sizeof(p->address), "%s", value);
}

static void handle_peer_key(struct parse_state *ps, uint64_t id, const char *value)
{
	if (!cfg_key_is_valid(value)) {
		fail(ps,
		     "[peer_keys] %llu: expected a 40-character Z85 public key "
		     "(omnifsctl keygen writes one)",
		     (unsigned long long)id);
		return;
	}
	int slot = find_peer_slot(ps->c, id);
	if (slot < 0) {
		fail(ps, "[peer_keys] %llu: no such node in [peers] (list [peers] first)",
		     (unsigned long long)id);
		return;
	}
	if (ps->key_seen[slot]) {
		fail(ps, "[peer_keys] %llu is listed twice", (unsigned long long)id);
		return;
	}
	ps->key_seen[slot] = true;
	snprintf(ps->c->peers[slot].public_key, sizeof(ps->c->peers[slot].public_key), "%s", value);
}

static bool is_id_section(const char *section)
{
	for (size_t i = 0; i < sizeof(id_sections) / sizeof(id_sections[0]); i++)
		if (strcmp(section, id_sections[i]) == 0)
			return true;
	return false;
}

static bool is_known_section(const char *section)
{
	if (is_id_section(section))
		return true;
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	if (ps->failed)
		return 1;
	if (section[0] == '\0') {
		fail(ps,
		     "'%s' is outside any section: put it under [node], [peers], [timing], "
		     "[consensus] or [security]",
		     name);
		return 0;
	}
	if (!is_known_section(section)) {
		fail(ps,
		     "unknown section [%s]: expected [node], [peers], [peer_keys], [timing], "
		     "[consensus] or [security]",
		     section);
		return 0;
	}
	if (is_id_section(section)) {
		uint64_t id;
		if (!parse_u64(name, &id) || id < 1 || id > 65535) {
			fail(ps, "[%s] '%s': expected a node id from 1 to 65535 as the key",
			     section, name);
			return 0;
		}
		if (strcmp(section, "peers") == 0)
			handle_peer(ps, id, value);
		else
			handle_peer_key(ps, id, value);
		return !ps->failed;
	}
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
			continue;
		if (ps->seen[i]) {
			fail(ps, "[%s] %s is set twice", section, name);
			return 0;
		}
		ps->seen[i] = true;
		return set_value(ps, &keys[i], value) == 0;
	}
	fail(ps, "unknown key '%s' in [%s] (see omnifs.conf(5) for the keys it takes)", name,
	     section);
	return 0;
}

static void set_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_LEVEL_INFO;
	c->tick_ms = 10;
	c->election_timeout_ms = 200;
	c->resend_timeout_ms = 500;
	c->flush_timeout_ms = 10;
	c->commit_timeout_ms = 5000;
	c->batch_size = 64;
	c->compact_max_entries = 20000;
	c->compact_max_bytes = 64ull << 20;
	c->compact_retain_entries = 1000;
	c->feed_entries = 100000; /* kv.h's KV_FEED_KEEP */
	c->fs_max_file_size_mb = 64;
	c->fs_max_total_size_mb = 10240;
	c->fs_max_inodes = 1000000;
	c->fs_write_buffer_mb = 4;
	c->fs_read_ahead_kb = 4096;
	c->fs_inval_queue_max = 65536;
	c->fs_kernel_cache_ms = 1000;
	c->lock_lease_ms = 5000;
	c->hist_enabled = true;
	c->hist_versions = 10;
	c->hist_max_age_s = 30 * 86400;
	c->hist_max_total_mb = 256;
	c->hist_max_file_kb = 1024;
	c->hist_trim_s = 30;
	c->storage_memory_mb = 16; /* as ROCKS_MEMORY_DEFAULT_MB */
}

static bool was_seen(const struct parse_state *ps, const char *section, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return ps->seen[i];
	return false;
}

/* Cross-key checks, after the whole file is read. */
static int finish(struct parse_state *ps)
{
	struct cfg *c = ps->c;
	ps->line = 0;
	if (!was_seen(ps, "node", "id"))
		fail(ps, "[node] id is missing: expected this node's id, e.g. id = 1");
	else if (!was_seen(ps, "node", "cluster"))
		fail(ps,
		     "[node] cluster is missing: expected the cluster's name, e.g. cluster = prod");
	else if (!was_seen(ps, "node", "data_dir"))
		fail(ps, "[node] data_dir is missing: expected an absolute path, e.g. "
			 "data_dir = /var/lib/omnifs");
	else if (c->n_peers < 2)
		fail(ps,
		     "[peers] lists %zu node(s): a cluster needs at least 2 (this node included)",
		     c->n_peers);
	else if (find_peer_slot(c, c->node_id) < 0)
		fail(ps,
		     "[node] id = %llu is not among [peers]: list this node's own address there",
		     (unsigned long long)c->node_id);
	if (ps->failed)
		return -EINVAL;
	if (c->listen[0] == '\0')
		snprintf(c->listen, sizeof(c->listen), "%s",
			 c->peers[find_peer_slot(c, c->node_id)].address);

	uint32_t n = (uint32_t)c->n_peers;
	if ((c->read_quorum == 0) != (c->write_quorum == 0))
		fail(ps,
		     "[consensus] read_quorum and write_quorum must be set together (or neither)");
	else if (c->read_quorum && (c->read_quorum + c->write_quorum <= n || c->write_quorum < 2 ||
				    c->read_quorum > n || c->write_quorum > c->read_quorum))
		fail(ps,
		     "[consensus] read_quorum = %u, write_quorum = %u do not fit %u nodes: "
		     "need read + write > %u and 2 <= write <= read <= %u",
		     c->read_quorum, c->write_quorum, n, n, n);
	else if (c->election_timeout_ms < c->tick_ms || c->resend_timeout_ms < c->tick_ms ||
		 c->flush_timeout_ms < c->tick_ms)
		fail(ps,
		     "[timing] election, resend and flush timeouts must each be at least "
		     "tick_ms = %u",
		     c->tick_ms);
	else if (c->compact_retain_entries >= c->compact_max_entries)
		fail(ps, "[compaction] retain_entries = %u must be below max_entries = %u",
		     c->compact_retain_entries, c->compact_max_entries);
	else if (!c->plaintext && c->secret_key_file[0] == '\0')
		fail(ps, "[security] secret_key_file is missing: give this node's keypair "
			 "(omnifsctl keygen), or set plaintext = true to run unencrypted");
	else if (c->plaintext && !c->plaintext_allow_network && c->listen[0] &&
		 !cfg_address_is_loopback(c->listen))
		fail(ps,
		     "[node] listen = %s with [security] plaintext = true: plaintext links are "
		     "neither encrypted nor authenticated (whoever reaches the port can speak as "
		     "any node), so they listen on loopback only (127.0.0.0/8, [::1], localhost). "
		     "Use CURVE keys (secret_key_file), listen on loopback, or set [security] "
		     "plaintext_allow_network = true on a private network you trust",
		     c->listen);
	else if (c->metrics_listen[0] && strcmp(c->metrics_listen, c->listen) == 0)
		fail(ps,
		     "[metrics] listen = %s is [node] listen too: give the metrics their own port",
		     c->metrics_listen);
	if (ps->failed)
		return -EINVAL;
	if (!c->plaintext) {
		for (size_t i = 0; i < c->n_peers; i++) {
			if (c->peers[i].id != c->node_id && c->peers[i].public_key[0] == '\0') {
				fail(ps,
				     "[peer_keys] node %llu has no public key: CURVE needs every "
				     "peer's key (or set [security] plaintext = true)",
				     (unsigned long long)c->peers[i].id);
				return -EINVAL;
			}
		}
	}

	c->cluster_id = cfg_cluster_hash(c->cluster);
	if (c->control_socket[0] == '\0') {
		int w = snprintf(c->control_socket, sizeof(c->control_socket), "%s/control.sock",
				 c->data_dir);
		if (w < 0 || (size_t)w >= sizeof(c->control_socket)) {
			fail(ps, "[node] data_dir is too long to hold control.sock");
			return -EINVAL;
		}
	}
	return 0;
}

/* Refuses a line libinih would cut: it reads lines into a buffer of size
 * bytes (200 as Debian builds it) and parses the rest of a longer line as a
 * line of its own, which reads as a syntax error on the wrong line or as a
 * silently shortened value. Room is kept for "\r\n" and the NUL.
 * line_len excludes the line end. */
static bool line_fits(struct parse_state *ps, size_t line_len, int size)
{
	if (line_len <= (size_t)size - 3)
		return true;
	ps->line++;
	fail(ps,
	     "the line is longer than %d characters, the most the config reader takes: "
	     "shorten it",
	     size - 3);
	return false;
}

static size_t content_len(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

static char *string_reader(char *buf, int size, void *stream)
{
	struct parse_state *ps = stream;
	if (*ps->text == '\0' || ps->failed)
		return NULL;
	const char *nl = strchr(ps->text, '\n');
	size_t len = nl ? (size_t)(nl - ps->text) + 1 : strlen(ps->text);
	if (!line_fits(ps, content_len(ps->text, len), size))
		return NULL;
	memcpy(buf, ps->text, len);
	buf[len] = '\0';
	ps->text += len;
	ps->line++;
	return buf;
}

static char *file_reader(char *buf, int size, void *stream)
{
	struct parse_state *ps = stream;
	if (ps->failed)
		return NULL;
	char *r = fgets(buf, size, ps->file);
	if (!r)
		return NULL;
	size_t len = strlen(buf);
	bool cut = (len == 0 || buf[len - 1] != '\n') && !feof(ps->file);
	if (!line_fits(ps, cut ? (size_t)size : content_len(buf, len), size))
		return NULL;
	ps->line++;
	return r;
}

static int parse(struct parse_state *ps, ini_reader reader)
{
	int rc = ini_parse_stream(reader, ps, handler, ps);
	if (rc > 0 && !ps->failed) {
		ps->line = rc;
		fail(ps, "syntax error: expected '[section]', 'key = value' or a comment");
	} else if (rc < 0 && !ps->failed) {
		fail(ps, "out of memory while reading");
	}
	if (ps->failed)
		return -EINVAL;
	return finish(ps);
}

static void init_state(struct parse_state *ps, struct cfg *c, const char *name, char *err,
		       size_t err_len)
{
	memset(ps, 0, sizeof(*ps));
	ps->c = c;
	ps->name = name;
	ps->err = err;
	ps->err_len = err_len;
	set_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", name);
	if (err_len)
		err[0] = '\0';
}

int cfg_parse_string(struct cfg *c, const char *text, const char *name, char *err, size_t err_len)
{
	struct parse_state ps;
	init_state(&ps, c, name, err, err_len);
	ps.text = text;
	return parse(&ps, string_reader);
}

int cfg_load(struct cfg *c, const char *path, char *err, size_t err_len)
{
	struct parse_state ps;
	init_state(&ps, c, path, err, err_len);
	ps.file = fopen(path, "re");
	if (!ps.file) {
		int e = errno;
		snprintf(err, err_len, "%s: cannot read the config file: %s", path, strerror(e));
		return -e;
	}
	int rc = parse(&ps, file_reader);
	fclose(ps.file);
	return rc;
}

const struct cfg_peer *cfg_find_peer(const struct cfg *c, uint64_t id)
{
	int slot = find_peer_slot(c, id);
	return slot < 0 ? NULL : &c->peers[slot];
}
