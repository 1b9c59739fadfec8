/*
 * Cluster membership: which nodes form the cluster now, where they listen
 * and which CURVE key each one speaks with.
 *
 * The first configuration comes from the config file's [peers]. Every later
 * one is decided in the log by a stop-sign (OmniPaxos reconfiguration,
 * `omnifsctl member ...`): the stop-sign's metadata carries the new member
 * table, and each configuration runs its own consensus log, whose index 0 is
 * global index `base` (the global index continues across configurations, so
 * KV versions keep growing).
 *
 * A member table travels and is stored as text, one fact per line, so it can
 * be read in a data dir with cat:
 *
 *   omnifs-membership 1
 *   config 2
 *   base 1234
 *   quorum 0 0                       (read, write; 0 = majority)
 *   node 1 10.0.0.1:7100 <z85 key or ->
 *   node 9 10.0.0.9:7100 <z85 key or -> learner
 *   ...
 *
 * A node line without a role is a voter's (tables written before learners
 * existed read the same). Voters run the configuration's consensus core:
 * they vote, count in quorums and may lead. Learners are members all the
 * same (in the table, on every allow-list, served state and entries) but
 * the core never hears of them: they fetch decided entries and relay their
 * writes (replica_learn.c), so however many there are, or however slow,
 * the voters' quorums and elections do not change.
 *
 * Decoding is strict: every line, number, address and key is checked, since a
 * table can come from the network.
 */
#ifndef OMNIFS_MEMBERSHIP_H
#define OMNIFS_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Room for an encoded table of CFG_MAX_PEERS members. */
#define MEMBERSHIP_ENC_MAX (64 + CFG_MAX_PEERS * (40 + CFG_ADDR_MAX + CFG_KEY_Z85_LEN))
/* The KV key the applied state keeps its member table under: outside the
 * filesystem's ("F ...") and the scripts' ("u/...") namespaces. */
#define MEMBERSHIP_KV_KEY "M members"

struct membership {
	uint32_t config_id;		    /* >= 1 */
	uint64_t base;			    /* global index of this configuration's log index 0 */
	uint32_t read_quorum, write_quorum; /* 0 = majority */
	size_t n;
	struct cfg_peer peers[CFG_MAX_PEERS]; /* sorted by id */
};

/* The first configuration, from the config file (config 1, base 0). */
void membership_from_cfg(struct membership *m, const struct cfg *c);

/* The member with this id, or NULL. */
const struct cfg_peer *membership_find(const struct membership *m, uint64_t id);

/* Voters in the table (the consensus core's members). */
size_t membership_voters(const struct membership *m);

/* A member that votes: in the table and not a learner. */
bool membership_is_voter(const struct membership *m, uint64_t id);

/* A member that does not vote. */
bool membership_is_learner(const struct membership *m, uint64_t id);

/* Writes the table as text into buf (cap bytes); *len its length.
 * -ENOSPC if it does not fit. */
int membership_encode(const struct membership *m, char *buf, size_t cap, size_t *len);

/* Parses a table. 0, or -EBADMSG with the reason in err. */
int membership_decode(struct membership *m, const void *data, size_t len, char *err,
		      size_t err_len);

/*
 * The next configuration after cur: remove_id (0: none) leaves, add (NULL:
 * none) joins, as a learner if add->learner. One node changes per
 * configuration, so the old and the new members always overlap (someone
 * holds the state for the newcomer). Quorums go back to majorities. Returns
 * 0, or -EINVAL with a reason for the operator in err (unknown or existing
 * id, bad address or key, fewer than two voters left).
 */
int membership_next(struct membership *next, const struct membership *cur, uint64_t remove_id,
		    const struct cfg_peer *add, bool plaintext, char *err, size_t err_len);

/*
 * The next configuration after cur with member id's public key replaced by
 * key (Z85): the same members, addresses and ids. The old key is off every
 * allow-list once the members run it. 0, or -EINVAL with a reason in err.
 */
int membership_rekey(struct membership *next, const struct membership *cur, uint64_t id,
		     const char *key, char *err, size_t err_len);

/*
 * The next configuration after cur with member id voting (learner false:
 * promote) or not (learner true: demote). The same members, addresses and
 * keys. 0, or -EINVAL with a reason in err (not a member, already in that
 * role, fewer than two voters left).
 */
int membership_set_role(struct membership *next, const struct membership *cur, uint64_t id,
			bool learner, char *err, size_t err_len);

/* Same configuration, base, quorums, members, roles, addresses and keys. */
bool membership_equal(const struct membership *a, const struct membership *b);

/* Members as "1,2,3" into buf. */
void membership_ids(const struct membership *m, char *buf, size_t len);

/*
 * <data_dir>/membership: the configuration this node runs, written before
 * its log is reset for it (atomically: temporary file, fsync, rename).
 * read: 0, -ENOENT (no file), -EBADMSG (corrupt; reason in err) or -errno.
 */
int membership_file_read(const char *data_dir, struct membership *m, char *err, size_t err_len);
int membership_file_write(const char *data_dir, const struct membership *m, char *err,
			  size_t err_len);

#endif /* OMNIFS_MEMBERSHIP_H */
