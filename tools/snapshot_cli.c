/*
 * omnifsctl snapshot: `save FILE` asks the local daemon to write a snapshot
 * of its applied state to FILE (the daemon writes it: see fs/snapshot_ctl.c
 * for why) and shows progress on a terminal from FILE.part's size; `verify
 * FILE` reads a snapshot offline, checks all of it (framing, every record,
 * the state's digest, the checksum) and prints its header. No daemon needed.
 */
#include "snapshot_cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"
#include "kv.h"

#define SAVE_WAIT_MS (24u * 3600 * 1000) /* a save takes as long as the state is big */

struct poller {
	char part[PATH_MAX + 8];
	atomic_bool done;
	bool shown;
};

/* Shows FILE.part's size every 200 ms until done. */
static void *poll_size(void *arg)
{
	struct poller *p = arg;
	while (!atomic_load(&p->done)) {
		struct stat st;
		if (stat(p->part, &st) == 0) {
			fprintf(stderr, "\rsnapshot: %.1f MiB written",
				(double)st.st_size / (1 << 20));
			p->shown = true;
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int save(const char *sock, const char *file)
{
	char path[PATH_MAX + 1], err[512];
	if (file[0] == '/') {
		snprintf(path, sizeof(path), "%s", file);
	} else {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "omnifsctl: getcwd: %s\n", strerror(errno));
			return 1;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", cwd, file) >= sizeof(path)) {
			fprintf(stderr, "omnifsctl: %s: path too long\n", file);
			return 2;
		}
	}
	static struct poller p;
	snprintf(p.part, sizeof(p.part), "%s.part", path);
	pthread_t t;
	bool polling = isatty(STDERR_FILENO) && pthread_create(&t, NULL, poll_size, &p) == 0;
	char *args[] = {"snapshot-save", path};
	uint32_t status;
	char *body;
	size_t body_len;
	int rc = ctl_call(sock, 2, args, SAVE_WAIT_MS, &status, &body, &body_len, err, sizeof(err));
	if (polling) {
		atomic_store(&p.done, true);
		pthread_join(t, NULL);
		if (p.shown)
			fputc('\n', stderr);
	}
	if (rc != 0) {
		fprintf(stderr, "omnifsctl: %s\n", err);
		return 3;
	}
	if (status != 0) {
		fprintf(stderr, "omnifsctl: snapshot save: %s: %s", strerror((int)status),
			body_len ? body : "\n");
		free(body);
		return status == EINVAL ? 2 : 1;
	}
	fwrite(body, 1, body_len, stdout);
	free(body);
	return 0;
}

struct verify_progress {
	uint64_t total; /* the file's size */
	bool shown;
};

static void progress(void *ctx, uint64_t bytes)
{
	struct verify_progress *p = ctx;
	p->shown = true;
	if (p->total)
		fprintf(stderr, "\rsnapshot: %.1f of %.1f MiB checked (%llu%%)",
			(double)bytes / (1 << 20), (double)p->total / (1 << 20),
			(unsigned long long)(bytes * 100 / p->total));
	else
		fprintf(stderr, "\rsnapshot: %.1f MiB checked", (double)bytes / (1 << 20));
}

static int verify(const char *file)
{
	FILE *f = fopen(file, "re");
	if (!f) {
		fprintf(stderr, "omnifsctl: %s: %s\n", file, strerror(errno));
		return 1;
	}
	struct kv_snap_info info;
	char err[512];
	struct stat st;
	struct verify_progress p = {fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0, false};
	int rc = kv_snapshot_read(f, NULL, &info, isatty(STDERR_FILENO) ? progress : NULL, &p, err,
				  sizeof(err));
	fclose(f);
	if (rc == 0 && isatty(STDERR_FILENO))
		progress(&p, p.total); /* the callback comes now and then: end at 100% */
	if (p.shown)
		fputc('\n', stderr);
	if (rc != 0) {
		fprintf(stderr, "omnifsctl: %s: %s\n", file, err);
		return 1;
	}
	char hex[2 * KV_DIGEST_LEN + 1], when[64] = "?";
	kv_digest_hex(info.digest, hex);
	time_t secs = (time_t)(info.created_ms / 1000);
	struct tm tm;
	if (gmtime_r(&secs, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("path %s\nformat %u\ncluster %s\ncluster_id %#llx\nnode %llu\ncreated %s\n"
	       "index %llu\ndigest %s\nrecords %llu\nbytes %llu\nok\n",
	       file, info.version, info.cluster, (unsigned long long)info.cluster_id,
	       (unsigned long long)info.node_id, when, (unsigned long long)info.applied_idx, hex,
	       (unsigned long long)info.records, (unsigned long long)info.bytes);
	return 0;
}

int snapshot_main(const char *sock, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[0], "save") == 0)
		return save(sock, argv[1]);
	if (argc == 2 && strcmp(argv[0], "verify") == 0)
		return verify(argv[1]);
	fprintf(stderr, "usage: omnifsctl snapshot save FILE | snapshot verify FILE\n");
	return CLI_EXIT_USAGE;
}
