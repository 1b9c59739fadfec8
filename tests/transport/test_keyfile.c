/*
 * CURVE key files: a written keypair loads back; a file others can read is
 * refused with a message that says what to do; a public key that does not
 * belong to the secret, garbage, and an existing file are refused.
 */
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"

struct dir {
	char path[64];
	char file[96];
};

static int setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "/tmp/omnifs-keyfile-XXXXXX");
	if (!mkdtemp(d->path))
		return -1;
	snprintf(d->file, sizeof(d->file), "%s/node1.key", d->path);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;
	unlink(d->file);
	rmdir(d->path);
	free(d);
	return 0;
}

static void test_keyfile_write_then_load(void **state)
{
	struct dir *d = *state;
	char pub[TP_KEY_Z85_LEN + 1], sec[TP_KEY_Z85_LEN + 1], err[256] = "";
	assert_int_equal(tp_key_generate(pub, sec), 0);
	assert_int_equal(tp_keyfile_write(d->file, "node1", pub, sec, 0, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(d->file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	uint8_t p[TP_KEY_LEN], s[TP_KEY_LEN], want[TP_KEY_LEN];
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), 0);
	assert_int_equal(tp_key_from_z85(pub, want), 0);
	assert_memory_equal(p, want, TP_KEY_LEN);
	assert_int_equal(tp_key_from_z85(sec, want), 0);
	assert_memory_equal(s, want, TP_KEY_LEN);
	char z[TP_KEY_Z85_LEN + 1];
	tp_key_to_z85(p, z);
	assert_string_equal(z, pub);

	/* No silent overwrite of a key. */
	assert_int_equal(tp_keyfile_write(d->file, "node1", pub, sec, 0, err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, d->file));
}

static void test_keyfile_refuses_loose_mode(void **state)
{
	struct dir *d = *state;
	char pub[TP_KEY_Z85_LEN + 1], sec[TP_KEY_Z85_LEN + 1], err[256] = "";
	assert_int_equal(tp_key_generate(pub, sec), 0);
	assert_int_equal(tp_keyfile_write(d->file, "n", pub, sec, 0, err, sizeof(err)), 0);
	uint8_t p[TP_KEY_LEN], s[TP_KEY_LEN];
	mode_t bad[] = {0644, 0640, 0604, 0660, 0602};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(d->file, bad[i]), 0);
		err[0] = '\0';
		assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EPERM);
		assert_non_null(strstr(err, d->file));
		assert_non_null(strstr(err, "chmod 600"));
	}
	assert_int_equal(chmod(d->file, 0400), 0);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), 0);
	chmod(d->file, 0600);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

static void test_keyfile_refuses_bad_content(void **state)
{
	struct dir *d = *state;
	char pub[TP_KEY_Z85_LEN + 1], sec[TP_KEY_Z85_LEN + 1], pub2[TP_KEY_Z85_LEN + 1],
		sec2[TP_KEY_Z85_LEN + 1], text[256], err[256];
	uint8_t p[TP_KEY_LEN], s[TP_KEY_LEN];
	assert_int_equal(tp_key_generate(pub, sec), 0);
	assert_int_equal(tp_key_generate(pub2, sec2), 0);

	snprintf(text, sizeof(text), "public-key = %s\nsecret-key = %s\n", pub2, sec);
	write_text(d->file, text);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not belong"));

	write_text(d->file, "public-key = short\nsecret-key = short\n");
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EINVAL);

	write_text(d->file, "nothing here\n");
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1"));

	/* One key missing; a value far too long for a key. */
	snprintf(text, sizeof(text), "# c\npublic-key = %s\n", pub);
	write_text(d->file, text);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected lines"));
	snprintf(text, sizeof(text), "public-key = %s%s\nsecret-key = %s\n", pub, pub, sec);
	write_text(d->file, text);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1"));

	/* Spacing and CRLF line ends are tolerated. */
	snprintf(text, sizeof(text), "# c\r\npublic-key=%s\r\nsecret-key   =\t%s  \r\n", pub, sec);
	write_text(d->file, text);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), 0);

	unlink(d->file);
	assert_int_equal(tp_keyfile_load(d->file, p, s, err, sizeof(err)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keyfile_write_then_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_refuses_loose_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyfile_refuses_bad_content, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
