/*
 * CURVE key files (see keyfile.h). The secret never leaves the buffers the
 * caller gives; temporary copies are wiped before returning. A key file is
 * read with libinih, the INI parser the config file uses too (a system
 * library: the transport stays independent of fs/).
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <zmq.h>

int tp_key_generate(char *pub_z85, char *sec_z85)
{
	if (zmq_curve_keypair(pub_z85, sec_z85) != 0)
		return -ENOTSUP;
	return 0;
}

int tp_key_from_z85(const char *z85, uint8_t *key)
{
	if (!z85 || strlen(z85) != TP_KEY_Z85_LEN)
		return -EINVAL;
	if (!zmq_z85_decode(key, z85))
		return -EINVAL;
	return 0;
}

void tp_key_to_z85(const uint8_t *key, char *out)
{
	zmq_z85_encode(out, key, TP_KEY_LEN);
}

int tp_keyfile_write(const char *path, const char *name, const char *pub_z85, const char *sec_z85,
		     int overwrite, char *err, size_t err_len)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL);
	int fd = open(path, flags, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	/* An existing file keeps its mode through O_TRUNC: force 0600. */
	if (fchmod(fd, 0600) != 0) {
		int e = errno;
		snprintf(err, err_len, "%s: chmod 0600: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	char text[256];
	int n = snprintf(text, sizeof(text),
			 "# omnifs CURVE keypair of \"%s\". Secret: keep it mode 0600.\n"
			 "public-key = %s\nsecret-key = %s\n",
			 name, pub_z85, sec_z85);
	int rc = 0;
	if (n < 0 || (size_t)n >= sizeof(text)) {
		snprintf(err, err_len, "%s: name too long", path);
		rc = -EINVAL;
	} else if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		snprintf(err, err_len, "%s: write: %s", path, strerror(-rc));
	}
	memset(text, 0, sizeof(text));
	if (close(fd) != 0 && !rc) {
		rc = -errno;
		snprintf(err, err_len, "%s: close: %s", path, strerror(-rc));
	}
	return rc;
}

/* The two values a key file holds, filled by the INI parser's callback. */
struct key_lines {
	char pub[64], sec[64];
	bool have_pub, have_sec;
};

/* libinih's callback: keeps public-key and secret-key (outside any section),
 * ignores other names; a value too long for a key stops the parse. */
static int key_line(void *ctx, const char *section, const char *name, const char *value)
{
	struct key_lines *k = ctx;
	char *out = NULL;
	if (section[0] == '\0' && strcmp(name, "public-key") == 0) {
		out = k->pub;
		k->have_pub = true;
	} else if (section[0] == '\0' && strcmp(name, "secret-key") == 0) {
		out = k->sec;
		k->have_sec = true;
	} else {
		return 1;
	}
	size_t len = strlen(value);
	if (len >= sizeof(k->pub))
		return 0;
	memcpy(out, value, len + 1);
	return 1;
}

int tp_keyfile_load(const char *path, uint8_t *pub, uint8_t *sec, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, err_len, "secret key file %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(err, err_len, "secret key file %s: stat: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "secret key file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, err_len,
			 "secret key file %s has mode %04o: group or others can access it; "
			 "run chmod 600 %s (and consider the key leaked)",
			 path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -EPERM;
	}
	char text[1024];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, err_len, "secret key file %s: read: %s", path, strerror(e));
		return -e;
	}
	text[n] = '\0';
	struct key_lines k = {0};
	char *pz = k.pub, *sz = k.sec;
	int rc = -EINVAL;
	uint8_t derived[TP_KEY_LEN];
	int bad_line = ini_parse_string(text, key_line, &k);
	if (bad_line != 0) {
		snprintf(err, err_len,
			 "secret key file %s: line %d: expected 'public-key = ...' or "
			 "'secret-key = ...' (omnifs-keygen writes them)",
			 path, bad_line);
	} else if (!k.have_pub || !k.have_sec) {
		snprintf(err, err_len,
			 "secret key file %s: expected lines 'public-key = ...' and "
			 "'secret-key = ...' (omnifs-keygen writes them)",
			 path);
	} else if (tp_key_from_z85(pz, pub) || tp_key_from_z85(sz, sec)) {
		snprintf(err, err_len, "secret key file %s: a key is not 40 characters of Z85",
			 path);
	} else if (zmq_curve_public((char *)pz, sz) != 0 || tp_key_from_z85(pz, derived) ||
		   memcmp(derived, pub, TP_KEY_LEN) != 0) {
		snprintf(err, err_len,
			 "secret key file %s: the public key does not belong to the secret key",
			 path);
	} else {
		rc = 0;
	}
	memset(text, 0, sizeof(text));
	memset(&k, 0, sizeof(k));
	if (rc)
		memset(sec, 0, TP_KEY_LEN);
	return rc;
}
