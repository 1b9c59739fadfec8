/*
 * Kernel cache invalidation for changes applied from other nodes.
 *
 * ofs_on_applied runs on the thread that applies log entries. It only
 * decodes the keys the entry touched and queues (inode) or (parent, name)
 * items; a dedicated thread pops them and calls
 * fuse_lowlevel_notify_inval_inode/_entry. The libfuse header warns that
 * these calls must not run in the path of a related request or under a lock
 * such a request needs (the kernel may wait on that request): the queue
 * keeps them off every FUSE handler and off the apply thread, and no lock is
 * held while notifying.
 *
 * Does not invalidate for entries proposed on this node: the kernel saw
 * those changes through the requests that made them.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "log.h"
#include "ofs_int.h"

#define IQ_MAX 65536 /* past this, queue whole inodes only: a burst must not eat memory */

void ofs_inval_queue(struct ofs *o, uint64_t ino, const char *name, size_t name_len)
{
	struct inval_item *it = calloc(1, sizeof(*it));
	if (!it)
		return;
	it->ino = ino;
	if (name) {
		it->name = strndup(name, name_len);
		if (!it->name) {
			free(it);
			return;
		}
	}
	pthread_mutex_lock(&o->iq_lock);
	if (o->iq_len >= IQ_MAX) {
		pthread_mutex_unlock(&o->iq_lock);
		free(it->name);
		free(it);
		return;
	}
	if (o->iq_tail)
		o->iq_tail->next = it;
	else
		o->iq_head = it;
	o->iq_tail = it;
	o->iq_len++;
	o->iq_queued++;
	pthread_cond_signal(&o->iq_cond);
	pthread_mutex_unlock(&o->iq_lock);
	ofs_count(o, &o->stats.invals_queued, 1);
}

bool ofs_inval_pop(struct ofs *o, struct inval_item **item)
{
	pthread_mutex_lock(&o->iq_lock);
	struct inval_item *it = o->iq_head;
	if (it) {
		o->iq_head = it->next;
		if (!o->iq_head)
			o->iq_tail = NULL;
		o->iq_len--;
		it->next = NULL;
	}
	pthread_mutex_unlock(&o->iq_lock);
	*item = it;
	return it != NULL;
}

/*
 * Queues what a write (PUT, DELETE, DELETE_PREFIX) of key makes stale. Every
 * touched inode and name is invalidated, known to the kernel or not: a
 * lookup may be in flight, its reply built from the state before this entry
 * and not yet counted; skipping the inode because its lookup count is still 0
 * would let that stale reply sit in the kernel's cache for attr_timeout (a
 * reader on this node then saw a file just written elsewhere as empty). For
 * an inode the kernel does not know, the notification is a cheap -ENOENT.
 */
static void inval_key(struct ofs *o, bool prefix, const void *key, size_t len)
{
	uint64_t ino, parent, block;
	const char *name;
	size_t nlen;
	switch (ofs_key_kind(key, len)) {
	case OFS_K_INODE:
	case OFS_K_SYMLINK:
	case OFS_K_XATTR:
		if (ofs_key_parse_ino(key, len, &ino) == 0)
			ofs_inval_queue(o, ino, NULL, 0);
		break;
	case OFS_K_BLOCK:
		/* A prefix drop (truncation) has no block number. */
		if (prefix && ofs_key_parse_ino(key, len, &ino) == 0)
			ofs_inval_queue(o, ino, NULL, 0);
		else if (ofs_key_parse_block(key, len, &ino, &block) == 0)
			ofs_inval_queue(o, ino, NULL, 0);
		break;
	case OFS_K_DIRENT:
		if (!prefix && ofs_key_parse_dirent(key, len, &parent, &name, &nlen) == 0)
			ofs_inval_queue(o, parent, name, nlen);
		break;
	default:
		break;
	}
}

void ofs_on_applied(struct ofs *o, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	if (proposed_here)
		return;
	for (uint32_t i = 0; i < t->n_ops; i++) {
		const struct kv_op *op = &t->ops[i];
		if (op->type == KV_OP_PUT || op->type == KV_OP_DELETE ||
		    op->type == KV_OP_DELETE_PREFIX)
			inval_key(o, op->type == KV_OP_DELETE_PREFIX, op->key, op->key_len);
	}
}

void ofs_apply_hook(void *ctx, uint64_t idx, const struct kv_txn *t, bool proposed_here)
{
	ofs_on_applied(ctx, idx, t, proposed_here);
}

void ofs_on_applied_txn(struct ofs *o, uint64_t idx, const struct ofs_txn *t, bool proposed_here)
{
	if (proposed_here)
		return;
	for (size_t i = 0; i < t->n; i++) {
		const struct ofs_txn_op *op = &t->ops[i];
		if (op->type == OFS_OP_PUT || op->type == OFS_OP_DELETE ||
		    op->type == OFS_OP_DELETE_PREFIX)
			inval_key(o, op->type == OFS_OP_DELETE_PREFIX, op->key.b, op->key.len);
	}
}

static void *inval_main(void *arg)
{
	struct ofs *o = arg;
	for (;;) {
		pthread_mutex_lock(&o->iq_lock);
		while (!o->iq_head && !o->iq_stop)
			pthread_cond_wait(&o->iq_cond, &o->iq_lock);
		bool stop = o->iq_stop;
		pthread_mutex_unlock(&o->iq_lock);
		if (stop)
			break;
		struct inval_item *it;
		uint64_t last_ino = 0;
		while (ofs_inval_pop(o, &it)) {
			int rc;
			if (it->name)
				rc = fuse_lowlevel_notify_inval_entry(o->se, it->ino, it->name,
								      strlen(it->name));
			else if (it->ino == last_ino)
				rc = 0; /* consecutive duplicates from one entry */
			else
				rc = fuse_lowlevel_notify_inval_inode(o->se, it->ino, 0, 0);
			if (!it->name)
				last_ino = it->ino;
			/* -ENOENT: the kernel has already dropped it; fine */
			if (rc && rc != -ENOENT)
				log_debug("fs: invalidation of %llu failed: %s",
					  (unsigned long long)it->ino, strerror(-rc));
			ofs_count(o, &o->stats.invals_sent, 1);
			free(it->name);
			free(it);
			pthread_mutex_lock(&o->iq_lock);
			o->iq_done++;
			pthread_cond_broadcast(&o->iq_done_cond);
			pthread_mutex_unlock(&o->iq_lock);
		}
	}
	return NULL;
}

int ofs_wait_invalidations(struct ofs *o, unsigned timeout_ms)
{
	int64_t end = ofs_now_ns() + (int64_t)timeout_ms * 1000000;
	struct timespec until = {.tv_sec = end / 1000000000, .tv_nsec = end % 1000000000};
	int rc = 0;
	pthread_mutex_lock(&o->iq_lock);
	uint64_t target = o->iq_queued;
	while (o->iq_done < target && o->iq_running && rc == 0)
		rc = pthread_cond_timedwait(&o->iq_done_cond, &o->iq_lock, &until);
	pthread_mutex_unlock(&o->iq_lock);
	return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

/* iq_running is read by ofs_wait_invalidations on other threads (a control
 * command): written under iq_lock. iq_thread is the mounting thread's. */
int ofs_inval_start(struct ofs *o)
{
	pthread_mutex_lock(&o->iq_lock);
	o->iq_stop = false;
	pthread_mutex_unlock(&o->iq_lock);
	int rc = pthread_create(&o->iq_thread, NULL, inval_main, o);
	if (rc)
		return -rc;
	pthread_mutex_lock(&o->iq_lock);
	o->iq_running = true;
	pthread_mutex_unlock(&o->iq_lock);
	return 0;
}

void ofs_inval_stop(struct ofs *o)
{
	pthread_mutex_lock(&o->iq_lock);
	bool running = o->iq_running;
	o->iq_stop = true;
	pthread_cond_signal(&o->iq_cond);
	pthread_mutex_unlock(&o->iq_lock);
	if (running) {
		pthread_join(o->iq_thread, NULL);
		pthread_mutex_lock(&o->iq_lock);
		o->iq_running = false;
		/* A barrier waiting for items that will never be sent. */
		pthread_cond_broadcast(&o->iq_done_cond);
		pthread_mutex_unlock(&o->iq_lock);
	}
	struct inval_item *it;
	while (ofs_inval_pop(o, &it)) {
		free(it->name);
		free(it);
	}
}
