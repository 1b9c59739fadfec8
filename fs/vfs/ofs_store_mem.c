/*
 * The transaction builder, and an in-memory ofs_store: a sorted array of
 * versioned keys with binary search, behind one rwlock. Commit checks every
 * guard first, then applies the operations in order at the next index, like
 * the replicated KV's apply. Meant for tests and the single-node harness:
 * inserts are O(n), nothing is persisted.
 */
#include "ofs_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void ofs_txn_init(struct ofs_txn *t)
{
	memset(t, 0, sizeof(*t));
}

void ofs_txn_reset(struct ofs_txn *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->ops[i].val);
	t->n = 0;
	t->bytes = 0;
	t->err = 0;
}

void ofs_txn_close(struct ofs_txn *t)
{
	ofs_txn_reset(t);
	free(t->ops);
	memset(t, 0, sizeof(*t));
}

static struct ofs_txn_op *add(struct ofs_txn *t, enum ofs_txn_op_type type, const struct ofs_key *k)
{
	if (t->err)
		return NULL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct ofs_txn_op *ops = realloc(t->ops, cap * sizeof(*ops));
		if (!ops) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->ops = ops;
		t->cap = cap;
	}
	struct ofs_txn_op *op = &t->ops[t->n++];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->key.len = k->len;
	memcpy(op->key.b, k->b, k->len);
	return op;
}

void ofs_txn_put(struct ofs_txn *t, const struct ofs_key *k, const void *val, size_t len)
{
	struct ofs_txn_op *op = add(t, OFS_OP_PUT, k);
	if (!op)
		return;
	op->val = malloc(len ? len : 1);
	if (!op->val) {
		t->n--;
		t->err = -ENOMEM;
		return;
	}
	if (len)
		memcpy(op->val, val, len);
	op->val_len = len;
	t->bytes += len;
}

void ofs_txn_delete(struct ofs_txn *t, const struct ofs_key *k)
{
	add(t, OFS_OP_DELETE, k);
}

void ofs_txn_delete_prefix(struct ofs_txn *t, const struct ofs_key *prefix)
{
	add(t, OFS_OP_DELETE_PREFIX, prefix);
}

void ofs_txn_guard_absent(struct ofs_txn *t, const struct ofs_key *k)
{
	add(t, OFS_GUARD_ABSENT, k);
}

void ofs_txn_guard_version(struct ofs_txn *t, const struct ofs_key *k, uint64_t version)
{
	struct ofs_txn_op *op = add(t, OFS_GUARD_VERSION, k);
	if (op)
		op->version = version;
}

struct mem_ent {
	uint8_t *key;
	size_t key_len;
	uint8_t *val;
	size_t val_len;
	uint64_t version;
};

struct ofs_store_mem {
	pthread_rwlock_t lock; /* protects everything below */
	struct mem_ent *ents;  /* sorted by key */
	size_t n, cap;
	uint64_t applied_idx;
	int fail_n, fail_err;
	void (*hook)(void *arg, uint64_t idx, const struct ofs_txn *t);
	void *hook_arg;
};

static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* Index of the first entry >= key. */
static size_t lower_bound(const struct ofs_store_mem *m, const void *key, size_t len)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keycmp(m->ents[mid].key, m->ents[mid].key_len, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct mem_ent *find(struct ofs_store_mem *m, const void *key, size_t len)
{
	size_t i = lower_bound(m, key, len);
	if (i < m->n && keycmp(m->ents[i].key, m->ents[i].key_len, key, len) == 0)
		return &m->ents[i];
	return NULL;
}

static void drop_at(struct ofs_store_mem *m, size_t i)
{
	free(m->ents[i].key);
	free(m->ents[i].val);
	memmove(&m->ents[i], &m->ents[i + 1], (m->n - i - 1) * sizeof(m->ents[0]));
	m->n--;
}

static int put(struct ofs_store_mem *m, const struct ofs_txn_op *op, uint64_t idx)
{
	uint8_t *val = malloc(op->val_len ? op->val_len : 1);
	if (!val)
		return -ENOMEM;
	memcpy(val, op->val, op->val_len);
	size_t i = lower_bound(m, op->key.b, op->key.len);
	if (i < m->n && keycmp(m->ents[i].key, m->ents[i].key_len, op->key.b, op->key.len) == 0) {
		free(m->ents[i].val);
		m->ents[i].val = val;
		m->ents[i].val_len = op->val_len;
		m->ents[i].version = idx;
		return 0;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct mem_ent *e = realloc(m->ents, cap * sizeof(*e));
		if (!e) {
			free(val);
			return -ENOMEM;
		}
		m->ents = e;
		m->cap = cap;
	}
	uint8_t *key = malloc(op->key.len);
	if (!key) {
		free(val);
		return -ENOMEM;
	}
	memcpy(key, op->key.b, op->key.len);
	memmove(&m->ents[i + 1], &m->ents[i], (m->n - i) * sizeof(m->ents[0]));
	m->ents[i] = (struct mem_ent){key, op->key.len, val, op->val_len, idx};
	m->n++;
	return 0;
}

static int mem_get(void *ctx, const void *key, size_t key_len, void **val, size_t *len,
		   uint64_t *version)
{
	struct ofs_store_mem *m = ctx;
	int rc = -ENOENT;
	pthread_rwlock_rdlock(&m->lock);
	struct mem_ent *e = find(m, key, key_len);
	if (e) {
		*val = malloc(e->val_len ? e->val_len : 1);
		if (!*val) {
			rc = -ENOMEM;
		} else {
			memcpy(*val, e->val, e->val_len);
			*len = e->val_len;
			*version = e->version;
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

static int mem_scan(void *ctx, const void *prefix, size_t prefix_len, const void *after,
		    size_t after_len, ofs_scan_fn fn, void *arg)
{
	struct ofs_store_mem *m = ctx;
	int rc = 0;
	pthread_rwlock_rdlock(&m->lock);
	size_t i =
		after_len ? lower_bound(m, after, after_len) : lower_bound(m, prefix, prefix_len);
	if (after_len && i < m->n &&
	    keycmp(m->ents[i].key, m->ents[i].key_len, after, after_len) == 0)
		i++;
	for (; i < m->n; i++) {
		struct mem_ent *e = &m->ents[i];
		if (e->key_len < prefix_len || memcmp(e->key, prefix, prefix_len) != 0)
			break;
		rc = fn(arg, e->key, e->key_len, e->val, e->val_len, e->version);
		if (rc != 0)
			break;
	}
	pthread_rwlock_unlock(&m->lock);
	return rc < 0 ? rc : 0;
}

static bool guards_hold(struct ofs_store_mem *m, const struct ofs_txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct ofs_txn_op *op = &t->ops[i];
		struct mem_ent *e;
		if (op->type == OFS_GUARD_ABSENT && find(m, op->key.b, op->key.len))
			return false;
		if (op->type == OFS_GUARD_VERSION) {
			e = find(m, op->key.b, op->key.len);
			if (!e || e->version != op->version)
				return false;
		}
	}
	return true;
}

static int mem_commit(void *ctx, const struct ofs_txn *t)
{
	struct ofs_store_mem *m = ctx;
	int rc = 0;
	if (t->err)
		return t->err;
	pthread_rwlock_wrlock(&m->lock);
	if (m->fail_n > 0) {
		m->fail_n--;
		rc = m->fail_err;
		goto out_unlock;
	}
	uint64_t idx = ++m->applied_idx;
	if (!guards_hold(m, t)) {
		rc = -EAGAIN;
		goto out_unlock;
	}
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const struct ofs_txn_op *op = &t->ops[i];
		size_t j;
		switch (op->type) {
		case OFS_OP_PUT:
			rc = put(m, op, idx);
			break;
		case OFS_OP_DELETE:
			j = lower_bound(m, op->key.b, op->key.len);
			if (j < m->n &&
			    keycmp(m->ents[j].key, m->ents[j].key_len, op->key.b, op->key.len) == 0)
				drop_at(m, j);
			break;
		case OFS_OP_DELETE_PREFIX:
			j = lower_bound(m, op->key.b, op->key.len);
			while (j < m->n && m->ents[j].key_len >= op->key.len &&
			       memcmp(m->ents[j].key, op->key.b, op->key.len) == 0)
				drop_at(m, j);
			break;
		case OFS_GUARD_ABSENT:
		case OFS_GUARD_VERSION:
			break;
		}
	}
	if (rc == 0 && m->hook)
		m->hook(m->hook_arg, idx, t);
out_unlock:
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

struct ofs_store_mem *ofs_store_mem_new(void)
{
	struct ofs_store_mem *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_rwlock_init(&m->lock, NULL);
	return m;
}

void ofs_store_mem_destroy(struct ofs_store_mem **mp)
{
	struct ofs_store_mem *m = *mp;
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->ents[i].key);
		free(m->ents[i].val);
	}
	free(m->ents);
	pthread_rwlock_destroy(&m->lock);
	free(m);
	*mp = NULL;
}

void ofs_store_mem_bind(struct ofs_store_mem *m, struct ofs_store *s)
{
	memset(s, 0, sizeof(*s));
	s->ctx = m;
	s->get = mem_get;
	s->scan = mem_scan;
	s->commit = mem_commit;
}

void ofs_store_mem_fail_next(struct ofs_store_mem *m, int n, int err)
{
	pthread_rwlock_wrlock(&m->lock);
	m->fail_n = n;
	m->fail_err = err;
	pthread_rwlock_unlock(&m->lock);
}

size_t ofs_store_mem_count(struct ofs_store_mem *m)
{
	pthread_rwlock_rdlock(&m->lock);
	size_t n = m->n;
	pthread_rwlock_unlock(&m->lock);
	return n;
}

void ofs_store_mem_set_hook(struct ofs_store_mem *m,
			    void (*fn)(void *arg, uint64_t idx, const struct ofs_txn *t), void *arg)
{
	pthread_rwlock_wrlock(&m->lock);
	m->hook = fn;
	m->hook_arg = arg;
	pthread_rwlock_unlock(&m->lock);
}
