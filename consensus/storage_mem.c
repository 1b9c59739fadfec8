/*
 * In-memory storage (see storage_mem.h). A state is the scalars, the
 * stop-sign, the snapshot bytes and the stored entries [start, start + n),
 * each entry in its own allocation. write_atomically first validates the
 * operations and makes every copy it needs, then applies them, so a failure
 * (bad operation, no memory, injected fault) leaves the state untouched.
 *
 * In manual-sync mode a second, durable state is kept; sync makes it a copy
 * of the live one and crash makes the live one a copy of it. Deliberately
 * simple: copies cost O(log) and only tests use this mode.
 */
#include "storage_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mem_state {
	bool has_promise, has_acc;
	struct opx_ballot promise, acc;
	uint64_t decided, compacted;
	bool has_ss;
	struct opx_stopsign ss;
	uint8_t *snap; /* NULL: none */
	uint32_t snap_len;
	struct opx_entry *ents; /* ents[head .. head + n) hold [start, start + n) */
	uint64_t head, n, cap;
	uint64_t start;
};

struct opx_storage_mem {
	struct mem_state live;
	struct mem_state *durable; /* manual sync only */
	uint64_t writes;
	uint64_t fail_at; /* writes count at which to fail; 0: never */
	bool fail_persistent;
	uint64_t bytes_copied;
	bool unsynced; /* manual sync: a write_unsynced since the last sync */
};

static void state_free(struct mem_state *s)
{
	for (uint64_t i = 0; i < s->n; i++)
		free((void *)s->ents[s->head + i].data);
	free(s->ents);
	free(s->snap);
	memset(s, 0, sizeof(*s));
}

static int state_copy(struct mem_state *dst, const struct mem_state *src)
{
	struct mem_state d = *src;
	d.ents = NULL;
	d.snap = NULL;
	d.head = 0;
	d.n = 0;
	d.cap = 0;
	if (src->snap) {
		d.snap = malloc(src->snap_len ? src->snap_len : 1);
		if (!d.snap)
			return -ENOMEM;
		memcpy(d.snap, src->snap, src->snap_len);
	}
	if (src->n) {
		d.ents = malloc(src->n * sizeof(*d.ents));
		if (!d.ents)
			goto nomem;
		d.cap = src->n;
		for (uint64_t i = 0; i < src->n; i++) {
			const struct opx_entry *e = &src->ents[src->head + i];
			uint8_t *c = malloc(e->len ? e->len : 1);
			if (!c)
				goto nomem;
			memcpy(c, e->data, e->len);
			d.ents[i].data = c;
			d.ents[i].len = e->len;
			d.n++;
		}
	}
	*dst = d;
	return 0;
nomem:
	state_free(&d);
	return -ENOMEM;
}

struct opx_storage_mem *opx_storage_mem_new(void)
{
	return calloc(1, sizeof(struct opx_storage_mem));
}

void opx_storage_mem_destroy(struct opx_storage_mem **psm)
{
	struct opx_storage_mem *sm = *psm;
	if (!sm)
		return;
	state_free(&sm->live);
	if (sm->durable) {
		state_free(sm->durable);
		free(sm->durable);
	}
	free(sm);
	*psm = NULL;
}

void opx_storage_mem_fail_write(struct opx_storage_mem *sm, uint64_t nth, bool persistent)
{
	sm->fail_at = nth ? sm->writes + nth : 0;
	sm->fail_persistent = persistent;
}

uint64_t opx_storage_mem_writes(const struct opx_storage_mem *sm)
{
	return sm->writes;
}

uint64_t opx_storage_mem_bytes_copied(const struct opx_storage_mem *sm)
{
	return sm->bytes_copied;
}

int opx_storage_mem_sync(struct opx_storage_mem *sm)
{
	sm->unsynced = false;
	if (!sm->durable)
		return 0;
	struct mem_state c;
	int rc = state_copy(&c, &sm->live);
	if (rc)
		return rc;
	state_free(sm->durable);
	*sm->durable = c;
	return 0;
}

int opx_storage_mem_set_manual_sync(struct opx_storage_mem *sm, bool on)
{
	if (on && !sm->durable) {
		sm->durable = calloc(1, sizeof(*sm->durable));
		if (!sm->durable)
			return -ENOMEM;
		return opx_storage_mem_sync(sm);
	}
	if (!on && sm->durable) {
		state_free(sm->durable);
		free(sm->durable);
		sm->durable = NULL;
	}
	return 0;
}

bool opx_storage_mem_unsynced(const struct opx_storage_mem *sm)
{
	return sm->unsynced;
}

int opx_storage_mem_crash(struct opx_storage_mem *sm)
{
	sm->unsynced = false;
	if (!sm->durable)
		return 0;
	struct mem_state c;
	int rc = state_copy(&c, sm->durable);
	if (rc)
		return rc;
	state_free(&sm->live);
	sm->live = c;
	return 0;
}

/* Drops stored entries at index >= idx. */
static void truncate_at(struct mem_state *s, uint64_t idx)
{
	while (s->n && s->start + s->n > idx) {
		s->n--;
		free((void *)s->ents[s->head + s->n].data);
	}
}

/* Drops stored entries at index < idx. */
static void trim_below(struct mem_state *s, uint64_t idx)
{
	while (s->n && s->start < idx) {
		free((void *)s->ents[s->head].data);
		s->head++;
		s->n--;
		s->start++;
	}
	if (s->start < idx)
		s->start = idx; /* trimmed past the end: the log restarts there */
	if (s->n == 0)
		s->head = 0;
}

static int mem_write(void *impl, const struct opx_storage_op *ops, size_t n_ops)
{
	struct opx_storage_mem *sm = impl;
	struct mem_state *s = &sm->live;
	sm->writes++;
	if (sm->fail_at &&
	    (sm->writes == sm->fail_at || (sm->fail_persistent && sm->writes > sm->fail_at)))
		return -EIO;

	/* validate, count what will be appended, copy the bytes */
	uint64_t start = s->start, end = s->start + s->n, appended = 0;
	for (size_t i = 0; i < n_ops; i++) {
		const struct opx_storage_op *op = &ops[i];
		switch (op->type) {
		case OPX_OP_APPEND_ENTRIES:
			end += op->u.append.n;
			appended += op->u.append.n;
			break;
		case OPX_OP_APPEND_ON_PREFIX:
			if (op->u.append.from_idx < start || op->u.append.from_idx > end)
				return -EINVAL;
			end = op->u.append.from_idx + op->u.append.n;
			appended += op->u.append.n;
			break;
		case OPX_OP_TRIM:
			if (op->u.idx > start)
				start = op->u.idx;
			if (end < start)
				end = start;
			break;
		case OPX_OP_SET_PROMISE:
		case OPX_OP_SET_DECIDED_IDX:
		case OPX_OP_SET_ACCEPTED_ROUND:
		case OPX_OP_SET_COMPACTED_IDX:
		case OPX_OP_SET_STOPSIGN:
		case OPX_OP_SET_SNAPSHOT:
			break;
		default:
			return -EINVAL;
		}
	}
	uint8_t **copies = malloc((appended ? appended : 1) * sizeof(*copies));
	uint8_t *snap = NULL;
	uint32_t snap_len = 0;
	bool snap_set = false;
	if (!copies)
		return -ENOMEM;
	uint64_t k = 0;
	for (size_t i = 0; i < n_ops; i++) {
		const struct opx_storage_op *op = &ops[i];
		if (op->type == OPX_OP_APPEND_ENTRIES || op->type == OPX_OP_APPEND_ON_PREFIX) {
			for (uint32_t j = 0; j < op->u.append.n; j++) {
				const struct opx_entry *e = &op->u.append.entries[j];
				copies[k] = malloc(e->len ? e->len : 1);
				if (!copies[k])
					goto nomem;
				memcpy(copies[k], e->data, e->len);
				sm->bytes_copied += e->len;
				k++;
			}
		} else if (op->type == OPX_OP_SET_SNAPSHOT) {
			free(snap);
			snap = NULL;
			snap_len = 0;
			snap_set = true;
			if (op->u.snapshot.data) {
				snap = malloc(op->u.snapshot.len ? op->u.snapshot.len : 1);
				if (!snap)
					goto nomem;
				memcpy(snap, op->u.snapshot.data, op->u.snapshot.len);
				snap_len = op->u.snapshot.len;
			}
		}
	}
	/* room for the worst case, so applying cannot fail */
	if (s->head + s->n + appended > s->cap) {
		if (s->head) {
			memmove(s->ents, s->ents + s->head, s->n * sizeof(*s->ents));
			s->head = 0;
		}
		if (s->n + appended > s->cap) {
			uint64_t cap = s->cap ? s->cap : 64;
			while (cap < s->n + appended)
				cap *= 2;
			struct opx_entry *e = realloc(s->ents, cap * sizeof(*e));
			if (!e)
				goto nomem;
			s->ents = e;
			s->cap = cap;
		}
	}

	/* apply */
	k = 0;
	for (size_t i = 0; i < n_ops; i++) {
		const struct opx_storage_op *op = &ops[i];
		switch (op->type) {
		case OPX_OP_APPEND_ON_PREFIX:
			truncate_at(s, op->u.append.from_idx);
			if (s->n == 0)
				s->start = op->u.append.from_idx;
			/* fall through */
		case OPX_OP_APPEND_ENTRIES:
			if (s->head + s->n + op->u.append.n > s->cap) {
				memmove(s->ents, s->ents + s->head, s->n * sizeof(*s->ents));
				s->head = 0;
			}
			for (uint32_t j = 0; j < op->u.append.n; j++) {
				struct opx_entry *e = &s->ents[s->head + s->n++];
				e->data = copies[k++];
				e->len = op->u.append.entries[j].len;
			}
			break;
		case OPX_OP_TRIM:
			trim_below(s, op->u.idx);
			break;
		case OPX_OP_SET_PROMISE:
			s->has_promise = true;
			s->promise = op->u.ballot;
			break;
		case OPX_OP_SET_ACCEPTED_ROUND:
			s->has_acc = true;
			s->acc = op->u.ballot;
			break;
		case OPX_OP_SET_DECIDED_IDX:
			s->decided = op->u.idx;
			break;
		case OPX_OP_SET_COMPACTED_IDX:
			s->compacted = op->u.idx;
			break;
		case OPX_OP_SET_STOPSIGN:
			s->has_ss = op->u.ss != NULL;
			if (op->u.ss)
				s->ss = *op->u.ss;
			break;
		case OPX_OP_SET_SNAPSHOT:
			break;
		}
	}
	if (snap_set) {
		free(s->snap);
		s->snap = snap;
		s->snap_len = snap_len;
	}
	free(copies);
	return 0;
nomem:
	for (uint64_t i = 0; i < k; i++)
		free(copies[i]);
	free(copies);
	free(snap);
	return -ENOMEM;
}

static int mem_load(void *impl, struct opx_storage_state *st)
{
	struct opx_storage_mem *sm = impl;
	const struct mem_state *s = &sm->live;
	memset(st, 0, sizeof(*st));
	st->has_promise = s->has_promise;
	st->promise = s->promise;
	st->has_accepted_round = s->has_acc;
	st->accepted_round = s->acc;
	st->decided_idx = s->decided;
	st->compacted_idx = s->compacted;
	st->log_end = s->start + s->n;
	if (st->log_end < s->compacted)
		st->log_end = s->compacted;
	st->has_stopsign = s->has_ss;
	if (s->has_ss)
		st->stopsign = s->ss;
	st->has_snapshot = s->snap != NULL;
	return 0;
}

static int mem_get_entries(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out)
{
	struct opx_storage_mem *sm = impl;
	const struct mem_state *s = &sm->live;
	if (from >= to || from < s->start || to > s->start + s->n)
		return 0;
	uint32_t before = out->n;
	for (uint64_t i = from; i < to; i++) {
		const struct opx_entry *e = &s->ents[s->head + (i - s->start)];
		int rc = opx_entry_list_push(out, e->data, e->len);
		if (rc) {
			while (out->n > before)
				free((void *)out->entries[--out->n].data);
			return rc;
		}
	}
	return 0;
}

static int mem_get_snapshot(void *impl, uint8_t **data, uint32_t *len)
{
	struct opx_storage_mem *sm = impl;
	const struct mem_state *s = &sm->live;
	*data = NULL;
	*len = 0;
	if (!s->snap)
		return 0;
	*data = malloc(s->snap_len ? s->snap_len : 1);
	if (!*data)
		return -ENOMEM;
	memcpy(*data, s->snap, s->snap_len);
	*len = s->snap_len;
	return 0;
}

/* Manual sync: what came before is durable (it was written with a sync), this
 * write is not until the next sync. Otherwise a plain write. */
static int mem_write_unsynced(void *impl, const struct opx_storage_op *ops, size_t n_ops)
{
	struct opx_storage_mem *sm = impl;
	if (sm->durable && !sm->unsynced) {
		int rc = opx_storage_mem_sync(sm);
		if (rc)
			return rc;
	}
	int rc = mem_write(impl, ops, n_ops);
	if (!rc && sm->durable)
		sm->unsynced = true;
	return rc;
}

static int mem_sync_op(void *impl)
{
	return opx_storage_mem_sync(impl);
}

static const struct opx_storage_ops mem_ops = {
	.version = OPX_STORAGE_VERSION,
	.write_atomically = mem_write,
	.load = mem_load,
	.get_entries = mem_get_entries,
	.get_snapshot = mem_get_snapshot,
	.write_unsynced = mem_write_unsynced,
	.sync = mem_sync_op,
};

struct opx_storage opx_storage_mem_storage(struct opx_storage_mem *sm)
{
	return (struct opx_storage){.ops = &mem_ops, .impl = sm};
}
