/*
 * The state digest's hashing speed (fs/kv/kv_sha256.h), in figures: 256 MiB
 * hashed in 1 MiB pieces, and the same amount fed as `digest` feeds it (per
 * record a 4-byte length, a 40-byte key, a 4-byte length, a 200-byte value).
 * No assertions; run from build/release:
 *
 *   build/release/tools/bench_sha256 [MiB]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv_sha256.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, size_t bytes, double secs, const uint8_t d[32])
{
	printf("%-32s %8.1f MB/s  (%zu MiB in %.2f s, digest %02x%02x%02x%02x...)\n", what,
	       (double)bytes / secs / 1e6, bytes >> 20, secs, d[0], d[1], d[2], d[3]);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	if (mib == 0 || mib > 65536) {
		fprintf(stderr, "usage: bench_sha256 [MiB], 1 to 65536\n");
		return 64;
	}
	size_t total = mib << 20, piece = 1 << 20;
	uint8_t *buf = malloc(piece);
	if (!buf)
		return 1;
	for (size_t i = 0; i < piece; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	struct kv_sha256 c;
	uint8_t d[32];

	if (kv_sha256_init(&c) != 0)
		return 1;
	double t0 = now_s();
	for (size_t done = 0; done < total; done += piece)
		kv_sha256_update(&c, buf, piece);
	kv_sha256_final(&c, d);
	report("1 MiB pieces", total, now_s() - t0, d);

	if (kv_sha256_init(&c) != 0)
		return 1;
	t0 = now_s();
	size_t done = 0, off = 0;
	uint8_t len[4] = {40, 0, 0, 0}, vlen[4] = {200, 0, 0, 0};
	while (done < total) {
		if (off + 240 > piece)
			off = 0;
		kv_sha256_update(&c, len, 4);
		kv_sha256_update(&c, buf + off, 40);
		kv_sha256_update(&c, vlen, 4);
		kv_sha256_update(&c, buf + off + 40, 200);
		off += 240;
		done += 248;
	}
	kv_sha256_final(&c, d);
	report("records (4+40+4+200 bytes)", done, now_s() - t0, d);
	free(buf);
	return 0;
}
