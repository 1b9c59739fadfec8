/*
 * Key and value encoding of the filesystem schema. See schema.h for the
 * layout. Pure functions: no allocation, no I/O.
 */
#include "schema.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "byteorder.h"

#define ATTR_FORMAT    1
#define NODEREC_FORMAT 1

static void key_head(struct ofs_key *k, enum ofs_key_kind kind)
{
	k->b[0] = 'F';
	k->b[1] = (uint8_t)kind;
	k->len = 2;
}

static void key_u64(struct ofs_key *k, uint64_t v)
{
	put_be64(k->b + k->len, v);
	k->len += 8;
}

static void key_name(struct ofs_key *k, const char *name, size_t len)
{
	assert(len >= 1 && len <= OFS_NAME_MAX);
	memcpy(k->b + k->len, name, len);
	k->len += len;
}

void ofs_key_inode(struct ofs_key *k, uint64_t ino)
{
	key_head(k, OFS_K_INODE);
	key_u64(k, ino);
}

void ofs_key_dirent(struct ofs_key *k, uint64_t parent, const char *name, size_t name_len)
{
	ofs_key_dir_prefix(k, parent);
	key_name(k, name, name_len);
}

void ofs_key_dir_prefix(struct ofs_key *k, uint64_t parent)
{
	key_head(k, OFS_K_DIRENT);
	key_u64(k, parent);
}

void ofs_key_block(struct ofs_key *k, uint64_t ino, uint64_t block)
{
	ofs_key_block_prefix(k, ino);
	key_u64(k, block);
}

void ofs_key_block_prefix(struct ofs_key *k, uint64_t ino)
{
	key_head(k, OFS_K_BLOCK);
	key_u64(k, ino);
}

void ofs_key_symlink(struct ofs_key *k, uint64_t ino)
{
	key_head(k, OFS_K_SYMLINK);
	key_u64(k, ino);
}

void ofs_key_xattr(struct ofs_key *k, uint64_t ino, const char *name, size_t name_len)
{
	ofs_key_xattr_prefix(k, ino);
	key_name(k, name, name_len);
}

void ofs_key_xattr_prefix(struct ofs_key *k, uint64_t ino)
{
	key_head(k, OFS_K_XATTR);
	key_u64(k, ino);
}

void ofs_key_node(struct ofs_key *k, uint64_t node_id, unsigned share)
{
	assert(share < OFS_NODE_SHARES);
	ofs_key_node_prefix(k);
	key_u64(k, node_id);
	if (share)
		k->b[k->len++] = (uint8_t)share;
}

void ofs_key_node_prefix(struct ofs_key *k)
{
	key_head(k, OFS_K_NODE);
}

void ofs_key_orphan(struct ofs_key *k, uint64_t ino)
{
	ofs_key_orphan_prefix(k);
	key_u64(k, ino);
}

void ofs_key_orphan_prefix(struct ofs_key *k)
{
	key_head(k, OFS_K_ORPHAN);
}

int ofs_key_kind(const void *key, size_t len)
{
	const uint8_t *p = key;
	if (len < 2 || p[0] != 'F')
		return 0;
	switch (p[1]) {
	case OFS_K_INODE:
	case OFS_K_DIRENT:
	case OFS_K_BLOCK:
	case OFS_K_SYMLINK:
	case OFS_K_XATTR:
	case OFS_K_NODE:
	case OFS_K_ORPHAN:
		return p[1];
	default:
		return 0;
	}
}

int ofs_key_parse_ino(const void *key, size_t len, uint64_t *ino)
{
	int kind = ofs_key_kind(key, len);
	if (kind == 0 || kind == OFS_K_DIRENT || kind == OFS_K_NODE || len < 10)
		return -EBADMSG;
	if ((kind == OFS_K_INODE || kind == OFS_K_SYMLINK || kind == OFS_K_ORPHAN) && len != 10)
		return -EBADMSG;
	*ino = get_be64((const uint8_t *)key + 2);
	return 0;
}

int ofs_key_parse_dirent(const void *key, size_t len, uint64_t *parent, const char **name,
			 size_t *name_len)
{
	if (ofs_key_kind(key, len) != OFS_K_DIRENT || len < 11 || len > 10 + OFS_NAME_MAX)
		return -EBADMSG;
	*parent = get_be64((const uint8_t *)key + 2);
	*name = (const char *)key + 10;
	*name_len = len - 10;
	return 0;
}

int ofs_key_parse_block(const void *key, size_t len, uint64_t *ino, uint64_t *block)
{
	if (ofs_key_kind(key, len) != OFS_K_BLOCK || len != 18)
		return -EBADMSG;
	*ino = get_be64((const uint8_t *)key + 2);
	*block = get_be64((const uint8_t *)key + 10);
	return 0;
}

int ofs_key_parse_xattr(const void *key, size_t len, uint64_t *ino, const char **name,
			size_t *name_len)
{
	if (ofs_key_kind(key, len) != OFS_K_XATTR || len < 11 || len > 10 + OFS_NAME_MAX)
		return -EBADMSG;
	*ino = get_be64((const uint8_t *)key + 2);
	*name = (const char *)key + 10;
	*name_len = len - 10;
	return 0;
}

int ofs_key_parse_node(const void *key, size_t len, uint64_t *node_id, unsigned *share)
{
	if (ofs_key_kind(key, len) != OFS_K_NODE || (len != 10 && len != 11))
		return -EBADMSG;
	unsigned s = len == 11 ? ((const uint8_t *)key)[10] : 0;
	if (len == 11 && (s == 0 || s >= OFS_NODE_SHARES))
		return -EBADMSG; /* share 0 has the short key only */
	*node_id = get_be64((const uint8_t *)key + 2);
	*share = s;
	return 0;
}

/*
 * Attr layout (96 bytes): format u8, 3 reserved, mode u32, uid u32, gid u32,
 * nlink u32, rdev u32, size u64 @24, atime @32, mtime @40, ctime @48,
 * change @56, parent @64, 24 reserved (zero).
 */
void ofs_attr_encode(const struct ofs_attr *a, uint8_t out[OFS_ATTR_LEN])
{
	memset(out, 0, OFS_ATTR_LEN);
	out[0] = ATTR_FORMAT;
	put_le32(out + 4, a->mode);
	put_le32(out + 8, a->uid);
	put_le32(out + 12, a->gid);
	put_le32(out + 16, a->nlink);
	put_le32(out + 20, a->rdev);
	put_le64(out + 24, a->size);
	put_le64(out + 32, (uint64_t)a->atime_ns);
	put_le64(out + 40, (uint64_t)a->mtime_ns);
	put_le64(out + 48, (uint64_t)a->ctime_ns);
	put_le64(out + 56, a->change);
	put_le64(out + 64, a->parent);
}

int ofs_attr_decode(struct ofs_attr *a, uint64_t ino, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len != OFS_ATTR_LEN || p[0] != ATTR_FORMAT)
		return -EBADMSG;
	a->ino = ino;
	a->mode = get_le32(p + 4);
	a->uid = get_le32(p + 8);
	a->gid = get_le32(p + 12);
	a->nlink = get_le32(p + 16);
	a->rdev = get_le32(p + 20);
	a->size = get_le64(p + 24);
	a->atime_ns = (int64_t)get_le64(p + 32);
	a->mtime_ns = (int64_t)get_le64(p + 40);
	a->ctime_ns = (int64_t)get_le64(p + 48);
	a->change = get_le64(p + 56);
	a->parent = get_le64(p + 64);
	return 0;
}

void ofs_dirent_encode(uint64_t child, uint8_t dtype, uint8_t out[OFS_DIRENT_LEN])
{
	put_le64(out, child);
	out[8] = dtype;
}

int ofs_dirent_decode(const void *val, size_t len, uint64_t *child, uint8_t *dtype)
{
	if (len != OFS_DIRENT_LEN)
		return -EBADMSG;
	*child = get_le64(val);
	*dtype = ((const uint8_t *)val)[8];
	if (*child == 0)
		return -EBADMSG;
	return 0;
}

void ofs_noderec_encode(const struct ofs_noderec *n, uint8_t out[OFS_NODEREC_LEN])
{
	memset(out, 0, OFS_NODEREC_LEN);
	out[0] = NODEREC_FORMAT;
	put_le64(out + 8, n->next);
	put_le64(out + 16, (uint64_t)n->bytes);
	put_le64(out + 24, (uint64_t)n->inodes);
}

int ofs_noderec_decode(struct ofs_noderec *n, const void *val, size_t len)
{
	const uint8_t *p = val;
	if (len != OFS_NODEREC_LEN || p[0] != NODEREC_FORMAT)
		return -EBADMSG;
	n->next = get_le64(p + 8);
	n->bytes = (int64_t)get_le64(p + 16);
	n->inodes = (int64_t)get_le64(p + 24);
	return 0;
}

void ofs_orphan_encode(uint64_t node_id, int64_t at_ns, uint8_t out[OFS_ORPHAN_LEN])
{
	put_le64(out, node_id);
	put_le64(out + 8, (uint64_t)at_ns);
}

int ofs_orphan_decode(const void *val, size_t len, uint64_t *node_id, int64_t *at_ns)
{
	if (len != OFS_ORPHAN_LEN)
		return -EBADMSG;
	*node_id = get_le64(val);
	*at_ns = (int64_t)get_le64((const uint8_t *)val + 8);
	return 0;
}

uint8_t ofs_mode_dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return DT_REG;
	case S_IFDIR:
		return DT_DIR;
	case S_IFLNK:
		return DT_LNK;
	case S_IFIFO:
		return DT_FIFO;
	case S_IFSOCK:
		return DT_SOCK;
	case S_IFCHR:
		return DT_CHR;
	case S_IFBLK:
		return DT_BLK;
	default:
		return DT_UNKNOWN;
	}
}

bool ofs_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return true;
}
