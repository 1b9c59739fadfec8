/*
 * The storage tests' throwaway RocksDB store: two families ("default" and
 * "data"), opened by rocks_db_open under the test's temporary directory
 * (tmpdir.h). Each test names its own kind (name and magic).
 */
#ifndef OMNIFS_TEST_STORE_H
#define OMNIFS_TEST_STORE_H

#include <stdbool.h>
#include <stdio.h>

#include "rocks_util.h"

static const char *const test_store_cfs[] = {"default", "data"};

#define TEST_STORE_KIND(name_, magic_)                                                       \
	{                                                                                    \
		.name = (name_), .magic = (magic_), .format = 1, .cf_names = test_store_cfs, \
		.n_cfs = 2                                                                   \
	}

/* Opens (or makes) the store dir/name of kind k: rocks_db_open's result,
 * its message in err, whether it was made in *fresh. */
static inline int test_store_open(struct rocks_db *d, const char *dir, const char *name,
				  const struct rocks_kind *k, uint64_t cluster, bool *fresh,
				  char *err, size_t err_len)
{
	char path[320];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return rocks_db_open(d, path, k, cluster, fresh, err, err_len);
}

#endif /* OMNIFS_TEST_STORE_H */
