/*
 * Kernel cache invalidation for changes applied from other nodes: the queue.
 *
 * ofs_on_applied runs on the thread that applies log entries, with the
 * transaction the replica decoded once for the KV. It only reads the keys
 * the entry touched and queues (inode) or (parent, name) items; the thread
 * in fuse_inval.c pops them and tells the kernel. The libfuse header warns
 * that those calls must not run in the path of a related request or under a
 * lock such a request needs (the kernel may wait on that request): the queue
 * keeps them off every FUSE handler and off the apply thread, and no lock is
 * held while notifying. Nothing here calls libfuse.
 *
 * The queue is bounded (cfg.inval_queue_max, B) and never drops a change,
 * since a barrier promises the kernel was told of every one. It degrades:
 * from B items on, a name is queued as its whole directory (OFS_INVAL_DIR,
 * one queued per directory at a time); from 2B on, or when memory runs
 * out, the queue collapses into one OFS_INVAL_ALL, which stands for every
 * item it replaces and for every change queued until the thread takes it. A
 * state transfer queues OFS_INVAL_ALL too: anything may have changed.
 * Each degradation is counted in struct ofs_stats.
 *
 * Does not invalidate for entries proposed on this node: the kernel saw
 * those changes through the requests that made them; nor for inodes the
 * kernel does not hold (drop_unheld).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "ofs_int.h"

static void free_item(struct inval_item *it)
{
	free(it->name);
	free(it);
}

/* Under iq_lock: the queue becomes one pending OFS_INVAL_ALL accounting for
 * everything in it, plus `more` changes. */
static void collapse_locked(struct ofs *o, uint64_t more)
{
	uint64_t covers = more;
	struct inval_item *it = o->iq_head;
	while (it) {
		struct inval_item *next = it->next;
		covers += it->covers;
		free_item(it);
		it = next;
	}
	o->iq_head = o->iq_tail = NULL;
	o->iq_len = 0;
	memset(o->iq_dirs, 0, sizeof(o->iq_dirs));
	o->iq_all_covers += covers;
	pthread_cond_signal(&o->iq_cond);
}

static size_t dir_slot(uint64_t ino)
{
	return (size_t)((ino ^ (ino >> 17) ^ (ino >> 48)) % OFS_IQ_DIR_SLOTS);
}

/*
 * Appends it under iq_lock, merged into an item still queued that says the
 * same: the tail, or for a directory the one pending for it (each costs a
 * scan of the directory; a flood of creates in one directory must not queue
 * one per create). Merging into an earlier item is fine: the thread tells
 * the kernel after every change it stands for was applied. False if merged:
 * the caller frees it (outside the lock). The caller wakes the thread.
 */
static bool append_locked(struct ofs *o, struct inval_item *it)
{
	struct inval_item *tail = o->iq_tail, *same = NULL;
	if (it->kind == OFS_INVAL_DIR)
		same = o->iq_dirs[dir_slot(it->ino)];
	else if (tail && it->kind == OFS_INVAL_INODE)
		same = tail;
	if (same && same->kind == it->kind && same->ino == it->ino) {
		same->covers += it->covers;
		return false;
	}
	if (it->kind == OFS_INVAL_DIR)
		o->iq_dirs[dir_slot(it->ino)] = it;
	if (tail)
		tail->next = it;
	else
		o->iq_head = it;
	o->iq_tail = it;
	o->iq_len++;
	return true;
}

/*
 * The items one applied entry makes stale, built outside iq_lock and queued
 * at once: one lock and one wake-up of the thread per entry, not per key (a
 * wake-up per key was a tenth of a follower's apply time under load).
 */
struct inval_batch {
	struct inval_item *head, *tail;
	uint64_t n;	 /* keys queued: what the items cover */
	uint64_t failed; /* keys whose item could not be allocated */
};

static void batch_add(struct inval_batch *b, uint64_t ino, const char *name, size_t name_len)
{
	/* An inode the entry wrote twice (its attributes and a block, say)
	 * is told once: the thread tells after the whole entry is applied. */
	for (struct inval_item *q = b->head; q && !name; q = q->next) {
		if (q->kind == OFS_INVAL_INODE && q->ino == ino) {
			q->covers++;
			b->n++;
			return;
		}
	}
	struct inval_item *it = calloc(1, sizeof(*it));
	if (it && name && !(it->name = strndup(name, name_len))) {
		free(it);
		it = NULL;
	}
	if (!it) {
		b->failed++; /* queued as everything instead */
		return;
	}
	it->ino = ino;
	it->covers = 1;
	it->kind = name ? OFS_INVAL_ENTRY : OFS_INVAL_INODE;
	if (b->tail)
		b->tail->next = it;
	else
		b->head = it;
	b->tail = it;
	b->n++;
}

/* Queues the batch's items in order, each coarser past the bound. */
static void batch_queue(struct ofs *o, const struct inval_batch *b)
{
	size_t bound = o->cfg.inval_queue_max;
	uint64_t coarse = 0, overflow = 0;
	struct inval_item *spare = NULL; /* merged or covered: freed after */
	if (b->n == 0 && b->failed == 0)
		return;
	pthread_mutex_lock(&o->iq_lock);
	o->iq_queued += b->n + b->failed;
	if (b->failed) {
		/* Out of memory: everything stands for the lost keys (and, as
		 * an OFS_INVAL_ALL is then pending, for the items below). */
		collapse_locked(o, b->failed);
		overflow++;
	}
	struct inval_item *next;
	for (struct inval_item *it = b->head; it; it = next) {
		next = it->next;
		it->next = NULL;
		bool queued = false;
		if (o->iq_all_covers > 0) {
			o->iq_all_covers += it->covers; /* the pending sweep covers it */
		} else if (o->iq_len >= 2 * bound) {
			collapse_locked(o, it->covers);
			overflow++;
		} else {
			if (it->kind == OFS_INVAL_ENTRY && o->iq_len >= bound) {
				it->kind = OFS_INVAL_DIR;
				free(it->name);
				it->name = NULL;
				coarse++;
			}
			queued = append_locked(o, it);
		}
		if (!queued) {
			it->next = spare;
			spare = it;
		}
	}
	pthread_mutex_unlock(&o->iq_lock);
	/* After the unlock: the invalidation thread, woken under the lock,
	 * would often run at once only to wait for it (two more context
	 * switches on the applying thread's CPU). */
	pthread_cond_signal(&o->iq_cond);
	for (; spare; spare = next) {
		next = spare->next;
		free_item(spare);
	}
	pthread_mutex_lock(&o->lock);
	o->stats.invals_queued += b->n + b->failed;
	o->stats.invals_coarse += coarse;
	o->stats.invals_overflow += overflow;
	pthread_mutex_unlock(&o->lock);
}

void ofs_inval_queue_all(struct ofs *o)
{
	pthread_mutex_lock(&o->iq_lock);
	o->iq_queued++;
	collapse_locked(o, 1);
	pthread_mutex_unlock(&o->iq_lock);
}

void ofs_on_state_replaced(struct ofs *o)
{
	ofs_noderecs_forget(o);
	ofs_inval_queue_all(o);
	ofs_count(o, &o->stats.invals_replaced, 1);
	ofs_replay_state_replaced(o);
}

bool ofs_inval_pop(struct ofs *o, struct inval_item **item)
{
	struct inval_item *all = NULL, *it;
	pthread_mutex_lock(&o->iq_lock);
	/* A pending OFS_INVAL_ALL costs no memory until it is taken: allocate
	 * its item outside the lock, then look again. */
	while (o->iq_all_covers > 0 && !all) {
		pthread_mutex_unlock(&o->iq_lock);
		all = calloc(1, sizeof(*all));
		pthread_mutex_lock(&o->iq_lock);
		if (!all)
			break;
	}
	it = o->iq_head;
	if (o->iq_all_covers > 0 && all) {
		/* The queue is empty while one is pending (collapse_locked). */
		all->kind = OFS_INVAL_ALL;
		all->covers = o->iq_all_covers;
		o->iq_all_covers = 0;
		it = all;
		all = NULL;
	} else if (it) {
		o->iq_head = it->next;
		if (!o->iq_head)
			o->iq_tail = NULL;
		o->iq_len--;
		it->next = NULL;
		if (o->iq_dirs[dir_slot(it->ino)] == it)
			o->iq_dirs[dir_slot(it->ino)] = NULL;
	}
	pthread_mutex_unlock(&o->iq_lock);
	free(all); /* taken by another popper meanwhile */
	*item = it;
	return it != NULL;
}

void ofs_inval_done(struct ofs *o, const struct inval_item *item)
{
	pthread_mutex_lock(&o->iq_lock);
	o->iq_done += item->covers;
	pthread_cond_broadcast(&o->iq_done_cond);
	pthread_mutex_unlock(&o->iq_lock);
}

void ofs_inval_retry(struct ofs *o, const struct inval_item *item)
{
	pthread_mutex_lock(&o->iq_lock);
	collapse_locked(o, item->covers);
	pthread_mutex_unlock(&o->iq_lock);
}

/* ofs_inval_expand: calls fn for each entry now in directory dir. */
struct expand_dir {
	ofs_inval_fn fn;
	void *ctx;
};

static int expand_entry(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
			uint64_t version)
{
	struct expand_dir *e = arg;
	uint64_t parent;
	const char *name;
	size_t nlen;
	if (ofs_key_parse_dirent(key, key_len, &parent, &name, &nlen) == 0)
		e->fn(e->ctx, parent, name, nlen);
	return 0;
}

static int expand_dir(struct ofs *o, uint64_t dir, ofs_inval_fn fn, void *ctx)
{
	struct ofs_key p;
	struct expand_dir e = {fn, ctx};
	fn(ctx, dir, NULL, 0);
	ofs_key_dir_prefix(&p, dir);
	return ofs_kv_scan(o, p.b, p.len, NULL, 0, expand_entry, &e);
}

/*
 * Every inode the kernel knows, and every name now in those that are
 * directories. A name the kernel caches that is gone from the state now is
 * not among them: its inode (known, since the name holds it) is, so a stat
 * or open through it asks again and finds the inode as it is now.
 */
static int expand_all(struct ofs *o, ofs_inval_fn fn, void *ctx)
{
	size_t n;
	uint64_t *inos = ofs_known_inodes(o, &n);
	if (!inos)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct ofs_attr a;
		int r = ofs_read_attr(o, inos[i], &a, NULL);
		if (r == 0 && S_ISDIR(a.mode))
			rc = expand_dir(o, inos[i], fn, ctx);
		else if (r == 0 || r == -ENOENT)
			fn(ctx, inos[i], NULL, 0); /* gone: the kernel must drop it too */
		else
			rc = r;
	}
	free(inos);
	return rc;
}

int ofs_inval_expand(struct ofs *o, const struct inval_item *item, ofs_inval_fn fn, void *ctx)
{
	switch (item->kind) {
	case OFS_INVAL_ENTRY:
		fn(ctx, item->ino, item->name, strlen(item->name));
		return 0;
	case OFS_INVAL_INODE:
		fn(ctx, item->ino, NULL, 0);
		return 0;
	case OFS_INVAL_DIR:
		return expand_dir(o, item->ino, fn, ctx);
	case OFS_INVAL_ALL:
		return expand_all(o, fn, ctx);
	}
	return -EINVAL;
}

/*
 * Adds what a write (PUT, DELETE, DELETE_PREFIX) of key makes stale: every
 * touched inode and name (drop_unheld then drops those the kernel cannot
 * have cached).
 */
static void inval_key(struct inval_batch *b, bool prefix, const void *key, size_t len)
{
	uint64_t ino, parent, block;
	const char *name;
	size_t nlen;
	switch (ofs_key_kind(key, len)) {
	case OFS_K_INODE:
	case OFS_K_SYMLINK:
	case OFS_K_XATTR:
		if (ofs_key_parse_ino(key, len, &ino) == 0)
			batch_add(b, ino, NULL, 0);
		break;
	case OFS_K_BLOCK:
		/* A prefix drop (truncation) has no block number. */
		if (prefix && ofs_key_parse_ino(key, len, &ino) == 0)
			batch_add(b, ino, NULL, 0);
		else if (ofs_key_parse_block(key, len, &ino, &block) == 0)
			batch_add(b, ino, NULL, 0);
		break;
	case OFS_K_DIRENT:
		if (!prefix && ofs_key_parse_dirent(key, len, &parent, &name, &nlen) == 0)
			batch_add(b, parent, name, nlen);
		break;
	default:
		break;
	}
}

/*
 * Drops the batch's items for inodes the kernel does not hold (for a name:
 * its directory). It caches nothing of those: no attributes, no pages, no
 * names under them (a cached name, even a negative one, holds its
 * directory). Telling it would be a no-op (ENOENT) that still costs the
 * invalidation thread a turn and this thread a wake-up, for every change
 * made on other nodes where nobody here looks.
 *
 * Not while a request that gives the kernel an inode runs (lookup, create,
 * readdirplus...): it may have read the state before this entry and not
 * counted its inode yet, and the kernel would cache that stale answer for
 * attr_timeout. Such a request counts itself before it reads the state
 * and stops after its count (ofs_entry_reply_begin). This entry is
 * committed before the read below, a read-modify-write like the request's
 * increment, so the two are ordered: the read sees the request, or the
 * request comes after it and reads this entry, or its inode is counted.
 */
static void drop_unheld(struct ofs *o, struct inval_batch *b)
{
	if (__atomic_fetch_add(&o->entry_replies, 0, __ATOMIC_SEQ_CST) != 0)
		return;
	uint64_t dropped = 0;
	struct inval_item **pp = &b->head;
	b->tail = NULL;
	while (*pp) {
		struct inval_item *it = *pp;
		if (ofs_ino_known(o, it->ino)) {
			b->tail = it;
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		dropped += it->covers;
		free_item(it);
	}
	b->n -= dropped;
	if (dropped)
		ofs_count(o, &o->stats.invals_unheld, dropped);
}

/* The invalidations first: the replay of this entry waits for them (see
 * ofs_inval_queued), so a watcher that reads on an event reads the change. */
void ofs_on_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	struct inval_batch b = {0};
	for (uint32_t i = 0; i < t->n_ops && !proposed_here; i++) {
		const struct kv_op *op = &t->ops[i];
		if (op->type == KV_OP_PUT || op->type == KV_OP_DELETE ||
		    op->type == KV_OP_DELETE_PREFIX)
			inval_key(&b, op->type == KV_OP_DELETE_PREFIX, op->key, op->key_len);
	}
	if (b.head)
		drop_unheld(o, &b);
	batch_queue(o, &b);
	ofs_noderecs_applied(o, idx, t);
	ofs_replay_on_applied(o, idx, t, proposed_here);
}

uint64_t ofs_inval_queued(struct ofs *o)
{
	pthread_mutex_lock(&o->iq_lock);
	uint64_t n = o->iq_queued;
	pthread_mutex_unlock(&o->iq_lock);
	return n;
}

void ofs_apply_hook(void *ctx, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	if (t)
		ofs_on_applied(ctx, idx, t, proposed_here);
	else
		ofs_on_state_replaced(ctx);
}

int ofs_wait_invalidations(struct ofs *o, unsigned timeout_ms)
{
	return ofs_wait_invalidations_upto(o, UINT64_MAX, timeout_ms);
}

int ofs_wait_invalidations_upto(struct ofs *o, uint64_t upto, unsigned timeout_ms)
{
	int64_t end = ofs_now_ns() + (int64_t)timeout_ms * 1000000;
	struct timespec until = {.tv_sec = end / 1000000000, .tv_nsec = end % 1000000000};
	int rc = 0;
	pthread_mutex_lock(&o->iq_lock);
	uint64_t target = o->iq_queued < upto ? o->iq_queued : upto;
	while (o->iq_done < target && o->iq_running && rc == 0)
		rc = pthread_cond_timedwait(&o->iq_done_cond, &o->iq_lock, &until);
	/* A wake-up at the deadline may still find everything done. */
	bool done = o->iq_done >= target || !o->iq_running;
	pthread_mutex_unlock(&o->iq_lock);
	return done ? 0 : -ETIMEDOUT;
}

void ofs_inval_drain(struct ofs *o)
{
	struct inval_item *it;
	while (ofs_inval_pop(o, &it))
		free_item(it);
}
