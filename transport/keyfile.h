/*
 * CURVE key files: writing a node's keypair and loading it back safely.
 *
 * A key file is text, mode 0600:
 *
 *   # omnifs CURVE keypair of "node1". Secret: keep it mode 0600.
 *   public-key = <40 Z85 characters>
 *   secret-key = <40 Z85 characters>
 *
 * Loading refuses a file that group or others can read or write, and a
 * public key that does not belong to the secret key. This module reads and
 * writes files only; it opens no socket and decides nothing about peers.
 */
#ifndef OMNIFS_TP_KEYFILE_H
#define OMNIFS_TP_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define TP_KEY_LEN     32 /* a CURVE key, binary */
#define TP_KEY_Z85_LEN 40 /* the same in Z85, without the NUL */

/*
 * Generates a keypair with zmq_curve_keypair. Z85 text goes into pub_z85 and
 * sec_z85 (TP_KEY_Z85_LEN + 1 bytes each). 0, or -ENOTSUP when libzmq was
 * built without CURVE.
 */
int tp_key_generate(char *pub_z85, char *sec_z85);

/*
 * Writes the keypair file at path with mode 0600; name goes into the comment.
 * Refuses to overwrite an existing file (-EEXIST) unless overwrite is set.
 * Other errors: -errno of the failing call. err gets one line on failure.
 */
int tp_keyfile_write(const char *path, const char *name, const char *pub_z85, const char *sec_z85,
		     int overwrite, char *err, size_t err_len);

/*
 * Loads the keypair at path into pub and sec (binary, TP_KEY_LEN bytes each).
 * Errors, each with one line in err naming the file: -EPERM if group or
 * others have any access (mode must be 0600 or 0400), -EINVAL for bad
 * content or a public key that does not match, -errno if it cannot be read.
 */
int tp_keyfile_load(const char *path, uint8_t *pub, uint8_t *sec, char *err, size_t err_len);

/* Decodes a 40-character Z85 key into 32 bytes. 0 or -EINVAL. */
int tp_key_from_z85(const char *z85, uint8_t *key);

/* Encodes a 32-byte key as Z85 into out (TP_KEY_Z85_LEN + 1 bytes). */
void tp_key_to_z85(const uint8_t *key, char *out);

#endif /* OMNIFS_TP_KEYFILE_H */
