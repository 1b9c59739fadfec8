/*
 * Encoding and checked decoding of the in-step frames (step_codec.h).
 */
#include "step_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"

size_t step_report_encode(const struct step_report *r, uint8_t *buf)
{
	put_le64(buf, r->decided);
	put_le64(buf + 8, r->compacted);
	put_le64(buf + 16, r->applied);
	put_le64(buf + 24, r->leader);
	buf[32] = r->flags;
	buf[33] = r->n_heard;
	for (uint8_t i = 0; i < r->n_heard; i++)
		put_le64(buf + STEP_REPORT_HDR + 8u * i, r->heard[i]);
	return STEP_REPORT_HDR + 8u * r->n_heard;
}

int step_report_decode(struct step_report *r, const uint8_t *buf, size_t len)
{
	if (len < STEP_REPORT_HDR || buf[33] > STEP_MAX_HEARD ||
	    len != STEP_REPORT_HDR + 8u * buf[33])
		return -EBADMSG;
	r->decided = get_le64(buf);
	r->compacted = get_le64(buf + 8);
	r->applied = get_le64(buf + 16);
	r->leader = get_le64(buf + 24);
	r->flags = buf[32];
	r->n_heard = buf[33];
	for (uint8_t i = 0; i < r->n_heard; i++)
		r->heard[i] = get_le64(buf + STEP_REPORT_HDR + 8u * i);
	return 0;
}

void step_fetch_hdr_encode(const struct step_fetch_answer *a, uint8_t buf[STEP_FETCH_HDR])
{
	buf[0] = a->status;
	put_le64(buf + 1, a->first);
	put_le64(buf + 9, a->decided);
	put_le64(buf + 17, a->compacted);
	put_le32(buf + 25, a->n);
	put_le32(buf + 29, a->leader_round);
	put_le32(buf + 33, a->leader_priority);
	put_le64(buf + 37, a->leader);
}

int step_fetch_answer_decode(struct step_fetch_answer *a, const uint8_t *buf, size_t len)
{
	if (len < STEP_FETCH_HDR || buf[0] > STEP_FETCH_NOT_HELD)
		return -EBADMSG;
	a->status = buf[0];
	a->first = get_le64(buf + 1);
	a->decided = get_le64(buf + 9);
	a->compacted = get_le64(buf + 17);
	a->n = get_le32(buf + 25);
	a->leader_round = get_le32(buf + 29);
	a->leader_priority = get_le32(buf + 33);
	a->leader = get_le64(buf + 37);
	a->entries = buf + STEP_FETCH_HDR;
	a->entries_len = len - STEP_FETCH_HDR;
	return 0;
}

void step_entries_init(struct step_entries *it, const uint8_t *p, size_t len, uint32_t n)
{
	it->p = p;
	it->end = p + len;
	it->left = n;
}

int step_relay_decode(struct step_entries *it, const uint8_t *buf, size_t len)
{
	if (len < 4)
		return -EBADMSG;
	uint32_t n = get_le32(buf);
	/* Each entry takes at least its 4-byte length. */
	if (n > (len - 4) / 4)
		return -EBADMSG;
	step_entries_init(it, buf + 4, len - 4, n);
	return 0;
}

int step_entries_next(struct step_entries *it, const uint8_t **entry, uint32_t *len)
{
	if (it->left == 0)
		return 0;
	size_t room = (size_t)(it->end - it->p);
	if (room < 4 || room - 4 < get_le32(it->p))
		return -EBADMSG;
	*len = get_le32(it->p);
	*entry = it->p + 4;
	it->p += 4 + (size_t)*len;
	it->left--;
	return 1;
}

bool step_entries_done(const struct step_entries *it)
{
	return it->left == 0 && it->p == it->end;
}

int step_buf_add(struct step_buf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int step_buf_add_entry(struct step_buf *b, const uint8_t *entry, uint32_t len)
{
	uint8_t word[4];
	put_le32(word, len);
	int rc = step_buf_add(b, word, 4);
	return rc ? rc : step_buf_add(b, entry, len);
}

void step_buf_free(struct step_buf *b)
{
	free(b->data);
	*b = (struct step_buf){0};
}
