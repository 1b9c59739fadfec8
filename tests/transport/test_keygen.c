/*
 * omnifs-keygen, run as a program: it writes a keypair the transport loads,
 * a public key file matching what it prints, mode 0600 on the secret,
 * never replaces an existing key unless told to, and exits 64 (EX_USAGE) for
 * bad usage.
 */
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyfile.h"

struct ctx {
	char dir[64];
	char key[128];
	char pub[128];
};

/* Runs omnifs-keygen with args; stdout (up to cap) into out. Returns the exit status. */
static int run(const char *const *args, char *out, size_t cap)
{
	const char *bin = getenv("OMNIFS_KEYGEN");
	assert_non_null(bin);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[8];
		int n = 0;
		argv[n++] = (char *)bin;
		for (; args[n - 1] && n < 7; n++)
			argv[n] = (char *)args[n - 1];
		argv[n] = NULL;
		dup2(fds[1], 1);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		execv(bin, argv);
		_exit(127);
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t r;
	while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "/tmp/omnifs-keygen-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->key, sizeof(c->key), "%s/node7.key", c->dir);
	snprintf(c->pub, sizeof(c->pub), "%s/node7.pub", c->dir);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	unlink(c->key);
	unlink(c->pub);
	rmdir(c->dir);
	free(c);
	return 0;
}

static void read_file(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void test_keygen_writes_loadable_keypair(void **state)
{
	struct ctx *c = *state;
	char out[256], pubfile[256], err[256];
	const char *args[] = {"-d", c->dir, "node7", NULL};
	assert_int_equal(run(args, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), TP_KEY_Z85_LEN + 1);
	read_file(c->pub, pubfile, sizeof(pubfile));
	assert_string_equal(out, pubfile);

	struct stat st;
	assert_int_equal(stat(c->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	uint8_t pub[TP_KEY_LEN], sec[TP_KEY_LEN], want[TP_KEY_LEN];
	assert_int_equal(tp_keyfile_load(c->key, pub, sec, err, sizeof(err)), 0);
	out[TP_KEY_Z85_LEN] = '\0';
	assert_int_equal(tp_key_from_z85(out, want), 0);
	assert_memory_equal(pub, want, TP_KEY_LEN);
}

static void test_keygen_keeps_existing_key_unless_forced(void **state)
{
	struct ctx *c = *state;
	char out[256], again[256], before[512], after[512];
	const char *args[] = {"-d", c->dir, "node7", NULL};
	assert_int_equal(run(args, out, sizeof(out)), 0);
	read_file(c->key, before, sizeof(before));
	assert_int_equal(run(args, again, sizeof(again)), 1);
	read_file(c->key, after, sizeof(after));
	assert_string_equal(before, after);

	const char *force[] = {"-f", "-d", c->dir, "node7", NULL};
	assert_int_equal(run(force, again, sizeof(again)), 0);
	assert_string_not_equal(out, again);
	read_file(c->key, after, sizeof(after));
	assert_string_not_equal(before, after);
}

static void test_keygen_rejects_bad_usage(void **state)
{
	struct ctx *c = *state;
	char out[256];
	const char *none[] = {NULL};
	assert_int_equal(run(none, out, sizeof(out)), 64);
	const char *slash[] = {"-d", c->dir, "../evil", NULL};
	assert_int_equal(run(slash, out, sizeof(out)), 64);
	const char *unknown[] = {"--no-such-option", "n", NULL};
	assert_int_equal(run(unknown, out, sizeof(out)), 64);
	/* --help is no error: the usage on stdout, status 0. */
	const char *help[] = {"--help", NULL};
	assert_int_equal(run(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "usage: omnifs-keygen"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keygen_writes_loadable_keypair, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keygen_keeps_existing_key_unless_forced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_keygen_rejects_bad_usage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
