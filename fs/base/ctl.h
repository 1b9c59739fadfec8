/*
 * The control socket: how omnifsctl talks to the local omnifsd.
 *
 * A unix stream socket, mode 0600 (root only unless the admin changes it).
 * Requests on a connection are served one after the other; binary-safe framing:
 *   request:  u32 len, then len bytes: the arguments, each ended by a NUL
 *   response: u32 status (0 or a positive errno), u32 len, then len bytes
 * All integers little-endian. The body is text, JSON or a raw value, as the
 * command says. The server runs each connection on its own thread (at most
 * CTL_MAX_CLIENTS at once) because some commands wait for consensus.
 */
#ifndef OMNIFS_CTL_H
#define OMNIFS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_REQUEST (8u << 20) /* bytes of arguments in one request */
#define CTL_MAX_ARGS	16
#define CTL_MAX_CLIENTS 256
/* Bytes in a value of `kv put`: 1 MiB. The KV takes larger ones, but a key
 * of the user namespace is a small record that every node keeps and every
 * state transfer carries; files are the place for bulk data. As base64 it
 * fits a request (CTL_MAX_REQUEST) with room to spare. */
#define CTL_KV_MAX_VALUE (1u << 20)

/* A growable response body. */
struct ctl_buf {
	char *data;
	size_t len;
	size_t cap;
};

int ctl_buf_append(struct ctl_buf *b, const void *data, size_t len);
int ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_buf_free(struct ctl_buf *b);

/*
 * Runs one command. argv[0] is the command; args are borrowed for the call.
 * Writes the body into out; returns 0 or a positive errno for the client.
 * Called from the connection's thread: must be thread-safe.
 */
typedef int (*ctl_handler_fn)(void *ctx, int argc, char **argv, struct ctl_buf *out);

/*
 * The server's parsing of a request, apart from the socket (it reads bytes a
 * local client sent, so it checks them all).
 * ctl_parse_len: the length in a request's 4-byte header; 0, or -EMSGSIZE if
 * it is not 1..CTL_MAX_REQUEST.
 * ctl_split_args: splits the len bytes of a request, in place, into its
 * NUL-ended arguments: argv (CTL_MAX_ARGS + 1 slots) gets pointers into req
 * and a NULL after the last. Returns argc (>= 1), or -EBADMSG if the bytes do
 * not end with a NUL or hold more than CTL_MAX_ARGS arguments.
 */
int ctl_parse_len(const unsigned char hdr[4], uint32_t *len);
int ctl_split_args(char *req, size_t len, char **argv);

/*
 * Base64 (RFC 4648, padded), for values that may hold NUL bytes, which an
 * argument cannot (kv-put --base64), and for values in JSON answers.
 * ctl_b64_encode: a malloc'd, NUL-terminated encoding of data (the caller
 * frees it), or NULL when out of memory. ctl_b64_decode: the bytes of s
 * into *out (malloc'd, the caller frees it; at least one byte allocated
 * even for an empty value) and *len; 0, -EINVAL if s is not strict base64
 * (a length that is a multiple of 4, the alphabet, '=' only as padding, no
 * blanks) or -ENOMEM.
 */
char *ctl_b64_encode(const void *data, size_t len);
int ctl_b64_decode(const char *s, void **out, size_t *len);

struct ctl_server;

/*
 * For a handler that holds something for its client while it stays
 * connected (omnifsctl lock): answers the running request now, status 0 and
 * body (borrowed), then waits until the client closes the connection (0) or
 * the server stops (-ESHUTDOWN); -EPIPE if the answer could not be sent.
 * The connection is closed after the handler returns, and what it writes
 * into its out buffer is dropped. Only from a handler's thread; -EINVAL
 * elsewhere or the second time.
 */
int ctl_hold(const char *body, size_t len);
/* True if the client of the command running on this thread has closed its
 * connection (while it waits for the answer it sends nothing). */
bool ctl_client_gone(void);

/*
 * Binds path (removing a stale socket left by a dead daemon; refusing, with
 * -EADDRINUSE, one a live daemon still answers on) and starts accepting.
 * Returns NULL with a message in err on failure.
 */
struct ctl_server *ctl_server_start(const char *path, ctl_handler_fn fn, void *ctx, char *err,
				    size_t err_len);

/* Stops accepting, closes connections waiting for a request, waits for
 * running commands (their answers go out), removes the socket. */
void ctl_server_stop(struct ctl_server **s);

/*
 * Client side: sends argv to the daemon at path and waits up to timeout_ms
 * for the answer. *status gets the daemon's status; *body a malloc'd,
 * NUL-terminated body (the caller frees it) of *body_len bytes.
 * Returns 0, or a negative errno with a message in err (cannot connect...).
 */
int ctl_call(const char *path, int argc, char **argv, uint32_t timeout_ms, uint32_t *status,
	     char **body, size_t *body_len, char *err, size_t err_len);

/* A connection for several requests: the fd, or a negative errno with a
 * message in err. Close it with close(2). */
int ctl_connect(const char *path, char *err, size_t err_len);

/* One request on a connection from ctl_connect; as ctl_call otherwise. After
 * an error the connection is out of step: close it. */
int ctl_request(int fd, int argc, char **argv, uint32_t timeout_ms, uint32_t *status, char **body,
		size_t *body_len, char *err, size_t err_len);

#endif /* OMNIFS_CTL_H */
