/*
 * Sample OmniPaxos messages for the transport tests, the fuzz corpus
 * generator and the benchmark: at least one of every type, with the variants
 * that change the encoding (optional log sync, snapshot kinds, empty and
 * non-empty entry lists, empty entries, stop-signs small and maximal,
 * compaction with and without index). Plus a deep comparison.
 */
#ifndef OMNIFS_TEST_TP_SAMPLES_H
#define OMNIFS_TEST_TP_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>

#include "msg.h"

#define SAMPLES_MAX 32

struct samples {
	uint8_t data[4][24];
	struct opx_entry entries[4];
	uint8_t snapshot[40];
	struct opx_stopsign ss_small;
	struct opx_stopsign ss_full; /* OPX_MAX_NODES nodes, OPX_MAX_METADATA_LEN bytes */
	struct opx_msg msgs[SAMPLES_MAX];
	size_t n;
};

/* Fills s; messages go from `from` to `to`. Every pointer in s->msgs points into s. */
void samples_init(struct samples *s, opx_node_id from, opx_node_id to);

/* True if a and b carry the same content (pointers compared by the bytes they reach). */
bool samples_msg_equal(const struct opx_msg *a, const struct opx_msg *b);

#endif /* OMNIFS_TEST_TP_SAMPLES_H */
