/*
 * The outbox: messages the core wants sent, plus the memory blocks they
 * point into, all released together once the application has taken them and
 * called in again (the "valid until the next call" rule of omnipaxos.h).
 *
 * Running out of memory while queueing loses the message, as a network
 * would; the protocol's resends and sequence numbers repair that. The outbox
 * never fails a handler.
 */
#include "omnipaxos_int.h"

/* A new zeroed slot at the end of ob, or NULL. */
static struct opx_msg *out_slot(struct opx *px, struct outbox *ob)
{
	if (ob->n == ob->cap) {
		uint32_t cap = ob->cap ? ob->cap * 2 : 64;
		struct opx_msg *m = realloc(ob->msgs, (size_t)cap * sizeof(*m));
		if (!m) {
			px->dropped++;
			return NULL;
		}
		ob->msgs = m;
		ob->cap = cap;
	}
	struct opx_msg *m = &ob->msgs[ob->n++];
	memset(m, 0, sizeof(*m));
	return m;
}

struct opx_msg *out_push(struct opx *px, struct outbox *ob, opx_node_id to, enum opx_msg_type type)
{
	/* The one place every message passes: while a leader's append is
	 * unsynced only its AcceptDecides may be queued (they may leave before
	 * the sync, see sp_leader_flush); anything else may promise what the
	 * unsynced write holds, so the write is made durable first. */
	if (px->unsynced && type != OPX_MSG_ACCEPT_DECIDE && px_sync(px))
		return NULL;
	struct opx_msg *m = out_slot(px, ob);
	if (!m)
		return NULL;
	m->from = px->cfg.pid;
	m->to = to;
	m->config_id = px->cfg.cluster.config_id;
	m->type = type;
	return m;
}

int out_own(struct outbox *ob, void *p)
{
	if (ob->n_blocks == ob->cap_blocks) {
		uint32_t cap = ob->cap_blocks ? ob->cap_blocks * 2 : 16;
		void **b = realloc(ob->blocks, (size_t)cap * sizeof(*b));
		if (!b) {
			free(p);
			return -ENOMEM;
		}
		ob->blocks = b;
		ob->cap_blocks = cap;
	}
	ob->blocks[ob->n_blocks++] = p;
	return 0;
}

struct opx_msg *out_push_dup(struct opx *px, const struct opx_msg *m)
{
	struct opx_msg *c = opx_msg_dup(m);
	if (!c || out_own(&px->out_sp, c)) {
		px->dropped++;
		return NULL;
	}
	struct opx_msg *slot = out_push(px, &px->out_sp, m->to, m->type);
	if (!slot)
		return NULL;
	*slot = *c;
	return slot;
}

struct opx_msg *out_move(struct opx *px, struct outbox *ob, const struct opx_msg *m)
{
	struct opx_msg *slot = out_slot(px, ob);
	if (slot)
		*slot = *m;
	return slot;
}

void out_clear(struct outbox *ob)
{
	for (uint32_t i = 0; i < ob->n_blocks; i++)
		free(ob->blocks[i]);
	ob->n_blocks = 0;
	ob->n = 0;
}

void out_free(struct outbox *ob)
{
	out_clear(ob);
	free(ob->blocks);
	free(ob->msgs);
	memset(ob, 0, sizeof(*ob));
}
