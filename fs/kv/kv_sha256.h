/*
 * SHA-256 (FIPS 180-4), streaming, for the replicated state's digest. Written
 * for omnifs so the KV needs no crypto library; it is a divergence detector
 * here, not a security boundary, and is not tuned for speed.
 */
#ifndef OMNIFS_KV_SHA256_H
#define OMNIFS_KV_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct kv_sha256 {
	uint32_t h[8];
	uint64_t total;	   /* bytes hashed so far */
	uint8_t block[64]; /* pending bytes */
	size_t used;	   /* bytes in block */
};

void kv_sha256_init(struct kv_sha256 *c);
/* Hashes len bytes of data (borrowed). */
void kv_sha256_update(struct kv_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest; c must be re-initialised before reuse. */
void kv_sha256_final(struct kv_sha256 *c, uint8_t out[32]);

#endif /* OMNIFS_KV_SHA256_H */
