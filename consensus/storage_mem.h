/*
 * In-memory storage for the OmniPaxos core (storage.h), for tests, the
 * simulator and benchmarks. Pure: libc memory only.
 *
 * Fault knobs, in the spirit of sqlite's test VFS:
 * - fail the Nth write_atomically from now, once (transient) or that one
 *   and every later one (persistent); a failed write applies nothing;
 * - manual sync: writes become durable only at opx_storage_mem_sync();
 *   opx_storage_mem_crash() then drops every write since the last sync,
 *   which is what a crash before fsync does. Without manual sync every
 *   write is durable at once and a crash loses nothing.
 * "Restarting" a node is building a new instance (opx_new) on the same
 * storage after destroying the old one.
 */
#ifndef OMNIFS_OPX_STORAGE_MEM_H
#define OMNIFS_OPX_STORAGE_MEM_H

#include "storage.h"

struct opx_storage_mem;

/* NULL if memory ran out. */
struct opx_storage_mem *opx_storage_mem_new(void);
/* Frees everything and NULLs *sm. */
void opx_storage_mem_destroy(struct opx_storage_mem **sm);
/* The vtable view; sm must outlive every user of it. */
struct opx_storage opx_storage_mem_storage(struct opx_storage_mem *sm);

/* The nth write_atomically from now (1 = the next one) fails with -EIO;
 * persistent: that one and all later ones. nth == 0 disables failures. */
void opx_storage_mem_fail_write(struct opx_storage_mem *sm, uint64_t nth, bool persistent);
/* write_atomically calls so far, failed ones included. */
uint64_t opx_storage_mem_writes(const struct opx_storage_mem *sm);

/* Turns manual sync on (writes are volatile until synced) or off (every
 * write is durable at once; turning it off syncs). */
int opx_storage_mem_set_manual_sync(struct opx_storage_mem *sm, bool on);
/* Makes every write so far durable. Returns 0 or -ENOMEM. */
int opx_storage_mem_sync(struct opx_storage_mem *sm);
/* Loses every write since the last sync. Returns 0 or -ENOMEM. */
int opx_storage_mem_crash(struct opx_storage_mem *sm);
/* Manual sync: true if a write_unsynced (storage.h) was made since the last
 * sync. The vtable's write_unsynced first syncs what came before it (those
 * writes were synced ones); its sync is opx_storage_mem_sync. */
bool opx_storage_mem_unsynced(const struct opx_storage_mem *sm);

/* Bytes of entry data copied into the store so far (for benchmarks). */
uint64_t opx_storage_mem_bytes_copied(const struct opx_storage_mem *sm);

#endif /* OMNIFS_OPX_STORAGE_MEM_H */
