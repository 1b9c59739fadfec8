/*
 * Deep copy of a message into a single allocation (see opx_msg_dup in
 * msg.h). It copies exactly what the message's pointers reach for its type;
 * it does not validate the message.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

static size_t entries_size(const struct opx_entry *e, uint32_t n)
{
	size_t sz = ALIGN8((size_t)n * sizeof(*e));
	for (uint32_t i = 0; i < n; i++)
		sz += ALIGN8(e[i].len);
	return sz;
}

static size_t log_sync_size(const struct opx_log_sync *ls)
{
	size_t sz = entries_size(ls->suffix, ls->n_suffix);
	if (ls->snapshot_kind != OPX_SNAPSHOT_NONE)
		sz += ALIGN8(ls->snapshot_len);
	if (ls->stopsign)
		sz += ALIGN8(sizeof(struct opx_stopsign));
	return sz;
}

/* Copies e[0..n) to *cursor and returns the copy's array. */
static const struct opx_entry *copy_entries(const struct opx_entry *e, uint32_t n, uint8_t **cursor)
{
	struct opx_entry *arr = (struct opx_entry *)(void *)*cursor;
	*cursor += ALIGN8((size_t)n * sizeof(*e));
	for (uint32_t i = 0; i < n; i++) {
		arr[i].len = e[i].len;
		arr[i].data = *cursor;
		if (e[i].len)
			memcpy(*cursor, e[i].data, e[i].len);
		*cursor += ALIGN8(e[i].len);
	}
	return arr;
}

static const struct opx_stopsign *copy_ss(const struct opx_stopsign *ss, uint8_t **cursor)
{
	struct opx_stopsign *c = (struct opx_stopsign *)(void *)*cursor;
	memcpy(c, ss, sizeof(*c));
	*cursor += ALIGN8(sizeof(*c));
	return c;
}

static void copy_log_sync(struct opx_log_sync *ls, uint8_t **cursor)
{
	ls->suffix = copy_entries(ls->suffix, ls->n_suffix, cursor);
	if (ls->snapshot_kind != OPX_SNAPSHOT_NONE) {
		uint8_t *s = *cursor;
		if (ls->snapshot_len)
			memcpy(s, ls->snapshot, ls->snapshot_len);
		ls->snapshot = s;
		*cursor += ALIGN8(ls->snapshot_len);
	} else {
		ls->snapshot = NULL;
		ls->snapshot_len = 0;
	}
	if (ls->stopsign)
		ls->stopsign = copy_ss(ls->stopsign, cursor);
}

struct opx_msg *opx_msg_dup(const struct opx_msg *m)
{
	size_t sz = ALIGN8(sizeof(*m));
	switch (m->type) {
	case OPX_MSG_PROMISE:
		if (m->u.promise.has_log_sync)
			sz += log_sync_size(&m->u.promise.log_sync);
		break;
	case OPX_MSG_ACCEPT_SYNC:
		sz += log_sync_size(&m->u.accept_sync.log_sync);
		break;
	case OPX_MSG_ACCEPT_DECIDE:
		sz += entries_size(m->u.accept_decide.entries, m->u.accept_decide.n_entries);
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		sz += entries_size(m->u.proposal_forward.entries, m->u.proposal_forward.n_entries);
		break;
	case OPX_MSG_ACCEPT_STOPSIGN:
	case OPX_MSG_FORWARD_STOPSIGN:
		sz += ALIGN8(sizeof(struct opx_stopsign));
		break;
	default:
		break;
	}
	uint8_t *block = malloc(sz);
	if (!block)
		return NULL;
	struct opx_msg *c = (struct opx_msg *)(void *)block;
	memcpy(c, m, sizeof(*c));
	uint8_t *cursor = block + ALIGN8(sizeof(*m));
	switch (m->type) {
	case OPX_MSG_PROMISE:
		if (c->u.promise.has_log_sync)
			copy_log_sync(&c->u.promise.log_sync, &cursor);
		break;
	case OPX_MSG_ACCEPT_SYNC:
		copy_log_sync(&c->u.accept_sync.log_sync, &cursor);
		break;
	case OPX_MSG_ACCEPT_DECIDE:
		c->u.accept_decide.entries = copy_entries(m->u.accept_decide.entries,
							  m->u.accept_decide.n_entries, &cursor);
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		c->u.proposal_forward.entries = copy_entries(
			m->u.proposal_forward.entries, m->u.proposal_forward.n_entries, &cursor);
		break;
	case OPX_MSG_ACCEPT_STOPSIGN:
		c->u.accept_stopsign.ss = copy_ss(m->u.accept_stopsign.ss, &cursor);
		break;
	case OPX_MSG_FORWARD_STOPSIGN:
		c->u.forward_stopsign.ss = copy_ss(m->u.forward_stopsign.ss, &cursor);
		break;
	default:
		break;
	}
	return c;
}
