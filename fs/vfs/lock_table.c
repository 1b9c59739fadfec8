/*
 * The lock table's keys, record encoding and rules. See lock_table.h.
 *
 * A record is: format byte (1), u32 count, then count holders of
 * LK_HOLDER_LEN bytes (node, epoch, owner, fh, start, end as u64; pid u32;
 * type, kind u8), all little-endian. Records are small (a few holders), so
 * every rule is a linear pass.
 */
#include "lock_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"

#define LK__FORMAT 1

static void key_start(struct lk_key *k, char kind)
{
	k->b[0] = 'L';
	k->b[1] = (uint8_t)kind;
	k->len = 2;
}

void lk_res_inode(struct lk_key *res, uint64_t ino)
{
	res->b[0] = 'i';
	put_be64(res->b + 1, ino);
	res->len = 9;
}

void lk_res_named(struct lk_key *res, const char *name, size_t len)
{
	if (len > LK_NAME_MAX)
		len = LK_NAME_MAX;
	res->b[0] = 'n';
	memcpy(res->b + 1, name, len);
	res->len = 1 + len;
}

void lk_key_record(struct lk_key *k, const struct lk_key *res)
{
	key_start(k, 'r');
	memcpy(k->b + 2, res->b, res->len);
	k->len += res->len;
}

void lk_key_record_prefix(struct lk_key *k)
{
	key_start(k, 'r');
}

static void key_node(struct lk_key *k, char kind, uint64_t node)
{
	key_start(k, kind);
	put_be64(k->b + 2, node);
	k->len = 10;
}

void lk_key_lease(struct lk_key *k, uint64_t node)
{
	key_node(k, 'e', node);
}

void lk_key_lease_prefix(struct lk_key *k)
{
	key_start(k, 'e');
}

void lk_key_renew(struct lk_key *k, uint64_t node)
{
	key_node(k, 'w', node);
}

void lk_key_renew_prefix(struct lk_key *k)
{
	key_start(k, 'w');
}

bool lk_key_is_lock(const void *key, size_t len)
{
	return len >= 1 && ((const uint8_t *)key)[0] == 'L';
}

int lk_key_parse_node(const void *key, size_t len, uint64_t *node)
{
	const uint8_t *b = key;
	if (len != 10 || b[0] != 'L' || (b[1] != 'e' && b[1] != 'w'))
		return -EBADMSG;
	*node = get_be64(b + 2);
	return 0;
}

int lk_key_parse_record(const void *key, size_t len, const uint8_t **res, size_t *res_len)
{
	const uint8_t *b = key;
	if (len < 3 || len > LK_KEY_MAX || b[0] != 'L' || b[1] != 'r')
		return -EBADMSG;
	*res = b + 2;
	*res_len = len - 2;
	return 0;
}

void lk_res_describe(const uint8_t *res, size_t len, char *buf, size_t cap)
{
	if (len == 9 && res[0] == 'i') {
		snprintf(buf, cap, "ino %llu", (unsigned long long)get_be64(res + 1));
		return;
	}
	if (len >= 2 && res[0] == 'n') {
		/* Names come from a client: show printable bytes only. */
		size_t o = (size_t)snprintf(buf, cap, "name ");
		for (size_t i = 1; i < len && o + 1 < cap; i++)
			buf[o++] =
				(res[i] >= 0x20 && res[i] < 0x7f && res[i] != '"' && res[i] != '\\')
					? (char)res[i]
					: '?';
		if (cap)
			buf[o < cap ? o : cap - 1] = '\0';
		return;
	}
	snprintf(buf, cap, "unknown");
}

void lk_record_init(struct lk_record *r)
{
	memset(r, 0, sizeof(*r));
}

void lk_record_free(struct lk_record *r)
{
	free(r->h);
	lk_record_init(r);
}

static int reserve(struct lk_record *r, uint32_t n)
{
	if (n > LK_MAX_HOLDERS)
		return -ENOLCK;
	if (n <= r->cap)
		return 0;
	uint32_t cap = r->cap ? r->cap * 2 : 4;
	while (cap < n)
		cap *= 2;
	struct lk_holder *h = realloc(r->h, (size_t)cap * sizeof(*h));
	if (!h)
		return -ENOMEM;
	r->h = h;
	r->cap = cap;
	return 0;
}

int lk_record_decode(struct lk_record *r, const void *val, size_t len)
{
	const uint8_t *p = val;
	lk_record_init(r);
	if (len < 5 || p[0] != LK__FORMAT)
		return -EBADMSG;
	uint32_t n = get_le32(p + 1);
	if (n > LK_MAX_HOLDERS || len != 5 + (size_t)n * LK_HOLDER_LEN)
		return -EBADMSG;
	int rc = reserve(r, n);
	if (rc != 0)
		return rc;
	p += 5;
	for (uint32_t i = 0; i < n; i++, p += LK_HOLDER_LEN) {
		struct lk_holder *h = &r->h[i];
		h->node = get_le64(p);
		h->epoch = get_le64(p + 8);
		h->owner = get_le64(p + 16);
		h->fh = get_le64(p + 24);
		h->start = get_le64(p + 32);
		h->end = get_le64(p + 40);
		h->pid = get_le32(p + 48);
		h->type = p[52];
		h->kind = p[53];
		if (h->start > h->end || (h->type != LK_READ && h->type != LK_WRITE) ||
		    h->kind < LK_POSIX || h->kind > LK_NAMED) {
			lk_record_free(r);
			return -EBADMSG;
		}
	}
	r->n = n;
	return 0;
}

int lk_record_encode(const struct lk_record *r, uint8_t **out, size_t *len)
{
	size_t l = 5 + (size_t)r->n * LK_HOLDER_LEN;
	uint8_t *b = malloc(l), *p = b;
	if (!b)
		return -ENOMEM;
	p[0] = LK__FORMAT;
	put_le32(p + 1, r->n);
	p += 5;
	for (uint32_t i = 0; i < r->n; i++, p += LK_HOLDER_LEN) {
		const struct lk_holder *h = &r->h[i];
		put_le64(p, h->node);
		put_le64(p + 8, h->epoch);
		put_le64(p + 16, h->owner);
		put_le64(p + 24, h->fh);
		put_le64(p + 32, h->start);
		put_le64(p + 40, h->end);
		put_le32(p + 48, h->pid);
		p[52] = h->type;
		p[53] = h->kind;
	}
	*out = b;
	*len = l;
	return 0;
}

void lk_lease_encode(uint64_t epoch, uint8_t out[8])
{
	put_le64(out, epoch);
}

int lk_lease_decode(const void *val, size_t len, uint64_t *epoch)
{
	if (len != 8)
		return -EBADMSG;
	*epoch = get_le64(val);
	return 0;
}

static void remove_at(struct lk_record *r, uint32_t i)
{
	memmove(&r->h[i], &r->h[i + 1], (size_t)(r->n - i - 1) * sizeof(r->h[0]));
	r->n--;
}

uint32_t lk_drop_stale(struct lk_record *r, lk_valid_fn valid, void *ctx)
{
	uint32_t dropped = 0;
	for (uint32_t i = 0; i < r->n;) {
		if (!valid(ctx, &r->h[i])) {
			remove_at(r, i);
			dropped++;
		} else {
			i++;
		}
	}
	return dropped;
}

static bool same_owner(const struct lk_holder *a, const struct lk_holder *b)
{
	return a->node == b->node && a->owner == b->owner && a->kind == b->kind;
}

static bool overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

/* Overlapping, or one ends right where the other starts. */
static bool touch(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return overlap(s1, e1, s2, e2) || (e1 != LK_EOF && e1 + 1 == s2) ||
	       (e2 != LK_EOF && e2 + 1 == s1);
}

int lk_find_conflict(const struct lk_record *r, const struct lk_holder *q)
{
	for (uint32_t i = 0; i < r->n; i++) {
		const struct lk_holder *h = &r->h[i];
		if (h->kind != q->kind || same_owner(h, q))
			continue;
		if (!overlap(h->start, h->end, q->start, q->end))
			continue;
		if (h->type == LK_WRITE || q->type == LK_WRITE)
			return (int)i;
	}
	return -1;
}

static int apply_posix(struct lk_record *r, const struct lk_holder *q)
{
	/* Worst case: one lock split in two, plus the new one. */
	int rc = reserve(r, r->n + 2);
	if (rc != 0)
		return rc;
	uint64_t s = q->start, e = q->end;
	for (uint32_t i = 0; i < r->n;) {
		struct lk_holder *h = &r->h[i];
		if (!same_owner(h, q)) {
			i++;
			continue;
		}
		if (q->type != LK_UNLOCK && h->type == q->type &&
		    touch(h->start, h->end, q->start, q->end)) {
			/* Same type: the new lock absorbs it. */
			if (h->start < s)
				s = h->start;
			if (h->end > e)
				e = h->end;
			remove_at(r, i);
			continue;
		}
		if (!overlap(h->start, h->end, q->start, q->end)) {
			i++;
			continue;
		}
		/* Cut [q->start, q->end] out of h: up to two pieces remain. */
		struct lk_holder left = *h, right = *h;
		bool has_left = h->start<q->start, has_right = h->end> q->end;
		remove_at(r, i);
		if (has_left) {
			left.end = q->start - 1;
			r->h[r->n++] = left;
		}
		if (has_right) {
			right.start = q->end + 1;
			r->h[r->n++] = right;
		}
		/* The pieces (appended) lie outside q's range: skipped later. */
	}
	if (q->type != LK_UNLOCK) {
		struct lk_holder nh = *q;
		nh.start = s;
		nh.end = e;
		r->h[r->n++] = nh;
	}
	return 0;
}

int lk_apply(struct lk_record *r, const struct lk_holder *q)
{
	if (q->kind == LK_POSIX)
		return apply_posix(r, q);
	for (uint32_t i = 0; i < r->n; i++) {
		if (!same_owner(&r->h[i], q))
			continue;
		if (q->type == LK_UNLOCK) {
			remove_at(r, i);
		} else {
			r->h[i] = *q; /* conversion, in place */
			r->h[i].start = 0;
			r->h[i].end = LK_EOF;
		}
		return 0;
	}
	if (q->type == LK_UNLOCK)
		return 0;
	int rc = reserve(r, r->n + 1);
	if (rc != 0)
		return rc;
	r->h[r->n] = *q;
	r->h[r->n].start = 0;
	r->h[r->n].end = LK_EOF;
	r->n++;
	return 0;
}

uint32_t lk_remove_owner(struct lk_record *r, uint64_t node, uint64_t owner, uint8_t kind)
{
	uint32_t removed = 0;
	for (uint32_t i = 0; i < r->n;) {
		const struct lk_holder *h = &r->h[i];
		if (h->node == node && h->owner == owner && (kind == 0 || h->kind == kind)) {
			remove_at(r, i);
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

uint32_t lk_remove_fh(struct lk_record *r, uint64_t node, uint64_t fh)
{
	uint32_t removed = 0;
	for (uint32_t i = 0; i < r->n;) {
		if (r->h[i].node == node && r->h[i].fh == fh) {
			remove_at(r, i);
			removed++;
		} else {
			i++;
		}
	}
	return removed;
}

uint32_t lk_count_node(const struct lk_record *r, uint64_t node)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->n; i++)
		n += r->h[i].node == node;
	return n;
}
