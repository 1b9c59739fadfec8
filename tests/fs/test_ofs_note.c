/*
 * The change notes the filesystem attaches to its commits, read back from
 * the KV's feed: each operation gives the one change a watcher expects
 * (kind and path, the new path of a rename), in order; a file written
 * through a handle is named even when this node never looked it up (a
 * second node, no name table); the paths of nested directories come from
 * the parent pointers; a rename over a name, a hard link, an exchange, a
 * symlink, chmod, xattrs and truncation each say what they did; and the
 * bookkeeping the reaper commits says nothing.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"
#include "local_backend.h"
#include "ofs_int.h"

struct fx {
	char dir[64];
	struct ofs_local_backend *lb;
	struct ofs_backend kv;
	struct ofs *n1, *n2;
	struct ofs_cred cr;
	uint64_t since; /* the feed is read from here */
};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static struct ofs *make_node(struct fx *f, uint64_t id)
{
	struct ofs_config c;
	ofs_config_defaults(&c, id);
	struct ofs *o = ofs_new(&c, &f->kv);
	assert_non_null(o);
	return o;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512];
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/ofsnote.XXXXXX", tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(ofs_local_backend_open(&f->lb, f->dir, 77, &f->kv, err, sizeof(err)), 0);
	f->n1 = make_node(f, 1);
	f->n2 = make_node(f, 2);
	/* Root: the root folder is 0755 root's, and the daemon checks rights. */
	f->cr.uid = 0;
	f->cr.gid = 0;
	f->since = kv_applied_idx(f->kv.kv);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ofs_destroy(&f->n1);
	ofs_destroy(&f->n2);
	ofs_local_backend_close(&f->lb);
	assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

/* The changes since the last call, as "kind path[ path2]" lines. */
static char *changes(struct fx *f)
{
	struct kv_buf b;
	uint64_t first, next;
	assert_int_equal(kv_feed_read(f->kv.kv, f->since, 1 << 20, &b, &first), 0);
	assert_int_equal(kv_feed_header(b.data, b.len, &first, &next), 0);
	size_t cap = 64 * KV_NOTE_PATH_MAX, len = 0, pos = KV_FEED_HDR_LEN;
	char *out = calloc(1, cap);
	struct kv_feed_rec r;
	uint64_t min = f->since;
	int rc;
	while ((rc = kv_feed_next(b.data, b.len, &pos, min, &r)) == 1) {
		assert_true(len + 2 * KV_NOTE_PATH_MAX + 32 < cap);
		len += (size_t)snprintf(out + len, cap - len, "%s %.*s%s%.*s\n",
					kv_note_kind_name(r.note.kind), (int)r.note.path_len,
					r.note.path, r.note.path2 ? " " : "", (int)r.note.path2_len,
					r.note.path2 ? r.note.path2 : "");
		min = r.idx + 1;
	}
	assert_int_equal(rc, 0);
	free(b.data);
	f->since = next;
	return out;
}

static void expect(struct fx *f, const char *want)
{
	char *got = changes(f);
	if (strcmp(got, want) != 0)
		fail_msg("changes:\n%s\nexpected:\n%s", got, want);
	free(got);
}

static uint64_t mkfile(struct ofs *o, struct fx *f, uint64_t parent, const char *name,
		       const char *content)
{
	struct ofs_attr a;
	struct ofs_file *h;
	assert_int_equal(ofs_op_create(o, parent, name, 0644, O_WRONLY, &f->cr, &a, &h), 0);
	if (content)
		assert_int_equal(ofs_op_write(o, h, content, strlen(content), 0),
				 (ssize_t)strlen(content));
	assert_int_equal(ofs_op_release(o, h), 0);
	return a.ino;
}

static uint64_t mkdir1(struct ofs *o, struct fx *f, uint64_t parent, const char *name)
{
	struct ofs_attr a;
	assert_int_equal(ofs_op_mknod(o, parent, name, S_IFDIR | 0755, 0, &f->cr, &a), 0);
	return a.ino;
}

static void test_ofs_note_namespace(void **state)
{
	struct fx *f = *state;
	uint64_t etc = mkdir1(f->n1, f, OFS_ROOT_INO, "etc");
	uint64_t nginx = mkdir1(f->n1, f, etc, "nginx");
	expect(f, "mkdir /etc\nmkdir /etc/nginx\n");
	mkfile(f->n1, f, nginx, "a.conf", NULL);
	expect(f, "create /etc/nginx/a.conf\n");
	mkfile(f->n1, f, nginx, "b.conf", "x"); /* created with its content: one change */
	expect(f, "create /etc/nginx/b.conf\n");
	/* An editor's save: write a temporary name, rename it over the file. */
	mkfile(f->n1, f, nginx, ".a.conf.swp", "new");
	assert_int_equal(ofs_op_rename(f->n1, nginx, ".a.conf.swp", nginx, "a.conf", 0, &f->cr), 0);
	expect(f, "create /etc/nginx/.a.conf.swp\n"
		  "rename /etc/nginx/.a.conf.swp /etc/nginx/a.conf\n");
	/* A directory moved: its children's paths follow its parent pointer. */
	uint64_t srv = mkdir1(f->n1, f, OFS_ROOT_INO, "srv");
	assert_int_equal(ofs_op_rename(f->n1, etc, "nginx", srv, "web", 0, &f->cr), 0);
	mkfile(f->n1, f, nginx, "c.conf", NULL);
	expect(f, "mkdir /srv\nrename /etc/nginx /srv/web\ncreate /srv/web/c.conf\n");
	assert_int_equal(
		ofs_op_rename(f->n1, nginx, "a.conf", nginx, "c.conf", RENAME_EXCHANGE, &f->cr), 0);
	expect(f, "rename /srv/web/a.conf /srv/web/c.conf\n");
	struct ofs_attr a;
	assert_int_equal(ofs_op_symlink(f->n1, srv, "link", "web/a.conf", &f->cr, &a), 0);
	uint64_t b_ino;
	assert_int_equal(ofs_op_lookup(f->n1, nginx, "b.conf", &a), 0);
	b_ino = a.ino;
	assert_int_equal(ofs_op_link(f->n1, b_ino, srv, "hard", &f->cr, &a), 0);
	expect(f, "create /srv/link\ncreate /srv/hard\n");
	assert_int_equal(ofs_op_unlink(f->n1, srv, "hard", &f->cr), 0);
	assert_int_equal(ofs_op_unlink(f->n1, nginx, "b.conf", &f->cr), 0);
	assert_int_equal(ofs_op_rmdir(f->n1, OFS_ROOT_INO, "etc", &f->cr), 0);
	expect(f, "delete /srv/hard\ndelete /srv/web/b.conf\nrmdir /etc\n");
}

static void test_ofs_note_attributes_and_content(void **state)
{
	struct fx *f = *state;
	uint64_t d = mkdir1(f->n1, f, OFS_ROOT_INO, "d");
	uint64_t x = mkfile(f->n1, f, d, "x", "hello");
	free(changes(f));
	struct ofs_setattr sa = {.mask = OFS_SET_MODE, .mode = 0600};
	struct ofs_attr a;
	assert_int_equal(ofs_op_setattr(f->n1, x, &sa, &f->cr, &a), 0);
	assert_int_equal(ofs_op_setattr(f->n1, d, &sa, &f->cr, &a), 0);
	assert_int_equal(ofs_op_setattr(f->n1, OFS_ROOT_INO, &sa, &f->cr, &a), 0);
	assert_int_equal(ofs_op_setxattr(f->n1, x, "user.k", "v", 1, 0, &f->cr), 0);
	sa.mask = OFS_SET_SIZE;
	sa.size = 1;
	assert_int_equal(ofs_op_setattr(f->n1, x, &sa, &f->cr, &a), 0);
	expect(f, "attrib /d/x\nattrib /d\nattrib /\nattrib /d/x\nmodify /d/x\n");
	/* Node 2 never saw the name: it finds it in the state. */
	struct ofs_file *h;
	assert_int_equal(ofs_op_open(f->n2, x, O_WRONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_write(f->n2, h, "abc", 3, 0), 3);
	assert_int_equal(ofs_op_release(f->n2, h), 0);
	expect(f, "modify /d/x\n");
	/* Written after its last name went: nobody can watch it, no change. */
	assert_int_equal(ofs_op_open(f->n1, x, O_WRONLY, &f->cr, &h), 0);
	assert_int_equal(ofs_op_unlink(f->n1, d, "x", &f->cr), 0);
	expect(f, "delete /d/x\n");
	assert_int_equal(ofs_op_write(f->n1, h, "zz", 2, 0), 2);
	assert_int_equal(ofs_op_release(f->n1, h), 0);
	/* The reaper frees it later: bookkeeping, no change either. */
	assert_true(ofs_reap(f->n1, INT64_MAX) >= 0);
	expect(f, "");
}

static void test_ofs_note_uid_and_time(void **state)
{
	struct fx *f = *state;
	ofs_note_set_caller(4242);
	mkdir1(f->n1, f, OFS_ROOT_INO, "u");
	ofs_note_set_caller(0);
	struct kv_buf b;
	uint64_t first, next;
	assert_int_equal(kv_feed_read(f->kv.kv, f->since, 1 << 20, &b, &first), 0);
	size_t pos = KV_FEED_HDR_LEN;
	struct kv_feed_rec r;
	assert_int_equal(kv_feed_next(b.data, b.len, &pos, f->since, &r), 1);
	assert_int_equal(r.note.uid, 4242);
	assert_true(r.note.time_ms > 1600000000000);
	assert_int_equal(kv_feed_header(b.data, b.len, &first, &next), 0);
	free(b.data);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_ofs_note_namespace),
		T(test_ofs_note_attributes_and_content),
		T(test_ofs_note_uid_and_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
