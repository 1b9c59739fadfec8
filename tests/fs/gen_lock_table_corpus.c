/*
 * Writes the seed corpus of fuzz_lock_table: the table's keys, a lease, and
 * records of POSIX, flock and named holders, made by the table's own
 * encoders.
 *
 *   fs_gen_lock_table_corpus DIR   (the checked-in copy is
 *                                   tests/fs/fuzz_lock_table_corpus)
 *
 * Regenerate after a change of the key layout or the record format.
 */
#include <stdio.h>
#include <stdlib.h>

#include "corpus.h"
#include "lock_table.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const char *d = argv[1];
	int rc = 0;
	struct lk_key res, k;
	lk_res_inode(&res, 281474976710657ull);
	lk_key_record(&k, &res);
	rc |= corpus_write(d, "key-record-inode", k.b, k.len);
	lk_res_named(&res, "deploy", 6);
	lk_key_record(&k, &res);
	rc |= corpus_write(d, "key-record-named", k.b, k.len);
	lk_key_lease(&k, 2);
	rc |= corpus_write(d, "key-lease", k.b, k.len);
	lk_key_renew(&k, 3);
	rc |= corpus_write(d, "key-renew", k.b, k.len);
	uint8_t e[8];
	lk_lease_encode(0x1234567890abcdefull, e);
	rc |= corpus_write(d, "val-lease", e, sizeof(e));

	struct lk_record r;
	lk_record_init(&r);
	struct lk_holder p = {.node = 1,
			      .epoch = 77,
			      .owner = 0xabc,
			      .fh = 0x7f00,
			      .start = 0,
			      .end = 99,
			      .pid = 4242,
			      .type = LK_WRITE,
			      .kind = LK_POSIX};
	struct lk_holder s = {.node = 2,
			      .epoch = 78,
			      .owner = 0xdef,
			      .fh = 0x7f10,
			      .start = 100,
			      .end = LK_EOF,
			      .pid = 4343,
			      .type = LK_READ,
			      .kind = LK_POSIX};
	struct lk_holder f = {.node = 3,
			      .epoch = 79,
			      .owner = 0x123,
			      .fh = 0x7f20,
			      .start = 0,
			      .end = LK_EOF,
			      .pid = 4444,
			      .type = LK_WRITE,
			      .kind = LK_FLOCK};
	struct lk_holder n = {.node = 1,
			      .epoch = 77,
			      .owner = 9,
			      .start = 0,
			      .end = LK_EOF,
			      .pid = 4545,
			      .type = LK_WRITE,
			      .kind = LK_NAMED};
	uint8_t *buf;
	size_t len;
	rc |= lk_apply(&r, &p) != 0;
	rc |= lk_apply(&r, &s) != 0;
	if (lk_record_encode(&r, &buf, &len) == 0) {
		rc |= corpus_write(d, "val-record-posix", buf, len);
		free(buf);
	}
	lk_record_free(&r);
	rc |= lk_apply(&r, &f) != 0;
	if (lk_record_encode(&r, &buf, &len) == 0) {
		rc |= corpus_write(d, "val-record-flock", buf, len);
		free(buf);
	}
	lk_record_free(&r);
	rc |= lk_apply(&r, &n) != 0;
	if (lk_record_encode(&r, &buf, &len) == 0) {
		rc |= corpus_write(d, "val-record-named", buf, len);
		free(buf);
	}
	lk_record_free(&r);
	return rc;
}
