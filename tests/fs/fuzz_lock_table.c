/*
 * libFuzzer target for the lock table's decoders (lock_table.h): records of
 * holders and leases, read from the replicated state (so from the log), and
 * the table's keys. Build with -Dfuzz=true and CC=clang; tools/fuzz.sh runs
 * it.
 *
 * Oracles besides ASan/UBSan: a record that decodes re-encodes to the same
 * bytes and holds only valid holders (type, kind, start <= end); the rules
 * keep their invariants on it (a request that lk_find_conflict lets through
 * and lk_apply applies leaves the owner's POSIX locks disjoint, and a
 * conflict never names the requester); a key that parses is rebuilt byte for
 * byte.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lock_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_keys(const uint8_t *in, size_t size)
{
	uint64_t node;
	struct lk_key k;
	if (lk_key_parse_node(in, size, &node) == 0) {
		if (in[1] == 'e')
			lk_key_lease(&k, node);
		else
			lk_key_renew(&k, node);
		if (k.len != size || memcmp(k.b, in, size) != 0)
			abort();
	}
	const uint8_t *res;
	size_t res_len;
	if (lk_key_parse_record(in, size, &res, &res_len) == 0) {
		if (res_len + 2 != size || !lk_key_is_lock(in, size))
			abort();
		char what[LK_RES_MAX + 16];
		lk_res_describe(res, res_len, what, sizeof(what));
		for (const char *p = what; *p; p++)
			if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
				abort(); /* listings put it in JSON as it is */
	}
}

/* Whether the POSIX locks of q's (node, owner) in r are disjoint. */
static bool owner_disjoint(const struct lk_record *r, const struct lk_holder *q)
{
	for (uint32_t i = 0; i < r->n; i++)
		for (uint32_t j = i + 1; j < r->n; j++) {
			const struct lk_holder *a = &r->h[i], *b = &r->h[j];
			if (a->node == q->node && b->node == q->node && a->owner == q->owner &&
			    b->owner == q->owner && a->kind == LK_POSIX && b->kind == LK_POSIX &&
			    a->start <= b->end && b->start <= a->end)
				return false;
		}
	return true;
}

static void check_rules(struct lk_record *r)
{
	if (r->n == 0)
		return;
	/* A request shaped like the first holder, as another owner. */
	struct lk_holder q = r->h[0];
	q.owner ^= 1;
	int c = lk_find_conflict(r, &q);
	if (c >= 0 && r->h[c].node == q.node && r->h[c].owner == q.owner && r->h[c].kind == q.kind)
		abort();
	/* The rules keep the owner's locks disjoint; a record that decodes may
	 * come with them overlapping already (the decoder checks each holder,
	 * not the record), and then there is nothing to keep. */
	if (c < 0 && q.kind == LK_POSIX && owner_disjoint(r, &q) && lk_apply(r, &q) == 0 &&
	    !owner_disjoint(r, &q))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_keys(data, size);
	uint64_t epoch;
	if (lk_lease_decode(data, size, &epoch) == 0) {
		uint8_t again[8];
		lk_lease_encode(epoch, again);
		if (memcmp(again, data, 8) != 0)
			abort();
	}
	struct lk_record r;
	if (lk_record_decode(&r, data, size) != 0)
		return 0;
	for (uint32_t i = 0; i < r.n; i++) {
		const struct lk_holder *h = &r.h[i];
		if (h->start > h->end || (h->type != LK_READ && h->type != LK_WRITE) ||
		    h->kind < LK_POSIX || h->kind > LK_NAMED)
			abort();
	}
	uint8_t *enc;
	size_t len;
	if (lk_record_encode(&r, &enc, &len) == 0) {
		if (len != size || memcmp(enc, data, size) != 0)
			abort();
		free(enc);
	}
	check_rules(&r);
	lk_record_free(&r);
	return 0;
}
