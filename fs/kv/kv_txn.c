/*
 * Transactions of the replicated KV: the builder and the binary encoding that
 * goes into the log.
 *
 * Encoding (little-endian):
 *   u8 version (KV_TXN_VERSION), u8 flags, u64 node_id, u64 seq, u32 n_ops,
 *   then per op: u8 type, u32 key_len, key bytes, and
 *     PUT: u32 value_len, value bytes;  GUARD_VERSION: u64 version;
 *   then, if flags has TXN_F_NOTE, u32 note_len and a change note (kv_note.c).
 * A transaction without a note encodes as before notes existed (flags 0), so
 * old logs decode unchanged. A node built before notes refuses an entry with
 * one as malformed: every node of a cluster must know notes before any
 * proposes them (omnifs has no mixed-version clusters).
 * The decoder trusts nothing: entries come from the log, which came from the
 * network. It checks every length against what is left and against the
 * limits in kv.h, every type, and that nothing trails.
 *
 * It does not interpret the operations: apply (kv_apply.c) does.
 */
#include "kv.h"
#include "kv_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HDR_LEN	   22 /* version, flags, node_id, seq, n_ops */
#define MIN_OP_LEN 5  /* type, key_len (an empty key is refused anyway) */
#define TXN_F_NOTE 1u /* a change note follows the operations */

void kv_txn_init(struct kv_txn *t, uint64_t node_id, uint64_t seq)
{
	memset(t, 0, sizeof(*t));
	t->node_id = node_id;
	t->seq = seq;
	t->owns = true;
	t->enc_len = HDR_LEN;
}

void kv_txn_free(struct kv_txn *t)
{
	if (t->owns) {
		for (uint32_t i = 0; i < t->n_ops; i++)
			free((void *)t->ops[i].key);
		free(t->note);
	}
	free(t->ops);
	uint64_t node = t->node_id, seq = t->seq;
	kv_txn_init(t, node, seq);
}

static size_t op_enc_len(enum kv_op_type type, size_t key_len, size_t value_len)
{
	size_t n = 1 + 4 + key_len;
	if (type == KV_OP_PUT)
		n += 4 + value_len;
	else if (type == KV_OP_GUARD_VERSION)
		n += 8;
	return n;
}

static int add_op(struct kv_txn *t, enum kv_op_type type, const void *key, size_t key_len,
		  const void *value, size_t value_len, uint64_t version)
{
	if (!t->owns || !key || key_len < 1 || key_len > KV_MAX_KEY_LEN ||
	    value_len > KV_MAX_VALUE_LEN || (value_len && !value) || t->n_ops >= KV_MAX_OPS)
		return -EINVAL;
	size_t enc = op_enc_len(type, key_len, value_len);
	if (t->enc_len + enc > KV_MAX_TXN_LEN)
		return -EINVAL;
	if (t->n_ops == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 8;
		struct kv_op *ops = realloc(t->ops, (size_t)cap * sizeof(*ops));
		if (!ops)
			return -ENOMEM;
		t->ops = ops;
		t->cap = cap;
	}
	/* One block per op: the key, then the value. */
	uint8_t *block = malloc(key_len + value_len);
	if (!block)
		return -ENOMEM;
	memcpy(block, key, key_len);
	if (value_len)
		memcpy(block + key_len, value, value_len);
	struct kv_op *op = &t->ops[t->n_ops++];
	op->type = type;
	op->key = block;
	op->key_len = (uint32_t)key_len;
	op->value = block + key_len;
	op->value_len = (uint32_t)value_len;
	op->version = version;
	t->enc_len += enc;
	return 0;
}

int kv_txn_add_put(struct kv_txn *t, const void *key, size_t key_len, const void *value,
		   size_t value_len)
{
	return add_op(t, KV_OP_PUT, key, key_len, value, value_len, 0);
}

int kv_txn_add_delete(struct kv_txn *t, const void *key, size_t key_len)
{
	return add_op(t, KV_OP_DELETE, key, key_len, NULL, 0, 0);
}

int kv_txn_add_delete_prefix(struct kv_txn *t, const void *prefix, size_t prefix_len)
{
	return add_op(t, KV_OP_DELETE_PREFIX, prefix, prefix_len, NULL, 0, 0);
}

int kv_txn_add_guard_absent(struct kv_txn *t, const void *key, size_t key_len)
{
	return add_op(t, KV_OP_GUARD_ABSENT, key, key_len, NULL, 0, 0);
}

int kv_txn_add_guard_present(struct kv_txn *t, const void *key, size_t key_len)
{
	return add_op(t, KV_OP_GUARD_PRESENT, key, key_len, NULL, 0, 0);
}

int kv_txn_add_guard_version(struct kv_txn *t, const void *key, size_t key_len, uint64_t version)
{
	return add_op(t, KV_OP_GUARD_VERSION, key, key_len, NULL, 0, version);
}

int kv_txn_set_note(struct kv_txn *t, const struct kv_note *n)
{
	size_t len = kv_note_encoded_len(n);
	size_t old = t->note ? 4 + t->note_len : 0;
	if (!t->owns || !len || t->enc_len - old + 4 + len > KV_MAX_TXN_LEN)
		return -EINVAL;
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	kv_note_encode(n, b, len);
	free(t->note);
	t->note = b;
	t->note_len = (uint32_t)len;
	t->enc_len = t->enc_len - old + 4 + len;
	return 0;
}

int kv_txn_encode(const struct kv_txn *t, uint8_t **out, size_t *len)
{
	size_t n = HDR_LEN;
	for (uint32_t i = 0; i < t->n_ops; i++)
		n += op_enc_len(t->ops[i].type, t->ops[i].key_len, t->ops[i].value_len);
	if (t->note)
		n += 4 + t->note_len;
	uint8_t *b = malloc(n);
	if (!b)
		return -ENOMEM;
	uint8_t *p = b;
	*p++ = KV_TXN_VERSION;
	*p++ = t->note ? TXN_F_NOTE : 0;
	put_le64(p, t->node_id);
	put_le64(p + 8, t->seq);
	put_le32(p + 16, t->n_ops);
	p += 20;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		*p++ = (uint8_t)op->type;
		put_le32(p, op->key_len);
		memcpy(p + 4, op->key, op->key_len);
		p += 4 + op->key_len;
		if (op->type == KV_OP_PUT) {
			put_le32(p, op->value_len);
			if (op->value_len)
				memcpy(p + 4, op->value, op->value_len);
			p += 4 + op->value_len;
		} else if (op->type == KV_OP_GUARD_VERSION) {
			put_le64(p, op->version);
			p += 8;
		}
	}
	if (t->note) {
		put_le32(p, t->note_len);
		memcpy(p + 4, t->note, t->note_len);
	}
	*out = b;
	*len = n;
	return 0;
}

bool kv__txn_peek_id(const void *entry, size_t len, uint64_t *node_id, uint64_t *seq)
{
	const uint8_t *p = entry;
	if (len < HDR_LEN || p[0] != KV_TXN_VERSION || (p[1] & ~TXN_F_NOTE) != 0)
		return false;
	*node_id = get_le64(p + 2);
	*seq = get_le64(p + 10);
	return true;
}

/* Reads a u32 length and that many bytes, within [*p, end). */
static bool take_bytes(const uint8_t **p, const uint8_t *end, uint32_t max, const uint8_t **bytes,
		       uint32_t *n)
{
	if (end - *p < 4)
		return false;
	uint32_t len = get_le32(*p);
	*p += 4;
	if (len > max || (size_t)(end - *p) < len)
		return false;
	*bytes = *p;
	*n = len;
	*p += len;
	return true;
}

int kv_txn_decode(struct kv_txn *t, const void *entry, size_t len)
{
	const uint8_t *p = entry, *end = p + len;
	uint64_t node, seq;

	memset(t, 0, sizeof(*t));
	if (!entry || len > KV_MAX_TXN_LEN || !kv__txn_peek_id(entry, len, &node, &seq))
		return -EBADMSG;
	uint32_t n = get_le32(p + 18);
	p += HDR_LEN;
	if (n > KV_MAX_OPS || n > (size_t)(end - p) / MIN_OP_LEN)
		return -EBADMSG;
	struct kv_op *ops = calloc(n ? n : 1, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct kv_op *op = &ops[i];
		if (end - p < 1)
			goto out_bad;
		op->type = (enum kv_op_type) * p++;
		if (op->type < KV_OP_PUT || op->type > KV_OP_GUARD_VERSION)
			goto out_bad;
		if (!take_bytes(&p, end, KV_MAX_KEY_LEN, &op->key, &op->key_len) ||
		    op->key_len == 0)
			goto out_bad;
		if (op->type == KV_OP_PUT) {
			if (!take_bytes(&p, end, KV_MAX_VALUE_LEN, &op->value, &op->value_len))
				goto out_bad;
		} else if (op->type == KV_OP_GUARD_VERSION) {
			if (end - p < 8)
				goto out_bad;
			op->version = get_le64(p);
			p += 8;
		}
	}
	const uint8_t *note = NULL;
	uint32_t note_len = 0;
	if (((const uint8_t *)entry)[1] & TXN_F_NOTE) {
		struct kv_note nt;
		if (!take_bytes(&p, end, KV_NOTE_MAX_LEN, &note, &note_len) ||
		    kv_note_decode(&nt, note, note_len))
			goto out_bad;
	}
	if (p != end)
		goto out_bad;
	t->note = (uint8_t *)note; /* borrowed, like the ops: owns is false */
	t->note_len = note_len;
	t->node_id = node;
	t->seq = seq;
	t->ops = ops;
	t->n_ops = n;
	t->cap = n;
	t->owns = false;
	t->enc_len = len;
	return 0;
out_bad:
	free(ops);
	return -EBADMSG;
}
