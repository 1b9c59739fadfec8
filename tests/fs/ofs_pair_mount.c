/*
 * ofs_pair_mount: two nodes of one filesystem in one process, for testing
 * what a single mount cannot show: kernel cache invalidation and guarded
 * races between nodes, through real mounts.
 *
 *   ofs_pair_mount MOUNT1 MOUNT2
 *
 * Nodes 1 and 2 share one local backend (local_backend.h: the real KV in a
 * temp dir, removed at exit), as if every entry were applied on both at
 * once. Each node proposes through its own propose, which tags the entry
 * with the node and, once it is applied, feeds the transaction to both
 * nodes' ofs_on_applied as the replica's apply hook would: a remote change
 * for the other node, its own for the proposer. Kernel cache timeouts are
 * 60 s, so a node sees the other's change quickly only through
 * invalidation. Runs until both are unmounted.
 *
 * OFS_PAIR_NO_INVAL=1 turns invalidation off (test_pair.sh then fails: the
 * check that the test can fail); OFS_PAIR_DEBUG=1 logs every request.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "local_backend.h"
#include "log.h"
#include "ofs.h"

struct pair;

struct node {
	struct pair *p;
	uint64_t id;
	struct ofs *o;
	pthread_t thread;
};

struct pair {
	pthread_mutex_t commit_lock; /* one proposal at a time, so the hook knows whose */
	bool hook_on;		     /* under commit_lock: both nodes exist */
	struct ofs_local_backend *lb;
	struct ofs_backend kv;
	struct node n[2];
};

static int pair_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct node *n = ctx;
	struct pair *p = n->p;
	pthread_mutex_lock(&p->commit_lock);
	int rc = p->kv.propose(p->kv.ctx, t, res);
	if (rc == 0 && res->status == KV_APPLIED && p->hook_on && !getenv("OFS_PAIR_NO_INVAL"))
		for (int i = 0; i < 2; i++)
			ofs_on_applied(p->n[i].o, res->log_idx, t, &p->n[i] == n);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

static void set_hook(struct pair *p, bool on)
{
	pthread_mutex_lock(&p->commit_lock);
	p->hook_on = on;
	pthread_mutex_unlock(&p->commit_lock);
}

static void *run(void *arg)
{
	struct node *n = arg;
	int rc = ofs_run(n->o);
	if (rc)
		fprintf(stderr, "ofs_pair_mount: node %llu: %s\n", (unsigned long long)n->id,
			strerror(-rc));
	return NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: ofs_pair_mount MOUNT1 MOUNT2\n");
		return 2;
	}
	static struct pair p; /* main's own: lives as long as the process */
	pthread_mutex_init(&p.commit_lock, NULL);
	char dir[64], err[512];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/omnifs-pair-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "ofs_pair_mount: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	int rc = ofs_local_backend_open(&p.lb, dir, 1, &p.kv, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ofs_pair_mount: %s\n", err);
		goto out_rmdir;
	}
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct node *n = &p.n[i];
		n->p = &p;
		n->id = (uint64_t)i + 1;
		struct ofs_config c;
		ofs_config_defaults(&c, n->id);
		c.entry_timeout_s = 60;
		c.attr_timeout_s = 60;
		c.debug = getenv("OFS_PAIR_DEBUG") != NULL;
		struct ofs_backend b = {.ctx = n, .propose = pair_propose, .kv = p.kv.kv};
		struct ofs *o = ofs_new(&c, &b);
		if (!o || ofs_mount(o, argv[1 + i]) != 0) {
			fprintf(stderr, "ofs_pair_mount: cannot mount node %d\n", i + 1);
			ofs_destroy(&o);
			rc = 1;
			break;
		}
		n->o = o;
	}
	set_hook(&p, rc == 0);
	for (int i = 0; i < 2 && rc == 0; i++)
		pthread_create(&p.n[i].thread, NULL, run, &p.n[i]);
	for (int i = 0; i < 2 && rc == 0; i++)
		pthread_join(p.n[i].thread, NULL);
	set_hook(&p, false);
	for (int i = 0; i < 2; i++) {
		if (p.n[i].o)
			ofs_unmount(p.n[i].o);
		ofs_destroy(&p.n[i].o);
	}
	ofs_local_backend_close(&p.lb);
out_rmdir:
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
}
