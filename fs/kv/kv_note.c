/*
 * Change notes (kv.h): their encoding, and the parsing of a feed batch on
 * the reading side. Pure code: no RocksDB, no I/O, so omnifsctl and the
 * fuzzer build it alone. Everything decoded here came from the log or a
 * socket: every length is checked against what is left and the limits.
 *
 * It says nothing about what a note means for a watcher (omnifsctl does)
 * nor how a proposer finds its paths (the filesystem does).
 */
#include "kv.h"

#include <errno.h>
#include <string.h>

#include "byteorder.h"

#define NOTE_FIXED_LEN 14 /* version, kind, uid, time_ms */

const char *kv_note_kind_name(enum kv_note_kind kind)
{
	switch (kind) {
	case KV_NOTE_CREATE:
		return "create";
	case KV_NOTE_MKDIR:
		return "mkdir";
	case KV_NOTE_DELETE:
		return "delete";
	case KV_NOTE_RMDIR:
		return "rmdir";
	case KV_NOTE_RENAME:
		return "rename";
	case KV_NOTE_MODIFY:
		return "modify";
	case KV_NOTE_ATTRIB:
		return "attrib";
	case KV_NOTE_KV_PUT:
		return "kv-put";
	case KV_NOTE_KV_DEL:
		return "kv-del";
	}
	return "?";
}

bool kv_note_kind_is_fs(enum kv_note_kind kind)
{
	return kind >= KV_NOTE_CREATE && kind <= KV_NOTE_ATTRIB;
}

static bool kind_known(unsigned kind)
{
	return kv_note_kind_is_fs((enum kv_note_kind)kind) || kind == KV_NOTE_KV_PUT ||
	       kind == KV_NOTE_KV_DEL;
}

static bool path_ok(const char *p, size_t len)
{
	return p && len >= 1 && len <= KV_NOTE_PATH_MAX && !memchr(p, '\0', len);
}

size_t kv_note_encoded_len(const struct kv_note *n)
{
	if (!kind_known(n->kind) || !path_ok(n->path, n->path_len))
		return 0;
	if (n->kind == KV_NOTE_RENAME ? !path_ok(n->path2, n->path2_len) : n->path2_len != 0)
		return 0;
	return NOTE_FIXED_LEN + 2 + n->path_len + 2 + n->path2_len;
}

size_t kv_note_encode(const struct kv_note *n, uint8_t *buf, size_t cap)
{
	size_t len = kv_note_encoded_len(n);
	if (!len || len > cap)
		return 0;
	uint8_t *p = buf;
	*p++ = KV_NOTE_VERSION;
	*p++ = (uint8_t)n->kind;
	put_le32(p, n->uid);
	put_le64(p + 4, (uint64_t)n->time_ms);
	p += 12;
	put_le16(p, (uint16_t)n->path_len);
	memcpy(p + 2, n->path, n->path_len);
	p += 2 + n->path_len;
	put_le16(p, (uint16_t)n->path2_len);
	if (n->path2_len)
		memcpy(p + 2, n->path2, n->path2_len);
	return len;
}

/* A u16 length and that many bytes within [*p, end). */
static bool take_path(const uint8_t **p, const uint8_t *end, const char **s, size_t *len)
{
	if (end - *p < 2)
		return false;
	size_t n = get_le16(*p);
	*p += 2;
	if ((size_t)(end - *p) < n)
		return false;
	*s = n ? (const char *)*p : NULL;
	*len = n;
	*p += n;
	return true;
}

int kv_note_decode(struct kv_note *n, const void *buf, size_t len)
{
	const uint8_t *p = buf, *end = p + len;
	memset(n, 0, sizeof(*n));
	if (!buf || len < NOTE_FIXED_LEN || len > KV_NOTE_MAX_LEN || p[0] != KV_NOTE_VERSION ||
	    !kind_known(p[1]))
		return -EBADMSG;
	struct kv_note t = {
		.kind = (enum kv_note_kind)p[1],
		.uid = get_le32(p + 2),
		.time_ms = (int64_t)get_le64(p + 6),
	};
	p += NOTE_FIXED_LEN;
	if (!take_path(&p, end, &t.path, &t.path_len) ||
	    !take_path(&p, end, &t.path2, &t.path2_len) || p != end ||
	    kv_note_encoded_len(&t) != len)
		return -EBADMSG;
	*n = t;
	return 0;
}

int kv_feed_header(const void *batch, size_t len, uint64_t *first, uint64_t *next)
{
	if (!batch || len < KV_FEED_HDR_LEN)
		return -EBADMSG;
	*first = get_le64(batch);
	*next = get_le64((const uint8_t *)batch + 8);
	return *next < *first ? -EBADMSG : 0;
}

int kv_feed_next(const void *batch, size_t len, size_t *pos, uint64_t min_idx,
		 struct kv_feed_rec *r)
{
	const uint8_t *b = batch;
	if (*pos > len)
		return -EBADMSG;
	if (*pos == len)
		return 0;
	if (len - *pos < KV_FEED_REC_HDR_LEN)
		return -EBADMSG;
	const uint8_t *p = b + *pos;
	r->idx = get_le64(p);
	r->node = get_le64(p + 8);
	uint32_t nlen = get_le32(p + 16);
	if (r->idx < min_idx || nlen > len - *pos - KV_FEED_REC_HDR_LEN ||
	    kv_note_decode(&r->note, p + KV_FEED_REC_HDR_LEN, nlen))
		return -EBADMSG;
	*pos += KV_FEED_REC_HDR_LEN + nlen;
	return 1;
}
