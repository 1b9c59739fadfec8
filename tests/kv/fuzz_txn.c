/*
 * libFuzzer target for the KV transaction decoder (kv_txn_decode: every log
 * entry comes from the network). Build with -Dfuzz=true and CC=clang;
 * tools/fuzz.sh runs it. kv_import_chunk's checks sit behind an open
 * RocksDB store: fuzz_chunk fuzzes them there.
 *
 * Oracles besides ASan/UBSan: decoding is canonical, a transaction that
 * decodes encodes to exactly the input bytes; the builder accepts every
 * operation (and change note) the decoder accepted and the transaction it
 * builds encodes to the same bytes too (decoder and builder agree on the limits); a refused entry
 * leaves the transaction empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int add_like(struct kv_txn *b, const struct kv_op *op)
{
	switch (op->type) {
	case KV_OP_PUT:
		return kv_txn_add_put(b, op->key, op->key_len, op->value, op->value_len);
	case KV_OP_DELETE:
		return kv_txn_add_delete(b, op->key, op->key_len);
	case KV_OP_DELETE_PREFIX:
		return kv_txn_add_delete_prefix(b, op->key, op->key_len);
	case KV_OP_GUARD_ABSENT:
		return kv_txn_add_guard_absent(b, op->key, op->key_len);
	case KV_OP_GUARD_PRESENT:
		return kv_txn_add_guard_present(b, op->key, op->key_len);
	case KV_OP_GUARD_VERSION:
		return kv_txn_add_guard_version(b, op->key, op->key_len, op->version);
	}
	abort();
}

static void check_encodes_to(const struct kv_txn *t, const uint8_t *want, size_t size)
{
	uint8_t *enc = NULL;
	size_t len = 0;
	if (kv_txn_encode(t, &enc, &len) != 0)
		abort();
	if (len != size || memcmp(enc, want, size) != 0)
		abort();
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *entry = malloc(size ? size : 1);
	if (!entry)
		return 0;
	memcpy(entry, data, size);

	struct kv_txn t;
	int rc = kv_txn_decode(&t, entry, size);
	if (rc != 0) {
		if (rc != -EBADMSG || t.n_ops != 0 || t.ops != NULL)
			abort();
		free(entry);
		return 0;
	}
	if (t.n_ops > KV_MAX_OPS)
		abort();
	check_encodes_to(&t, entry, size);

	struct kv_txn b;
	kv_txn_init(&b, t.node_id, t.seq);
	for (uint32_t i = 0; i < t.n_ops; i++)
		if (add_like(&b, &t.ops[i]) != 0)
			abort();
	if (t.note) {
		struct kv_note n;
		if (kv_note_decode(&n, t.note, t.note_len) != 0 || kv_txn_set_note(&b, &n) != 0)
			abort();
	}
	check_encodes_to(&b, entry, size);
	kv_txn_free(&b);
	kv_txn_free(&t);
	free(entry);
	return 0;
}
