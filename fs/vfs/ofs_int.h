/*
 * Internals of the filesystem shared by its files: struct ofs, the node-local
 * inode table (lookup counts, open counts, write buffers), and the operations
 * as plain functions returning 0 or -errno, independent of FUSE so unit tests
 * can drive them without a mount. fuse_ops.c is a thin adapter over these.
 *
 * One path for a change: an operation runs ofs_run_txn with a build
 * function, which reads the applied state (ofs_kv_get, ofs_kv_scan) and adds
 * guards and writes to a struct kv_txn (ofs_add_*, schema keys); ofs_commit
 * hands that transaction to the backend's propose and maps the KV's answer;
 * a failed guard rebuilds from scratch. Only the files fuse_ops.c and
 * fuse_inval.c call libfuse; the rest builds as omnifs_vfs_core without it.
 *
 * Locks, in the order they may be taken:
 *   struct onode.mu   one open file's write buffer; held across its commit
 *   struct ofs.lock   the inode table, counts, counters, the pending creates
 *                     (ofs_pending.c) and the inode number counter; never held across
 *                     a commit, a KV read or a fuse_reply_* call
 *   struct ofs.iq_lock  the invalidation queue (leaf)
 *   struct ofs.reap_lock  the reaper's stop flag (leaf, never with another)
 *   struct ofs.rp_view_lock  reads of the current replay item's view by
 *                     the handlers (replay.c); taken before rp_lock
 *   struct ofs.rp_lock  the replay queue, the current item and the view
 *                     (leaf)
 *   struct ofs_names.lock  the remembered names of inodes (ofs_names.c;
 *                     leaf)
 *
 * Threads: FUSE workers, the invalidation thread (inval.c), the reaper
 * (ofs_core.c), the waker (fuse_ops.c) and the replay thread
 * (fuse_replay.c), plus the apply hook on the replica thread (ofs_on_applied:
 * iq_lock, rp_lock and lock, one at a time). Fields not under
 * a lock are set before those threads start and only read after.
 */
#ifndef OMNIFS_OFS_INT_H
#define OMNIFS_OFS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ofs.h"
#include "schema.h"

struct kv_view;

/* Inode numbers: node id in the high 16 bits, a per-node counter below.
 * Node id 0 is reserved: the root and the virtual /.omnifs files. */
#define OFS_INO_NODE_SHIFT  48
#define OFS_INO_COUNTER_MAX ((UINT64_C(1) << OFS_INO_NODE_SHIFT) - 1)
#define OFS_VINO_DIR	    2u /* /.omnifs */
#define OFS_VINO_STATUS	    3u /* /.omnifs/status.json */
#define OFS_VINO_MEMBERS    4u /* /.omnifs/members.json */
#define OFS_VINO_HISTORY    5u /* /.omnifs/history; below it, ofs_history.c's own */
#define OFS_VINO_METRICS    6u /* /.omnifs/metrics */
#define OFS_VDIR_NAME	    ".omnifs"

/* ino of counter value c on node id node, or 0 if out of range. */
uint64_t ofs_ino_make(uint64_t node, uint64_t counter);
uint64_t ofs_ino_node(uint64_t ino);
bool ofs_ino_is_virtual(uint64_t ino);

/* One buffered block: bytes [lo, hi) of data are newer than the KV. */
struct dblock {
	uint64_t no;
	uint32_t lo, hi;
	uint8_t data[OFS_BLOCK_SIZE];
};

struct onode {
	uint64_t ino;
	/* under ofs.lock */
	uint64_t nlookup; /* kernel references (lookup/create replies minus forgets) */
	uint32_t nopen;	  /* open file handles on this node */
	uint32_t ref;	  /* threads using this struct right now */
	struct onode *next;
	/* under mu */
	pthread_mutex_t mu;
	bool trunc; /* O_TRUNC pending: the stored content counts as empty */
	const struct ofs_file *trunc_owner; /* the handle that opened with O_TRUNC */
	uint64_t wend;			    /* end offset of buffered writes, 0 if none */
	struct dblock **blk;		    /* buffered blocks, unordered */
	size_t nblk, capblk;
	bool dirty;		  /* trunc, blocks or a create pending; written under mu and
		     * ofs.lock both, so either one is enough to read it */
	struct ofs_pending *pend; /* the file's create, not committed yet
				   * (ofs_pending.c); NULL once it is. Written
				   * under mu and ofs.lock both */
	struct ofs_fold *fold;	  /* under mu: setattrs waiting for the commit, in
				   * call order (ofs_fold.c); NULL when none */
	size_t nfold;
	bool wrote_since_fold; /* under mu: a write came after the last fold */
};

/* An open file or directory (fuse_file_info.fh). */
struct ofs_file {
	struct onode *n; /* regular files (NULL for dirs and virtual files) */
	uint64_t ino;
	int flags;    /* open(2) flags */
	bool dirtied; /* wrote, truncated or created through this handle: its flush commits */
	bool wrote;   /* wrote through this handle (a flush cannot be deferred) */
	bool made;    /* under n->mu: this open made the file (O_EXCL) and has not
		       * written it: its setattrs may fold (ofs_fold.c) */
	int pid;      /* under ofs.lock: the thread that opened it (0: unknown), see
		       * ofs_fold.c */
	char *vbuf;   /* virtual files: content rendered at open */
	size_t vlen;
	struct ofs_dirent_list *dir;  /* directories: listing taken at opendir */
	bool fresh;		      /* dir not read yet: no new listing at offset 0 */
	struct ofs_file *prev, *next; /* ofs.files, under ofs.lock */
};

struct ofs_dirent_item {
	uint64_t ino;
	uint8_t dtype;
	char *name;
};

struct ofs_dirent_list {
	struct ofs_dirent_item *items; /* ".", "..", then entries in key order */
	size_t n, cap;
};

/*
 * What the invalidation thread tells the kernel, finest first. Past the
 * queue's bound a name is queued as its directory's OFS_INVAL_DIR, and past
 * twice the bound the whole queue collapses into one OFS_INVAL_ALL: coarser,
 * never nothing (inval.c).
 */
enum ofs_inval_kind {
	OFS_INVAL_ENTRY, /* the name in directory ino */
	OFS_INVAL_INODE, /* ino's attributes and page cache */
	OFS_INVAL_DIR,	 /* directory ino as an inode and every name now in it */
	OFS_INVAL_ALL,	 /* every inode the kernel knows, and names in its directories */
};

struct inval_item {
	enum ofs_inval_kind kind;
	uint64_t ino;	 /* the inode, the directory, or 0 for OFS_INVAL_ALL */
	char *name;	 /* OFS_INVAL_ENTRY: the name (owned); else NULL */
	uint64_t covers; /* queued changes it accounts for (barrier's count) */
	struct inval_item *next;
};

/*
 * One change from another node to replay on the mount (replay.c,
 * fuse_replay.c). An entry is a name in a directory as some state had it:
 * present with its inode's attributes, or absent.
 */
enum ofs_replay_kind {
	OFS_REPLAY_CREATE, /* to: absent before; after: what it became */
	OFS_REPLAY_REMOVE, /* from: the entry removed, as it was */
	OFS_REPLAY_RENAME, /* from: the source as it was; to: the target as it was */
	OFS_REPLAY_MODIFY, /* ino: new content or size */
	OFS_REPLAY_ATTRIB, /* ino: attributes or xattrs */
};

struct ofs_replay_entry {
	uint64_t parent;
	char name[OFS_NAME_MAX + 1];
	bool present;
	struct ofs_attr attr; /* present: the inode as it was */
};

struct ofs_replay_item {
	enum ofs_replay_kind kind;
	uint64_t idx;	   /* the log index applied */
	int64_t queued_ns; /* when the apply hook queued it */
	struct ofs_replay_entry from, to;
	struct ofs_attr after; /* CREATE, RENAME: the entry's inode after the change */
	uint64_t ino;	       /* MODIFY, ATTRIB */
	bool mtime_only;       /* ATTRIB: only the mtime was set (IN_MODIFY) */
	bool attrib;	       /* CREATE, MODIFY: attributes were set too, after the
				* data (ofs_fold.c): IN_ATTRIB as well */
	uint64_t invals;       /* invalidations queued up to this change (inval.c) */
	struct kv_view *view;  /* the state before the change (owned; NULL: unknown) */
	struct ofs_replay_item *next;
};

#define OFS_REPLAY_QUEUE_MAX	4096u /* items waiting; more are dropped */
#define OFS_REPLAY_MAX_DELAY_MS 5000u /* an older item is dropped, not replayed */
#define OFS_REPLAY_LAT_BUCKETS	300u  /* 100 x 100 us, 99 x 10 ms, 100 x 1 s, more */

#define OFS_TABLE_SIZE	 4096
#define OFS_IQ_DIR_SLOTS 64

struct ofs {
	struct ofs_config cfg;
	struct ofs_backend b; /* ofs_new's copy */

	pthread_mutex_t lock;		     /* see the top of this file */
	struct onode *table[OFS_TABLE_SIZE]; /* under lock */
	struct ofs_stats stats;		     /* under lock */
	struct ofs_file *files; /* open handles, under lock: freed by ofs_destroy if the
				 * kernel never released them (stopped mid-use) */

	bool erofs_seen; /* the last commit failed with -EROFS (atomic) */

	/* Creates not committed yet (ofs_pending.c), under lock: few at a time
	 * (files created and not yet closed on this node), so a list. */
	struct ofs_pending *pending;
	size_t n_pending;
	uint64_t ino_next;    /* under lock: counter above every inode number handed out
			    * since the start (0: none yet); see ofs_ino_reserve */
	uint32_t shares_busy; /* under lock: shares of this node's record held by a
			       * change being built or committed (ofs_run_txn) */
	unsigned share_next;  /* under lock: where the search for a free share starts */

	/* The node records as of one applied index (ofs_noderecs.c), read by a
	 * scan and then followed by the apply hook. nr_lock is a leaf lock. */
	pthread_mutex_t nr_lock;
	struct ofs_noderecs *nr; /* under nr_lock; NULL: none kept */

	struct ofs_locks *locks;     /* cluster-wide locks (fuse_locks.c), set before mounting */
	ofs_status_fn status_fn;     /* set before mounting */
	struct ofs_metrics *metrics; /* set before mounting; NULL: requests are not timed */
	void *status_ctx;

	/* FUSE side (fuse_ops.c): the mounting thread's, set by ofs_mount
	 * before the helper threads and the loop start, cleared by
	 * ofs_unmount once they have stopped; ofs_stop only reads. */
	struct fuse_session *se;
	char *mountpoint;
	char *mount_real; /* its canonical path (realpath; NULL if unknown), for
			   * ofs_proc_has_open */
	bool mounted;
	int wake_pipe[2]; /* ofs_stop -> waker thread; -1 when closed */
	pthread_t waker;
	bool waker_running;

	/* invalidation queue (inval.c) */
	pthread_mutex_t iq_lock;
	pthread_cond_t iq_cond;
	pthread_cond_t iq_done_cond;	      /* signalled as items are done */
	struct inval_item *iq_head, *iq_tail; /* under iq_lock */
	size_t iq_len;
	uint64_t iq_queued, iq_done; /* changes ever queued and ever done, under iq_lock */
	uint64_t iq_all_covers;	     /* under iq_lock: > 0 while an OFS_INVAL_ALL is
				      * pending, the changes it accounts for */
	struct inval_item *iq_dirs[OFS_IQ_DIR_SLOTS]; /* under iq_lock: queued OFS_INVAL_DIR
						       * items by directory (a cache) */
	bool iq_stop;				      /* under iq_lock */
	bool iq_running;	/* under iq_lock (ofs_wait_invalidations reads it) */
	pthread_t iq_thread;	/* the mounting thread's */
	uint32_t entry_replies; /* atomic: requests running whose reply gives the kernel an
				 * inode (ofs_entry_reply_begin) */

	/* names of inodes last seen here, for change notes and the replay
	 * (ofs_names.c; its own lock); NULL if it could not be allocated: paths
	 * then come from scans */
	struct ofs_names *names;
	uint64_t notes_missed; /* commits that went without a note (atomic) */

	/* the replay of other nodes' changes (replay.c, fuse_replay.c) */
	pthread_mutex_t rp_view_lock; /* see the top of this file and replay.c */
	pthread_mutex_t rp_lock;
	pthread_cond_t rp_cond;
	bool rp_enabled; /* atomic: the apply hook queues items (mounted) */
	bool rp_stop;	 /* under rp_lock */
	struct ofs_replay_item *rp_head, *rp_tail; /* under rp_lock */
	size_t rp_len;				   /* under rp_lock */
	const struct ofs_replay_item *rp_cur;	   /* under rp_lock: the one being replayed */
	bool rp_holding; /* under rp_lock: the thread holds a file open (fuse_replay.c) */
	uint64_t rp_lat_hist[OFS_REPLAY_LAT_BUCKETS]; /* under rp_lock: replay latencies */
	uint64_t rp_lat_max_us;			      /* under rp_lock */
	struct kv_view *rp_before; /* under rp_lock: the state after the last applied entry */
	int rp_tid;		   /* atomic: the replay thread's id (0: none) */
	bool rp_running;	   /* under rp_lock */
	pthread_t rp_thread;	   /* the mounting thread's */
	const void *rp_base_ops;   /* fuse_replay.c: the handlers it wraps */
	void *entry_inner_ops;	   /* fuse_ops.c: the handlers the entry count wraps (owned,
				    * while mounted) */

	/* file history (ofs_history.c): the view's inodes (own lock), and the
	 * changes of files too large to keep versions of (under lock) */
	struct ofs_hist *hist;
	uint64_t hist_skipped;

	/* the reaper of unlinked files (ofs_core.c) */
	pthread_mutex_t reap_lock;
	pthread_cond_t reap_cond;
	bool reap_stop; /* under reap_lock */
	bool reap_running;
	pthread_t reap_thread;
};

/* Who asks for a change: the caller's fs uid, fs gid and supplementary
 * groups (groups borrowed for the call, NULL when ngroups is 0). New inodes
 * take uid and gid; permission checks use all of it (ofs_perm.c). */
struct ofs_cred {
	uint32_t uid, gid;
	const uint32_t *groups;
	size_t ngroups;
	int pid; /* the calling thread (0: unknown): decides whether a setattr may
		  * wait for the commit of the file it writes (ofs_fold.c) */
};

/* Fields of setattr to change; the rest are ignored. */
#define OFS_SET_MODE	  (1u << 0)
#define OFS_SET_UID	  (1u << 1)
#define OFS_SET_GID	  (1u << 2)
#define OFS_SET_SIZE	  (1u << 3)
#define OFS_SET_ATIME	  (1u << 4)
#define OFS_SET_MTIME	  (1u << 5)
#define OFS_SET_ATIME_NOW (1u << 6)
#define OFS_SET_MTIME_NOW (1u << 7)
#define OFS_SET_CTIME	  (1u << 8)
#define OFS_SET_HANDLE	  (1u << 9) /* through a handle open for writing (ftruncate) */

struct ofs_setattr {
	unsigned mask;
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t atime_ns, mtime_ns, ctime_ns;
};

/* ofs_core.c: a's attributes as stat(2) gives them (times before 1970
 * with tv_nsec in [0, 1e9)), for the FUSE adapter's replies. */
struct stat;
void ofs_attr_to_stat(const struct ofs_attr *a, struct stat *st);

/* ofs_kv.c: reads of the applied state and commits (see its top) */
struct kv_txn;
/* Called once per key of a scan, in key order. key and val are borrowed for the
 * call. Return 0 to go on, 1 to stop early, or a negative errno to abort. */
typedef int (*ofs_scan_fn)(void *arg, const void *key, size_t key_len, const void *val,
			   size_t val_len, uint64_t version);
/* Reads key: on success *val is malloc'ed (the caller frees it), *len and
 * *version are set. -ENOENT if absent, -ENOMEM, -EIO. Any thread. */
int ofs_kv_get(struct ofs *o, const void *key, size_t key_len, void **val, size_t *len,
	       uint64_t *version);
/* Calls fn for every key that starts with prefix and is > after (if
 * after_len > 0), in order, on one view. Returns 0, fn's negative result,
 * -ENOMEM or -EIO. */
int ofs_kv_scan(struct ofs *o, const void *prefix, size_t prefix_len, const void *after,
		size_t after_len, ofs_scan_fn fn, void *arg);
/* The same on a store other than the node's (the lock keeper's), or on a
 * view the caller holds (the replay's view of an earlier state). */
int ofs_kv_scan_store(struct kv_store *kv, const void *prefix, size_t prefix_len, const void *after,
		      size_t after_len, ofs_scan_fn fn, void *arg);
struct kv_view;
int ofs_kv_scan_view(struct kv_view *v, const void *prefix, size_t prefix_len, const void *after,
		     size_t after_len, ofs_scan_fn fn, void *arg);
/* Proposes t (borrowed) and returns once it is applied here: 0 applied,
 * -EAGAIN a guard failed (nothing written), -EIO another status, or the
 * backend's error (-EROFS, -ETIMEDOUT, -ESHUTDOWN, -ENOMEM). */
int ofs_commit(struct ofs *o, struct kv_txn *t);
/* kv_txn_add_* with a schema key (copied, value too): 0, -ENOMEM, or -EFBIG
 * if the transaction would be over the KV's limits. On error t is unchanged,
 * so the caller must give up on it: an operation left out is a wrong
 * transaction. */
#define OFS__MUST_CHECK __attribute__((warn_unused_result))
OFS__MUST_CHECK int ofs_add_put(struct kv_txn *t, const struct ofs_key *k, const void *val,
				size_t len);
OFS__MUST_CHECK int ofs_add_delete(struct kv_txn *t, const struct ofs_key *k);
OFS__MUST_CHECK int ofs_add_delete_prefix(struct kv_txn *t, const struct ofs_key *prefix);
OFS__MUST_CHECK int ofs_add_guard_absent(struct kv_txn *t, const struct ofs_key *k);
OFS__MUST_CHECK int ofs_add_guard_version(struct kv_txn *t, const struct ofs_key *k,
					  uint64_t version);

/* ofs_core.c */
int64_t ofs_now_ns(void);
int ofs_read_attr(struct ofs *o, uint64_t ino, struct ofs_attr *a, uint64_t *version);
int ofs_read_dirent(struct ofs *o, uint64_t parent, const char *name, size_t len, uint64_t *child,
		    uint8_t *dtype, uint64_t *version);
OFS__MUST_CHECK int ofs_put_attr(struct kv_txn *t, const struct ofs_attr *a);
/* Runs build(o, t, arg) on an empty transaction and commits it, retrying
 * from an empty one on a failed guard. An empty result commits nothing. */
int ofs_run_txn(struct ofs *o, int (*build)(struct ofs *o, struct kv_txn *t, void *arg), void *arg);
/* Usage of the whole cluster as this node sees it. */
int ofs_usage(struct ofs *o, int64_t *bytes, int64_t *inodes);
/* ofs_noderecs.c: the node records as the state has them now, for this
 * node's share `share`: the usage summed over every node (the root counts
 * as one inode), this node's largest counter, whether one of its records
 * did not decode (bad), and the share's record and version if it exists
 * (found). 0, -ENOMEM or -EIO. */
struct ofs_nr_answer {
	int64_t bytes, inodes;
	uint64_t max_next;
	bool bad, found;
	struct ofs_noderec r;
	uint64_t ver;
};
int ofs_noderecs_read(struct ofs *o, unsigned share, struct ofs_nr_answer *a);
/* The apply hook's part: entry idx (applied) moves the table along. */
void ofs_noderecs_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t);
/* The state was replaced: the table is read again by the next read. */
void ofs_noderecs_forget(struct ofs *o);
/* Adds to this node's record in t (read, guard, put): to the share the
 * running ofs_run_txn holds (schema.h), share 0 outside one. *ino_out, if
 * not NULL, receives a fresh inode number. */
int ofs_noderec_update(struct ofs *o, struct kv_txn *t, int64_t dbytes, int64_t dinodes,
		       uint64_t *ino_out);
/* A fresh inode number for a create committed later (ofs_pending.c), never
 * handed out again: 0, -EIO, -ENOSPC (2^48 made by this node). */
int ofs_ino_reserve(struct ofs *o, uint64_t *ino);
/* Node-local inode table. onode_get takes a reference (creating the entry if
 * create), onode_put drops it and frees an unused entry. */
struct onode *ofs_onode_get(struct ofs *o, uint64_t ino, bool create);
void ofs_onode_put(struct ofs *o, struct onode *n);
void ofs_lookup_ref(struct ofs *o, uint64_t ino); /* +1 kernel reference */
void ofs_forget(struct ofs *o, uint64_t ino, uint64_t nlookup);
/* Whether the kernel holds ino: looked up and not forgotten, or open (the
 * root always). An inotify watch pins its inode in the kernel, so an inode
 * not held has none. */
bool ofs_ino_known(struct ofs *o, uint64_t ino);
/*
 * Brackets a request whose reply gives the kernel an inode (lookup, the
 * creates, link, readdirplus): begin before it reads the state, end after
 * its ofs_lookup_ref. While one runs, an inode the kernel does not hold yet
 * may be about to be cached with what the request read: its invalidations
 * are not skipped (inval.c).
 */
void ofs_entry_reply_begin(struct ofs *o);
void ofs_entry_reply_end(struct ofs *o);
/* Is ino open on this node (an unlink must keep it as an orphan)? */
bool ofs_is_open(struct ofs *o, uint64_t ino);
/*
 * Frees this node's orphans (files left without links) marked at least
 * orphan_grace_ms before now_ns that are neither open here nor known to the
 * kernel here: inode, data, xattrs, mark and usage, up to 256 per
 * transaction. Returns how many were freed or -errno. The reaper thread
 * (started with the mount) calls it every second.
 */
int ofs_reap(struct ofs *o, int64_t now_ns);
int ofs_reaper_start(struct ofs *o);
void ofs_reaper_stop(struct ofs *o);
/* Creates the root if missing; removes this node's orphans. */
int ofs_bootstrap(struct ofs *o);
void ofs_count(struct ofs *o, uint64_t *counter, uint64_t n);

/* ofs_perm.c: the caller's rights against attributes just read; 0, -EACCES
 * (mode bits) or -EPERM (ownership, sticky directories) */
#define OFS_MAY_EXEC  1u
#define OFS_MAY_WRITE 2u
#define OFS_MAY_READ  4u
bool ofs_cred_in_group(const struct ofs_cred *cr, uint32_t gid);
/* may: OFS_MAY_* bits, all required. */
int ofs_perm(const struct ofs_cred *cr, const struct ofs_attr *a, unsigned may);
/* Looking a name up in dir. */
int ofs_perm_search(const struct ofs_cred *cr, const struct ofs_attr *dir);
/* Adding a name to dir. */
int ofs_perm_create(const struct ofs_cred *cr, const struct ofs_attr *dir);
/* Removing or replacing victim's name in dir (sticky bit included). */
int ofs_perm_delete(const struct ofs_cred *cr, const struct ofs_attr *dir,
		    const struct ofs_attr *victim);
/* The mode a new inode of mode made in dir gets (setgid rules). */
uint32_t ofs_perm_new_mode(const struct ofs_cred *cr, const struct ofs_attr *dir, uint32_t mode);
/* Setting sa's fields on a; *mode receives the mode to set (sa->mode with
 * the setgid bit cleared where Linux clears it). */
int ofs_perm_setattr(const struct ofs_cred *cr, const struct ofs_attr *a,
		     const struct ofs_setattr *sa, uint32_t *mode);

/* ofs_ops.c: namespace, attributes, xattrs. Changes take the caller's
 * credentials (borrowed for the call) and check them on every build. */
int ofs_op_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out);
int ofs_op_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out);
int ofs_op_setattr(struct ofs *o, uint64_t ino, const struct ofs_setattr *sa,
		   const struct ofs_cred *cr, struct ofs_attr *out);
int ofs_op_mknod(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, uint32_t rdev,
		 const struct ofs_cred *cr, struct ofs_attr *out);
int ofs_op_symlink(struct ofs *o, uint64_t parent, const char *name, const char *target,
		   const struct ofs_cred *cr, struct ofs_attr *out);
int ofs_op_link(struct ofs *o, uint64_t ino, uint64_t newparent, const char *newname,
		const struct ofs_cred *cr, struct ofs_attr *out);
int ofs_op_unlink(struct ofs *o, uint64_t parent, const char *name, const struct ofs_cred *cr);
int ofs_op_rmdir(struct ofs *o, uint64_t parent, const char *name, const struct ofs_cred *cr);
int ofs_op_rename(struct ofs *o, uint64_t parent, const char *name, uint64_t newparent,
		  const char *newname, unsigned flags, const struct ofs_cred *cr);
/* Copies the target into buf (cap bytes, NUL-terminated); returns its length. */
int ofs_op_readlink(struct ofs *o, uint64_t ino, char *buf, size_t cap);
int ofs_op_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out);
void ofs_dirent_list_free(struct ofs_dirent_list *l);
int ofs_op_setxattr(struct ofs *o, uint64_t ino, const char *name, const void *val, size_t len,
		    int flags, const struct ofs_cred *cr);
/* Value into buf; returns its length. cap 0 asks for the length only. -ERANGE if
 * cap is too small, -ENODATA if absent. */
int ofs_op_getxattr(struct ofs *o, uint64_t ino, const char *name, void *buf, size_t cap);
int ofs_op_listxattr(struct ofs *o, uint64_t ino, char *buf, size_t cap);
int ofs_op_removexattr(struct ofs *o, uint64_t ino, const char *name, const struct ofs_cred *cr);
struct ofs_statfs {
	uint64_t bsize, blocks, bfree, files, ffree, namemax;
};
int ofs_op_statfs(struct ofs *o, struct ofs_statfs *s);

/* Registers a new handle (released by ofs_op_release or ofs_destroy). */
void ofs_file_track(struct ofs *o, struct ofs_file *f);

/* ofs_data.c: open files, buffered writes, commits */
int ofs_op_create(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, int flags,
		  const struct ofs_cred *cr, struct ofs_attr *out, struct ofs_file **f);
/* Opening for writing checks write permission (reads are the kernel's to check). */
int ofs_op_open(struct ofs *o, uint64_t ino, int flags, const struct ofs_cred *cr,
		struct ofs_file **f);
ssize_t ofs_op_read(struct ofs *o, struct ofs_file *f, void *buf, size_t size, uint64_t off);
ssize_t ofs_op_write(struct ofs *o, struct ofs_file *f, const void *buf, size_t size, uint64_t off);
int ofs_op_flush(struct ofs *o, struct ofs_file *f);
int ofs_op_release(struct ofs *o, struct ofs_file *f);
int ofs_op_fallocate(struct ofs *o, struct ofs_file *f, int mode, uint64_t off, uint64_t len);
/* Commits ino's buffered writes if it has any (setattr, fsync, unmount). */
int ofs_flush_ino(struct ofs *o, uint64_t ino);
/* Size of ino as this node sees it, buffered writes included. */
void ofs_overlay_attr(struct ofs *o, struct ofs_attr *a);
void ofs_flush_all(struct ofs *o);

/* The open handle of ino (new, counted in the inode table), as ofs_op_open
 * makes it once the rights are checked; O_TRUNC marks a lazy truncation. */
int ofs_open_node(struct ofs *o, uint64_t ino, int flags, struct ofs_file **out);
/* 0 if a change may be tried now, -EROFS if this node knows it has no
 * quorum (see ofs_data.c). */
int ofs_can_write(struct ofs *o);
/* A flush of handle f on the close of a process, pid (0: unknown): as
 * ofs_op_flush, except that a handle that created or truncated its file
 * but wrote nothing defers its commit while that process still has the
 * file open for the same access on another descriptor (see ofs_pending.c). */
int ofs_op_flush_by(struct ofs *o, struct ofs_file *f, int pid);

/* ofs_pending.c: creates committed with their file's data (see its top) */
struct ofs_pending;
/* The create of a regular file without O_EXCL (ofs_op_create's): the name
 * made on this node only, committed with the data at flush/fsync/close. */
int ofs_pending_create(struct ofs *o, uint64_t parent, const char *name, uint32_t mode, int flags,
		       const struct ofs_cred *cr, struct ofs_attr *out, struct ofs_file **f);
/* The attributes of a pending create: by inode, or by name in parent.
 * 0 with *a filled (size 0: the caller lays the buffer over it), or -ENOENT. */
int ofs_pending_by_ino(struct ofs *o, uint64_t ino, struct ofs_attr *a);
int ofs_pending_by_name(struct ofs *o, uint64_t parent, const char *name, size_t len,
			struct ofs_attr *a);
/* The attributes of ino: a pending create's, else the applied state's
 * (ofs_read_attr). */
int ofs_attr_any(struct ofs *o, uint64_t ino, struct ofs_attr *a, uint64_t *version);
/* Adds the pending creates in dir to a listing (a name also in the applied
 * state shows this node's file, as a lookup does). */
int ofs_pending_list(struct ofs *o, uint64_t dir, struct ofs_dirent_list *l);
/* Commits the pending create of name in parent / of every name in dir, if
 * any, before a change that needs them in the applied state. 0 or -errno. */
int ofs_pending_commit_name(struct ofs *o, uint64_t parent, const char *name, size_t len);
/* The same for the file ino, before a lock is taken on it: -ESTALE if
 * another node's file took its name first. */
int ofs_pending_commit_ino(struct ofs *o, uint64_t ino);
int ofs_pending_commit_dir(struct ofs *o, uint64_t dir);
/* The part of n's commit that makes its name (n->mu held): the entry
 * guarded absent (-EEXIST if another node's file has it now), the parent's
 * times, the inode guarded absent, and the node's record (dbytes, one more
 * inode). */
int ofs_pending_build(struct ofs *o, struct kv_txn *t, const struct onode *n, int64_t dbytes,
		      int64_t now);
/* The attributes the create gave n (n->pend set, n->mu held). */
void ofs_pending_attr(const struct onode *n, struct ofs_attr *a);
/* Forgets n's pending create (committed, or given up); ofs.lock and n->mu
 * held. */
void ofs_pending_drop_locked(struct ofs *o, struct onode *n);
void ofs_pending_free_all(struct ofs *o); /* ofs_destroy */
/* Whether process pid has ino open for access accmode (O_ACCMODE bits) on
 * a descriptor whose path is under mount (canonical), read from /proc.
 * False if that cannot be told. */
bool ofs_proc_has_open(int pid, const char *mount, uint64_t ino, int accmode);

/* ofs_fold.c: setattrs folded into the commit of the file's buffer (see
 * its top) */
struct ofs_fold;
/* Folds sa into the pending commit of ino if cr's thread is writing it
 * here: 1 with *out the attributes this node shows now, 0 if it cannot be
 * folded (the caller commits it as usual), or the -errno of the
 * permission check, made now against the attributes this node shows. */
int ofs_fold_setattr(struct ofs *o, uint64_t ino, const struct ofs_setattr *sa,
		     const struct ofs_cred *cr, struct ofs_attr *out);
/* The folded setattrs of n over a, for the commit at time now (n->mu
 * held): each checked again against the attributes it lands on. 0, or the
 * -errno of a check that no longer passes (the commit fails). */
int ofs_fold_apply(const struct onode *n, struct ofs_attr *a, int64_t now);
/* The same for what this node shows before the commit; a change whose
 * check fails on it is left out. */
void ofs_fold_view(const struct onode *n, struct ofs_attr *a);
/* A write into n's buffer (n->mu held): the commit's mtime is its. */
void ofs_fold_note_write(struct onode *n);
/* Forgets n's folded setattrs (committed, or given up); n->mu held or n
 * unreachable. */
void ofs_fold_drop(struct onode *n);
/* The fields of sa other than the size over a: the mode as
 * ofs_perm_setattr gave it, "now" times and the ctime at now. */
void ofs_setattr_apply(struct ofs_attr *a, const struct ofs_setattr *sa, uint32_t mode,
		       int64_t now);
/* a with n's buffer laid over it: the size and the folded setattrs (n->mu
 * held). */
void ofs_overlay_locked(const struct onode *n, struct ofs_attr *a);

/* ofs_virt.c: /.omnifs */
int ofs_virt_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out);
int ofs_virt_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out);
int ofs_virt_open(struct ofs *o, uint64_t ino, int flags, struct ofs_file **f);
int ofs_virt_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out);
int ofs_dirent_list_add(struct ofs_dirent_list *l, uint64_t ino, uint8_t dtype, const char *name,
			size_t len);

/* inval.c: the queue (no FUSE) */
/* Queues OFS_INVAL_ALL (the state was replaced, or the queue overflowed). */
void ofs_inval_queue_all(struct ofs *o);
/* Pops one queued item (the thread, tests); false if the queue is empty. A
 * pending OFS_INVAL_ALL comes first. The caller frees item->name and item,
 * and reports it with ofs_inval_done once the kernel was told. */
bool ofs_inval_pop(struct ofs *o, struct inval_item **item);
/* Counts a popped item as done (ofs_wait_invalidations waits for this). */
void ofs_inval_done(struct ofs *o, const struct inval_item *item);
/* A popped item the kernel could not be told of (ofs_inval_expand failed):
 * queued again as OFS_INVAL_ALL, still counted as not done. */
void ofs_inval_retry(struct ofs *o, const struct inval_item *item);
/* Frees every queued item (teardown). */
void ofs_inval_drain(struct ofs *o);
/* How many changes were ever queued; ofs_wait_invalidations_upto(o, n, ms)
 * waits until the first n of them are done (0, or -ETIMEDOUT). */
uint64_t ofs_inval_queued(struct ofs *o);
int ofs_wait_invalidations_upto(struct ofs *o, uint64_t upto, unsigned timeout_ms);
/* What item means for the kernel, as calls of fn (name NULL: invalidate
 * inode ino; else the entry name of directory ino, name borrowed for the
 * call): OFS_INVAL_DIR and OFS_INVAL_ALL read the state for the names in the
 * directories. Runs on the invalidation thread with no lock held across fn.
 * 0, or -ENOMEM / -EIO (the caller queues the item again, coarser). */
typedef void (*ofs_inval_fn)(void *ctx, uint64_t ino, const char *name, size_t name_len);
int ofs_inval_expand(struct ofs *o, const struct inval_item *item, ofs_inval_fn fn, void *ctx);
/* ofs_core.c: the inodes the kernel knows now (looked up or open here), the
 * root first, in a malloc'd array (the caller frees it); NULL if out of
 * memory. */
uint64_t *ofs_known_inodes(struct ofs *o, size_t *n);

/* replay.c: replaying other nodes' changes on the mount (no FUSE) */
void ofs_replay_init(struct ofs *o);  /* ofs_new */
void ofs_replay_close(struct ofs *o); /* ofs_destroy */
/* The apply hook's part (replica thread): queues t's replay, if it has one
 * and was not proposed here, and keeps a view of the state after it. */
void ofs_replay_on_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t, bool proposed_here);
void ofs_replay_state_replaced(struct ofs *o);
/* Starts queueing / stops, waking ofs_replay_pop. */
void ofs_replay_enable(struct ofs *o);
void ofs_replay_disable(struct ofs *o);
/* The next item to replay (ownership passes), waiting for one until
 * until_ns (CLOCK_REALTIME as ofs_now_ns; 0: as long as it takes); NULL at
 * that time or once disabled (*stopped then true). Items that waited past
 * OFS_REPLAY_MAX_DELAY_MS are dropped. The item returned is the current
 * one (ofs_replay_set_current) until the next call. */
struct ofs_replay_item *ofs_replay_pop(struct ofs *o, int64_t until_ns, bool *stopped);
void ofs_replay_drain(struct ofs *o);
/* Publishes the item being replayed (NULL: none) to the handlers. it is
 * borrowed until the next call. */
void ofs_replay_set_current(struct ofs *o, const struct ofs_replay_item *it);
/* For a replay's lookup: 1 with *out the inode the name held before the
 * change, -ENOENT if it did not exist then, 0 if that is not known (answer
 * from the state now). *now: *out holds the inode's attributes as they are
 * now (it still exists), not the view's. */
int ofs_replay_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out,
		      bool *now);
/* For a replay's getattr: 1 with *out the inode (its attributes now if it
 * still exists, *now then true; else as it was before the change), 0 if
 * not known. */
int ofs_replay_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out, bool *now);
/* For a replay's create, mknod, mkdir or symlink: the entry now (*now
 * true), or as the create left it. 0 or -errno. */
int ofs_replay_created(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out,
		       bool *now);
/* The path of name in directory ino (name NULL: of ino itself) relative to
 * the mount, "/a/b", into buf: in the state before it's change (the one the
 * kernel has when the items before it were replayed), or the current state
 * (it NULL or without a view). 0, -ENOENT (gone), -ENAMETOOLONG, -EIO. */
int ofs_replay_path(struct ofs *o, const struct ofs_replay_item *it, uint64_t ino, const char *name,
		    char *buf, size_t cap);
void ofs_replay_item_free(struct ofs_replay_item *it); /* and its view */
/* Whether no watch on the mount could see the events of it (replay.c). */
bool ofs_replay_unseen(struct ofs *o, const struct ofs_replay_item *it);
/* Counts one replay done lat_us after its apply (the status percentiles). */
void ofs_replay_note_latency(struct ofs *o, uint64_t lat_us);
/* Under rp_lock: the percentiles into st. */
void ofs_replay_latency_locked(struct ofs *o, struct ofs_stats *st);

/* fuse_replay.c: the replay thread, started by ofs_mount, stopped by
 * ofs_unmount (and by the waker before the loop ends), and the handlers that
 * answer its requests: ofs_replay_wrap fills ops with them around base. */
struct fuse_lowlevel_ops;
void ofs_replay_wrap(struct ofs *o, struct fuse_lowlevel_ops *ops,
		     const struct fuse_lowlevel_ops *base);
int ofs_replay_start(struct ofs *o);
void ofs_replay_stop(struct ofs *o);

/* fuse_inval.c: the thread that tells the kernel, started by ofs_mount and
 * stopped (then the queue drained) by ofs_unmount */
int ofs_inval_start(struct ofs *o);
void ofs_inval_stop(struct ofs *o);

/* txn_shape.c: what a transaction writes (see its top). Only the first two
 * names written and removed are kept, all are counted; the ops point into
 * the transaction. */
struct ofs_txn_shape {
	const struct kv_op *put[2], *del[2]; /* names written, removed */
	uint32_t n_put, n_del;
	const struct kv_op *attr; /* the first inode attributes written (NULL: none) */
	uint64_t attr_ino;	  /* the one inode whose attributes are written (0: none
				   * or several) */
	uint64_t block_ino;	  /* the first file whose blocks change (0: none) */
	uint64_t xattr_ino;	  /* the first inode whose xattrs change (0: none) */
	bool frees_inode;	  /* an inode's attributes are deleted */
};
void ofs_txn_shape(const struct kv_txn *t, struct ofs_txn_shape *s);

/* ofs_note.c: the change note of a commit (see its top) */
/* Attaches t's change note, made from t's writes and the state it was
 * built on; a transaction that needs none gets none. Returns 0, -ENOMEM,
 * or another -errno if no note could be made (the caller commits without
 * one and says so). */
int ofs_note_attach(struct ofs *o, struct kv_txn *t);
/* The uid of the request this thread serves now (the FUSE adapter). */
void ofs_note_set_caller(uint32_t uid);

/* ofs_names.c: the name table (see its top). New (NULL if out of memory),
 * destroy; remember that ino was seen as name (borrowed, len bytes) in
 * directory parent; recall it: its length (0: none remembered), the name
 * into name (OFS_NAME_MAX bytes, not terminated) and its directory into
 * *parent. A hint, to check against the state. Any thread. */
struct ofs_names *ofs_names_new(void);
void ofs_names_destroy(struct ofs_names **n);
void ofs_names_learn(struct ofs *o, uint64_t ino, uint64_t parent, const char *name, size_t len);
size_t ofs_names_recall(struct ofs *o, uint64_t ino, uint64_t *parent, char *name);
/* A scan's callback (ofs_kv_scan, ofs_kv_scan_view) over directory entries
 * that stops at the first naming f->ino: f->len is then its length (else
 * 0, as the caller set it), f->name the name, terminated, f->parent its
 * directory. */
struct ofs_name_find {
	uint64_t ino; /* looked for */
	uint64_t parent;
	size_t len;
	char name[OFS_NAME_MAX + 1];
};
int ofs_names_find(void *arg, const void *key, size_t key_len, const void *val, size_t val_len,
		   uint64_t version);

/* errno for the caller of a failed commit */
int ofs_commit_errno(int rc);

/* ofs_metrics.c: times a FUSE handler. OFS_FOP_TIMED(o, OFS_FOP_X) as a
 * handler's first statement observes, when the handler returns, the time
 * since into o's histogram of that request (nothing without o->metrics):
 * two clock reads and two relaxed atomic adds. The variable is used only by
 * its cleanup, which clang counts as unused. */
struct ofs_op_timer {
	struct metrics_histogram *h; /* NULL: not timed */
	uint64_t t0_ns;
};
struct ofs_op_timer ofs_op_timer_start(struct ofs *o, enum ofs_fuse_op op);
void ofs_op_timer_end(struct ofs_op_timer *t);
#define OFS_FOP_TIMED(o, op)                                                                    \
	struct ofs_op_timer ofs_op_timer__ __attribute__((cleanup(ofs_op_timer_end), unused)) = \
		ofs_op_timer_start((o), (op))

#endif /* OMNIFS_OFS_INT_H */
