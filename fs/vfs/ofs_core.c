/*
 * The core of the filesystem: creation and bootstrap (root, orphans), the
 * reaper of unlinked files,
 * retrying commit loop, inode number allocation and usage accounting in the
 * per-node record, and the node-local inode table (lookup and open counts).
 *
 * Inode numbers: node id << 48 | counter, the counter kept in the node's own
 * record in the replicated state ("F n <node>"). Only this node writes that
 * record, so two nodes never race for a number; two threads of one node that
 * race fail each other's guard and retry. The new inode key is guarded absent
 * too, so a number is never handed out twice even if a record were lost.
 * Numbers are never reused, so generation stays 0.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "kv.h"
#include "log.h"
#include "ofs_history.h"
#include "ofs_int.h"

uint64_t ofs_ino_make(uint64_t node, uint64_t counter)
{
	if (node == 0 || node > 0xffff || counter == 0 || counter > OFS_INO_COUNTER_MAX)
		return 0;
	return node << OFS_INO_NODE_SHIFT | counter;
}

uint64_t ofs_ino_node(uint64_t ino)
{
	return ino >> OFS_INO_NODE_SHIFT;
}

bool ofs_ino_is_virtual(uint64_t ino)
{
	return ino == OFS_VINO_DIR || ino == OFS_VINO_STATUS || ino == OFS_VINO_MEMBERS ||
	       ino == OFS_VINO_METRICS || ofs_hist_is_vino(ino);
}

int64_t ofs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ofs_count(struct ofs *o, uint64_t *counter, uint64_t n)
{
	pthread_mutex_lock(&o->lock);
	*counter += n;
	pthread_mutex_unlock(&o->lock);
}

int ofs_commit_errno(int rc)
{
	switch (rc) {
	case 0:
	case -EROFS:
	case -ETIMEDOUT:
	case -ENOMEM:
	case -EAGAIN:
		return rc;
	case -ESHUTDOWN:
		return -EIO;
	default:
		return rc < 0 ? -EIO : rc;
	}
}

int ofs_read_attr(struct ofs *o, uint64_t ino, struct ofs_attr *a, uint64_t *version)
{
	struct ofs_key k;
	void *val;
	size_t len;
	uint64_t ver;
	ofs_key_inode(&k, ino);
	int rc = ofs_kv_get(o, k.b, k.len, &val, &len, &ver);
	if (rc)
		return rc == -ENOENT ? -ENOENT : -EIO;
	rc = ofs_attr_decode(a, ino, val, len);
	free(val);
	if (rc) {
		log_err("fs: inode %llu: malformed attributes in the KV", (unsigned long long)ino);
		return -EIO;
	}
	if (version)
		*version = ver;
	return 0;
}

int ofs_read_dirent(struct ofs *o, uint64_t parent, const char *name, size_t len, uint64_t *child,
		    uint8_t *dtype, uint64_t *version)
{
	struct ofs_key k;
	void *val;
	size_t vlen;
	uint64_t ver;
	ofs_key_dirent(&k, parent, name, len);
	int rc = ofs_kv_get(o, k.b, k.len, &val, &vlen, &ver);
	if (rc)
		return rc == -ENOENT ? -ENOENT : -EIO;
	uint8_t dt;
	rc = ofs_dirent_decode(val, vlen, child, &dt);
	if (dtype)
		*dtype = dt;
	free(val);
	if (rc)
		return -EIO;
	if (version)
		*version = ver;
	return 0;
}

int ofs_put_attr(struct kv_txn *t, const struct ofs_attr *a)
{
	struct ofs_key k;
	uint8_t v[OFS_ATTR_LEN];
	ofs_key_inode(&k, a->ino);
	ofs_attr_encode(a, v);
	return ofs_add_put(t, &k, v, sizeof(v));
}

static int run_txn(struct ofs *o, int (*build)(struct ofs *o, struct kv_txn *t, void *arg),
		   void *arg)
{
	struct kv_txn t;
	int rc;
	kv_txn_init(&t, 0, 0); /* no proposal id: the replica stamps its own */
	for (uint32_t attempt = 0;; attempt++) {
		kv_txn_free(&t); /* empty again for this attempt */
		rc = build(o, &t, arg);
		if (rc)
			break;
		if (t.n_ops == 0)
			break; /* nothing to change */
		rc = ofs_commit_errno(ofs_commit(o, &t));
		__atomic_store_n(&o->erofs_seen, rc == -EROFS, __ATOMIC_RELAXED);
		if (rc == 0) {
			ofs_count(o, &o->stats.commits, 1);
			break;
		}
		if (rc != -EAGAIN)
			break;
		ofs_count(o, &o->stats.conflicts, 1);
		if (attempt >= o->cfg.retries) {
			log_warn("fs: a change failed its guards %u times in a row; giving up",
				 attempt + 1);
			break;
		}
	}
	kv_txn_free(&t);
	return rc;
}

/*
 * The share of this node's record (schema.h) that the change built on this
 * thread updates: ofs_run_txn holds one for the change's whole life, so
 * changes in flight at once guard different keys. -1 outside ofs_run_txn:
 * share 0. Which share a change takes never matters for correctness (each
 * is guarded on its own), only for how often changes rebuild.
 */
static _Thread_local int txn_share = -1;

/* A share no change of this node holds, if there is one (else the next in
 * turn, shared: its guard then settles who goes first). */
static unsigned share_take(struct ofs *o)
{
	pthread_mutex_lock(&o->lock);
	unsigned s = o->share_next % OFS_NODE_SHARES;
	for (unsigned i = 0; i < OFS_NODE_SHARES; i++) {
		unsigned c = (o->share_next + i) % OFS_NODE_SHARES;
		if (!(o->shares_busy & (1u << c))) {
			s = c;
			break;
		}
	}
	o->shares_busy |= 1u << s;
	o->share_next = s + 1;
	pthread_mutex_unlock(&o->lock);
	return s;
}

static void share_give(struct ofs *o, unsigned s)
{
	pthread_mutex_lock(&o->lock);
	o->shares_busy &= ~(1u << s);
	pthread_mutex_unlock(&o->lock);
}

int ofs_run_txn(struct ofs *o, int (*build)(struct ofs *o, struct kv_txn *t, void *arg), void *arg)
{
	int outer = txn_share;
	unsigned share = share_take(o);
	txn_share = (int)share;
	int rc = run_txn(o, build, arg);
	txn_share = outer;
	share_give(o, share);
	return rc;
}

int ofs_usage(struct ofs *o, int64_t *bytes, int64_t *inodes)
{
	struct ofs_nr_answer a;
	if (ofs_noderecs_read(o, 0, &a))
		return -EIO;
	*bytes = a.bytes < 0 ? 0 : a.bytes;
	*inodes = a.inodes < 1 ? 1 : a.inodes;
	return 0;
}

/*
 * The counter of a fresh inode number: at or above the record's next
 * (r_next, as read) and above every number handed out since the start. A
 * create that commits later (ofs_pending.c) takes its number long before
 * its record is written, so the record alone could hand it out again; and
 * every record written carries ino_next, so after a restart the record is
 * above every number committed. Numbers handed out but never committed are
 * skipped, never reused while this process runs.
 */
static uint64_t ino_take(struct ofs *o, uint64_t r_next)
{
	pthread_mutex_lock(&o->lock);
	uint64_t c = r_next > o->ino_next ? r_next : o->ino_next;
	if (c == 0)
		c = 1;
	o->ino_next = c + 1;
	pthread_mutex_unlock(&o->lock);
	return c;
}

/* Share `share` of this node's record (key in *k): 0 with *r and its
 * version, -ENOENT with the defaults in *r, or -EIO. Either way r->next is
 * the largest among every share, so a number is never handed out twice. */
static int noderec_read(struct ofs *o, unsigned share, struct ofs_key *k, struct ofs_noderec *r,
			uint64_t *ver)
{
	struct ofs_nr_answer a;
	if (ofs_noderecs_read(o, share, &a) != 0 || a.bad)
		return -EIO;
	ofs_key_node(k, o->cfg.node_id, share);
	*r = a.found ? a.r : (struct ofs_noderec){1, 0, 0};
	r->next = a.max_next;
	*ver = a.ver;
	return a.found ? 0 : -ENOENT;
}

int ofs_ino_reserve(struct ofs *o, uint64_t *ino)
{
	struct ofs_key k;
	struct ofs_noderec r;
	uint64_t ver;
	int rc = noderec_read(o, 0, &k, &r, &ver);
	if (rc && rc != -ENOENT)
		return rc;
	*ino = ofs_ino_make(o->cfg.node_id, ino_take(o, r.next));
	return *ino ? 0 : -ENOSPC;
}

int ofs_noderec_update(struct ofs *o, struct kv_txn *t, int64_t dbytes, int64_t dinodes,
		       uint64_t *ino_out)
{
	struct ofs_key k;
	struct ofs_noderec r;
	uint64_t ver;
	int rc = noderec_read(o, txn_share < 0 ? 0 : (unsigned)txn_share, &k, &r, &ver);
	if (rc == 0)
		rc = ofs_add_guard_version(t, &k, ver);
	else if (rc == -ENOENT)
		rc = ofs_add_guard_absent(t, &k);
	if (rc)
		return rc;
	if (dbytes > 0 || dinodes > 0) {
		int64_t ub, ui;
		if (ofs_usage(o, &ub, &ui))
			return -EIO;
		if (dbytes > 0 && (uint64_t)(ub + dbytes) > o->cfg.max_total_size)
			return -ENOSPC;
		if (dinodes > 0 && (uint64_t)(ui + dinodes) > o->cfg.max_inodes)
			return -ENOSPC;
	}
	if (ino_out) {
		*ino_out = ofs_ino_make(o->cfg.node_id, ino_take(o, r.next));
		if (*ino_out == 0)
			return -ENOSPC; /* 2^48 inodes made by this node */
		struct ofs_key ik;
		ofs_key_inode(&ik, *ino_out);
		rc = ofs_add_guard_absent(t, &ik);
		if (rc)
			return rc;
	}
	/* Every record written carries the numbers handed out so far, those of
	 * creates not committed yet included. */
	pthread_mutex_lock(&o->lock);
	if (o->ino_next > r.next)
		r.next = o->ino_next;
	pthread_mutex_unlock(&o->lock);
	r.bytes += dbytes;
	r.inodes += dinodes;
	uint8_t v[OFS_NODEREC_LEN];
	ofs_noderec_encode(&r, v);
	return ofs_add_put(t, &k, v, sizeof(v));
}

static size_t slot_of(uint64_t ino)
{
	return (size_t)((ino ^ (ino >> OFS_INO_NODE_SHIFT) ^ (ino >> 17)) % OFS_TABLE_SIZE);
}

static struct onode *table_find(struct ofs *o, uint64_t ino)
{
	for (struct onode *n = o->table[slot_of(ino)]; n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

static struct onode *table_add(struct ofs *o, uint64_t ino)
{
	struct onode *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->ino = ino;
	pthread_mutex_init(&n->mu, NULL);
	size_t s = slot_of(ino);
	n->next = o->table[s];
	o->table[s] = n;
	return n;
}

/* n's memory: its buffered blocks, folded setattrs and lock, then n. */
static void onode_free(struct onode *n)
{
	for (size_t i = 0; i < n->nblk; i++)
		free(n->blk[i]);
	free(n->blk);
	ofs_fold_drop(n);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

/* Frees n if nothing refers to it any more. Called with o->lock held. */
static void maybe_free(struct ofs *o, struct onode *n)
{
	if (n->ref || n->nlookup || n->nopen || n->dirty)
		return;
	struct onode **pp = &o->table[slot_of(n->ino)];
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	onode_free(n);
}

struct onode *ofs_onode_get(struct ofs *o, uint64_t ino, bool create)
{
	pthread_mutex_lock(&o->lock);
	struct onode *n = table_find(o, ino);
	if (!n && create)
		n = table_add(o, ino);
	if (n)
		n->ref++;
	pthread_mutex_unlock(&o->lock);
	return n;
}

void ofs_onode_put(struct ofs *o, struct onode *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&o->lock);
	n->ref--;
	maybe_free(o, n);
	pthread_mutex_unlock(&o->lock);
}

void ofs_lookup_ref(struct ofs *o, uint64_t ino)
{
	if (ino == OFS_ROOT_INO || ofs_ino_is_virtual(ino))
		return; /* never freed: no need to count */
	pthread_mutex_lock(&o->lock);
	struct onode *n = table_find(o, ino);
	if (!n)
		n = table_add(o, ino);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&o->lock);
}

bool ofs_ino_known(struct ofs *o, uint64_t ino)
{
	if (ino == OFS_ROOT_INO || ofs_ino_is_virtual(ino))
		return true; /* never counted (ofs_lookup_ref) */
	pthread_mutex_lock(&o->lock);
	const struct onode *n = table_find(o, ino);
	bool known = n && (n->nlookup || n->nopen);
	pthread_mutex_unlock(&o->lock);
	return known;
}

/* Read-modify-writes, sequentially consistent: an entry's apply commits,
 * then reads the count with one; the request adds to it, then reads the
 * state. One of the two sees the other (inval.c, drop_unheld). */
void ofs_entry_reply_begin(struct ofs *o)
{
	__atomic_add_fetch(&o->entry_replies, 1, __ATOMIC_SEQ_CST);
}

void ofs_entry_reply_end(struct ofs *o)
{
	__atomic_sub_fetch(&o->entry_replies, 1, __ATOMIC_SEQ_CST);
}

void ofs_forget(struct ofs *o, uint64_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&o->lock);
	struct onode *n = table_find(o, ino);
	if (n) {
		if (n->nlookup < nlookup) {
			log_err("fs: forget of %llu by %llu exceeds its lookup count %llu",
				(unsigned long long)ino, (unsigned long long)nlookup,
				(unsigned long long)n->nlookup);
			n->nlookup = 0;
		} else {
			n->nlookup -= nlookup;
		}
		maybe_free(o, n);
	}
	pthread_mutex_unlock(&o->lock);
}

uint64_t *ofs_known_inodes(struct ofs *o, size_t *n)
{
	pthread_mutex_lock(&o->lock);
	size_t count = 1;
	for (size_t s = 0; s < OFS_TABLE_SIZE; s++)
		for (struct onode *x = o->table[s]; x; x = x->next)
			count += x->nlookup || x->nopen;
	uint64_t *inos = malloc(count * sizeof(*inos));
	if (inos) {
		*n = 0;
		inos[(*n)++] = OFS_ROOT_INO; /* never counted: always known */
		for (size_t s = 0; s < OFS_TABLE_SIZE; s++)
			for (struct onode *x = o->table[s]; x; x = x->next)
				if (x->nlookup || x->nopen)
					inos[(*n)++] = x->ino;
	}
	pthread_mutex_unlock(&o->lock);
	return inos;
}

bool ofs_is_open(struct ofs *o, uint64_t ino)
{
	pthread_mutex_lock(&o->lock);
	struct onode *n = table_find(o, ino);
	bool open = n && n->nopen > 0;
	pthread_mutex_unlock(&o->lock);
	return open;
}

static int build_root(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct ofs_attr a;
	if (ofs_read_attr(o, OFS_ROOT_INO, &a, NULL) == 0)
		return 0; /* there already: empty txn, nothing to do */
	int64_t now = ofs_now_ns();
	memset(&a, 0, sizeof(a));
	a.ino = OFS_ROOT_INO;
	a.mode = S_IFDIR | 0755;
	a.nlink = 2;
	a.atime_ns = a.mtime_ns = a.ctime_ns = now;
	a.parent = OFS_ROOT_INO;
	struct ofs_key k;
	ofs_key_inode(&k, OFS_ROOT_INO);
	int rc = ofs_add_guard_absent(t, &k);
	return rc ? rc : ofs_put_attr(t, &a);
}

/* --- the reaper ---------------------------------------------------------------- */

#define REAP_BATCH 256

struct reap {
	uint64_t node;
	int64_t before_ns; /* marks at or before this time are due */
	uint64_t inos[REAP_BATCH];
	size_t n;
	bool more; /* the scan stopped at a full batch */
};

static int collect_orphan(void *arg, const void *key, size_t key_len, const void *val,
			  size_t val_len, uint64_t version)
{
	struct reap *r = arg;
	uint64_t ino, owner;
	int64_t at;
	if (ofs_key_parse_ino(key, key_len, &ino) || ofs_orphan_decode(val, val_len, &owner, &at))
		return 0;
	if (owner != r->node || at > r->before_ns)
		return 0;
	if (r->n == REAP_BATCH) {
		r->more = true;
		return 1;
	}
	r->inos[r->n++] = ino;
	return 0;
}

/* Drops ino's inode, data and xattrs, guarded by the inode's version read
 * (ver): a last write elsewhere fails it and the batch is redone. The data
 * stay when a version of the file is kept in place (ofs_history.c): they
 * go with that version. */
static int add_free_inode(struct ofs *o, struct kv_txn *t, uint64_t ino, uint64_t ver)
{
	struct ofs_key k;
	ofs_key_inode(&k, ino);
	int rc = ofs_add_guard_version(t, &k, ver);
	if (rc)
		return rc;
	rc = ofs_add_delete(t, &k);
	if (rc)
		return rc;
	rc = ofs_history_holds_blocks(o, t, ino);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		ofs_key_block_prefix(&k, ino);
		rc = ofs_add_delete_prefix(t, &k);
		if (rc)
			return rc;
	}
	ofs_key_xattr_prefix(&k, ino);
	rc = ofs_add_delete_prefix(t, &k);
	if (rc)
		return rc;
	struct ofs_hkey hk; /* its versions stay; who wrote it last goes */
	ofs_hkey_writer(&hk, ino);
	rc = kv_txn_add_delete(t, hk.b, hk.len);
	return rc == -EINVAL ? -EFBIG : rc;
}

static int build_reap(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct reap *r = arg;
	int64_t bytes = 0, inodes = 0;
	for (size_t i = 0; i < r->n; i++) {
		uint64_t ino = r->inos[i];
		struct ofs_attr a;
		uint64_t ver;
		struct ofs_key k;
		int rc = ofs_read_attr(o, ino, &a, &ver);
		if (rc && rc != -ENOENT)
			return rc;
		bool gone = rc == -ENOENT; /* a stale mark only */
		ofs_key_orphan(&k, ino);
		rc = ofs_add_delete(t, &k);
		if (rc)
			return rc;
		if (gone)
			continue;
		if (a.nlink > 0)
			continue; /* never happens: link() refuses nlink 0; keep the inode */
		rc = add_free_inode(o, t, ino, ver);
		if (rc)
			return rc;
		bytes += S_ISREG(a.mode) ? (int64_t)a.size : 0;
		inodes++;
	}
	return ofs_noderec_update(o, t, -bytes, -inodes, NULL);
}

int ofs_reap(struct ofs *o, int64_t now_ns)
{
	struct ofs_key p;
	ofs_key_orphan_prefix(&p);
	struct reap *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	int total = 0, rc = 0;
	do {
		r->node = o->cfg.node_id;
		r->before_ns = now_ns - (int64_t)o->cfg.orphan_grace_ms * 1000000;
		r->n = 0;
		r->more = false;
		rc = ofs_kv_scan(o, p.b, p.len, NULL, 0, collect_orphan, r);
		if (rc)
			break;
		/* still open or known to the kernel here: not yet */
		size_t keep = 0;
		for (size_t i = 0; i < r->n; i++) {
			uint64_t ino = r->inos[i];
			pthread_mutex_lock(&o->lock);
			struct onode *n = table_find(o, ino);
			bool busy = n && (n->nopen || n->nlookup || n->dirty);
			pthread_mutex_unlock(&o->lock);
			if (!busy)
				r->inos[keep++] = ino;
		}
		bool progress = keep > 0;
		r->n = keep;
		if (!progress)
			break;
		rc = ofs_run_txn(o, build_reap, r);
		if (rc)
			break;
		total += (int)keep;
		if (keep < REAP_BATCH)
			break; /* busy ones filled the batch: come back next round */
	} while (r->more);
	free(r);
	return rc ? rc : total;
}

static void *reaper_main(void *arg)
{
	struct ofs *o = arg;
	pthread_setname_np(pthread_self(), "ofs-reaper");
	uint32_t round = 0; /* of 1 s: the history is trimmed every hist_trim_s */
	pthread_mutex_lock(&o->reap_lock);
	while (!o->reap_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&o->reap_cond, &o->reap_lock, &ts);
		if (o->reap_stop)
			break;
		pthread_mutex_unlock(&o->reap_lock);
		int rc = ofs_reap(o, ofs_now_ns());
		if (rc < 0 && rc != -EROFS)
			log_warn("fs: freeing unlinked files: %s", strerror(-rc));
		if (o->cfg.hist_enabled &&
		    ++round % (o->cfg.hist_trim_s ? o->cfg.hist_trim_s : 1) == 0) {
			rc = ofs_history_trim(o, ofs_now_ns());
			if (rc < 0 && rc != -EROFS)
				log_warn("fs: trimming the history: %s", strerror(-rc));
		}
		pthread_mutex_lock(&o->reap_lock);
	}
	pthread_mutex_unlock(&o->reap_lock);
	return NULL;
}

int ofs_reaper_start(struct ofs *o)
{
	o->reap_stop = false;
	int rc = pthread_create(&o->reap_thread, NULL, reaper_main, o);
	if (rc)
		return -rc;
	o->reap_running = true;
	return 0;
}

void ofs_reaper_stop(struct ofs *o)
{
	if (!o->reap_running)
		return;
	pthread_mutex_lock(&o->reap_lock);
	o->reap_stop = true;
	pthread_cond_signal(&o->reap_cond);
	pthread_mutex_unlock(&o->reap_lock);
	pthread_join(o->reap_thread, NULL);
	o->reap_running = false;
}

int ofs_bootstrap(struct ofs *o)
{
	int rc = ofs_run_txn(o, build_root, NULL);
	if (rc) {
		log_err("fs: cannot create the root directory: %s", strerror(-rc));
		return rc;
	}
	/* Nothing is open or known to a kernel here yet: every mark of this
	 * node is free to go (files unlinked before a stop or a crash). */
	rc = ofs_reap(o, INT64_MAX);
	if (rc > 0)
		log_info("fs: freed %d files unlinked before the last stop", rc);
	else if (rc < 0)
		log_warn("fs: cannot free files unlinked before the last stop yet: %s",
			 strerror(-rc));
	return 0;
}

void ofs_config_defaults(struct ofs_config *oc, uint64_t node_id)
{
	memset(oc, 0, sizeof(*oc));
	oc->node_id = node_id;
	oc->max_file_size = UINT64_C(64) << 20;
	oc->max_total_size = UINT64_C(10240) << 20;
	oc->max_inodes = 1000000;
	oc->write_buffer = UINT64_C(4) << 20;
	oc->max_depth = 256;
	oc->retries = 64;
	oc->orphan_grace_ms = 2000;
	oc->entry_timeout_s = 1.0;
	oc->attr_timeout_s = 1.0;
	oc->inval_queue_max = 65536;
	oc->read_ahead_kb = 4096;
	oc->hist_enabled = true;
	oc->hist_versions = 10;
	oc->hist_max_age_ns = UINT64_C(30) * 86400 * 1000000000;
	oc->hist_max_total = UINT64_C(256) << 20;
	oc->hist_max_file = UINT64_C(1) << 20;
	oc->hist_trim_s = 30;
}

void ofs_config_from_cfg(struct ofs_config *oc, const struct cfg *c)
{
	ofs_config_defaults(oc, c->node_id);
	oc->max_file_size = (uint64_t)c->fs_max_file_size_mb << 20;
	oc->max_total_size = (uint64_t)c->fs_max_total_size_mb << 20;
	oc->max_inodes = c->fs_max_inodes;
	oc->write_buffer = (uint64_t)c->fs_write_buffer_mb << 20;
	oc->inval_queue_max = c->fs_inval_queue_max;
	oc->read_ahead_kb = c->fs_read_ahead_kb;
	oc->entry_timeout_s = oc->attr_timeout_s = c->fs_kernel_cache_ms / 1000.0;
	oc->hist_enabled = c->hist_enabled;
	oc->hist_versions = c->hist_versions;
	oc->hist_max_age_ns = (uint64_t)c->hist_max_age_s * 1000000000;
	oc->hist_max_total = (uint64_t)c->hist_max_total_mb << 20;
	oc->hist_max_file = (uint64_t)c->hist_max_file_kb << 10;
	oc->hist_trim_s = c->hist_trim_s;
}

struct ofs *ofs_new(const struct ofs_config *cfg, const struct ofs_backend *b)
{
	if (cfg->node_id == 0 || cfg->node_id > 0xffff || !b->propose || !b->kv) {
		errno = EINVAL;
		return NULL;
	}
	struct ofs *o = calloc(1, sizeof(*o));
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	o->cfg = *cfg;
	if (o->cfg.write_buffer < OFS_BLOCK_SIZE)
		o->cfg.write_buffer = OFS_BLOCK_SIZE;
	if (o->cfg.inval_queue_max < 1)
		o->cfg.inval_queue_max = 1;
	o->b = *b;
	o->wake_pipe[0] = o->wake_pipe[1] = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->nr_lock, NULL);
	pthread_mutex_init(&o->iq_lock, NULL);
	pthread_cond_init(&o->iq_cond, NULL);
	pthread_cond_init(&o->iq_done_cond, NULL);
	pthread_mutex_init(&o->reap_lock, NULL);
	pthread_cond_init(&o->reap_cond, NULL);
	o->names = ofs_names_new();
	ofs_replay_init(o);
	o->hist = ofs_hist_new(); /* NULL: the view answers ENOMEM, history is still kept */
	int rc = ofs_bootstrap(o);
	if (rc) {
		ofs_destroy(&o);
		errno = -rc;
		return NULL;
	}
	return o;
}

/* The core's teardown: the FUSE side (session, mount, waker and
 * invalidation threads) is ofs_unmount's, done before. */
void ofs_destroy(struct ofs **op)
{
	struct ofs *o = *op;
	if (!o)
		return;
	assert(!o->se); /* ofs_unmount first */
	ofs_reaper_stop(o);
	ofs_inval_drain(o);
	ofs_replay_close(o);
	while (o->files) {
		struct ofs_file *f = o->files;
		o->files = f->next;
		free(f->vbuf);
		ofs_dirent_list_free(f->dir);
		free(f);
	}
	ofs_pending_free_all(o);
	for (size_t s = 0; s < OFS_TABLE_SIZE; s++) {
		struct onode *n = o->table[s];
		while (n) {
			struct onode *next = n->next;
			onode_free(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->nr_lock);
	free(o->nr);
	pthread_mutex_destroy(&o->iq_lock);
	pthread_cond_destroy(&o->iq_cond);
	pthread_cond_destroy(&o->iq_done_cond);
	pthread_mutex_destroy(&o->reap_lock);
	pthread_cond_destroy(&o->reap_cond);
	ofs_names_destroy(&o->names);
	ofs_hist_destroy(&o->hist);
	free(o);
	*op = NULL;
}

void ofs_set_status_source(struct ofs *o, ofs_status_fn fn, void *ctx)
{
	o->status_fn = fn;
	o->status_ctx = ctx;
}

void ofs_get_stats(struct ofs *o, struct ofs_stats *st)
{
	pthread_mutex_lock(&o->lock);
	*st = o->stats;
	pthread_mutex_unlock(&o->lock);
	pthread_mutex_lock(&o->iq_lock);
	st->invals_pending = o->iq_len;
	pthread_mutex_unlock(&o->iq_lock);
	pthread_mutex_lock(&o->rp_lock);
	st->replays_pending = o->rp_len + (o->rp_cur != NULL) + o->rp_holding;
	ofs_replay_latency_locked(o, st);
	pthread_mutex_unlock(&o->rp_lock);
}

void ofs_attr_to_stat(const struct ofs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = OFS_BLOCK_SIZE;
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim.tv_sec = a->atime_ns / 1000000000;
	st->st_atim.tv_nsec = a->atime_ns % 1000000000;
	st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = a->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
	/* times before 1970 keep tv_nsec in [0, 1e9) */
	if (st->st_atim.tv_nsec < 0) {
		st->st_atim.tv_sec--;
		st->st_atim.tv_nsec += 1000000000;
	}
	if (st->st_mtim.tv_nsec < 0) {
		st->st_mtim.tv_sec--;
		st->st_mtim.tv_nsec += 1000000000;
	}
	if (st->st_ctim.tv_nsec < 0) {
		st->st_ctim.tv_sec--;
		st->st_ctim.tv_nsec += 1000000000;
	}
}
