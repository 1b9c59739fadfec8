/*
 * The replicated KV's database: opening <data_dir>/state (rocks_util checks
 * its identity, format and cluster; this file creates a fresh state), the
 * shared error and meta helpers, and the read side (views, point reads,
 * prefix iterators).
 *
 * A view pins one RocksDB snapshot and reads the "active" pointer and the
 * applied index under it, so it sees one state at one applied index even
 * while the writer applies entries or switches to an imported state. It
 * deliberately caches nothing across views: RocksDB is the only copy.
 */
#include "kv.h"
#include "kv_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const cf_names[3] = {"default", "state0", "state1"};
static const struct rocks_kind state_kind = {
	.name = "KV state",
	.magic = "omnifsKV",
	.format = KV_FORMAT,
	.cf_names = cf_names,
	.n_cfs = 3,
	/* The consensus log holds every entry applied since the last flush:
	 * a crash loses only applies the replica redoes from it, and each
	 * byte of the state is written once (to its table files) instead of
	 * twice. See kv_sync. */
	.no_wal = true,
};

void kv__set_errmsg(struct kv_store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
}

int kv__rocks_fail(struct kv_store *s, const char *what, char *e)
{
	return rocks_error(e, s->errmsg, sizeof(s->errmsg), what);
}

int kv__write(struct kv_store *s, rocksdb_writebatch_t *wb, bool sync, const char *what)
{
	char *e = NULL;
	rocksdb_write(s->db, s->rdb.wnosync, wb, &e);
	if (e)
		return kv__rocks_fail(s, what, e);
	return sync ? kv_sync(s) : 0;
}

/* Reads a u64 meta value at ropts; errors go to msg (the writer's errmsg or
 * a reader's own buffer). */
static int meta_u64(struct kv_store *s, rocksdb_readoptions_t *ropts, const char *key, uint64_t *v,
		    bool *found, char *msg, size_t msg_len)
{
	char *e = NULL;
	size_t len;
	char *raw = rocksdb_get_cf(s->db, ropts, s->cf_meta, key, strlen(key), &len, &e);
	*v = 0;
	if (found)
		*found = raw != NULL;
	if (e)
		return rocks_error(e, msg, msg_len, "read");
	if (!raw)
		return 0;
	bool ok = len == 8;
	if (ok)
		*v = get_le64((const uint8_t *)raw);
	rocksdb_free(raw);
	if (!ok) {
		rocks_msg(msg, msg_len, "corrupt %s", key);
		return -EIO;
	}
	return 0;
}

int kv__meta_get_u64(struct kv_store *s, rocksdb_readoptions_t *ropts, const char *key, uint64_t *v,
		     bool *found)
{
	return meta_u64(s, ropts, key, v, found, s->errmsg, sizeof(s->errmsg));
}

bool kv__split_value(const char *raw, size_t len, uint64_t *version, const char **val,
		     size_t *val_len)
{
	if (len < KV__VERSION_LEN)
		return false;
	*version = get_le64((const uint8_t *)raw);
	*val = raw + KV__VERSION_LEN;
	*val_len = len - KV__VERSION_LEN;
	return true;
}

int kv_sync(struct kv_store *s)
{
	/* Not beside the background flush: its mark would land in the
	 * memtables this one checks are empty. The writer alone asks for
	 * that one, so none starts meanwhile. */
	pthread_mutex_lock(&s->flush_mu);
	while (s->flush_busy)
		pthread_cond_wait(&s->flush_cv, &s->flush_mu);
	s->flush_wanted = false; /* this one covers it */
	pthread_mutex_unlock(&s->flush_mu);
	return rocks_flush_all(&s->rdb, s->path, s->errmsg, sizeof(s->errmsg));
}

static void *flusher_main(void *arg)
{
	struct kv_store *s = arg;
	pthread_setname_np(pthread_self(), "ofs-kv-flush");
	pthread_mutex_lock(&s->flush_mu);
	for (;;) {
		while (!s->flush_wanted && !s->flush_stop)
			pthread_cond_wait(&s->flush_cv, &s->flush_mu);
		if (s->flush_stop)
			break;
		s->flush_wanted = false;
		s->flush_busy = true;
		pthread_mutex_unlock(&s->flush_mu);
		char err[KV_ERR_MAX];
		/* A flush that failed stops RocksDB's writes: the writer's next
		 * one fails and says why. */
		if (rocks_flush_start(&s->rdb, s->path, err, sizeof(err)))
			log_warn("kv: %s", err);
		pthread_mutex_lock(&s->flush_mu);
		s->flush_busy = false;
		pthread_cond_broadcast(&s->flush_cv);
	}
	pthread_mutex_unlock(&s->flush_mu);
	return NULL;
}

int kv_sync_start(struct kv_store *s)
{
	int rc = 0;
	pthread_mutex_lock(&s->flush_mu);
	if (!s->flusher_on) {
		rc = -pthread_create(&s->flusher, NULL, flusher_main, s);
		s->flusher_on = rc == 0;
	}
	if (rc == 0) {
		s->flush_wanted = true;
		pthread_cond_signal(&s->flush_cv);
	}
	pthread_mutex_unlock(&s->flush_mu);
	return rc;
}

static void stop_flusher(struct kv_store *s)
{
	pthread_mutex_lock(&s->flush_mu);
	s->flush_stop = true;
	pthread_cond_broadcast(&s->flush_cv);
	bool on = s->flusher_on;
	pthread_mutex_unlock(&s->flush_mu);
	if (on)
		pthread_join(s->flusher, NULL);
	s->flusher_on = false;
}

int kv_durable_applied_idx(struct kv_store *s, uint64_t *idx)
{
	/* The persisted tier skips the memtables while they hold writes not
	 * flushed: what a crash now would leave. */
	return kv__meta_get_u64(s, s->durable_ropts, KV__M_APPLIED, idx, NULL);
}

const char *kv_errmsg(const struct kv_store *s)
{
	return s->errmsg;
}

uint64_t kv_applied_idx(struct kv_store *s)
{
	return atomic_load(&s->applied);
}

/* --- opening ---------------------------------------------------------------------- */

/* A fresh state: identity, active = 0, applied = 0, in one synced batch. */
static int create_state(struct kv_store *s, uint64_t cluster_id)
{
	uint8_t zero8[8] = {0}, zero1 = 0;
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	rocks_identity_put(&s->rdb, wb, &state_kind, cluster_id);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_ACTIVE, strlen(KV__M_ACTIVE),
				  (const char *)&zero1, 1);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_APPLIED, strlen(KV__M_APPLIED),
				  (const char *)zero8, 8);
	int rc = kv__write(s, wb, true, "create");
	rocksdb_writebatch_destroy(wb);
	return rc;
}

/* Reads "active" (0 or 1) at ropts; errors go to msg. */
static int read_active(struct kv_store *s, rocksdb_readoptions_t *ropts, int *active, char *msg,
		       size_t msg_len)
{
	char *e = NULL;
	size_t len;
	char *v = rocksdb_get_cf(s->db, ropts, s->cf_meta, KV__M_ACTIVE, strlen(KV__M_ACTIVE), &len,
				 &e);
	if (e)
		return rocks_error(e, msg, msg_len, "read");
	bool ok = v && len == 1 && (v[0] == 0 || v[0] == 1);
	*active = ok ? v[0] : 0;
	rocksdb_free(v);
	if (!ok) {
		rocks_msg(msg, msg_len, "corrupt active state pointer");
		return -EIO;
	}
	return 0;
}

int kv_open(struct kv_store **out, const char *path, uint64_t cluster_id, char *err, size_t err_len)
{
	bool fresh;
	int rc;

	rocks_msg(err, err_len, "%s", "");
	*out = NULL;
	struct kv_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->flush_mu, NULL);
	pthread_cond_init(&s->flush_cv, NULL);
	s->path = strdup(path);
	if (!s->path) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = rocks_db_open(&s->rdb, path, &state_kind, cluster_id, &fresh, err, err_len);
	if (rc)
		goto out_close;
	s->db = s->rdb.db;
	s->ropts = s->rdb.ropts;
	s->durable_ropts = rocksdb_readoptions_create();
	if (!s->durable_ropts) {
		rc = -ENOMEM;
		goto out_close;
	}
	rocksdb_readoptions_set_verify_checksums(s->durable_ropts, 1);
	rocksdb_readoptions_set_read_tier(s->durable_ropts, KV__PERSISTED_TIER);
	s->cf_meta = s->rdb.cfs[0];
	s->cf_state[0] = s->rdb.cfs[1];
	s->cf_state[1] = s->rdb.cfs[2];

	uint64_t applied;
	rc = fresh ? create_state(s, cluster_id) : 0;
	if (!rc)
		rc = read_active(s, s->ropts, &s->active, s->errmsg, sizeof(s->errmsg));
	if (!rc)
		rc = kv__meta_get_u64(s, s->ropts, KV__M_APPLIED, &applied, NULL);
	if (!rc) {
		atomic_store(&s->applied, applied);
		rc = kv__feed_open(s);
	}
	if (rc) {
		rocks_msg(err, err_len, "%s: %s", path, s->errmsg);
		goto out_close;
	}
	atomic_store(&s->applied, applied);
	s->errmsg[0] = '\0';
	s->opened = true;
	*out = s;
	return 0;
out_close:
	kv_close(&s);
	return rc;
}

void kv_close(struct kv_store **sp)
{
	struct kv_store *s = *sp;
	if (!s)
		return;
	stop_flusher(s);
	/* So that a restart need not redo the last applies (RocksDB would
	 * flush at close too, but say nothing if it failed). */
	if (s->opened && kv_sync(s) != 0)
		log_warn("kv: %s; the next start applies those entries again", s->errmsg);
	pthread_mutex_destroy(&s->flush_mu);
	pthread_cond_destroy(&s->flush_cv);
	if (s->durable_ropts)
		rocksdb_readoptions_destroy(s->durable_ropts);
	rocks_db_close(&s->rdb);
	free(s->path);
	free(s);
	*sp = NULL;
}

/* --- views and reads ----------------------------------------------------------- */

/* The number after "name=" in RocksDB's table-properties text, 0 if none. */
static uint64_t table_prop(const char *text, const char *name)
{
	const char *p = strstr(text, name);
	return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

uint64_t kv_view_size_estimate(struct kv_view *v)
{
	rocksdb_t *db = v->s->db;
	uint64_t mem = 0, bytes = 0;
	char *props = rocksdb_property_value_cf(db, v->cf, "rocksdb.aggregated-table-properties");
	if (props) {
		bytes = table_prop(props, "raw key size=") + table_prop(props, "raw value size=");
		rocksdb_free(props);
	}
	if (rocksdb_property_int_cf(db, v->cf, "rocksdb.cur-size-all-mem-tables", &mem) == 0)
		bytes += mem;
	return bytes;
}

/*
 * Takes v's snapshot and tells which state family is live in it. The
 * writer's copy serves when no switch (kv_import_finish, swap_seq odd)
 * overlapped the snapshot's creation, as in kv_get; else the pointer is
 * read under the snapshot. The read it spares is of a key written only by
 * imports, so it sat in a table file: a lookup of the files' index and
 * filter per view, and a follower opens a view or two for every change it
 * replays (4% of its replica thread's time, one writer of small files).
 */
static int snapshot_active(struct kv_store *s, struct kv_view *v, int *active, char *msg,
			   size_t msg_len)
{
	uint32_t seq = atomic_load_explicit(&s->swap_seq, memory_order_acquire);
	int a = __atomic_load_n(&s->active, __ATOMIC_ACQUIRE);
	v->snap = rocksdb_create_snapshot(s->db);
	rocksdb_readoptions_set_snapshot(v->ropts, v->snap);
	atomic_thread_fence(memory_order_acquire);
	if (!(seq & 1) && atomic_load_explicit(&s->swap_seq, memory_order_relaxed) == seq) {
		*active = a;
		return 0;
	}
	return read_active(s, v->ropts, active, msg, msg_len);
}

int kv_view_open(struct kv_store *s, struct kv_view **out)
{
	struct kv_view *v = calloc(1, sizeof(*v));
	*out = NULL;
	if (!v)
		return -ENOMEM;
	v->s = s;
	v->ropts = rocksdb_readoptions_create();
	if (!v->ropts) {
		free(v);
		return -ENOMEM;
	}
	rocksdb_readoptions_set_verify_checksums(v->ropts, 1);
	/* errmsg belongs to the writer: a reader's failure is logged instead. */
	char msg[256];
	int active;
	int rc = snapshot_active(s, v, &active, msg, sizeof(msg));
	if (!rc)
		rc = meta_u64(s, v->ropts, KV__M_APPLIED, &v->applied, NULL, msg, sizeof(msg));
	if (rc) {
		log_err("kv: %s: view: %s", s->path, msg);
		kv_view_close(&v);
		return rc;
	}
	v->cf = s->cf_state[active];
	*out = v;
	return 0;
}

void kv_view_close(struct kv_view **vp)
{
	struct kv_view *v = *vp;
	if (!v)
		return;
	if (v->snap)
		rocksdb_release_snapshot(v->s->db, v->snap);
	rocksdb_readoptions_destroy(v->ropts);
	free(v);
	*vp = NULL;
}

uint64_t kv_view_applied_idx(const struct kv_view *v)
{
	return v->applied;
}

/* Reads key from family cf at ropts: kv_view_get's contract. */
static int state_get(struct kv_store *s, rocksdb_readoptions_t *ropts,
		     rocksdb_column_family_handle_t *cf, const void *key, size_t key_len,
		     void **value, size_t *value_len, uint64_t *version)
{
	uint8_t k[KV__STATE_KEY_MAX];
	if (!key_len || key_len > KV_MAX_KEY_LEN)
		return -ENOENT; /* such a key can never be stored */
	k[0] = KV__NS_KEY;
	memcpy(k + 1, key, key_len);
	char *e = NULL;
	size_t len;
	char *raw = rocksdb_get_cf(s->db, ropts, cf, (const char *)k, key_len + 1, &len, &e);
	if (e) {
		log_err("kv: %s: read: %s", s->path, e);
		rocksdb_free(e);
		return -EIO;
	}
	if (!raw)
		return -ENOENT;
	uint64_t ver;
	const char *val;
	size_t vlen;
	if (!kv__split_value(raw, len, &ver, &val, &vlen)) {
		rocksdb_free(raw);
		log_err("kv: %s: corrupt value (%zu bytes)", s->path, len);
		return -EIO;
	}
	/* The value moves to the front of RocksDB's malloc'd copy, which the
	 * caller then frees with free() (rocksdb_free is free). */
	memmove(raw, val, vlen);
	if (version)
		*version = ver;
	if (value_len)
		*value_len = vlen;
	if (value)
		*value = raw;
	else
		rocksdb_free(raw);
	return 0;
}

int kv_view_get(struct kv_view *v, const void *key, size_t key_len, void **value, size_t *value_len,
		uint64_t *version)
{
	return state_get(v->s, v->ropts, v->cf, key, key_len, value, value_len, version);
}

/*
 * One key needs no snapshot: a RocksDB read of the latest state is
 * consistent by itself. What it must not miss is a switch of the live
 * family (kv_import_finish) between reading "active" and reading the key:
 * the read counts only if swap_seq was even and unchanged around it, else
 * it is done again on a view, which reads the pointer under its snapshot.
 * This spares the filesystem's point reads a snapshot and two reads of the
 * meta family each.
 */
int kv_get(struct kv_store *s, const void *key, size_t key_len, void **value, size_t *value_len,
	   uint64_t *version)
{
	uint32_t seq = atomic_load_explicit(&s->swap_seq, memory_order_acquire);
	if (!(seq & 1)) {
		int active = __atomic_load_n(&s->active, __ATOMIC_ACQUIRE);
		void *val = NULL;
		size_t len = 0;
		uint64_t ver = 0;
		int rc = state_get(s, s->ropts, s->cf_state[active], key, key_len,
				   value ? &val : NULL, &len, &ver);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->swap_seq, memory_order_relaxed) == seq) {
			if (rc == 0) {
				if (value)
					*value = val;
				if (value_len)
					*value_len = len;
				if (version)
					*version = ver;
			}
			return rc;
		}
		free(val);
	}
	struct kv_view *v;
	int rc = kv_view_open(s, &v);
	if (rc)
		return rc;
	rc = kv_view_get(v, key, key_len, value, value_len, version);
	kv_view_close(&v);
	return rc;
}

int kv_view_dedup_hwm(struct kv_view *v, uint64_t node_id, uint64_t *seq)
{
	uint8_t k[9];
	char *e = NULL;
	size_t len;
	struct kv__dedup d;
	if (!node_id)
		return -ENOENT;
	k[0] = KV__NS_DEDUP;
	put_be64(k + 1, node_id);
	char *raw = rocksdb_get_cf(v->s->db, v->ropts, v->cf, (const char *)k, sizeof(k), &len, &e);
	if (e) {
		log_err("kv: %s: read: %s", v->s->path, e);
		rocksdb_free(e);
		return -EIO;
	}
	if (!raw)
		return -ENOENT;
	bool ok = kv__dedup_decode(raw, len, &d);
	rocksdb_free(raw);
	if (!ok) {
		log_err("kv: %s: corrupt dedup record of n%llu", v->s->path,
			(unsigned long long)node_id);
		return -EIO;
	}
	*seq = d.hwm;
	return 0;
}

struct kv_iter {
	struct kv_view *v;
	rocksdb_iterator_t *it;
	uint8_t *prefix; /* namespace + prefix */
	size_t prefix_len;
	bool started;
	bool done; /* reached the end: never move the RocksDB iterator again */
};

int kv_iter_open(struct kv_view *v, const void *prefix, size_t prefix_len, const void *start,
		 size_t start_len, struct kv_iter **out)
{
	*out = NULL;
	if (prefix_len > KV_MAX_KEY_LEN || start_len > KV_MAX_KEY_LEN)
		return -EINVAL;
	struct kv_iter *it = calloc(1, sizeof(*it));
	uint8_t *seek = malloc(1 + (start_len > prefix_len ? start_len : prefix_len));
	if (!it || !seek)
		goto out_nomem;
	it->prefix = malloc(1 + prefix_len);
	if (!it->prefix)
		goto out_nomem;
	it->prefix[0] = KV__NS_KEY;
	if (prefix_len)
		memcpy(it->prefix + 1, prefix, prefix_len);
	it->prefix_len = 1 + prefix_len;
	it->v = v;
	it->it = rocksdb_create_iterator_cf(v->s->db, v->ropts, v->cf);
	if (!it->it)
		goto out_nomem;
	/* Seek to the larger of prefix and start. */
	size_t seek_len = it->prefix_len;
	memcpy(seek, it->prefix, it->prefix_len);
	if (start) {
		int c = memcmp(start, it->prefix + 1,
			       start_len < prefix_len ? start_len : prefix_len);
		if (c > 0 || (c == 0 && start_len > prefix_len)) {
			memcpy(seek + 1, start, start_len);
			seek_len = 1 + start_len;
		}
	}
	rocksdb_iter_seek(it->it, (const char *)seek, seek_len);
	free(seek);
	*out = it;
	return 0;
out_nomem:
	free(seek);
	kv_iter_close(&it);
	return -ENOMEM;
}

int kv_iter_next(struct kv_iter *it, const uint8_t **key, size_t *key_len, const uint8_t **value,
		 size_t *value_len, uint64_t *version)
{
	if (it->done)
		return 0;
	if (it->started)
		rocksdb_iter_next(it->it);
	it->started = true;
	it->done = true; /* until an item proves otherwise */
	if (!rocksdb_iter_valid(it->it)) {
		char *e = NULL;
		rocksdb_iter_get_error(it->it, &e);
		if (e) {
			log_err("kv: %s: iterate: %s", it->v->s->path, e);
			rocksdb_free(e);
			return -EIO;
		}
		return 0;
	}
	size_t klen, rlen;
	const char *k = rocksdb_iter_key(it->it, &klen);
	if (klen < it->prefix_len || memcmp(k, it->prefix, it->prefix_len))
		return 0;
	const char *raw = rocksdb_iter_value(it->it, &rlen), *val;
	uint64_t ver;
	size_t vlen;
	if (!kv__split_value(raw, rlen, &ver, &val, &vlen)) {
		log_err("kv: %s: corrupt value (%zu bytes)", it->v->s->path, rlen);
		return -EIO;
	}
	it->done = false;
	*key = (const uint8_t *)k + 1;
	*key_len = klen - 1;
	if (value)
		*value = (const uint8_t *)val;
	if (value_len)
		*value_len = vlen;
	if (version)
		*version = ver;
	return 1;
}

void kv_iter_close(struct kv_iter **itp)
{
	struct kv_iter *it = *itp;
	if (!it)
		return;
	if (it->it)
		rocksdb_iter_destroy(it->it);
	free(it->prefix);
	free(it);
	*itp = NULL;
}
