/*
 * libFuzzer target for the member-table parser (membership_decode: tables
 * come from peers in MEMBERS frames and in stop-sign metadata). Build with
 * -Dfuzz=true and CC=clang; tools/fuzz.sh runs it.
 *
 * Oracles besides ASan/UBSan: a table that decodes is well formed (a config
 * id, 1..CFG_MAX_PEERS members with distinct ids in ascending order, valid
 * addresses and keys, quorums in range); it encodes, and its encoding
 * decodes to the same table and encodes to the same bytes again (the text is
 * not canonical: lines may come in any order, so the input itself is not
 * compared). A refused table leaves a reason in err.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_table(const struct membership *m)
{
	if (m->config_id == 0 || m->n == 0 || m->n > CFG_MAX_PEERS ||
	    m->read_quorum > CFG_MAX_PEERS || m->write_quorum > CFG_MAX_PEERS)
		abort();
	for (size_t i = 0; i < m->n; i++) {
		const struct cfg_peer *p = &m->peers[i];
		if (p->id == 0 || (i > 0 && p->id <= m->peers[i - 1].id))
			abort();
		if (!cfg_address_is_valid(p->address) ||
		    (p->public_key[0] && !cfg_key_is_valid(p->public_key)))
			abort();
		if (membership_find(m, p->id) != p)
			abort();
	}
}

static bool same_table(const struct membership *a, const struct membership *b)
{
	if (a->config_id != b->config_id || a->base != b->base ||
	    a->read_quorum != b->read_quorum || a->write_quorum != b->write_quorum || a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct cfg_peer *p = &a->peers[i], *q = &b->peers[i];
		if (p->id != q->id || strcmp(p->address, q->address) != 0 ||
		    strcmp(p->public_key, q->public_key) != 0)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *in = malloc(size ? size : 1);
	if (!in)
		return 0;
	memcpy(in, data, size);

	static struct membership m, again;
	char err[256] = "";
	int rc = membership_decode(&m, in, size, err, sizeof(err));
	if (rc != 0) {
		if (rc != -EBADMSG || err[0] == '\0')
			abort();
		free(in);
		return 0;
	}
	check_table(&m);

	static char enc[MEMBERSHIP_ENC_MAX], enc2[MEMBERSHIP_ENC_MAX];
	size_t len, len2;
	if (membership_encode(&m, enc, sizeof(enc), &len) != 0)
		abort();
	if (membership_decode(&again, enc, len, err, sizeof(err)) != 0 || !same_table(&m, &again))
		abort();
	if (membership_encode(&again, enc2, sizeof(enc2), &len2) != 0 || len2 != len ||
	    memcmp(enc, enc2, len) != 0)
		abort();
	free(in);
	return 0;
}
