/*
 * The byte bound on what a log compaction keeps; see log_retain.h.
 */
#include "log_retain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int log_retain_init(struct log_retain *r, uint32_t cap)
{
	memset(r, 0, sizeof(*r));
	if (cap == 0)
		return 0;
	r->len = calloc(cap, sizeof(*r->len));
	if (!r->len)
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

void log_retain_free(struct log_retain *r)
{
	free(r->len);
	memset(r, 0, sizeof(*r));
}

void log_retain_note(struct log_retain *r, uint64_t idx, uint32_t len)
{
	if (r->cap == 0)
		return;
	if (idx != r->next_idx)
		r->n = 0;
	r->len[r->head] = len;
	r->head = (r->head + 1) % r->cap;
	if (r->n < r->cap)
		r->n++;
	r->next_idx = idx + 1;
}

uint64_t log_retain_keep(const struct log_retain *r, uint64_t below, uint64_t max_n,
			 uint64_t max_bytes)
{
	/* The ring's newest entry is next_idx - 1; entries at or above
	 * `below` (applied, not yet decided here) are skipped. */
	if (below > r->next_idx || r->next_idx - below >= r->n)
		return max_n; /* none of them known */
	uint64_t skip = r->next_idx - below, keep = 0, bytes = 0;
	for (uint64_t i = skip; i < r->n && keep < max_n; i++) {
		uint32_t len = r->len[(r->head + r->cap - 1 - (uint32_t)i) % r->cap];
		if (bytes + len > max_bytes)
			return keep;
		bytes += len;
		keep++;
	}
	/* Every known one fitted: the older ones, not known, fill up to max_n,
	 * as the entry count alone would have. */
	return max_n;
}
