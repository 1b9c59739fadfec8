/*
 * The node records (schema.h) kept in memory: the filesystem's usage is the
 * sum of every node's, and this node's shares give the guards of its
 * changes and its inode counter. A create, an extending write and a commit
 * that adds bytes or inodes each need them; reading them is a scan over keys
 * that every change rewrites, so they are read once and then followed.
 *
 * The table stands for the state at one applied index (idx: entries [0, idx)
 * are in it). A scan fills it at the index read before the scan began (a
 * scan that overlaps an apply may see the newer state under the older
 * index: as fresh as a read made just then). The apply hook then moves it
 * along entry by entry: entry idx's writes of node records are put in, and
 * the table stands for idx + 1. An entry applied without the hook (a failed
 * guard, a duplicate, a membership change) leaves the table behind the
 * state, and so does a state transfer: a read that finds the table's index
 * other than kv_applied_idx scans again. The proposer of a change learns
 * of its apply before the hook runs; if it asks before the hook is done,
 * the indexes differ and it scans, so it always reads its own change.
 *
 * Keys under the records' prefix that do not parse (no omnifs writes them)
 * count in the usage if their value decodes, as in the scan that summed
 * them before; one written by an entry makes the table forget itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "ofs_int.h"

/* More nodes than this ever wrote records: no table, every read scans. */
#define NR_NODES_MAX 32

struct nr_node {
	uint64_t id;
	uint32_t has; /* bit s: share s exists and decodes */
	uint32_t bad; /* bit s: share s exists and does not decode */
	struct ofs_noderec r[OFS_NODE_SHARES];
	uint64_t ver[OFS_NODE_SHARES];
};

struct ofs_noderecs {
	uint64_t idx; /* the state [0, idx) */
	size_t n;
	struct nr_node node[NR_NODES_MAX];
	int64_t odd_bytes, odd_inodes; /* decodable values under keys that do not parse */
	bool odd_mine;		       /* one such key is under this node's prefix */
	bool full;		       /* more than NR_NODES_MAX nodes: not kept */
};

static struct nr_node *node_of(struct ofs_noderecs *t, uint64_t id, bool add)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->node[i].id == id)
			return &t->node[i];
	if (!add)
		return NULL;
	if (t->n == NR_NODES_MAX) {
		t->full = true;
		return NULL;
	}
	struct nr_node *n = &t->node[t->n++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	return n;
}

/* Share s of node n is now val (NULL: deleted), written at version ver. */
static void put_share(struct nr_node *n, unsigned s, const void *val, size_t len, uint64_t ver)
{
	uint32_t bit = 1u << s;
	n->has &= ~bit;
	n->bad &= ~bit;
	if (!val)
		return;
	if (ofs_noderec_decode(&n->r[s], val, len) == 0) {
		n->has |= bit;
		n->ver[s] = ver;
	} else {
		n->bad |= bit;
	}
}

struct nr_scan {
	struct ofs_noderecs *t;
	struct ofs_key mine; /* this node's share 0 key: the prefix of its shares */
};

static int scan_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		    uint64_t version)
{
	struct nr_scan *s = arg;
	uint64_t id;
	unsigned share;
	if (ofs_key_parse_node(key, key_len, &id, &share) == 0) {
		struct nr_node *n = node_of(s->t, id, true);
		if (n)
			put_share(n, share, val, val_len, version);
		return 0;
	}
	struct ofs_noderec r;
	if (ofs_noderec_decode(&r, val, val_len) == 0) {
		s->t->odd_bytes += r.bytes;
		s->t->odd_inodes += r.inodes;
	}
	if (key_len >= s->mine.len && memcmp(key, s->mine.b, s->mine.len) == 0)
		s->t->odd_mine = true;
	return 0;
}

/* Without a table (too many nodes): the answer summed as one scan goes. */
struct sum_scan {
	struct ofs_nr_answer *a;
	struct ofs_key mine;
	unsigned want;
};

static int sum_one(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		   uint64_t version)
{
	struct sum_scan *s = arg;
	struct ofs_nr_answer *a = s->a;
	struct ofs_noderec r;
	bool decoded = ofs_noderec_decode(&r, val, val_len) == 0;
	if (decoded) {
		a->bytes += r.bytes;
		a->inodes += r.inodes;
	}
	if (key_len < s->mine.len || memcmp(key, s->mine.b, s->mine.len) != 0)
		return 0; /* another node's */
	uint64_t id;
	unsigned share;
	if (!decoded || ofs_key_parse_node(key, key_len, &id, &share) != 0) {
		a->bad = true;
		return 0;
	}
	if (r.next > a->max_next)
		a->max_next = r.next;
	if (share == s->want) {
		a->found = true;
		a->r = r;
		a->ver = version;
	}
	return 0;
}

static int sum_all(struct ofs *o, unsigned share, struct ofs_nr_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->inodes = 1; /* the root counts as one inode */
	a->max_next = 1;
	struct sum_scan s = {.a = a, .want = share};
	struct ofs_key p;
	ofs_key_node(&s.mine, o->cfg.node_id, 0);
	ofs_key_node_prefix(&p);
	return ofs_kv_scan(o, p.b, p.len, NULL, 0, sum_one, &s) ? -EIO : 0;
}

/* What the table says for this node's share `share`. */
static void answer_of(const struct ofs_noderecs *t, uint64_t me, unsigned share,
		      struct ofs_nr_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->bytes = t->odd_bytes;
	a->inodes = 1 + t->odd_inodes; /* the root counts as one inode */
	a->bad = t->odd_mine;
	a->max_next = 1;
	for (size_t i = 0; i < t->n; i++) {
		const struct nr_node *n = &t->node[i];
		for (unsigned s = 0; s < OFS_NODE_SHARES; s++) {
			if (!(n->has & (1u << s)))
				continue;
			a->bytes += n->r[s].bytes;
			a->inodes += n->r[s].inodes;
			if (n->id == me && n->r[s].next > a->max_next)
				a->max_next = n->r[s].next;
		}
		if (n->id != me)
			continue;
		a->bad |= n->bad != 0;
		if (n->has & (1u << share)) {
			a->found = true;
			a->r = n->r[share];
			a->ver = n->ver[share];
		}
	}
}

int ofs_noderecs_read(struct ofs *o, unsigned share, struct ofs_nr_answer *a)
{
	uint64_t idx = kv_applied_idx(o->b.kv);
	pthread_mutex_lock(&o->nr_lock);
	bool kept = o->nr && o->nr->idx == idx;
	if (kept)
		answer_of(o->nr, o->cfg.node_id, share, a);
	pthread_mutex_unlock(&o->nr_lock);
	if (kept)
		return 0;
	struct ofs_noderecs *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->idx = idx;
	struct nr_scan s = {.t = t};
	struct ofs_key p;
	ofs_key_node(&s.mine, o->cfg.node_id, 0);
	ofs_key_node_prefix(&p);
	if (ofs_kv_scan(o, p.b, p.len, NULL, 0, scan_one, &s) != 0) {
		free(t);
		return -EIO;
	}
	if (t->full) {
		/* The answer needs every record: scan them again, summing as the
		 * scan goes, without keeping a table. */
		free(t);
		return sum_all(o, share, a);
	}
	answer_of(t, o->cfg.node_id, share, a);
	pthread_mutex_lock(&o->nr_lock);
	if (!o->nr || o->nr->idx <= idx) { /* never over a newer one */
		free(o->nr);
		o->nr = t;
		t = NULL;
	}
	pthread_mutex_unlock(&o->nr_lock);
	free(t);
	return 0;
}

void ofs_noderecs_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t)
{
	struct ofs_key p;
	ofs_key_node_prefix(&p);
	pthread_mutex_lock(&o->nr_lock);
	struct ofs_noderecs *nr = o->nr;
	if (!nr || nr->idx != idx) {
		/* Behind (a read will scan) or already past idx (a scan saw it). */
		pthread_mutex_unlock(&o->nr_lock);
		return;
	}
	bool lost = false;
	for (uint32_t i = 0; i < t->n_ops && !lost; i++) {
		const struct kv_op *op = &t->ops[i];
		uint64_t id;
		unsigned share;
		if (op->type == KV_OP_DELETE_PREFIX) {
			/* One that covers node records, or is inside their range. */
			size_t n = op->key_len < p.len ? op->key_len : p.len;
			lost = memcmp(op->key, p.b, n) == 0;
			continue;
		}
		if (op->type != KV_OP_PUT && op->type != KV_OP_DELETE)
			continue;
		if (op->key_len < p.len || memcmp(op->key, p.b, p.len) != 0)
			continue; /* not a node record */
		if (ofs_key_parse_node(op->key, op->key_len, &id, &share) != 0) {
			lost = true;
			continue;
		}
		struct nr_node *n = node_of(nr, id, op->type == KV_OP_PUT);
		if (nr->full)
			lost = true;
		else if (n)
			put_share(n, share, op->type == KV_OP_PUT ? op->value : NULL, op->value_len,
				  idx);
	}
	if (lost) {
		free(o->nr);
		o->nr = NULL;
	} else {
		nr->idx = idx + 1;
	}
	pthread_mutex_unlock(&o->nr_lock);
}

void ofs_noderecs_forget(struct ofs *o)
{
	pthread_mutex_lock(&o->nr_lock);
	free(o->nr);
	o->nr = NULL;
	pthread_mutex_unlock(&o->nr_lock);
}
