/*
 * SHA-256, streaming, for the replicated state's digest: OpenSSL's libcrypto
 * does the hashing (through EVP, so its fastest code for this CPU). The
 * digest must stay SHA-256 over the same bytes, so that nodes of different
 * versions agree; it is a divergence detector here, not a security boundary.
 */
#ifndef OMNIFS_KV_SHA256_H
#define OMNIFS_KV_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct kv_sha256 {
	EVP_MD_CTX *ctx;
	bool failed; /* an update failed: final reports it */
};

/* 0, or -ENOMEM (nothing to free then). Every successful init is ended by
 * kv_sha256_final, which frees what it took. */
int kv_sha256_init(struct kv_sha256 *c);
/* Hashes len bytes of data (borrowed). */
void kv_sha256_update(struct kv_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest and frees the context: 0, or -EIO if libcrypto
 * failed on the way (out is then zeroes). */
int kv_sha256_final(struct kv_sha256 *c, uint8_t out[32]);
/* Frees the context without a digest: for a hash given up half way. Does
 * nothing after kv_sha256_final or on a zeroed struct, so an error path can
 * call it whatever happened before. */
void kv_sha256_discard(struct kv_sha256 *c);

#endif /* OMNIFS_KV_SHA256_H */
