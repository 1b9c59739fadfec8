/*
 * The keys and values of file history (ofs_history.h): pure code, no I/O,
 * so the fuzzer builds it with schema.c alone. Everything decoded here came
 * from the replicated state: every length and format byte is checked.
 */
#include "ofs_history.h"

#include <errno.h>
#include <string.h>

#include "byteorder.h"

#define HVERSION_FORMAT 1
#define HWRITER_FORMAT	1

/* --- keys and values -------------------------------------------------------------- */

static void hkey_head(struct ofs_hkey *k, uint8_t kind)
{
	k->b[0] = 'F';
	k->b[1] = kind;
	k->len = 2;
}

static void hkey_u64(struct ofs_hkey *k, uint64_t v)
{
	put_be64(k->b + k->len, v);
	k->len += 8;
}

void ofs_hkey_writer(struct ofs_hkey *k, uint64_t ino)
{
	hkey_head(k, OFS_K_HIST);
	hkey_u64(k, ino);
}

void ofs_hkey_version(struct ofs_hkey *k, uint64_t ino, uint64_t idx)
{
	ofs_hkey_writer(k, ino);
	hkey_u64(k, idx);
}

void ofs_hkey_versions_prefix(struct ofs_hkey *k, uint64_t ino)
{
	ofs_hkey_writer(k, ino);
}

void ofs_hkey_all_prefix(struct ofs_hkey *k)
{
	hkey_head(k, OFS_K_HIST);
}

void ofs_hkey_data(struct ofs_hkey *k, uint64_t ino, uint64_t idx, uint64_t blk)
{
	ofs_hkey_data_prefix(k, ino, idx);
	hkey_u64(k, blk);
}

void ofs_hkey_data_prefix(struct ofs_hkey *k, uint64_t ino, uint64_t idx)
{
	hkey_head(k, OFS_K_HIST_DATA);
	hkey_u64(k, ino);
	hkey_u64(k, idx);
}

static bool hist_path_ok(const char *path, size_t len)
{
	return len >= 1 && len <= OFS_HIST_PATH_MAX && !memchr(path, '\0', len);
}

int ofs_hkey_path_prefix(struct ofs_hkey *k, const char *path, size_t len, bool with_nul)
{
	if (!hist_path_ok(path, len))
		return -EINVAL;
	hkey_head(k, OFS_K_HIST_PATH);
	memcpy(k->b + k->len, path, len);
	k->len += len;
	if (with_nul)
		k->b[k->len++] = 0;
	return 0;
}

int ofs_hkey_path(struct ofs_hkey *k, const char *path, size_t len, uint64_t ino)
{
	int rc = ofs_hkey_path_prefix(k, path, len, true);
	if (rc == 0)
		hkey_u64(k, ino);
	return rc;
}

int ofs_hkey_parse(const void *key, size_t len, uint64_t *ino, uint64_t *idx)
{
	const uint8_t *p = key;
	if ((len != 10 && len != 18) || p[0] != 'F' || p[1] != OFS_K_HIST)
		return -EBADMSG;
	*ino = get_be64(p + 2);
	if (len == 10)
		return 0;
	*idx = get_be64(p + 10);
	return 1;
}

int ofs_hkey_parse_path(const void *key, size_t len, const char **path, size_t *path_len,
			uint64_t *ino)
{
	const uint8_t *p = key;
	if (len < 2 + 1 + 1 + 8 || p[0] != 'F' || p[1] != OFS_K_HIST_PATH || p[len - 9] != 0)
		return -EBADMSG;
	*path = (const char *)p + 2;
	*path_len = len - 2 - 9;
	if (!hist_path_ok(*path, *path_len))
		return -EBADMSG;
	*ino = get_be64(p + len - 8);
	return 0;
}

void ofs_hversion_encode(const struct ofs_hversion *v, uint8_t out[OFS_HVERSION_LEN])
{
	uint8_t *p = out;
	*p++ = HVERSION_FORMAT;
	put_le32(p, v->mode);
	put_le32(p + 4, v->uid);
	put_le32(p + 8, v->gid);
	put_le64(p + 12, v->node);
	put_le32(p + 20, v->writer_uid);
	put_le64(p + 24, (uint64_t)v->time_ns);
	put_le64(p + 32, v->size);
	put_le64(p + 40, (uint64_t)v->kept_ns);
	p[48] = (v->deleted ? 1 : 0) | (v->in_place ? 2 : 0);
}

int ofs_hversion_decode(struct ofs_hversion *v, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len != OFS_HVERSION_LEN || p[0] != HVERSION_FORMAT || p[49] > 3)
		return -EBADMSG;
	p++;
	v->mode = get_le32(p);
	v->uid = get_le32(p + 4);
	v->gid = get_le32(p + 8);
	v->node = get_le64(p + 12);
	v->writer_uid = get_le32(p + 20);
	v->time_ns = (int64_t)get_le64(p + 24);
	v->size = get_le64(p + 32);
	v->kept_ns = (int64_t)get_le64(p + 40);
	v->deleted = (p[48] & 1) != 0;
	v->in_place = (p[48] & 2) != 0;
	return 0;
}

void ofs_hwriter_encode(const struct ofs_hwriter *w, uint8_t out[OFS_HWRITER_LEN])
{
	out[0] = HWRITER_FORMAT;
	put_le64(out + 1, w->node);
	put_le32(out + 9, w->uid);
	put_le64(out + 13, (uint64_t)w->time_ns);
}

int ofs_hwriter_decode(struct ofs_hwriter *w, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len != OFS_HWRITER_LEN || p[0] != HWRITER_FORMAT)
		return -EBADMSG;
	w->node = get_le64(p + 1);
	w->uid = get_le32(p + 9);
	w->time_ns = (int64_t)get_le64(p + 13);
	return 0;
}
