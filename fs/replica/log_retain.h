/*
 * What a log compaction keeps below the applied index: [compaction]
 * retain_entries entries, so a node a little behind catches up from the log
 * rather than by a state transfer, but no more bytes of them than a bound.
 *
 * Without the bound, entries of file data (up to write_buffer_mb each) made
 * retain_entries a promise of gigabytes: 1,000 entries of 4 MiB are 4 GiB
 * of log on every node, and until the log holds more than retain_entries
 * entries nothing is compacted at all (420 MiB written left 429 MiB of log
 * beside 427 MiB of state), whatever max_bytes_mb says.
 *
 * The sizes of the last entries applied are kept in a ring, one per entry,
 * as many as retain_entries. The replica thread alone uses it.
 */
#ifndef OMNIFS_LOG_RETAIN_H
#define OMNIFS_LOG_RETAIN_H

#include <stdint.h>

struct log_retain {
	uint32_t *len;	   /* a ring of cap sizes; the newest is before head */
	uint32_t cap, n;   /* n of cap known */
	uint32_t head;	   /* where the next size goes */
	uint64_t next_idx; /* the log index the next size is for */
};

/* A ring for the sizes of up to cap entries (0: none kept; keep then
 * answers max_n). 0 or -ENOMEM. */
int log_retain_init(struct log_retain *r, uint32_t cap);
void log_retain_free(struct log_retain *r);

/* Entry idx, of len bytes, was applied. An index other than the one after
 * the last (a state transfer moved the applied index) starts over. */
void log_retain_note(struct log_retain *r, uint64_t idx, uint32_t len);

/* How many of the entries just below index `below` to keep: as many as fit
 * in max_bytes, max_n at most. Sizes not known (after a restart, or below
 * what the ring holds) count as fitting while the known ones did, so a
 * node with no figures keeps max_n as before. */
uint64_t log_retain_keep(const struct log_retain *r, uint64_t below, uint64_t max_n,
			 uint64_t max_bytes);

#endif /* OMNIFS_LOG_RETAIN_H */
