/*
 * ofs_local_mount: mounts omnifs on one node without consensus, for tests
 * and for trying the filesystem with shell tools.
 *
 *   ofs_local_mount MOUNTPOINT [--max-file-mb N] [--max-total-mb N]
 *                   [--max-inodes N] [--write-buffer-mb N] [--debug]
 *
 * Every transaction is applied at once to an in-memory store (ofs_store_mem):
 * the state lives as long as the process. Runs in the foreground until
 * SIGTERM/SIGINT or an unmount (fusermount3 -u), then exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ofs.h"

static int usage(void)
{
	fprintf(stderr, "usage: ofs_local_mount MOUNTPOINT [--max-file-mb N] [--max-total-mb N] "
			"[--max-inodes N] [--write-buffer-mb N] [--debug]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	struct ofs_config oc;
	ofs_config_defaults(&oc, 1);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--debug") == 0) {
			oc.debug = true;
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
	log_set_tag("n1");
	struct ofs_store_mem *mem = ofs_store_mem_new();
	if (!mem)
		return 1;
	struct ofs_store st;
	ofs_store_mem_bind(mem, &st);
	struct ofs *o = ofs_new(&oc, &st);
	if (!o) {
		fprintf(stderr, "ofs_local_mount: cannot create the filesystem: %s\n",
			strerror(errno));
		ofs_store_mem_destroy(&mem);
		return 1;
	}
	int rc = ofs_mount(o, argv[1]);
	if (rc == 0) {
		rc = ofs_run(o);
		ofs_unmount(o);
	}
	ofs_destroy(&o);
	ofs_store_mem_destroy(&mem);
	return rc ? 1 : 0;
}
