/*
 * OmniPaxos value types shared by the core, its storage implementations and
 * the wire codec: node ids, ballots, sequence numbers, entries, cluster
 * configurations and stop-signs.
 *
 * Entries and snapshots are opaque byte strings to the core; the application
 * (the replicated KV) gives them meaning. Pure C, no dependencies.
 */
#ifndef OMNIFS_OPX_TYPES_H
#define OMNIFS_OPX_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPX_MAX_NODES	     64			 /* members in one configuration */
#define OPX_MAX_ENTRY_LEN    (64u * 1024 * 1024) /* bytes in one log entry */
#define OPX_MAX_METADATA_LEN 4096		 /* bytes of stop-sign metadata */

/* Node ids are >= 1; 0 means "none". */
typedef uint64_t opx_node_id;

/*
 * A ballot. Ordered by (n, priority, pid); config_id is not part of the order
 * but is part of equality (spec §2). All zero = "no ballot".
 */
struct opx_ballot {
	uint32_t config_id;
	uint32_t n;	   /* round */
	uint32_t priority; /* leader priority of the node that made it */
	opx_node_id pid;   /* the node that made it */
};

/* <0, 0, >0 as a orders before, equal to (in order), after b. */
static inline int opx_ballot_cmp(const struct opx_ballot *a, const struct opx_ballot *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return 0;
}

static inline bool opx_ballot_eq(const struct opx_ballot *a, const struct opx_ballot *b)
{
	return opx_ballot_cmp(a, b) == 0 && a->config_id == b->config_id;
}

/* Accept-phase message numbering, ordered (session, counter). */
struct opx_seq {
	uint64_t session;
	uint64_t counter;
};

/* One log entry: an opaque byte string. Who owns data is said where used. */
struct opx_entry {
	const uint8_t *data;
	uint32_t len;
};

/*
 * A cluster configuration. read_quorum == write_quorum == 0 means majority
 * quorums; otherwise a flexible quorum (read + write > n_nodes,
 * 2 <= write <= read <= n_nodes).
 */
struct opx_cluster_config {
	uint32_t config_id; /* >= 1 */
	uint32_t n_nodes;
	opx_node_id nodes[OPX_MAX_NODES];
	uint32_t read_quorum;
	uint32_t write_quorum;
};

/* The last entry of a configuration: what the next configuration is. */
struct opx_stopsign {
	struct opx_cluster_config next;
	uint32_t metadata_len; /* 0..OPX_MAX_METADATA_LEN */
	uint8_t metadata[OPX_MAX_METADATA_LEN];
};

/* Snapshot kinds in a log sync (spec §5.6). */
enum opx_snapshot_kind {
	OPX_SNAPSHOT_NONE = 0,
	OPX_SNAPSHOT_COMPLETE = 1, /* replaces the receiver's state */
	OPX_SNAPSHOT_DELTA = 2,	   /* merged into the receiver's state */
};

#endif /* OMNIFS_OPX_TYPES_H */
