/*
 * File history: every change to a file's content, and the loss of its last
 * name, keeps the previous version in the replicated state (keys in
 * ofs_history.h), within the [history] bounds; /.omnifs/history/<path>/
 * shows the versions as read-only files named by log index.
 *
 * Where a version is captured: on the proposing node, in the transaction
 * that replaces it. ofs_commit hands every transaction here before it is
 * proposed; one that writes or truncates a file's blocks, or removes a
 * regular file's last name (unlink, rename over it), gets the old content
 * copied into history keys, guarded by the version of the file's attributes
 * that was read, so the copy is exactly the state the transaction replaces
 * (a change landing meanwhile fails the guard and the commit is rebuilt).
 * Apply knows nothing of history: the copy is ordinary writes, so every node
 * applies the same bytes and the digest, the state transfer and a snapshot
 * of the state carry the history as they carry the files.
 *
 * Why the bounds may come from each node's config file: they only decide
 * what a proposer puts into its transactions, never how an entry applies.
 * The per-file bound is enforced in the capturing transaction (it deletes
 * the file's oldest versions); age and total size by a trimming pass (every
 * TRIM_EVERY_S on every node, from the reaper thread) that proposes plain
 * deletes. Both are decided changes, so every node's state stays identical
 * whatever the configs say; nodes with different [history] sections only
 * differ in how much they keep (the strictest trimmer wins), as with [fs]
 * limits, and the docs ask for the same section everywhere.
 *
 * A path key goes with the last version of its inode (the trimming pass).
 *
 * Cost: a change of a file up to hist_max_file bytes (1 MiB by default)
 * carries a copy of its old blocks, so a transaction grows by at most that
 * much; a larger file keeps no versions (counted in hist_skipped). A new
 * file that never had content keeps nothing; every content change writes one
 * small writer record. With history off nothing of this runs.
 *
 * The view: /.omnifs/history mirrors the tree; each directory lists the
 * names of the live directory at that path and of deleted files kept below
 * it; a path that had versions (the live file's and those of every inode
 * kept under that path, so a file deleted and created again shows both)
 * lists them as files named by index, plus .versions.json (index, time,
 * node, uid, size, deleted). Its inode numbers are node-local (a table of
 * HIST_SLOTS entries: one forgotten by reuse answers ESTALE). A version
 * file has the mode bits (read only) and owner of the file it was, so the
 * kernel's permission check keeps private files private.
 */
#include "ofs_history.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "byteorder.h"
#include "kv.h"
#include "log.h"
#include "ofs_int.h"

#define MAX_CAPTURES	 4		      /* files kept by one transaction, at most */
#define HIST_SLOTS	 4096		      /* view inodes remembered per node */
#define HIST_VINO_FIRST	 16		      /* view inodes count up from here (node 0's range) */
#define TRIM_BATCH	 256		      /* versions dropped per transaction */
#define VERSION_READ_MAX (UINT64_C(64) << 20) /* max_file_kb's top: larger is corrupt */

/* --- capture ------------------------------------------------------------------------ */

static int add_hput(struct kv_txn *t, const struct ofs_hkey *k, const void *v, size_t len)
{
	int rc = kv_txn_add_put(t, k->b, k->len, v, len);
	return rc == -EINVAL ? -EFBIG : rc;
}

static int add_hdelete(struct kv_txn *t, const struct ofs_hkey *k)
{
	int rc = kv_txn_add_delete(t, k->b, k->len);
	return rc == -EINVAL ? -EFBIG : rc;
}

struct capture {
	uint64_t ino;
	bool deleted; /* lost its last name (else its content changed) */
};

static bool in_list(const struct capture *c, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].ino == ino)
			return true;
	return false;
}

/* Does t write a dirent naming child? (a rename keeps the file alive) */
static bool txn_names(const struct kv_txn *t, uint64_t child)
{
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		uint64_t c;
		uint8_t dt;
		if (op->type == KV_OP_PUT && ofs_key_kind(op->key, op->key_len) == OFS_K_DIRENT &&
		    ofs_dirent_decode(op->value, op->value_len, &c, &dt) == 0 && c == child)
			return true;
	}
	return false;
}

/* Does t delete ino's attributes (the reaper freeing it)? */
static bool txn_frees(const struct kv_txn *t, uint64_t ino)
{
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		uint64_t x;
		if (op->type == KV_OP_DELETE && ofs_key_kind(op->key, op->key_len) == OFS_K_INODE &&
		    ofs_key_parse_ino(op->key, op->key_len, &x) == 0 && x == ino)
			return true;
	}
	return false;
}

/* The files whose previous version t replaces, into c (at most MAX_CAPTURES). */
static int find_captures(struct ofs *o, const struct kv_txn *t, struct capture *c, size_t *n)
{
	*n = 0;
	for (uint32_t i = 0; i < t->n_ops && *n < MAX_CAPTURES; i++) {
		const struct kv_op *op = &t->ops[i];
		bool write = op->type == KV_OP_PUT || op->type == KV_OP_DELETE ||
			     op->type == KV_OP_DELETE_PREFIX;
		if (!write)
			continue;
		uint64_t ino;
		switch (ofs_key_kind(op->key, op->key_len)) {
		case OFS_K_BLOCK:
			if (ofs_key_parse_ino(op->key, op->key_len, &ino) == 0 &&
			    !in_list(c, *n, ino) && !txn_frees(t, ino))
				c[(*n)++] = (struct capture){ino, false};
			break;
		case OFS_K_INODE: {
			/* a truncation by setattr: the size changes, no block write */
			struct ofs_attr na, oa;
			if (op->type != KV_OP_PUT ||
			    ofs_key_parse_ino(op->key, op->key_len, &ino) || in_list(c, *n, ino) ||
			    ofs_attr_decode(&na, ino, op->value, op->value_len) ||
			    !S_ISREG(na.mode))
				break;
			int rc = ofs_read_attr(o, ino, &oa, NULL);
			if (rc && rc != -ENOENT)
				return rc;
			if (rc == 0 && oa.size != na.size && na.nlink > 0)
				c[(*n)++] = (struct capture){ino, false};
			break;
		}
		case OFS_K_DIRENT: {
			uint64_t parent, child;
			const char *name;
			size_t len;
			uint8_t dtype;
			struct ofs_attr a;
			if (op->type == KV_OP_DELETE_PREFIX ||
			    ofs_key_parse_dirent(op->key, op->key_len, &parent, &name, &len))
				break;
			int rc = ofs_read_dirent(o, parent, name, len, &child, &dtype, NULL);
			if (rc == -ENOENT || (rc == 0 && dtype != DT_REG))
				break;
			if (rc)
				return rc;
			if (op->type == KV_OP_PUT) {
				uint64_t nc;
				if (ofs_dirent_decode(op->value, op->value_len, &nc, &dtype) ||
				    nc == child)
					break;
			}
			if (txn_names(t, child))
				break;
			rc = ofs_read_attr(o, child, &a, NULL);
			if (rc == -ENOENT)
				break;
			if (rc)
				return rc;
			if (a.nlink != 1 || !S_ISREG(a.mode))
				break;
			for (size_t j = 0; j < *n; j++)
				if (c[j].ino == child) {
					c[j].deleted = true;
					child = 0;
				}
			if (child)
				c[(*n)++] = (struct capture){child, true};
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

struct ver_list {
	uint64_t *idx;
	uint64_t *size; /* each version's size (its blocks to drop) */
	size_t n, cap;
	bool has_writer;
	struct ofs_hwriter w;
	uint64_t writer_ver;
};

static int collect_versions(void *arg, const void *key, size_t key_len, const void *val,
			    size_t val_len, uint64_t version)
{
	struct ver_list *l = arg;
	uint64_t ino, idx;
	int kind = ofs_hkey_parse(key, key_len, &ino, &idx);
	if (kind == 0) {
		l->has_writer = ofs_hwriter_decode(&l->w, val, val_len) == 0;
		l->writer_ver = version;
		return 0;
	}
	struct ofs_hversion hv;
	if (kind < 0 || ofs_hversion_decode(&hv, val, val_len))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		uint64_t *p = realloc(l->idx, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->idx = p;
		p = realloc(l->size, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->size = p;
		l->cap = cap;
	}
	l->size[l->n] = hv.size;
	l->idx[l->n++] = idx;
	return 0;
}

struct block_copy {
	struct kv_txn *t;
	uint64_t ino, idx;
	int rc;
};

static int copy_block(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	(void)version;
	struct block_copy *b = arg;
	uint64_t ino, blk;
	if (ofs_key_parse_block(key, key_len, &ino, &blk))
		return 0;
	struct ofs_hkey k;
	ofs_hkey_data(&k, b->ino, b->idx, blk);
	return add_hput(b->t, &k, val, val_len);
}

/*
 * Drops one version: its record and each of its blocks, key by key. Not a
 * DELETE_PREFIX: that is a RocksDB range tombstone, and every read of the
 * state pays for each one until compaction drops it; one per change of a
 * file would slow the whole filesystem. A version has at most
 * hist_max_file / OFS_BLOCK_SIZE blocks (16 by default).
 */
static int drop_version(struct kv_txn *t, uint64_t ino, uint64_t idx, uint64_t size)
{
	struct ofs_hkey k;
	ofs_hkey_version(&k, ino, idx);
	int rc = add_hdelete(t, &k);
	for (uint64_t b = 0; !rc && b * OFS_BLOCK_SIZE < size; b++) {
		ofs_hkey_data(&k, ino, idx, b);
		rc = add_hdelete(t, &k);
	}
	return rc;
}

/* Drops the oldest of ino's versions so that keep remain (idx sorted). */
static int trim_file(struct kv_txn *t, uint64_t ino, const struct ver_list *l, size_t keep)
{
	int rc = 0;
	for (size_t i = 0; !rc && i + keep < l->n; i++)
		rc = drop_version(t, ino, l->idx[i], l->size[i]);
	return rc;
}

static int capture_one(struct ofs *o, struct kv_txn *t, const struct capture *c,
		       const struct kv_note *note, bool has_note, int64_t now)
{
	struct ofs_attr a;
	uint64_t ver;
	struct ofs_hkey k;
	struct ofs_key fk;
	int rc = ofs_read_attr(o, c->ino, &a, &ver);
	if (rc == -ENOENT)
		return 0; /* made in this very transaction */
	if (rc)
		return rc;
	if (a.nlink == 0)
		return 0; /* no name left: kept when it lost it, nobody reaches it now */
	struct ver_list l = {0};
	ofs_hkey_versions_prefix(&k, c->ino);
	rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_versions, &l);
	if (rc)
		goto out;
	/* This change's own writer record: the next version's author. */
	if (!c->deleted) {
		struct ofs_hwriter w = {o->cfg.node_id, has_note ? note->uid : 0, now};
		uint8_t v[OFS_HWRITER_LEN];
		ofs_hwriter_encode(&w, v);
		ofs_hkey_writer(&k, c->ino);
		rc = add_hput(t, &k, v, sizeof(v));
		if (rc)
			goto out;
	}
	/* Never fail a change for its history: a copy that would take the
	 * transaction near the KV's limit is not made (max_file_kb allows 64
	 * MiB, a transaction at most as much in all). */
	if (a.size > o->cfg.hist_max_file || t->enc_len + a.size + 65536 > KV_MAX_TXN_LEN / 2) {
		ofs_count(o, &o->hist_skipped, 1);
		goto out;
	}
	if (!c->deleted && a.size == 0)
		goto out; /* nothing to keep: a new file, or the truncation of a
			   * shell's `>` (an empty step between two versions) */
	bool known = false;
	for (size_t i = 0; i < l.n; i++)
		known |= l.idx[i] == ver;
	if (known)
		goto out; /* kept already (a commit retried after its apply) */
	rc = trim_file(t, c->ino, &l, o->cfg.hist_versions ? o->cfg.hist_versions - 1 : 0);
	if (rc)
		goto out;
	struct ofs_hversion hv = {
		.mode = a.mode,
		.uid = a.uid,
		.gid = a.gid,
		.node = l.has_writer ? l.w.node : ofs_ino_node(c->ino),
		.writer_uid = l.has_writer ? l.w.uid : a.uid,
		.time_ns = l.has_writer ? l.w.time_ns : a.mtime_ns,
		.size = a.size,
		.kept_ns = now,
		.deleted = c->deleted,
	};
	uint8_t v[OFS_HVERSION_LEN];
	ofs_hversion_encode(&hv, v);
	ofs_hkey_version(&k, c->ino, ver);
	rc = add_hput(t, &k, v, sizeof(v));
	if (rc)
		goto out;
	struct block_copy b = {t, c->ino, ver, 0};
	ofs_key_block_prefix(&fk, c->ino);
	rc = ofs_kv_scan(o, fk.b, fk.len, NULL, 0, copy_block, &b);
	if (rc)
		goto out;
	/* The copy is of the state at ver exactly: a change meanwhile fails. */
	ofs_key_inode(&fk, c->ino);
	rc = ofs_add_guard_version(t, &fk, ver);
	if (rc)
		goto out;
	if (has_note) {
		/* the path it had: a rename's victim is at the new path */
		const char *p = note->kind == KV_NOTE_RENAME ? note->path2 : note->path;
		size_t pl = note->kind == KV_NOTE_RENAME ? note->path2_len : note->path_len;
		if (ofs_hkey_path(&k, p, pl, c->ino) == 0) {
			static const uint8_t one = 1;
			rc = add_hput(t, &k, &one, 1);
		}
	}
	if (!rc && c->deleted && l.has_writer) {
		ofs_hkey_writer(&k, c->ino);
		rc = add_hdelete(t, &k);
	}
out:
	free(l.idx);
	free(l.size);
	return rc;
}

int ofs_history_capture(struct ofs *o, struct kv_txn *t)
{
	if (!o->cfg.hist_enabled || t->n_ops == 0)
		return 0;
	struct capture c[MAX_CAPTURES];
	size_t n;
	int rc = find_captures(o, t, c, &n);
	if (rc || n == 0)
		return rc;
	struct kv_note note;
	/* the note's path is the one file's: with more, the versions are kept
	 * by inode only (reached through the live path) */
	bool has_note = n == 1 && t->note && kv_note_decode(&note, t->note, t->note_len) == 0;
	int64_t now = ofs_now_ns();
	for (size_t i = 0; i < n && !rc; i++)
		rc = capture_one(o, t, &c[i], &note, has_note, now);
	return rc;
}

/* --- trimming: age and total size ------------------------------------------------------ */

struct kept {
	uint64_t ino, idx, size, at; /* at: the log index that kept it */
	int64_t kept_ns;
};

struct kept_list {
	struct kept *v;
	size_t n, cap;
	uint64_t total;
};

static int collect_kept(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
			uint64_t version)
{
	struct kept_list *l = arg;
	uint64_t ino, idx;
	struct ofs_hversion hv;
	if (ofs_hkey_parse(key, key_len, &ino, &idx) != 1 || ofs_hversion_decode(&hv, val, val_len))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct kept *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = (struct kept){ino, idx, hv.size, version, hv.kept_ns};
	l->total += hv.size;
	return 0;
}

static int by_kept_order(const void *a, const void *b)
{
	const struct kept *x = a, *y = b;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct trim_batch {
	const struct kept *v;
	size_t n;
};

static int build_trim(struct ofs *o, struct kv_txn *t, void *arg)
{
	(void)o;
	struct trim_batch *b = arg;
	int rc = 0;
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = drop_version(t, b->v[i].ino, b->v[i].idx, b->v[i].size);
	return rc;
}

/* The path keys of inodes that have no version left. */
struct orphan_paths {
	const uint64_t *live; /* sorted: inodes with versions left */
	size_t n_live;
	struct ofs_hkey *keys;
	size_t n, cap;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int collect_orphan_paths(void *arg, const void *key, size_t key_len, const void *val,
				size_t val_len, uint64_t version)
{
	(void)val, (void)val_len, (void)version;
	struct orphan_paths *op = arg;
	const char *p;
	size_t pl;
	uint64_t ino;
	if (ofs_hkey_parse_path(key, key_len, &p, &pl, &ino) ||
	    bsearch(&ino, op->live, op->n_live, sizeof(ino), cmp_u64))
		return 0;
	if (op->n == op->cap) {
		if (op->cap == TRIM_BATCH)
			return 1; /* the rest next time */
		size_t cap = op->cap ? 2 * op->cap : 16;
		struct ofs_hkey *k = realloc(op->keys, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		op->keys = k;
		op->cap = cap;
	}
	struct ofs_hkey *k = &op->keys[op->n++];
	k->len = key_len;
	memcpy(k->b, key, key_len);
	return 0;
}

static int build_drop_paths(struct ofs *o, struct kv_txn *t, void *arg)
{
	(void)o;
	struct orphan_paths *op = arg;
	for (size_t i = 0; i < op->n; i++) {
		int rc = add_hdelete(t, &op->keys[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* Drops the path keys of inodes none of whose versions remain (those from
 * drop on in l are kept). */
static int drop_orphan_paths(struct ofs *o, const struct kept_list *l, size_t drop)
{
	struct orphan_paths op = {0};
	uint64_t *live = malloc((l->n - drop + 1) * sizeof(*live));
	if (!live)
		return -ENOMEM;
	for (size_t i = drop; i < l->n; i++)
		live[op.n_live++] = l->v[i].ino;
	qsort(live, op.n_live, sizeof(*live), cmp_u64);
	op.live = live;
	struct ofs_hkey k;
	k.len = 2;
	k.b[0] = 'F';
	k.b[1] = OFS_K_HIST_PATH;
	int rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_orphan_paths, &op);
	if (!rc && op.n)
		rc = ofs_run_txn(o, build_drop_paths, &op);
	free(op.keys);
	free(live);
	return rc;
}

int ofs_history_trim(struct ofs *o, int64_t now_ns)
{
	struct kept_list l = {0};
	struct ofs_hkey k;
	ofs_hkey_all_prefix(&k);
	int rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_kept, &l);
	if (rc)
		goto out;
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), by_kept_order);
	/* Oldest kept first: those past the age bound, then more until the
	 * total is within its bound. */
	size_t drop = 0;
	uint64_t total = l.total;
	while (drop < l.n) {
		const struct kept *v = &l.v[drop];
		bool old = o->cfg.hist_max_age_ns &&
			   now_ns - v->kept_ns > (int64_t)o->cfg.hist_max_age_ns;
		if (!old && total <= o->cfg.hist_max_total)
			break;
		total -= v->size;
		drop++;
	}
	for (size_t i = 0; i < drop && !rc; i += TRIM_BATCH) {
		struct trim_batch b = {l.v + i, drop - i < TRIM_BATCH ? drop - i : TRIM_BATCH};
		rc = ofs_run_txn(o, build_trim, &b);
	}
	if (!rc)
		rc = drop_orphan_paths(o, &l, drop);
	if (!rc)
		rc = (int)(drop > INT32_MAX ? INT32_MAX : drop);
out:
	free(l.v);
	return rc;
}

/* --- the view ------------------------------------------------------------------------- */

enum hnode_kind { HN_DIR = 1, HN_VERSION, HN_INDEX };

struct hnode {
	uint64_t vino; /* 0: empty slot */
	enum hnode_kind kind;
	char *path;	   /* "" for /.omnifs/history itself, else "/a/b" */
	uint64_t ino, idx; /* HN_VERSION */
};

struct ofs_hist {
	pthread_mutex_t lock; /* the table and next; a leaf */
	uint64_t next;
	struct hnode slot[HIST_SLOTS];
};

struct ofs_hist *ofs_hist_new(void)
{
	struct ofs_hist *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->next = HIST_VINO_FIRST;
	return h;
}

void ofs_hist_destroy(struct ofs_hist **hp)
{
	struct ofs_hist *h = *hp;
	if (!h)
		return;
	for (size_t i = 0; i < HIST_SLOTS; i++)
		free(h->slot[i].path);
	pthread_mutex_destroy(&h->lock);
	free(h);
	*hp = NULL;
}

bool ofs_hist_is_vino(uint64_t ino)
{
	return ino == OFS_VINO_HISTORY || (ino >= HIST_VINO_FIRST && ofs_ino_node(ino) == 0);
}

/* The view inode of (kind, path, ino, idx): the one it has, or a new one. */
static int hist_vino(struct ofs *o, enum hnode_kind kind, const char *path, uint64_t ino,
		     uint64_t idx, uint64_t *vino)
{
	if (kind == HN_DIR && path[0] == '\0') {
		*vino = OFS_VINO_HISTORY;
		return 0;
	}
	struct ofs_hist *h = o->hist;
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < HIST_SLOTS; i++) {
		struct hnode *s = &h->slot[i];
		if (s->vino && s->kind == kind && s->ino == ino && s->idx == idx &&
		    strcmp(s->path, path) == 0) {
			*vino = s->vino;
			pthread_mutex_unlock(&h->lock);
			return 0;
		}
	}
	char *copy = strdup(path);
	if (!copy) {
		pthread_mutex_unlock(&h->lock);
		return -ENOMEM;
	}
	uint64_t v = h->next++;
	struct hnode *s = &h->slot[v % HIST_SLOTS];
	free(s->path);
	*s = (struct hnode){v, kind, copy, ino, idx};
	*vino = v;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* A copy of vino's node (path malloc'd), or -ESTALE if forgotten. */
static int hist_node(struct ofs *o, uint64_t vino, struct hnode *out)
{
	if (vino == OFS_VINO_HISTORY) {
		*out = (struct hnode){vino, HN_DIR, strdup(""), 0, 0};
		return out->path ? 0 : -ENOMEM;
	}
	struct ofs_hist *h = o->hist;
	if (!h)
		return -ESTALE;
	pthread_mutex_lock(&h->lock);
	struct hnode *s = &h->slot[vino % HIST_SLOTS];
	int rc = -ESTALE;
	if (s->vino == vino) {
		*out = *s;
		out->path = strdup(s->path);
		rc = out->path ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* The live inode at path ("" or "/a/b"): 0 and *ino, *dtype; -ENOENT. */
static int resolve(struct ofs *o, const char *path, uint64_t *ino, uint8_t *dtype)
{
	uint64_t cur = OFS_ROOT_INO;
	uint8_t dt = DT_DIR;
	const char *p = path;
	while (*p) {
		p++; /* the '/' */
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (dt != DT_DIR || len == 0 || len > OFS_NAME_MAX)
			return -ENOENT;
		int rc = ofs_read_dirent(o, cur, p, len, &cur, &dt, NULL);
		if (rc)
			return rc;
		p += len;
	}
	*ino = cur;
	*dtype = dt;
	return 0;
}

/* One version of a path: where it is and what it is. */
struct hver {
	uint64_t ino, idx;
	struct ofs_hversion v;
};

struct hver_list {
	struct hver *v;
	size_t n, cap;
	uint64_t *inos; /* the inodes kept under the path */
	size_t n_inos, cap_inos;
};

static int push_ino(struct hver_list *l, uint64_t ino)
{
	for (size_t i = 0; i < l->n_inos; i++)
		if (l->inos[i] == ino)
			return 0;
	if (l->n_inos == l->cap_inos) {
		size_t cap = l->cap_inos ? 2 * l->cap_inos : 8;
		uint64_t *p = realloc(l->inos, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->inos = p;
		l->cap_inos = cap;
	}
	l->inos[l->n_inos++] = ino;
	return 0;
}

static int collect_path_inos(void *arg, const void *key, size_t key_len, const void *val,
			     size_t val_len, uint64_t version)
{
	(void)val;
	(void)val_len;
	(void)version;
	const char *p;
	size_t pl;
	uint64_t ino;
	if (ofs_hkey_parse_path(key, key_len, &p, &pl, &ino))
		return 0;
	return push_ino(arg, ino);
}

static int collect_hver(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
			uint64_t version)
{
	(void)version;
	struct hver_list *l = arg;
	struct hver h;
	if (ofs_hkey_parse(key, key_len, &h.ino, &h.idx) != 1 ||
	    ofs_hversion_decode(&h.v, val, val_len))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct hver *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = h;
	return 0;
}

static int by_idx(const void *a, const void *b)
{
	const struct hver *x = a, *y = b;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void hver_list_free(struct hver_list *l)
{
	free(l->v);
	free(l->inos);
	memset(l, 0, sizeof(*l));
}

/* Every version of path: of the live regular file there and of each inode
 * kept under the path, sorted by index. */
static int versions_of(struct ofs *o, const char *path, struct hver_list *l)
{
	memset(l, 0, sizeof(*l));
	if (!path[0])
		return 0;
	uint64_t ino;
	uint8_t dt;
	int rc = resolve(o, path, &ino, &dt);
	if (rc == 0 && dt == DT_REG)
		rc = push_ino(l, ino);
	else if (rc == -ENOENT)
		rc = 0;
	struct ofs_hkey k;
	if (!rc && ofs_hkey_path_prefix(&k, path, strlen(path), true) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_path_inos, l);
	for (size_t i = 0; i < l->n_inos && !rc; i++) {
		ofs_hkey_versions_prefix(&k, l->inos[i]);
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_hver, l);
	}
	if (rc) {
		hver_list_free(l);
		return rc;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_idx);
	return 0;
}

static void fill_dir(struct ofs_attr *a, uint64_t vino)
{
	memset(a, 0, sizeof(*a));
	a->ino = vino;
	a->mode = S_IFDIR | 0555;
	a->nlink = 2;
	a->atime_ns = a->mtime_ns = a->ctime_ns = ofs_now_ns();
	a->parent = OFS_VINO_DIR;
}

static void fill_version(struct ofs_attr *a, uint64_t vino, const struct ofs_hversion *v)
{
	memset(a, 0, sizeof(*a));
	a->ino = vino;
	a->mode = S_IFREG | (v->mode & 0444);
	a->uid = v->uid;
	a->gid = v->gid;
	a->nlink = 1;
	a->size = v->size;
	a->atime_ns = a->mtime_ns = a->ctime_ns = v->time_ns;
}

/* Renders the .versions.json of path into *out (malloc'd). */
static int render_index(struct ofs *o, const char *path, char **out, size_t *len)
{
	struct hver_list l;
	int rc = versions_of(o, path, &l);
	if (rc)
		return rc;
	size_t cap = 64 + l.n * 200;
	char *buf = malloc(cap);
	if (!buf) {
		hver_list_free(&l);
		return -ENOMEM;
	}
	size_t n = (size_t)snprintf(buf, cap, "[");
	for (size_t i = 0; i < l.n; i++) {
		const struct hver *h = &l.v[i];
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s\n {\"index\": %" PRIu64 ", \"time_ms\": %" PRId64
				      ", \"node\": %" PRIu64 ", \"uid\": %u, \"size\": %" PRIu64
				      ", \"deleted\": %s, \"ino\": %" PRIu64 "}",
				      i ? "," : "", h->idx, h->v.time_ns / 1000000, h->v.node,
				      h->v.writer_uid, h->v.size, h->v.deleted ? "true" : "false",
				      h->ino);
	}
	n += (size_t)snprintf(buf + n, cap - n, "%s]\n", l.n ? "\n" : "");
	hver_list_free(&l);
	*out = buf;
	*len = n;
	return 0;
}

/* The version named name (decimal index) of path, into *h. */
static int find_version(struct ofs *o, const char *path, const char *name, struct hver *h)
{
	char *end;
	errno = 0;
	unsigned long long idx = strtoull(name, &end, 10);
	if (!name[0] || *end || errno || name[0] < '1' || name[0] > '9')
		return -ENOENT;
	struct hver_list l;
	int rc = versions_of(o, path, &l);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].idx == idx) {
			*h = l.v[i];
			rc = 0;
		}
	hver_list_free(&l);
	return rc;
}

struct has_below {
	bool found;
};

static int stop_at_first(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)key, (void)key_len, (void)val, (void)val_len, (void)version;
	((struct has_below *)arg)->found = true;
	return 1;
}

/* Is path a directory of the view: live there, or something kept at or below it? */
static int is_view_dir(struct ofs *o, const char *path)
{
	uint64_t ino;
	uint8_t dt;
	int rc = resolve(o, path, &ino, &dt);
	if (rc != -ENOENT)
		return rc ? rc : 1;
	struct ofs_hkey k;
	struct has_below hb = {false};
	if (ofs_hkey_path_prefix(&k, path, strlen(path), true) == 0) {
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, stop_at_first, &hb);
		if (rc)
			return rc;
	}
	char *below = malloc(strlen(path) + 2);
	if (!below)
		return -ENOMEM;
	sprintf(below, "%s/", path);
	if (!hb.found && ofs_hkey_path_prefix(&k, below, strlen(below), false) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, stop_at_first, &hb);
	free(below);
	return rc ? rc : hb.found;
}

int ofs_hist_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out)
{
	struct hnode pn;
	int rc = hist_node(o, parent, &pn);
	if (rc)
		return rc;
	if (pn.kind != HN_DIR) {
		free(pn.path);
		return -ENOTDIR;
	}
	uint64_t vino;
	struct hver h;
	size_t nl = strlen(name);
	if (strcmp(name, OFS_HIST_VERSIONS_JSON) == 0 && pn.path[0]) {
		rc = hist_vino(o, HN_INDEX, pn.path, 0, 0, &vino);
		if (!rc)
			rc = ofs_hist_getattr(o, vino, out);
	} else if (pn.path[0] && find_version(o, pn.path, name, &h) == 0) {
		rc = hist_vino(o, HN_VERSION, pn.path, h.ino, h.idx, &vino);
		if (!rc)
			fill_version(out, vino, &h.v);
	} else if (nl == 0 || nl > OFS_NAME_MAX || strlen(pn.path) + 1 + nl > OFS_HIST_PATH_MAX) {
		rc = -ENOENT;
	} else {
		char *path = malloc(strlen(pn.path) + nl + 2);
		if (!path) {
			free(pn.path);
			return -ENOMEM;
		}
		sprintf(path, "%s/%s", pn.path, name);
		rc = is_view_dir(o, path);
		if (rc == 0)
			rc = -ENOENT;
		if (rc == 1)
			rc = hist_vino(o, HN_DIR, path, 0, 0, &vino);
		if (rc == 0)
			fill_dir(out, vino);
		free(path);
	}
	free(pn.path);
	return rc;
}

/* Reads a version's content into a malloc'd buffer of v->size bytes. */
struct data_read {
	uint8_t *buf;
	uint64_t size, ino, idx;
};

static int read_block(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	(void)version;
	struct data_read *d = arg;
	const uint8_t *k = key;
	if (key_len != 26)
		return 0;
	uint64_t blk = get_be64(k + 18), off = blk * OFS_BLOCK_SIZE;
	if (off >= d->size)
		return 0;
	size_t n = d->size - off < val_len ? (size_t)(d->size - off) : val_len;
	memcpy(d->buf + off, val, n);
	return 0;
}

static int render_version(struct ofs *o, const struct hnode *hn, char **out, size_t *len)
{
	struct ofs_hkey k;
	ofs_hkey_version(&k, hn->ino, hn->idx);
	void *val;
	size_t vl;
	int rc = ofs_kv_get(o, k.b, k.len, &val, &vl, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	struct ofs_hversion v;
	rc = ofs_hversion_decode(&v, val, vl);
	free(val);
	if (rc)
		return -EIO;
	if (v.size > VERSION_READ_MAX)
		return -EIO;
	struct data_read d = {calloc(1, v.size ? v.size : 1), v.size, hn->ino, hn->idx};
	if (!d.buf)
		return -ENOMEM;
	ofs_hkey_data_prefix(&k, hn->ino, hn->idx);
	rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, read_block, &d);
	if (rc) {
		free(d.buf);
		return rc;
	}
	*out = (char *)d.buf;
	*len = v.size;
	return 0;
}

int ofs_hist_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind == HN_DIR) {
		fill_dir(out, ino);
	} else if (hn.kind == HN_INDEX) {
		char *buf;
		size_t len;
		rc = render_index(o, hn.path, &buf, &len);
		if (!rc) {
			free(buf);
			fill_dir(out, ino);
			out->mode = S_IFREG | 0444;
			out->nlink = 1;
			out->size = len;
			out->parent = 0;
		}
	} else {
		struct ofs_hkey k;
		ofs_hkey_version(&k, hn.ino, hn.idx);
		void *val;
		size_t vl;
		struct ofs_hversion v;
		rc = ofs_kv_get(o, k.b, k.len, &val, &vl, NULL);
		if (rc == -ENOENT)
			rc = -ESTALE; /* trimmed */
		if (!rc) {
			rc = ofs_hversion_decode(&v, val, vl) ? -EIO : 0;
			free(val);
		}
		if (!rc)
			fill_version(out, ino, &v);
	}
	free(hn.path);
	return rc;
}

int ofs_hist_open(struct ofs *o, uint64_t ino, char **buf, size_t *len)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind == HN_DIR)
		rc = -EISDIR;
	else if (hn.kind == HN_INDEX)
		rc = render_index(o, hn.path, buf, len);
	else
		rc = render_version(o, &hn, buf, len);
	free(hn.path);
	return rc;
}

static bool list_has(const struct ofs_dirent_list *l, const char *name, size_t len)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->items[i].name) == len && memcmp(l->items[i].name, name, len) == 0)
			return true;
	return false;
}

struct dir_fill {
	struct ofs_dirent_list *l;
	const char *prefix; /* "<path>/" */
	size_t prefix_len;
};

static int add_live_name(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)val, (void)val_len, (void)version;
	struct dir_fill *f = arg;
	uint64_t parent;
	const char *name;
	size_t len;
	if (ofs_key_parse_dirent(key, key_len, &parent, &name, &len))
		return 0;
	return ofs_dirent_list_add(f->l, OFS_VINO_HISTORY, DT_DIR, name, len);
}

static int add_kept_name(void *arg, const void *key, size_t key_len, const void *val,
			 size_t val_len, uint64_t version)
{
	(void)val, (void)val_len, (void)version;
	struct dir_fill *f = arg;
	const char *p;
	size_t pl;
	uint64_t ino;
	if (ofs_hkey_parse_path(key, key_len, &p, &pl, &ino) || pl <= f->prefix_len)
		return 0;
	const char *name = p + f->prefix_len, *slash = memchr(name, '/', pl - f->prefix_len);
	size_t len = slash ? (size_t)(slash - name) : pl - f->prefix_len;
	if (len == 0 || len > OFS_NAME_MAX || list_has(f->l, name, len))
		return 0;
	return ofs_dirent_list_add(f->l, OFS_VINO_HISTORY, DT_DIR, name, len);
}

int ofs_hist_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out)
{
	struct hnode hn;
	int rc = hist_node(o, ino, &hn);
	if (rc)
		return rc;
	if (hn.kind != HN_DIR) {
		free(hn.path);
		return -ENOTDIR;
	}
	struct ofs_dirent_list *l = calloc(1, sizeof(*l));
	char *prefix = malloc(strlen(hn.path) + 2);
	if (!l || !prefix) {
		rc = -ENOMEM;
		goto fail;
	}
	sprintf(prefix, "%s/", hn.path);
	rc = ofs_dirent_list_add(l, ino, DT_DIR, ".", 1);
	if (!rc)
		rc = ofs_dirent_list_add(l, OFS_VINO_DIR, DT_DIR, "..", 2);
	/* the live directory's names */
	uint64_t live;
	uint8_t dt;
	int r = resolve(o, hn.path, &live, &dt);
	struct dir_fill f = {l, prefix, strlen(prefix)};
	if (!rc && r == 0 && dt == DT_DIR) {
		struct ofs_key k;
		ofs_key_dir_prefix(&k, live);
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, add_live_name, &f);
	} else if (!rc && r && r != -ENOENT) {
		rc = r;
	}
	/* names kept below it */
	struct ofs_hkey k;
	if (!rc && ofs_hkey_path_prefix(&k, prefix, strlen(prefix), false) == 0)
		rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, add_kept_name, &f);
	/* its versions */
	struct hver_list vl = {0};
	if (!rc && hn.path[0])
		rc = versions_of(o, hn.path, &vl);
	for (size_t i = 0; !rc && i < vl.n; i++) {
		char name[24];
		int n = snprintf(name, sizeof(name), "%" PRIu64, vl.v[i].idx);
		if (!list_has(l, name, (size_t)n))
			rc = ofs_dirent_list_add(l, OFS_VINO_HISTORY, DT_REG, name, (size_t)n);
	}
	if (!rc && vl.n)
		rc = ofs_dirent_list_add(l, OFS_VINO_HISTORY, DT_REG, OFS_HIST_VERSIONS_JSON,
					 strlen(OFS_HIST_VERSIONS_JSON));
	hver_list_free(&vl);
	/* Entries carry one placeholder inode (readdir's d_ino is advisory;
	 * lookup gives the real one): allocating a view inode per listed name
	 * would churn the table for nothing. */
	if (rc)
		goto fail;
	free(prefix);
	free(hn.path);
	*out = l;
	return 0;
fail:
	if (l)
		ofs_dirent_list_free(l);
	free(prefix);
	free(hn.path);
	return rc;
}
