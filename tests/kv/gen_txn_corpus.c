/*
 * Writes the seed corpus of fuzz_txn: real encoded transactions, built with
 * the builder (one of every operation, an empty one, a filesystem-like one,
 * with and without a change note).
 *
 *   kv_gen_txn_corpus DIR   (the checked-in copy is tests/kv/fuzz_txn_corpus)
 *
 * Regenerate after a change of the transaction encoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "kv.h"

static int write_txn(const char *dir, const char *name, const struct kv_txn *t)
{
	uint8_t *enc;
	size_t len;
	if (kv_txn_encode(t, &enc, &len) != 0)
		return 1;
	int rc = corpus_write(dir, name, enc, len);
	free(enc);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	int rc = 0;
	struct kv_txn t;

	kv_txn_init(&t, 0, 0);
	rc |= write_txn(argv[1], "empty", &t);
	kv_txn_free(&t);

	kv_txn_init(&t, 3, 77);
	rc |= kv_txn_add_guard_absent(&t, "u/a", 3);
	rc |= kv_txn_add_guard_present(&t, "u/b", 3);
	rc |= kv_txn_add_guard_version(&t, "u/c", 3, 12345);
	rc |= kv_txn_add_put(&t, "u/a", 3, "value of a", 10);
	rc |= kv_txn_add_put(&t, "u/empty", 7, "", 0);
	rc |= kv_txn_add_delete(&t, "u/b", 3);
	rc |= kv_txn_add_delete_prefix(&t, "u/", 2);
	rc |= write_txn(argv[1], "every-op", &t);
	kv_txn_free(&t);

	/* The shape of a file write: guard the inode's version, put a block
	 * and the attributes. */
	uint8_t ino[10] = {'F', 'i', 0, 0, 0, 0, 0, 0, 0, 42};
	uint8_t blk[18] = {'F', 'b', 0, 0, 0, 0, 0, 0, 0, 42};
	uint8_t block[300], attr[96];
	memset(block, 'x', sizeof(block));
	memset(attr, 0, sizeof(attr));
	attr[0] = 1;
	kv_txn_init(&t, 1, (uint64_t)5 << 32 | 9);
	rc |= kv_txn_add_guard_version(&t, ino, sizeof(ino), 7);
	rc |= kv_txn_add_put(&t, blk, sizeof(blk), block, sizeof(block));
	rc |= kv_txn_add_put(&t, ino, sizeof(ino), attr, sizeof(attr));
	rc |= write_txn(argv[1], "file-write", &t);
	/* The same with the change note the filesystem attaches. */
	struct kv_note n = {.kind = KV_NOTE_MODIFY,
			    .uid = 1000,
			    .time_ms = 1700000000000,
			    .path = "/etc/app.conf",
			    .path_len = 13};
	rc |= kv_txn_set_note(&t, &n);
	rc |= write_txn(argv[1], "file-write-noted", &t);
	kv_txn_free(&t);
	return rc ? 1 : 0;
}
