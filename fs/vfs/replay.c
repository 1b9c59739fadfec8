/*
 * Replay of changes applied from other nodes, so that programs watching the
 * mount with inotify see them: the queue and what the FUSE side reads from
 * it (no libfuse here; the thread that replays is fuse_replay.c).
 *
 * The kernel emits inotify events only for operations that pass through its
 * VFS, and FUSE's cache invalidations emit none. So each change applied from
 * elsewhere is turned into one operation (struct ofs_replay_item) that the
 * replay thread performs on this node's own mount: a create becomes an
 * open(O_CREAT | O_EXCL), mkdir, symlink or mknod of the same name, a
 * removal an unlink or rmdir, a rename a rename, new content an open for
 * writing, a futimens of the mtime alone that changes nothing and a close
 * (IN_MODIFY, IN_CLOSE_WRITE), an attribute or xattr change a utimensat
 * (IN_ATTRIB; of the mtime alone, IN_MODIFY). The FUSE handlers recognise
 * the thread's requests and answer them from the state already applied,
 * proposing nothing: the kernel then emits exactly the events of a local
 * change.
 *
 * What the kernel must see is the name as it was before the change (a
 * removal looks the old name up; a create must find no name): the apply
 * hook runs after the KV applied the entry, so this file keeps a KV view
 * taken after the previous entry (the state before this one) and reads the
 * old entries of the names the change touched from it; the item keeps that
 * view, and the replay resolves its paths in it (by the time of the replay,
 * later entries may have removed or renamed a directory on the way, which
 * the kernel still has). Keeping it costs one RocksDB snapshot per applied
 * entry while the mount is up.
 *
 * The queue is bounded (OFS_REPLAY_QUEUE_MAX): an item that finds it full,
 * or that waited longer than OFS_REPLAY_MAX_DELAY_MS, is dropped and
 * counted (replays_dropped), never queued without bound: a watcher then
 * misses events, which a barrier never waits for. Changes proposed on this
 * node are not replayed: the kernel saw them already. A state transfer is
 * not replayed either (no per-change record exists); the invalidations
 * cover it. Atime-only or usage-only changes have no event.
 *
 * The kinds a transaction maps to are read from its writes (txn_shape.c): one
 * entry removed and one added with the same inode is a rename; one added
 * that did not exist, a create; one removed, a removal; no entry but blocks
 * or a size change of an inode, content; other attribute or xattr writes,
 * attributes. An exchange (RENAME_EXCHANGE) has no replay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv.h"
#include "log.h"
#include "ofs_int.h"

void ofs_replay_init(struct ofs *o)
{
	pthread_mutex_init(&o->rp_view_lock, NULL);
	pthread_mutex_init(&o->rp_lock, NULL);
	pthread_cond_init(&o->rp_cond, NULL);
}

void ofs_replay_close(struct ofs *o)
{
	ofs_replay_drain(o);
	kv_view_close(&o->rp_before);
	pthread_mutex_destroy(&o->rp_lock);
	pthread_mutex_destroy(&o->rp_view_lock);
	pthread_cond_destroy(&o->rp_cond);
}

/* Reads of one view (the state an item's change was applied to). */
static int view_attr(struct kv_view *v, uint64_t ino, struct ofs_attr *a)
{
	struct ofs_key k;
	void *val;
	size_t len;
	ofs_key_inode(&k, ino);
	int rc = kv_view_get(v, k.b, k.len, &val, &len, NULL);
	if (rc)
		return rc == -ENOENT || rc == -ENOMEM ? rc : -EIO;
	rc = ofs_attr_decode(a, ino, val, len);
	free(val);
	return rc ? -EIO : 0;
}

static int view_dirent(struct kv_view *v, uint64_t parent, const char *name, uint64_t *child)
{
	struct ofs_key k;
	void *val;
	size_t len;
	uint8_t dt;
	ofs_key_dirent(&k, parent, name, strlen(name));
	int rc = kv_view_get(v, k.b, k.len, &val, &len, NULL);
	if (rc)
		return rc == -ENOENT || rc == -ENOMEM ? rc : -EIO;
	rc = ofs_dirent_decode(val, len, child, &dt);
	free(val);
	return rc ? -EIO : 0;
}

/* One name of ino in view v: the remembered one if it holds there, else a
 * scan (of the parent, for a directory, which knows it; of every entry
 * otherwise). */
static int name_of(struct ofs *o, struct kv_view *v, uint64_t ino, uint64_t *parent, char *name)
{
	uint64_t child;
	size_t len = ofs_names_recall(o, ino, parent, name);
	name[len] = '\0';
	if (len && view_dirent(v, *parent, name, &child) == 0 && child == ino)
		return 0;
	struct ofs_name_find f = {.ino = ino};
	struct ofs_attr a;
	struct ofs_key p;
	int rc = view_attr(v, ino, &a);
	if (rc)
		return rc;
	if (S_ISDIR(a.mode)) {
		ofs_key_dir_prefix(&p, a.parent);
	} else {
		ofs_key_dir_prefix(&p, 0);
		p.len = 2; /* every entry: the kind, no parent */
	}
	rc = ofs_kv_scan_view(v, p.b, p.len, NULL, 0, ofs_names_find, &f);
	if (rc)
		return rc;
	if (!f.len)
		return -ENOENT;
	*parent = f.parent;
	strcpy(name, f.name);
	ofs_names_learn(o, ino, f.parent, f.name, f.len);
	return 0;
}

static int path_in(struct ofs *o, struct kv_view *v, uint64_t ino, const char *name, char *buf,
		   size_t cap)
{
	/* Built from the end: names up the chain of parents to the root. */
	size_t pos = cap;
	char part[OFS_NAME_MAX + 1];
	if (cap < 2)
		return -ENAMETOOLONG;
	buf[--pos] = '\0';
	if (name) {
		size_t len = strlen(name);
		if (len + 1 > pos)
			return -ENAMETOOLONG;
		pos -= len;
		memcpy(buf + pos, name, len);
		buf[--pos] = '/';
	}
	for (uint32_t depth = 0; ino != OFS_ROOT_INO; depth++) {
		uint64_t parent;
		if (depth > o->cfg.max_depth + 1)
			return -ELOOP;
		int rc = name_of(o, v, ino, &parent, part);
		if (rc)
			return rc;
		size_t len = strlen(part);
		if (len + 1 > pos)
			return -ENAMETOOLONG;
		pos -= len;
		memcpy(buf + pos, part, len);
		buf[--pos] = '/';
		ino = parent;
	}
	if (pos == cap - 1)
		buf[--pos] = '/'; /* the root itself */
	memmove(buf, buf + pos, cap - pos);
	return 0;
}

int ofs_replay_path(struct ofs *o, const struct ofs_replay_item *it, uint64_t ino, const char *name,
		    char *buf, size_t cap)
{
	if (it && it->view)
		return path_in(o, it->view, ino, name, buf, cap);
	struct kv_view *v;
	int rc = kv_view_open(o->b.kv, &v);
	if (rc)
		return rc == -ENOMEM ? rc : -EIO;
	rc = path_in(o, v, ino, name, buf, cap);
	kv_view_close(&v);
	return rc;
}

/*
 * Whether no inotify watch on this mount could see the events of it: the kernel
 * holds neither an inode the change touches nor a directory whose entries
 * it changes (a watch on a directory reports its entries' events too). A
 * watch pins its inode, so the kernel holds every watched inode, and this
 * daemon counts every inode the kernel holds (ofs_ino_known). A watch set
 * up after this check looks the inode up first, and so it sees the state
 * with this change in it, as a watch that came after the change should.
 * A file with several names may be in a directory not known here: never
 * unseen. (fanotify marks on the whole mount need no lookup; they do not
 * see changes made elsewhere in directories nobody here has looked up.)
 */
bool ofs_replay_unseen(struct ofs *o, const struct ofs_replay_item *it)
{
	switch (it->kind) {
	case OFS_REPLAY_CREATE:
		return !ofs_ino_known(o, it->to.parent) && !ofs_ino_known(o, it->after.ino);
	case OFS_REPLAY_REMOVE:
		return !ofs_ino_known(o, it->from.parent) && !ofs_ino_known(o, it->from.attr.ino);
	case OFS_REPLAY_RENAME:
		return !ofs_ino_known(o, it->from.parent) && !ofs_ino_known(o, it->to.parent) &&
		       !ofs_ino_known(o, it->from.attr.ino) &&
		       !(it->to.present && ofs_ino_known(o, it->to.attr.ino));
	case OFS_REPLAY_MODIFY:
	case OFS_REPLAY_ATTRIB:
		break;
	}
	if (!it->view || ofs_ino_known(o, it->ino))
		return false;
	struct ofs_attr a;
	uint64_t parent;
	char name[OFS_NAME_MAX + 1];
	if (view_attr(it->view, it->ino, &a) != 0)
		return false;
	if (S_ISDIR(a.mode))
		parent = a.parent;
	else if (a.nlink != 1 || name_of(o, it->view, it->ino, &parent, name) != 0)
		return false;
	return !ofs_ino_known(o, parent);
}

void ofs_replay_item_free(struct ofs_replay_item *it)
{
	if (!it)
		return;
	kv_view_close(&it->view);
	free(it);
}

/* --- from an applied transaction to an item ---------------------------------- */

/* The entry (parent, name) in view v: present with its inode's attributes
 * (read from v too), or absent. */
static int read_before(struct kv_view *v, struct ofs_replay_entry *e)
{
	uint64_t child;
	e->present = false;
	int rc = view_dirent(v, e->parent, e->name, &child);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = view_attr(v, child, &e->attr);
	if (rc)
		return rc == -ENOENT ? -EBADMSG : rc; /* an entry without its inode */
	e->present = true;
	return 0;
}

/* Attributes of ino as the transaction writes them, if it does. */
static bool attr_in_txn(const struct kv_txn *t, uint64_t ino, struct ofs_attr *a)
{
	bool found = false;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		uint64_t x;
		if (op->type != KV_OP_PUT || ofs_key_kind(op->key, op->key_len) != OFS_K_INODE ||
		    ofs_key_parse_ino(op->key, op->key_len, &x) != 0 || x != ino)
			continue;
		found = ofs_attr_decode(a, ino, op->value, op->value_len) == 0;
	}
	return found;
}

static bool attrs_differ(const struct ofs_attr *a, const struct ofs_attr *b)
{
	return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	       a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns;
}

/* Whether a change of content (or a create with it) also set attributes
 * after the data, as a setattr folded into the commit does (ofs_fold.c):
 * the owner or mode changed, or the ctime is not the data's mtime. old:
 * the inode before (NULL for a create). */
static bool sets_attrs(const struct ofs_attr *old, const struct ofs_attr *now)
{
	if (old && (old->mode != now->mode || old->uid != now->uid || old->gid != now->gid))
		return true;
	return now->ctime_ns != now->mtime_ns;
}

static int entry_of(const struct kv_op *op, struct ofs_replay_entry *e)
{
	const char *name;
	size_t len;
	if (ofs_key_parse_dirent(op->key, op->key_len, &e->parent, &name, &len) != 0 ||
	    len > OFS_NAME_MAX)
		return -EBADMSG;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	return 0;
}

/*
 * Fills it from t, applied at idx, with before the view of the state just
 * before it (NULL if none is known). Returns 1 if t has a replay, 0 if it
 * has none (or the state before was needed and is unknown), or -errno.
 */
static int item_of(struct ofs *o, const struct kv_txn *t, struct kv_view *before,
		   struct ofs_replay_item *it)
{
	struct ofs_txn_shape s;
	ofs_txn_shape(t, &s);
	int rc;
	if (s.n_put + s.n_del > 0) {
		if (s.n_put > 1 || s.n_del > 1)
			return 0; /* an exchange */
		if (!before)
			return -ENODATA; /* nothing to compare with: dropped */
		if (s.n_del == 1) {
			rc = entry_of(s.del[0], &it->from);
			if (rc == 0)
				rc = read_before(before, &it->from);
			if (rc)
				return rc;
			if (!it->from.present)
				return 0;
		}
		if (s.n_put == 1) {
			uint64_t child;
			uint8_t dt;
			rc = entry_of(s.put[0], &it->to);
			if (rc == 0)
				rc = read_before(before, &it->to);
			if (rc)
				return rc;
			if (ofs_dirent_decode(s.put[0]->value, s.put[0]->value_len, &child, &dt))
				return -EBADMSG;
			/* The new entry's inode as the change left it (a
			 * create's handler answers with it if the name is gone
			 * again by the time of the replay). */
			if (!attr_in_txn(t, child, &it->after)) {
				rc = ofs_read_attr(o, child, &it->after, NULL);
				if (rc)
					return rc == -ENOENT ? 0 : rc;
			}
			if (s.n_del == 0 && it->to.present)
				return 0; /* same name, same place: nothing for the kernel */
		}
		if (s.n_del == 1 && s.n_put == 1) {
			if (it->after.ino != it->from.attr.ino)
				return 0;
			it->kind = OFS_REPLAY_RENAME;
		} else {
			it->kind = s.n_del ? OFS_REPLAY_REMOVE : OFS_REPLAY_CREATE;
			/* a new file (not a new link: that changes the
			 * ctime alone), created with its data */
			it->attrib = it->kind == OFS_REPLAY_CREATE && S_ISREG(it->after.mode) &&
				     it->after.nlink <= 1 && sets_attrs(NULL, &it->after);
		}
		return 1;
	}
	if (s.frees_inode)
		return 0; /* an unlinked file freed at last */
	if (s.block_ino) {
		it->kind = OFS_REPLAY_MODIFY;
		it->ino = s.block_ino;
		struct ofs_attr old, now;
		it->attrib = before && attr_in_txn(t, s.block_ino, &now) &&
			     view_attr(before, s.block_ino, &old) == 0 && sets_attrs(&old, &now);
		return 1;
	}
	uint64_t ino = s.xattr_ino ? s.xattr_ino : s.attr_ino;
	if (!ino)
		return 0;
	struct ofs_attr now;
	bool have_now = attr_in_txn(t, ino, &now);
	if (!have_now && !s.xattr_ino)
		return 0;
	if (!s.xattr_ino && before) {
		struct ofs_attr old;
		rc = view_attr(before, ino, &old);
		if (rc == -ENOENT)
			return 0; /* a new inode without a name yet */
		if (rc)
			return rc;
		if (old.size != now.size && S_ISREG(now.mode)) {
			it->kind = OFS_REPLAY_MODIFY;
			it->ino = ino;
			it->attrib = sets_attrs(&old, &now);
			return 1;
		}
		if (!attrs_differ(&old, &now))
			return 0; /* atime or usage only */
		/* utimensat(2) setting mtime alone is IN_MODIFY, not IN_ATTRIB
		 * (tar does it to directories). */
		it->mtime_only = old.mode == now.mode && old.uid == now.uid && old.gid == now.gid &&
				 old.atime_ns == now.atime_ns && old.mtime_ns != now.mtime_ns;
	} else if (!s.xattr_ino) {
		return -ENODATA; /* nothing to compare with: dropped */
	}
	it->kind = OFS_REPLAY_ATTRIB;
	it->ino = ino;
	return 1;
}

/* Whether op writes a directory entry: then its directory, name (len
 * bytes, not terminated) and inode. */
static bool entry_written(const struct kv_op *op, uint64_t *parent, const char **name, size_t *len,
			  uint64_t *child)
{
	uint8_t dt;
	return op->type == KV_OP_PUT && ofs_key_kind(op->key, op->key_len) == OFS_K_DIRENT &&
	       ofs_key_parse_dirent(op->key, op->key_len, parent, name, len) == 0 &&
	       ofs_dirent_decode(op->value, op->value_len, child, &dt) == 0;
}

/* Names every entry t writes, for ofs_replay_path and the change notes
 * (any node's changes). */
static void note_names(struct ofs *o, const struct kv_txn *t)
{
	for (uint32_t i = 0; i < t->n_ops; i++) {
		uint64_t parent, child;
		const char *name;
		size_t len;
		if (entry_written(&t->ops[i], &parent, &name, &len, &child))
			ofs_names_learn(o, child, parent, name, len);
	}
}

/*
 * ofs_replay_unseen for a change that only adds names (a create, mkdir,
 * symlink or link), told from t alone once it is applied: the directories
 * of its names, their inodes and every inode whose attributes, blocks or
 * xattrs it writes, none held by the kernel. The item, its reads of the
 * state before and the replay thread's turn are then spared. Other changes
 * (false here) are looked at by the replay thread.
 */
static bool only_new_names_unseen(struct ofs *o, const struct kv_txn *t)
{
	bool names = false;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		uint64_t ino, child;
		const char *name;
		size_t len;
		if (op->type != KV_OP_PUT && op->type != KV_OP_DELETE &&
		    op->type != KV_OP_DELETE_PREFIX)
			continue;
		switch (ofs_key_kind(op->key, op->key_len)) {
		case OFS_K_DIRENT:
			if (!entry_written(op, &ino, &name, &len, &child) ||
			    ofs_ino_known(o, ino) || ofs_ino_known(o, child))
				return false;
			names = true;
			break;
		case OFS_K_INODE:
		case OFS_K_BLOCK:
		case OFS_K_XATTR:
			if (ofs_key_parse_ino(op->key, op->key_len, &ino) != 0 ||
			    ofs_ino_known(o, ino))
				return false;
			break;
		default:
			break;
		}
	}
	return names;
}

/* Under rp_lock: appends it, or drops it if the queue is full. The caller
 * signals rp_cond once it has released the lock. */
static bool push_locked(struct ofs *o, struct ofs_replay_item *it)
{
	if (o->rp_len >= OFS_REPLAY_QUEUE_MAX)
		return false;
	if (o->rp_tail)
		o->rp_tail->next = it;
	else
		o->rp_head = it;
	o->rp_tail = it;
	o->rp_len++;
	return true;
}

void ofs_replay_on_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	if (!__atomic_load_n(&o->rp_enabled, __ATOMIC_ACQUIRE))
		return;
	/* The view of the state before idx is ours now; the next entry gets
	 * one of the state after it. */
	pthread_mutex_lock(&o->rp_lock);
	struct kv_view *before = o->rp_before;
	o->rp_before = NULL;
	pthread_mutex_unlock(&o->rp_lock);
	/* Entries applied since the view without a hook call (a failed guard, a
	 * duplicate, a membership change) wrote no file: it still shows the
	 * state before idx. A view newer than that was opened by
	 * ofs_replay_enable after idx was applied. */
	if (before && kv_view_applied_idx(before) > idx)
		kv_view_close(&before);
	note_names(o, t);
	/* Applied already: a watch set up from here on sees it in the state. */
	if (!proposed_here && only_new_names_unseen(o, t)) {
		ofs_count(o, &o->stats.replays_unseen, 1);
	} else if (!proposed_here) {
		struct ofs_replay_item *it = calloc(1, sizeof(*it));
		int rc = it ? item_of(o, t, before, it) : -ENOMEM;
		bool queued = false, dropped = rc < 0;
		if (rc > 0) {
			it->idx = idx;
			it->queued_ns = ofs_now_ns();
			it->invals = ofs_inval_queued(o);
			/* Its paths are resolved in the state before it, which the
			 * kernel has when the items before it are replayed. */
			it->view = before;
			pthread_mutex_lock(&o->rp_lock);
			queued = push_locked(o, it);
			pthread_mutex_unlock(&o->rp_lock);
			/* After the unlock: the replay thread, woken under the
			 * lock, would often run at once only to wait for it
			 * (two more context switches on this thread's CPU). */
			if (queued)
				pthread_cond_signal(&o->rp_cond);
			dropped = !queued;
			if (queued)
				before = NULL; /* the item's now */
			else
				it->view = NULL;
		}
		if (!queued)
			free(it);
		pthread_mutex_lock(&o->lock);
		o->stats.replays_queued += queued;
		o->stats.replays_dropped += dropped;
		pthread_mutex_unlock(&o->lock);
	}
	kv_view_close(&before);
	struct kv_view *after = NULL;
	if (kv_view_open(o->b.kv, &after) != 0)
		after = NULL; /* the next item that needs it is dropped */
	pthread_mutex_lock(&o->rp_lock);
	kv_view_close(&o->rp_before); /* ofs_replay_start raced with us */
	o->rp_before = after;
	pthread_mutex_unlock(&o->rp_lock);
}

void ofs_replay_state_replaced(struct ofs *o)
{
	if (!__atomic_load_n(&o->rp_enabled, __ATOMIC_ACQUIRE))
		return;
	struct kv_view *v = NULL;
	if (kv_view_open(o->b.kv, &v) != 0)
		v = NULL;
	pthread_mutex_lock(&o->rp_lock);
	kv_view_close(&o->rp_before);
	o->rp_before = v;
	pthread_mutex_unlock(&o->rp_lock);
}

/* --- the queue, for the replay thread ------------------------------------------ */

void ofs_replay_enable(struct ofs *o)
{
	struct kv_view *v = NULL;
	if (kv_view_open(o->b.kv, &v) != 0)
		v = NULL; /* the first removal has no replay */
	pthread_mutex_lock(&o->rp_lock);
	kv_view_close(&o->rp_before);
	o->rp_before = v;
	o->rp_stop = false;
	pthread_mutex_unlock(&o->rp_lock);
	__atomic_store_n(&o->rp_enabled, true, __ATOMIC_RELEASE);
}

void ofs_replay_disable(struct ofs *o)
{
	__atomic_store_n(&o->rp_enabled, false, __ATOMIC_RELEASE);
	pthread_mutex_lock(&o->rp_lock);
	o->rp_stop = true;
	pthread_cond_broadcast(&o->rp_cond);
	pthread_mutex_unlock(&o->rp_lock);
}

struct ofs_replay_item *ofs_replay_pop(struct ofs *o, int64_t until_ns, bool *stopped)
{
	struct ofs_replay_item *it = NULL;
	uint64_t late = 0;
	struct timespec until = {.tv_sec = until_ns / 1000000000, .tv_nsec = until_ns % 1000000000};
	int rc = 0;
	pthread_mutex_lock(&o->rp_lock);
	for (;;) {
		while (!o->rp_head && !o->rp_stop && rc == 0) {
			if (until_ns)
				rc = pthread_cond_timedwait(&o->rp_cond, &o->rp_lock, &until);
			else
				pthread_cond_wait(&o->rp_cond, &o->rp_lock);
		}
		if (o->rp_stop || !o->rp_head)
			break;
		int64_t now = ofs_now_ns();
		it = o->rp_head;
		o->rp_head = it->next;
		if (!o->rp_head)
			o->rp_tail = NULL;
		o->rp_len--;
		it->next = NULL;
		if (now - it->queued_ns <= (int64_t)OFS_REPLAY_MAX_DELAY_MS * 1000000)
			break;
		ofs_replay_item_free(it); /* too late to mean "just now" to a watcher */
		it = NULL;
		late++;
	}
	*stopped = o->rp_stop;
	o->rp_cur = it; /* published at once: replays_pending never misses it */
	pthread_mutex_unlock(&o->rp_lock);
	if (late)
		ofs_count(o, &o->stats.replays_dropped, late);
	return it;
}

void ofs_replay_drain(struct ofs *o)
{
	pthread_mutex_lock(&o->rp_lock);
	struct ofs_replay_item *it = o->rp_head;
	o->rp_head = o->rp_tail = NULL;
	o->rp_len = 0;
	o->rp_cur = NULL;
	pthread_mutex_unlock(&o->rp_lock);
	while (it) {
		struct ofs_replay_item *next = it->next;
		ofs_replay_item_free(it);
		it = next;
	}
}

void ofs_replay_set_current(struct ofs *o, const struct ofs_replay_item *it)
{
	pthread_mutex_lock(&o->rp_lock);
	o->rp_cur = it;
	pthread_mutex_unlock(&o->rp_lock);
	/* A handler that found the item before is done with it after this. */
	pthread_mutex_lock(&o->rp_view_lock);
	pthread_mutex_unlock(&o->rp_view_lock);
}

/* --- latency ------------------------------------------------------------------- */

/* Bucket of lat_us: 100 us steps below 10 ms, 10 ms steps below 1 s, 1 s
 * steps below 100 s, then the last one. */
static size_t lat_bucket(uint64_t lat_us)
{
	if (lat_us < 10000)
		return (size_t)(lat_us / 100);
	if (lat_us < 1000000)
		return 99 + (size_t)(lat_us / 10000);
	if (lat_us < 100000000)
		return 198 + (size_t)(lat_us / 1000000);
	return OFS_REPLAY_LAT_BUCKETS - 1;
}

/* The upper bound of bucket b, in microseconds (the last has none: its
 * lower bound). */
static uint64_t lat_upper(size_t b)
{
	if (b < 100)
		return (b + 1) * 100;
	if (b < 199)
		return (b - 99 + 1) * 10000;
	return (b - 198 + 1) * 1000000;
}

void ofs_replay_note_latency(struct ofs *o, uint64_t lat_us)
{
	pthread_mutex_lock(&o->rp_lock);
	o->rp_lat_hist[lat_bucket(lat_us)]++;
	if (lat_us > o->rp_lat_max_us)
		o->rp_lat_max_us = lat_us;
	pthread_mutex_unlock(&o->rp_lock);
}

void ofs_replay_latency_locked(struct ofs *o, struct ofs_stats *st)
{
	uint64_t total = 0, seen = 0;
	for (size_t b = 0; b < OFS_REPLAY_LAT_BUCKETS; b++)
		total += o->rp_lat_hist[b];
	st->replay_p50_us = st->replay_p99_us = 0;
	st->replay_max_us = o->rp_lat_max_us;
	if (total == 0)
		return;
	for (size_t b = 0; b < OFS_REPLAY_LAT_BUCKETS; b++) {
		seen += o->rp_lat_hist[b];
		if (!st->replay_p50_us && seen * 2 >= total)
			st->replay_p50_us = lat_upper(b);
		if (seen * 100 >= total * 99) {
			st->replay_p99_us = lat_upper(b);
			break;
		}
	}
}

/* --- answers to the replay thread's requests ----------------------------------- */

static bool same_entry(const struct ofs_replay_entry *e, uint64_t parent, const char *name)
{
	return e->parent == parent && strcmp(e->name, name) == 0;
}

/* Under rp_view_lock: 1 with *out the entry (parent, name) in view v,
 * -ENOENT if it is not there, 0 if the read failed (the state now answers). */
static int lookup_in(struct kv_view *v, uint64_t parent, const char *name, struct ofs_attr *out)
{
	uint64_t child;
	int rc = view_dirent(v, parent, name, &child);
	if (rc == 0)
		rc = view_attr(v, child, out);
	if (rc == -ENOENT)
		return -ENOENT;
	return rc ? 0 : 1;
}

/*
 * The handlers read the current item's view under rp_view_lock, taken
 * before the item is looked up: ofs_replay_set_current(o, NULL) takes it
 * too once the item is no longer current, so the replay thread frees an
 * item only after any handler that found it is done. (The thread's call
 * waits for the answer anyway; the lock says so where the kernel's round
 * trip does not.)
 */
/*
 * What the kernel is told of an inode that still exists is its current
 * attributes, never the view's: the kernel keeps the attributes of any
 * reply in the inode it shares with every process (a zero timeout still
 * holds until the next clock tick), so an earlier size given to the replay
 * would be what a reader on this node sees, e.g. an empty file that has
 * content. The view answers only for what no longer exists (a directory
 * removed since, the file a rename replaced), which no reader can reach.
 */
static bool current_attr(struct ofs *o, struct ofs_attr *a)
{
	struct ofs_attr now;
	if (ofs_read_attr(o, a->ino, &now, NULL) != 0)
		return false;
	*a = now;
	return true;
}

/*
 * Whether the kernel, once the replayed call returns, changes what it keeps
 * of ino by itself: after an unlink, rmdir or rename it drops the link
 * count of the inode that lost a name (it believes the call made that
 * change). Attributes already showing the change would then be counted
 * twice: such an inode's answers are for the call only.
 */
static bool kernel_adjusts(const struct ofs_replay_item *it, uint64_t ino)
{
	if (!it || (it->kind != OFS_REPLAY_REMOVE && it->kind != OFS_REPLAY_RENAME))
		return false;
	return (it->from.present && it->from.attr.ino == ino) ||
	       (it->to.present && it->to.attr.ino == ino);
}

int ofs_replay_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out,
		      bool *now)
{
	*now = false;
	int rc = 0;
	pthread_mutex_lock(&o->rp_view_lock);
	pthread_mutex_lock(&o->rp_lock);
	const struct ofs_replay_item *it = o->rp_cur;
	const struct ofs_replay_entry *e = NULL;
	if (it && it->kind != OFS_REPLAY_MODIFY && it->kind != OFS_REPLAY_ATTRIB) {
		if (it->kind != OFS_REPLAY_CREATE && same_entry(&it->from, parent, name))
			e = &it->from;
		else if (it->kind != OFS_REPLAY_REMOVE && same_entry(&it->to, parent, name))
			e = &it->to;
	}
	if (e && e->present) {
		*out = e->attr;
		rc = 1;
	} else if (e) {
		rc = -ENOENT;
	}
	struct kv_view *v = it && !e ? it->view : NULL;
	pthread_mutex_unlock(&o->rp_lock);
	/* Every other name on the way as it was then too: a directory removed
	 * since (rm -r) is still there for the kernel until its own replay. */
	if (v)
		rc = lookup_in(v, parent, name, out);
	/* The item stays current while rp_view_lock is held. */
	bool adjusts = rc == 1 && kernel_adjusts(it, out->ino);
	pthread_mutex_unlock(&o->rp_view_lock);
	if (rc == 1)
		*now = current_attr(o, out) && !adjusts;
	return rc;
}

int ofs_replay_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out, bool *now)
{
	*now = false;
	pthread_mutex_lock(&o->rp_view_lock);
	pthread_mutex_lock(&o->rp_lock);
	struct kv_view *v = o->rp_cur ? o->rp_cur->view : NULL;
	bool adjusts = kernel_adjusts(o->rp_cur, ino);
	pthread_mutex_unlock(&o->rp_lock);
	int rc = v && view_attr(v, ino, out) == 0 ? 1 : 0;
	pthread_mutex_unlock(&o->rp_view_lock);
	if (rc == 1)
		*now = current_attr(o, out) && !adjusts;
	return rc;
}

int ofs_replay_created(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out,
		       bool *now)
{
	*now = false;
	struct ofs_attr recorded;
	bool have = false;
	pthread_mutex_lock(&o->rp_lock);
	const struct ofs_replay_item *it = o->rp_cur;
	if (it && it->kind == OFS_REPLAY_CREATE && same_entry(&it->to, parent, name)) {
		recorded = it->after;
		have = true;
	}
	pthread_mutex_unlock(&o->rp_lock);
	int rc = ofs_op_lookup(o, parent, name, out);
	if (!have) {
		*now = rc == 0;
		return rc;
	}
	/* The name may be another inode by now (removed and made again): the
	 * create the kernel saw made the one recorded. */
	if (rc != 0 || out->ino != recorded.ino) {
		*out = recorded;
		current_attr(o, out);
		return 0;
	}
	*now = true;
	return 0;
}
