/*
 * ofs_local_mount: mounts omnifs on one node without consensus, for tests
 * and for trying the filesystem with shell tools.
 *
 *   ofs_local_mount MOUNTPOINT [DATADIR] [--max-file-mb N] [--max-total-mb N]
 *                   [--max-inodes N] [--write-buffer-mb N] [--no-history] [--debug]
 *
 * Every transaction is applied at once to the replicated KV's store at the
 * next index (local_backend.h), as one node of a cluster would apply it
 * after consensus: in DATADIR (RocksDB, kept across runs), or without one
 * in a temp dir removed at exit. Runs in the foreground until SIGTERM/SIGINT
 * or an unmount (fusermount3 -u), then exits 0.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "local_backend.h"
#include "log.h"
#include "ofs.h"

/* As omnifsd does: signals are blocked everywhere and one thread takes them
 * and stops the filesystem through ofs_stop. */
struct stopper {
	sigset_t set;
	struct ofs *o;
};

static void *stop_on_signal(void *arg)
{
	struct stopper *s = arg;
	int sig;
	if (sigwait(&s->set, &sig) == 0 && sig != SIGUSR1)
		ofs_stop(s->o);
	return NULL;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int usage(void)
{
	fprintf(stderr, "usage: ofs_local_mount MOUNTPOINT [DATADIR] [--max-file-mb N] "
			"[--max-total-mb N] [--max-inodes N] [--write-buffer-mb N] [--no-history] "
			"[--debug]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	struct ofs_config oc;
	ofs_config_defaults(&oc, 1);
	const char *datadir = NULL;
	int first = 2;
	if (argc > 2 && strncmp(argv[2], "--", 2) != 0) {
		datadir = argv[2];
		first = 3;
	}
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--debug") == 0) {
			oc.debug = true;
			continue;
		}
		if (strcmp(a, "--no-history") == 0) {
			oc.hist_enabled = false;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		uint64_t v = strtoull(argv[++i], NULL, 10);
		if (strcmp(a, "--max-file-mb") == 0)
			oc.max_file_size = v << 20;
		else if (strcmp(a, "--max-total-mb") == 0)
			oc.max_total_size = v << 20;
		else if (strcmp(a, "--max-inodes") == 0)
			oc.max_inodes = v;
		else if (strcmp(a, "--write-buffer-mb") == 0)
			oc.write_buffer = v << 20;
		else
			return usage();
	}
	log_set_node(1);
	/* Before any thread starts (RocksDB has its own): every thread inherits
	 * the mask, so the signals go to the stopper only. */
	struct stopper s = {.o = NULL};
	sigemptyset(&s.set);
	sigaddset(&s.set, SIGTERM);
	sigaddset(&s.set, SIGINT);
	sigaddset(&s.set, SIGHUP);
	sigaddset(&s.set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s.set, NULL);
	char tmpdir[64] = "";
	if (!datadir) {
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/omnifs-local-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "ofs_local_mount: %s: %s\n", tmpdir, strerror(errno));
			return 1;
		}
		datadir = tmpdir;
	}
	struct ofs_local_backend *lb = NULL;
	struct ofs_backend b;
	struct ofs *o = NULL;
	char err[512];
	int rc = ofs_local_backend_open(&lb, datadir, cfg_cluster_hash("local"), &b, err,
					sizeof(err));
	if (rc) {
		fprintf(stderr, "ofs_local_mount: %s\n", err);
		goto out_rmdir;
	}
	o = ofs_new(&oc, &b);
	if (!o) {
		fprintf(stderr, "ofs_local_mount: cannot create the filesystem: %s\n",
			strerror(errno));
		rc = 1;
		goto out_close;
	}
	rc = ofs_mount(o, argv[1]);
	if (rc == 0) {
		/* Only while mounted, as omnifsd: ofs_stop reads what ofs_mount
		 * sets and ofs_unmount clears (a signal meanwhile stays pending). */
		s.o = o;
		pthread_t stopper;
		pthread_create(&stopper, NULL, stop_on_signal, &s);
		rc = ofs_run(o);
		pthread_kill(stopper, SIGUSR1); /* ended by an unmount: release the stopper */
		pthread_join(stopper, NULL);
	}
	ofs_unmount(o);
	ofs_destroy(&o);
out_close:
	ofs_local_backend_close(&lb);
out_rmdir:
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc ? 1 : 0;
}
