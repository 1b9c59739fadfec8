/*
 * File data: open, create, read, buffered write, and the commit of buffered
 * writes at flush/fsync/release.
 *
 * Writes are buffered per inode on this node (every handle of the file on
 * the node shares the buffer, so a second reader here sees them at once) in
 * 64 KiB blocks, each remembering the byte range [lo, hi) that is newer than
 * the KV. A commit reads each touched block from the KV, lays the new
 * bytes over it, and puts the blocks, the new size and mtime in ONE
 * transaction guarded by the inode's version: a concurrent change from
 * another node fails the guard and the commit is redone on top of it. So a
 * file written and closed appears whole on other nodes at close, and writing
 * 4 KiB into a big file replicates one block. O_TRUNC is lazy: open marks the
 * buffer "truncated" and the commit drops the old blocks in the same
 * transaction that writes the new ones. A buffer larger than write_buffer is
 * committed early (other nodes then see a partial file until close). A
 * file created without O_EXCL has its name, inode and first data committed
 * by that same transaction (ofs_pending.c), and so are the times, owner and
 * mode the file's writer set meanwhile (ofs_fold.c). A read of a file with nothing
 * buffered on this node takes the stored blocks from one view of the state,
 * in one pass in key order.
 *
 * Open-but-unlinked files: a regular file left without links keeps its
 * inode and data under an orphan mark of the node that unlinked it; that
 * node's reaper frees it once no handle is open on it there, its kernel has
 * forgotten it, and a grace period (2 s) has passed, so handles open on
 * other nodes (which that node cannot see) keep reading it for at least that
 * long; later their reads fail with ESTALE, as on NFS. See ofs_reap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "log.h"
#include "ofs_int.h"

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/*
 * Opening for writing fails at once on a node that knows it has no quorum,
 * and waits while it cannot tell yet. The backend may say either itself
 * (can_write: -EROFS, or -EAGAIN while in doubt); otherwise, once a commit
 * has come back -EROFS, each open for writing is in doubt. In doubt, the
 * open probes with an empty transaction, which waits until it is decided or
 * the replica knows it is cut off (then -EROFS), and clears the mark when it
 * goes through. With a quorum, opens cost no round.
 *
 * Why wait: creates and O_TRUNC commit at the close, and many programs never
 * look at close's result (the shell's `echo x > f` cannot: its dup2 closes
 * the file). An open that succeeded on a node about to learn it is cut off
 * would lose such a write without a word; failing the open says it.
 */
int ofs_can_write(struct ofs *o)
{
	if (o->b.can_write) {
		int rc = o->b.can_write(o->b.ctx);
		if (rc != -EAGAIN)
			return rc;
	} else if (!__atomic_load_n(&o->erofs_seen, __ATOMIC_RELAXED)) {
		return 0;
	}
	struct kv_txn t;
	kv_txn_init(&t, 0, 0);
	int rc = ofs_commit_errno(ofs_commit(o, &t));
	kv_txn_free(&t);
	if (rc == 0)
		__atomic_store_n(&o->erofs_seen, false, __ATOMIC_RELAXED);
	return rc == -EAGAIN ? 0 : rc;
}

static struct dblock *find_block(struct onode *n, uint64_t no)
{
	for (size_t i = n->nblk; i-- > 0;)
		if (n->blk[i]->no == no)
			return n->blk[i];
	return NULL;
}

/* Forgets the buffered data (not a pending create). n->mu held. */
static void drop_data(struct onode *n)
{
	for (size_t i = 0; i < n->nblk; i++)
		free(n->blk[i]);
	n->nblk = 0;
	n->trunc = false;
	n->trunc_owner = NULL;
	n->wend = 0;
}

/* Forgets everything n has not committed: data and create. n->mu and
 * ofs.lock held. */
static void drop_buffer(struct ofs *o, struct onode *n)
{
	drop_data(n);
	ofs_pending_drop_locked(o, n);
	ofs_fold_drop(n);
	n->dirty = false;
}

/* The stored bytes of block no (zeros past what is stored). */
static int load_block(struct ofs *o, uint64_t ino, uint64_t no, uint8_t *out)
{
	struct ofs_key k;
	void *val;
	size_t len;
	uint64_t ver;
	ofs_key_block(&k, ino, no);
	int rc = ofs_kv_get(o, k.b, k.len, &val, &len, &ver);
	if (rc == -ENOENT) {
		memset(out, 0, OFS_BLOCK_SIZE);
		return 0;
	}
	if (rc)
		return -EIO;
	if (len > OFS_BLOCK_SIZE)
		len = OFS_BLOCK_SIZE;
	memcpy(out, val, len);
	memset(out + len, 0, OFS_BLOCK_SIZE - len);
	free(val);
	return 0;
}

/* The block as this node sees it: the KV (unless truncated) under the
 * buffered bytes. */
static int view_block(struct ofs *o, struct onode *n, uint64_t no, uint8_t *out)
{
	struct dblock *b = find_block(n, no);
	if (n->trunc)
		memset(out, 0, OFS_BLOCK_SIZE);
	else if (!b || b->lo > 0 || b->hi < OFS_BLOCK_SIZE) {
		int rc = load_block(o, n->ino, no, out);
		if (rc)
			return rc;
	}
	if (b)
		memcpy(out + b->lo, b->data + b->lo, b->hi - b->lo);
	return 0;
}

static uint64_t view_size(const struct onode *n, uint64_t stored)
{
	uint64_t base = n->trunc ? 0 : stored;
	return n->wend > base ? n->wend : base;
}

void ofs_overlay_locked(const struct onode *n, struct ofs_attr *a)
{
	if (!n->dirty)
		return;
	a->size = view_size(n, a->size);
	ofs_fold_view(n, a);
}

void ofs_overlay_attr(struct ofs *o, struct ofs_attr *a)
{
	if (!S_ISREG(a->mode))
		return;
	struct onode *n = ofs_onode_get(o, a->ino, false);
	if (!n)
		return;
	pthread_mutex_lock(&n->mu);
	ofs_overlay_locked(n, a);
	pthread_mutex_unlock(&n->mu);
	ofs_onode_put(o, n);
}

struct commit_arg {
	struct onode *n;
	uint8_t *scratch; /* one block */
};

static int build_commit(struct ofs *o, struct kv_txn *t, void *arg)
{
	struct commit_arg *c = arg;
	struct onode *n = c->n;
	struct ofs_attr a;
	uint64_t ver = 0;
	struct ofs_key k;
	int rc = 0;
	if (n->pend) /* a create committed with its data (ofs_pending.c) */
		ofs_pending_attr(n, &a);
	else
		rc = ofs_read_attr(o, n->ino, &a, &ver);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	uint64_t size = view_size(n, a.size);
	if (size > o->cfg.max_file_size)
		return -EFBIG;
	if (n->trunc) {
		ofs_key_block_prefix(&k, n->ino);
		rc = ofs_add_delete_prefix(t, &k);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n->nblk; i++) {
		struct dblock *b = n->blk[i];
		uint64_t start = b->no * OFS_BLOCK_SIZE;
		if (start >= size)
			continue;
		uint64_t len = size - start < OFS_BLOCK_SIZE ? size - start : OFS_BLOCK_SIZE;
		const uint8_t *bytes = b->data;
		if (b->lo > 0 || b->hi < len) {
			/* Partly written: the stored bytes under the new ones. */
			rc = view_block(o, n, b->no, c->scratch);
			if (rc)
				return rc;
			bytes = c->scratch;
		}
		ofs_key_block(&k, n->ino, b->no);
		rc = ofs_add_put(t, &k, bytes, len);
		if (rc)
			return rc;
	}
	if (size < a.size && !n->trunc)
		log_err("fs: inode %llu: buffered size below the stored one",
			(unsigned long long)n->ino);
	int64_t dbytes = (int64_t)size - (int64_t)a.size;
	int64_t now = ofs_now_ns();
	if (n->pend) {
		rc = ofs_pending_build(o, t, n, dbytes, now); /* guards the inode absent */
	} else {
		ofs_key_inode(&k, n->ino);
		rc = ofs_add_guard_version(t, &k, ver);
		if (rc == 0 && dbytes)
			rc = ofs_noderec_update(o, t, dbytes, 0, NULL);
	}
	if (rc)
		return rc;
	/* A commit of folded setattrs alone (an empty file tar made) changes
	 * no data: its mtime stays, as a direct chmod's would. */
	if (n->pend || n->trunc || n->nblk || size != a.size)
		a.mtime_ns = now;
	a.size = size;
	a.ctime_ns = now;
	a.change++;
	rc = ofs_fold_apply(n, &a, now); /* setattrs that waited for this commit */
	if (rc)
		return rc;
	return ofs_put_attr(t, &a);
}

/* Commits n's buffer. Called with n->mu held. */
static int commit_locked(struct ofs *o, struct onode *n)
{
	if (!n->dirty)
		return 0;
	struct commit_arg c = {n, malloc(OFS_BLOCK_SIZE)};
	if (!c.scratch)
		return -ENOMEM;
	int rc = ofs_run_txn(o, build_commit, &c);
	free(c.scratch);
	if (rc == 0 || rc == -ESTALE) {
		/* ESTALE: the file is gone everywhere; its buffer has nowhere to go */
		pthread_mutex_lock(&o->lock);
		drop_buffer(o, n);
		pthread_mutex_unlock(&o->lock);
	}
	return rc;
}

int ofs_flush_ino(struct ofs *o, uint64_t ino)
{
	struct onode *n = ofs_onode_get(o, ino, false);
	if (!n)
		return 0;
	pthread_mutex_lock(&n->mu);
	int rc = commit_locked(o, n);
	pthread_mutex_unlock(&n->mu);
	ofs_onode_put(o, n);
	return rc;
}

void ofs_flush_all(struct ofs *o)
{
	for (size_t s = 0; s < OFS_TABLE_SIZE; s++) {
		for (;;) {
			uint64_t ino = 0;
			pthread_mutex_lock(&o->lock);
			for (struct onode *n = o->table[s]; n; n = n->next)
				if (n->dirty) {
					ino = n->ino;
					break;
				}
			pthread_mutex_unlock(&o->lock);
			if (!ino)
				break;
			int rc = ofs_flush_ino(o, ino);
			if (rc) {
				log_err("fs: inode %llu: buffered writes lost at unmount: %s",
					(unsigned long long)ino, strerror(-rc));
				struct onode *n = ofs_onode_get(o, ino, false);
				if (n) {
					pthread_mutex_lock(&n->mu);
					pthread_mutex_lock(&o->lock);
					drop_buffer(o, n);
					pthread_mutex_unlock(&o->lock);
					pthread_mutex_unlock(&n->mu);
					ofs_onode_put(o, n);
				}
			}
		}
	}
}

int ofs_open_node(struct ofs *o, uint64_t ino, int flags, struct ofs_file **out)
{
	struct ofs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	struct onode *n = ofs_onode_get(o, ino, true);
	if (!n) {
		free(f);
		return -ENOMEM;
	}
	pthread_mutex_lock(&o->lock);
	n->nopen++;
	n->ref--; /* the open count holds it from now on */
	pthread_mutex_unlock(&o->lock);
	if ((flags & O_TRUNC) && wants_write(flags)) {
		pthread_mutex_lock(&n->mu);
		pthread_mutex_lock(&o->lock);
		drop_data(n);
		if (!n->pend) { /* a pending create has nothing stored to drop */
			n->trunc = true;
			n->trunc_owner = f;
		}
		n->dirty = true;
		pthread_mutex_unlock(&o->lock);
		pthread_mutex_unlock(&n->mu);
	}
	f->n = n;
	f->ino = ino;
	f->flags = flags;
	f->dirtied = (flags & O_TRUNC) && wants_write(flags);
	ofs_file_track(o, f);
	*out = f;
	return 0;
}

/* Marks f as opened by cr's thread: that thread's setattrs of the file may
 * fold into its commit (ofs_fold.c). f is tracked already, so under lock. */
static void set_opener(struct ofs *o, struct ofs_file *f, const struct ofs_cred *cr)
{
	pthread_mutex_lock(&o->lock);
	f->pid = cr->pid;
	pthread_mutex_unlock(&o->lock);
}

static int open_file(struct ofs *o, uint64_t ino, int flags, const struct ofs_cred *cr,
		     struct ofs_file **f)
{
	if (ofs_ino_is_virtual(ino))
		return ofs_virt_open(o, ino, flags, f);
	struct ofs_attr a;
	int rc = ofs_attr_any(o, ino, &a, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc; /* see ofs_op_getattr */
	if (S_ISDIR(a.mode))
		return -EISDIR;
	if (!S_ISREG(a.mode))
		return -EINVAL; /* the kernel opens devices and fifos itself */
	if (wants_write(flags)) {
		/* The kernel checked its cached mode; this is the applied one. A
		 * handle open for writing may write until it is closed, as POSIX
		 * has it, so the commits of its writes check nothing more. */
		rc = ofs_perm(cr, &a, OFS_MAY_WRITE);
		if (rc)
			return rc;
		rc = ofs_can_write(o);
		if (rc)
			return rc;
	}
	return ofs_open_node(o, ino, flags, f);
}

int ofs_op_open(struct ofs *o, uint64_t ino, int flags, const struct ofs_cred *cr,
		struct ofs_file **f)
{
	int rc = open_file(o, ino, flags, cr, f);
	if (rc == 0 && (*f)->n)
		set_opener(o, *f, cr);
	return rc;
}

/*
 * O_EXCL commits the new name at once (one winner across the cluster, told
 * at open). Without it, an existing name is opened (another node may have
 * made it since the kernel looked), and a new one is made on this node only
 * and committed with the file's data (ofs_pending.c).
 */
static int create_file(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, int flags,
		       const struct ofs_cred *cr, struct ofs_attr *out, struct ofs_file **f)
{
	size_t len = strlen(name);
	int rc;
	if (len > OFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (flags & O_EXCL) {
		if (ofs_pending_by_name(o, parent, name, len, out) == 0)
			return -EEXIST;
		rc = ofs_op_mknod(o, parent, name, S_IFREG | (mode & 07777), 0, cr, out);
		if (rc)
			return rc;
		rc = ofs_open_node(o, out->ino, flags & ~O_TRUNC, f);
		if (rc == 0) {
			pthread_mutex_lock(&(*f)->n->mu);
			(*f)->made = true;
			pthread_mutex_unlock(&(*f)->n->mu);
		}
		return rc;
	}
	if (!ofs_name_is_valid(name, len))
		return -EINVAL;
	if (parent == OFS_ROOT_INO && strcmp(name, OFS_VDIR_NAME) == 0)
		return -EISDIR;
	if (ofs_ino_is_virtual(parent))
		return -EROFS;
	for (uint32_t attempt = 0; attempt <= o->cfg.retries; attempt++) {
		uint64_t child;
		if (ofs_pending_by_name(o, parent, name, len, out) == 0) {
			rc = wants_write(flags) ? ofs_perm(cr, out, OFS_MAY_WRITE) : 0;
			if (rc == 0)
				rc = ofs_open_node(o, out->ino, flags, f);
		} else if ((rc = ofs_read_dirent(o, parent, name, len, &child, NULL, NULL)) == 0) {
			rc = ofs_read_attr(o, child, out, NULL);
			if (rc == 0 && S_ISDIR(out->mode))
				return -EISDIR;
			if (rc == 0 && !S_ISREG(out->mode))
				return -EEXIST;
			if (rc == 0)
				rc = ofs_op_open(o, child, flags, cr, f);
			if (rc == -ENOENT || rc == -ESTALE)
				rc = -EAGAIN; /* removed meanwhile: look again */
		} else if (rc == -ENOENT) {
			rc = ofs_pending_create(o, parent, name, mode, flags, cr, out, f);
		}
		if (rc != -EAGAIN) {
			if (rc == 0)
				ofs_overlay_attr(o, out);
			return rc;
		}
	}
	return -EAGAIN;
}

int ofs_op_create(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, int flags,
		  const struct ofs_cred *cr, struct ofs_attr *out, struct ofs_file **f)
{
	int rc = create_file(o, parent, name, mode, flags, cr, out, f);
	if (rc == 0)
		set_opener(o, *f, cr);
	return rc;
}

struct read_range {
	uint8_t *buf;
	uint64_t off, end; /* the file's bytes [off, end) go to buf */
	uint64_t filled;   /* buf holds the bytes [off, filled) */
};

/* Zeros the range's bytes from where it is filled up to the file's offset
 * to: each byte of buf is written once, zero or stored, not zeroed first
 * and then overwritten (a cold read spent 7% of its CPU zeroing). */
static void fill_zeros(struct read_range *r, uint64_t to)
{
	if (to > r->end)
		to = r->end;
	if (to > r->filled) {
		memset(r->buf + (r->filled - r->off), 0, to - r->filled);
		r->filled = to;
	}
}

/* Copies the part of one stored block that falls in the range, zeros
 * before it; stops the scan (1) at the block that reaches the range's end,
 * so the scan reads no block past it. */
static int copy_stored_block(void *arg, const void *key, size_t key_len, const void *val,
			     size_t val_len, uint64_t version)
{
	struct read_range *r = arg;
	uint64_t ino, no;
	if (ofs_key_parse_block(key, key_len, &ino, &no) || no >= UINT64_MAX / OFS_BLOCK_SIZE)
		return -EIO;
	uint64_t start = no * OFS_BLOCK_SIZE;
	if (start >= r->end)
		return 1;
	if (val_len > OFS_BLOCK_SIZE)
		val_len = OFS_BLOCK_SIZE;
	uint64_t lo = start > r->off ? start : r->off;
	uint64_t hi = start + val_len < r->end ? start + val_len : r->end;
	fill_zeros(r, lo);
	if (lo < hi) {
		memcpy(r->buf + (lo - r->off), (const uint8_t *)val + (lo - start), hi - lo);
		r->filled = hi;
	}
	return start + OFS_BLOCK_SIZE >= r->end ? 1 : 0;
}

/*
 * The stored bytes [off, off + size) of ino (zeros where no block is
 * stored, or a block is shorter) through one view of the state: one
 * snapshot and one pass over the file's blocks in key order, which is
 * their order in RocksDB's files, rather than a view and a lookup (and two
 * copies) per block.
 */
static int read_stored(struct ofs *o, uint64_t ino, uint8_t *buf, size_t size, uint64_t off)
{
	struct ofs_key prefix, before = {0};
	struct read_range r = {buf, off, off + size, off};
	uint64_t first = off / OFS_BLOCK_SIZE;
	ofs_key_block_prefix(&prefix, ino);
	/* The scan starts strictly after a key: the block before the first. */
	if (first)
		ofs_key_block(&before, ino, first - 1);
	int rc = ofs_kv_scan(o, prefix.b, prefix.len, before.b, first ? before.len : 0,
			     copy_stored_block, &r);
	fill_zeros(&r, r.end); /* past the last block stored, or past a short one */
	return rc;
}

ssize_t ofs_op_read(struct ofs *o, struct ofs_file *f, void *buf, size_t size, uint64_t off)
{
	if (f->vbuf || (!f->n && ofs_ino_is_virtual(f->ino))) {
		if (off >= f->vlen)
			return 0;
		size_t n = f->vlen - off < size ? f->vlen - off : size;
		memcpy(buf, f->vbuf + off, n);
		return (ssize_t)n;
	}
	struct onode *n = f->n;
	struct ofs_attr a;
	int rc = ofs_attr_any(o, f->ino, &a, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	pthread_mutex_lock(&n->mu);
	uint64_t fsize = n->dirty ? view_size(n, a.size) : a.size;
	size_t done = 0;
	if (off < fsize && !n->dirty) {
		/* Nothing buffered on this node: the stored bytes alone. */
		if (size > fsize - off)
			size = (size_t)(fsize - off);
		rc = read_stored(o, f->ino, buf, size, off);
		pthread_mutex_unlock(&n->mu);
		return rc ? rc : (ssize_t)size;
	}
	uint8_t *blk = malloc(OFS_BLOCK_SIZE);
	if (!blk) {
		pthread_mutex_unlock(&n->mu);
		return -ENOMEM;
	}
	if (off < fsize) {
		if (size > fsize - off)
			size = (size_t)(fsize - off);
		while (done < size) {
			uint64_t pos = off + done;
			uint64_t no = pos / OFS_BLOCK_SIZE;
			size_t in = (size_t)(pos % OFS_BLOCK_SIZE);
			size_t chunk = OFS_BLOCK_SIZE - in;
			if (chunk > size - done)
				chunk = size - done;
			rc = view_block(o, n, no, blk);
			if (rc)
				break;
			memcpy((uint8_t *)buf + done, blk + in, chunk);
			done += chunk;
		}
	}
	pthread_mutex_unlock(&n->mu);
	free(blk);
	return rc ? rc : (ssize_t)done;
}

static size_t dirty_bytes(const struct onode *n)
{
	return n->nblk * (size_t)OFS_BLOCK_SIZE;
}

/* Writes [s, e) of block no from src into the buffer. */
static int buffer_write(struct ofs *o, struct onode *n, uint64_t no, uint32_t s, uint32_t e,
			const uint8_t *src)
{
	struct dblock *b = find_block(n, no);
	if (!b) {
		if (n->nblk == n->capblk) {
			size_t cap = n->capblk ? n->capblk * 2 : 16;
			struct dblock **p = realloc(n->blk, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			n->blk = p;
			n->capblk = cap;
		}
		b = malloc(sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->no = no;
		b->lo = s;
		b->hi = e;
		n->blk[n->nblk++] = b;
	} else if (e < b->lo || s > b->hi) {
		/* Disjoint from the buffered range: fill the gap with what is
		 * stored now, so one range per block stays exact. */
		uint8_t *tmp = malloc(OFS_BLOCK_SIZE);
		if (!tmp)
			return -ENOMEM;
		int rc = 0;
		if (n->trunc)
			memset(tmp, 0, OFS_BLOCK_SIZE);
		else
			rc = load_block(o, n->ino, no, tmp);
		if (rc) {
			free(tmp);
			return rc;
		}
		uint32_t glo = e < b->lo ? e : b->hi, ghi = e < b->lo ? b->lo : s;
		memcpy(b->data + glo, tmp + glo, ghi - glo);
		free(tmp);
		b->lo = s < b->lo ? s : b->lo;
		b->hi = e > b->hi ? e : b->hi;
	} else {
		b->lo = s < b->lo ? s : b->lo;
		b->hi = e > b->hi ? e : b->hi;
	}
	memcpy(b->data + s, src, e - s);
	return 0;
}

ssize_t ofs_op_write(struct ofs *o, struct ofs_file *f, const void *buf, size_t size, uint64_t off)
{
	if (!f->n)
		return -EBADF;
	if (size == 0)
		return 0;
	if (off >= o->cfg.max_file_size || size > o->cfg.max_file_size - off)
		return -EFBIG;
	struct onode *n = f->n;
	struct ofs_attr a;
	int rc = ofs_attr_any(o, f->ino, &a, NULL);
	if (rc)
		return rc == -ENOENT ? -ESTALE : rc;
	pthread_mutex_lock(&n->mu);
	uint64_t end = off + size;
	uint64_t cur = view_size(n, a.size);
	if (end > cur) {
		/* Fail early on a full filesystem rather than at close: usage with
		 * this file at its new size instead of its stored one. */
		int64_t ub, ui;
		rc = ofs_usage(o, &ub, &ui);
		if (rc == 0 &&
		    (uint64_t)ub - (a.size < (uint64_t)ub ? a.size : (uint64_t)ub) + end >
			    o->cfg.max_total_size)
			rc = -ENOSPC;
		if (rc)
			goto out_unlock;
	}
	size_t done = 0;
	while (done < size) {
		uint64_t pos = off + done;
		uint64_t no = pos / OFS_BLOCK_SIZE;
		uint32_t s = (uint32_t)(pos % OFS_BLOCK_SIZE);
		size_t chunk = OFS_BLOCK_SIZE - s;
		if (chunk > size - done)
			chunk = size - done;
		rc = buffer_write(o, n, no, s, s + (uint32_t)chunk, (const uint8_t *)buf + done);
		if (rc)
			goto out_unlock;
		done += chunk;
	}
	f->dirtied = true;
	f->wrote = true;
	f->made = false;
	ofs_fold_note_write(n);
	pthread_mutex_lock(&o->lock);
	n->dirty = true;
	if (end > n->wend)
		n->wend = end;
	pthread_mutex_unlock(&o->lock);
	if (dirty_bytes(n) >= o->cfg.write_buffer)
		rc = commit_locked(o, n);
out_unlock:
	pthread_mutex_unlock(&n->mu);
	return rc ? rc : (ssize_t)size;
}

/* Commits the buffer of f's file if f wrote to it: a reader's close must
 * not publish another handle's half-written file. The last release commits
 * whatever is left, and fsync commits regardless (ofs_flush_ino). */
/*
 * Whether a flush or release of handle f may commit n's buffer now. A pending
 * O_TRUNC belongs to the handle that opened with it: until that handle
 * writes and closes, no other handle's close (a reader's, or a late RELEASE
 * of the previous writer, which the kernel sends asynchronously) may publish
 * the truncated file. Called with n->mu held.
 */
static bool may_commit(const struct onode *n, const struct ofs_file *f)
{
	return !(n->trunc && n->trunc_owner && n->trunc_owner != f);
}

int ofs_op_flush(struct ofs *o, struct ofs_file *f)
{
	return ofs_op_flush_by(o, f, 0);
}

int ofs_op_flush_by(struct ofs *o, struct ofs_file *f, int pid)
{
	if (!f->n || !f->dirtied)
		return 0;
	/* Created or truncated and not written: the process may be closing a
	 * descriptor it dup'ed (`echo x > f`), see ofs_pending.c. */
	if (!f->wrote && ofs_proc_has_open(pid, o->mount_real, f->ino, f->flags))
		return 0;
	pthread_mutex_lock(&f->n->mu);
	if (!may_commit(f->n, f)) {
		pthread_mutex_unlock(&f->n->mu);
		return 0;
	}
	int rc = commit_locked(o, f->n);
	/* This handle's changes are out. Its RELEASE comes later, asynchronously,
	 * possibly after the same file was opened again with O_TRUNC: it must not
	 * commit that new handle's truncation on its own (other nodes would see
	 * an empty file until the new handle's close). */
	if (rc == 0)
		f->dirtied = false;
	pthread_mutex_unlock(&f->n->mu);
	return rc;
}

void ofs_file_track(struct ofs *o, struct ofs_file *f)
{
	pthread_mutex_lock(&o->lock);
	f->prev = NULL;
	f->next = o->files;
	if (o->files)
		o->files->prev = f;
	o->files = f;
	pthread_mutex_unlock(&o->lock);
}

static void file_untrack(struct ofs *o, struct ofs_file *f)
{
	pthread_mutex_lock(&o->lock);
	if (f->prev)
		f->prev->next = f->next;
	else if (o->files == f)
		o->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	pthread_mutex_unlock(&o->lock);
}

int ofs_op_release(struct ofs *o, struct ofs_file *f)
{
	int rc = 0;
	struct onode *n = f->n;
	file_untrack(o, f);
	if (n) {
		/* Decide under n->mu: an open with O_TRUNC that races with this
		 * release marks the buffer under n->mu too, so either it counts in
		 * nopen here (and this is not the last handle) or its truncation
		 * comes after this commit, never inside it. */
		pthread_mutex_lock(&n->mu);
		pthread_mutex_lock(&o->lock);
		bool only = n->nopen == 1;
		pthread_mutex_unlock(&o->lock);
		if ((only || f->dirtied) && may_commit(n, f))
			rc = commit_locked(o, n);
		if (n->trunc_owner == f)
			n->trunc_owner = NULL; /* the owner is gone: the next close commits */
		pthread_mutex_lock(&o->lock);
		n->nopen--;
		if (n->nopen == 0 && rc) /* a failed final commit: nothing will retry it */
			drop_buffer(o, n);
		n->ref++;
		pthread_mutex_unlock(&o->lock);
		pthread_mutex_unlock(&n->mu);
		ofs_onode_put(o, n);
	}
	free(f->vbuf);
	ofs_dirent_list_free(f->dir);
	free(f);
	return rc;
}

int ofs_op_fallocate(struct ofs *o, struct ofs_file *f, int mode, uint64_t off, uint64_t len)
{
	if (mode != 0)
		return -EOPNOTSUPP;
	if (!f->n)
		return -EBADF;
	if (off + len > o->cfg.max_file_size || off + len < off)
		return -EFBIG;
	struct ofs_attr a;
	int rc = ofs_op_getattr(o, f->ino, &a);
	if (rc)
		return rc;
	if (off + len <= a.size)
		return 0;
	/* Blocks are allocated on write; growing the size is all mode 0 owes.
	 * The kernel lets only a handle open for writing fallocate, and a size
	 * change through such a handle needs no other right: any caller would
	 * pass, so none is asked for. */
	static const struct ofs_cred any_caller = {0, 0, NULL, 0, 0};
	struct ofs_setattr sa = {.mask = OFS_SET_SIZE | OFS_SET_HANDLE, .size = off + len};
	return ofs_op_setattr(o, f->ino, &sa, &any_caller, &a);
}
