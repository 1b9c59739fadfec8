/*
 * The change feed (kv.h): the notes of applied transactions, by log index,
 * in the meta column family (layout in kv_int.h).
 *
 * Writer side: kv_apply puts a record in the entry's own write batch, so a
 * record exists exactly when its entry was applied with a note, on every
 * node alike, and survives whatever the state survives. Bounds: the feed
 * keeps the last feed_keep indexes; it is trimmed in steps of an eighth of
 * that (one range delete per step, not one per entry) in the batch of the
 * entry that crosses the bound, with "feed-first" moved along. A state
 * transfer restarts it at the imported index (the entries in between were
 * never applied here).
 *
 * Reader side: kv_feed_read takes one RocksDB snapshot, so "feed-first",
 * the applied index and the records it returns agree. It does not wait for
 * new entries: the control command that serves watchers does.
 */
#include "kv.h"
#include "kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void feed_key(uint8_t k[KV__FEED_KEY_LEN], uint64_t idx)
{
	k[0] = KV__FEED_PREFIX;
	put_be64(k + 1, idx);
}

static void put_first(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t first)
{
	uint8_t v[8];
	put_le64(v, first);
	rocksdb_writebatch_put_cf(wb, s->cf_meta, KV__M_FEED_FIRST, strlen(KV__M_FEED_FIRST),
				  (const char *)v, sizeof(v));
}

void kv__feed_put(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t log_idx,
		  const struct kv_txn *t)
{
	if (!t->note)
		return;
	uint8_t k[KV__FEED_KEY_LEN], node[8];
	feed_key(k, log_idx);
	put_le64(node, t->node_id);
	const char *parts[2] = {(const char *)node, (const char *)t->note};
	size_t lens[2] = {sizeof(node), t->note_len};
	const char *kp = (const char *)k;
	size_t kl = sizeof(k);
	rocksdb_writebatch_putv_cf(wb, s->cf_meta, 1, &kp, &kl, 2, parts, lens);
}

void kv__feed_trim(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t log_idx)
{
	uint64_t applied = log_idx + 1, step = s->feed_keep / 8 + 1;
	if (applied <= s->feed_keep || applied - s->feed_keep < s->feed_first + step)
		return;
	uint64_t first = applied - s->feed_keep;
	uint8_t a[KV__FEED_KEY_LEN], b[KV__FEED_KEY_LEN];
	feed_key(a, s->feed_first);
	feed_key(b, first);
	rocksdb_writebatch_delete_range_cf(wb, s->cf_meta, (const char *)a, sizeof(a),
					   (const char *)b, sizeof(b));
	put_first(s, wb, first);
	/* The batch may yet fail; then the store is fail-stop and reopens
	 * with the old value, which is only more conservative. */
	s->feed_first = first;
}

void kv__feed_reset(struct kv_store *s, rocksdb_writebatch_t *wb, uint64_t first)
{
	uint8_t a[1] = {KV__FEED_PREFIX}, b[1] = {KV__FEED_PREFIX + 1};
	rocksdb_writebatch_delete_range_cf(wb, s->cf_meta, (const char *)a, 1, (const char *)b, 1);
	put_first(s, wb, first);
	s->feed_first = first;
}

int kv__feed_open(struct kv_store *s)
{
	bool found;
	s->feed_keep = KV_FEED_KEEP;
	int rc = kv__meta_get_u64(s, s->ropts, KV__M_FEED_FIRST, &s->feed_first, &found);
	if (rc || found)
		return rc;
	/* A state written before the feed existed: its feed starts now. */
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	if (!wb)
		return -ENOMEM;
	put_first(s, wb, atomic_load(&s->applied));
	s->feed_first = atomic_load(&s->applied);
	rc = kv__write(s, wb, true, "feed: start");
	rocksdb_writebatch_destroy(wb);
	return rc;
}

void kv_feed_set_keep(struct kv_store *s, uint64_t keep)
{
	s->feed_keep = keep ? keep : 1;
}

/* Reads a u64 meta value at ropts for a reader (errors are logged). */
static int reader_u64(struct kv_store *s, rocksdb_readoptions_t *ropts, const char *key,
		      uint64_t *v)
{
	char *e = NULL;
	size_t len;
	char *raw = rocksdb_get_cf(s->db, ropts, s->cf_meta, key, strlen(key), &len, &e);
	if (e) {
		log_err("kv: %s: feed: read %s: %s", s->path, key, e);
		rocksdb_free(e);
		return -EIO;
	}
	bool ok = raw && len == 8;
	if (ok)
		*v = get_le64((const uint8_t *)raw);
	rocksdb_free(raw);
	if (!ok) {
		log_err("kv: %s: feed: missing or corrupt %s", s->path, key);
		return -EIO;
	}
	return 0;
}

static int buf_append(struct kv_buf *b, size_t *cap, const void *data, size_t len)
{
	if (b->len + len > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < b->len + len)
			c *= 2;
		uint8_t *p = realloc(b->data, c);
		if (!p)
			return -ENOMEM;
		b->data = p;
		*cap = c;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

/* Appends the stored records of [since, applied) to out, up to max_bytes
 * (at least one); *next is where the caller goes on. */
static int read_records(struct kv_store *s, rocksdb_readoptions_t *ropts, uint64_t since,
			uint64_t applied, size_t max_bytes, struct kv_buf *out, size_t *cap,
			uint64_t *next)
{
	uint8_t k[KV__FEED_KEY_LEN];
	feed_key(k, since);
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ropts, s->cf_meta);
	if (!it)
		return -ENOMEM;
	int rc = 0;
	*next = applied;
	size_t start = out->len;
	for (rocksdb_iter_seek(it, (const char *)k, sizeof(k)); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &klen);
		if (klen != KV__FEED_KEY_LEN || key[0] != KV__FEED_PREFIX)
			break;
		uint64_t idx = get_be64(key + 1);
		if (idx >= applied)
			break;
		if (out->len - start >= max_bytes) {
			*next = idx; /* the rest next time */
			break;
		}
		const char *v = rocksdb_iter_value(it, &vlen);
		if (vlen < 8 || vlen - 8 > KV_NOTE_MAX_LEN) {
			log_err("kv: %s: feed: corrupt record @%llu (%zu bytes)", s->path,
				(unsigned long long)idx, vlen);
			rc = -EIO;
			break;
		}
		uint8_t hdr[KV_FEED_REC_HDR_LEN];
		put_le64(hdr, idx);
		memcpy(hdr + 8, v, 8); /* the node, as stored (LE) */
		put_le32(hdr + 16, (uint32_t)(vlen - 8));
		rc = buf_append(out, cap, hdr, sizeof(hdr));
		if (!rc)
			rc = buf_append(out, cap, v + 8, vlen - 8);
		if (rc)
			break;
	}
	if (!rc) {
		char *e = NULL;
		rocksdb_iter_get_error(it, &e);
		if (e) {
			log_err("kv: %s: feed: iterate: %s", s->path, e);
			rocksdb_free(e);
			rc = -EIO;
		}
	}
	rocksdb_iter_destroy(it);
	return rc;
}

int kv_feed_read(struct kv_store *s, uint64_t since, size_t max_bytes, struct kv_buf *out,
		 uint64_t *first)
{
	out->data = NULL;
	out->len = 0;
	rocksdb_readoptions_t *ropts = rocksdb_readoptions_create();
	if (!ropts)
		return -ENOMEM;
	const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
	rocksdb_readoptions_set_snapshot(ropts, snap);
	rocksdb_readoptions_set_verify_checksums(ropts, 1);

	uint64_t applied = 0, next = since;
	size_t cap = 0;
	uint8_t hdr[KV_FEED_HDR_LEN] = {0};
	int rc = reader_u64(s, ropts, KV__M_FEED_FIRST, first);
	if (!rc)
		rc = reader_u64(s, ropts, KV__M_APPLIED, &applied);
	if (!rc && since < *first)
		rc = -ERANGE;
	if (!rc)
		rc = buf_append(out, &cap, hdr, sizeof(hdr));
	if (!rc && since < applied)
		rc = read_records(s, ropts, since, applied, max_bytes, out, &cap, &next);
	if (!rc) {
		put_le64(out->data, *first);
		put_le64(out->data + 8, next);
	} else {
		free(out->data);
		out->data = NULL;
		out->len = 0;
	}
	rocksdb_release_snapshot(s->db, snap);
	rocksdb_readoptions_destroy(ropts);
	return rc;
}
