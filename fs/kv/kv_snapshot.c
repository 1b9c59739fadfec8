/*
 * Snapshot files: the whole replicated state of one view, written while the
 * writer goes on applying, and read back offline to check it or to seed a
 * fresh store.
 *
 * The body is the state-transfer stream itself (kv_export_chunk's chunks,
 * checked again by kv_import_chunk on restore), so a snapshot carries
 * exactly what a node joining late would get: every key with its version,
 * the dedup table, at one applied index. The change feed and the import
 * progress (meta column family) are not part of the replicated state and
 * stay out, as in a state transfer.
 *
 * File (integers little-endian):
 *   header   "omnifsSN", u32 version, u64 cluster id, u8 name length (1..63)
 *            + cluster name, u64 node id, i64 created_ms, u64 applied index,
 *            32-byte digest (kv_view_digest of the state in the file)
 *   body     per chunk: u32 length (1..SNAP__CHUNK_MAX) + chunk; the last
 *            chunk has the chunk's LAST flag
 *   trailer  "omnifsSE", u64 record count, 32-byte checksum: SHA-256 of the
 *            body, then the trailer's first 16 bytes, then the header
 * The header is hashed last because its digest is known only once the body
 * is written (the writer patches it in place): one pass over the state, not
 * two. A reader checks the framing of every chunk and record, recomputes
 * the state's digest from the records and the checksum of the file, and
 * says which check failed and where.
 *
 * This file does not open, name or rename files: the daemon writes to a
 * temporary file and renames it, omnifsctl and omnifsd read.
 */
#include "kv.h"
#include "kv_int.h"
#include "kv_sha256.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SNAP__MAGIC	  "omnifsSN"
#define SNAP__END_MAGIC	  "omnifsSE"
#define SNAP__CHUNK_BYTES (4u << 20)  /* what the writer asks per chunk */
#define SNAP__CHUNK_MAX	  (64u << 20) /* the largest chunk a reader takes */
#define SNAP__HDR_MAX	  (8 + 4 + 8 + 1 + 63 + 8 + 8 + 8 + KV_DIGEST_LEN)
#define SNAP__TRAILER_LEN (8 + 8 + 32)

static void say(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && err_len)
		vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* Where a walk through the chunks stands: the key the next chunk must
 * continue after, the digest of the records so far, their count. */
struct walk {
	uint64_t applied;
	uint8_t cursor[KV__STATE_KEY_MAX];
	size_t cursor_len;
	struct kv_sha256 digest;
	uint64_t records;
	bool last;
};

/* Checks one chunk against the walk and feeds its records to the digest.
 * false with the reason in err. */
static bool walk_chunk(struct walk *w, const uint8_t *chunk, size_t len, char *err, size_t err_len)
{
	const uint8_t *p = chunk, *end = chunk + len, *after, *k, *v;
	uint32_t after_len, n, klen, vlen;
	if (len < KV__CHUNK_HDR_MIN || p[0] != KV__CHUNK_VERSION || (p[1] & ~KV__CHUNK_FLAG_LAST)) {
		say(err, err_len, "a chunk has a bad header");
		return false;
	}
	bool last = p[1] & KV__CHUNK_FLAG_LAST;
	if (get_le64(p + 2) != w->applied) {
		say(err, err_len, "a chunk is of another index than the header's");
		return false;
	}
	p += 10;
	if (!kv__take(&p, end, KV__STATE_KEY_MAX, &after, &after_len) || end - p < 4) {
		say(err, err_len, "a chunk's header is cut short");
		return false;
	}
	if (kv__key_cmp(after, after_len, w->cursor, w->cursor_len)) {
		say(err, err_len, "a chunk does not continue where the one before ended");
		return false;
	}
	n = get_le32(p);
	p += 4;
	for (uint32_t i = 0; i < n; i++) {
		if (!kv__take(&p, end, KV__STATE_KEY_MAX, &k, &klen) ||
		    !kv__take(&p, end, KV__VERSION_LEN + KV_MAX_VALUE_LEN, &v, &vlen) ||
		    !kv__record_ok(k, klen, v, vlen)) {
			say(err, err_len, "record %llu is malformed",
			    (unsigned long long)(w->records + 1));
			return false;
		}
		if ((w->records || w->cursor_len) &&
		    kv__key_cmp(k, klen, w->cursor, w->cursor_len) <= 0) {
			say(err, err_len, "record %llu is out of order",
			    (unsigned long long)(w->records + 1));
			return false;
		}
		kv__digest_record(&w->digest, k, klen, v, vlen);
		memcpy(w->cursor, k, klen);
		w->cursor_len = klen;
		w->records++;
	}
	if (p != end) {
		say(err, err_len, "a chunk has bytes after its records");
		return false;
	}
	w->last = last;
	return true;
}

/* --- writing ------------------------------------------------------------------------- */

/* Encodes the header into h; returns its length and the digest's offset. */
static size_t header_encode(const struct kv_snap_info *info, uint8_t *h, size_t *digest_at)
{
	size_t name_len = strnlen(info->cluster, KV_SNAP_NAME_MAX - 1), o = 0;
	memcpy(h, SNAP__MAGIC, 8);
	put_le32(h + 8, KV_SNAP_VERSION);
	put_le64(h + 12, info->cluster_id);
	h[20] = (uint8_t)name_len;
	memcpy(h + 21, info->cluster, name_len);
	o = 21 + name_len;
	put_le64(h + o, info->node_id);
	put_le64(h + o + 8, (uint64_t)info->created_ms);
	put_le64(h + o + 16, info->applied_idx);
	*digest_at = o + 24;
	memcpy(h + o + 24, info->digest, KV_DIGEST_LEN);
	return o + 24 + KV_DIGEST_LEN;
}

static int write_all(FILE *f, const void *p, size_t len, char *err, size_t err_len)
{
	if (len && fwrite(p, 1, len, f) != len) {
		int e = errno ? errno : EIO;
		say(err, err_len, "write: %s", strerror(e));
		return e == ENOSPC ? -ENOSPC : -EIO;
	}
	return 0;
}

int kv_snapshot_write(struct kv_view *v, FILE *f, struct kv_snap_info *info,
		      kv_snap_progress progress, void *ctx, char *err, size_t err_len)
{
	uint8_t h[SNAP__HDR_MAX], len4[4];
	struct kv_sha256 file = {0};
	struct kv_buf cursor = {0};
	size_t digest_at;
	int rc;

	if (!info->cluster[0]) {
		say(err, err_len, "no cluster name");
		return -EINVAL;
	}
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	info->version = KV_SNAP_VERSION;
	info->applied_idx = kv_view_applied_idx(v);
	info->records = 0;
	memset(info->digest, 0, KV_DIGEST_LEN);
	if (info->applied_idx == 0) {
		say(err, err_len, "the state is empty (nothing applied yet)");
		free(w);
		return -EINVAL;
	}
	w->applied = info->applied_idx;
	if (kv_sha256_init(&w->digest) != 0 || kv_sha256_init(&file) != 0) {
		say(err, err_len, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	long start = ftell(f);
	size_t hlen = header_encode(info, h, &digest_at);
	uint64_t bytes = hlen;
	rc = write_all(f, h, hlen, err, err_len);
	while (!rc && !w->last) {
		struct kv_buf chunk, next;
		bool last;
		rc = kv_export_chunk(v, cursor.data, cursor.len, SNAP__CHUNK_BYTES, &chunk, &next,
				     &last);
		if (rc) {
			say(err, err_len, "read the state: %s", strerror(-rc));
			break;
		}
		free(cursor.data);
		cursor = next;
		/* Our own export: a failure here is a bug or a corrupt store. */
		if (!walk_chunk(w, chunk.data, chunk.len, err, err_len) ||
		    chunk.len > SNAP__CHUNK_MAX)
			rc = -EIO;
		put_le32(len4, (uint32_t)chunk.len);
		if (!rc)
			rc = write_all(f, len4, 4, err, err_len);
		if (!rc)
			rc = write_all(f, chunk.data, chunk.len, err, err_len);
		kv_sha256_update(&file, len4, 4);
		kv_sha256_update(&file, chunk.data, chunk.len);
		bytes += 4 + chunk.len;
		free(chunk.data);
		if (!rc && progress)
			progress(ctx, bytes);
	}
	free(cursor.data);
	if (rc)
		goto out;
	kv__digest_finish(&w->digest, w->applied, info->digest);
	info->records = w->records;

	uint8_t t[SNAP__TRAILER_LEN];
	memcpy(t, SNAP__END_MAGIC, 8);
	put_le64(t + 8, w->records);
	header_encode(info, h, &digest_at);
	kv_sha256_update(&file, t, 16);
	kv_sha256_update(&file, h, hlen);
	kv_sha256_final(&file, t + 16);
	rc = write_all(f, t, sizeof(t), err, err_len);
	bytes += sizeof(t);
	/* The digest into the header, now that it is known. */
	if (!rc && (fseek(f, start + (long)digest_at, SEEK_SET) != 0 ||
		    fwrite(info->digest, 1, KV_DIGEST_LEN, f) != KV_DIGEST_LEN ||
		    fseek(f, 0, SEEK_END) != 0 || fflush(f) != 0)) {
		say(err, err_len, "write the header's digest: %s", strerror(errno));
		rc = errno == ENOSPC ? -ENOSPC : -EIO;
	}
	info->bytes = bytes;
out:
	kv_sha256_discard(&file);
	kv_sha256_discard(&w->digest);
	free(w);
	return rc;
}

/* --- reading ------------------------------------------------------------------------- */

struct reader {
	FILE *f;
	uint64_t off; /* bytes read so far */
	char *err;
	size_t err_len;
};

/* Reads exactly len bytes; -EBADMSG "truncated" naming what, or -EIO. */
static int rd(struct reader *r, void *p, size_t len, const char *what)
{
	size_t got = len ? fread(p, 1, len, r->f) : 0;
	r->off += got;
	if (got == len)
		return 0;
	if (ferror(r->f)) {
		say(r->err, r->err_len, "read at byte %llu: %s", (unsigned long long)r->off,
		    strerror(errno ? errno : EIO));
		return -EIO;
	}
	say(r->err, r->err_len, "truncated: the file ends at byte %llu, inside %s",
	    (unsigned long long)r->off, what);
	return -EBADMSG;
}

static int read_header(struct reader *r, struct kv_snap_info *info, uint8_t *h, size_t *hlen)
{
	int rc = rd(r, h, 21, "the header");
	if (rc)
		return rc;
	if (memcmp(h, SNAP__MAGIC, 8) != 0) {
		say(r->err, r->err_len, "not an omnifs snapshot (no omnifsSN magic at the start)");
		return -EBADMSG;
	}
	info->version = get_le32(h + 8);
	if (info->version != KV_SNAP_VERSION) {
		say(r->err, r->err_len,
		    "snapshot format version %u, this omnifs reads version %u: use a matching "
		    "omnifs",
		    info->version, KV_SNAP_VERSION);
		return -EBADMSG;
	}
	info->cluster_id = get_le64(h + 12);
	size_t name_len = h[20];
	if (name_len == 0 || name_len >= KV_SNAP_NAME_MAX) {
		say(r->err, r->err_len, "the header's cluster name is malformed");
		return -EBADMSG;
	}
	size_t o = 21 + name_len;
	rc = rd(r, h + 21, name_len + 24 + KV_DIGEST_LEN, "the header");
	if (rc)
		return rc;
	memcpy(info->cluster, h + 21, name_len);
	info->cluster[name_len] = '\0';
	if (memchr(info->cluster, '\0', name_len)) {
		say(r->err, r->err_len, "the header's cluster name is malformed");
		return -EBADMSG;
	}
	info->node_id = get_le64(h + o);
	info->created_ms = (int64_t)get_le64(h + o + 8);
	info->applied_idx = get_le64(h + o + 16);
	memcpy(info->digest, h + o + 24, KV_DIGEST_LEN);
	*hlen = o + 24 + KV_DIGEST_LEN;
	if (info->applied_idx == 0) {
		say(r->err, r->err_len, "the header's applied index is 0");
		return -EBADMSG;
	}
	return 0;
}

/* Reads a chunk of len bytes into *buf (grown as the bytes arrive, so a
 * length that lies costs no more memory than the file holds). */
static int read_chunk(struct reader *r, uint8_t **buf, size_t *cap, size_t len, uint64_t nr)
{
	char what[64];
	snprintf(what, sizeof(what), "chunk %llu", (unsigned long long)nr);
	for (size_t have = 0; have < len;) {
		size_t step = len - have < (1u << 20) ? len - have : (1u << 20);
		if (have + step > *cap) {
			size_t ncap = *cap ? *cap : (1u << 20);
			while (ncap < have + step)
				ncap *= 2;
			uint8_t *p = realloc(*buf, ncap);
			if (!p)
				return -ENOMEM;
			*buf = p;
			*cap = ncap;
		}
		int rc = rd(r, *buf + have, step, what);
		if (rc)
			return rc;
		have += step;
	}
	return 0;
}

int kv_snapshot_read(FILE *f, struct kv_store *dst, struct kv_snap_info *info,
		     kv_snap_progress progress, void *ctx, char *err, size_t err_len)
{
	struct reader r = {.f = f, .err = err, .err_len = err_len};
	uint8_t h[SNAP__HDR_MAX], len4[4], t[SNAP__TRAILER_LEN], sum[32], dig[KV_DIGEST_LEN];
	uint8_t *buf = NULL;
	size_t cap = 0, hlen;
	struct kv_sha256 file = {0};
	bool importing = false;
	int rc;

	memset(info, 0, sizeof(*info));
	struct walk *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	rc = read_header(&r, info, h, &hlen);
	if (rc)
		goto out;
	w->applied = info->applied_idx;
	if (kv_sha256_init(&w->digest) != 0 || kv_sha256_init(&file) != 0) {
		say(err, err_len, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (dst) {
		rc = kv_import_begin(dst, info->applied_idx);
		if (rc) {
			say(err, err_len, "%s",
			    rc == -ESTALE ? "the store is not behind the snapshot"
					  : kv_errmsg(dst));
			goto out;
		}
		importing = true;
	}
	for (uint64_t nr = 1; !w->last; nr++) {
		rc = rd(&r, len4, 4, "a chunk's length");
		if (rc)
			goto out;
		uint32_t len = get_le32(len4);
		if (len == 0 || len > SNAP__CHUNK_MAX) {
			say(err, err_len,
			    "the file is damaged: chunk %llu at byte %llu has a bad length (%u)",
			    (unsigned long long)nr, (unsigned long long)r.off - 4, len);
			rc = -EBADMSG;
			goto out;
		}
		rc = read_chunk(&r, &buf, &cap, len, nr);
		if (rc)
			goto out;
		char why[128];
		if (!walk_chunk(w, buf, len, why, sizeof(why))) {
			say(err, err_len, "the file is damaged: chunk %llu ending at byte %llu: %s",
			    (unsigned long long)nr, (unsigned long long)r.off, why);
			rc = -EBADMSG;
			goto out;
		}
		kv_sha256_update(&file, len4, 4);
		kv_sha256_update(&file, buf, len);
		if (dst) {
			rc = kv_import_chunk(dst, buf, len);
			if (rc) {
				say(err, err_len, "import: %s", kv_errmsg(dst));
				rc = rc == -EBADMSG || rc == -ESTALE ? -EBADMSG : rc;
				goto out;
			}
		}
		if (progress)
			progress(ctx, r.off);
	}
	info->records = w->records;
	rc = rd(&r, t, sizeof(t), "the trailer");
	if (rc)
		goto out;
	if (memcmp(t, SNAP__END_MAGIC, 8) != 0 || get_le64(t + 8) != w->records) {
		say(err, err_len, "the trailer at byte %llu is malformed",
		    (unsigned long long)r.off - sizeof(t));
		rc = -EBADMSG;
		goto out;
	}
	kv_sha256_update(&file, t, 16);
	kv_sha256_update(&file, h, hlen);
	kv_sha256_final(&file, sum);
	if (memcmp(sum, t + 16, sizeof(sum)) != 0) {
		say(err, err_len, "checksum mismatch: the file is damaged");
		rc = -EBADMSG;
		goto out;
	}
	kv__digest_finish(&w->digest, w->applied, dig);
	if (memcmp(dig, info->digest, KV_DIGEST_LEN) != 0) {
		say(err, err_len, "the records' digest is not the header's: the file is damaged");
		rc = -EBADMSG;
		goto out;
	}
	if (fgetc(f) != EOF) {
		say(err, err_len, "bytes after the trailer (at byte %llu)",
		    (unsigned long long)r.off);
		rc = -EBADMSG;
		goto out;
	}
	info->bytes = r.off;
	if (dst) {
		rc = kv_import_finish(dst);
		if (rc)
			say(err, err_len, "import: %s", kv_errmsg(dst));
		else
			importing = false;
	}
out:
	if (importing && kv_import_abort(dst) != 0)
		log_warn("kv: snapshot import: abort: %s", kv_errmsg(dst));
	kv_sha256_discard(&file);
	kv_sha256_discard(&w->digest);
	free(buf);
	free(w);
	return rc;
}
