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
#include <pthread.h>

/*
 * One crc32 instruction handles 8 bytes but takes 3 cycles to give its
 * result to the next, so one chain runs at a third of what the CPU can do:
 * in a cold read it was still a sixth of the daemon's CPU, beside the
 * copies. Long buffers are therefore run as three chains over three
 * adjacent stretches of STRETCH bytes, and the chains joined: the CRC
 * register is linear over GF(2), so the register after a stretch B started
 * from r is shift(r) ^ (B's register started from 0), where shift moves a
 * register across STRETCH zero bytes. shift is a 32x32 bit matrix, applied
 * as four tables of 256 entries (one per byte of the register).
 */
#define STRETCH		 4096u
#define CRC32C_REFLECTED 0x82f63b78u

static uint32_t shift_table[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* The register r moved across n zero bytes, one bit at a time (only used
 * to build the tables). */
static uint32_t zeros_slowly(uint32_t r, size_t n)
{
	for (size_t i = 0; i < n * 8; i++)
		r = (r >> 1) ^ ((r & 1) ? CRC32C_REFLECTED : 0);
	return r;
}

static void build_shift_table(void)
{
	uint32_t basis[32]; /* where each bit of the register goes */
	for (unsigned b = 0; b < 32; b++)
		basis[b] = zeros_slowly(1u << b, STRETCH);
	for (unsigned k = 0; k < 4; k++)
		for (unsigned v = 0; v < 256; v++) {
			uint32_t out = 0;
			for (unsigned b = 0; b < 8; b++)
				if (v & (1u << b))
					out ^= basis[8 * k + b];
			shift_table[k][v] = out;
		}
}

static uint32_t shift_stretch(uint32_t r)
{
	return shift_table[0][r & 0xff] ^ shift_table[1][(r >> 8) & 0xff] ^
	       shift_table[2][(r >> 16) & 0xff] ^ shift_table[3][r >> 24];
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	return w;
}

__attribute__((target("sse4.2"))) static uint32_t extend_sse42(uint32_t crc, const char *buf,
							       size_t n)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t c = crc ^ 0xffffffffu;
	for (; n > 0 && ((uintptr_t)p & 7) != 0; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	for (; n >= 3 * STRETCH; n -= 3 * STRETCH, p += 3 * STRETCH) {
		uint64_t c1 = 0, c2 = 0;
		for (size_t i = 0; i < STRETCH; i += 8) {
			c = _mm_crc32_u64(c, load64(p + i));
			c1 = _mm_crc32_u64(c1, load64(p + STRETCH + i));
			c2 = _mm_crc32_u64(c2, load64(p + 2 * STRETCH + i));
		}
		c = shift_stretch((uint32_t)c) ^ (uint32_t)c1;
		c = shift_stretch((uint32_t)c) ^ (uint32_t)c2;
	}
	for (; n >= 8; n -= 8, p += 8)
		c = _mm_crc32_u64(c, load64(p));
	for (; n > 0; n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c ^ 0xffffffffu;
}

/* Whether the SSE4.2 engine can run here; builds its table the first time. */
static bool cpu_has_sse42(void)
{
	/* RocksDB may checksum before any constructor of ours ran. */
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("sse4.2"))
		return false;
	pthread_once(&shift_once, build_shift_table);
	return true;
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

/* The engine in use, chosen at the first call. Two threads racing here
 * choose the same engine. Release and acquire: a thread that finds the
 * SSE4.2 engine chosen by another sees the shift table that thread built. */
static rocks_crc32c_fn current(void)
{
	rocks_crc32c_fn fn = atomic_load_explicit(&chosen, memory_order_acquire);
	if (!fn) {
		fn = choose();
		atomic_store_explicit(&chosen, fn, memory_order_release);
	}
	return fn;
}

/* Under RocksDB's name (see the header), this definition, in the program,
 * comes before librocksdb's in the lookup order. */
uint32_t rocks_crc32c_extend(uint32_t crc, const char *buf, size_t n)
{
	return current()(crc, buf, n);
}

const char *rocks_crc32c_engine(void)
{
#if ROCKS_CRC32C_SSE42
	return current() == extend_sse42 ? "SSE4.2" : "software";
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
	atomic_store_explicit(&chosen, fn, memory_order_release);
	return true;
}
