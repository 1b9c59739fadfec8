/*
 * ofs_pair_mount: two nodes of one filesystem in one process, for testing
 * what a single mount cannot show: kernel cache invalidation and guarded
 * races between nodes, through real mounts.
 *
 *   ofs_pair_mount MOUNT1 MOUNT2
 *
 * Nodes 1 and 2 share an in-memory store, as if every entry were applied on
 * both at once. Each commit is tagged with its node, and the store's apply
 * hook feeds it to the other node's ofs_on_applied_txn as a remote change.
 * Kernel cache timeouts are 60 s, so a node sees the other's change quickly
 * only through invalidation. Runs until both are unmounted.
 *
 * OFS_PAIR_NO_INVAL=1 turns invalidation off (test_pair.sh then fails: the
 * check that the test can fail); OFS_PAIR_DEBUG=1 logs every request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ofs_int.h"

struct pair;

struct node {
	struct pair *p;
	uint64_t id;
	struct ofs *o;
	pthread_t thread;
};

struct pair {
	pthread_mutex_t commit_lock; /* one commit at a time, so the hook knows whose */
	uint64_t proposer;	     /* under commit_lock */
	struct ofs_store_mem *mem;
	struct ofs_store inner;
	struct node n[2];
};

static int pair_get(void *ctx, const void *k, size_t kl, void **v, size_t *vl, uint64_t *ver)
{
	struct node *n = ctx;
	return n->p->inner.get(n->p->inner.ctx, k, kl, v, vl, ver);
}

static int pair_scan(void *ctx, const void *pr, size_t pl, const void *a, size_t al, ofs_scan_fn fn,
		     void *arg)
{
	struct node *n = ctx;
	return n->p->inner.scan(n->p->inner.ctx, pr, pl, a, al, fn, arg);
}

static int pair_commit(void *ctx, const struct ofs_txn *t)
{
	struct node *n = ctx;
	pthread_mutex_lock(&n->p->commit_lock);
	n->p->proposer = n->id;
	int rc = n->p->inner.commit(n->p->inner.ctx, t);
	pthread_mutex_unlock(&n->p->commit_lock);
	return rc;
}

static void hook(void *arg, uint64_t idx, const struct ofs_txn *t)
{
	struct pair *p = arg;
	if (getenv("OFS_PAIR_NO_INVAL"))
		return;
	for (int i = 0; i < 2; i++)
		if (p->n[i].o)
			ofs_on_applied_txn(p->n[i].o, idx, t, p->n[i].id == p->proposer);
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

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: ofs_pair_mount MOUNT1 MOUNT2\n");
		return 2;
	}
	static struct pair p; /* main's own: lives as long as the process */
	pthread_mutex_init(&p.commit_lock, NULL);
	p.mem = ofs_store_mem_new();
	if (!p.mem)
		return 1;
	ofs_store_mem_bind(p.mem, &p.inner);
	int rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct node *n = &p.n[i];
		n->p = &p;
		n->id = (uint64_t)i + 1;
		struct ofs_config c;
		ofs_config_defaults(&c, n->id);
		c.entry_timeout_s = 60;
		c.attr_timeout_s = 60;
		c.debug = getenv("OFS_PAIR_DEBUG") != NULL;
		struct ofs_store st = {n, pair_get, pair_scan, pair_commit, NULL};
		struct ofs *o = ofs_new(&c, &st);
		if (!o || ofs_mount(o, argv[1 + i]) != 0) {
			fprintf(stderr, "ofs_pair_mount: cannot mount node %d\n", i + 1);
			ofs_destroy(&o);
			rc = 1;
			break;
		}
		n->o = o;
	}
	ofs_store_mem_set_hook(p.mem, hook, &p);
	for (int i = 0; i < 2 && rc == 0; i++)
		pthread_create(&p.n[i].thread, NULL, run, &p.n[i]);
	for (int i = 0; i < 2 && rc == 0; i++)
		pthread_join(p.n[i].thread, NULL);
	ofs_store_mem_set_hook(p.mem, NULL, NULL);
	for (int i = 0; i < 2; i++) {
		if (p.n[i].o)
			ofs_unmount(p.n[i].o);
		ofs_destroy(&p.n[i].o);
	}
	ofs_store_mem_destroy(&p.mem);
	return rc;
}
