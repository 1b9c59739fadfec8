/*
 * RocksDB's checksums in hardware.
 *
 * RocksDB guards every WAL record, blob and table block with a CRC32C.
 * Debian builds librocksdb for any x86-64, so it has only the software
 * CRC32C: a large file written through omnifs spent a fifth to a third of
 * the daemons' CPU in it (a byte is checksummed in the log's WAL, the log's
 * blob file, the state's WAL and blob file, and again on every read).
 *
 * librocksdb calls rocksdb::crc32c::Extend through its PLT, so a definition
 * of that symbol in the executable takes its place (ELF interposition): this
 * file defines it with the CPU's SSE4.2 crc32 instruction, and falls back to
 * RocksDB's own definition (found with dlsym(RTLD_NEXT)) on a CPU without
 * SSE4.2. The values are the same CRC32C either way, so stores written by
 * either engine read back with the other (tests/storage/test_rocks_crc32c.c
 * checks both ways, and the values against RocksDB's own on random data).
 * Built into every program that links rocks_util (meson links it whole and
 * exports the symbol); on other architectures it overrides nothing.
 */
#ifndef OMNIFS_ROCKS_CRC32C_H
#define OMNIFS_ROCKS_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* rocksdb::crc32c::Extend(unsigned int, char const*, unsigned long) */
#define ROCKS_CRC32C_SYMBOL "_ZN7rocksdb6crc32c6ExtendEjPKcm"

/* The CRC32C of n bytes at buf continuing crc (0 to start), as RocksDB's
 * crc32c::Extend computes it. On x86-64 it carries that function's name,
 * so it is the function RocksDB calls; elsewhere RocksDB keeps its own. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ROCKS_CRC32C_SSE42 1
uint32_t rocks_crc32c_extend(uint32_t crc, const char *buf, size_t n) __asm__(ROCKS_CRC32C_SYMBOL);
#else
#define ROCKS_CRC32C_SSE42 0
uint32_t rocks_crc32c_extend(uint32_t crc, const char *buf, size_t n);
#endif

/* Which engine computes RocksDB's checksums: "SSE4.2" or "software". */
const char *rocks_crc32c_engine(void);

/* For tests: RocksDB's own definition (NULL if it cannot be found), and a
 * switch between the hardware engine (on, if the CPU has it) and RocksDB's
 * own. Returns false if the engine asked for is not available. */
typedef uint32_t (*rocks_crc32c_fn)(uint32_t crc, const char *buf, size_t n);
rocks_crc32c_fn rocks_crc32c_rocksdb(void);
bool rocks_crc32c_use_hardware(bool on);

#endif /* OMNIFS_ROCKS_CRC32C_H */
