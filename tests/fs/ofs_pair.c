/* Two filesystem nodes over one real KV (ofs_pair.h). */
#include "test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

#include "kv.h"
#include "ofs_pair.h"

static int n1_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct ofs_pair *p = ctx;
	void (*before)(struct ofs_pair *) = p->before;
	p->before = NULL;
	if (before)
		before(p);
	p->commits++;
	return p->kv.propose(p->kv.ctx, t, res);
}

static int n2_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct ofs_pair *p = ctx;
	return p->kv.propose(p->kv.ctx, t, res);
}

static struct ofs *make_node(struct ofs_pair *p, uint64_t id,
			     int (*propose)(void *, const struct kv_txn *, struct kv_result *))
{
	struct ofs_config c;
	ofs_config_defaults(&c, id);
	struct ofs_backend b = {.ctx = p, .propose = propose, .kv = p->kv.kv};
	struct ofs *o = ofs_new(&c, &b);
	assert_non_null(o);
	return o;
}

void ofs_pair_open(struct ofs_pair *p, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	char err[KV_ERR_MAX];
	snprintf(p->dir, sizeof(p->dir), "%s/omnifs-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	assert_non_null(mkdtemp(p->dir));
	assert_int_equal(ofs_local_backend_open(&p->lb, p->dir, 77, &p->kv, err, sizeof(err)), 0);
	p->n1 = make_node(p, 1, n1_propose);
	p->n2 = make_node(p, 2, n2_propose);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void ofs_pair_close(struct ofs_pair *p)
{
	ofs_destroy(&p->n1);
	ofs_destroy(&p->n2);
	ofs_local_backend_close(&p->lb);
	assert_int_equal(nftw(p->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}
