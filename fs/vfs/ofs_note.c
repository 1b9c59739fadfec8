/*
 * The change note of each transaction the filesystem commits (kv.h): what
 * changed, in paths, so the feed (omnifsctl watch) can say it on every
 * node. It is made here, on the proposing node, because only here are the
 * paths known: the state's keys are inode numbers, and a file has no
 * pointer to its name.
 *
 * ofs_commit calls ofs_note_attach, which reads the transaction's own
 * writes rather than asking every operation to describe itself:
 *   one name written, none removed     -> create (mkdir for a directory)
 *   one name removed, none written     -> delete (rmdir for a directory)
 *   a name removed and one written,
 *   or two written (an exchange)       -> rename from the first to the second
 *   no name, a file's blocks written   -> modify
 *   no name, attributes or xattrs      -> attrib
 * and nothing for a transaction that frees inodes without a name (the
 * reaper), touches only this node's bookkeeping, or changes a file that has
 * no name left (unlinked, still open).
 *
 * Paths: a directory's comes from its parent pointers, up to the root, with
 * each name found in its parent; a file's from the name it was last seen
 * under on this node (ofs_names.c: a lookup, a listing, a commit or an
 * applied change that wrote it), checked against the state before use; failing that, a scan of every
 * entry (slow on a big tree, and rare: the kernel looks a name up before it
 * writes the file, and the table forgets one only when another inode takes
 * its slot). The paths are those of the state the transaction was built on: a
 * rename of an ancestor racing with the change may leave the old path in
 * the note (the transaction's guards cover its own keys, not its
 * ancestors').
 *
 * The caller's uid: the FUSE adapter records it per request on the worker
 * thread that serves the request (ofs_note_set_caller), and the commit runs
 * on that same thread. It is thread-local, not global: nodes hosted in one
 * process never share it. Other threads (the reaper, the bootstrap) commit
 * as uid 0, the daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kv.h"
#include "log.h"
#include "ofs_int.h"

#define PATH_DEPTH_MAX (KV_NOTE_PATH_MAX / 2) /* "/x" per level at least */

static _Thread_local uint32_t caller_uid;

void ofs_note_set_caller(uint32_t uid)
{
	caller_uid = uid;
}

/* A name of ino into f (parent, name): the remembered one if the state
 * still has it, else from a scan of dir (0: of every directory). -ENOENT
 * if ino has no name, -ENOMEM, -EIO. */
static int name_of(struct ofs *o, uint64_t ino, uint64_t dir, struct ofs_name_find *f)
{
	f->ino = ino;
	f->len = ofs_names_recall(o, ino, &f->parent, f->name);
	if (f->len && (!dir || f->parent == dir)) {
		uint64_t child;
		int rc = ofs_read_dirent(o, f->parent, f->name, f->len, &child, NULL, NULL);
		if (rc == 0 && child == ino)
			return 0;
		if (rc && rc != -ENOENT)
			return rc;
	}
	f->len = 0;
	struct ofs_key k;
	if (dir) {
		ofs_key_dir_prefix(&k, dir);
	} else {
		ofs_key_dir_prefix(&k, 0);
		k.len = 2; /* "F d": every entry */
	}
	int rc = ofs_kv_scan(o, k.b, k.len, NULL, 0, ofs_names_find, f);
	if (rc)
		return rc;
	if (!f->len)
		return -ENOENT;
	ofs_names_learn(o, ino, f->parent, f->name, f->len);
	return 0;
}

/* A path assembled backwards, from the leaf to the root. */
struct rpath {
	char b[KV_NOTE_PATH_MAX + 1];
	size_t pos; /* the path is b[pos .. KV_NOTE_PATH_MAX) */
};

static int prepend(struct rpath *p, const char *name, size_t len)
{
	if (p->pos < len + 1)
		return -ENAMETOOLONG;
	p->pos -= len;
	memcpy(p->b + p->pos, name, len);
	p->b[--p->pos] = '/';
	return 0;
}

/* Prepends the path of directory dir (nothing for the root). */
static int prepend_dir(struct ofs *o, struct rpath *p, uint64_t dir)
{
	for (uint32_t depth = 0; dir != OFS_ROOT_INO; depth++) {
		struct ofs_attr a;
		struct ofs_name_find f;
		if (depth > PATH_DEPTH_MAX)
			return -ELOOP;
		int rc = ofs_read_attr(o, dir, &a, NULL);
		if (rc)
			return rc;
		if (!S_ISDIR(a.mode) || !a.parent)
			return -EIO;
		rc = name_of(o, dir, a.parent, &f);
		if (rc)
			return rc;
		rc = prepend(p, f.name, f.len);
		if (rc)
			return rc;
		dir = a.parent;
	}
	return 0;
}

/* The path of entry name in directory parent. */
static int entry_path(struct ofs *o, struct rpath *p, uint64_t parent, const char *name, size_t len)
{
	p->pos = KV_NOTE_PATH_MAX;
	int rc = prepend(p, name, len);
	return rc ? rc : prepend_dir(o, p, parent);
}

/* The path of inode ino (a directory's through its parents, a file's
 * through its name). */
static int inode_path(struct ofs *o, struct rpath *p, uint64_t ino, bool dir)
{
	p->pos = KV_NOTE_PATH_MAX;
	if (ino == OFS_ROOT_INO) {
		p->b[--p->pos] = '/';
		return 0;
	}
	if (dir)
		return prepend_dir(o, p, ino);
	struct ofs_name_find f;
	int rc = name_of(o, ino, 0, &f);
	return rc ? rc : entry_path(o, p, f.parent, f.name, f.len);
}

/* The path of the name an op writes or removes, and the kind of file it
 * names (from the written value, or from the state for a removal). */
static int op_path(struct ofs *o, const struct kv_op *op, struct rpath *p, uint8_t *dtype)
{
	uint64_t parent, child;
	const char *name;
	size_t len;
	if (ofs_key_parse_dirent(op->key, op->key_len, &parent, &name, &len))
		return -EIO;
	int rc;
	if (op->type == KV_OP_PUT) {
		rc = ofs_dirent_decode(op->value, op->value_len, &child, dtype);
		if (rc)
			return -EIO;
		ofs_names_learn(o, child, parent, name, len);
	} else {
		rc = ofs_read_dirent(o, parent, name, len, &child, dtype, NULL);
		if (rc)
			return rc;
	}
	return entry_path(o, p, parent, name, len);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ofs_note_attach(struct ofs *o, struct kv_txn *t)
{
	struct ofs_txn_shape s;
	ofs_txn_shape(t, &s);
	struct kv_note n = {.uid = caller_uid, .time_ms = wall_ms()};
	struct rpath *p = malloc(2 * sizeof(*p)), *q = p + 1;
	if (!p)
		return -ENOMEM;
	uint8_t dtype = 0, dtype2;
	int rc = 0;
	if (s.n_put + s.n_del == 2) {
		const struct kv_op *from = s.n_del ? s.del[0] : s.put[0];
		const struct kv_op *to = s.n_del ? s.put[0] : s.put[1];
		n.kind = KV_NOTE_RENAME;
		rc = op_path(o, from, p, &dtype);
		if (!rc)
			rc = op_path(o, to, q, &dtype2);
	} else if (s.n_put + s.n_del == 1) {
		const struct kv_op *op = s.n_put ? s.put[0] : s.del[0];
		rc = op_path(o, op, p, &dtype);
		bool dir = dtype == DT_DIR;
		n.kind = s.n_put ? (dir ? KV_NOTE_MKDIR : KV_NOTE_CREATE)
				 : (dir ? KV_NOTE_RMDIR : KV_NOTE_DELETE);
	} else if (s.n_put + s.n_del == 0 && s.attr && !s.frees_inode) {
		struct ofs_attr a;
		uint64_t ino;
		if (ofs_key_parse_ino(s.attr->key, s.attr->key_len, &ino) ||
		    ofs_attr_decode(&a, ino, s.attr->value, s.attr->value_len)) {
			rc = -EIO;
		} else if (a.nlink == 0) {
			rc = 1; /* a file with no name left: nobody can watch it */
		} else {
			n.kind = s.block_ino == ino ? KV_NOTE_MODIFY : KV_NOTE_ATTRIB;
			rc = inode_path(o, p, ino, S_ISDIR(a.mode));
		}
	} else {
		rc = 1; /* bookkeeping only, or more names than one change has */
	}
	if (rc == 0) {
		n.path = p->b + p->pos;
		n.path_len = KV_NOTE_PATH_MAX - p->pos;
		if (n.kind == KV_NOTE_RENAME) {
			n.path2 = q->b + q->pos;
			n.path2_len = KV_NOTE_PATH_MAX - q->pos;
		}
		rc = kv_txn_set_note(t, &n);
	}
	free(p);
	return rc > 0 ? 0 : rc;
}
