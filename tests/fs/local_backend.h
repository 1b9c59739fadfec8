/*
 * A single-node struct ofs_backend without consensus, for the filesystem's
 * tests and the mount harnesses: each proposal is applied at once, with
 * kv_apply_txn, to a real kv_store (RocksDB in a directory) at the next
 * index, as one node of a cluster applies a decided entry. Guards, versions
 * and prefixes are therefore checked by the KV's own apply. No apply hook:
 * a harness that needs one wraps propose.
 */
#ifndef OMNIFS_TESTS_LOCAL_BACKEND_H
#define OMNIFS_TESTS_LOCAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ofs.h"

struct ofs_local_backend;

/* Opens (creating if missing) the kv_store at path (copied) and fills *b
 * with its propose and kv; b->ctx is *out. Returns 0, -ENOMEM or kv_open's
 * error (message in err). */
int ofs_local_backend_open(struct ofs_local_backend **out, const char *path, uint64_t cluster_id,
			   struct ofs_backend *b, char *err, size_t err_len);
/* Syncs and closes; *lb becomes NULL. No ofs may use it any more. */
void ofs_local_backend_close(struct ofs_local_backend **lb);

#endif /* OMNIFS_TESTS_LOCAL_BACKEND_H */
