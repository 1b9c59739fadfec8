/*
 * omnifsctl kv get, put and del: the options, values from the command line,
 * a file or standard input (any bytes, up to CTL_KV_MAX_VALUE), and
 * `kv get --json`. kv list and kv watch are elsewhere (omnifsctl.c, watch.c).
 */
#ifndef OMNIFS_KV_CLI_H
#define OMNIFS_KV_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Exit status of a put or del whose --if-version or --if-absent did not
 * hold: nothing was written. */
#define KV_CLI_EXIT_MISMATCH 4

/*
 * Reads all of fd into *out (malloc'd, the caller frees it; NUL-terminated
 * past *len for convenience) and *len. Returns 0, -EFBIG if fd holds more
 * than max bytes (it stops reading at max + 1), -ENOMEM or the read's
 * negative errno.
 */
int kv_cli_read_value(int fd, size_t max, char **out, size_t *len);

/*
 * The JSON object `kv get --json` prints for key (borrowed) from the
 * daemon's answer to kv-get --version (body, len: the version on a line,
 * then the raw value): {"key": KEY, "version": V, "value": BASE64}.
 * Returns a malloc'd, newline-ended string, or NULL with why in err
 * (a malformed answer, a key that is not UTF-8, out of memory).
 */
char *kv_cli_get_json(const char *key, const char *body, size_t len, char *err, size_t err_len);

/* sock: the control socket (borrowed); wait_ms: how long to wait for the
 * daemon; argv[0] is "get", "put" or "del". Returns the exit status. */
int kv_cli_main(const char *sock, uint32_t wait_ms, int argc, char **argv);

#endif /* OMNIFS_KV_CLI_H */
