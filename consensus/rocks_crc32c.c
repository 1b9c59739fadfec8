/*
 * RocksDB's CRC32C with the CPU's crc32 instruction. See rocks_crc32c.h for
 * why and how it takes RocksDB's place.
 */
#include "rocks_crc32c.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if ROCKS_CRC32C_SSE42
#include <nmmintrin.h>

/* One crc32 instruction per 8 bytes, in a chain: about 2.5 bytes a cycle,
 * ten times RocksDB's software, which is plenty beside the copies a byte
 * goes through anyway. */
__attribute__((target("sse4.2"))) static uint32_t extend_sse42(uint32_t crc, const char *buf,
							       size_t n)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t c = crc ^ 0xffffffffu;
	for (; n > 0 && ((uintptr_t)p & 7) != 0; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, sizeof(w));
		c = _mm_crc32_u64(c, w);
	}
	for (; n > 0; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c ^ 0xffffffffu;
}

static bool cpu_has_sse42(void)
{
	/* RocksDB may checksum before any constructor of ours ran. */
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}
#endif

rocks_crc32c_fn rocks_crc32c_rocksdb(void)
{
	void *sym = dlsym(RTLD_NEXT, ROCKS_CRC32C_SYMBOL);
	rocks_crc32c_fn fn = NULL;
	/* POSIX lets dlsym's object pointer stand for a function. */
	if (sym)
		memcpy(&fn, &sym, sizeof(fn));
	return fn;
}

static _Atomic(rocks_crc32c_fn) chosen;

static rocks_crc32c_fn choose(void)
{
#if ROCKS_CRC32C_SSE42
	if (cpu_has_sse42())
		return extend_sse42;
#endif
	rocks_crc32c_fn own = rocks_crc32c_rocksdb();
	if (!own) {
		/* Only RocksDB calls this, so its definition is loaded. */
		fprintf(stderr, "omnifs: RocksDB's crc32c::Extend not found\n");
		abort();
	}
	return own;
}

/* Under RocksDB's name (see the header), this definition, in the program,
 * comes before librocksdb's in the lookup order. */
uint32_t rocks_crc32c_extend(uint32_t crc, const char *buf, size_t n)
{
	/* Two threads racing here choose the same engine. */
	rocks_crc32c_fn fn = atomic_load_explicit(&chosen, memory_order_relaxed);
	if (!fn) {
		fn = choose();
		atomic_store_explicit(&chosen, fn, memory_order_relaxed);
	}
	return fn(crc, buf, n);
}

const char *rocks_crc32c_engine(void)
{
#if ROCKS_CRC32C_SSE42
	rocks_crc32c_fn fn = atomic_load_explicit(&chosen, memory_order_relaxed);
	if (!fn)
		fn = choose();
	return fn == extend_sse42 ? "SSE4.2" : "software";
#else
	return "software";
#endif
}

bool rocks_crc32c_use_hardware(bool on)
{
	rocks_crc32c_fn fn = NULL;
#if ROCKS_CRC32C_SSE42
	if (on && cpu_has_sse42())
		fn = extend_sse42;
#endif
	if (!on)
		fn = rocks_crc32c_rocksdb();
	if (!fn)
		return false;
	atomic_store_explicit(&chosen, fn, memory_order_relaxed);
	return true;
}
