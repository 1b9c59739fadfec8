/* See local_backend.h. One mutex makes the applies one at a time: the KV has
 * one writer. Reads go to the kv_store directly (b->kv), as on a node. */
#include "local_backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"

struct ofs_local_backend {
	pthread_mutex_t lock; /* one apply at a time */
	struct kv_store *kv;
};

static int local_propose(void *ctx, const struct kv_txn *t, struct kv_result *res)
{
	struct ofs_local_backend *lb = ctx;
	pthread_mutex_lock(&lb->lock);
	int rc = kv_apply_txn(lb->kv, kv_applied_idx(lb->kv), t, false, res);
	if (rc)
		log_err("fs: local apply failed: %s", kv_errmsg(lb->kv));
	pthread_mutex_unlock(&lb->lock);
	return rc ? -EIO : 0;
}

int ofs_local_backend_open(struct ofs_local_backend **out, const char *path, uint64_t cluster_id,
			   struct ofs_backend *b, char *err, size_t err_len)
{
	struct ofs_local_backend *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	int rc = kv_open(&lb->kv, path, cluster_id, err, err_len);
	if (rc) {
		free(lb);
		return rc;
	}
	pthread_mutex_init(&lb->lock, NULL);
	memset(b, 0, sizeof(*b));
	b->ctx = lb;
	b->propose = local_propose;
	b->kv = lb->kv;
	*out = lb;
	return 0;
}

void ofs_local_backend_close(struct ofs_local_backend **lbp)
{
	struct ofs_local_backend *lb = *lbp;
	if (!lb)
		return;
	pthread_mutex_lock(&lb->lock);
	kv_sync(lb->kv);
	pthread_mutex_unlock(&lb->lock);
	kv_close(&lb->kv);
	pthread_mutex_destroy(&lb->lock);
	free(lb);
	*lbp = NULL;
}
