/*
 * The filesystem's key layout in the replicated KV, and the encoding of its
 * values.
 *
 * Every key starts with 'F' and a one-byte kind, then big-endian integers, so
 * that the KV's byte order is numeric order: all entries of one directory,
 * all blocks of one file, all xattrs of one inode are one contiguous prefix
 * (one scan to list them, one DELETE_PREFIX to drop them).
 *
 *   F i <ino:8>                   inode attributes (struct ofs_attr, 96 bytes)
 *   F d <parent:8> <name>         directory entry -> child ino (8) + type (1)
 *   F b <ino:8> <block:8>         file data, OFS_BLOCK_SIZE bytes at most
 *   F l <ino:8>                   symlink target
 *   F x <ino:8> <name>            extended attribute value
 *   F n <node:8> [<share:1>]      per-node record: inode counter and usage,
 *                                 in OFS_NODE_SHARES shares (below)
 *   F o <ino:8>                   orphan: no links left, freed later -> node, time
 *
 * Block size: 64 KiB. A block is the unit a write replicates: a 4 KiB write
 * into a large file sends one block, not the file. Smaller blocks would cut
 * that amplification for random small writes, but multiply keys (a 1 GiB
 * file is 16384 keys at 64 KiB, 262144 at 4 KiB) and per-key overhead in the
 * log, RocksDB and scans. The files omnifs is for (configs, scripts, small
 * data) are mostly under 64 KiB, so they are one key; the last block of a
 * file is stored only up to the file's size, so a 1 KiB file costs 1 KiB.
 *
 * Values are little-endian with a format byte first; a value with another
 * format or length is rejected with -EBADMSG (never asserted on: it came
 * from disk). Pure code, no I/O; does not know how keys are read or written.
 */
#ifndef OMNIFS_SCHEMA_H
#define OMNIFS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OFS_BLOCK_SIZE	65536u
#define OFS_NAME_MAX	255u
#define OFS_XATTR_MAX	65536u /* largest xattr value, as Linux (XATTR_SIZE_MAX) */
#define OFS_SYMLINK_MAX 4095u  /* a target longer than PATH_MAX - 1 is ENAMETOOLONG */
#define OFS_KEY_MAX	(2 + 8 + OFS_NAME_MAX + 1)
#define OFS_ROOT_INO	1u
#define OFS_ATTR_LEN	96u
#define OFS_NODEREC_LEN 32u
#define OFS_DIRENT_LEN	9u

enum ofs_key_kind {
	OFS_K_INODE = 'i',
	OFS_K_DIRENT = 'd',
	OFS_K_BLOCK = 'b',
	OFS_K_SYMLINK = 'l',
	OFS_K_XATTR = 'x',
	OFS_K_NODE = 'n',
	OFS_K_ORPHAN = 'o',
};

/* An encoded key: bytes inline, no allocation. */
struct ofs_key {
	size_t len;
	uint8_t b[OFS_KEY_MAX];
};

/* Inode attributes as stored. Times are nanoseconds since the epoch. */
struct ofs_attr {
	uint64_t ino;  /* not stored in the value (it is the key); filled by decode */
	uint32_t mode; /* type and permission bits (S_IFREG | 0644...) */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink; /* dirs: 2 + subdirectories */
	uint64_t size;	/* bytes; symlinks: target length; dirs: 0 */
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t change; /* bumped by every change of the inode or its data */
	uint64_t parent; /* dirs: the containing dir (root: itself); others: 0 */
	uint32_t rdev;	 /* device number for device nodes */
};

/* The per-node record: counter for never-repeating inode numbers, and the
 * node's share of usage (signed: a node may delete what another created).
 *
 * A node keeps it in OFS_NODE_SHARES shares, each a key of its own: share 0
 * is F n <node:8> (the record's only key before shares), share s > 0 is
 * F n <node:8> <s:1>. Every change guards the share it updates, so changes
 * made at once on one node, each in a share of its own, do not fail each
 * other's guards (with one record, all but one of them did, and were built
 * again, so parallel writers on one node went slower than one). Usage is
 * the sum over every share of every node; a node's inode counter is the
 * largest `next` among its shares. Nodes that know only share 0 still sum
 * usage right: they scan the whole F n prefix. */
#define OFS_NODE_SHARES 16
struct ofs_noderec {
	uint64_t next;	/* next counter value to hand out, >= 1 */
	int64_t bytes;	/* sum of size changes made by this node */
	int64_t inodes; /* inodes created minus inodes freed by this node */
};

/* Keys. name_len must be 1..OFS_NAME_MAX (asserted: callers check first). */
void ofs_key_inode(struct ofs_key *k, uint64_t ino);
void ofs_key_dirent(struct ofs_key *k, uint64_t parent, const char *name, size_t name_len);
void ofs_key_dir_prefix(struct ofs_key *k, uint64_t parent); /* all entries of parent */
void ofs_key_block(struct ofs_key *k, uint64_t ino, uint64_t block);
void ofs_key_block_prefix(struct ofs_key *k, uint64_t ino); /* all blocks of ino */
void ofs_key_symlink(struct ofs_key *k, uint64_t ino);
void ofs_key_xattr(struct ofs_key *k, uint64_t ino, const char *name, size_t name_len);
void ofs_key_xattr_prefix(struct ofs_key *k, uint64_t ino);
void ofs_key_node(struct ofs_key *k, uint64_t node_id,
		  unsigned share); /* share < OFS_NODE_SHARES */
void ofs_key_node_prefix(struct ofs_key *k);
void ofs_key_orphan(struct ofs_key *k, uint64_t ino);
void ofs_key_orphan_prefix(struct ofs_key *k);

/* The kind of a filesystem key, or 0 for a key that is not one. */
int ofs_key_kind(const void *key, size_t len);

/*
 * Decoding of keys seen in a scan or an applied entry. Each returns -EBADMSG
 * if the key is not of that kind or malformed. *name points into key
 * (borrowed, not NUL-terminated).
 */
int ofs_key_parse_ino(const void *key, size_t len, uint64_t *ino); /* i, l, o, b, x */
int ofs_key_parse_dirent(const void *key, size_t len, uint64_t *parent, const char **name,
			 size_t *name_len);
int ofs_key_parse_block(const void *key, size_t len, uint64_t *ino, uint64_t *block);
int ofs_key_parse_xattr(const void *key, size_t len, uint64_t *ino, const char **name,
			size_t *name_len);
int ofs_key_parse_node(const void *key, size_t len, uint64_t *node_id, unsigned *share);

/* Values. Encoders write exactly the _LEN bytes. */
void ofs_attr_encode(const struct ofs_attr *a, uint8_t out[OFS_ATTR_LEN]);
int ofs_attr_decode(struct ofs_attr *a, uint64_t ino, const void *val, size_t len);
void ofs_dirent_encode(uint64_t child, uint8_t dtype, uint8_t out[OFS_DIRENT_LEN]);
int ofs_dirent_decode(const void *val, size_t len, uint64_t *child, uint8_t *dtype);
void ofs_noderec_encode(const struct ofs_noderec *n, uint8_t out[OFS_NODEREC_LEN]);
int ofs_noderec_decode(struct ofs_noderec *n, const void *val, size_t len);

/* Orphan marks: the node that unlinked the file (and frees it) and when. */
#define OFS_ORPHAN_LEN 16u
void ofs_orphan_encode(uint64_t node_id, int64_t at_ns, uint8_t out[OFS_ORPHAN_LEN]);
int ofs_orphan_decode(const void *val, size_t len, uint64_t *node_id, int64_t *at_ns);

/* DT_* of a mode's file type. */
uint8_t ofs_mode_dtype(uint32_t mode);

/* True if name is a valid entry name: not "", ".", "..", no '/'. Length is
 * checked separately (ENAMETOOLONG). */
bool ofs_name_is_valid(const char *name, size_t len);

#endif /* OMNIFS_SCHEMA_H */
