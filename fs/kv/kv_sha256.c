/* SHA-256 through libcrypto's EVP interface. See kv_sha256.h. */
#include "kv_sha256.h"

#include <errno.h>
#include <string.h>

int kv_sha256_init(struct kv_sha256 *c)
{
	c->failed = false;
	c->ctx = EVP_MD_CTX_new();
	if (!c->ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c->ctx);
		c->ctx = NULL;
		return -ENOMEM;
	}
	return 0;
}

void kv_sha256_update(struct kv_sha256 *c, const void *data, size_t len)
{
	if (!c->failed && len && EVP_DigestUpdate(c->ctx, data, len) != 1)
		c->failed = true;
}

int kv_sha256_final(struct kv_sha256 *c, uint8_t out[32])
{
	unsigned int n = 0;
	if (!c->failed && (EVP_DigestFinal_ex(c->ctx, out, &n) != 1 || n != 32))
		c->failed = true;
	EVP_MD_CTX_free(c->ctx);
	c->ctx = NULL;
	if (c->failed) {
		memset(out, 0, 32);
		return -EIO;
	}
	return 0;
}

void kv_sha256_discard(struct kv_sha256 *c)
{
	EVP_MD_CTX_free(c->ctx);
	c->ctx = NULL;
}
