/*
 * The lock keeper of one node: queues lock requests, turns each into one
 * guarded transaction on the lock table, keeps waiters until they can be
 * granted, renews this node's lease and expires the leases of nodes that
 * stopped renewing theirs. See locks.h for the design (leases, expiry) and
 * lock_table.h for the table.
 *
 * Threads: callers (FUSE workers, control commands) queue requests under
 * mu; the keeper thread takes them, reads the KV and proposes; the renewer
 * thread only renews the lease the keeper made (so a busy keeper never lets
 * it lapse); the apply hook (the replica thread) only sets `changed` under
 * mu. mu protects the
 * fields marked so; the keeper's own fields are touched by it alone. mu is a
 * leaf: nothing else is locked under it, and it is never held across a KV
 * read, a proposal or a done callback.
 */
#include "locks.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ctl.h"
#include "kv.h"
#include "log.h"
#include "ofs.h"
#include "ofs_int.h"

#define LOCKS__RETRIES	     64 /* rebuilds after a failed guard */
#define LOCKS__EARLY_CANCELS 64 /* cancels remembered for requests not yet queued */
#define LOCKS__CLEANUPS	     16 /* records cleaned of stale holders per tick */

struct req {
	uint64_t id;
	enum ofs_lock_op op;
	struct lk_key res;
	struct lk_holder q;
	bool wait;
	const void *tag;
	ofs_lock_done_fn done;
	void *ctx;
	uint64_t since_ms;
	/* under mu */
	bool cancelled;
	bool tried;	/* attempted once: from now on only on changes and ticks */
	bool finishing; /* done is running: it leaves the queue afterwards */
	uint64_t round;
	struct req *next;
};

/* How many locks this node holds on one resource (the fast path of close). */
struct held {
	struct lk_key res;
	uint32_t n;
};

/* When this node first saw a holder (ages in listings). */
struct seen {
	struct lk_key res;
	struct lk_holder h;
	uint64_t first_ms;
	bool live;
};

/* A lease as read from the table. */
struct lease {
	uint64_t node, epoch, version;
};

struct leases {
	struct lease *v;
	size_t n, cap;
};

/* The keeper's watch on another node's lease. */
struct watch {
	uint64_t node, epoch, lease_ver, renew_ver;
	uint64_t seen_ms; /* when this (epoch, renewal) was first seen here */
	bool live;
};

struct ofs_locks {
	struct ofs_locks_config c;
	struct ofs_backend b;
	uint32_t tick_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;	 /* the keeper waits on it */
	pthread_cond_t finished; /* a request left the queue */

	/* under mu */
	bool stop;
	bool changed; /* the lock table changed since the keeper last looked */
	struct req *queue;
	uint64_t next_id;
	uint64_t early[LOCKS__EARLY_CANCELS];
	unsigned n_early, early_pos;
	struct held *held;
	size_t n_held, cap_held;
	struct seen *seen;
	size_t n_seen, cap_seen;
	bool in_doubt;
	uint64_t lost_count, lost_ms;
	uint64_t renew_ok_ms;

	/* Written by the keeper under mu, read by it without (it is the only
	 * writer) and by the renewer under mu. */
	uint64_t epoch;
	bool lease_created; /* a lease with epoch was proposed and may exist */
	/* under mu: when the last renewal (or lock) that renews was proposed */
	uint64_t renew_start_ms;
	atomic_uint_fast64_t renew_counter; /* the value of the next L w */
	pthread_t renewer;
	pthread_cond_t renew_wake; /* the renewer waits on it (under mu) */

	/* the keeper's */
	struct watch *watch;
	size_t n_watch, cap_watch;
	bool seen_dirty;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t new_epoch(void)
{
	uint64_t e = 0;
	while (e == 0) {
		if (getrandom(&e, sizeof(e), 0) != (ssize_t)sizeof(e)) {
			/* Unique enough without the kernel's randomness: time and address. */
			e = now_ms() ^ ((uint64_t)(uintptr_t)&e << 16) ^ (uint64_t)clock();
		}
	}
	return e;
}

/* --- reads of the table ---------------------------------------------------------- */

/* Every record under prefix, on one view of the applied state. */
static int scan(struct ofs_locks *l, const struct lk_key *prefix, ofs_scan_fn fn, void *arg)
{
	return ofs_kv_scan_store(l->b.kv, prefix->b, prefix->len, NULL, 0, fn, arg);
}

static int add_lease(void *arg, const void *k, size_t kl, const void *v, size_t vl, uint64_t ver)
{
	struct leases *ls = arg;
	struct lease le = {.version = ver};
	if (lk_key_parse_node(k, kl, &le.node) != 0 || lk_lease_decode(v, vl, &le.epoch) != 0)
		return 0; /* not ours to judge: skipped, so its holders count as stale */
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 8;
		struct lease *p = realloc(ls->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		ls->v = p;
		ls->cap = cap;
	}
	ls->v[ls->n++] = le;
	return 0;
}

static int load_leases(struct ofs_locks *l, struct leases *ls)
{
	ls->n = 0;
	struct lk_key p;
	lk_key_lease_prefix(&p);
	return scan(l, &p, add_lease, ls);
}

static const struct lease *find_lease(const struct leases *ls, uint64_t node)
{
	for (size_t i = 0; i < ls->n; i++)
		if (ls->v[i].node == node)
			return &ls->v[i];
	return NULL;
}

static bool holder_valid(void *ctx, const struct lk_holder *h)
{
	const struct lease *le = find_lease(ctx, h->node);
	return le && le->epoch == h->epoch;
}

/* The nodes whose holders a transaction drops as stale. */
struct dropped {
	const struct leases *ls;
	uint64_t *node;
	size_t n, cap;
	bool nomem;
};

static bool holder_valid_noting(void *ctx, const struct lk_holder *h)
{
	struct dropped *d = ctx;
	if (holder_valid((void *)d->ls, h))
		return true;
	for (size_t i = 0; i < d->n; i++)
		if (d->node[i] == h->node)
			return false;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4;
		uint64_t *p = realloc(d->node, cap * sizeof(*p));
		if (!p) {
			d->nomem = true;
			return false;
		}
		d->node = p;
		d->cap = cap;
	}
	d->node[d->n++] = h->node;
	return false;
}

/*
 * A holder is dropped as stale on the strength of its node's lease as read
 * here: the transaction holds only if that lease is still so when it is
 * applied. Without this guard, a lease created (with its first holder)
 * after this node read the leases but before it read the record would make
 * a valid holder look stale, and two nodes would hold one lock.
 */
static int guard_dropped_leases(struct kv_txn *t, const struct dropped *d)
{
	if (d->nomem)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < d->n && !rc; i++) {
		struct lk_key k;
		lk_key_lease(&k, d->node[i]);
		const struct lease *le = find_lease(d->ls, d->node[i]);
		rc = le ? kv_txn_add_guard_version(t, k.b, k.len, le->version)
			: kv_txn_add_guard_absent(t, k.b, k.len);
	}
	return rc;
}

/* The record of res: decoded (empty if absent), its stored bytes (malloc'd,
 * NULL if absent) and version (0 if absent). */
static int read_record(struct ofs_locks *l, const struct lk_key *res, struct lk_record *r,
		       uint8_t **val, size_t *len, uint64_t *ver)
{
	struct lk_key k;
	lk_key_record(&k, res);
	void *v = NULL;
	*len = 0;
	*ver = 0;
	*val = NULL;
	lk_record_init(r);
	int rc = kv_get(l->b.kv, k.b, k.len, &v, len, ver);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	rc = lk_record_decode(r, v, *len);
	if (rc) {
		free(v);
		log_err("locks: a malformed lock record in the state (%s)", strerror(-rc));
		return -EIO;
	}
	*val = v;
	return 0;
}

/* read_record, then load_leases: in that order, a holder granted between
 * the two reads is missing from the view, never taken for stale. On an
 * error nothing is left to free. */
static int read_view(struct ofs_locks *l, const struct lk_key *res, struct lk_record *r,
		     uint8_t **val, size_t *len, uint64_t *ver, struct leases *ls)
{
	int rc = read_record(l, res, r, val, len, ver);
	if (rc == 0 && (rc = load_leases(l, ls)) != 0) {
		lk_record_free(r);
		free(*val);
		*val = NULL;
	}
	return rc;
}

/* --- the node's own holdings and lease ---------------------------------------------- */

/* Under mu. */
static void set_held(struct ofs_locks *l, const struct lk_key *res, uint32_t n)
{
	for (size_t i = 0; i < l->n_held; i++) {
		if (l->held[i].res.len == res->len &&
		    memcmp(l->held[i].res.b, res->b, res->len) == 0) {
			if (n)
				l->held[i].n = n;
			else
				l->held[i] = l->held[--l->n_held];
			return;
		}
	}
	if (!n)
		return;
	if (l->n_held == l->cap_held) {
		size_t cap = l->cap_held ? l->cap_held * 2 : 8;
		struct held *p = realloc(l->held, cap * sizeof(*p));
		if (!p)
			return; /* the fast path then says "not held": see maybe_held */
		l->held = p;
		l->cap_held = cap;
	}
	l->held[l->n_held].res = *res;
	l->held[l->n_held].n = n;
	l->n_held++;
}

static uint64_t held_total(struct ofs_locks *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t t = 0;
	for (size_t i = 0; i < l->n_held; i++)
		t += l->held[i].n;
	pthread_mutex_unlock(&l->mu);
	return t;
}

/*
 * Gives up every lock of this node: a new epoch, so no holder of the old
 * one is ever taken for ours again (the old lease, if still there, is
 * dropped at the next tick, or expired by the others).
 */
static void lose_locks(struct ofs_locks *l, const char *why)
{
	uint64_t held = held_total(l);
	uint64_t epoch = new_epoch();
	pthread_mutex_lock(&l->mu);
	l->lease_created = false;
	l->epoch = epoch;
	l->in_doubt = false;
	l->n_held = 0;
	if (held) {
		l->lost_count++;
		l->lost_ms = now_ms();
	}
	pthread_mutex_unlock(&l->mu);
	if (held)
		log_err("locks: %s: the %llu locks held here are lost; processes holding them "
			"must not rely on them",
			why, (unsigned long long)held);
}

/*
 * Compares the table's lease of this node with what the keeper proposed:
 * a lease it created that is gone (or replaced) was expired by another node,
 * and every lock this node held with it is lost.
 */
static void check_own_lease(struct ofs_locks *l, const struct leases *ls)
{
	const struct lease *own = find_lease(ls, l->c.node_id);
	if (own && own->epoch == l->epoch) {
		pthread_mutex_lock(&l->mu);
		if (!l->lease_created) {
			/* A creation that timed out was applied after all. */
			l->lease_created = true;
			l->renew_start_ms = now_ms();
		}
		pthread_mutex_unlock(&l->mu);
		return;
	}
	if (l->lease_created)
		lose_locks(l, "this node's lease expired (not renewed in time)");
}

static int commit(struct ofs_locks *l, const struct kv_txn *t)
{
	struct kv_result res;
	memset(&res, 0, sizeof(res));
	int rc = l->b.propose(l->b.ctx, t, &res);
	if (rc)
		return rc;
	if (res.status == KV_APPLIED)
		return 0;
	if (res.status == KV_CONFLICT) {
		log_debug("locks: n%llu: guard %u failed", (unsigned long long)l->c.node_id,
			  res.conflict_op);
		return -EAGAIN;
	}
	log_err("locks: a transaction came back with status %d", (int)res.status);
	return -EIO;
}

/*
 * Adds what makes the holders this transaction writes valid: this node's
 * lease, created if missing, and a renewal (so a node busy taking locks
 * renews with every one of them). *creating says whether it creates one.
 */
static int add_own_lease(struct ofs_locks *l, struct kv_txn *t, const struct leases *ls,
			 bool *creating)
{
	struct lk_key k, w;
	lk_key_lease(&k, l->c.node_id);
	lk_key_renew(&w, l->c.node_id);
	const struct lease *own = find_lease(ls, l->c.node_id);
	uint8_t e[8], c[8];
	lk_lease_encode(l->epoch, e);
	lk_lease_encode(atomic_fetch_add(&l->renew_counter, 1) + 1, c);
	*creating = false;
	int rc;
	if (own && own->epoch == l->epoch) {
		rc = kv_txn_add_guard_version(t, k.b, k.len, own->version);
	} else {
		/* None, or one of an earlier run of this node: ours replaces it. */
		rc = own ? kv_txn_add_guard_version(t, k.b, k.len, own->version)
			 : kv_txn_add_guard_absent(t, k.b, k.len);
		if (!rc)
			rc = kv_txn_add_put(t, k.b, k.len, e, sizeof(e));
		*creating = rc == 0;
	}
	if (!rc)
		rc = kv_txn_add_put(t, w.b, w.len, c, sizeof(c));
	return rc;
}

/* --- one request ----------------------------------------------------------------- */

static void note_seen(struct ofs_locks *l, const uint8_t *res, size_t res_len,
		      const struct lk_holder *h, uint64_t now);

/*
 * Runs op once against the table, rebuilding after failed guards: 0 done,
 * -EAGAIN a valid conflicting holder, or an error of the backend. With
 * confirm, a conflict seen in this node's state is checked again after
 * catching up with the cluster, so "busy" is never an echo of the past.
 */
static int attempt(struct ofs_locks *l, enum ofs_lock_op op, const struct lk_key *res,
		   const struct lk_holder *q0, bool confirm)
{
	struct leases ls = {0};
	int rc = -EAGAIN;
	/* caught up with the leader since the request came (a waiter need not:
	 * it is tried again when the table changes) */
	bool fresh = !confirm;
	for (unsigned tries = 0; tries < LOCKS__RETRIES; tries++) {
		struct lk_record r;
		uint8_t *old = NULL;
		size_t old_len;
		uint64_t ver;
		struct kv_txn t;
		bool retry = false;
		struct dropped d = {.ls = &ls};
		kv_txn_init(&t, 0, 0);
		rc = read_view(l, res, &r, &old, &old_len, &ver, &ls);
		if (rc)
			break;
		check_own_lease(l, &ls);
		lk_drop_stale(&r, holder_valid_noting, &d);
		struct lk_holder q = *q0;
		q.node = l->c.node_id;
		q.epoch = l->epoch;
		int result = 0;
		bool need_lease = false;
		switch (op) {
		case OFS_LOCK_SET:
			if (q.type != LK_UNLOCK) {
				int c = lk_find_conflict(&r, &q);
				if (c >= 0 && !fresh) {
					/* This node may not have applied the release yet:
					 * a busy answer must hold for the cluster, so
					 * catch up (an empty entry) and look again. */
					fresh = true;
					retry = commit(l, &t) == 0;
					rc = -EAGAIN;
					goto next_free;
				}
				if (c >= 0) {
					result = -EAGAIN;
					/* Linux drops a flock being converted before it
					 * waits, so two upgraders cannot deadlock. */
					if (q.kind != LK_FLOCK) {
						rc = -EAGAIN;
						goto next_free;
					}
					q.type = LK_UNLOCK;
				} else {
					need_lease = true;
				}
			}
			rc = lk_apply(&r, &q);
			break;
		case OFS_LOCK_DROP_OWNER:
			lk_remove_owner(&r, q.node, q.owner, q.kind);
			rc = 0;
			break;
		case OFS_LOCK_DROP_FH:
			lk_remove_fh(&r, q.node, q.fh);
			rc = 0;
			break;
		}
		if (rc)
			goto next_free;
		uint8_t *nv = NULL;
		size_t nl = 0;
		if (r.n) {
			rc = lk_record_encode(&r, &nv, &nl);
			if (rc)
				goto next_free;
		}
		if ((r.n == 0 && !old) ||
		    (old && nv && nl == old_len && memcmp(nv, old, nl) == 0)) {
			/* Nothing to write: already so. */
			free(nv);
			rc = result;
			pthread_mutex_lock(&l->mu);
			set_held(l, res, lk_count_node(&r, l->c.node_id));
			pthread_mutex_unlock(&l->mu);
			goto next_free;
		}
		struct lk_key k;
		lk_key_record(&k, res);
		rc = old ? kv_txn_add_guard_version(&t, k.b, k.len, ver)
			 : kv_txn_add_guard_absent(&t, k.b, k.len);
		if (!rc)
			rc = guard_dropped_leases(&t, &d);
		if (!rc)
			rc = r.n ? kv_txn_add_put(&t, k.b, k.len, nv, nl)
				 : kv_txn_add_delete(&t, k.b, k.len);
		free(nv);
		bool creating = false;
		if (!rc && need_lease)
			rc = add_own_lease(l, &t, &ls, &creating);
		if (rc)
			goto next_free;
		uint64_t t0 = now_ms();
		rc = commit(l, &t);
		pthread_mutex_lock(&l->mu);
		if (creating && (rc == 0 || rc == -ETIMEDOUT))
			l->lease_created = true;
		if (need_lease && (rc == 0 || rc == -ETIMEDOUT))
			l->renew_start_ms = t0;
		pthread_mutex_unlock(&l->mu);
		if (rc == -ETIMEDOUT && need_lease) {
			/* It may still be applied: count it as held, so the
			 * holder's close releases it whatever came of it. */
			pthread_mutex_lock(&l->mu);
			set_held(l, res, lk_count_node(&r, l->c.node_id));
			pthread_mutex_unlock(&l->mu);
		}
		if (rc == -EAGAIN) {
			retry = true; /* a failed guard: read again */
		} else if (rc == 0) {
			pthread_mutex_lock(&l->mu);
			if (need_lease) {
				l->renew_ok_ms = t0;
				l->in_doubt = false;
			}
			set_held(l, res, lk_count_node(&r, l->c.node_id));
			/* Ages of this node's holders count from their grant. */
			for (uint32_t i = 0; i < r.n; i++)
				if (r.h[i].node == l->c.node_id)
					note_seen(l, res->b, res->len, &r.h[i], t0);
			pthread_mutex_unlock(&l->mu);
			rc = result;
		}
	next_free:
		kv_txn_free(&t);
		lk_record_free(&r);
		free(old);
		free(d.node);
		if (!retry)
			break;
	}
	free(ls.v);
	return rc;
}

/* --- the queue ------------------------------------------------------------------ */

uint64_t ofs_locks_new_id(struct ofs_locks *l)
{
	pthread_mutex_lock(&l->mu);
	uint64_t id = ++l->next_id;
	pthread_mutex_unlock(&l->mu);
	return id;
}

static bool take_early_cancel(struct ofs_locks *l, uint64_t id)
{
	for (unsigned i = 0; i < l->n_early; i++) {
		if (l->early[i] == id) {
			l->early[i] = 0;
			return true;
		}
	}
	return false;
}

void ofs_locks_submit(struct ofs_locks *l, uint64_t id, enum ofs_lock_op op,
		      const struct lk_key *res, const struct lk_holder *q, bool wait,
		      const void *tag, ofs_lock_done_fn done, void *ctx)
{
	struct req *r = calloc(1, sizeof(*r));
	if (!r) {
		done(ctx, -ENOMEM);
		return;
	}
	r->id = id;
	r->op = op;
	r->res = *res;
	r->q = *q;
	r->q.node = l->c.node_id;
	r->wait = wait && op == OFS_LOCK_SET && q->type != LK_UNLOCK;
	r->tag = tag;
	r->done = done;
	r->ctx = ctx;
	r->since_ms = now_ms();
	pthread_mutex_lock(&l->mu);
	if (l->stop) {
		pthread_mutex_unlock(&l->mu);
		free(r);
		done(ctx, -ESHUTDOWN);
		return;
	}
	r->cancelled = take_early_cancel(l, id);
	struct req **p = &l->queue;
	while (*p)
		p = &(*p)->next; /* in order of arrival: the first waiter is tried first */
	*p = r;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

void ofs_locks_cancel(struct ofs_locks *l, uint64_t id)
{
	pthread_mutex_lock(&l->mu);
	struct req *r = l->queue;
	while (r && r->id != id)
		r = r->next;
	if (r) {
		r->cancelled = true;
		pthread_cond_signal(&l->wake);
	} else if (id > 0 && id <= l->next_id) {
		/* Maybe not queued yet: remembered for its submit. */
		l->early[l->early_pos] = id;
		l->early_pos = (l->early_pos + 1) % LOCKS__EARLY_CANCELS;
		if (l->n_early < LOCKS__EARLY_CANCELS)
			l->n_early++;
	}
	pthread_mutex_unlock(&l->mu);
}

static bool has_tag(struct ofs_locks *l, const void *tag)
{
	for (struct req *r = l->queue; r; r = r->next)
		if (r->tag == tag)
			return true;
	return false;
}

void ofs_locks_cancel_tag(struct ofs_locks *l, const void *tag)
{
	pthread_mutex_lock(&l->mu);
	for (struct req *r = l->queue; r; r = r->next)
		if (r->tag == tag)
			r->cancelled = true;
	pthread_cond_signal(&l->wake);
	while (has_tag(l, tag))
		pthread_cond_wait(&l->finished, &l->mu);
	pthread_mutex_unlock(&l->mu);
}

struct call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static void call_done(void *ctx, int rc)
{
	struct call *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->rc = rc;
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int ofs_locks_call(struct ofs_locks *l, enum ofs_lock_op op, const struct lk_key *res,
		   const struct lk_holder *q)
{
	struct call c = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	ofs_locks_submit(l, ofs_locks_new_id(l), op, res, q, false, NULL, call_done, &c);
	pthread_mutex_lock(&c.mu);
	while (!c.done)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	return c.rc;
}

/* Calls r's done (mu not held) and takes r off the queue. */
static void finish(struct ofs_locks *l, struct req *r, int rc)
{
	r->finishing = true;
	pthread_mutex_unlock(&l->mu);
	if (r->done) /* NULL: a release kept after its caller was answered */
		r->done(r->ctx, rc);
	pthread_mutex_lock(&l->mu);
	struct req **p = &l->queue;
	while (*p != r)
		p = &(*p)->next;
	*p = r->next;
	free(r);
	pthread_cond_broadcast(&l->finished);
}

static bool is_release(const struct req *r)
{
	return r->op != OFS_LOCK_SET || r->q.type == LK_UNLOCK;
}

/*
 * A release that could not be decided (no quorum, a timeout) must still
 * happen, or the lock would outlive its holder for as long as this node
 * renews its lease: the caller hears of the failure now, and the request
 * stays queued, without a callback, tried again on every tick until done.
 */
static void keep_release(struct ofs_locks *l, struct req *r, int rc)
{
	ofs_lock_done_fn done = r->done;
	r->done = NULL;
	if (!done)
		return;
	char what[LK_RES_MAX + 16];
	lk_res_describe(r->res.b, r->res.len, what, sizeof(what));
	log_warn("locks: releasing a lock on %s: %s: trying again until it is released", what,
		 strerror(-rc));
	pthread_mutex_unlock(&l->mu);
	done(r->ctx, rc);
	pthread_mutex_lock(&l->mu);
}

/* Errors a waiter waits through: the table may be writable again later. */
static bool transient(int rc)
{
	return rc == -EAGAIN || rc == -EROFS || rc == -ETIMEDOUT || rc == -EIO;
}

/*
 * One round over the queue (mu held on entry and exit): requests not tried
 * yet and cancelled ones; with full, every waiter too.
 */
static void run_round(struct ofs_locks *l, uint64_t round, bool full)
{
	for (;;) {
		struct req *r = l->queue;
		while (r &&
		       (r->finishing || r->round == round || !(full || !r->tried || r->cancelled)))
			r = r->next;
		if (!r || l->stop)
			return;
		r->round = round;
		if (r->cancelled) {
			finish(l, r, -EINTR);
			continue;
		}
		pthread_mutex_unlock(&l->mu);
		int rc = attempt(l, r->op, &r->res, &r->q, !r->wait);
		pthread_mutex_lock(&l->mu);
		r->tried = true;
		if (rc == 0)
			finish(l, r, 0);
		else if (r->cancelled)
			finish(l, r, -EINTR);
		else if (is_release(r) && transient(rc))
			keep_release(l, r, rc);
		else if (!r->wait || !transient(rc))
			finish(l, r, rc);
		else if (rc != -EAGAIN)
			log_debug("locks: a waiter retries later: %s", strerror(-rc));
	}
}

/* --- the keeper's duties on each tick ----------------------------------------------- */

/*
 * The keeper's part of the lease, each tick: drops the lease of an earlier
 * run and an idle one, reports the locks in doubt, gives them up after a
 * whole lease without renewal.
 */
static void renew_or_drop(struct ofs_locks *l, const struct leases *ls, bool queue_empty)
{
	const struct lease *own = find_lease(ls, l->c.node_id);
	struct lk_key k, w;
	lk_key_lease(&k, l->c.node_id);
	lk_key_renew(&w, l->c.node_id);
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	if (own && own->epoch != l->epoch) {
		/* An earlier run's lease: its processes are gone, free their locks now. */
		if (!kv_txn_add_guard_version(&t, k.b, k.len, own->version) &&
		    !kv_txn_add_delete(&t, k.b, k.len) && !kv_txn_add_delete(&t, w.b, w.len) &&
		    commit(l, &t) == 0)
			log_notice("locks: dropped the lease of this node's previous run");
		goto out;
	}
	if (!own || !l->lease_created)
		goto out;
	uint64_t held = held_total(l);
	if (held == 0 && queue_empty) {
		/* Nothing held: no lease to renew (the next lock makes one). */
		if (!kv_txn_add_guard_version(&t, k.b, k.len, own->version) &&
		    !kv_txn_add_delete(&t, k.b, k.len) && !kv_txn_add_delete(&t, w.b, w.len) &&
		    commit(l, &t) == 0) {
			/* A new epoch for the next lease: a lock whose answer
			 * timed out and that was applied after all stays void. */
			uint64_t epoch = new_epoch();
			pthread_mutex_lock(&l->mu);
			l->epoch = epoch;
			l->lease_created = false;
			l->in_doubt = false;
			pthread_mutex_unlock(&l->mu);
		}
		goto out;
	}
	/* Renewals are the renewer's (renewer_main). */
	pthread_mutex_lock(&l->mu);
	uint64_t silent_ms = now_ms() - l->renew_ok_ms;
	if (held && !l->in_doubt && silent_ms > l->c.lease_ms / 2) {
		l->in_doubt = true;
		log_warn("locks: lease not renewed for %llu ms: the %llu locks held here are in "
			 "doubt (another node may expire them after %u ms)",
			 (unsigned long long)silent_ms, (unsigned long long)held, l->c.lease_ms);
	}
	pthread_mutex_unlock(&l->mu);
	/* A whole lease without a renewal: the others may have expired it. */
	if (held && silent_ms > l->c.lease_ms)
		lose_locks(l, "lease not renewed for a whole lease");
out:
	kv_txn_free(&t);
}

struct renews {
	uint64_t node[64];
	uint64_t version[64];
	size_t n;
};

static int add_renew(void *arg, const void *k, size_t kl, const void *v, size_t vl, uint64_t ver)
{
	(void)v;
	(void)vl;
	struct renews *rs = arg;
	uint64_t node;
	if (lk_key_parse_node(k, kl, &node) == 0 && rs->n < 64) {
		rs->node[rs->n] = node;
		rs->version[rs->n++] = ver;
	}
	return 0;
}

static struct watch *find_watch(struct ofs_locks *l, uint64_t node)
{
	for (size_t i = 0; i < l->n_watch; i++)
		if (l->watch[i].node == node)
			return &l->watch[i];
	if (l->n_watch == l->cap_watch) {
		size_t cap = l->cap_watch ? l->cap_watch * 2 : 8;
		struct watch *p = realloc(l->watch, cap * sizeof(*p));
		if (!p)
			return NULL;
		l->watch = p;
		l->cap_watch = cap;
	}
	struct watch *w = &l->watch[l->n_watch++];
	memset(w, 0, sizeof(*w));
	w->node = node;
	w->seen_ms = 0;
	return w;
}

/*
 * Expires the lease of every other node whose renewal this node has not
 * seen change for the whole lease, measured on this node's clock from when
 * it first saw that renewal. The transaction is guarded on the renewal's
 * version: if the node renewed meanwhile, the expiry fails.
 */
static void expire_others(struct ofs_locks *l, const struct leases *ls)
{
	struct renews rs = {.n = 0};
	struct lk_key p;
	lk_key_renew_prefix(&p);
	if (scan(l, &p, add_renew, &rs) != 0)
		return;
	uint64_t now = now_ms();
	for (size_t i = 0; i < l->n_watch; i++)
		l->watch[i].live = false;
	for (size_t i = 0; i < ls->n; i++) {
		const struct lease *le = &ls->v[i];
		if (le->node == l->c.node_id)
			continue;
		uint64_t rv = UINT64_MAX; /* none (0 is a version: the first entry's) */
		for (size_t j = 0; j < rs.n; j++)
			if (rs.node[j] == le->node)
				rv = rs.version[j];
		struct watch *w = find_watch(l, le->node);
		if (!w)
			continue;
		w->live = true;
		if (w->seen_ms == 0 || w->epoch != le->epoch || w->lease_ver != le->version ||
		    w->renew_ver != rv) {
			w->epoch = le->epoch;
			w->lease_ver = le->version;
			w->renew_ver = rv;
			w->seen_ms = now;
			continue;
		}
		if (now - w->seen_ms < l->c.lease_ms)
			continue;
		struct lk_key k, r;
		lk_key_lease(&k, le->node);
		lk_key_renew(&r, le->node);
		struct kv_txn t;
		kv_txn_init(&t, 0, 0);
		int rc = kv_txn_add_guard_version(&t, k.b, k.len, le->version);
		if (!rc)
			rc = rv != UINT64_MAX ? kv_txn_add_guard_version(&t, r.b, r.len, rv)
					      : kv_txn_add_guard_absent(&t, r.b, r.len);
		if (!rc)
			rc = kv_txn_add_delete(&t, k.b, k.len);
		if (!rc)
			rc = kv_txn_add_delete(&t, r.b, r.len);
		if (!rc)
			rc = commit(l, &t);
		kv_txn_free(&t);
		if (rc == 0)
			log_notice(
				"locks: expired the lease of n%llu: not renewed for %llu ms, its "
				"locks are free",
				(unsigned long long)le->node,
				(unsigned long long)(now - w->seen_ms));
		else
			log_debug("locks: expiring the lease of n%llu: %s",
				  (unsigned long long)le->node, strerror(-rc));
		w->seen_ms = 0; /* look again from the state as it is now */
	}
	for (size_t i = 0; i < l->n_watch;) {
		if (!l->watch[i].live)
			l->watch[i] = l->watch[--l->n_watch];
		else
			i++;
	}
}

/* Records that name stale holders, to be rewritten without them. */
struct stale_scan {
	const struct leases *ls;
	struct lk_key res[LOCKS__CLEANUPS];
	size_t n;
	struct ofs_locks *l;
	uint64_t now;
	bool any;
};

/* Under mu: refreshes the first-seen time of one valid holder. */
static void note_seen(struct ofs_locks *l, const uint8_t *res, size_t res_len,
		      const struct lk_holder *h, uint64_t now)
{
	for (size_t i = 0; i < l->n_seen; i++) {
		struct seen *s = &l->seen[i];
		if (s->res.len == res_len && memcmp(s->res.b, res, res_len) == 0 &&
		    s->h.node == h->node && s->h.owner == h->owner && s->h.kind == h->kind &&
		    s->h.epoch == h->epoch && s->h.start == h->start && s->h.end == h->end &&
		    s->h.type == h->type) {
			s->live = true;
			return;
		}
	}
	if (l->n_seen == l->cap_seen) {
		size_t cap = l->cap_seen ? l->cap_seen * 2 : 16;
		struct seen *p = realloc(l->seen, cap * sizeof(*p));
		if (!p)
			return;
		l->seen = p;
		l->cap_seen = cap;
	}
	struct seen *s = &l->seen[l->n_seen++];
	s->res.len = res_len;
	memcpy(s->res.b, res, res_len);
	s->h = *h;
	s->first_ms = now;
	s->live = true;
}

static int scan_record(void *arg, const void *k, size_t kl, const void *v, size_t vl, uint64_t ver)
{
	(void)ver;
	struct stale_scan *ss = arg;
	const uint8_t *res;
	size_t res_len;
	struct lk_record r;
	if (lk_key_parse_record(k, kl, &res, &res_len) != 0 || res_len > LK_RES_MAX ||
	    lk_record_decode(&r, v, vl) != 0)
		return 0;
	bool stale = false;
	pthread_mutex_lock(&ss->l->mu);
	for (uint32_t i = 0; i < r.n; i++) {
		if (holder_valid((void *)ss->ls, &r.h[i]))
			note_seen(ss->l, res, res_len, &r.h[i], ss->now);
		else
			stale = true;
	}
	pthread_mutex_unlock(&ss->l->mu);
	lk_record_free(&r);
	if (stale && ss->n < LOCKS__CLEANUPS) {
		ss->res[ss->n].len = res_len;
		memcpy(ss->res[ss->n].b, res, res_len);
		ss->n++;
	}
	return 0;
}

/* Refreshes the ages of holders and rewrites records naming stale ones. */
static void sweep_records(struct ofs_locks *l, const struct leases *ls)
{
	struct stale_scan ss = {.ls = ls, .l = l, .now = now_ms()};
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_seen; i++)
		l->seen[i].live = false;
	pthread_mutex_unlock(&l->mu);
	struct lk_key p;
	lk_key_record_prefix(&p);
	int rc = scan(l, &p, scan_record, &ss);
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; rc == 0 && i < l->n_seen;) {
		if (!l->seen[i].live)
			l->seen[i] = l->seen[--l->n_seen];
		else
			i++;
	}
	pthread_mutex_unlock(&l->mu);
	/* Dropping nothing rewrites the record without its stale holders. */
	struct lk_holder none = {.kind = LK_POSIX, .owner = 0, .fh = UINT64_MAX};
	for (size_t i = 0; i < ss.n; i++)
		attempt(l, OFS_LOCK_DROP_FH, &ss.res[i], &none, false);
}

static void tick(struct ofs_locks *l, bool queue_empty)
{
	struct leases ls = {0};
	if (load_leases(l, &ls) == 0) {
		check_own_lease(l, &ls);
		renew_or_drop(l, &ls, queue_empty);
		expire_others(l, &ls);
		if (l->seen_dirty) {
			l->seen_dirty = false;
			sweep_records(l, &ls);
		}
	}
	free(ls.v);
}

/*
 * Renews this node's lease every quarter lease while it holds locks, on a
 * thread of its own: however long the keeper is busy with requests (each a
 * consensus round, a grant waiting for the kernel caches), the lease does
 * not lapse under a process inside its critical section.
 */
static void renew_once(struct ofs_locks *l, uint64_t epoch, uint64_t t0)
{
	struct lk_key k, w;
	lk_key_lease(&k, l->c.node_id);
	lk_key_renew(&w, l->c.node_id);
	void *v = NULL;
	size_t len;
	uint64_t ver, got;
	if (kv_get(l->b.kv, k.b, k.len, &v, &len, &ver) != 0)
		return; /* gone: the keeper sees it and gives the locks up */
	int rc = lk_lease_decode(v, len, &got);
	free(v);
	if (rc != 0 || got != epoch)
		return;
	uint8_t c[8];
	lk_lease_encode(atomic_fetch_add(&l->renew_counter, 1) + 1, c);
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	if (!kv_txn_add_guard_version(&t, k.b, k.len, ver) &&
	    !kv_txn_add_put(&t, w.b, w.len, c, sizeof(c)) && commit(l, &t) == 0) {
		pthread_mutex_lock(&l->mu);
		if (l->in_doubt)
			log_notice("locks: lease renewed again: this node's locks hold");
		l->in_doubt = false;
		if (t0 > l->renew_ok_ms)
			l->renew_ok_ms = t0;
		pthread_mutex_unlock(&l->mu);
	}
	kv_txn_free(&t);
}

static void *renewer_main(void *arg)
{
	struct ofs_locks *l = arg;
	pthread_setname_np(pthread_self(), "ofs-lock-renew");
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)l->tick_ms * 1000000;
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&l->renew_wake, &l->mu, &ts);
		uint64_t held = 0, now = now_ms();
		for (size_t i = 0; i < l->n_held; i++)
			held += l->held[i].n;
		if (l->stop || !l->lease_created || !held ||
		    now - l->renew_start_ms < l->c.lease_ms / 4)
			continue;
		l->renew_start_ms = now;
		uint64_t epoch = l->epoch;
		pthread_mutex_unlock(&l->mu);
		renew_once(l, epoch, now);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* A node that stops frees its locks at once rather than after the lease:
 * with the mount gone, no process of it holds anything. Best effort. */
static void goodbye(struct ofs_locks *l)
{
	struct leases ls = {0};
	if (l->lease_created && load_leases(l, &ls) == 0) {
		const struct lease *own = find_lease(&ls, l->c.node_id);
		struct lk_key k, w;
		lk_key_lease(&k, l->c.node_id);
		lk_key_renew(&w, l->c.node_id);
		struct kv_txn t;
		kv_txn_init(&t, 0, 0);
		if (own && own->epoch == l->epoch &&
		    !kv_txn_add_guard_version(&t, k.b, k.len, own->version) &&
		    !kv_txn_add_delete(&t, k.b, k.len) && !kv_txn_add_delete(&t, w.b, w.len) &&
		    commit(l, &t) == 0)
			log_info("locks: this node's locks are released (stopping)");
		kv_txn_free(&t);
	}
	free(ls.v);
}

static void *keeper_main(void *arg)
{
	struct ofs_locks *l = arg;
	pthread_setname_np(pthread_self(), "ofs-lock-keep");
	uint64_t round = 0, next_tick = 0;
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		uint64_t now = now_ms();
		bool due = now >= next_tick;
		bool work = false;
		for (struct req *r = l->queue; r; r = r->next)
			work |= !r->finishing && (!r->tried || r->cancelled);
		if (!due && !work && !l->changed) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + (next_tick - now) * 1000000;
			ts.tv_sec += (time_t)(ns / 1000000000);
			ts.tv_nsec = (long)(ns % 1000000000);
			pthread_cond_timedwait(&l->wake, &l->mu, &ts);
			continue;
		}
		bool full = l->changed || due;
		if (l->changed)
			l->seen_dirty = true;
		l->changed = false;
		if (due) {
			/* The lease first: a long queue must not delay a renewal. */
			bool empty = l->queue == NULL;
			pthread_mutex_unlock(&l->mu);
			tick(l, empty);
			pthread_mutex_lock(&l->mu);
			next_tick = now_ms() + l->tick_ms;
		}
		run_round(l, ++round, full);
	}
	while (l->queue)
		finish(l, l->queue, -ESHUTDOWN);
	pthread_mutex_unlock(&l->mu);
	goodbye(l);
	return NULL;
}

/* --- life, hook, reads ------------------------------------------------------------- */

struct ofs_locks *ofs_locks_new(const struct ofs_locks_config *c, const struct ofs_backend *b)
{
	if (!c || !b || !b->propose || !b->kv || c->node_id == 0 || c->lease_ms < 100) {
		errno = EINVAL;
		return NULL;
	}
	struct ofs_locks *l = calloc(1, sizeof(*l));
	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	l->c = *c;
	l->b = *b;
	l->tick_ms = c->lease_ms / 8 < 250 ? c->lease_ms / 8 : 250;
	l->epoch = new_epoch();
	l->seen_dirty = true;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->wake, NULL);
	pthread_cond_init(&l->finished, NULL);
	pthread_cond_init(&l->renew_wake, NULL);
	if (pthread_create(&l->thread, NULL, keeper_main, l) != 0)
		goto out_free;
	if (pthread_create(&l->renewer, NULL, renewer_main, l) != 0) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->wake);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
		goto out_free;
	}
	return l;
out_free:
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	pthread_cond_destroy(&l->finished);
	pthread_cond_destroy(&l->renew_wake);
	free(l);
	errno = ENOMEM;
	return NULL;
}

void ofs_locks_destroy(struct ofs_locks **lp)
{
	struct ofs_locks *l = *lp;
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->wake);
	pthread_cond_signal(&l->renew_wake);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_join(l->renewer, NULL);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->wake);
	pthread_cond_destroy(&l->finished);
	pthread_cond_destroy(&l->renew_wake);
	free(l->held);
	free(l->seen);
	free(l->watch);
	free(l);
	*lp = NULL;
}

void ofs_locks_on_applied(struct ofs_locks *l, const struct kv_txn *t)
{
	bool ours = !t;
	for (uint32_t i = 0; t && i < t->n_ops && !ours; i++)
		ours = lk_key_is_lock(t->ops[i].key, t->ops[i].key_len);
	if (!ours)
		return;
	pthread_mutex_lock(&l->mu);
	l->changed = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
}

uint64_t ofs_locks_node(const struct ofs_locks *l)
{
	return l->c.node_id;
}

uint32_t ofs_locks_lease_ms(const struct ofs_locks *l)
{
	return l->c.lease_ms;
}

bool ofs_locks_maybe_held(struct ofs_locks *l, const struct lk_key *res)
{
	pthread_mutex_lock(&l->mu);
	bool held = false;
	for (size_t i = 0; i < l->n_held && !held; i++)
		held = l->held[i].res.len == res->len &&
		       memcmp(l->held[i].res.b, res->b, res->len) == 0;
	/* A request of this node on res may be about to hold it. */
	for (struct req *r = l->queue; r && !held; r = r->next)
		held = !r->finishing && r->res.len == res->len &&
		       memcmp(r->res.b, res->b, res->len) == 0;
	pthread_mutex_unlock(&l->mu);
	return held;
}

int ofs_locks_test(struct ofs_locks *l, const struct lk_key *res, const struct lk_holder *q,
		   struct lk_holder *h)
{
	struct leases ls = {0};
	struct lk_record r;
	uint8_t *old;
	size_t len;
	uint64_t ver;
	int rc = read_view(l, res, &r, &old, &len, &ver, &ls);
	if (rc == 0) {
		lk_drop_stale(&r, holder_valid, &ls);
		struct lk_holder mine = *q;
		mine.node = l->c.node_id;
		int c = lk_find_conflict(&r, &mine);
		if (c >= 0) {
			*h = r.h[c];
			rc = 1;
		}
		lk_record_free(&r);
		free(old);
	}
	free(ls.v);
	return rc;
}

static const char *kind_name(uint8_t k)
{
	return k == LK_POSIX ? "posix" : k == LK_FLOCK ? "flock" : "named";
}

static void range_text(const struct lk_holder *h, char *buf, size_t cap)
{
	if (h->end == LK_EOF)
		snprintf(buf, cap, "%llu-EOF", (unsigned long long)h->start);
	else
		snprintf(buf, cap, "%llu-%llu", (unsigned long long)h->start,
			 (unsigned long long)h->end);
}

static void list_one(struct ctl_buf *out, bool json, bool *first, const char *state,
		     const struct lk_key *res, const struct lk_holder *h, uint64_t age_ms)
{
	char what[LK_RES_MAX + 16], range[48];
	lk_res_describe(res->b, res->len, what, sizeof(what));
	range_text(h, range, sizeof(range));
	if (json) {
		ctl_buf_printf(out,
			       "%s{\"state\":\"%s\",\"resource\":\"%s\",\"kind\":\"%s\","
			       "\"type\":\"%s\",\"start\":%llu,\"end\":",
			       *first ? "" : ",", state, what, kind_name(h->kind),
			       h->type == LK_WRITE ? "write" : "read",
			       (unsigned long long)h->start);
		if (h->end == LK_EOF)
			ctl_buf_printf(out, "null");
		else
			ctl_buf_printf(out, "%llu", (unsigned long long)h->end);
		ctl_buf_printf(out, ",\"node\":%llu,\"pid\":%u,\"age_ms\":%llu}",
			       (unsigned long long)h->node, h->pid, (unsigned long long)age_ms);
	} else {
		ctl_buf_printf(out, "%-8s %-28s %-6s %-6s %-16s n%-4llu %-8u %.1fs\n", state, what,
			       kind_name(h->kind), h->type == LK_WRITE ? "excl" : "shared", range,
			       (unsigned long long)h->node, h->pid, (double)age_ms / 1000.0);
	}
	*first = false;
}

int ofs_locks_list(struct ofs_locks *l, bool json, struct ctl_buf *out)
{
	/* The ages come from the keeper's sweep: ask for a fresh one. */
	struct leases ls = {0};
	int rc = load_leases(l, &ls);
	if (rc)
		return rc;
	pthread_mutex_lock(&l->mu);
	l->changed = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->mu);
	struct stale_scan ss = {.ls = &ls, .l = l, .now = now_ms()};
	struct lk_key p;
	lk_key_record_prefix(&p);
	rc = scan(l, &p, scan_record, &ss); /* notes holders not seen yet */
	if (rc) {
		free(ls.v);
		return rc;
	}
	bool first = true;
	uint64_t now = now_ms();
	if (json)
		ctl_buf_printf(out, "{\"node\":%llu,\"locks\":[", (unsigned long long)l->c.node_id);
	else
		ctl_buf_printf(out, "%-8s %-28s %-6s %-6s %-16s %-5s %-8s %s\n", "STATE",
			       "RESOURCE", "KIND", "TYPE", "RANGE", "NODE", "PID", "AGE");
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_seen; i++) {
		const struct seen *s = &l->seen[i];
		if (holder_valid(&ls, &s->h))
			list_one(out, json, &first, "held", &s->res, &s->h, now - s->first_ms);
	}
	for (const struct req *r = l->queue; r; r = r->next)
		if (r->wait && !r->finishing)
			list_one(out, json, &first, "waiting", &r->res, &r->q, now - r->since_ms);
	pthread_mutex_unlock(&l->mu);
	if (json)
		ctl_buf_printf(out, "]}\n");
	free(ls.v);
	return 0;
}

void ofs_locks_status(struct ofs_locks *l, bool json, struct ctl_buf *out)
{
	pthread_mutex_lock(&l->mu);
	uint64_t held = 0;
	for (size_t i = 0; i < l->n_held; i++)
		held += l->held[i].n;
	uint64_t now = now_ms();
	long long lost_ago = l->lost_count ? (long long)(now - l->lost_ms) : -1;
	if (json)
		ctl_buf_printf(out,
			       ",\"locks_held\":%llu,\"lock_lease_ms\":%u,\"locks_in_doubt\":%s,"
			       "\"locks_lost\":%llu,\"locks_lost_ms_ago\":%lld",
			       (unsigned long long)held, l->c.lease_ms,
			       l->in_doubt ? "true" : "false", (unsigned long long)l->lost_count,
			       lost_ago);
	else
		ctl_buf_printf(out, "locks: %llu held here, lease %u ms%s; lost %llu times%s\n",
			       (unsigned long long)held, l->c.lease_ms,
			       l->in_doubt ? ", IN DOUBT (lease not renewed: do not rely on them)"
					   : "",
			       (unsigned long long)l->lost_count,
			       l->lost_count ? " (the last time: see the log)" : "");
	pthread_mutex_unlock(&l->mu);
}
