/*
 * Finding a mount's device number in /proc/self/mountinfo text: the mount
 * point field with its octal escapes, the last of stacked mounts, a path
 * that is only a prefix of another, and no match.
 */
#include "test.h"

#include <errno.h>
#include <string.h>

#include "readahead.h"

static const char *INFO = "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
			  "40 22 0:44 / /mnt/a rw,nosuid,nodev - fuse.omnifs omnifs rw,user_id=0\n"
			  "41 22 0:45 / /mnt/ab rw - fuse.omnifs omnifs rw\n"
			  "42 22 0:46 / /mnt/with\\040space rw - fuse.omnifs omnifs rw\n"
			  "43 40 0:47 / /mnt/a rw - fuse.omnifs omnifs rw\n"
			  "44 22 0:48 / /mnt/back\\134slash rw - fuse.omnifs omnifs rw";

static void test_readahead_finds_the_mount(void **state)
{
	(void)state;
	char dev[32];
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/ab", dev, sizeof(dev)), 0);
	assert_string_equal(dev, "0:45");
	/* Stacked: the last mount on the path is the one seen there. */
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/a", dev, sizeof(dev)), 0);
	assert_string_equal(dev, "0:47");
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/with space", dev, sizeof(dev)), 0);
	assert_string_equal(dev, "0:46");
	/* The last line has no newline. */
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/back\\slash", dev, sizeof(dev)), 0);
	assert_string_equal(dev, "0:48");
	assert_int_equal(ofs_mountinfo_dev(INFO, "/", dev, sizeof(dev)), 0);
	assert_string_equal(dev, "253:1");
}

static void test_readahead_no_such_mount(void **state)
{
	(void)state;
	char dev[32] = "untouched";
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt", dev, sizeof(dev)), -ENOENT);
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/a/", dev, sizeof(dev)), -ENOENT);
	assert_int_equal(ofs_mountinfo_dev(INFO, "/mnt/with", dev, sizeof(dev)), -ENOENT);
	assert_int_equal(ofs_mountinfo_dev("", "/", dev, sizeof(dev)), -ENOENT);
	assert_int_equal(ofs_mountinfo_dev("1 2\n\n", "/", dev, sizeof(dev)), -ENOENT);
	assert_string_equal(dev, "untouched");
	char small[4];
	assert_int_equal(ofs_mountinfo_dev(INFO, "/", small, sizeof(small)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readahead_finds_the_mount),
		cmocka_unit_test(test_readahead_no_such_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
