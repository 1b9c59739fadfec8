/*
 * libFuzzer target for the snapshot file reader (kv_snapshot_read: a file
 * from a backup disk or another machine, so untrusted), checking it offline
 * as `omnifsctl snapshot verify` does: no store. Build with -Dfuzz=true and
 * CC=clang.
 *
 * Oracles besides ASan/UBSan: every refusal comes with a message; an
 * accepted file was read to its last byte (info.bytes is the input's size),
 * has an index, a NUL-terminated cluster name and the version this build
 * reads; and one byte flipped anywhere in an accepted file is refused (the
 * checksum covers every byte).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int read_mem(const uint8_t *data, size_t size, struct kv_snap_info *info, char *err,
		    size_t err_len)
{
	FILE *f = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
	if (!f)
		abort();
	int rc = kv_snapshot_read(f, NULL, info, NULL, NULL, err, err_len);
	fclose(f);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv_snap_info info;
	char err[512] = "";
	int rc = read_mem(data, size, &info, err, sizeof(err));
	if (rc != 0) {
		if (rc != -EBADMSG || !err[0])
			abort(); /* no file error other than "malformed", always said */
		return 0;
	}
	if (info.bytes != size || info.applied_idx == 0 || info.version != KV_SNAP_VERSION ||
	    !memchr(info.cluster, '\0', sizeof(info.cluster)))
		abort();
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	size_t at = (size_t)(info.records * 7919 + info.applied_idx) % size;
	copy[at] ^= 0x20;
	if (read_mem(copy, size, &info, err, sizeof(err)) != -EBADMSG)
		abort();
	free(copy);
	return 0;
}
