/*
 * libFuzzer target for the control socket's request parsing (ctl_parse_len
 * and ctl_split_args, what the server does with the bytes a client sent).
 * Build with -Dfuzz=true and CC=clang; tools/fuzz.sh runs it.
 *
 * Input: a request as it arrives, the 4-byte little-endian length then the
 * arguments. Oracles besides ASan/UBSan: the length check accepts exactly
 * 1..CTL_MAX_REQUEST; the split accepts exactly what a plain count of NULs
 * says it should (ends with a NUL, at most CTL_MAX_ARGS of them), and the
 * arguments it returns, each with its NUL, put back together give the
 * request's bytes again (nothing dropped, nothing read twice).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint32_t len;
	int rc = ctl_parse_len(data, &len);
	uint32_t want = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
			(uint32_t)data[3] << 24;
	if (len != want || (rc == 0) != (want >= 1 && want <= CTL_MAX_REQUEST))
		abort();
	/* The fuzzer's bytes stand for the whole body: take the body as all
	 * that follows the header, so short inputs still reach the split. */
	size_t n = size - 4;
	if (rc != 0 || n == 0)
		return 0;

	/* An exact-size copy: any read past the end hits ASan's redzone. */
	char *req = malloc(n);
	if (!req)
		return 0;
	memcpy(req, data + 4, n);
	size_t nuls = 0;
	for (size_t i = 0; i < n; i++)
		nuls += data[4 + i] == 0;
	bool ok = data[4 + n - 1] == 0 && nuls <= CTL_MAX_ARGS;

	char *argv[CTL_MAX_ARGS + 1];
	int argc = ctl_split_args(req, n, argv);
	if (!ok) {
		if (argc != -EBADMSG)
			abort();
		free(req);
		return 0;
	}
	if (argc < 1 || (size_t)argc != nuls || argv[argc] != NULL)
		abort();
	size_t off = 0;
	for (int i = 0; i < argc; i++) {
		if (argv[i] != req + off)
			abort();
		size_t l = strlen(argv[i]) + 1;
		if (off + l > n || memcmp(argv[i], data + 4 + off, l) != 0)
			abort();
		off += l;
	}
	if (off != n)
		abort();
	free(req);
	return 0;
}
