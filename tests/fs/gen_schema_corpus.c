/*
 * Writes the seed corpus of fuzz_schema: one key of every kind and one value
 * of every stored kind, made by the schema's own encoders.
 *
 *   fs_gen_schema_corpus DIR   (the checked-in copy is tests/fs/fuzz_schema_corpus)
 *
 * Regenerate after a change of the key layout or a value format.
 */
#include <stdio.h>
#include <sys/stat.h>

#include "ofs_history.h"
#include "schema.h"
#include "corpus.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const char *d = argv[1];
	int rc = 0;
	struct ofs_key k;
	ofs_key_inode(&k, OFS_ROOT_INO);
	rc |= corpus_write(d, "key-inode", k.b, k.len);
	ofs_key_dirent(&k, OFS_ROOT_INO, "hello.txt", 9);
	rc |= corpus_write(d, "key-dirent", k.b, k.len);
	ofs_key_block(&k, 42, 3);
	rc |= corpus_write(d, "key-block", k.b, k.len);
	ofs_key_symlink(&k, 43);
	rc |= corpus_write(d, "key-symlink", k.b, k.len);
	ofs_key_xattr(&k, 42, "user.comment", 12);
	rc |= corpus_write(d, "key-xattr", k.b, k.len);
	ofs_key_node(&k, 2, 0);
	rc |= corpus_write(d, "key-node", k.b, k.len);
	ofs_key_node(&k, 2, 5);
	rc |= corpus_write(d, "key-node-share", k.b, k.len);
	ofs_key_orphan(&k, 44);
	rc |= corpus_write(d, "key-orphan", k.b, k.len);

	struct ofs_attr a = {.mode = S_IFREG | 0644,
			     .uid = 1000,
			     .gid = 1000,
			     .nlink = 1,
			     .size = 12345,
			     .atime_ns = 1700000000000000000,
			     .mtime_ns = 1700000000000000001,
			     .ctime_ns = 1700000000000000002,
			     .change = 9};
	uint8_t attr[OFS_ATTR_LEN];
	ofs_attr_encode(&a, attr);
	rc |= corpus_write(d, "val-attr", attr, sizeof(attr));
	uint8_t dirent[OFS_DIRENT_LEN];
	ofs_dirent_encode(42, 8, dirent);
	rc |= corpus_write(d, "val-dirent", dirent, sizeof(dirent));
	struct ofs_noderec n = {.next = 100, .bytes = -4096, .inodes = 7};
	uint8_t rec[OFS_NODEREC_LEN];
	ofs_noderec_encode(&n, rec);
	rc |= corpus_write(d, "val-noderec", rec, sizeof(rec));
	uint8_t orphan[OFS_ORPHAN_LEN];
	ofs_orphan_encode(2, 1700000000000000000, orphan);
	rc |= corpus_write(d, "val-orphan", orphan, sizeof(orphan));

	/* file history (ofs_history.h) */
	struct ofs_hkey h;
	ofs_hkey_writer(&h, 42);
	rc |= corpus_write(d, "hist-key-writer", h.b, h.len);
	ofs_hkey_version(&h, 42, 1187);
	rc |= corpus_write(d, "hist-key-version", h.b, h.len);
	ofs_hkey_data(&h, 42, 1187, 0);
	rc |= corpus_write(d, "hist-key-data", h.b, h.len);
	rc |= ofs_hkey_path(&h, "/etc/app.conf", 13, 42) ? 1 : 0;
	rc |= corpus_write(d, "hist-key-path", h.b, h.len);
	struct ofs_hversion hv = {.mode = S_IFREG | 0640,
				  .uid = 1000,
				  .gid = 100,
				  .node = 2,
				  .writer_uid = 1000,
				  .time_ns = 1700000000000000000,
				  .size = 311,
				  .kept_ns = 1700000000000000001,
				  .deleted = true};
	uint8_t hval[OFS_HVERSION_LEN];
	ofs_hversion_encode(&hv, hval);
	rc |= corpus_write(d, "hist-val-version", hval, sizeof(hval));
	struct ofs_hwriter hw = {.node = 3, .uid = 0, .time_ns = 1700000000000000002};
	uint8_t wval[OFS_HWRITER_LEN];
	ofs_hwriter_encode(&hw, wval);
	rc |= corpus_write(d, "hist-val-writer", wval, sizeof(wval));
	return rc;
}
