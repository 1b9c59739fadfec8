/*
 * omnifsd's offline recovery commands (recover.h). Each works on the data
 * dir of a stopped node and leaves it so that an ordinary start does the
 * rest; none talks to the network.
 *
 * All of them start a node in a configuration of their own making, through
 * the mechanism membership changes already use: <data_dir>/membership names
 * the configuration (id, base, members), and a log that belongs to an older
 * configuration is emptied for it at start (replica_log_open). The new
 * configuration's base is the state's applied index, so its log continues
 * the state exactly (force-new-cluster first applies what the old log held
 * beyond the state). The state itself is left as it is (its "M members"
 * table is an older configuration's, which the file overrides), so its
 * digest stays the one the snapshot or the survivor had.
 *
 * - restore: the state comes from a snapshot file, into an empty data dir,
 *   under the cluster name of this node's config (which must be another
 *   than the snapshot's: the stores and the transport carry the cluster id,
 *   so no node of the old cluster can talk to the new one or open its data).
 *   Every member of the new cluster restores the same file with the same
 *   [peers], so all arrive at the same table.
 * - force-new-cluster: the table holds this node alone, or with one new,
 *   empty node the operator names; the other members' keys leave the
 *   allow-list with it, so they cannot reach the new cluster. A new node
 *   joins as any node added by `member add` does ([node] join: JOIN
 *   frames, the table, a state transfer at base).
 * - drop-state: the state goes aside; the node starts with an empty one and
 *   fetches the state at its log's first readable index from a member
 *   (replica_core_open starts the transfer), then replays its log.
 *
 * Proposal ids: the state's dedup table remembers the highest sequence of
 * every node id that ever proposed; a node whose proposer-epoch file is
 * behind it would see its writes taken for old duplicates. Restore writes
 * the epoch above what the state remembers for this node's id.
 */
#include "recover.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "atomic_file.h"
#include "keyfile.h"
#include "kv.h"
#include "log.h"
#include "membership.h"
#include "storage_rocksdb.h"

/* True if path does not exist or is an empty directory. */
static bool absent_or_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* The config file lists the other members' keys only: ours comes from our
 * key file. */
static int own_key(const struct cfg *c, struct cfg_peer *self)
{
	if (c->plaintext)
		return 0;
	uint8_t pub[TP_KEY_LEN], sec[TP_KEY_LEN];
	char err[512];
	int rc = tp_keyfile_load(c->secret_key_file, pub, sec, err, sizeof(err));
	memset(sec, 0, sizeof(sec));
	if (rc != 0) {
		log_err("omnifsd: %s", err);
		return rc;
	}
	tp_key_to_z85(pub, self->public_key);
	return 0;
}

/* The member table in the state (config_id 0 if none). */
static int state_table(struct kv_store *kv, struct membership *m)
{
	void *val;
	size_t len;
	char why[200];
	memset(m, 0, sizeof(*m));
	int rc = kv_get(kv, MEMBERSHIP_KV_KEY, strlen(MEMBERSHIP_KV_KEY), &val, &len, NULL);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	rc = membership_decode(m, val, len, why, sizeof(why));
	free(val);
	if (rc != 0)
		log_err("omnifsd: the state's member table is corrupt: %s", why);
	return rc;
}

/* Reads a line from a terminal and compares it with want. */
static bool confirmed(const char *what, const char *want)
{
	if (!isatty(STDIN_FILENO)) {
		log_err("omnifsd: %s needs a confirmation: run it on a terminal, or add --yes",
			what);
		return false;
	}
	fprintf(stderr, "Type %s to go on: ", want);
	fflush(stderr);
	char line[128];
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, want) != 0) {
		fprintf(stderr, "not confirmed: nothing changed\n");
		return false;
	}
	return true;
}

/* A pass over the snapshot file, for show_progress. */
struct restore_pass {
	const char *what; /* "checked", "restored" */
	uint64_t total;	  /* the file's size */
};

/* On a terminal only: "restore: 12.0 of 40.0 MiB checked (30%)". */
static void show_progress(void *ctx, uint64_t bytes)
{
	const struct restore_pass *p = ctx;
	if (isatty(STDERR_FILENO) && p->total)
		fprintf(stderr, "\rrestore: %.1f of %.1f MiB %s (%llu%%)",
			(double)bytes / (1 << 20), (double)p->total / (1 << 20), p->what,
			(unsigned long long)(bytes * 100 / p->total));
}

int recover_restore(const struct cfg *c, const char *file)
{
	char state[PATH_MAX + 16], log_dir[PATH_MAX + 16], memb[PATH_MAX + 16], err[512];
	snprintf(state, sizeof(state), "%s/state", c->data_dir);
	snprintf(log_dir, sizeof(log_dir), "%s/log", c->data_dir);
	snprintf(memb, sizeof(memb), "%s/membership", c->data_dir);
	if (c->join) {
		log_err("omnifsd: %s has [node] join: a restore seeds the first members of a new "
			"cluster; a node added later joins it as usual",
			c->path);
		return 1;
	}
	if (!absent_or_empty(state) || !absent_or_empty(log_dir) || access(memb, F_OK) == 0) {
		log_err("omnifsd: %s already holds a node's data: a restore seeds an empty data "
			"dir (move the old one away first)",
			c->data_dir);
		return 1;
	}
	FILE *f = fopen(file, "re");
	if (!f) {
		log_err("omnifsd: %s: %s", file, strerror(errno));
		return 1;
	}
	/* Check the whole file before touching the data dir. */
	struct kv_snap_info info;
	struct stat fst;
	struct restore_pass pass = {"checked",
				    fstat(fileno(f), &fst) == 0 ? (uint64_t)fst.st_size : 0};
	int rc = kv_snapshot_read(f, NULL, &info, show_progress, &pass, err, sizeof(err));
	if (rc == 0)
		show_progress(&pass, pass.total); /* it comes now and then: end at 100% */
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (rc != 0) {
		log_err("omnifsd: %s: %s", file, err);
		fclose(f);
		return 1;
	}
	if (info.cluster_id == c->cluster_id) {
		log_err("omnifsd: %s was taken from cluster %s, the cluster %s names: a restored "
			"cluster needs a new name ([node] cluster), so that nodes of the old one "
			"can never join it",
			file, info.cluster, c->path);
		fclose(f);
		return 1;
	}
	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST) {
		log_err("omnifsd: %s: %s", c->data_dir, strerror(errno));
		fclose(f);
		return 1;
	}
	struct kv_store *kv = NULL;
	struct membership *old = calloc(1, sizeof(*old)), *m = calloc(1, sizeof(*m));
	int status = 1;
	if (!old || !m)
		goto out;
	rc = kv_open(&kv, state, c->cluster_id, err, sizeof(err));
	if (rc != 0) {
		log_err("omnifsd: %s", err);
		goto out;
	}
	rewind(f);
	pass.what = "restored";
	rc = kv_snapshot_read(f, kv, &info, show_progress, &pass, err, sizeof(err));
	if (rc == 0)
		show_progress(&pass, pass.total);
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	if (rc != 0) {
		log_err("omnifsd: %s: %s", file, err);
		goto out;
	}
	if (state_table(kv, old) != 0)
		goto out;

	membership_from_cfg(m, c);
	struct cfg_peer *self = (struct cfg_peer *)membership_find(m, c->node_id);
	if (!self) {
		log_err("omnifsd: node %" PRIu64 " is not in [peers] of %s", c->node_id, c->path);
		goto out;
	}
	if (own_key(c, self) != 0)
		goto out;
	m->config_id = (old->config_id ? old->config_id : 1) + 1;
	m->base = info.applied_idx;

	/* Sequences of this id continue above what the state remembers. */
	struct kv_view *v;
	uint64_t hwm = 0;
	if (kv_view_open(kv, &v) == 0) {
		kv_view_dedup_hwm(v, c->node_id, &hwm);
		kv_view_close(&v);
	}
	char epoch[32];
	int n = snprintf(epoch, sizeof(epoch), "%" PRIu64 "\n", (hwm >> 32) + 1);
	if (atomic_file_write(c->data_dir, "proposer-epoch", epoch, (size_t)n, err, sizeof(err)) !=
		    0 ||
	    membership_file_write(c->data_dir, m, err, sizeof(err)) != 0) {
		log_err("omnifsd: %s", err);
		goto out;
	}
	char hex[2 * KV_DIGEST_LEN + 1], ids[256];
	kv_digest_hex(info.digest, hex);
	membership_ids(m, ids, sizeof(ids));
	printf("restored %s: state of cluster %s at @%" PRIu64 " (digest %s, %" PRIu64
	       " records) as node %" PRIu64 " of cluster %s, configuration %u, members %s\n",
	       file, info.cluster, info.applied_idx, hex, info.records, c->node_id, c->cluster,
	       m->config_id, ids);
	status = 0;
out:
	if (status != 0 && kv) {
		log_err("omnifsd: the restore did not finish: remove %s before trying again",
			c->data_dir);
	}
	kv_close(&kv);
	fclose(f);
	free(old);
	free(m);
	return status;
}

/* The configuration this node runs: <data_dir>/membership, or the state's
 * table if newer, or the config file's [peers]. */
static int current_table(const struct cfg *c, struct kv_store *kv, struct membership *m)
{
	char err[256];
	struct membership *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	int rc = membership_file_read(c->data_dir, m, err, sizeof(err));
	if (rc == -ENOENT) {
		membership_from_cfg(m, c);
		rc = 0;
	} else if (rc != 0) {
		log_err("omnifsd: %s", err);
	}
	if (rc == 0)
		rc = state_table(kv, st);
	if (rc == 0 && st->config_id > m->config_id)
		*m = *st;
	free(st);
	return rc;
}

/* The optional first new member: "ID" "HOST:PORT" ["KEY"], checked; an id
 * that ever proposed is refused (its sequences would start over below the
 * state's). 0 (p->id 0 if none given) or -EINVAL. */
static int parse_member(const struct cfg *c, struct kv_store *kv, int argc, char **argv,
			struct cfg_peer *p)
{
	char *end;
	memset(p, 0, sizeof(*p));
	if (argc == 0)
		return 0;
	if (argc < 2 || argc > 3) {
		log_err("omnifsd: --force-new-cluster takes the first new member: ID HOST:PORT "
			"[KEY]");
		return -EINVAL;
	}
	errno = 0;
	unsigned long long id = strtoull(argv[0], &end, 10);
	if (errno || *end || id == 0 || id == c->node_id) {
		log_err("omnifsd: '%s' is not a new node id", argv[0]);
		return -EINVAL;
	}
	p->id = id;
	if (!cfg_address_is_valid(argv[1]) || strlen(argv[1]) >= sizeof(p->address)) {
		log_err("omnifsd: '%s' is not HOST:PORT", argv[1]);
		return -EINVAL;
	}
	snprintf(p->address, sizeof(p->address), "%s", argv[1]);
	if (!c->plaintext && (argc < 3 || !cfg_key_is_valid(argv[2]))) {
		log_err("omnifsd: the new member needs its Z85 public key (omnifsctl keygen)");
		return -EINVAL;
	}
	if (argc == 3)
		snprintf(p->public_key, sizeof(p->public_key), "%s", argv[2]);
	struct kv_view *v;
	uint64_t seq;
	int rc = kv_view_open(kv, &v);
	if (rc != 0)
		return rc;
	bool seen = kv_view_dedup_hwm(v, p->id, &seq) == 0;
	kv_view_close(&v);
	if (seen) {
		log_err("omnifsd: n%llu proposed in this cluster before: give the new member a "
			"new id",
			id);
		return -EINVAL;
	}
	return 0;
}

/*
 * Applies the log's entries [applied, end) (global indexes, the log's first
 * entry being global base) to the state: what a survivor has beyond its
 * state. A node killed or powered off keeps its state as of the last flush
 * only (the log has the rest, synced), and the decided index it stores may
 * trail what it decided and answered. Applied in log order as every node
 * applies them (kv_apply: an entry that does not decode is recorded as
 * malformed), then one flush. -ENOENT if the log no longer holds one of
 * them.
 */
static int apply_log_tail(struct kv_store *kv, struct opx_storage *st, uint64_t base,
			  uint64_t applied, uint64_t end)
{
	for (uint64_t idx = applied; idx < end; idx++) {
		struct opx_entry_list l = {0};
		int rc = st->ops->get_entries(st->impl, idx - base, idx - base + 1, &l);
		if (rc == 0 && l.n != 1)
			rc = -ENOENT;
		struct kv_result res;
		if (rc == 0)
			rc = kv_apply(kv, idx, l.entries[0].data, l.entries[0].len, false, &res);
		opx_entry_list_clear(&l);
		if (rc)
			return rc;
	}
	return kv_sync(kv);
}

int recover_force_new_cluster(const struct cfg *c, bool yes, int argc, char **argv)
{
	char path[PATH_MAX + 16], err[512];
	struct kv_store *kv = NULL;
	struct opx_rocks *lg = NULL;
	struct membership *cur = calloc(1, sizeof(*cur)), *m = calloc(1, sizeof(*m));
	int status = 1;
	if (!cur || !m)
		goto out;
	snprintf(path, sizeof(path), "%s/state", c->data_dir);
	if (kv_open(&kv, path, c->cluster_id, err, sizeof(err)) != 0) {
		log_err("omnifsd: %s", err);
		goto out;
	}
	if (current_table(c, kv, cur) != 0)
		goto out;
	const struct cfg_peer *self = membership_find(cur, c->node_id);
	if (!self) {
		log_err("omnifsd: node %" PRIu64 " is not a member of configuration %u: only a "
			"member can carry the cluster on",
			c->node_id, cur->config_id);
		goto out;
	}
	struct cfg_peer add;
	if (parse_member(c, kv, argc, argv, &add) != 0)
		goto out;
	if (cur->n == 1 && !add.id) {
		log_err("omnifsd: n%" PRIu64 " is already the only member", c->node_id);
		goto out;
	}
	if (add.id && membership_find(cur, add.id)) {
		log_err("omnifsd: n%" PRIu64 " is a member already: the new member needs a new id",
			add.id);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/log", c->data_dir);
	if (opx_rocks_open(&lg, path, c->cluster_id, err, sizeof(err)) != 0) {
		log_err("omnifsd: %s", err);
		goto out;
	}
	struct opx_storage st = opx_rocks_storage(lg);
	struct opx_storage_state ls;
	uint32_t log_config = 0;
	if (st.ops->load(st.impl, &ls) != 0 || opx_rocks_config_id(lg, &log_config) != 0) {
		log_err("omnifsd: %s: %s", path, opx_rocks_errmsg(lg));
		goto out;
	}
	uint64_t applied = kv_applied_idx(kv);
	bool log_current = log_config == cur->config_id;
	uint64_t decided = log_current ? cur->base + ls.decided_idx : applied;
	uint64_t accepted = log_current ? cur->base + ls.log_end : applied;
	if (accepted > applied && applied < cur->base) {
		log_err("omnifsd: the state (@%" PRIu64 ") is older than configuration %u, "
			"which starts at @%" PRIu64 ": this node was still fetching it; carry "
			"the cluster on from another survivor",
			applied, cur->config_id, cur->base);
		goto out;
	}
	/*
	 * The new cluster continues this node's whole log: the entries the
	 * state lacks are applied first (below, once confirmed). Those past
	 * the decided index it knows may have been decided and answered by
	 * the lost members (or by this node, whose stored decided index may
	 * trail); dropping them could lose acknowledged writes, keeping them
	 * at worst makes a write whose writer saw it fail take effect.
	 */
	uint64_t start = accepted > applied ? accepted : applied;
	char ids[256];
	membership_ids(cur, ids, sizeof(ids));
	printf("node %" PRIu64 " of cluster %s, configuration %u (members %s)\n", c->node_id,
	       c->cluster, cur->config_id, ids);
	if (start > applied)
		printf("applied state: @%" PRIu64
		       ", behind this node's log (entries up to @%" PRIu64
		       "): they are applied first; the new cluster starts from @%" PRIu64 "\n",
		       applied, start - 1, start);
	else
		printf("applied state: @%" PRIu64 "; the new cluster starts from it\n", applied);
	if (accepted > decided)
		printf("kept, maybe never decided: entries @%" PRIu64 "..@%" PRIu64
		       " are in this node's log but were not known decided here; the lost "
		       "members may have decided them (and answered their writers); if they "
		       "did not, their writers saw them fail (an error or a timeout), and they "
		       "take effect now\n",
		       decided, accepted - 1);
	printf("may be lost: anything the lost members decided after @%" PRIu64
	       " without this node (it never heard of it)\n",
	       start ? start - 1 : 0);
	printf("the other members (%s but n%" PRIu64
	       ") leave the cluster for good: wipe their data dirs before they start again\n",
	       ids, c->node_id);
	if (add.id)
		printf("the new cluster: n%" PRIu64 " and n%" PRIu64
		       " (%s, empty, [node] join = true); it takes writes once n%" PRIu64
		       " has joined; add more with `omnifsctl member add` under new ids\n",
		       c->node_id, add.id, add.address, add.id);
	else
		printf("the new cluster: n%" PRIu64 " alone; add members back with `omnifsctl "
		       "member add` under new ids\n",
		       c->node_id);
	if (!yes && !confirmed("--force-new-cluster", c->cluster))
		goto out;
	if (start > applied) {
		int rc = apply_log_tail(kv, &st, cur->base, applied, start);
		if (rc) {
			log_err("omnifsd: applying the log's entries @%" PRIu64 "..@%" PRIu64
				" to the state: %s%s%s; the configuration is unchanged",
				applied, start - 1,
				rc == -ENOENT ? "the log no longer holds them all" : strerror(-rc),
				kv_errmsg(kv)[0] ? ": " : "", kv_errmsg(kv));
			goto out;
		}
		printf("applied the log's entries @%" PRIu64 "..@%" PRIu64 "\n", applied,
		       start - 1);
	}

	memset(m, 0, sizeof(*m));
	m->config_id = cur->config_id + 1;
	m->base = start;
	struct cfg_peer me = *self;
	me.learner = false; /* a learner's copy carries the cluster on: it votes now */
	if (own_key(c, &me) != 0)
		goto out;
	m->n = add.id ? 2 : 1;
	m->peers[0] = me;
	m->peers[1] = add;
	if (add.id && add.id < me.id) { /* tables are sorted by id */
		m->peers[0] = add;
		m->peers[1] = me;
	}
	/* The file first: a crash before the reset leaves a log of an older
	 * configuration, which the next start empties anyway. */
	if (membership_file_write(c->data_dir, m, err, sizeof(err)) != 0) {
		log_err("omnifsd: %s", err);
		goto out;
	}
	if (opx_rocks_reset(lg, m->config_id) != 0) {
		log_err("omnifsd: %s: %s", path, opx_rocks_errmsg(lg));
		goto out;
	}
	char new_ids[256];
	membership_ids(m, new_ids, sizeof(new_ids));
	log_notice("omnifsd: forced a new cluster: configuration %u from @%" PRIu64
		   ", members %s (was %u, members %s)",
		   m->config_id, start, new_ids, cur->config_id, ids);
	printf("done: configuration %u from @%" PRIu64 ", members %s; start %s\n", m->config_id,
	       start, new_ids, add.id ? "both" : "it");
	status = 0;
out:
	opx_rocks_close(&lg);
	kv_close(&kv);
	free(cur);
	free(m);
	return status;
}

int recover_drop_state(const struct cfg *c, bool yes)
{
	char state[PATH_MAX + 16], aside[PATH_MAX + 64], log_dir[PATH_MAX + 16], err[512];
	snprintf(state, sizeof(state), "%s/state", c->data_dir);
	snprintf(log_dir, sizeof(log_dir), "%s/log", c->data_dir);
	struct opx_rocks *lg = NULL;
	if (opx_rocks_open(&lg, log_dir, c->cluster_id, err, sizeof(err)) != 0) {
		log_err("omnifsd: the log is damaged too (%s): the state cannot be fetched "
			"again under this node's id; wipe %s and replace the node: on a member, "
			"`omnifsctl member replace %" PRIu64 " NEW_ID HOST:PORT KEY`",
			err, c->data_dir, c->node_id);
		return 1;
	}
	opx_rocks_close(&lg);
	if (access(state, F_OK) != 0) {
		log_err("omnifsd: %s: %s", state, strerror(errno));
		return 1;
	}
	snprintf(aside, sizeof(aside), "%s/state.dropped-%lld", c->data_dir, (long long)time(NULL));
	printf("%s will move to %s; the next start fetches the state from the other members "
	       "and replays this node's log\n",
	       state, aside);
	if (!yes && !confirmed("--drop-state", "yes"))
		return 1;
	if (rename(state, aside) != 0) {
		log_err("omnifsd: rename %s: %s", state, strerror(errno));
		return 1;
	}
	printf("done: start the node; remove %s once it is back in step\n", aside);
	return 0;
}

void recover_hint(const struct cfg *c, const char *err)
{
	char state[PATH_MAX + 16], log_dir[PATH_MAX + 16];
	snprintf(state, sizeof(state), "%s/state", c->data_dir);
	snprintf(log_dir, sizeof(log_dir), "%s/log", c->data_dir);
	bool refused = strstr(err, "belongs to cluster") || strstr(err, "format") ||
		       strstr(err, "is not an omnifs");
	if (refused)
		return; /* another cluster's or version's data: its own message says what */
	if (strstr(err, state))
		log_err("omnifsd: the KV state (%s) is damaged: while the log is intact, repair "
			"with `omnifsd -c %s --drop-state`, then start the node: it fetches the "
			"state from the other members",
			state, c->path);
	else if (strstr(err, log_dir))
		log_err("omnifsd: the consensus log (%s) is damaged: this node cannot come back "
			"under id %" PRIu64 " (its promises are lost); wipe %s and, on a member, "
			"`omnifsctl member replace %" PRIu64 " NEW_ID HOST:PORT KEY`",
			log_dir, c->node_id, c->data_dir, c->node_id);
}
