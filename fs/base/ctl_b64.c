/*
 * Base64 (RFC 4648, standard alphabet, padded) for the control protocol: an
 * argument ends at a NUL byte, so a value that may hold any byte travels as
 * base64 (kv-put --base64), and JSON answers carry values the same way. The
 * coding itself is libcrypto's; this file adds the strict check of what a
 * client sent (libcrypto skips blanks and keeps padding's zero bytes).
 */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

char *ctl_b64_encode(const void *data, size_t len)
{
	if (len > (size_t)INT_MAX / 4 * 3 - 3)
		return NULL;
	size_t n = (len + 2) / 3 * 4;
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	/* EVP_EncodeBlock writes the padding and a NUL: n + 1 bytes. */
	EVP_EncodeBlock((unsigned char *)s, data, (int)len);
	return s;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int ctl_b64_decode(const char *s, void **out, size_t *len)
{
	size_t n = strlen(s);
	if (n % 4 != 0 || n > (size_t)INT_MAX)
		return -EINVAL;
	size_t pad = 0;
	if (n >= 4 && s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return -EINVAL;
	/* One spare byte so that an empty value still gets a buffer. */
	unsigned char *b = malloc(n / 4 * 3 + 1);
	if (!b)
		return -ENOMEM;
	int got = n ? EVP_DecodeBlock(b, (const unsigned char *)s, (int)n) : 0;
	if (got < 0 || (size_t)got != n / 4 * 3) {
		free(b);
		return -EINVAL;
	}
	*out = b;
	*len = (size_t)got - pad;
	return 0;
}
