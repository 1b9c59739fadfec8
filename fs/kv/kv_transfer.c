/*
 * State transfer for a node too far behind to catch up from the log: the
 * source streams its state in bounded chunks from one view, the receiver
 * stages them and switches to them in one batch.
 *
 * Chunk (little-endian): u8 version (1), u8 flags (bit 0: last), u64 the
 * source's applied index, u32 cursor length + cursor (the key the chunk
 * continues after; empty for the first), u32 record count, then per record
 * u32 key length + stored key, u32 value length + stored value. Stored keys
 * and values are the raw ones (namespace byte, version prefix, dedup
 * records), so the receiver ends up byte-identical.
 *
 * The receiver stages into the state column family that is not live and
 * keeps its progress (source index, cursor, complete) in the "import" meta
 * key, written in the same batch as each chunk, so an interrupted transfer
 * resumes at the last stored chunk. kv_import_finish flips the "active"
 * pointer and the applied index in one synced batch; readers, which read the
 * pointer under their snapshot, see the old state or the new one.
 *
 * This file moves bytes; it does not decide when a transfer is needed or talk
 * to the network (the replica does).
 */
#include "kv.h"
#include "kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CHUNK_VERSION	 KV__CHUNK_VERSION
#define CHUNK_FLAG_LAST	 KV__CHUNK_FLAG_LAST
#define CHUNK_HDR_MIN	 KV__CHUNK_HDR_MIN
#define PROGRESS_VERSION 1

/* --- source side ------------------------------------------------------------------- */

struct growbuf {
	uint8_t *p;
	size_t len, cap;
};

static int grow(struct growbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void put_bytes(struct growbuf *b, const void *data, size_t len)
{
	put_le32(b->p + b->len, (uint32_t)len);
	if (len)
		memcpy(b->p + b->len + 4, data, len);
	b->len += 4 + len;
}

int kv__key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int kv_export_chunk(struct kv_view *v, const void *after, size_t after_len, size_t max_bytes,
		    struct kv_buf *chunk, struct kv_buf *next, bool *last)
{
	struct growbuf b = {0};
	uint8_t last_key[KV__STATE_KEY_MAX];
	size_t last_len = 0;
	uint32_t n = 0;
	int rc;

	memset(chunk, 0, sizeof(*chunk));
	memset(next, 0, sizeof(*next));
	*last = false;
	if (after_len > KV__STATE_KEY_MAX || (after_len && !after))
		return -EINVAL;
	rc = grow(&b, CHUNK_HDR_MIN + after_len);
	if (rc)
		return rc;
	b.p[0] = CHUNK_VERSION;
	b.p[1] = 0;
	put_le64(b.p + 2, v->applied);
	b.len = 10;
	put_bytes(&b, after, after_len);
	size_t count_at = b.len;
	b.len += 4;

	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(v->s->db, v->ropts, v->cf);
	if (!it) {
		free(b.p);
		return -ENOMEM;
	}
	if (after_len) {
		rocksdb_iter_seek(it, after, after_len);
		size_t klen;
		if (rocksdb_iter_valid(it)) {
			const char *k = rocksdb_iter_key(it, &klen);
			if (!kv__key_cmp(k, klen, after, after_len))
				rocksdb_iter_next(it);
		}
	} else {
		rocksdb_iter_seek_to_first(it);
	}
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *val = rocksdb_iter_value(it, &vlen);
		if (klen > KV__STATE_KEY_MAX) {
			log_err("kv: %s: export: corrupt key (%zu bytes)", v->s->path, klen);
			rc = -EIO;
			break;
		}
		size_t rec = 8 + klen + vlen;
		if (n > 0 && b.len + rec > max_bytes)
			break;
		rc = grow(&b, rec);
		if (rc)
			break;
		put_bytes(&b, k, klen);
		put_bytes(&b, val, vlen);
		memcpy(last_key, k, klen);
		last_len = klen;
		n++;
	}
	if (!rc) {
		char *e = NULL;
		*last = !rocksdb_iter_valid(it);
		rocksdb_iter_get_error(it, &e);
		if (e) {
			log_err("kv: %s: export: %s", v->s->path, e);
			rocksdb_free(e);
			rc = -EIO;
		}
	}
	rocksdb_iter_destroy(it);
	if (!rc && !n && after_len) {
		memcpy(last_key, after, after_len);
		last_len = after_len;
	}
	if (!rc) {
		next->data = malloc(last_len ? last_len : 1);
		if (!next->data)
			rc = -ENOMEM;
	}
	if (rc) {
		free(b.p);
		*last = false;
		return rc;
	}
	memcpy(next->data, last_key, last_len);
	next->len = last_len;
	b.p[1] = *last ? CHUNK_FLAG_LAST : 0;
	put_le32(b.p + count_at, n);
	chunk->data = b.p;
	chunk->len = b.len;
	return 0;
}

/* --- receiving side ----------------------------------------------------------------- */

struct progress {
	bool has;
	bool complete;
	uint64_t src;
	uint8_t cursor[KV__STATE_KEY_MAX];
	size_t cursor_len;
};

static int progress_load(struct kv_store *s, struct progress *p)
{
	char *e = NULL;
	size_t len;
	char *raw = rocksdb_get_cf(s->db, s->ropts, s->cf_meta, KV__M_IMPORT, strlen(KV__M_IMPORT),
				   &len, &e);
	memset(p, 0, sizeof(*p));
	if (e)
		return kv__rocks_fail(s, "import: read progress", e);
	if (!raw)
		return 0;
	const uint8_t *r = (const uint8_t *)raw;
	bool ok = len >= 14 && r[0] == PROGRESS_VERSION && r[1] <= 1;
	if (ok) {
		p->complete = r[1];
		p->src = get_le64(r + 2);
		p->cursor_len = get_le32(r + 10);
		ok = p->cursor_len <= KV__STATE_KEY_MAX && len == 14 + p->cursor_len;
	}
	if (ok)
		memcpy(p->cursor, r + 14, p->cursor_len);
	rocksdb_free(raw);
	if (!ok) {
		kv__set_errmsg(s, "corrupt import progress");
		return -EIO;
	}
	p->has = true;
	return 0;
}

static void progress_put(struct kv_store *s, rocksdb_writebatch_t *wb, const struct progress *p)
{
	uint8_t r[14 + KV__STATE_KEY_MAX];
	r[0] = PROGRESS_VERSION;
	r[1] = p->complete;
	put_le64(r + 2, p->src);
	put_le32(r + 10, (uint32_t)p->cursor_len);
	memcpy(r + 14, p->cursor, p->cursor_len);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_IMPORT, strlen(KV__M_IMPORT),
				  (const char *)r, 14 + p->cursor_len);
}

/* Every stored key starts with a namespace byte below 0xff. */
static void clear_cf(rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *cf)
{
	rocksdb_writebatch_delete_range_cf(wb, cf, "", 0, "\xff", 1);
}

static rocksdb_column_family_handle_t *staging(struct kv_store *s)
{
	return s->cf_state[1 - s->active];
}

int kv_import_begin(struct kv_store *s, uint64_t src_applied_idx)
{
	struct progress p;
	if (src_applied_idx <= atomic_load(&s->applied))
		return -ESTALE;
	int rc = progress_load(s, &p);
	if (rc)
		return rc;
	if (p.has && p.src == src_applied_idx)
		return 0; /* resume */
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	clear_cf(wb, staging(s));
	memset(&p, 0, sizeof(p));
	p.src = src_applied_idx;
	progress_put(s, wb, &p);
	rc = kv__write(s, wb, true, "import: begin");
	rocksdb_writebatch_destroy(wb);
	return rc;
}

int kv_import_progress(struct kv_store *s, bool *in_progress, uint64_t *src_applied_idx,
		       struct kv_buf *cursor, bool *complete)
{
	struct progress p;
	int rc = progress_load(s, &p);
	if (rc)
		return rc;
	*in_progress = p.has;
	*src_applied_idx = p.src;
	*complete = p.complete;
	if (cursor) {
		cursor->data = malloc(p.cursor_len ? p.cursor_len : 1);
		if (!cursor->data)
			return -ENOMEM;
		memcpy(cursor->data, p.cursor, p.cursor_len);
		cursor->len = p.cursor_len;
	}
	return 0;
}

/* A record must be one the source could have written (kv_int.h). */
bool kv__record_ok(const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen)
{
	struct kv__dedup d;
	if (klen < 2 || klen > KV__STATE_KEY_MAX)
		return false;
	if (k[0] == KV__NS_DEDUP)
		return klen == 9 && kv__dedup_decode((const char *)v, vlen, &d);
	if (k[0] == KV__NS_KEY)
		return vlen >= KV__VERSION_LEN && vlen - KV__VERSION_LEN <= KV_MAX_VALUE_LEN;
	return false;
}

bool kv__take(const uint8_t **p, const uint8_t *end, uint32_t max, const uint8_t **bytes,
	      uint32_t *n)
{
	if (end - *p < 4)
		return false;
	uint32_t len = get_le32(*p);
	if (len > max || (size_t)(end - *p - 4) < len)
		return false;
	*bytes = *p + 4;
	*n = len;
	*p += 4 + len;
	return true;
}

int kv_import_chunk(struct kv_store *s, const void *chunk, size_t len)
{
	const uint8_t *p = chunk, *end = p + len, *after, *k = NULL, *v = NULL;
	uint32_t after_len, n, klen = 0, vlen = 0;
	struct progress pr;

	int rc = progress_load(s, &pr);
	if (rc)
		return rc;
	if (!pr.has || pr.complete) {
		kv__set_errmsg(s, "import: no import waiting for chunks");
		return -EINVAL;
	}
	if (!chunk || len < CHUNK_HDR_MIN || p[0] != CHUNK_VERSION || (p[1] & ~CHUNK_FLAG_LAST))
		goto out_bad;
	uint8_t flags = p[1];
	uint64_t src = get_le64(p + 2);
	p += 10;
	if (!kv__take(&p, end, KV__STATE_KEY_MAX, &after, &after_len) || end - p < 4)
		goto out_bad;
	n = get_le32(p);
	p += 4;
	if (n > (size_t)(end - p) / 8)
		goto out_bad;
	if (src != pr.src || kv__key_cmp(after, after_len, pr.cursor, pr.cursor_len)) {
		kv__set_errmsg(s, "import: chunk of @%llu is not the next one of @%llu",
			       (unsigned long long)src, (unsigned long long)pr.src);
		return -ESTALE;
	}
	/* Validate everything before writing anything. */
	const uint8_t *records = p, *prev = after;
	uint32_t prev_len = after_len;
	for (uint32_t i = 0; i < n; i++) {
		if (!kv__take(&p, end, KV__STATE_KEY_MAX, &k, &klen) ||
		    !kv__take(&p, end, KV__VERSION_LEN + KV_MAX_VALUE_LEN, &v, &vlen) ||
		    !kv__record_ok(k, klen, v, vlen))
			goto out_bad;
		if ((i > 0 || prev_len) && kv__key_cmp(k, klen, prev, prev_len) <= 0)
			goto out_bad;
		prev = k;
		prev_len = klen;
	}
	if (p != end)
		goto out_bad;

	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	p = records;
	for (uint32_t i = 0; i < n; i++) {
		kv__take(&p, end, KV__STATE_KEY_MAX, &k, &klen);
		kv__take(&p, end, KV__VERSION_LEN + KV_MAX_VALUE_LEN, &v, &vlen);
		rocksdb_writebatch_put_cf(wb, staging(s), (const char *)k, klen, (const char *)v,
					  vlen);
	}
	memcpy(pr.cursor, prev, prev_len);
	pr.cursor_len = prev_len;
	pr.complete = flags & CHUNK_FLAG_LAST;
	progress_put(s, wb, &pr);
	/* Not flushed: the progress is in the chunk's batch, so what a crash
	 * leaves is some earlier chunk with its own progress, and a restarted
	 * receiver asks for what follows it (a flush per 256 KiB chunk would
	 * make a table file of each). The switch flushes. */
	rc = kv__write(s, wb, false, "import: chunk");
	rocksdb_writebatch_destroy(wb);
	return rc;
out_bad:
	kv__set_errmsg(s, "import: malformed chunk");
	return -EBADMSG;
}

int kv_import_finish(struct kv_store *s)
{
	struct progress p;
	int rc = progress_load(s, &p);
	if (rc)
		return rc;
	if (!p.has || !p.complete) {
		kv__set_errmsg(s, "import: no complete import to finish");
		return -EINVAL;
	}
	if (p.src <= atomic_load(&s->applied)) {
		kv__set_errmsg(s, "import: state already at @%llu, import is of @%llu",
			       (unsigned long long)atomic_load(&s->applied),
			       (unsigned long long)p.src);
		return -ESTALE;
	}
	int old = s->active;
	uint8_t act = (uint8_t)(1 - old), idx[8];
	put_le64(idx, p.src);
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_ACTIVE, strlen(KV__M_ACTIVE),
				  (const char *)&act, 1);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_APPLIED, strlen(KV__M_APPLIED),
				  (const char *)idx, sizeof(idx));
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, KV__M_IMPORT, strlen(KV__M_IMPORT));
	/* The entries below p.src were never applied here: the feed is whole
	 * from p.src only. */
	kv__feed_reset(s, wb, p.src);
	/* Odd from before the switch until the old state is cleared: a kv_get
	 * that overlaps any of it reads again on a view. */
	atomic_fetch_add(&s->swap_seq, 1);
	rc = kv__write(s, wb, true, "import: switch");
	rocksdb_writebatch_destroy(wb);
	if (rc) {
		atomic_fetch_add(&s->swap_seq, 1);
		return rc;
	}
	__atomic_store_n(&s->active, act, __ATOMIC_RELEASE);
	atomic_store(&s->applied, p.src);

	/* The old state is garbage now (views opened before keep their
	 * snapshot of it). A failure here only leaves it for the next import. */
	wb = rocksdb_writebatch_create();
	if (wb) {
		clear_cf(wb, s->cf_state[old]);
		if (kv__write(s, wb, false, "import: clear old state"))
			log_warn("kv: %s", s->errmsg);
		rocksdb_writebatch_destroy(wb);
	}
	atomic_fetch_add(&s->swap_seq, 1);
	return 0;
}

int kv_import_abort(struct kv_store *s)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	clear_cf(wb, staging(s));
	rocksdb_writebatch_delete_cf(wb, s->cf_meta, KV__M_IMPORT, strlen(KV__M_IMPORT));
	int rc = kv__write(s, wb, true, "import: abort");
	rocksdb_writebatch_destroy(wb);
	return rc;
}
