/*
 * Helpers for the KV tests: temp dirs removed on teardown, opening a store
 * that must open, applying a transaction at the next index, and a fixture of
 * two stores.
 */
#ifndef OMNIFS_TESTS_KVT_H
#define OMNIFS_TESTS_KVT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define KVT_CLUSTER 0xc1c1c1c1c1c1c1c1ull

/* Makes a fresh temp dir under $TMPDIR or /tmp into buf. Returns 0 or -1. */
int kvt_mkdtemp(char *buf, size_t len);
/* rm -rf path. */
void kvt_rmtree(const char *path);
/* Opens path for KVT_CLUSTER; fails the test on error. */
struct kv_store *kvt_open(const char *path);
/* Encodes t, applies it at kv_applied_idx(s) (synced off) and frees t.
 * Returns kv_apply's result. */
int kvt_apply(struct kv_store *s, struct kv_txn *t, struct kv_result *res);
/* The value of a string key as a malloc'd NUL-terminated string, or NULL if
 * absent; *version if not NULL. */
char *kvt_get(struct kv_store *s, const char *key, uint64_t *version);
/* The seed for randomised tests: OMNIFS_SEED or a fresh one, printed. */
uint64_t kvt_seed(void);
uint64_t kvt_rand(uint64_t *x);

/* Two stores in one temp dir (dir/a and dir/b), for tests that carry state
 * from one store to the other. */
struct kvt_pair {
	char dir[256];
	char pa[300], pb[300];
	struct kv_store *a, *b;
};
/* cmocka setup and teardown of a struct kvt_pair: setup opens both stores
 * fresh; teardown closes them and removes the dir. */
int kvt_pair_setup(void **state);
int kvt_pair_teardown(void **state);

#endif /* OMNIFS_TESTS_KVT_H */
