/*
 * File history: every change to a file's content, and the loss of its last
 * name, keeps the previous version in the replicated state (keys in
 * ofs_history.h), within the [history] bounds; /.omnifs/history/<path>/
 * shows the versions as read-only files named by log index
 * (ofs_history_view.c).
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
 * Where a version's data are. A change of content (write, truncation,
 * O_TRUNC) rewrites the file's blocks under the same keys, so their old
 * bytes are copied to F v keys in the capturing transaction. A file that
 * loses its last name (unlink, rename over it) keeps its blocks untouched:
 * nothing can give it a name again, and its inode lives on only for handles
 * still open. So its version is kept in place: the record says so
 * (in_place), no byte is copied, and the blocks stay where they are until
 * the version goes. This is why a delete costs no more than a record:
 *   - the reaper frees such an inode's attributes and xattrs but leaves its
 *     blocks (ofs_history_holds_blocks, guarded by the version's record);
 *   - dropping the version (bounds, trimming) deletes the blocks once the
 *     inode is freed, guarded by the inode's absence (else it leaves them
 *     to the reaper, guarded by the inode's version): whichever of the two
 *     comes second is rebuilt on the other's result, so none leaks;
 *   - a write or truncation through a handle still open on the unlinked
 *     file would change the blocks under the version: that transaction
 *     first copies them to F v keys and clears in_place (keep_before_write),
 *     history on or off on that node, since the state is shared.
 * Moving the blocks under history keys instead would copy the bytes all the
 * same (RocksDB has no rename); referring to the live blocks from every
 * version would need block keys with a generation, a change of the schema,
 * for content changes whose copy costs a few percent.
 *
 * Cost: a content change of a file up to hist_max_file bytes (1 MiB by
 * default) carries a copy of its old blocks, so a transaction grows by at
 * most that much; a larger file keeps no versions (counted in
 * hist_skipped). A delete adds a record and a path key. A new file that
 * never had content keeps nothing; every content change writes one small
 * writer record. With history off only the writes to unlinked files are
 * looked at (above).
 */
#include "ofs_history.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "ofs_int.h"

#define MAX_CAPTURES 4	 /* files kept by one transaction, at most */
#define TRIM_BATCH   256 /* versions dropped per transaction */

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

static int add_hguard_version(struct kv_txn *t, const struct ofs_hkey *k, uint64_t version)
{
	int rc = kv_txn_add_guard_version(t, k->b, k->len, version);
	return rc == -EINVAL ? -EFBIG : rc;
}

struct capture {
	uint64_t ino;
	bool deleted;	     /* lost its last name */
	bool content_change; /* its blocks or size change */
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
				c[(*n)++] = (struct capture){ino, false, true};
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
			if (rc == 0 && oa.size != na.size)
				c[(*n)++] = (struct capture){ino, false, true};
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
				c[(*n)++] = (struct capture){child, true, false};
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

/* One kept version of a file, as found in the state. */
struct ver {
	uint64_t idx, size; /* size: its blocks to drop */
	uint64_t rec_ver;   /* the KV version of its record */
	struct ofs_hversion hv;
};

struct ver_list {
	struct ver *v; /* by idx */
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
		struct ver *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = (struct ver){idx, hv.size, version, hv};
	return 0;
}

/* ino's kept versions and writer record, into *l (free l->v). */
static int read_versions(struct ofs *o, uint64_t ino, struct ver_list *l)
{
	struct ofs_hkey k;
	memset(l, 0, sizeof(*l));
	ofs_hkey_versions_prefix(&k, ino);
	return ofs_kv_scan(o, k.b, k.len, NULL, 0, collect_versions, l);
}

/* The version of l kept in place, or NULL (a file has one at most: it loses
 * its last name once). */
static const struct ver *in_place_version(const struct ver_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].hv.in_place)
			return &l->v[i];
	return NULL;
}

struct block_copy {
	struct kv_txn *t;
	uint64_t ino, idx;
	uint64_t size; /* blocks from this offset on are not the version's */
};

static int copy_block(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		      uint64_t version)
{
	(void)version;
	struct block_copy *b = arg;
	uint64_t ino, blk;
	if (ofs_key_parse_block(key, key_len, &ino, &blk) || blk * OFS_BLOCK_SIZE >= b->size)
		return 0;
	struct ofs_hkey k;
	ofs_hkey_data(&k, b->ino, b->idx, blk);
	return add_hput(b->t, &k, val, val_len);
}

/* The blocks of a version kept in place, once its inode is freed: the
 * blocks the reaper left. With the inode's key (absent already), so that
 * the change reads as the end of that freeing, not as a write to a file
 * (ofs_txn_shape: the change feed and the kernel's replay skip it). */
static int drop_in_place_blocks(struct ofs *o, struct kv_txn *t, uint64_t ino, uint64_t size)
{
	struct ofs_key fk;
	struct ofs_attr a;
	uint64_t ver;
	ofs_key_inode(&fk, ino);
	int rc = ofs_read_attr(o, ino, &a, &ver);
	if (rc == 0) /* not freed yet: the reaper frees the blocks with it, as it
		      * finds no version holding them (guard: not freed meanwhile) */
		return ofs_add_guard_version(t, &fk, ver);
	if (rc != -ENOENT)
		return rc;
	rc = ofs_add_guard_absent(t, &fk);
	if (!rc)
		rc = ofs_add_delete(t, &fk);
	for (uint64_t b = 0; !rc && b * OFS_BLOCK_SIZE < size; b++) {
		ofs_key_block(&fk, ino, b);
		rc = ofs_add_delete(t, &fk);
	}
	return rc;
}

/*
 * Drops one version: its record and each of its blocks, key by key. Not a
 * DELETE_PREFIX: that is a RocksDB range tombstone, and every read of the
 * state pays for each one until compaction drops it; one per change of a
 * file would slow the whole filesystem. A version has at most
 * hist_max_file / OFS_BLOCK_SIZE blocks (16 by default).
 */
static int drop_version(struct ofs *o, struct kv_txn *t, uint64_t ino, uint64_t idx, uint64_t size,
			bool in_place)
{
	struct ofs_hkey k;
	ofs_hkey_version(&k, ino, idx);
	int rc = add_hdelete(t, &k);
	if (!rc && in_place)
		return drop_in_place_blocks(o, t, ino, size);
	for (uint64_t b = 0; !rc && b * OFS_BLOCK_SIZE < size; b++) {
		ofs_hkey_data(&k, ino, idx, b);
		rc = add_hdelete(t, &k);
	}
	return rc;
}

/* Drops the oldest of ino's versions so that keep remain (idx sorted). */
static int trim_file(struct ofs *o, struct kv_txn *t, uint64_t ino, const struct ver_list *l,
		     size_t keep)
{
	int rc = 0;
	for (size_t i = 0; !rc && i + keep < l->n; i++)
		rc = drop_version(o, t, ino, l->v[i].idx, l->v[i].size, l->v[i].hv.in_place);
	return rc;
}

/* Copies ino's blocks up to size to F v keys of its version idx. */
static int copy_blocks(struct ofs *o, struct kv_txn *t, uint64_t ino, uint64_t idx, uint64_t size)
{
	struct block_copy b = {t, ino, idx, size};
	struct ofs_key fk;
	ofs_key_block_prefix(&fk, ino);
	return ofs_kv_scan(o, fk.b, fk.len, NULL, 0, copy_block, &b);
}

/*
 * t changes the blocks or size of ino, which has no name left (a handle
 * open on it writes): if a version of ino is kept in place, its blocks are
 * about to change, so they are copied to F v keys first and the record says
 * so, guarded by the inode's version (the blocks are the state at it) and
 * the record's (not trimmed meanwhile). A copy too large for t drops the
 * version instead: the reaper then frees the blocks.
 */
static int keep_before_write(struct ofs *o, struct kv_txn *t, uint64_t ino)
{
	struct ofs_attr a;
	uint64_t ver;
	int rc = ofs_read_attr(o, ino, &a, &ver);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	struct ver_list l;
	rc = read_versions(o, ino, &l);
	const struct ver *v = rc ? NULL : in_place_version(&l);
	if (!v)
		goto out;
	struct ofs_hkey k;
	struct ofs_key fk;
	ofs_hkey_version(&k, ino, v->idx);
	rc = add_hguard_version(t, &k, v->rec_ver);
	if (!rc) {
		ofs_key_inode(&fk, ino);
		rc = ofs_add_guard_version(t, &fk, ver);
	}
	if (rc)
		goto out;
	if (t->enc_len + v->size + 65536 > KV_MAX_TXN_LEN / 2) {
		ofs_count(o, &o->hist_skipped, 1);
		rc = add_hdelete(t, &k);
		goto out;
	}
	struct ofs_hversion hv = v->hv;
	hv.in_place = false;
	uint8_t val[OFS_HVERSION_LEN];
	ofs_hversion_encode(&hv, val);
	rc = add_hput(t, &k, val, sizeof(val));
	if (!rc)
		rc = copy_blocks(o, t, ino, v->idx, v->size);
out:
	free(l.v);
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
	if (a.nlink == 0) /* no name left: kept when it lost it, nobody reaches it now */
		return c->content_change ? keep_before_write(o, t, c->ino) : 0;
	/* Kept in place: only a file that loses its last name and whose
	 * blocks t leaves alone (see the top). */
	bool in_place = c->deleted && !c->content_change;
	struct ver_list l;
	rc = read_versions(o, c->ino, &l);
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
	if (a.size > o->cfg.hist_max_file ||
	    (!in_place && t->enc_len + a.size + 65536 > KV_MAX_TXN_LEN / 2)) {
		ofs_count(o, &o->hist_skipped, 1);
		goto out;
	}
	if (!c->deleted && a.size == 0)
		goto out; /* nothing to keep: a new file, or the truncation of a
			   * shell's `>` (an empty step between two versions) */
	bool known = false;
	for (size_t i = 0; i < l.n; i++)
		known |= l.v[i].idx == ver;
	if (known)
		goto out; /* kept already (a commit retried after its apply) */
	rc = trim_file(o, t, c->ino, &l, o->cfg.hist_versions ? o->cfg.hist_versions - 1 : 0);
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
		.in_place = in_place,
	};
	uint8_t v[OFS_HVERSION_LEN];
	ofs_hversion_encode(&hv, v);
	ofs_hkey_version(&k, c->ino, ver);
	rc = add_hput(t, &k, v, sizeof(v));
	if (rc)
		goto out;
	if (!in_place)
		rc = copy_blocks(o, t, c->ino, ver, a.size);
	if (rc)
		goto out;
	/* The copy (or the blocks left in place) is the state at ver exactly:
	 * a change meanwhile fails. */
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
	free(l.v);
	return rc;
}

/*
 * History off on this node: only what keeps other nodes' versions intact,
 * the writes to unlinked files (keep_before_write). Such a write puts the
 * inode's attributes with no link left, so nothing else is read.
 */
static int capture_off(struct ofs *o, struct kv_txn *t)
{
	uint64_t done[MAX_CAPTURES];
	size_t n = 0;
	for (uint32_t i = 0; i < t->n_ops && n < MAX_CAPTURES; i++) {
		const struct kv_op *op = &t->ops[i];
		struct ofs_attr na;
		uint64_t ino;
		if (op->type != KV_OP_PUT || ofs_key_kind(op->key, op->key_len) != OFS_K_INODE ||
		    ofs_key_parse_ino(op->key, op->key_len, &ino) ||
		    ofs_attr_decode(&na, ino, op->value, op->value_len) || na.nlink != 0 ||
		    !S_ISREG(na.mode))
			continue;
		bool seen = false;
		for (size_t j = 0; j < n; j++)
			seen |= done[j] == ino;
		if (seen)
			continue;
		done[n++] = ino;
		int rc = keep_before_write(o, t, ino);
		if (rc)
			return rc;
	}
	return 0;
}

int ofs_history_holds_blocks(struct ofs *o, struct kv_txn *t, uint64_t ino)
{
	struct ver_list l;
	int rc = read_versions(o, ino, &l);
	const struct ver *v = rc ? NULL : in_place_version(&l);
	if (v) {
		/* dropped meanwhile: this freeing is rebuilt and takes the blocks */
		struct ofs_hkey k;
		ofs_hkey_version(&k, ino, v->idx);
		rc = add_hguard_version(t, &k, v->rec_ver);
		rc = rc ? rc : 1;
	}
	free(l.v);
	return rc;
}

int ofs_history_capture(struct ofs *o, struct kv_txn *t)
{
	if (t->n_ops == 0)
		return 0;
	if (!o->cfg.hist_enabled)
		return capture_off(o, t);
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
	bool in_place;
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
	l->v[l->n++] = (struct kept){ino, idx, hv.size, version, hv.kept_ns, hv.in_place};
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
	struct trim_batch *b = arg;
	int rc = 0;
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = drop_version(o, t, b->v[i].ino, b->v[i].idx, b->v[i].size, b->v[i].in_place);
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
