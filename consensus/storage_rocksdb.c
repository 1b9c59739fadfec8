/*
 * OmniPaxos storage on RocksDB (see storage_rocksdb.h for the layout).
 *
 * Every mutation is one WriteBatch written with sync on, so a call that
 * returned 0 survives a crash of the process or the machine, and a batch is
 * either wholly there after a crash or not at all. One exception: a batch
 * that only moves the decided index is written without fsync. Safety never
 * rests on a node remembering what was decided (decided entries are accepted
 * by a quorum, which is synced, and a new leader decides them again), so a
 * decided index lost in a machine crash merely comes back lower; and the
 * next synced write makes it durable anyway, since the journal is in order.
 * That saves one fsync per decision on every node. write_unsynced (the
 * leader's append, see storage.h) is the same batch without the sync, and
 * sync syncs the journal.
 *
 * The journal (log_journal.h) takes the place of RocksDB's own log: each
 * batch is appended to it, then written to the memtables with RocksDB's log
 * off, and a synced write syncs the journal. Its file is written in place,
 * so its fdatasync need not commit a new file size as RocksDB's appends do:
 * the sync every round waits for is about a third faster. When the journal
 * is full, the memtables are flushed to table files and it starts again; a
 * batch too large for it is written through RocksDB's log, synced, once the
 * journal is empty (so replay never puts an older batch over it). Opening
 * replays the journal, then flushes and empties it; closing does the same,
 * so a log closed cleanly holds nothing outside RocksDB's files.
 *
 * Scalars use this file's own fixed-width little-endian encodings and are
 * validated when read back: a value that does not decode is reported as
 * -EIO with its name, never trusted. Errors from RocksDB (a malloc'd string
 * through errptr) are copied into errmsg and freed.
 *
 * It deliberately keeps no cache of the scalars: the core reads them once at
 * start (load) and keeps its own. Only the bounds of the stored log (trimmed
 * index and log_end) are kept in memory, because appends need them.
 */
#include "storage_rocksdb.h"

#include "byteorder.h"
#include "log_journal.h"
#include "rocks_util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#define ENC_VERSION    1  /* first byte of each encoded ballot and stop-sign */
#define BALLOT_ENC_LEN 21 /* version, u32 config_id, u32 n, u32 priority, u64 pid */
#define SS_ENC_FIXED   21 /* version, config_id, n_nodes, read_q, write_q, metadata_len */
#define SS_ENC_MAX     (SS_ENC_FIXED + 8 * OPX_MAX_NODES + OPX_MAX_METADATA_LEN)

/* The column families: "default" (identity and scalars) and "log" (entries
 * by big-endian index). */
#define CF_META 0
#define CF_LOG	1

/* Keys of the default column family (and "identity", see rocks_util.c). */
#define K_PROMISE   "promise"
#define K_ACCEPTED  "accepted_round"
#define K_DECIDED   "decided_idx"
#define K_COMPACTED "compacted_idx"
#define K_TRIMMED   "trimmed_idx"
#define K_STOPSIGN  "stopsign"
#define K_SNAPSHOT  "snapshot"
#define K_CONFIG    "config_id" /* an index scalar; absent: 1, the first configuration */

struct opx_rocks {
	struct rocks_db rdb;
	rocksdb_writeoptions_t *wnowal; /* RocksDB's log off: the journal has the batch */
	rocksdb_flushoptions_t *fwait;	/* flushes that wait for their table files */
	rocksdb_flushoptions_t *fstart; /* flushes that are only started */
	struct log_journal *journal;
	bool flush_started; /* since the journal was last emptied */
	/* Stored entries are exactly [trimmed, log_end). */
	uint64_t trimmed;
	uint64_t log_end;
	char errmsg[256];	   /* "what: cause", without the path: callers add it */
	opx_rocks_sync_fn sync_fn; /* told how long each synced append took (or NULL) */
	void *sync_ctx;
};

static const char *const cf_names[2] = {"default", "log"};
static const struct rocks_kind log_kind = {
	.name = "consensus log",
	.magic = "omnifsLG",
	.format = OPX_ROCKS_FORMAT,
	.oldest_format = OPX_ROCKS_OLDEST_FORMAT,
	.cf_names = cf_names,
	.n_cfs = 2,
};

/* Takes a RocksDB error string (freed here) and keeps it in errmsg. */
static int rocks_fail(struct opx_rocks *r, const char *what, char *e)
{
	return rocks_error(e, r->errmsg, sizeof(r->errmsg), what);
}

static int corrupt(struct opx_rocks *r, const char *what)
{
	rocks_msg(r->errmsg, sizeof(r->errmsg), "corrupt %s", what);
	return -EIO;
}

/* --- encodings ------------------------------------------------------------ */

static void ballot_encode(uint8_t *p, const struct opx_ballot *b)
{
	p[0] = ENC_VERSION;
	put_le32(p + 1, b->config_id);
	put_le32(p + 5, b->n);
	put_le32(p + 9, b->priority);
	put_le64(p + 13, b->pid);
}

static bool ballot_decode(const char *v, size_t len, struct opx_ballot *b)
{
	const uint8_t *p = (const uint8_t *)v;
	if (len != BALLOT_ENC_LEN || p[0] != ENC_VERSION)
		return false;
	b->config_id = get_le32(p + 1);
	b->n = get_le32(p + 5);
	b->priority = get_le32(p + 9);
	b->pid = get_le64(p + 13);
	return true;
}

/* Returns the encoded length, or 0 if ss is out of range (never stored). */
static size_t ss_encode(uint8_t *p, const struct opx_stopsign *ss)
{
	if (ss->next.n_nodes > OPX_MAX_NODES || ss->metadata_len > OPX_MAX_METADATA_LEN)
		return 0;
	p[0] = ENC_VERSION;
	put_le32(p + 1, ss->next.config_id);
	put_le32(p + 5, ss->next.n_nodes);
	put_le32(p + 9, ss->next.read_quorum);
	put_le32(p + 13, ss->next.write_quorum);
	put_le32(p + 17, ss->metadata_len);
	size_t off = SS_ENC_FIXED;
	for (uint32_t i = 0; i < ss->next.n_nodes; i++, off += 8)
		put_le64(p + off, ss->next.nodes[i]);
	if (ss->metadata_len)
		memcpy(p + off, ss->metadata, ss->metadata_len);
	return off + ss->metadata_len;
}

static bool ss_decode(const char *v, size_t len, struct opx_stopsign *ss)
{
	const uint8_t *p = (const uint8_t *)v;
	if (len < SS_ENC_FIXED || p[0] != ENC_VERSION)
		return false;
	memset(ss, 0, sizeof(*ss));
	ss->next.config_id = get_le32(p + 1);
	ss->next.n_nodes = get_le32(p + 5);
	ss->next.read_quorum = get_le32(p + 9);
	ss->next.write_quorum = get_le32(p + 13);
	ss->metadata_len = get_le32(p + 17);
	if (ss->next.n_nodes > OPX_MAX_NODES || ss->metadata_len > OPX_MAX_METADATA_LEN)
		return false;
	size_t off = SS_ENC_FIXED;
	if (len != off + 8 * (size_t)ss->next.n_nodes + ss->metadata_len)
		return false;
	for (uint32_t i = 0; i < ss->next.n_nodes; i++, off += 8)
		ss->next.nodes[i] = get_le64(p + off);
	if (ss->metadata_len)
		memcpy(ss->metadata, p + off, ss->metadata_len);
	return true;
}

/* --- reading scalars ------------------------------------------------------ */

/* *val gets RocksDB's malloc'd value (free with rocksdb_free) or NULL if the
 * key is absent. Returns 0 or -EIO/-ENOSPC. */
static int meta_get(struct opx_rocks *r, const char *key, char **val, size_t *len)
{
	char *e = NULL;
	*val = rocksdb_get_cf(r->rdb.db, r->rdb.ropts, r->rdb.cfs[CF_META], key, strlen(key), len,
			      &e);
	if (e)
		return rocks_fail(r, "read", e);
	return 0;
}

/* An index scalar: *idx = 0 if absent. */
static int meta_get_idx(struct opx_rocks *r, const char *key, uint64_t *idx)
{
	char *v;
	size_t len;
	int rc = meta_get(r, key, &v, &len);
	if (rc)
		return rc;
	*idx = 0;
	if (!v)
		return 0;
	bool ok = len == 8;
	if (ok)
		*idx = get_le64((const uint8_t *)v);
	rocksdb_free(v);
	return ok ? 0 : corrupt(r, key);
}

static int meta_get_ballot(struct opx_rocks *r, const char *key, bool *has, struct opx_ballot *b)
{
	char *v;
	size_t len;
	int rc = meta_get(r, key, &v, &len);
	if (rc)
		return rc;
	memset(b, 0, sizeof(*b));
	*has = v != NULL;
	if (!v)
		return 0;
	bool ok = ballot_decode(v, len, b);
	rocksdb_free(v);
	return ok ? 0 : corrupt(r, key);
}

/* --- the vtable ------------------------------------------------------------ */

static void wb_put_meta(rocksdb_writebatch_t *wb, struct opx_rocks *r, const char *key,
			const void *v, size_t len)
{
	rocksdb_writebatch_put_cf(wb, r->rdb.cfs[CF_META], key, strlen(key), v, len);
}

static void wb_put_idx(rocksdb_writebatch_t *wb, struct opx_rocks *r, const char *key, uint64_t v)
{
	uint8_t b[8];
	put_le64(b, v);
	wb_put_meta(wb, r, key, b, sizeof(b));
}

/* The snapshot is stored after a version byte, so an empty snapshot is a
 * non-empty value and a stray value is recognised. */
static void wb_put_snapshot(rocksdb_writebatch_t *wb, struct opx_rocks *r, const uint8_t *data,
			    uint32_t len)
{
	static const char ver = ENC_VERSION;
	const char *parts[2] = {&ver, (const char *)data};
	size_t lens[2] = {1, len};
	const char *key = K_SNAPSHOT;
	size_t klen = strlen(key);
	rocksdb_writebatch_putv_cf(wb, r->rdb.cfs[CF_META], 1, &key, &klen, 2, parts, lens);
}

/* Puts entries at *end, *end + 1, ... Returns 0 or -EINVAL (too long). */
static int wb_append(rocksdb_writebatch_t *wb, struct opx_rocks *r, const struct opx_entry *es,
		     uint32_t n, uint64_t *end)
{
	for (uint32_t i = 0; i < n; i++) {
		if (es[i].len > OPX_MAX_ENTRY_LEN || (es[i].len && !es[i].data)) {
			rocks_msg(r->errmsg, sizeof(r->errmsg), "write: bad entry for @%llu",
				  (unsigned long long)*end);
			return -EINVAL;
		}
		char k[8];
		put_be64((uint8_t *)k, *end);
		rocksdb_writebatch_put_cf(wb, r->rdb.cfs[CF_LOG], k, 8, (const char *)es[i].data,
					  es[i].len);
		(*end)++;
	}
	return 0;
}

static void wb_delete_log(rocksdb_writebatch_t *wb, struct opx_rocks *r, uint64_t from, uint64_t to)
{
	if (from >= to)
		return;
	char a[8], b[8];
	put_be64((uint8_t *)a, from);
	put_be64((uint8_t *)b, to);
	rocksdb_writebatch_delete_range_cf(wb, r->rdb.cfs[CF_LOG], a, 8, b, 8);
}

static int add_op(rocksdb_writebatch_t *wb, struct opx_rocks *r, const struct opx_storage_op *op,
		  uint64_t *trimmed, uint64_t *end)
{
	uint8_t buf[SS_ENC_MAX];

	switch (op->type) {
	case OPX_OP_APPEND_ENTRIES:
		return wb_append(wb, r, op->u.append.entries, op->u.append.n, end);
	case OPX_OP_APPEND_ON_PREFIX: {
		uint64_t from = op->u.append.from_idx;
		const struct opx_entry *es = op->u.append.entries;
		uint32_t n = op->u.append.n;
		if (from > *end) {
			rocks_msg(r->errmsg, sizeof(r->errmsg),
				  "write: append on prefix @%llu would leave a gap after @%llu",
				  (unsigned long long)from, (unsigned long long)*end);
			return -EINVAL;
		}
		/* Entries below the trimmed index are covered by the snapshot:
		 * storing them again would break [trimmed, log_end). */
		if (from < *trimmed) {
			uint64_t skip = *trimmed - from;
			if (skip > n)
				skip = n;
			es += skip;
			n -= (uint32_t)skip;
			from = *trimmed;
		}
		wb_delete_log(wb, r, from, *end);
		*end = from;
		return wb_append(wb, r, es, n, end);
	}
	case OPX_OP_SET_PROMISE:
		ballot_encode(buf, &op->u.ballot);
		wb_put_meta(wb, r, K_PROMISE, buf, BALLOT_ENC_LEN);
		return 0;
	case OPX_OP_SET_ACCEPTED_ROUND:
		ballot_encode(buf, &op->u.ballot);
		wb_put_meta(wb, r, K_ACCEPTED, buf, BALLOT_ENC_LEN);
		return 0;
	case OPX_OP_SET_DECIDED_IDX:
		wb_put_idx(wb, r, K_DECIDED, op->u.idx);
		return 0;
	case OPX_OP_SET_COMPACTED_IDX:
		wb_put_idx(wb, r, K_COMPACTED, op->u.idx);
		return 0;
	case OPX_OP_TRIM:
		if (op->u.idx <= *trimmed)
			return 0;
		wb_delete_log(wb, r, *trimmed, op->u.idx);
		*trimmed = op->u.idx;
		if (*end < *trimmed)
			*end = *trimmed;
		wb_put_idx(wb, r, K_TRIMMED, *trimmed);
		return 0;
	case OPX_OP_SET_STOPSIGN:
		if (!op->u.ss) {
			rocksdb_writebatch_delete_cf(wb, r->rdb.cfs[CF_META], K_STOPSIGN,
						     strlen(K_STOPSIGN));
			return 0;
		} else {
			size_t len = ss_encode(buf, op->u.ss);
			if (!len) {
				rocks_msg(r->errmsg, sizeof(r->errmsg),
					  "write: stop-sign out of range");
				return -EINVAL;
			}
			wb_put_meta(wb, r, K_STOPSIGN, buf, len);
			return 0;
		}
	case OPX_OP_SET_SNAPSHOT:
		if (!op->u.snapshot.data)
			rocksdb_writebatch_delete_cf(wb, r->rdb.cfs[CF_META], K_SNAPSHOT,
						     strlen(K_SNAPSHOT));
		else
			wb_put_snapshot(wb, r, op->u.snapshot.data, op->u.snapshot.len);
		return 0;
	}
	rocks_msg(r->errmsg, sizeof(r->errmsg), "write: unknown operation %d", (int)op->type);
	return -EINVAL;
}

static void report_sync(struct opx_rocks *r, const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->sync_fn(r->sync_ctx,
		   (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000000000 + (t1.tv_nsec - t0->tv_nsec)));
}

/* Flushes the memtables of every column family with opts; stops at the
 * first error. */
static int flush_cfs(struct opx_rocks *r, const rocksdb_flushoptions_t *opts)
{
	for (size_t c = 0; c < r->rdb.n_cfs; c++) {
		char *e = NULL;
		rocksdb_flush_cf(r->rdb.db, opts, r->rdb.cfs[c], &e);
		if (e)
			return rocks_fail(r, "flush", e);
	}
	return 0;
}

/* Makes every batch the journal holds durable in RocksDB's table files, and
 * empties the journal. */
static int flush_journal(struct opx_rocks *r)
{
	int rc = flush_cfs(r, r->fwait);
	if (rc)
		return rc;
	rc = log_journal_reset(r->journal);
	if (rc)
		rocks_msg(r->errmsg, sizeof(r->errmsg), "journal reset: %s",
			  strerror(log_journal_errno(r->journal)));
	r->flush_started = false;
	return rc;
}

/* Once the journal is half full, starts a flush of the memtables without
 * waiting for it: when it is full, the flush that empties it then has only
 * what came since to write, and the write that found it full waits less (a
 * 256 MiB file written through the mount, 3 runs: 64-68 MiB/s with only the
 * flush at full, 66-69 with this; RocksDB's own log, in alternation with
 * this, 65-69 against 70-71). A failed start is left to that flush. */
static void start_flush_early(struct opx_rocks *r)
{
	if (r->flush_started || log_journal_used(r->journal) < LOG_JOURNAL_MAX_BYTES / 2)
		return;
	r->flush_started = true;
	(void)flush_cfs(r, r->fstart);
}

/* Writes wb durably (sync) or not: into the journal, then the memtables. */
static int commit(struct opx_rocks *r, rocksdb_writebatch_t *wb, bool sync)
{
	size_t len;
	const char *rep = rocksdb_writebatch_data(wb, &len);
	int rc = log_journal_append(r->journal, rep, len);
	if (rc == -ENOSPC) {
		rc = flush_journal(r);
		if (!rc)
			rc = log_journal_append(r->journal, rep, len);
	}
	char *e = NULL;
	if (rc == -E2BIG) {
		/* Through RocksDB's log, after everything the journal holds. */
		rc = log_journal_is_empty(r->journal) ? 0 : flush_journal(r);
		if (rc)
			return rc;
		rocksdb_write(r->rdb.db, r->rdb.wsync, wb, &e);
		return e ? rocks_fail(r, "write", e) : 0;
	}
	/* Durable before it is visible: a write that fails changes nothing. */
	if (!rc && sync)
		rc = log_journal_sync(r->journal);
	if (rc) {
		rocks_msg(r->errmsg, sizeof(r->errmsg), "journal write: %s",
			  rc == -ENOMEM ? strerror(ENOMEM)
					: strerror(log_journal_errno(r->journal)));
		return rc;
	}
	rocksdb_write(r->rdb.db, r->wnowal, wb, &e);
	if (e)
		return rocks_fail(r, "write", e);
	start_flush_early(r);
	return 0;
}

/* One WriteBatch of ops; synced unless it only moves the decided index (see
 * the top of this file) or the caller defers the sync (write_unsynced). */
static int rocks_write(struct opx_rocks *r, const struct opx_storage_op *ops, size_t n,
		       bool defer_sync)
{
	uint64_t trimmed = r->trimmed, end = r->log_end;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	int rc = 0;

	if (!wb)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_op(wb, r, &ops[i], &trimmed, &end);
	bool only_decided = n > 0;
	for (size_t i = 0; i < n; i++)
		only_decided = only_decided && ops[i].type == OPX_OP_SET_DECIDED_IDX;
	bool sync = !only_decided && !defer_sync;
	if (!rc) {
		struct timespec t0;
		bool timed = r->sync_fn && sync;
		if (timed)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = commit(r, wb, sync);
		if (timed && !rc)
			report_sync(r, &t0);
	}
	rocksdb_writebatch_destroy(wb);
	if (!rc) {
		r->trimmed = trimmed;
		r->log_end = end;
	}
	return rc;
}

static int rocks_write_atomically(void *impl, const struct opx_storage_op *ops, size_t n)
{
	return rocks_write(impl, ops, n, false);
}

static int rocks_write_unsynced(void *impl, const struct opx_storage_op *ops, size_t n)
{
	return rocks_write(impl, ops, n, true);
}

/* The journal holds the batches in order: syncing it makes every write so
 * far durable, as a synced write would have. */
static int rocks_sync(void *impl)
{
	struct opx_rocks *r = impl;
	struct timespec t0;
	if (r->sync_fn)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = log_journal_sync(r->journal);
	if (rc) {
		rocks_msg(r->errmsg, sizeof(r->errmsg), "journal sync: %s",
			  strerror(log_journal_errno(r->journal)));
		return rc;
	}
	if (r->sync_fn)
		report_sync(r, &t0);
	return 0;
}

static int rocks_load(void *impl, struct opx_storage_state *st)
{
	struct opx_rocks *r = impl;
	char *v;
	size_t len;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = meta_get_ballot(r, K_PROMISE, &st->has_promise, &st->promise);
	if (!rc)
		rc = meta_get_ballot(r, K_ACCEPTED, &st->has_accepted_round, &st->accepted_round);
	if (!rc)
		rc = meta_get_idx(r, K_DECIDED, &st->decided_idx);
	if (!rc)
		rc = meta_get_idx(r, K_COMPACTED, &st->compacted_idx);
	if (!rc)
		rc = meta_get(r, K_STOPSIGN, &v, &len);
	if (rc)
		return rc;
	if (v) {
		bool ok = ss_decode(v, len, &st->stopsign);
		rocksdb_free(v);
		if (!ok)
			return corrupt(r, K_STOPSIGN);
		st->has_stopsign = true;
	}
	rc = meta_get(r, K_SNAPSHOT, &v, &len);
	if (rc)
		return rc;
	st->has_snapshot = v != NULL;
	bool snap_ok = !v || (len >= 1 && v[0] == ENC_VERSION);
	rocksdb_free(v);
	if (!snap_ok)
		return corrupt(r, K_SNAPSHOT);
	st->log_end = r->log_end;
	return 0;
}

static void list_truncate(struct opx_entry_list *l, uint32_t n)
{
	while (l->n > n) {
		l->n--;
		free((void *)l->entries[l->n].data);
	}
}

/* One entry by a point lookup: the common read (each decided entry applied
 * as it comes), and far cheaper than an iterator's setup and teardown. */
static int get_one_entry(struct opx_rocks *r, uint64_t idx, struct opx_entry_list *out)
{
	char k[8];
	put_be64((uint8_t *)k, idx);
	char *e = NULL;
	size_t vlen;
	/* Copied once, into a buffer the list takes (a pinned read copies a
	 * value still in a memtable, where a decided entry mostly is, and the
	 * list copied it again: a tenth of the replica thread's time writing
	 * a large file). The C API's buffers are malloc'd. */
	char *val = rocksdb_get_cf(r->rdb.db, r->rdb.ropts, r->rdb.cfs[CF_LOG], k, 8, &vlen, &e);
	if (e)
		return rocks_fail(r, "read", e);
	if (!val) {
		rocks_msg(r->errmsg, sizeof(r->errmsg), "corrupt log: entry @%llu missing",
			  (unsigned long long)idx);
		return -EIO;
	}
	if (vlen > OPX_MAX_ENTRY_LEN) {
		rocksdb_free(val);
		return corrupt(r, "log entry (too long)");
	}
	return opx_entry_list_adopt(out, val, (uint32_t)vlen);
}

static int rocks_get_entries(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	struct opx_rocks *r = impl;
	uint32_t n0 = out->n;
	int rc = 0;

	if (from >= to || from < r->trimmed || to > r->log_end)
		return 0;
	if (to - from == 1)
		return get_one_entry(r, from, out);
	char k[8];
	put_be64((uint8_t *)k, from);
	rocksdb_iterator_t *it =
		rocksdb_create_iterator_cf(r->rdb.db, r->rdb.ropts, r->rdb.cfs[CF_LOG]);
	if (!it)
		return -ENOMEM;
	rocksdb_iter_seek(it, k, 8);
	for (uint64_t i = from; i < to; i++, rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *key = rocksdb_iter_valid(it) ? rocksdb_iter_key(it, &klen) : NULL;
		if (!key || klen != 8 || get_be64((const uint8_t *)key) != i) {
			char *e = NULL;
			rocksdb_iter_get_error(it, &e);
			if (e) {
				rc = rocks_fail(r, "read", e);
			} else {
				rocks_msg(r->errmsg, sizeof(r->errmsg),
					  "corrupt log: entry @%llu missing",
					  (unsigned long long)i);
				rc = -EIO;
			}
			break;
		}
		const char *val = rocksdb_iter_value(it, &vlen);
		if (vlen > OPX_MAX_ENTRY_LEN) {
			rc = corrupt(r, "log entry (too long)");
			break;
		}
		rc = opx_entry_list_push(out, val, (uint32_t)vlen);
		if (rc)
			break;
	}
	rocksdb_iter_destroy(it);
	if (rc)
		list_truncate(out, n0);
	return rc;
}

static int rocks_get_snapshot(void *impl, uint8_t **data, uint32_t *len)
{
	struct opx_rocks *r = impl;
	char *v;
	size_t vlen;
	int rc = meta_get(r, K_SNAPSHOT, &v, &vlen);

	*data = NULL;
	*len = 0;
	if (rc || !v)
		return rc;
	if (vlen < 1 || vlen - 1 > UINT32_MAX || v[0] != ENC_VERSION) {
		rocksdb_free(v);
		return corrupt(r, K_SNAPSHOT);
	}
	vlen--;
	*data = malloc(vlen ? vlen : 1);
	if (!*data) {
		rocksdb_free(v);
		return -ENOMEM;
	}
	memcpy(*data, v + 1, vlen);
	*len = (uint32_t)vlen;
	rocksdb_free(v);
	return 0;
}

static const struct opx_storage_ops rocks_ops = {
	.version = OPX_STORAGE_VERSION,
	.write_atomically = rocks_write_atomically,
	.load = rocks_load,
	.get_entries = rocks_get_entries,
	.get_snapshot = rocks_get_snapshot,
	.write_unsynced = rocks_write_unsynced,
	.sync = rocks_sync,
};

struct opx_storage opx_rocks_storage(struct opx_rocks *r)
{
	struct opx_storage st = {.ops = &rocks_ops, .impl = r};
	return st;
}

void opx_rocks_set_sync_fn(struct opx_rocks *r, opx_rocks_sync_fn fn, void *ctx)
{
	r->sync_fn = fn;
	r->sync_ctx = ctx;
}

const char *opx_rocks_errmsg(const struct opx_rocks *r)
{
	return r->errmsg;
}

/* --- opening ---------------------------------------------------------------- */

/* A new log's identity, or an older format's upgraded: alone, synced,
 * through RocksDB's own log: it is checked when the store opens, before the
 * journal is replayed (and the journal is empty yet, so no batch of it can be
 * replayed over this one). */
static int write_identity(struct opx_rocks *r, uint64_t cluster_id)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	rocks_identity_put(&r->rdb, wb, &log_kind, cluster_id);
	char *e = NULL;
	rocksdb_write(r->rdb.db, r->rdb.wsync, wb, &e);
	rocksdb_writebatch_destroy(wb);
	return e ? rocks_fail(r, "write identity", e) : 0;
}

/* A batch of the journal, replayed into the memtables. */
static int replay_batch(void *ctx, const char *rec, size_t len)
{
	struct opx_rocks *r = ctx;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create_from(rec, len);
	if (!wb)
		return -ENOMEM;
	char *e = NULL;
	rocksdb_write(r->rdb.db, r->wnowal, wb, &e);
	rocksdb_writebatch_destroy(wb);
	return e ? rocks_fail(r, "replay of the journal", e) : 0;
}

/* Opens the journal in the log's directory and replays it. */
static int open_journal(struct opx_rocks *r, const char *path, char *err, size_t err_len)
{
	r->wnowal = rocksdb_writeoptions_create();
	r->fwait = rocksdb_flushoptions_create();
	r->fstart = rocksdb_flushoptions_create();
	if (!r->wnowal || !r->fwait || !r->fstart)
		return -ENOMEM;
	rocksdb_writeoptions_disable_WAL(r->wnowal, 1);
	rocksdb_flushoptions_set_wait(r->fwait, 1);
	rocksdb_flushoptions_set_wait(r->fstart, 0);
	char jpath[4096];
	if ((size_t)snprintf(jpath, sizeof(jpath), "%s/journal", path) >= sizeof(jpath))
		return -ENAMETOOLONG;
	uint64_t replayed;
	int rc = log_journal_open(&r->journal, jpath, replay_batch, r, &replayed, err, err_len);
	if (rc == 0 && replayed > 0 && (rc = flush_journal(r)) != 0)
		rocks_msg(err, err_len, "%s: %s", path, r->errmsg);
	return rc;
}

/* Recovers trimmed and log_end, and checks the log starts where it should. */
static int recover_bounds(struct opx_rocks *r)
{
	int rc = meta_get_idx(r, K_TRIMMED, &r->trimmed);
	if (rc)
		return rc;
	rocksdb_iterator_t *it =
		rocksdb_create_iterator_cf(r->rdb.db, r->rdb.ropts, r->rdb.cfs[CF_LOG]);
	size_t klen;
	uint64_t first = 0, last = 0;
	bool any = false, bad = false;
	rocksdb_iter_seek_to_first(it);
	if (rocksdb_iter_valid(it)) {
		const char *k = rocksdb_iter_key(it, &klen);
		bad |= klen != 8;
		first = bad ? 0 : get_be64((const uint8_t *)k);
		rocksdb_iter_seek_to_last(it);
		k = rocksdb_iter_key(it, &klen);
		bad |= klen != 8;
		last = bad ? 0 : get_be64((const uint8_t *)k);
		any = true;
	}
	char *e = NULL;
	rocksdb_iter_get_error(it, &e);
	rocksdb_iter_destroy(it);
	if (e)
		return rocks_fail(r, "read", e);
	if (bad || (any && first != r->trimmed))
		return corrupt(r, "log (keys do not start at the trimmed index)");
	r->log_end = any ? last + 1 : r->trimmed;
	return 0;
}

int opx_rocks_open(struct opx_rocks **out, const char *path, uint64_t cluster_id, char *err,
		   size_t err_len)
{
	bool fresh;
	int rc;

	rocks_msg(err, err_len, "%s", "");
	*out = NULL;
	struct opx_rocks *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	rc = rocks_db_open(&r->rdb, path, &log_kind, cluster_id, &fresh, err, err_len);
	if (rc)
		goto out_free;
	if (!fresh && r->rdb.found_format < OPX_ROCKS_FORMAT) {
		rc = write_identity(r, cluster_id);
		if (rc) {
			rocks_msg(err, err_len, "%s: upgrading its format: %s", path, r->errmsg);
			goto out_free;
		}
	}
	rc = open_journal(r, path, err, err_len);
	if (rc) {
		if (!err[0])
			rocks_msg(err, err_len, "%s: journal: %s", path, strerror(-rc));
		goto out_free;
	}
	rc = fresh ? write_identity(r, cluster_id) : 0;
	if (!rc)
		rc = recover_bounds(r);
	if (rc) {
		rocks_msg(err, err_len, "%s: %s", path, r->errmsg);
		goto out_free;
	}
	r->errmsg[0] = '\0';
	*out = r;
	return 0;
out_free:
	opx_rocks_close(&r);
	return rc;
}

void opx_rocks_close(struct opx_rocks **rp)
{
	struct opx_rocks *r = *rp;
	if (!r)
		return;
	/* Leave nothing outside RocksDB's files (see the top of this file). */
	if (r->journal && !log_journal_is_empty(r->journal))
		(void)flush_journal(r);
	log_journal_close(&r->journal);
	rocks_db_close(&r->rdb);
	if (r->wnowal)
		rocksdb_writeoptions_destroy(r->wnowal);
	if (r->fwait)
		rocksdb_flushoptions_destroy(r->fwait);
	if (r->fstart)
		rocksdb_flushoptions_destroy(r->fstart);
	free(r);
	*rp = NULL;
}

int opx_rocks_config_id(struct opx_rocks *r, uint32_t *config_id)
{
	uint64_t v;
	int rc = meta_get_idx(r, K_CONFIG, &v);
	if (rc)
		return rc;
	if (v > UINT32_MAX)
		return corrupt(r, K_CONFIG);
	*config_id = v ? (uint32_t)v : 1;
	return 0;
}

int opx_rocks_reset(struct opx_rocks *r, uint32_t config_id)
{
	static const char *const scalars[] = {K_PROMISE, K_ACCEPTED, K_DECIDED, K_COMPACTED,
					      K_TRIMMED, K_STOPSIGN, K_SNAPSHOT};
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	wb_delete_log(wb, r, r->trimmed, r->log_end);
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
		rocksdb_writebatch_delete_cf(wb, r->rdb.cfs[CF_META], scalars[i],
					     strlen(scalars[i]));
	wb_put_idx(wb, r, K_CONFIG, config_id);
	int rc = commit(r, wb, true);
	rocksdb_writebatch_destroy(wb);
	if (rc)
		return rc;
	r->trimmed = 0;
	r->log_end = 0;
	return 0;
}
