/*
 * The cluster-wide lock table: its keys in the replicated KV, the encoding of
 * one resource's record, and the rules (conflicts, POSIX range split and
 * merge, flock conversion, release by owner or by open file). Pure code, no
 * I/O and no clock: locks.c reads records, applies these rules and proposes
 * the result as one guarded transaction, so every node agrees on the holders.
 *
 * Keys (the first byte 'L' keeps them apart from the filesystem's 'F'):
 *   L r <resource>    the holders of one resource -> record (lk_record_encode)
 *   L e <node:8>      node's lease: its epoch (8 bytes, random, never reused)
 *   L w <node:8>      node's renewal counter: rewritten while it holds locks
 * A resource is 'i' <ino:8> for a file of the mount, or 'n' <name> for a
 * named lock (omnifsctl lock).
 *
 * A holder is valid only while its node's lease exists with the holder's
 * epoch. Expiring a node's lease (deleting L e) thus drops all its holders at
 * once, whatever records still name them; stale holders are removed from a
 * record the next time it is written. Epochs never repeat, so a holder once
 * stale stays stale.
 *
 * Ranges are inclusive [start, end]; end LK_EOF means "to the end of the file,
 * however it grows" (POSIX l_len 0). flock and named locks cover everything.
 */
#ifndef OMNIFS_LOCK_TABLE_H
#define OMNIFS_LOCK_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_EOF	       UINT64_MAX
#define LK_NAME_MAX    255u		 /* bytes in a named lock's name */
#define LK_RES_MAX     (1 + LK_NAME_MAX) /* bytes in an encoded resource */
#define LK_KEY_MAX     (2 + LK_RES_MAX)	 /* bytes in a key of the table */
#define LK_HOLDER_LEN  54u		 /* encoded bytes of one holder */
#define LK_MAX_HOLDERS 4096u		 /* holders of one resource */
#define LK_RECORD_MAX  (5 + LK_MAX_HOLDERS * LK_HOLDER_LEN)

enum lk_type {
	LK_UNLOCK = 0, /* only in requests: release the range */
	LK_READ = 1,   /* shared: F_RDLCK, LOCK_SH */
	LK_WRITE = 2,  /* exclusive: F_WRLCK, LOCK_EX, named locks */
};

/* Locks of different kinds never conflict (Linux keeps flock and POSIX locks
 * apart; open file description locks arrive as POSIX locks whose owner is
 * the open file). */
enum lk_kind {
	LK_POSIX = 1,
	LK_FLOCK = 2,
	LK_NAMED = 3,
};

struct lk_holder {
	uint64_t node;	/* the node it was taken on */
	uint64_t epoch; /* that node's lease when it was taken */
	uint64_t owner; /* the kernel's lock owner (POSIX: process; flock: open file) */
	uint64_t fh;	/* the open file it was taken through (node-local), 0 if none */
	uint64_t start, end;
	uint32_t pid; /* for reporting only */
	uint8_t type; /* LK_READ or LK_WRITE */
	uint8_t kind; /* enum lk_kind */
};

/* The holders of one resource. Invariant: holders of the same (node, owner,
 * kind) never overlap, and POSIX ones of the same type are never adjacent
 * (they merge). */
struct lk_record {
	struct lk_holder *h;
	uint32_t n, cap;
};

/* An encoded key, inline. */
struct lk_key {
	size_t len;
	uint8_t b[LK_KEY_MAX];
};

/* Resources. A name must be 1..LK_NAME_MAX bytes (checked by the caller). */
void lk_res_inode(struct lk_key *res, uint64_t ino);
void lk_res_named(struct lk_key *res, const char *name, size_t len);
/* Keys. */
void lk_key_record(struct lk_key *k, const struct lk_key *res);
void lk_key_record_prefix(struct lk_key *k);
void lk_key_lease(struct lk_key *k, uint64_t node);
void lk_key_lease_prefix(struct lk_key *k);
void lk_key_renew(struct lk_key *k, uint64_t node);
void lk_key_renew_prefix(struct lk_key *k);
/* True if key belongs to the lock table. */
bool lk_key_is_lock(const void *key, size_t len);
/* The node of an L e or L w key, -EBADMSG if it is not one. */
int lk_key_parse_node(const void *key, size_t len, uint64_t *node);
/* The resource of an L r key (borrowed pointer into key), -EBADMSG if not. */
int lk_key_parse_record(const void *key, size_t len, const uint8_t **res, size_t *res_len);
/* A resource for people: "ino 123" or "name NAME" into buf. */
void lk_res_describe(const uint8_t *res, size_t len, char *buf, size_t cap);

/* Record values. decode validates every field (the bytes come from the log);
 * -EBADMSG if malformed, -ENOMEM. encode returns a malloc'd buffer. */
void lk_record_init(struct lk_record *r);
void lk_record_free(struct lk_record *r);
int lk_record_decode(struct lk_record *r, const void *val, size_t len);
int lk_record_encode(const struct lk_record *r, uint8_t **out, size_t *len);
void lk_lease_encode(uint64_t epoch, uint8_t out[8]);
int lk_lease_decode(const void *val, size_t len, uint64_t *epoch);

/* Whether a holder is valid: its node's lease exists with its epoch. */
typedef bool (*lk_valid_fn)(void *ctx, const struct lk_holder *h);

/* Drops the holders valid() rejects. Returns how many. */
uint32_t lk_drop_stale(struct lk_record *r, lk_valid_fn valid, void *ctx);

/*
 * The first holder that conflicts with request q (q.type LK_READ or
 * LK_WRITE): same kind, another (node, owner), ranges overlapping, and one of
 * the two exclusive. Returns its index, or -1 if none.
 */
int lk_find_conflict(const struct lk_record *r, const struct lk_holder *q);

/*
 * Applies request q for q's (node, owner, kind) to the record, assuming no
 * conflict: POSIX locks replace the owner's locks over q's range (splitting
 * them) and merge with adjacent or overlapping ones of the same type;
 * LK_UNLOCK cuts the range out. flock and named locks: one lock per owner,
 * converted in place, or removed by LK_UNLOCK. Returns 0, -ENOMEM, or
 * -ENOLCK past LK_MAX_HOLDERS (the record is unchanged on error).
 */
int lk_apply(struct lk_record *r, const struct lk_holder *q);

/* Removes every holder of (node, owner) of the given kind (0: any kind).
 * Returns how many were removed. */
uint32_t lk_remove_owner(struct lk_record *r, uint64_t node, uint64_t owner, uint8_t kind);
/* Removes every holder of node taken through open file fh. */
uint32_t lk_remove_fh(struct lk_record *r, uint64_t node, uint64_t fh);
/* Holders of node in the record. */
uint32_t lk_count_node(const struct lk_record *r, uint64_t node);

#endif /* OMNIFS_LOCK_TABLE_H */
