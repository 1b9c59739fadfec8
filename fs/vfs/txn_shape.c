/*
 * What a transaction writes, sorted by what it touches: the names it writes
 * and removes, the inode attributes, blocks and xattrs. The change note of
 * a commit (ofs_note.c) and the replay of an applied change (replay.c) both
 * read a change's kind from it, rather than asking each operation to
 * describe itself.
 */
#include <string.h>

#include "kv.h"
#include "ofs_int.h"

void ofs_txn_shape(const struct kv_txn *t, struct ofs_txn_shape *s)
{
	memset(s, 0, sizeof(*s));
	bool several_attrs = false;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		bool put = op->type == KV_OP_PUT;
		uint64_t ino;
		if (!put && op->type != KV_OP_DELETE && op->type != KV_OP_DELETE_PREFIX)
			continue;
		switch (ofs_key_kind(op->key, op->key_len)) {
		case OFS_K_DIRENT:
			if (op->type == KV_OP_DELETE_PREFIX)
				break; /* a removed directory's entries: it was empty */
			if (put && s->n_put++ < 2)
				s->put[s->n_put - 1] = op;
			if (!put && s->n_del++ < 2)
				s->del[s->n_del - 1] = op;
			break;
		case OFS_K_INODE:
			if (!put) {
				s->frees_inode = true;
			} else if (ofs_key_parse_ino(op->key, op->key_len, &ino) == 0) {
				if (!s->attr)
					s->attr = op;
				else if (ino != s->attr_ino)
					several_attrs = true;
				s->attr_ino = ino;
			}
			break;
		case OFS_K_BLOCK:
			if (!s->block_ino && ofs_key_parse_ino(op->key, op->key_len, &ino) == 0)
				s->block_ino = ino;
			break;
		case OFS_K_XATTR:
			if (!s->xattr_ino && ofs_key_parse_ino(op->key, op->key_len, &ino) == 0)
				s->xattr_ino = ino;
			break;
		default:
			break;
		}
	}
	if (several_attrs)
		s->attr_ino = 0;
}
