/*
 * The invalidation thread: pops what inval.c queued for changes from other
 * nodes and tells the kernel through fuse_lowlevel_notify_inval_inode and
 * _entry, holding no lock while it does (see inval.c for why it is a
 * thread). Started by ofs_mount, stopped by ofs_unmount.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ofs_int.h"

/* One notification (an ofs_inval_fn). -ENOENT: the kernel does not have it
 * (never had, or dropped it already); fine. */
static void notify(void *ctx, uint64_t ino, const char *name, size_t name_len)
{
	struct ofs *o = ctx;
	int rc = name ? fuse_lowlevel_notify_inval_entry(o->se, ino, name, name_len)
		      : fuse_lowlevel_notify_inval_inode(o->se, ino, 0, 0);
	if (rc && rc != -ENOENT)
		log_debug("fs: invalidation of %llu failed: %s", (unsigned long long)ino,
			  strerror(-rc));
}

static void *inval_main(void *arg)
{
	struct ofs *o = arg;
	pthread_setname_np(pthread_self(), "ofs-inval");
	for (;;) {
		pthread_mutex_lock(&o->iq_lock);
		while (!o->iq_head && !o->iq_all_covers && !o->iq_stop)
			pthread_cond_wait(&o->iq_cond, &o->iq_lock);
		bool stop = o->iq_stop;
		pthread_mutex_unlock(&o->iq_lock);
		if (stop)
			break;
		struct inval_item *it;
		if (!ofs_inval_pop(o, &it)) {
			/* "everything" pending, no memory to take it: later */
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		int rc = ofs_inval_expand(o, it, notify, o);
		if (rc) {
			/* Could not read the state for the names: not done, and
			 * not dropped: the next pass tells everything. */
			log_warn("fs: kernel cache invalidation: %s; invalidating everything",
				 strerror(-rc));
			ofs_inval_retry(o, it);
		} else {
			if (it->kind == OFS_INVAL_ALL)
				ofs_count(o, &o->stats.invals_all_sent, 1);
			ofs_count(o, &o->stats.invals_sent, 1);
			ofs_inval_done(o, it);
		}
		free(it->name);
		free(it);
	}
	return NULL;
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
	ofs_inval_drain(o);
}
