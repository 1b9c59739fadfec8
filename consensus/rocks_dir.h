/*
 * What a RocksDB store finds at its path before opening it: nothing (it
 * creates the directory), a database, or something else it must refuse.
 * Shared by the consensus log (storage_rocksdb.c) and the KV state
 * (fs/kv/kv_store.c), which each check their own identity afterwards.
 */
#ifndef OMNIFS_ROCKS_DIR_H
#define OMNIFS_ROCKS_DIR_H

#include <stddef.h>

enum rocks_dir_kind {
	ROCKS_DIR_NEW,	 /* missing (now created, mode 0700, with parents) or empty */
	ROCKS_DIR_DB,	 /* a directory holding a RocksDB database (CURRENT) */
	ROCKS_DIR_OTHER, /* a file, or a directory holding anything else */
};

/* Returns 0 with *kind, or a negative errno with "path: reason" in err. */
int rocks_dir_probe(const char *path, enum rocks_dir_kind *kind, char *err, size_t err_len);

#endif /* OMNIFS_ROCKS_DIR_H */
