/*
 * Member tables: building, encoding, checking and storing them. See
 * membership.h.
 */
#include "membership.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

#define MAGIC_LINE "omnifs-membership 1"
#define FILE_NAME  "membership"

static int cmp_peer(const void *a, const void *b)
{
	uint64_t x = ((const struct cfg_peer *)a)->id, y = ((const struct cfg_peer *)b)->id;
	return x < y ? -1 : x > y;
}

void membership_from_cfg(struct membership *m, const struct cfg *c)
{
	memset(m, 0, sizeof(*m));
	m->config_id = 1;
	m->read_quorum = c->read_quorum;
	m->write_quorum = c->write_quorum;
	m->n = c->n_peers;
	memcpy(m->peers, c->peers, c->n_peers * sizeof(c->peers[0]));
	qsort(m->peers, m->n, sizeof(m->peers[0]), cmp_peer);
}

const struct cfg_peer *membership_find(const struct membership *m, uint64_t id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->peers[i].id == id)
			return &m->peers[i];
	return NULL;
}

size_t membership_voters(const struct membership *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += !m->peers[i].learner;
	return n;
}

bool membership_is_voter(const struct membership *m, uint64_t id)
{
	const struct cfg_peer *p = membership_find(m, id);
	return p && !p->learner;
}

bool membership_is_learner(const struct membership *m, uint64_t id)
{
	const struct cfg_peer *p = membership_find(m, id);
	return p && p->learner;
}

int membership_encode(const struct membership *m, char *buf, size_t cap, size_t *len)
{
	size_t off = 0;
	int n = snprintf(buf, cap,
			 MAGIC_LINE "\nconfig %" PRIu32 "\nbase %" PRIu64 "\nquorum %" PRIu32
				    " %" PRIu32 "\n",
			 m->config_id, m->base, m->read_quorum, m->write_quorum);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	off = (size_t)n;
	for (size_t i = 0; i < m->n; i++) {
		const struct cfg_peer *p = &m->peers[i];
		n = snprintf(buf + off, cap - off, "node %" PRIu64 " %s %s%s\n", p->id, p->address,
			     p->public_key[0] ? p->public_key : "-", p->learner ? " learner" : "");
		if (n < 0 || (size_t)n >= cap - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	*len = off;
	return 0;
}

/* Writes the reason into err and returns rc. */
__attribute__((format(printf, 4, 5))) static int reason(int rc, char *err, size_t err_len,
							const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return rc;
}

/* A decimal number filling the whole token, without sign or leading junk. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_node(struct membership *m, char *args, unsigned line, char *err, size_t err_len)
{
	char *save = NULL;
	char *id_s = strtok_r(args, " ", &save);
	char *addr = strtok_r(NULL, " ", &save);
	char *key = strtok_r(NULL, " ", &save);
	char *role = strtok_r(NULL, " ", &save);
	uint64_t id;
	if (!id_s || !addr || !key || strtok_r(NULL, " ", &save) ||
	    (role && strcmp(role, "learner") != 0))
		return reason(-EBADMSG, err, err_len,
			      "line %u: expected 'node ID HOST:PORT KEY [learner]'", line);
	if (!parse_u64(id_s, UINT64_MAX, &id) || id == 0)
		return reason(-EBADMSG, err, err_len, "line %u: node id must be >= 1", line);
	if (m->n == CFG_MAX_PEERS)
		return reason(-EBADMSG, err, err_len, "more than %d members", CFG_MAX_PEERS);
	if (membership_find(m, id))
		return reason(-EBADMSG, err, err_len, "line %u: n%" PRIu64 " listed twice", line,
			      id);
	if (strlen(addr) >= CFG_ADDR_MAX || !cfg_address_is_valid(addr))
		return reason(-EBADMSG, err, err_len, "line %u: bad address for n%" PRIu64, line,
			      id);
	if (strcmp(key, "-") != 0 && !cfg_key_is_valid(key))
		return reason(-EBADMSG, err, err_len, "line %u: bad public key for n%" PRIu64, line,
			      id);
	struct cfg_peer *p = &m->peers[m->n++];
	memset(p, 0, sizeof(*p));
	p->id = id;
	snprintf(p->address, sizeof(p->address), "%s", addr);
	if (strcmp(key, "-") != 0)
		snprintf(p->public_key, sizeof(p->public_key), "%s", key);
	p->learner = role != NULL;
	return 0;
}

static int parse_line(struct membership *m, char *line, unsigned no, char *err, size_t err_len)
{
	char *sp = strchr(line, ' ');
	if (!sp)
		return reason(-EBADMSG, err, err_len, "line %u: expected 'NAME VALUE'", no);
	*sp = '\0';
	char *val = sp + 1;
	uint64_t v;
	if (strcmp(line, "node") == 0)
		return parse_node(m, val, no, err, err_len);
	if (strcmp(line, "config") == 0 && parse_u64(val, UINT32_MAX, &v) && v >= 1) {
		m->config_id = (uint32_t)v;
		return 0;
	}
	if (strcmp(line, "base") == 0 && parse_u64(val, UINT64_MAX, &v)) {
		m->base = v;
		return 0;
	}
	if (strcmp(line, "quorum") == 0) {
		char *w = strchr(val, ' ');
		uint64_t r, wq;
		if (w) {
			*w = '\0';
			if (parse_u64(val, CFG_MAX_PEERS, &r) &&
			    parse_u64(w + 1, CFG_MAX_PEERS, &wq)) {
				m->read_quorum = (uint32_t)r;
				m->write_quorum = (uint32_t)wq;
				return 0;
			}
		}
	}
	return reason(-EBADMSG, err, err_len, "line %u: bad '%s' line", no, line);
}

int membership_decode(struct membership *m, const void *data, size_t len, char *err, size_t err_len)
{
	memset(m, 0, sizeof(*m));
	if (len == 0 || len >= MEMBERSHIP_ENC_MAX)
		return reason(-EBADMSG, err, err_len, "member table of %zu bytes", len);
	char *text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, data, len);
	text[len] = '\0';
	int rc = 0;
	if (strlen(text) != len || text[len - 1] != '\n')
		rc = reason(-EBADMSG, err, err_len, "member table is not newline-terminated text");
	char *save = NULL;
	unsigned no = 0;
	for (char *line = strtok_r(text, "\n", &save); rc == 0 && line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (++no == 1) {
			if (strcmp(line, MAGIC_LINE) != 0)
				rc = reason(-EBADMSG, err, err_len,
					    "not a member table (first line '%s')", line);
			continue;
		}
		rc = parse_line(m, line, no, err, err_len);
	}
	free(text);
	if (rc == 0 && (m->config_id == 0 || membership_voters(m) == 0))
		rc = reason(-EBADMSG, err, err_len, "member table without a config id or voters");
	if (rc == 0)
		qsort(m->peers, m->n, sizeof(m->peers[0]), cmp_peer);
	return rc;
}

int membership_next(struct membership *next, const struct membership *cur, uint64_t remove_id,
		    const struct cfg_peer *add, bool plaintext, char *err, size_t err_len)
{
	*next = *cur;
	next->config_id = cur->config_id + 1;
	next->base = 0; /* known only when the stop-sign is decided */
	next->read_quorum = next->write_quorum = 0;
	if (remove_id) {
		size_t i = 0;
		while (i < next->n && next->peers[i].id != remove_id)
			i++;
		if (i == next->n)
			return reason(-EINVAL, err, err_len, "n%" PRIu64 " is not a member",
				      remove_id);
		memmove(&next->peers[i], &next->peers[i + 1],
			(next->n - i - 1) * sizeof(next->peers[0]));
		next->n--;
	}
	if (add) {
		if (add->id == 0)
			return reason(-EINVAL, err, err_len, "node ids are >= 1");
		if (membership_find(next, add->id) || membership_find(cur, add->id))
			return reason(-EINVAL, err, err_len, "n%" PRIu64 " is already a member",
				      add->id);
		if (!cfg_address_is_valid(add->address))
			return reason(-EINVAL, err, err_len, "'%s' is not HOST:PORT", add->address);
		if (!plaintext && !cfg_key_is_valid(add->public_key))
			return reason(-EINVAL, err, err_len,
				      "n%" PRIu64 " needs its 40-character Z85 public key (the "
				      "public-key line of its key file)",
				      add->id);
		if (next->n == CFG_MAX_PEERS)
			return reason(-EINVAL, err, err_len, "a cluster has at most %d members",
				      CFG_MAX_PEERS);
		next->peers[next->n] = *add;
		if (plaintext)
			next->peers[next->n].public_key[0] = '\0';
		next->n++;
		qsort(next->peers, next->n, sizeof(next->peers[0]), cmp_peer);
	}
	if (membership_voters(next) < 2)
		return reason(-EINVAL, err, err_len, "a cluster needs at least 2 voters");
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	if (membership_encode(next, buf, sizeof(buf), &len) != 0)
		return reason(-EINVAL, err, err_len, "the member table does not fit");
	return 0;
}

/* next = cur as the next configuration, quorums back to majorities; the
 * entry of member id in it, or NULL if id is not a member. */
static struct cfg_peer *next_of(struct membership *next, const struct membership *cur, uint64_t id)
{
	*next = *cur;
	next->config_id = cur->config_id + 1;
	next->base = 0; /* known only when the stop-sign is decided */
	next->read_quorum = next->write_quorum = 0;
	return (struct cfg_peer *)membership_find(next, id);
}

int membership_rekey(struct membership *next, const struct membership *cur, uint64_t id,
		     const char *key, char *err, size_t err_len)
{
	struct cfg_peer *p = next_of(next, cur, id);
	if (!p)
		return reason(-EINVAL, err, err_len, "n%" PRIu64 " is not a member", id);
	if (!cfg_key_is_valid(key))
		return reason(-EINVAL, err, err_len,
			      "the new key must be a 40-character Z85 public key (the public-key "
			      "line of the new key file)");
	if (strcmp(p->public_key, key) == 0)
		return reason(-EINVAL, err, err_len, "n%" PRIu64 " already has this key", id);
	snprintf(p->public_key, sizeof(p->public_key), "%s", key);
	return 0;
}

int membership_set_role(struct membership *next, const struct membership *cur, uint64_t id,
			bool learner, char *err, size_t err_len)
{
	struct cfg_peer *p = next_of(next, cur, id);
	if (!p)
		return reason(-EINVAL, err, err_len, "n%" PRIu64 " is not a member", id);
	if (p->learner == learner)
		return reason(-EINVAL, err, err_len, "n%" PRIu64 " is already a %s", id,
			      learner ? "learner" : "voter");
	p->learner = learner;
	if (membership_voters(next) < 2)
		return reason(-EINVAL, err, err_len, "a cluster needs at least 2 voters");
	return 0;
}

bool membership_equal(const struct membership *a, const struct membership *b)
{
	if (a->config_id != b->config_id || a->base != b->base ||
	    a->read_quorum != b->read_quorum || a->write_quorum != b->write_quorum || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->peers[i].id != b->peers[i].id ||
		    a->peers[i].learner != b->peers[i].learner ||
		    strcmp(a->peers[i].address, b->peers[i].address) != 0 ||
		    strcmp(a->peers[i].public_key, b->peers[i].public_key) != 0)
			return false;
	return true;
}

void membership_ids(const struct membership *m, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < m->n && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%" PRIu64, i ? "," : "", m->peers[i].id);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

int membership_file_read(const char *data_dir, struct membership *m, char *err, size_t err_len)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/" FILE_NAME, data_dir);
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		if (e != ENOENT)
			snprintf(err, err_len, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len = fread(buf, 1, sizeof(buf), f);
	bool failed = ferror(f);
	fclose(f);
	if (failed) {
		snprintf(err, err_len, "cannot read %s", path);
		return -EIO;
	}
	char why[200];
	int rc = membership_decode(m, buf, len, why, sizeof(why));
	if (rc == -EBADMSG)
		snprintf(err, err_len, "%s is corrupt: %s", path, why);
	return rc;
}

int membership_file_write(const char *data_dir, const struct membership *m, char *err,
			  size_t err_len)
{
	char buf[MEMBERSHIP_ENC_MAX];
	size_t len;
	if (membership_encode(m, buf, sizeof(buf), &len) != 0) {
		snprintf(err, err_len, "member table too large");
		return -ENOSPC;
	}
	return atomic_file_write(data_dir, FILE_NAME, buf, len, err, err_len);
}
