/*
 * Generates a CURVE keypair for one node:
 *
 *   omnifs-keygen [-d DIR] [-f] NAME
 *   omnifs-keygen --help | --version
 *
 * writes DIR/NAME.key (public and secret key, mode 0600; what
 * [security] secret_key_file names) and DIR/NAME.pub (the public key alone,
 * mode 0644, to copy into the other nodes' [peer_keys]), then prints the
 * public key. DIR defaults to the current directory. An existing key is never
 * replaced unless -f is given. It does not touch config files.
 *
 * Exit status: 0 written, 1 failed (nothing replaced), 64 bad usage.
 */
#include "keygen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "keyfile.h"

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-d DIR] [-f] NAME\n"
		"       %s --help | --version\n"
		"writes DIR/NAME.key (keypair, mode 0600) and DIR/NAME.pub (public key),\n"
		"then prints the public key\n"
		"\n"
		"  -d, --dir DIR   where to write (default: .)\n"
		"  -f, --force     replace existing files\n"
		"  -h, --help      print this help and exit\n"
		"  -V, --version   print the version and exit\n"
		"\n"
		"Exit status: 0 written, 1 failed, 64 bad usage.\n",
		prog, prog);
}

static bool name_ok(const char *name)
{
	if (!name[0] || strlen(name) > 64)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
			return false;
	return name[0] != '.';
}

static int write_pub(const char *path, const char *pub, bool force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
	if (fd < 0)
		return -errno;
	char line[TP_KEY_Z85_LEN + 2];
	int n = snprintf(line, sizeof(line), "%s\n", pub);
	int rc = write(fd, line, (size_t)n) == n ? 0 : -EIO;
	if (close(fd) != 0 && !rc)
		rc = -errno;
	return rc;
}

int keygen_main(int argc, char **argv)
{
	/* Named as called: omnifs-keygen, or omnifsctl's keygen command. */
	const char *prog = argc > 0 && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1
			   : argc > 0			     ? argv[0]
							     : "omnifs-keygen";
	if (strcmp(prog, "keygen") == 0)
		prog = "omnifsctl keygen";
	const char *dir = ".";
	bool force = false;
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:fhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			usage(stdout, prog);
			return 0;
		case 'V':
			printf("%s %s\n", prog, OMNIFS_VERSION);
			return 0;
		default:
			usage(stderr, prog);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr, prog);
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (!name_ok(name)) {
		fprintf(stderr, "%s: NAME may hold letters, digits, '-', '_' and '.' (not first)\n",
			prog);
		return CLI_EXIT_USAGE;
	}
	char key_path[4096], pub_path[4096];
	if (snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name) >= (int)sizeof(key_path) ||
	    snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, name) >= (int)sizeof(pub_path)) {
		fprintf(stderr, "%s: path too long\n", prog);
		return 1;
	}
	char pub[TP_KEY_Z85_LEN + 1], sec[TP_KEY_Z85_LEN + 1], err[512];
	if (tp_key_generate(pub, sec) != 0) {
		fprintf(stderr,
			"%s: this libzmq cannot make CURVE keys (built without libsodium?)\n",
			prog);
		return 1;
	}
	int rc = tp_keyfile_write(key_path, name, pub, sec, force, err, sizeof(err));
	memset(sec, 0, sizeof(sec));
	if (rc) {
		fprintf(stderr, "%s: %s%s\n", prog, err,
			rc == -EEXIST ? " (use -f to replace)" : "");
		return 1;
	}
	rc = write_pub(pub_path, pub, force);
	if (rc) {
		fprintf(stderr, "%s: %s: %s\n", prog, pub_path, strerror(-rc));
		return 1;
	}
	printf("%s\n", pub);
	fprintf(stderr,
		"wrote %s (secret, mode 0600) and %s\n"
		"this node: [security] secret_key_file = %s\n"
		"other nodes: [peer_keys] <id of %s> = %s\n",
		key_path, pub_path, key_path, name, pub);
	return 0;
}
