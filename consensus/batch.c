/*
 * The in-memory batch of entries (spec §11): one growing byte buffer and
 * the (offset, length) of each entry, so buffering an entry costs one copy
 * and no allocation in the steady state. Used for the append batch and for
 * proposals waiting for a leader. It never touches storage.
 */
#include "omnipaxos_int.h"

int batch_push(struct batch *b, const void *data, uint32_t len)
{
	if (b->n == b->cap_ents) {
		uint32_t cap = b->cap_ents ? b->cap_ents * 2 : 64;
		void *e = realloc(b->ents, (size_t)cap * sizeof(*b->ents));
		if (!e)
			return -ENOMEM;
		b->ents = e;
		b->cap_ents = cap;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *buf = realloc(b->buf, cap);
		if (!buf)
			return -ENOMEM;
		b->buf = buf;
		b->cap = cap;
	}
	if (len)
		memcpy(b->buf + b->len, data, len);
	b->ents[b->n].off = b->len;
	b->ents[b->n].len = len;
	b->n++;
	b->len += len;
	return 0;
}

void batch_reset(struct batch *b)
{
	b->n = 0;
	b->len = 0;
}

void batch_free(struct batch *b)
{
	free(b->buf);
	free(b->ents);
	memset(b, 0, sizeof(*b));
}

/* A malloc'd array of the entries pointing into b->buf (caller frees the
 * array, not the bytes), or NULL if memory ran out. */
struct opx_entry *batch_entries(const struct batch *b)
{
	struct opx_entry *e = malloc((size_t)(b->n ? b->n : 1) * sizeof(*e));
	if (!e)
		return NULL;
	for (uint32_t i = 0; i < b->n; i++) {
		e[i].data = b->buf + b->ents[i].off;
		e[i].len = b->ents[i].len;
	}
	return e;
}
