/*
 * The digest of the replicated state: SHA-256 over every record of one view,
 * in key order, then the applied index. Two nodes that applied the same log
 * to the same index have equal digests; any difference in a key, a version,
 * a value, the dedup table or the index changes it.
 *
 * Hashed, per record: u32 key length, the stored key (namespace byte first),
 * u32 value length, the stored value (version first); then a domain tag and
 * the u64 applied index. Lengths make the framing unambiguous.
 */
#include "kv.h"
#include "kv_int.h"
#include "kv_sha256.h"

#include <errno.h>
#include <string.h>

#include "log.h"

void kv__digest_record(struct kv_sha256 *c, const void *k, size_t klen, const void *v, size_t vlen)
{
	uint8_t n[4];
	put_le32(n, (uint32_t)klen);
	kv_sha256_update(c, n, 4);
	kv_sha256_update(c, k, klen);
	put_le32(n, (uint32_t)vlen);
	kv_sha256_update(c, n, 4);
	kv_sha256_update(c, v, vlen);
}

int kv__digest_finish(struct kv_sha256 *c, uint64_t applied, uint8_t out[KV_DIGEST_LEN])
{
	uint8_t n[8];
	kv_sha256_update(c, "applied", 7);
	put_le64(n, applied);
	kv_sha256_update(c, n, 8);
	return kv_sha256_final(c, out);
}

int kv_view_digest(struct kv_view *v, uint8_t out[KV_DIGEST_LEN])
{
	struct kv_sha256 c;
	int rc = 0;

	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(v->s->db, v->ropts, v->cf);
	if (!it)
		return -ENOMEM;
	if (kv_sha256_init(&c) != 0) {
		rocksdb_iter_destroy(it);
		return -ENOMEM;
	}
	for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *val = rocksdb_iter_value(it, &vlen);
		kv__digest_record(&c, k, klen, val, vlen);
	}
	char *e = NULL;
	rocksdb_iter_get_error(it, &e);
	rocksdb_iter_destroy(it);
	if (e) {
		log_err("kv: %s: digest: %s", v->s->path, e);
		rocksdb_free(e);
		rc = -EIO;
	}
	if (kv__digest_finish(&c, v->applied, out) != 0 && rc == 0) {
		log_err("kv: %s: digest: SHA-256 failed in libcrypto", v->s->path);
		rc = -EIO;
	}
	return rc;
}

int kv_digest(struct kv_store *s, uint8_t out[KV_DIGEST_LEN])
{
	struct kv_view *v;
	int rc = kv_view_open(s, &v);
	if (rc)
		return rc;
	rc = kv_view_digest(v, out);
	kv_view_close(&v);
	return rc;
}

void kv_digest_hex(const uint8_t d[KV_DIGEST_LEN], char *buf)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < KV_DIGEST_LEN; i++) {
		buf[2 * i] = hex[d[i] >> 4];
		buf[2 * i + 1] = hex[d[i] & 15];
	}
	buf[2 * KV_DIGEST_LEN] = '\0';
}
