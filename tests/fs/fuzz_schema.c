/*
 * libFuzzer target for the filesystem's KV schema decoders (schema.h): the
 * key parsers and the decoders of stored inode, dirent, node and orphan
 * values (they read what the replicated state holds, which came from the
 * log). Build with -Dfuzz=true and CC=clang; tools/fuzz.sh runs it.
 *
 * Every input is tried as a key and as each kind of value. Oracles besides
 * ASan/UBSan: the kind agrees with the parsers (a key parses only as its
 * own kind); a key that parses is rebuilt byte for byte by its encoder; a
 * value that decodes re-encodes to the same bytes, reserved bytes (which
 * decoders skip) aside, and decodes again to the same fields. The same for
 * the keys and values of file history (ofs_history.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ofs_history.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_key(const struct ofs_key *k, const uint8_t *want, size_t len)
{
	if (k->len != len || memcmp(k->b, want, len) != 0)
		abort();
}

static void check_key(const uint8_t *in, size_t size)
{
	int kind = ofs_key_kind(in, size);
	if (kind != 0 && (size < 2 || in[0] != 'F' || in[1] != kind))
		abort();
	struct ofs_key k;
	uint64_t a, b;
	const char *name;
	size_t name_len;

	if (ofs_key_parse_ino(in, size, &a) == 0) {
		switch (kind) {
		case OFS_K_INODE:
			ofs_key_inode(&k, a);
			same_key(&k, in, size);
			break;
		case OFS_K_SYMLINK:
			ofs_key_symlink(&k, a);
			same_key(&k, in, size);
			break;
		case OFS_K_ORPHAN:
			ofs_key_orphan(&k, a);
			same_key(&k, in, size);
			break;
		case OFS_K_BLOCK: /* the ino of any key under the inode's prefix */
			ofs_key_block_prefix(&k, a);
			same_key(&k, in, k.len);
			break;
		case OFS_K_XATTR:
			ofs_key_xattr_prefix(&k, a);
			same_key(&k, in, k.len);
			break;
		default:
			abort();
		}
	}
	if (ofs_key_parse_dirent(in, size, &a, &name, &name_len) == 0) {
		if (kind != OFS_K_DIRENT || name != (const char *)in + 10 || name_len < 1 ||
		    name_len > OFS_NAME_MAX)
			abort();
		ofs_key_dirent(&k, a, name, name_len);
		same_key(&k, in, size);
		ofs_key_dir_prefix(&k, a);
		same_key(&k, in, k.len);
	}
	if (ofs_key_parse_block(in, size, &a, &b) == 0) {
		if (kind != OFS_K_BLOCK)
			abort();
		ofs_key_block(&k, a, b);
		same_key(&k, in, size);
	}
	if (ofs_key_parse_xattr(in, size, &a, &name, &name_len) == 0) {
		if (kind != OFS_K_XATTR || name != (const char *)in + 10 || name_len < 1 ||
		    name_len > OFS_NAME_MAX)
			abort();
		ofs_key_xattr(&k, a, name, name_len);
		same_key(&k, in, size);
	}
	unsigned share;
	if (ofs_key_parse_node(in, size, &a, &share) == 0) {
		if (kind != OFS_K_NODE || share >= OFS_NODE_SHARES)
			abort();
		ofs_key_node(&k, a, share);
		same_key(&k, in, size);
		ofs_key_node_prefix(&k);
		same_key(&k, in, k.len);
	}
}

/* Equal but for the bytes [from, to) the format reserves. */
static void same_but(const uint8_t *x, const uint8_t *y, size_t len, size_t from, size_t to)
{
	for (size_t i = 0; i < len; i++)
		if ((i < from || i >= to) && x[i] != y[i])
			abort();
}

static void check_values(const uint8_t *in, size_t size)
{
	/* Zeroed, padding included, so the structs compare with memcmp. */
	struct ofs_attr at, at2;
	memset(&at, 0, sizeof(at));
	memset(&at2, 0, sizeof(at2));
	if (ofs_attr_decode(&at, 7, in, size) == 0) {
		uint8_t out[OFS_ATTR_LEN];
		if (size != OFS_ATTR_LEN || at.ino != 7)
			abort();
		ofs_attr_encode(&at, out);
		same_but(out, in, 72, 1, 4); /* 1..3 reserved, 72..95 reserved */
		if (ofs_attr_decode(&at2, 7, out, sizeof(out)) != 0 ||
		    memcmp(&at, &at2, sizeof(at)) != 0)
			abort();
	}
	uint64_t child;
	uint8_t dtype;
	if (ofs_dirent_decode(in, size, &child, &dtype) == 0) {
		uint8_t out[OFS_DIRENT_LEN];
		if (size != OFS_DIRENT_LEN || child == 0)
			abort();
		ofs_dirent_encode(child, dtype, out);
		same_but(out, in, size, 0, 0);
	}
	struct ofs_noderec n, n2;
	memset(&n, 0, sizeof(n));
	memset(&n2, 0, sizeof(n2));
	if (ofs_noderec_decode(&n, in, size) == 0) {
		uint8_t out[OFS_NODEREC_LEN];
		if (size != OFS_NODEREC_LEN)
			abort();
		ofs_noderec_encode(&n, out);
		same_but(out, in, size, 1, 8);
		if (ofs_noderec_decode(&n2, out, sizeof(out)) != 0 ||
		    memcmp(&n, &n2, sizeof(n)) != 0)
			abort();
	}
	uint64_t node;
	int64_t at_ns;
	if (ofs_orphan_decode(in, size, &node, &at_ns) == 0) {
		uint8_t out[OFS_ORPHAN_LEN];
		if (size != OFS_ORPHAN_LEN)
			abort();
		ofs_orphan_encode(node, at_ns, out);
		same_but(out, in, size, 0, 0);
	}
}

static void check_history(const uint8_t *in, size_t size)
{
	uint64_t ino = 0, idx = 0;
	struct ofs_hkey k;
	int kind = ofs_hkey_parse(in, size, &ino, &idx);
	if (kind == 0)
		ofs_hkey_writer(&k, ino);
	if (kind == 1)
		ofs_hkey_version(&k, ino, idx);
	if (kind >= 0 && (k.len != size || memcmp(k.b, in, size) != 0))
		abort();
	const char *path;
	size_t len;
	if (ofs_hkey_parse_path(in, size, &path, &len, &ino) == 0 &&
	    (ofs_hkey_path(&k, path, len, ino) != 0 || k.len != size || memcmp(k.b, in, size)))
		abort();
	struct ofs_hversion v, v2;
	memset(&v, 0, sizeof(v));
	memset(&v2, 0, sizeof(v2));
	if (ofs_hversion_decode(&v, in, size) == 0) {
		uint8_t out[OFS_HVERSION_LEN];
		ofs_hversion_encode(&v, out);
		same_but(out, in, size, 0, 0);
		if (ofs_hversion_decode(&v2, out, sizeof(out)) || memcmp(&v, &v2, sizeof(v)))
			abort();
	}
	struct ofs_hwriter w;
	memset(&w, 0, sizeof(w));
	if (ofs_hwriter_decode(&w, in, size) == 0) {
		uint8_t out[OFS_HWRITER_LEN];
		ofs_hwriter_encode(&w, out);
		same_but(out, in, size, 0, 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *in = malloc(size ? size : 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	check_key(in, size);
	check_values(in, size);
	check_history(in, size);
	free(in);
	return 0;
}
