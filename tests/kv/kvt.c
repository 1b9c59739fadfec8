/* See kvt.h. */
#include "test.h"

#include "kvt.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int kvt_mkdtemp(char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(buf, len, "%s/omnifs-kv-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(buf) ? 0 : -1;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

void kvt_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct kv_store *kvt_open(const char *path)
{
	struct kv_store *s;
	char err[KV_ERR_MAX];
	int rc = kv_open(&s, path, KVT_CLUSTER, err, sizeof(err));
	if (rc)
		fail_msg("kv_open %s: %d %s", path, rc, err);
	return s;
}

int kvt_apply(struct kv_store *s, struct kv_txn *t, struct kv_result *res)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(kv_txn_encode(t, &buf, &len), 0);
	kv_txn_free(t);
	int rc = kv_apply(s, kv_applied_idx(s), buf, len, false, res);
	free(buf);
	return rc;
}

char *kvt_get(struct kv_store *s, const char *key, uint64_t *version)
{
	void *v;
	size_t len;
	int rc = kv_get(s, key, strlen(key), &v, &len, version);
	if (rc == -ENOENT)
		return NULL;
	assert_int_equal(rc, 0);
	char *str = malloc(len + 1);
	assert_non_null(str);
	memcpy(str, v, len);
	str[len] = '\0';
	free(v);
	return str;
}

uint64_t kvt_seed(void)
{
	const char *s = getenv("OMNIFS_SEED");
	uint64_t seed =
		s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	printf("# OMNIFS_SEED=%" PRIu64 "\n", seed);
	fflush(stdout);
	return seed;
}

uint64_t kvt_rand(uint64_t *x)
{
	/* splitmix64: any seed, including 0, gives a good stream. */
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int kvt_pair_setup(void **state)
{
	struct kvt_pair *p = calloc(1, sizeof(*p));
	if (!p || kvt_mkdtemp(p->dir, sizeof(p->dir))) {
		free(p);
		return -1;
	}
	snprintf(p->pa, sizeof(p->pa), "%s/a", p->dir);
	snprintf(p->pb, sizeof(p->pb), "%s/b", p->dir);
	p->a = kvt_open(p->pa);
	p->b = kvt_open(p->pb);
	*state = p;
	return 0;
}

int kvt_pair_teardown(void **state)
{
	struct kvt_pair *p = *state;
	kv_close(&p->a);
	kv_close(&p->b);
	kvt_rmtree(p->dir);
	free(p);
	return 0;
}
