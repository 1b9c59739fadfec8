/*
 * The RocksDB storage of the consensus core: every operation and read of the
 * vtable, persistence across close/open, refusal of foreign, other-format,
 * garbage and corrupt data dirs, and a crash test (a child SIGKILLed in the
 * middle of a stream of synced multi-op writes leaves a consistent log with
 * every acknowledged write). Each test works in its own temp dir, removed on
 * teardown.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "log_journal.h"
#include "rocks_memory.h"
#include "storage_rocksdb.h"

#define CLUSTER 0x5eedc0de12345678ull

struct fixture {
	char dir[256];	/* the temp dir, removed on teardown */
	char path[300]; /* dir/log: the store */
	struct opx_rocks *r;
	struct opx_storage st;
};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/omnifs-storage-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/log", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	opx_rocks_close(&f->r);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void open_store(struct fixture *f)
{
	char err[512];
	int rc = opx_rocks_open(&f->r, f->path, CLUSTER, err, sizeof(err));
	if (rc)
		fail_msg("open: %d %s", rc, err);
	f->st = opx_rocks_storage(f->r);
}

static void reopen(struct fixture *f)
{
	opx_rocks_close(&f->r);
	assert_null(f->r);
	open_store(f);
}

static int write_ops(struct fixture *f, const struct opx_storage_op *ops, size_t n)
{
	return f->st.ops->write_atomically(f->st.impl, ops, n);
}

static struct opx_storage_state load(struct fixture *f)
{
	struct opx_storage_state s;
	assert_int_equal(f->st.ops->load(f->st.impl, &s), 0);
	return s;
}

/* Appends entries "<tag><i>" for i in [0, n). */
static void append_tagged(struct fixture *f, const char *tag, uint32_t n)
{
	char bufs[16][32];
	struct opx_entry es[16];
	assert_true(n <= 16);
	for (uint32_t i = 0; i < n; i++) {
		int len = snprintf(bufs[i], sizeof(bufs[i]), "%s%u", tag, i);
		es[i].data = (const uint8_t *)bufs[i];
		es[i].len = (uint32_t)len;
	}
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
	op.u.append.entries = es;
	op.u.append.n = n;
	assert_int_equal(write_ops(f, &op, 1), 0);
}

static void append_on_prefix(struct fixture *f, uint64_t from, const char *tag, uint32_t n,
			     int expect)
{
	char bufs[16][32];
	struct opx_entry es[16];
	assert_true(n <= 16);
	for (uint32_t i = 0; i < n; i++) {
		int len = snprintf(bufs[i], sizeof(bufs[i]), "%s%u", tag, i);
		es[i].data = (const uint8_t *)bufs[i];
		es[i].len = (uint32_t)len;
	}
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ON_PREFIX};
	op.u.append.entries = es;
	op.u.append.n = n;
	op.u.append.from_idx = from;
	assert_int_equal(write_ops(f, &op, 1), expect);
}

static void set_idx(struct fixture *f, enum opx_storage_op_type type, uint64_t idx)
{
	struct opx_storage_op op = {.type = type};
	op.u.idx = idx;
	assert_int_equal(write_ops(f, &op, 1), 0);
}

/* Reads [from, to) and checks each entry is the expected string; NULL
 * expectations mean "nothing comes back". */
static void expect_entries(struct fixture *f, uint64_t from, uint64_t to, const char *const *want)
{
	struct opx_entry_list l = {0};
	struct opx_entry dummy = {.data = (const uint8_t *)"x", .len = 1};
	/* A pre-existing entry must be left alone. */
	assert_int_equal(opx_entry_list_push(&l, dummy.data, dummy.len), 0);
	assert_int_equal(f->st.ops->get_entries(f->st.impl, from, to, &l), 0);
	if (!want) {
		assert_int_equal(l.n, 1);
	} else {
		assert_int_equal(l.n, 1 + (to - from));
		for (uint64_t i = 0; i < to - from; i++) {
			assert_int_equal(l.entries[1 + i].len, strlen(want[i]));
			assert_memory_equal(l.entries[1 + i].data, want[i], strlen(want[i]));
		}
	}
	opx_entry_list_clear(&l);
}

/* Nothing stored: no scalar, no entry in [0, to). */
static void expect_empty(struct fixture *f, uint64_t to)
{
	struct opx_storage_state s = load(f);
	assert_false(s.has_promise);
	assert_false(s.has_accepted_round);
	assert_false(s.has_stopsign);
	assert_false(s.has_snapshot);
	assert_int_equal(s.decided_idx, 0);
	assert_int_equal(s.compacted_idx, 0);
	assert_int_equal(s.log_end, 0);
	expect_entries(f, 0, to, NULL);
}

static void test_storage_rocksdb_fresh_store_is_empty(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	expect_empty(f, 1);
	uint8_t *snap = (uint8_t *)1;
	uint32_t len = 7;
	assert_int_equal(f->st.ops->get_snapshot(f->st.impl, &snap, &len), 0);
	assert_null(snap);
	assert_int_equal(len, 0);
	assert_string_equal(opx_rocks_errmsg(f->r), "");
}

static void test_storage_rocksdb_append_and_read(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 3);
	append_tagged(f, "b", 2);
	assert_int_equal(load(f).log_end, 5);
	const char *all[] = {"a0", "a1", "a2", "b0", "b1"};
	expect_entries(f, 0, 5, all);
	expect_entries(f, 1, 3, all + 1);
	expect_entries(f, 4, 5, all + 4);
	/* Not wholly stored, or empty: nothing. */
	expect_entries(f, 3, 6, NULL);
	expect_entries(f, 5, 6, NULL);
	expect_entries(f, 3, 3, NULL);
	expect_entries(f, 4, 2, NULL);

	/* An empty entry is an entry. */
	struct opx_entry e = {.data = NULL, .len = 0};
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
	op.u.append.entries = &e;
	op.u.append.n = 1;
	assert_int_equal(write_ops(f, &op, 1), 0);
	const char *empty[] = {""};
	expect_entries(f, 5, 6, empty);
}

static void count_sync(void *ctx, uint64_t ns)
{
	(void)ns;
	(*(int *)ctx)++;
}

/* write_unsynced: applied and readable at once, all or nothing; sync makes it
 * durable. Only synced writes and syncs are timed (the fsync latency). */
static void test_storage_rocksdb_unsynced_write_and_sync(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	assert_non_null(f->st.ops->write_unsynced);
	assert_non_null(f->st.ops->sync);
	int timed = 0;
	opx_rocks_set_sync_fn(f->r, count_sync, &timed);
	append_tagged(f, "a", 2);
	assert_int_equal(timed, 1);

	struct opx_entry es[2] = {{.data = (const uint8_t *)"u0", .len = 2},
				  {.data = (const uint8_t *)"u1", .len = 2}};
	struct opx_storage_op op = {.type = OPX_OP_APPEND_ENTRIES};
	op.u.append.entries = es;
	op.u.append.n = 2;
	assert_int_equal(f->st.ops->write_unsynced(f->st.impl, &op, 1), 0);
	assert_int_equal(timed, 1);
	assert_int_equal(load(f).log_end, 4);
	const char *all[] = {"a0", "a1", "u0", "u1"};
	expect_entries(f, 0, 4, all);

	/* A gap: refused, nothing applied. */
	struct opx_storage_op bad[2] = {op, {.type = OPX_OP_APPEND_ON_PREFIX}};
	bad[1].u.append.entries = es;
	bad[1].u.append.n = 1;
	bad[1].u.append.from_idx = 9;
	assert_int_equal(f->st.ops->write_unsynced(f->st.impl, bad, 2), -EINVAL);
	assert_int_equal(load(f).log_end, 4);

	assert_int_equal(f->st.ops->sync(f->st.impl), 0);
	assert_int_equal(timed, 2);
	reopen(f);
	assert_int_equal(load(f).log_end, 4);
	expect_entries(f, 0, 4, all);
}

static void test_storage_rocksdb_append_on_prefix_truncates(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 6);
	append_on_prefix(f, 2, "b", 2, 0);
	assert_int_equal(load(f).log_end, 4);
	const char *want[] = {"a0", "a1", "b0", "b1"};
	expect_entries(f, 0, 4, want);
	expect_entries(f, 0, 5, NULL);

	/* At the end: a plain append. With no entries: a pure truncation. */
	append_on_prefix(f, 4, "c", 1, 0);
	const char *want2[] = {"b1", "c0"};
	expect_entries(f, 3, 5, want2);
	append_on_prefix(f, 1, "", 0, 0);
	assert_int_equal(load(f).log_end, 1);
	expect_entries(f, 1, 2, NULL);
	const char *want3[] = {"a0"};
	expect_entries(f, 0, 1, want3);

	/* A gap is refused and the whole batch with it. */
	struct opx_storage_op ops[2] = {{.type = OPX_OP_SET_DECIDED_IDX},
					{.type = OPX_OP_APPEND_ON_PREFIX}};
	ops[0].u.idx = 1;
	ops[1].u.append.from_idx = 3;
	assert_int_equal(write_ops(f, ops, 2), -EINVAL);
	assert_non_null(strstr(opx_rocks_errmsg(f->r), "gap"));
	struct opx_storage_state s = load(f);
	assert_int_equal(s.decided_idx, 0);
	assert_int_equal(s.log_end, 1);

	/* Survives a restart. */
	reopen(f);
	assert_int_equal(load(f).log_end, 1);
	expect_entries(f, 0, 1, want3);
}

static void test_storage_rocksdb_trim(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 5);
	struct opx_storage_op ops[2] = {{.type = OPX_OP_TRIM}, {.type = OPX_OP_SET_COMPACTED_IDX}};
	ops[0].u.idx = 3;
	ops[1].u.idx = 3;
	assert_int_equal(write_ops(f, ops, 2), 0);
	struct opx_storage_state s = load(f);
	assert_int_equal(s.compacted_idx, 3);
	assert_int_equal(s.log_end, 5);
	const char *want[] = {"a3", "a4"};
	expect_entries(f, 3, 5, want);
	/* Ranges reaching below the trimmed index give nothing. */
	expect_entries(f, 2, 4, NULL);
	expect_entries(f, 0, 1, NULL);

	/* Trimming less than already trimmed changes nothing. */
	set_idx(f, OPX_OP_TRIM, 1);
	expect_entries(f, 3, 5, want);

	/* Append on a prefix below the trimmed index keeps only what lies above. */
	append_on_prefix(f, 2, "b", 3, 0);
	const char *want2[] = {"b1", "b2"};
	expect_entries(f, 3, 5, want2);
	assert_int_equal(load(f).log_end, 5);

	/* Trimming beyond the end moves the end with it. */
	set_idx(f, OPX_OP_TRIM, 9);
	assert_int_equal(load(f).log_end, 9);
	expect_entries(f, 3, 5, NULL);
	append_tagged(f, "c", 1);
	const char *want3[] = {"c0"};
	expect_entries(f, 9, 10, want3);
	expect_entries(f, 8, 10, NULL);

	reopen(f);
	assert_int_equal(load(f).log_end, 10);
	expect_entries(f, 9, 10, want3);
	set_idx(f, OPX_OP_TRIM, 10);
	reopen(f);
	assert_int_equal(load(f).log_end, 10);
	expect_entries(f, 9, 10, NULL);
}

static void test_storage_rocksdb_scalars(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	struct opx_ballot p = {.config_id = 3, .n = 7, .priority = 2, .pid = 0x1122334455667788ull};
	struct opx_ballot a = {.config_id = 1, .n = 0xffffffffu, .priority = 0, .pid = 2};
	struct opx_storage_op ops[4] = {
		{.type = OPX_OP_SET_PROMISE},
		{.type = OPX_OP_SET_ACCEPTED_ROUND},
		{.type = OPX_OP_SET_DECIDED_IDX},
		{.type = OPX_OP_SET_COMPACTED_IDX},
	};
	ops[0].u.ballot = p;
	ops[1].u.ballot = a;
	ops[2].u.idx = 0x0102030405060708ull;
	ops[3].u.idx = 42;
	assert_int_equal(write_ops(f, ops, 4), 0);
	for (int round = 0; round < 2; round++) {
		struct opx_storage_state s = load(f);
		assert_true(s.has_promise);
		assert_true(opx_ballot_eq(&s.promise, &p));
		assert_true(s.has_accepted_round);
		assert_true(opx_ballot_eq(&s.accepted_round, &a));
		assert_int_equal(s.promise.pid, p.pid);
		assert_int_equal(s.accepted_round.config_id, 1);
		assert_int_equal(s.decided_idx, 0x0102030405060708ull);
		assert_int_equal(s.compacted_idx, 42);
		reopen(f);
	}
	/* Overwrites, each alone. */
	p.n = 8;
	ops[0].u.ballot = p;
	assert_int_equal(write_ops(f, ops, 1), 0);
	set_idx(f, OPX_OP_SET_DECIDED_IDX, 5);
	set_idx(f, OPX_OP_SET_COMPACTED_IDX, 43);
	struct opx_storage_state s = load(f);
	assert_int_equal(s.promise.n, 8);
	assert_int_equal(s.accepted_round.n, 0xffffffffu);
	assert_int_equal(s.decided_idx, 5);
	assert_int_equal(s.compacted_idx, 43);
}

static void test_storage_rocksdb_stopsign(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	struct opx_stopsign *ss = calloc(1, sizeof(*ss));
	assert_non_null(ss);
	ss->next.config_id = 2;
	ss->next.n_nodes = OPX_MAX_NODES;
	for (uint32_t i = 0; i < OPX_MAX_NODES; i++)
		ss->next.nodes[i] = 100 + i;
	ss->next.read_quorum = 40;
	ss->next.write_quorum = 30;
	ss->metadata_len = OPX_MAX_METADATA_LEN;
	for (uint32_t i = 0; i < OPX_MAX_METADATA_LEN; i++)
		ss->metadata[i] = (uint8_t)(i * 7);

	struct opx_storage_op op = {.type = OPX_OP_SET_STOPSIGN};
	op.u.ss = ss;
	assert_int_equal(write_ops(f, &op, 1), 0);
	reopen(f);
	struct opx_storage_state s = load(f);
	assert_true(s.has_stopsign);
	assert_memory_equal(&s.stopsign, ss, sizeof(*ss));

	/* A small one replaces it whole. */
	memset(ss, 0, sizeof(*ss));
	ss->next.config_id = 3;
	ss->next.n_nodes = 1;
	ss->next.nodes[0] = 9;
	assert_int_equal(write_ops(f, &op, 1), 0);
	s = load(f);
	assert_memory_equal(&s.stopsign, ss, sizeof(*ss));

	/* Out of range is refused. */
	ss->next.n_nodes = OPX_MAX_NODES + 1;
	assert_int_equal(write_ops(f, &op, 1), -EINVAL);

	op.u.ss = NULL;
	assert_int_equal(write_ops(f, &op, 1), 0);
	reopen(f);
	assert_false(load(f).has_stopsign);
	free(ss);
}

static void expect_snapshot(struct fixture *f, const void *want, uint32_t want_len)
{
	uint8_t *d;
	uint32_t len;
	assert_int_equal(f->st.ops->get_snapshot(f->st.impl, &d, &len), 0);
	if (!want) {
		assert_null(d);
		assert_int_equal(len, 0);
		return;
	}
	assert_non_null(d);
	assert_int_equal(len, want_len);
	if (len)
		assert_memory_equal(d, want, len);
	free(d);
}

static void test_storage_rocksdb_snapshot(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	static const uint8_t data[] = "snapshot bytes\0with a nul";
	struct opx_storage_op ops[3] = {{.type = OPX_OP_TRIM},
					{.type = OPX_OP_SET_COMPACTED_IDX},
					{.type = OPX_OP_SET_SNAPSHOT}};
	ops[0].u.idx = 4;
	ops[1].u.idx = 4;
	ops[2].u.snapshot.data = data;
	ops[2].u.snapshot.len = sizeof(data);
	assert_int_equal(write_ops(f, ops, 3), 0);
	reopen(f);
	struct opx_storage_state s = load(f);
	assert_true(s.has_snapshot);
	assert_int_equal(s.compacted_idx, 4);
	assert_int_equal(s.log_end, 4);
	expect_snapshot(f, data, sizeof(data));

	/* An empty snapshot is a snapshot. */
	ops[2].u.snapshot.len = 0;
	assert_int_equal(write_ops(f, &ops[2], 1), 0);
	assert_true(load(f).has_snapshot);
	expect_snapshot(f, data, 0);

	ops[2].u.snapshot.data = NULL;
	assert_int_equal(write_ops(f, &ops[2], 1), 0);
	reopen(f);
	assert_false(load(f).has_snapshot);
	expect_snapshot(f, NULL, 0);
}

/* A configuration's log is emptied for the next one, in one batch, and
 * remembers which configuration it belongs to. */
static void test_storage_rocksdb_reset_for_next_configuration(void **state)
{
	struct fixture *f = *state;
	uint32_t cid = 0;
	open_store(f);
	assert_int_equal(opx_rocks_config_id(f->r, &cid), 0);
	assert_int_equal(cid, 1); /* a log that never recorded one */
	append_tagged(f, "a", 5);
	set_idx(f, OPX_OP_SET_DECIDED_IDX, 5);
	set_idx(f, OPX_OP_TRIM, 2);
	struct opx_stopsign ss = {.next = {.config_id = 2, .n_nodes = 2, .nodes = {1, 2}}};
	struct opx_storage_op op = {.type = OPX_OP_SET_STOPSIGN};
	op.u.ss = &ss;
	assert_int_equal(write_ops(f, &op, 1), 0);

	assert_int_equal(opx_rocks_reset(f->r, 2), 0);
	reopen(f);
	assert_int_equal(opx_rocks_config_id(f->r, &cid), 0);
	assert_int_equal(cid, 2);
	expect_empty(f, 5);
	/* The new configuration's log starts again at index 0. */
	append_tagged(f, "b", 2);
	const char *want[] = {"b0", "b1"};
	expect_entries(f, 0, 2, want);
	reopen(f);
	expect_entries(f, 0, 2, want);
}

static void test_storage_rocksdb_persists(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 8);
	append_on_prefix(f, 6, "b", 1, 0);
	set_idx(f, OPX_OP_SET_DECIDED_IDX, 6);
	set_idx(f, OPX_OP_TRIM, 2);
	reopen(f);
	struct opx_storage_state s = load(f);
	assert_int_equal(s.log_end, 7);
	assert_int_equal(s.decided_idx, 6);
	const char *want[] = {"a2", "a3", "a4", "a5", "b0"};
	expect_entries(f, 2, 7, want);
	expect_entries(f, 1, 7, NULL);
	/* Appends continue at the recovered end. */
	append_tagged(f, "c", 1);
	reopen(f);
	const char *want2[] = {"b0", "c0"};
	expect_entries(f, 6, 8, want2);

	/* The directory is created with its parents. */
	opx_rocks_close(&f->r);
	snprintf(f->path, sizeof(f->path), "%s/deeper/still/log", f->dir);
	open_store(f);
	assert_int_equal(load(f).log_end, 0);
}

static void expect_refused(struct fixture *f, uint64_t cluster, int rc_want,
			   const char *const *words)
{
	char err[512];
	struct opx_rocks *r = (void *)f;
	int rc = opx_rocks_open(&r, f->path, cluster, err, sizeof(err));
	if (rc != rc_want)
		fail_msg("open gave %d (%s), expected %d", rc, err, rc_want);
	assert_null(r);
	assert_non_null(strstr(err, f->path));
	for (; *words; words++)
		if (!strstr(err, *words))
			fail_msg("'%s' not in '%s'", *words, err);
}

static void test_storage_rocksdb_refuses_other_cluster(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 1);
	opx_rocks_close(&f->r);
	const char *words[] = {"0x5eedc0de12345678", "0x99", "this node is configured for cluster",
			       "move the old one away", NULL};
	expect_refused(f, 0x99, -EINVAL, words);
	/* Nothing was changed by the refusal. */
	open_store(f);
	const char *want[] = {"a0"};
	expect_entries(f, 0, 1, want);
}

/* The log's database opened with plain RocksDB (both column families). */
struct raw_db {
	rocksdb_options_t *o;
	rocksdb_t *db;
	rocksdb_column_family_handle_t *cfs[2];
};

static void raw_open(struct raw_db *r, const char *path)
{
	const char *names[2] = {"default", "log"};
	char *e = NULL;
	r->o = rocksdb_options_create();
	const rocksdb_options_t *cfo[2] = {r->o, r->o};
	r->db = rocksdb_open_column_families(r->o, path, 2, names, cfo, r->cfs, &e);
	if (e)
		fail_msg("raw open: %s", e);
}

static void raw_close(struct raw_db *r)
{
	rocksdb_column_family_handle_destroy(r->cfs[0]);
	rocksdb_column_family_handle_destroy(r->cfs[1]);
	rocksdb_close(r->db);
	rocksdb_options_destroy(r->o);
}

/* Puts key=value into column family cf (0: the default one, 1: the log) of
 * the log at path, or deletes key if val is NULL, with plain RocksDB. */
static void raw_put_cf(const char *path, int cf, const char *key, size_t key_len, const void *val,
		       size_t len)
{
	struct raw_db r;
	char *e = NULL;
	raw_open(&r, path);
	rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
	if (val)
		rocksdb_put_cf(r.db, w, r.cfs[cf], key, key_len, val, len, &e);
	else
		rocksdb_delete_cf(r.db, w, r.cfs[cf], key, key_len, &e);
	assert_null(e);
	rocksdb_writeoptions_destroy(w);
	raw_close(&r);
}

static void raw_put(const char *path, const char *key, const void *val, size_t len)
{
	raw_put_cf(path, 0, key, strlen(key), val, len);
}

/* An entry missing inside the log is -EIO naming it, whether read alone
 * (a point lookup) or in a range (an iterator). */
static void test_storage_rocksdb_missing_entry(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 3);
	opx_rocks_close(&f->r);
	const char k1[8] = {0, 0, 0, 0, 0, 0, 0, 1}; /* @1, big-endian */
	raw_put_cf(f->path, 1, k1, sizeof(k1), NULL, 0);
	open_store(f);
	const char *all[] = {"a0", "a1", "a2"};
	expect_entries(f, 0, 1, all);
	expect_entries(f, 2, 3, all + 2);
	uint64_t ranges[][2] = {{1, 2}, {0, 3}};
	for (size_t i = 0; i < 2; i++) {
		struct opx_entry_list l = {0};
		assert_int_equal(f->st.ops->get_entries(f->st.impl, ranges[i][0], ranges[i][1], &l),
				 -EIO);
		assert_int_equal(l.n, 0);
		assert_non_null(strstr(opx_rocks_errmsg(f->r), "entry @1 missing"));
		opx_entry_list_clear(&l);
	}
}

static void test_storage_rocksdb_refuses_other_format(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	opx_rocks_close(&f->r);
	uint8_t id[20] = "omnifsLG";
	id[8] = 99; /* format 99 */
	memcpy(id + 12, "\x78\x56\x34\x12\xde\xc0\xed\x5e", 8);
	raw_put(f->path, "identity", id, sizeof(id));
	const char *words[] = {"format 99", "format 2", NULL};
	expect_refused(f, CLUSTER, -EINVAL, words);
	id[8] = 0; /* format 0: older than the oldest opened */
	raw_put(f->path, "identity", id, sizeof(id));
	const char *words0[] = {"format 0", "format 2", NULL};
	expect_refused(f, CLUSTER, -EINVAL, words0);

	/* Another magic: not a log at all. */
	raw_put(f->path, "identity", "something else", 14);
	const char *words2[] = {"is not an omnifs consensus log", NULL};
	expect_refused(f, CLUSTER, -EINVAL, words2);
}

/* Reads the format in the store's identity with plain RocksDB. */
static uint32_t raw_format(const char *path)
{
	struct raw_db r;
	char *e = NULL;
	raw_open(&r, path);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	size_t len = 0;
	char *v = rocksdb_get_cf(r.db, ro, r.cfs[0], "identity", 8, &len, &e);
	assert_null(e);
	assert_int_equal(len, 20);
	uint32_t format = (uint8_t)v[8] | (uint32_t)(uint8_t)v[9] << 8 |
			  (uint32_t)(uint8_t)v[10] << 16 | (uint32_t)(uint8_t)v[11] << 24;
	rocksdb_free(v);
	rocksdb_readoptions_destroy(ro);
	raw_close(&r);
	return format;
}

/* A log of format 1 (before the journal) opens with what it holds, and is
 * upgraded at once: an omnifs that reads only format 1 refuses it then. */
static void test_storage_rocksdb_upgrades_format_1(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 2);
	opx_rocks_close(&f->r);
	assert_int_equal(raw_format(f->path), OPX_ROCKS_FORMAT);
	uint8_t id[20] = "omnifsLG";
	id[8] = 1;
	memcpy(id + 12, "\x78\x56\x34\x12\xde\xc0\xed\x5e", 8);
	raw_put(f->path, "identity", id, sizeof(id));
	assert_int_equal(raw_format(f->path), 1);
	open_store(f);
	const char *want[] = {"a0", "a1"};
	expect_entries(f, 0, 2, want);
	append_tagged(f, "b", 1);
	opx_rocks_close(&f->r);
	assert_int_equal(raw_format(f->path), 2);
	open_store(f);
	assert_int_equal(load(f).log_end, 3);
}

static void test_storage_rocksdb_refuses_garbage(void **state)
{
	struct fixture *f = *state;
	const char *not_log[] = {"is not an omnifs consensus log", NULL};

	/* A directory with other files in it. */
	assert_int_equal(mkdir(f->path, 0700), 0);
	char p[400];
	snprintf(p, sizeof(p), "%s/notes.txt", f->path);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("hello\n", fp);
	fclose(fp);
	expect_refused(f, CLUSTER, -EINVAL, not_log);
	assert_int_equal(remove(p), 0);
	assert_int_equal(rmdir(f->path), 0);

	/* A plain file. */
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	fclose(fp);
	expect_refused(f, CLUSTER, -EINVAL, not_log);
	assert_int_equal(remove(f->path), 0);

	/* Another RocksDB database (only the default column family). */
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(o, 1);
	char *e = NULL;
	rocksdb_t *db = rocksdb_open(o, f->path, &e);
	assert_null(e);
	rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
	rocksdb_put(db, w, "k", 1, "v", 1, &e);
	assert_null(e);
	rocksdb_writeoptions_destroy(w);
	rocksdb_close(db);
	rocksdb_options_destroy(o);
	expect_refused(f, CLUSTER, -EINVAL, not_log);

	/* A database with our column families but data and no identity. */
	nftw(f->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	open_store(f);
	opx_rocks_close(&f->r);
	raw_put(f->path, "promise", "x", 1);
	raw_put(f->path, "identity", NULL, 0);
	expect_refused(f, CLUSTER, -EINVAL, not_log);

	/* ... but an empty one (a crash during creation) is finished. */
	nftw(f->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	open_store(f);
	opx_rocks_close(&f->r);
	raw_put(f->path, "identity", NULL, 0);
	open_store(f);
	opx_rocks_close(&f->r);
	const char *words[] = {"belongs to cluster", NULL};
	expect_refused(f, 7, -EINVAL, words);
}

static void test_storage_rocksdb_refuses_corrupt(void **state)
{
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 2);
	opx_rocks_close(&f->r);

	/* A scalar that does not decode is -EIO with its name, not a crash. */
	raw_put(f->path, "promise", "\x01short", 6);
	raw_put(f->path, "decided_idx", "123", 3);
	open_store(f);
	struct opx_storage_state s;
	assert_int_equal(f->st.ops->load(f->st.impl, &s), -EIO);
	assert_non_null(strstr(opx_rocks_errmsg(f->r), "corrupt promise"));
	opx_rocks_close(&f->r);
	raw_put(f->path, "promise", "", 0);
	open_store(f);
	assert_int_equal(f->st.ops->load(f->st.impl, &s), -EIO);
	opx_rocks_close(&f->r);
	uint8_t ball[21] = {1};
	raw_put(f->path, "promise", ball, sizeof(ball));
	open_store(f);
	assert_int_equal(f->st.ops->load(f->st.impl, &s), -EIO);
	assert_non_null(strstr(opx_rocks_errmsg(f->r), "corrupt decided_idx"));
	opx_rocks_close(&f->r);
	uint8_t idx[8] = {2};
	raw_put(f->path, "decided_idx", idx, sizeof(idx));
	raw_put(f->path, "stopsign", "\x01\x00\x00\x00\x00\xff\x00\x00\x00", 9);
	open_store(f);
	assert_int_equal(f->st.ops->load(f->st.impl, &s), -EIO);
	opx_rocks_close(&f->r);
	raw_put(f->path, "stopsign", NULL, 0);
	raw_put(f->path, "snapshot", "\x07", 1);
	open_store(f);
	assert_int_equal(f->st.ops->load(f->st.impl, &s), -EIO);
	uint8_t *d;
	uint32_t len;
	assert_int_equal(f->st.ops->get_snapshot(f->st.impl, &d, &len), -EIO);
	opx_rocks_close(&f->r);

	/* A trimmed index that disagrees with the stored entries. */
	uint8_t trimmed[8] = {1};
	raw_put(f->path, "trimmed_idx", trimmed, sizeof(trimmed));
	const char *words[] = {"corrupt log", NULL};
	expect_refused(f, CLUSTER, -EIO, words);

	/* A database whose files are damaged. */
	char p[400];
	snprintf(p, sizeof(p), "%s/CURRENT", f->path);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("MANIFEST-999999\n", fp);
	fclose(fp);
	const char *none[] = {NULL};
	expect_refused(f, CLUSTER, -EIO, none);
}

/* --- a write that fails ------------------------------------------------------------ */

#define BIG_LEN (2u * 1024 * 1024)

/* Caps the size files may be written to at 1 MiB, so that the next big write
 * (into the journal, whose records so far take a few bytes) fails in the
 * middle (EFBIG: what a full disk looks like, without needing one). */
static int cap_file_size(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_FSIZE, &rl))
		return -1;
	rl.rlim_cur = 1u << 20;
	signal(SIGXFSZ, SIG_IGN);
	return setrlimit(RLIMIT_FSIZE, &rl);
}

static int failing_write_child(const char *path)
{
	struct opx_rocks *r;
	char err[512];
	if (opx_rocks_open(&r, path, CLUSTER, err, sizeof(err)))
		return 10;
	struct opx_storage st = opx_rocks_storage(r);
	if (cap_file_size())
		return 11;
	uint8_t *big = calloc(1, BIG_LEN);
	if (!big)
		return 12;
	struct opx_entry e = {.data = big, .len = BIG_LEN};
	struct opx_storage_op ops[2] = {{.type = OPX_OP_APPEND_ENTRIES},
					{.type = OPX_OP_SET_DECIDED_IDX}};
	ops[0].u.append.entries = &e;
	ops[0].u.append.n = 1;
	ops[1].u.idx = 2;
	int rc = st.ops->write_atomically(st.impl, ops, 2);
	free(big);
	if (rc != -EIO && rc != -ENOSPC)
		return 13;
	printf("# failed write: %d %s\n", rc, opx_rocks_errmsg(r));
	fflush(stdout);
	/* The in-memory end did not move either. */
	struct opx_storage_state s;
	if (st.ops->load(st.impl, &s) || s.log_end != 1)
		return 14;
	opx_rocks_close(&r);
	return 0;
}

static void test_storage_rocksdb_failed_write_changes_nothing(void **state)
{
	TEST_SKIP_FORK_UNDER_TSAN();
	struct fixture *f = *state;
	open_store(f);
	append_tagged(f, "a", 1);
	set_idx(f, OPX_OP_SET_DECIDED_IDX, 1);
	opx_rocks_close(&f->r);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(failing_write_child(f->path));
	test_expect_child_ok(pid);
	open_store(f);
	struct opx_storage_state s = load(f);
	assert_int_equal(s.log_end, 1);
	assert_int_equal(s.decided_idx, 1);
	const char *want[] = {"a0"};
	expect_entries(f, 0, 1, want);
	append_tagged(f, "b", 1);
	assert_int_equal(load(f).log_end, 2);
}

/* --- the journal (log_journal.h) ------------------------------------------- */

#define MIB (1u << 20)

/* Entry i of the journal test: about a MiB (the last, the 70th, larger than
 * the journal: the largest entry there is), each byte derived from i and its
 * offset. */
#define JOURNAL_TEST_ENTRIES 71
static uint32_t journal_entry_len(uint32_t i)
{
	return i == 70 ? OPX_MAX_ENTRY_LEN : i % 2 ? MIB : MIB - i;
}

static uint8_t journal_entry_byte(uint32_t i, uint32_t off)
{
	return (uint8_t)(i * 31 + off / 4096);
}

/* Appends the test's entries, each synced in a batch of its own that also
 * sets the decided index past it, and exits without closing the store: as a
 * crash would (kill -9), minus the moment. The memory budget is large enough
 * that RocksDB flushes no memtable of its own accord: what the journal drops
 * must have been flushed by it. Run in a
 * process of its own (exec'd, not only forked: a forked child has none of
 * RocksDB's background threads, and the flushes the journal waits for would
 * never come). */
static int journal_child(const char *path)
{
	struct opx_rocks *r;
	char err[512];
	rocks_memory_set_budget((size_t)4 << 30);
	if (opx_rocks_open(&r, path, CLUSTER, err, sizeof(err)))
		return 10;
	struct opx_storage st = opx_rocks_storage(r);
	uint8_t *buf = malloc(journal_entry_len(70));
	if (!buf)
		return 11;
	for (uint32_t i = 0; i < JOURNAL_TEST_ENTRIES; i++) {
		struct opx_entry e = {.data = buf, .len = journal_entry_len(i)};
		for (uint32_t off = 0; off < e.len; off++)
			buf[off] = journal_entry_byte(i, off);
		struct opx_storage_op ops[2] = {{.type = OPX_OP_APPEND_ENTRIES},
						{.type = OPX_OP_SET_DECIDED_IDX}};
		ops[0].u.append.entries = &e;
		ops[0].u.append.n = 1;
		ops[1].u.idx = i + 1;
		int rc = st.ops->write_atomically(st.impl, ops, 2);
		if (rc) {
			printf("# entry %u: %d %s\n", i, rc, opx_rocks_errmsg(r));
			return 12;
		}
	}
	_exit(0);
}

/* More than the journal holds is written (so its batches are flushed and it
 * starts again), then a batch larger than it (through RocksDB's own log, once
 * the journal's batches are flushed: replayed after it, they would put the
 * decided index back), then the process dies without closing: all of it
 * comes back, and the last decided index. */
static void test_storage_rocksdb_journal_full_and_too_big(void **state)
{
	TEST_SKIP_FORK_UNDER_TSAN();
	struct fixture *f = *state;
	const uint32_t n = JOURNAL_TEST_ENTRIES;
	char *argv[] = {"test_storage_rocksdb", "--journal-child", f->path, NULL};
	test_expect_child_ok(test_exec_self(argv));
	open_store(f);
	struct opx_storage_state s = load(f);
	assert_int_equal(s.log_end, n);
	assert_int_equal(s.decided_idx, n);
	for (uint32_t i = 0; i < n; i++) {
		struct opx_entry_list l = {0};
		assert_int_equal(f->st.ops->get_entries(f->st.impl, i, i + 1, &l), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(l.entries[0].len, journal_entry_len(i));
		for (uint32_t off = 0; off < l.entries[0].len; off += 4096)
			if (l.entries[0].data[off] != journal_entry_byte(i, off))
				fail_msg("entry %u differs at %u", i, off);
		opx_entry_list_clear(&l);
	}
}

/* --- crash test ------------------------------------------------------------- */

static uint64_t seed_from_env(void)
{
	const char *s = getenv("OMNIFS_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	printf("# OMNIFS_SEED=%" PRIu64 "\n", seed);
	fflush(stdout);
	return seed;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The content of entry i: deterministic, of varying length. */
static uint32_t crash_entry(uint64_t i, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "entry-%" PRIu64 "-", i);
	uint32_t len = (uint32_t)n + (uint32_t)(i % 97);
	for (uint32_t k = (uint32_t)n; k < len && k < cap; k++)
		buf[k] = (char)('a' + (i + k) % 26);
	return len;
}

/* Child: writes batches i = start, start+1, ...: entry i with decided = i + 1,
 * and every 16th batch also trims to i - 8 with the compacted index. Reports
 * each acknowledged batch (i + 1) through fd. Never returns. */
static void crash_child(const char *path, int fd)
{
	struct opx_rocks *r;
	char err[512];
	if (opx_rocks_open(&r, path, CLUSTER, err, sizeof(err)))
		_exit(2);
	struct opx_storage st = opx_rocks_storage(r);
	struct opx_storage_state s;
	if (st.ops->load(st.impl, &s))
		_exit(3);
	for (uint64_t i = s.log_end;; i++) {
		char buf[256];
		struct opx_entry e = {.data = (const uint8_t *)buf};
		e.len = crash_entry(i, buf, sizeof(buf));
		struct opx_storage_op ops[4] = {
			{.type = OPX_OP_APPEND_ENTRIES},
			{.type = OPX_OP_SET_DECIDED_IDX},
			{.type = OPX_OP_TRIM},
			{.type = OPX_OP_SET_COMPACTED_IDX},
		};
		ops[0].u.append.entries = &e;
		ops[0].u.append.n = 1;
		ops[1].u.idx = i + 1;
		ops[2].u.idx = ops[3].u.idx = i - 8;
		size_t n = (i % 16 == 15) ? 4 : 2;
		if (st.ops->write_atomically(st.impl, ops, n))
			_exit(4);
		uint64_t acked = i + 1;
		if (write(fd, &acked, sizeof(acked)) != sizeof(acked))
			_exit(5);
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs a child until it has acknowledged `target` more batches (or the
 * deadline passes), SIGKILLs it and returns the highest acknowledged count. */
static uint64_t crash_round(const char *path, uint64_t target)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(path, p[1]);
	}
	close(p[1]);
	uint64_t acked = 0, got = 0, v;
	uint64_t deadline = now_ms() + 60000;
	while (got < target && now_ms() < deadline) {
		ssize_t n = read(p[0], &v, sizeof(v));
		if (n != sizeof(v))
			break; /* the child died: waitpid below says why */
		acked = v;
		got++;
	}
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* Acknowledgements written before the kill still count. */
	while (read(p[0], &v, sizeof(v)) == sizeof(v))
		acked = v;
	close(p[0]);
	if (!WIFSIGNALED(status))
		fail_msg("crash child exited with status %d", WEXITSTATUS(status));
	assert_true(got > 0);
	return acked;
}

static void test_storage_rocksdb_crash_keeps_acknowledged_writes(void **state)
{
	TEST_SKIP_FORK_UNDER_TSAN();
	struct fixture *f = *state;
	uint64_t x = seed_from_env() | 1;
	uint64_t acked_total = 0;

	for (int round = 0; round < 3; round++) {
		uint64_t target = 10 + next_rand(&x) % 60;
		uint64_t acked = crash_round(f->path, target);
		assert_true(acked >= acked_total);
		acked_total = acked;

		open_store(f);
		struct opx_storage_state s = load(f);
		printf("# round %d: killed after %" PRIu64
		       " acknowledged, recovered log_end %" PRIu64 "\n",
		       round, acked, s.log_end);
		/* Every acknowledged batch, at most one more (it may have
		 * reached the disk before the kill), and each batch whole. */
		assert_true(s.log_end >= acked);
		assert_true(s.log_end <= acked + 1);
		assert_int_equal(s.decided_idx, s.log_end);
		uint64_t last = s.log_end - 1;
		/* The last batch that trimmed: the last i <= last with i % 16 == 15. */
		uint64_t last_trim = last >= 15 ? last - ((last + 1) % 16) : 0;
		uint64_t want_compacted = last >= 15 ? last_trim - 8 : 0;
		assert_int_equal(s.compacted_idx, want_compacted);
		if (want_compacted)
			expect_entries(f, want_compacted - 1, s.log_end, NULL);
		struct opx_entry_list l = {0};
		assert_int_equal(f->st.ops->get_entries(f->st.impl, want_compacted, s.log_end, &l),
				 0);
		assert_int_equal(l.n, s.log_end - want_compacted);
		for (uint32_t k = 0; k < l.n; k++) {
			char buf[256];
			uint32_t len = crash_entry(want_compacted + k, buf, sizeof(buf));
			assert_int_equal(l.entries[k].len, len);
			assert_memory_equal(l.entries[k].data, buf, len);
		}
		opx_entry_list_clear(&l);
		opx_rocks_close(&f->r);
		acked_total = s.log_end;
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--journal-child") == 0)
		return journal_child(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_fresh_store_is_empty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_append_and_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_missing_entry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_append_on_prefix_truncates,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_unsynced_write_and_sync, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_scalars, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_stopsign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_reset_for_next_configuration,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_refuses_other_cluster, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_refuses_other_format, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_upgrades_format_1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_refuses_garbage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_refuses_corrupt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_failed_write_changes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_rocksdb_journal_full_and_too_big,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_storage_rocksdb_crash_keeps_acknowledged_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
