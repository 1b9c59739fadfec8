/*
 * The frames that keep a node in step beside the consensus core
 * (replica_step.c): their encoding and checked decoding, apart from the
 * replica so the decoders of these peer-sent bytes can be fuzzed alone
 * (tests/replica/fuzz_step.c). Little-endian throughout.
 *
 *   STEP           u64 decided, u64 compacted, u64 applied (global indexes),
 *                  u64 leader, u8 flags, u8 n_heard, n_heard x u64 peer id
 *   FETCH_REQ      u64 first index wanted (global)
 *   FETCH_ENTRIES  u8 status, u64 first, u64 decided, u64 compacted, u32 n,
 *                  u32 ballot round, u32 ballot priority, u64 ballot pid
 *                  (the leader the sender follows, 0 if none known: how a
 *                  learner, which has no core, knows the leader),
 *                  then n entries; with status STOPSIGN one more entry
 *                  follows: the member table of the stop-sign that comes
 *                  right after the n entries (membership.h text)
 *   RELAY          u32 n, then n entries
 * where an entry is u32 len, then len bytes.
 *
 * Pure: no allocation but the growable buffer's, no I/O.
 */
#ifndef OMNIFS_STEP_CODEC_H
#define OMNIFS_STEP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STEP_MAX_HEARD	   64 /* OPX_MAX_NODES */
#define STEP_REPORT_HDR	   34
#define STEP_REPORT_MAX	   (STEP_REPORT_HDR + 8 * STEP_MAX_HEARD)
#define STEP_FETCH_REQ_LEN 8
#define STEP_FETCH_HDR	   45

/* STEP flags */
#define STEP_LEADING	   1u /* the sender leads, and a write through it can be decided */
#define STEP_LEADER_DIRECT 2u /* the sender is linked to such a leader */

/* FETCH_ENTRIES status */
#define STEP_FETCH_OK	     0
#define STEP_FETCH_COMPACTED 1 /* the sender's log no longer holds the first one */
#define STEP_FETCH_STOPSIGN  2 /* the entries end this configuration: its next table follows */
#define STEP_FETCH_NOT_HELD  3 /* a learner that no longer keeps the first one: ask a voter */

struct step_report {
	uint64_t decided, compacted, applied, leader;
	uint8_t flags;
	uint8_t n_heard;
	uint64_t heard[STEP_MAX_HEARD]; /* peers the sender heard lately */
};

/* Writes r into buf (STEP_REPORT_MAX bytes fit any); returns the length. */
size_t step_report_encode(const struct step_report *r, uint8_t *buf);
/* 0, or -EBADMSG if buf is not exactly one report. */
int step_report_decode(struct step_report *r, const uint8_t *buf, size_t len);

struct step_fetch_answer {
	uint8_t status;
	uint64_t first, decided, compacted;
	uint32_t n; /* entries that follow */
	uint32_t leader_round, leader_priority;
	uint64_t leader;	/* the ballot's pid: the leader the sender follows */
	const uint8_t *entries; /* borrowed from the frame */
	size_t entries_len;
};

void step_fetch_hdr_encode(const struct step_fetch_answer *a, uint8_t buf[STEP_FETCH_HDR]);
/* 0, or -EBADMSG (too short, unknown status). The entries are checked as
 * they are read (step_entries_next). */
int step_fetch_answer_decode(struct step_fetch_answer *a, const uint8_t *buf, size_t len);

/* Reading a list of entries. */
struct step_entries {
	const uint8_t *p, *end;
	uint32_t left;
};

void step_entries_init(struct step_entries *it, const uint8_t *p, size_t len, uint32_t n);
/* A RELAY frame's list: -EBADMSG if shorter than its count. */
int step_relay_decode(struct step_entries *it, const uint8_t *buf, size_t len);
/* The next entry (borrowed from the frame): 1, 0 at the end of the list,
 * -EBADMSG if it runs past the frame. */
int step_entries_next(struct step_entries *it, const uint8_t **entry, uint32_t *len);
/* True if the list was read to its end and the frame ends there too. */
bool step_entries_done(const struct step_entries *it);

/* A growable byte buffer for frames being built. */
struct step_buf {
	uint8_t *data;
	size_t len, cap;
};

/* Appends n bytes; 0 or -ENOMEM. */
int step_buf_add(struct step_buf *b, const void *p, size_t n);
/* Appends one entry (u32 len, bytes); 0 or -ENOMEM. */
int step_buf_add_entry(struct step_buf *b, const uint8_t *entry, uint32_t len);
void step_buf_free(struct step_buf *b);

#endif /* OMNIFS_STEP_CODEC_H */
