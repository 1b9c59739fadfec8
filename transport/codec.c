/*
 * Encoder and decoder of the wire format described in codec.h.
 *
 * One set of payload routines serves both the size query and the real
 * encoding: a writer without a buffer only counts. The decoder reads through
 * a cursor that turns every out-of-range read into a sticky error, so each
 * message routine can read field after field and check once at the end.
 * Nothing here allocates: entry arrays and stop-signs go into the caller's
 * scratch area.
 */
#include "codec.h"

#include "byteorder.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer: counts when p is NULL ---- */

struct wr {
	uint8_t *p;
	size_t off;
	bool bad; /* something could not be encoded */
};

static void w8(struct wr *w, uint8_t v)
{
	if (w->p)
		w->p[w->off] = v;
	w->off += 1;
}

static void w32(struct wr *w, uint32_t v)
{
	if (w->p)
		put_le32(w->p + w->off, v);
	w->off += 4;
}

static void w64(struct wr *w, uint64_t v)
{
	if (w->p)
		put_le64(w->p + w->off, v);
	w->off += 8;
}

static void wbytes(struct wr *w, const uint8_t *data, uint32_t len)
{
	if (len && !data) {
		w->bad = true;
		return;
	}
	w32(w, len);
	if (w->p && len)
		memcpy(w->p + w->off, data, len);
	w->off += len;
}

static void wballot(struct wr *w, const struct opx_ballot *b)
{
	w32(w, b->config_id);
	w32(w, b->n);
	w32(w, b->priority);
	w64(w, b->pid);
}

static void wseq(struct wr *w, const struct opx_seq *s)
{
	w64(w, s->session);
	w64(w, s->counter);
}

static void wentries(struct wr *w, const struct opx_entry *e, uint32_t n)
{
	if (n && !e) {
		w->bad = true;
		return;
	}
	w32(w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].len > OPX_MAX_ENTRY_LEN)
			w->bad = true;
		wbytes(w, e[i].data, e[i].len);
	}
}

static void wstopsign(struct wr *w, const struct opx_stopsign *ss)
{
	const struct opx_cluster_config *c = &ss->next;
	if (c->n_nodes > OPX_MAX_NODES || ss->metadata_len > OPX_MAX_METADATA_LEN) {
		w->bad = true;
		return;
	}
	w32(w, c->config_id);
	w32(w, c->n_nodes);
	for (uint32_t i = 0; i < c->n_nodes; i++)
		w64(w, c->nodes[i]);
	w32(w, c->read_quorum);
	w32(w, c->write_quorum);
	wbytes(w, ss->metadata, ss->metadata_len);
}

static void wopt_stopsign(struct wr *w, const struct opx_stopsign *ss)
{
	w8(w, ss != NULL);
	if (ss)
		wstopsign(w, ss);
}

static void wlog_sync(struct wr *w, const struct opx_log_sync *ls)
{
	switch (ls->snapshot_kind) {
	case OPX_SNAPSHOT_NONE:
		if (ls->snapshot_len)
			w->bad = true;
		break;
	case OPX_SNAPSHOT_COMPLETE:
	case OPX_SNAPSHOT_DELTA:
		break;
	default:
		w->bad = true;
		return;
	}
	w8(w, (uint8_t)ls->snapshot_kind);
	wbytes(w, ls->snapshot, ls->snapshot_len);
	w64(w, ls->sync_idx);
	wentries(w, ls->suffix, ls->n_suffix);
	wopt_stopsign(w, ls->stopsign);
}

static void wpayload(struct wr *w, const struct opx_msg *m)
{
	switch (m->type) {
	case OPX_MSG_HB_REQUEST:
		w32(w, m->u.hb_request.round);
		break;
	case OPX_MSG_HB_REPLY: {
		const struct opx_msg_hb_reply *r = &m->u.hb_reply;
		w32(w, r->round);
		wballot(w, &r->ballot);
		wballot(w, &r->leader);
		w8(w, r->happy);
		break;
	}
	case OPX_MSG_PREPARE_REQ:
		wballot(w, &m->u.prepare_req.n);
		break;
	case OPX_MSG_PREPARE: {
		const struct opx_msg_prepare *p = &m->u.prepare;
		wballot(w, &p->n);
		w64(w, p->decided_idx);
		wballot(w, &p->n_accepted);
		w64(w, p->accepted_idx);
		break;
	}
	case OPX_MSG_PROMISE: {
		const struct opx_msg_promise *p = &m->u.promise;
		wballot(w, &p->n);
		wballot(w, &p->n_accepted);
		w64(w, p->decided_idx);
		w64(w, p->accepted_idx);
		w8(w, p->has_log_sync);
		if (p->has_log_sync)
			wlog_sync(w, &p->log_sync);
		break;
	}
	case OPX_MSG_ACCEPT_SYNC: {
		const struct opx_msg_accept_sync *a = &m->u.accept_sync;
		wballot(w, &a->n);
		wseq(w, &a->seq);
		w64(w, a->decided_idx);
		wlog_sync(w, &a->log_sync);
		break;
	}
	case OPX_MSG_ACCEPT_DECIDE: {
		const struct opx_msg_accept_decide *a = &m->u.accept_decide;
		wballot(w, &a->n);
		wseq(w, &a->seq);
		w64(w, a->decided_idx);
		wentries(w, a->entries, a->n_entries);
		break;
	}
	case OPX_MSG_ACCEPTED:
		wballot(w, &m->u.accepted.n);
		w64(w, m->u.accepted.accepted_idx);
		break;
	case OPX_MSG_DECIDE:
		wballot(w, &m->u.decide.n);
		wseq(w, &m->u.decide.seq);
		w64(w, m->u.decide.decided_idx);
		break;
	case OPX_MSG_NOT_ACCEPTED:
		wballot(w, &m->u.not_accepted.n);
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		wentries(w, m->u.proposal_forward.entries, m->u.proposal_forward.n_entries);
		break;
	case OPX_MSG_COMPACTION: {
		const struct opx_msg_compaction *c = &m->u.compaction;
		if ((c->kind != OPX_COMPACTION_TRIM && c->kind != OPX_COMPACTION_SNAPSHOT) ||
		    (c->kind == OPX_COMPACTION_TRIM && !c->has_idx))
			w->bad = true;
		w8(w, (uint8_t)c->kind);
		w8(w, c->has_idx);
		w64(w, c->has_idx ? c->idx : 0);
		break;
	}
	case OPX_MSG_ACCEPT_STOPSIGN:
		if (!m->u.accept_stopsign.ss) {
			w->bad = true;
			break;
		}
		wballot(w, &m->u.accept_stopsign.n);
		wseq(w, &m->u.accept_stopsign.seq);
		wstopsign(w, m->u.accept_stopsign.ss);
		break;
	case OPX_MSG_FORWARD_STOPSIGN:
		if (!m->u.forward_stopsign.ss) {
			w->bad = true;
			break;
		}
		wstopsign(w, m->u.forward_stopsign.ss);
		break;
	default:
		w->bad = true;
	}
}

static void whdr(uint8_t *p, uint8_t type, uint64_t cluster_id, uint64_t from, uint64_t to,
		 uint32_t config_id, uint32_t payload_len)
{
	put_le32(p, TP_WIRE_MAGIC);
	p[4] = TP_WIRE_VERSION;
	p[5] = type;
	put_le16(p + 6, 0);
	put_le64(p + 8, cluster_id);
	put_le64(p + 16, from);
	put_le64(p + 24, to);
	put_le32(p + 32, config_id);
	put_le32(p + 36, payload_len);
}

int tp_encoded_len(const struct opx_msg *m, size_t *len)
{
	struct wr w = {0};
	wpayload(&w, m);
	if (w.bad || w.off > UINT32_MAX)
		return -EINVAL;
	*len = TP_HDR_LEN + w.off;
	return 0;
}

int tp_encode_msg(uint64_t cluster_id, const struct opx_msg *m, uint8_t *buf, size_t cap,
		  size_t *len)
{
	size_t need;
	int rc = tp_encoded_len(m, &need);
	if (rc)
		return rc;
	*len = need;
	if (cap < need)
		return -ENOBUFS;
	whdr(buf, (uint8_t)m->type, cluster_id, m->from, m->to, m->config_id,
	     (uint32_t)(need - TP_HDR_LEN));
	struct wr w = {.p = buf + TP_HDR_LEN};
	wpayload(&w, m);
	return 0;
}

void tp_buf_free(struct tp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int tp_encode_msg_buf(uint64_t cluster_id, const struct opx_msg *m, struct tp_buf *b)
{
	size_t need;
	int rc = tp_encoded_len(m, &need);
	if (rc)
		return rc;
	if (b->cap < need) {
		uint8_t *p = realloc(b->data, need);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = need;
	}
	return tp_encode_msg(cluster_id, m, b->data, b->cap, &b->len);
}

size_t tp_app_encoded_len(size_t data_len)
{
	if (data_len > UINT32_MAX - 2)
		return 0;
	return TP_HDR_LEN + 2 + data_len;
}

int tp_encode_app(uint64_t cluster_id, uint64_t from, uint64_t to, uint32_t config_id,
		  const struct tp_app *app, uint8_t *buf, size_t cap, size_t *len)
{
	size_t need = tp_app_encoded_len(app->len);
	if (!need || (app->len && !app->data))
		return -EINVAL;
	*len = need;
	if (cap < need)
		return -ENOBUFS;
	whdr(buf, TP_FRAME_APP, cluster_id, from, to, config_id, (uint32_t)(need - TP_HDR_LEN));
	put_le16(buf + TP_HDR_LEN, app->app_type);
	if (app->len)
		memcpy(buf + TP_HDR_LEN + 2, app->data, app->len);
	return 0;
}

/* ---- reader: errors are sticky, reads past the end yield zeros ---- */

struct rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err; /* first error, 0 if none */
	/* scratch for entry arrays and stop-signs */
	uint8_t *scratch;
	size_t scratch_len;
	size_t scratch_used;
	size_t scratch_need; /* set with -ENOBUFS */
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		if (!r->err)
			r->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

static uint8_t r8(struct rd *r)
{
	const uint8_t *p = take(r, 1);
	return p ? p[0] : 0;
}

static uint32_t r32(struct rd *r)
{
	const uint8_t *p = take(r, 4);
	return p ? get_le32(p) : 0;
}

static uint64_t r64(struct rd *r)
{
	const uint8_t *p = take(r, 8);
	return p ? get_le64(p) : 0;
}

static bool rbool(struct rd *r)
{
	uint8_t v = r8(r);
	if (v > 1 && !r->err)
		r->err = -EBADMSG;
	return v == 1;
}

/* reserve: what may still be allocated after this, counted into need on failure. */
static void *alloc_scratch(struct rd *r, size_t n, size_t reserve)
{
	const size_t a = alignof(max_align_t);
	size_t start = (r->scratch_used + a - 1) & ~(a - 1);
	if (r->err)
		return NULL;
	if (start > r->scratch_len || n > r->scratch_len - start) {
		r->scratch_need = start + n + reserve;
		r->err = -ENOBUFS;
		return NULL;
	}
	r->scratch_used = start + n;
	return r->scratch + start;
}

/* A length-prefixed byte string, borrowed from the frame. */
static const uint8_t *rbytes(struct rd *r, uint32_t *len, uint32_t max)
{
	uint32_t n = r32(r);
	if (!r->err && n > max)
		r->err = -EBADMSG;
	const uint8_t *p = take(r, n);
	*len = p ? n : 0;
	return p;
}

static void rballot(struct rd *r, struct opx_ballot *b)
{
	b->config_id = r32(r);
	b->n = r32(r);
	b->priority = r32(r);
	b->pid = r64(r);
}

static void rseq(struct rd *r, struct opx_seq *s)
{
	s->session = r64(r);
	s->counter = r64(r);
}

static const struct opx_entry *rentries(struct rd *r, uint32_t *count)
{
	uint32_t n = r32(r);
	*count = 0;
	/* Each entry needs at least its 4-byte length: this bounds the array by the frame. */
	if (r->err || n > (r->len - r->off) / 4) {
		if (!r->err)
			r->err = -EBADMSG;
		return NULL;
	}
	if (n == 0)
		return NULL;
	struct opx_entry *e = alloc_scratch(r, (size_t)n * sizeof(*e),
					    alignof(max_align_t) + sizeof(struct opx_stopsign));
	if (!e)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		e[i].data = rbytes(r, &e[i].len, OPX_MAX_ENTRY_LEN);
	if (r->err)
		return NULL;
	*count = n;
	return e;
}

static const struct opx_stopsign *rstopsign(struct rd *r)
{
	/* The smallest stop-sign is 20 bytes: check before taking scratch. */
	if (r->err || r->len - r->off < 20) {
		if (!r->err)
			r->err = -EBADMSG;
		return NULL;
	}
	struct opx_stopsign *ss = alloc_scratch(r, sizeof(*ss), 0);
	if (!ss)
		return NULL;
	struct opx_cluster_config *c = &ss->next;
	memset(c, 0, sizeof(*c));
	c->config_id = r32(r);
	c->n_nodes = r32(r);
	if (c->n_nodes > OPX_MAX_NODES) {
		r->err = -EBADMSG;
		return NULL;
	}
	for (uint32_t i = 0; i < c->n_nodes; i++)
		c->nodes[i] = r64(r);
	c->read_quorum = r32(r);
	c->write_quorum = r32(r);
	uint32_t mlen;
	const uint8_t *meta = rbytes(r, &mlen, OPX_MAX_METADATA_LEN);
	if (r->err)
		return NULL;
	ss->metadata_len = mlen;
	if (mlen)
		memcpy(ss->metadata, meta, mlen);
	return ss;
}

static const struct opx_stopsign *ropt_stopsign(struct rd *r)
{
	return rbool(r) ? rstopsign(r) : NULL;
}

static void rlog_sync(struct rd *r, struct opx_log_sync *ls)
{
	uint8_t kind = r8(r);
	if (kind > OPX_SNAPSHOT_DELTA && !r->err)
		r->err = -EBADMSG;
	ls->snapshot_kind = (enum opx_snapshot_kind)kind;
	ls->snapshot = rbytes(r, &ls->snapshot_len, UINT32_MAX);
	if (kind == OPX_SNAPSHOT_NONE && ls->snapshot_len && !r->err)
		r->err = -EBADMSG;
	if (!ls->snapshot_len)
		ls->snapshot = NULL;
	ls->sync_idx = r64(r);
	ls->suffix = rentries(r, &ls->n_suffix);
	ls->stopsign = ropt_stopsign(r);
}

static void rpayload(struct rd *r, struct opx_msg *m)
{
	switch (m->type) {
	case OPX_MSG_HB_REQUEST:
		m->u.hb_request.round = r32(r);
		break;
	case OPX_MSG_HB_REPLY: {
		struct opx_msg_hb_reply *h = &m->u.hb_reply;
		h->round = r32(r);
		rballot(r, &h->ballot);
		rballot(r, &h->leader);
		h->happy = rbool(r);
		break;
	}
	case OPX_MSG_PREPARE_REQ:
		rballot(r, &m->u.prepare_req.n);
		break;
	case OPX_MSG_PREPARE: {
		struct opx_msg_prepare *p = &m->u.prepare;
		rballot(r, &p->n);
		p->decided_idx = r64(r);
		rballot(r, &p->n_accepted);
		p->accepted_idx = r64(r);
		break;
	}
	case OPX_MSG_PROMISE: {
		struct opx_msg_promise *p = &m->u.promise;
		rballot(r, &p->n);
		rballot(r, &p->n_accepted);
		p->decided_idx = r64(r);
		p->accepted_idx = r64(r);
		p->has_log_sync = rbool(r);
		if (p->has_log_sync)
			rlog_sync(r, &p->log_sync);
		break;
	}
	case OPX_MSG_ACCEPT_SYNC: {
		struct opx_msg_accept_sync *a = &m->u.accept_sync;
		rballot(r, &a->n);
		rseq(r, &a->seq);
		a->decided_idx = r64(r);
		rlog_sync(r, &a->log_sync);
		break;
	}
	case OPX_MSG_ACCEPT_DECIDE: {
		struct opx_msg_accept_decide *a = &m->u.accept_decide;
		rballot(r, &a->n);
		rseq(r, &a->seq);
		a->decided_idx = r64(r);
		a->entries = rentries(r, &a->n_entries);
		break;
	}
	case OPX_MSG_ACCEPTED:
		rballot(r, &m->u.accepted.n);
		m->u.accepted.accepted_idx = r64(r);
		break;
	case OPX_MSG_DECIDE:
		rballot(r, &m->u.decide.n);
		rseq(r, &m->u.decide.seq);
		m->u.decide.decided_idx = r64(r);
		break;
	case OPX_MSG_NOT_ACCEPTED:
		rballot(r, &m->u.not_accepted.n);
		break;
	case OPX_MSG_PROPOSAL_FORWARD:
		m->u.proposal_forward.entries = rentries(r, &m->u.proposal_forward.n_entries);
		break;
	case OPX_MSG_COMPACTION: {
		struct opx_msg_compaction *c = &m->u.compaction;
		uint8_t kind = r8(r);
		c->has_idx = rbool(r);
		c->idx = r64(r);
		if (r->err)
			break;
		if ((kind != OPX_COMPACTION_TRIM && kind != OPX_COMPACTION_SNAPSHOT) ||
		    (kind == OPX_COMPACTION_TRIM && !c->has_idx) || (!c->has_idx && c->idx))
			r->err = -EBADMSG;
		c->kind = (enum opx_compaction_kind)kind;
		break;
	}
	case OPX_MSG_ACCEPT_STOPSIGN:
		rballot(r, &m->u.accept_stopsign.n);
		rseq(r, &m->u.accept_stopsign.seq);
		m->u.accept_stopsign.ss = rstopsign(r);
		break;
	case OPX_MSG_FORWARD_STOPSIGN:
		m->u.forward_stopsign.ss = rstopsign(r);
		break;
	default:
		r->err = -EBADMSG;
	}
}

size_t tp_decode_scratch_len(size_t frame_len)
{
	/* At most one entry array (each entry >= 4 wire bytes) and one stop-sign. */
	const size_t a = alignof(max_align_t);
	return (frame_len / 4 + 1) * sizeof(struct opx_entry) + sizeof(struct opx_stopsign) + 2 * a;
}

int tp_decode_hdr(const uint8_t *frame, size_t len, struct tp_hdr *hdr)
{
	if (len < TP_HDR_LEN || get_le32(frame) != TP_WIRE_MAGIC)
		return -EBADMSG;
	hdr->version = frame[4];
	if (hdr->version != TP_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	hdr->type = frame[5];
	if (get_le16(frame + 6) != 0)
		return -EBADMSG;
	hdr->cluster_id = get_le64(frame + 8);
	hdr->from = get_le64(frame + 16);
	hdr->to = get_le64(frame + 24);
	hdr->config_id = get_le32(frame + 32);
	hdr->payload_len = get_le32(frame + 36);
	if ((size_t)hdr->payload_len != len - TP_HDR_LEN)
		return -EBADMSG;
	return 0;
}

int tp_decode(const uint8_t *frame, size_t len, uint64_t cluster_id, struct tp_scratch *scratch,
	      struct tp_frame *out)
{
	int rc = tp_decode_hdr(frame, len, &out->hdr);
	if (rc)
		return rc;
	if (out->hdr.cluster_id != cluster_id)
		return -EACCES;
	struct rd r = {
		.p = frame + TP_HDR_LEN,
		.len = len - TP_HDR_LEN,
		.scratch = scratch->buf,
		.scratch_len = scratch->buf ? scratch->cap : 0,
	};
	scratch->need = 0;
	if (out->hdr.type == TP_FRAME_APP) {
		out->is_app = true;
		const uint8_t *t = take(&r, 2);
		if (!t)
			return -EBADMSG;
		out->app.app_type = get_le16(t);
		out->app.len = (uint32_t)(r.len - r.off);
		out->app.data = out->app.len ? r.p + r.off : NULL;
		return 0;
	}
	if (out->hdr.type < 1 || out->hdr.type > OPX_MSG_TYPE_MAX)
		return -EBADMSG;
	out->is_app = false;
	memset(&out->msg, 0, sizeof(out->msg));
	out->msg.from = out->hdr.from;
	out->msg.to = out->hdr.to;
	out->msg.config_id = out->hdr.config_id;
	out->msg.type = (enum opx_msg_type)out->hdr.type;
	rpayload(&r, &out->msg);
	if (r.err == -ENOBUFS)
		scratch->need = r.scratch_need;
	if (r.err)
		return r.err;
	if (r.off != r.len)
		return -EBADMSG;
	return 0;
}
