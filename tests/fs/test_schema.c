/*
 * The filesystem's key layout and value encodings: keys sort as the numbers
 * and names they hold (so one prefix is one directory or one file's blocks),
 * values round-trip, malformed values are rejected, inode numbers carry the
 * node id and never collide across nodes.
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "ofs_int.h"
#include "schema.h"

static int keycmp(const struct ofs_key *a, const struct ofs_key *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->b, b->b, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static bool has_prefix(const struct ofs_key *k, const struct ofs_key *p)
{
	return k->len >= p->len && memcmp(k->b, p->b, p->len) == 0;
}

static void test_schema_blocks_sort_numerically(void **state)
{
	struct ofs_key a, b, c, p, other;
	ofs_key_block(&a, 7, 1);
	ofs_key_block(&b, 7, 256); /* would sort before 1 little-endian */
	ofs_key_block(&c, 7, UINT64_C(1) << 40);
	assert_true(keycmp(&a, &b) < 0);
	assert_true(keycmp(&b, &c) < 0);
	ofs_key_block_prefix(&p, 7);
	assert_true(has_prefix(&a, &p) && has_prefix(&c, &p));
	ofs_key_block(&other, 8, 0);
	assert_false(has_prefix(&other, &p));
	ofs_key_block(&other, 7 + 256, 0);
	assert_false(has_prefix(&other, &p));
	uint64_t ino, blk;
	assert_int_equal(ofs_key_parse_block(c.b, c.len, &ino, &blk), 0);
	assert_int_equal(ino, 7);
	assert_int_equal(blk, UINT64_C(1) << 40);
}

static void test_schema_dirents_group_by_parent(void **state)
{
	struct ofs_key a, b, p, q;
	ofs_key_dirent(&a, 5, "zeta", 4);
	ofs_key_dirent(&b, 6, "alpha", 5);
	assert_true(keycmp(&a, &b) < 0); /* parent first, then name */
	ofs_key_dir_prefix(&p, 5);
	assert_true(has_prefix(&a, &p));
	assert_false(has_prefix(&b, &p));
	/* no entry of dir 5 falls under another dir's prefix */
	ofs_key_dir_prefix(&q, 5 << 8);
	assert_false(has_prefix(&a, &q));
	uint64_t parent;
	const char *name;
	size_t len;
	char longname[OFS_NAME_MAX];
	memset(longname, 'x', sizeof(longname));
	ofs_key_dirent(&a, 9, longname, sizeof(longname));
	assert_int_equal(ofs_key_parse_dirent(a.b, a.len, &parent, &name, &len), 0);
	assert_int_equal(parent, 9);
	assert_int_equal(len, OFS_NAME_MAX);
	assert_memory_equal(name, longname, len);
	assert_int_equal(ofs_key_kind(a.b, a.len), OFS_K_DIRENT);
	assert_int_equal(ofs_key_parse_block(a.b, a.len, &parent, &parent), -EBADMSG);
}

static void test_schema_kinds_do_not_overlap(void **state)
{
	struct ofs_key k[7];
	ofs_key_inode(&k[0], 3);
	ofs_key_dirent(&k[1], 3, "a", 1);
	ofs_key_block(&k[2], 3, 0);
	ofs_key_symlink(&k[3], 3);
	ofs_key_xattr(&k[4], 3, "user.a", 6);
	ofs_key_node(&k[5], 3, 0);
	ofs_key_orphan(&k[6], 3);
	for (int i = 0; i < 7; i++) {
		assert_int_not_equal(ofs_key_kind(k[i].b, k[i].len), 0);
		for (int j = 0; j < 7; j++)
			if (i != j)
				assert_int_not_equal(keycmp(&k[i], &k[j]), 0);
	}
	assert_int_equal(ofs_key_kind("Fz", 2), 0);
	assert_int_equal(ofs_key_kind("kv", 2), 0);
	assert_int_equal(ofs_key_kind("F", 1), 0);
}

static void test_schema_attr_roundtrip(void **state)
{
	struct ofs_attr a, b;
	memset(&a, 0, sizeof(a)); /* padding too: compared with memcmp */
	memset(&b, 0, sizeof(b));
	a.ino = 42;
	a.mode = S_IFREG | 04755;
	a.uid = 1000;
	a.gid = 4294967294u;
	a.nlink = 3;
	a.size = UINT64_C(1) << 30;
	a.atime_ns = -1234567890123; /* before 1970 */
	a.mtime_ns = INT64_C(1700000000123456789);
	a.ctime_ns = 5;
	a.change = 99;
	a.rdev = 0x0801;
	uint8_t buf[OFS_ATTR_LEN];
	ofs_attr_encode(&a, buf);
	assert_int_equal(ofs_attr_decode(&b, 42, buf, sizeof(buf)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(ofs_attr_decode(&b, 42, buf, sizeof(buf) - 1), -EBADMSG);
	buf[0] = 77; /* unknown format */
	assert_int_equal(ofs_attr_decode(&b, 42, buf, sizeof(buf)), -EBADMSG);
}

static void test_schema_small_values_roundtrip(void **state)
{
	uint8_t d[OFS_DIRENT_LEN];
	uint64_t child;
	uint8_t dt;
	ofs_dirent_encode(UINT64_C(0x0002000000000017), DT_LNK, d);
	assert_int_equal(ofs_dirent_decode(d, sizeof(d), &child, &dt), 0);
	assert_int_equal(child, UINT64_C(0x0002000000000017));
	assert_int_equal(dt, DT_LNK);
	assert_int_equal(ofs_dirent_decode(d, 8, &child, &dt), -EBADMSG);
	memset(d, 0, sizeof(d));
	assert_int_equal(ofs_dirent_decode(d, sizeof(d), &child, &dt), -EBADMSG); /* ino 0 */

	struct ofs_noderec n = {12345, -77, -3}, m;
	uint8_t nb[OFS_NODEREC_LEN];
	ofs_noderec_encode(&n, nb);
	assert_int_equal(ofs_noderec_decode(&m, nb, sizeof(nb)), 0);
	assert_int_equal(m.next, 12345);
	assert_int_equal(m.bytes, -77);
	assert_int_equal(m.inodes, -3);
	assert_int_equal(ofs_noderec_decode(&m, nb, 3), -EBADMSG);
}

static void test_schema_names(void **state)
{
	assert_true(ofs_name_is_valid("a", 1));
	assert_true(ofs_name_is_valid("...", 3));
	assert_true(ofs_name_is_valid("héllo wörld", strlen("héllo wörld")));
	assert_false(ofs_name_is_valid("", 0));
	assert_false(ofs_name_is_valid(".", 1));
	assert_false(ofs_name_is_valid("..", 2));
	assert_false(ofs_name_is_valid("a/b", 3));
	assert_int_equal(ofs_mode_dtype(S_IFDIR | 0755), DT_DIR);
	assert_int_equal(ofs_mode_dtype(S_IFIFO), DT_FIFO);
}

static void test_schema_inode_numbers(void **state)
{
	/* node id in the high bits: two nodes never make the same number */
	uint64_t a = ofs_ino_make(1, 1), b = ofs_ino_make(2, 1);
	assert_int_not_equal(a, b);
	assert_int_equal(ofs_ino_node(a), 1);
	assert_int_equal(ofs_ino_node(b), 2);
	assert_int_equal(ofs_ino_node(ofs_ino_make(65535, OFS_INO_COUNTER_MAX)), 65535);
	/* the root and the virtual files (node 0) are out of every node's range */
	assert_true(a > OFS_VINO_MEMBERS);
	assert_int_equal(ofs_ino_make(0, 1), 0);
	assert_int_equal(ofs_ino_make(1, 0), 0);
	assert_int_equal(ofs_ino_make(1, OFS_INO_COUNTER_MAX + 1), 0);
	assert_int_equal(ofs_ino_make(65536, 1), 0);
	assert_true(ofs_ino_is_virtual(OFS_VINO_DIR));
	assert_false(ofs_ino_is_virtual(OFS_ROOT_INO));
	assert_false(ofs_ino_is_virtual(a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_blocks_sort_numerically),
		cmocka_unit_test(test_schema_dirents_group_by_parent),
		cmocka_unit_test(test_schema_kinds_do_not_overlap),
		cmocka_unit_test(test_schema_attr_roundtrip),
		cmocka_unit_test(test_schema_small_values_roundtrip),
		cmocka_unit_test(test_schema_names),
		cmocka_unit_test(test_schema_inode_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
