/*
 * The storage interface of the OmniPaxos core (spec §6), as a versioned
 * vtable, and a growable entry list that storage reads fill.
 *
 * Indexes are absolute: as if the log had never been compacted. Every
 * mutation goes through write_atomically: a list of operations applied in
 * order, all or nothing, durable (synced) before the call returns. Because
 * the core calls storage synchronously and messages only leave through the
 * outbox afterwards, nothing that depends on a write leaves the node before
 * the write is durable. The one exception is opt-in (opx_config's
 * sync_after_send, with a storage offering write_unsynced and sync): a
 * leader's append of new entries, whose AcceptDecides may leave before it is
 * synced; seqpaxos_leader.c (sp_leader_flush) argues why that is safe.
 *
 * A failed write means the node can no longer promise anything safely: the
 * core stops (fail-stop) and the application restarts it from storage.
 */
#ifndef OMNIFS_OPX_STORAGE_H
#define OMNIFS_OPX_STORAGE_H

#include "types.h"

enum opx_storage_op_type {
	OPX_OP_APPEND_ENTRIES = 1,   /* append at the end of the log */
	OPX_OP_APPEND_ON_PREFIX = 2, /* drop entries at >= from_idx, then append */
	OPX_OP_SET_PROMISE = 3,
	OPX_OP_SET_DECIDED_IDX = 4,
	OPX_OP_SET_ACCEPTED_ROUND = 5,
	OPX_OP_SET_COMPACTED_IDX = 6,
	OPX_OP_TRIM = 7,	 /* delete stored entries with index < idx */
	OPX_OP_SET_STOPSIGN = 8, /* ss may be NULL: remove the stored one */
	OPX_OP_SET_SNAPSHOT = 9, /* data may be NULL: remove the stored one */
};

/* One operation. Pointers are borrowed for the duration of write_atomically. */
struct opx_storage_op {
	enum opx_storage_op_type type;
	union {
		struct {
			const struct opx_entry *entries;
			uint32_t n;
			uint64_t from_idx; /* APPEND_ON_PREFIX only */
		} append;
		struct opx_ballot ballot; /* SET_PROMISE, SET_ACCEPTED_ROUND */
		uint64_t idx;		  /* SET_DECIDED_IDX, SET_COMPACTED_IDX, TRIM */
		const struct opx_stopsign *ss;
		struct {
			const uint8_t *data;
			uint32_t len;
		} snapshot;
	} u;
};

/* Everything but the entries and the snapshot bytes, read once at start. */
struct opx_storage_state {
	bool has_promise; /* false on a fresh store */
	struct opx_ballot promise;
	bool has_accepted_round;
	struct opx_ballot accepted_round;
	uint64_t decided_idx;	/* 0 if never set */
	uint64_t compacted_idx; /* 0 if never set */
	uint64_t log_end;	/* index one past the last stored entry (>= compacted_idx) */
	bool has_stopsign;
	struct opx_stopsign stopsign;
	bool has_snapshot;
};

/* A list of entries whose bytes the list owns. Zero-initialise before use. */
struct opx_entry_list {
	struct opx_entry *entries;
	uint32_t n;
	uint32_t cap;
};

/* Appends a copy of len bytes. Returns 0 or -ENOMEM (the list is unchanged). */
int opx_entry_list_push(struct opx_entry_list *l, const void *data, uint32_t len);
/* Appends data itself (malloc'd; the list frees it, also on -ENOMEM). */
int opx_entry_list_adopt(struct opx_entry_list *l, void *data, uint32_t len);
/* Frees every entry and the array; the list is empty and reusable after. */
void opx_entry_list_clear(struct opx_entry_list *l);

#define OPX_STORAGE_VERSION 2

struct opx_storage_ops {
	int version; /* OPX_STORAGE_VERSION */

	/* All or nothing, synced. Returns 0, or -EIO / -ENOSPC / -ENOMEM with
	 * nothing applied. */
	int (*write_atomically)(void *impl, const struct opx_storage_op *ops, size_t n);

	/* Fills *st. Returns 0 or a negative errno. */
	int (*load)(void *impl, struct opx_storage_state *st);

	/* Appends copies of entries [from, to) to out. If any of them is not
	 * stored (compacted, or beyond the end), appends nothing and returns 0:
	 * the caller sees out->n unchanged. Returns a negative errno on failure. */
	int (*get_entries)(void *impl, uint64_t from, uint64_t to, struct opx_entry_list *out);

	/* *data gets a malloc'd copy of the snapshot (the caller frees it), or
	 * NULL with *len 0 if none is stored. Returns 0 or a negative errno. */
	int (*get_snapshot)(void *impl, uint8_t **data, uint32_t *len);

	/* Optional, both or neither (NULL: the storage cannot defer syncs).
	 * write_unsynced is write_atomically without the sync: applied and
	 * readable on return, all or nothing, but a crash may lose it until
	 * the next sync returns 0. sync makes every earlier write durable.
	 * Both return 0, or -EIO / -ENOSPC / -ENOMEM (write_unsynced: with
	 * nothing applied). */
	int (*write_unsynced)(void *impl, const struct opx_storage_op *ops, size_t n);
	int (*sync)(void *impl);
};

/* A storage: the vtable and the implementation's object. */
struct opx_storage {
	const struct opx_storage_ops *ops;
	void *impl;
};

#endif /* OMNIFS_OPX_STORAGE_H */
