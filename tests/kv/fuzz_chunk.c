/*
 * libFuzzer target for the state-transfer chunk decoder (kv_import_chunk: a
 * chunk comes from a peer over the network), on a real store: RocksDB in a
 * temp dir under $TMPDIR (else /dev/shm, as chunks are written synced, else
 * /tmp), opened once and removed at a normal exit; a finding leaves it
 * behind, so tools/fuzz.sh points TMPDIR at a folder it removes. Build with
 * -Dfuzz=true and CC=clang.
 *
 * Each input is one chunk. Before it is fed, the store waits for the
 * chunk's own source index at the chunk's own cursor when that cursor is a
 * key the store can hold (an import begun afresh, plus one record ending at
 * the cursor), so the fuzzer reaches the record checks whatever the header
 * says.
 *
 * Oracles besides ASan/UBSan: an independent reading of the format (ref_*,
 * after the layout in kv_transfer.c's top comment) predicts the answer
 * (0, -EBADMSG or -ESTALE) and the store must give exactly that; an
 * accepted chunk writes back from that reading to exactly the input bytes
 * and moves the import's progress to its last key and last flag; a refused
 * one leaves the progress as it was.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "byteorder.h"
#include "kv.h"
#include "kv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK_HDR_MIN (1 + 1 + 8 + 4 + 4)
#define MAX_RECORDS   4096

/* --- the reference reading ------------------------------------------------- */

struct ref_bytes {
	const uint8_t *p;
	uint32_t len;
};

struct ref_chunk {
	uint8_t version, flags;
	uint64_t src;
	struct ref_bytes after;
	uint32_t n;
	bool header_ok;	 /* header, cursor and count readable */
	bool records_ok; /* and every record, in order, to the last byte */
	struct ref_bytes key[MAX_RECORDS], val[MAX_RECORDS];
};

static bool ref_take(const uint8_t **p, const uint8_t *end, uint32_t max, struct ref_bytes *b)
{
	if (end - *p < 4)
		return false;
	uint32_t len = get_le32(*p);
	if (len > max || (size_t)(end - *p - 4) < len)
		return false;
	b->p = *p + 4;
	b->len = len;
	*p += 4 + len;
	return true;
}

static int ref_cmp(struct ref_bytes a, struct ref_bytes b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* A record the source could have sent: a user key with its version, or a
 * proposal's dedup record. */
static bool ref_record_ok(struct ref_bytes k, struct ref_bytes v)
{
	struct kv__dedup d;
	if (k.len < 2)
		return false;
	if (k.p[0] == KV__NS_KEY)
		return v.len >= KV__VERSION_LEN && v.len - KV__VERSION_LEN <= KV_MAX_VALUE_LEN;
	if (k.p[0] == KV__NS_DEDUP)
		return k.len == 9 && kv__dedup_decode((const char *)v.p, v.len, &d);
	return false;
}

static void ref_parse(struct ref_chunk *c, const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	c->header_ok = c->records_ok = false;
	if (size < CHUNK_HDR_MIN || data[0] != 1 || (data[1] & ~1u))
		return;
	c->version = data[0];
	c->flags = data[1];
	c->src = get_le64(data + 2);
	p += 10;
	if (!ref_take(&p, end, KV__STATE_KEY_MAX, &c->after) || end - p < 4)
		return;
	c->n = get_le32(p);
	p += 4;
	if (c->n > (size_t)(end - p) / 8) /* every record takes 8 bytes at least */
		return;
	c->header_ok = true;
	if (c->n > MAX_RECORDS)
		abort(); /* cannot be: the inputs are shorter than this many records */
	struct ref_bytes prev = c->after;
	for (uint32_t i = 0; i < c->n; i++) {
		if (!ref_take(&p, end, KV__STATE_KEY_MAX, &c->key[i]) ||
		    !ref_take(&p, end, KV__VERSION_LEN + KV_MAX_VALUE_LEN, &c->val[i]) ||
		    !ref_record_ok(c->key[i], c->val[i]))
			return;
		if ((i > 0 || prev.len) && ref_cmp(c->key[i], prev) <= 0)
			return;
		prev = c->key[i];
	}
	c->records_ok = p == end;
}

static void put_ref(uint8_t **w, struct ref_bytes b)
{
	put_le32(*w, b.len);
	memcpy(*w + 4, b.p, b.len);
	*w += 4 + b.len;
}

/* The chunk written back from the reading: the input bytes, exactly. */
static void ref_check_round_trip(const struct ref_chunk *c, const uint8_t *data, size_t size)
{
	uint8_t *out = malloc(size), *w = out;
	if (!out)
		abort();
	*w++ = c->version;
	*w++ = c->flags;
	put_le64(w, c->src);
	w += 8;
	put_ref(&w, c->after);
	put_le32(w, c->n);
	w += 4;
	for (uint32_t i = 0; i < c->n; i++) {
		put_ref(&w, c->key[i]);
		put_ref(&w, c->val[i]);
	}
	if ((size_t)(w - out) != size || memcmp(out, data, size) != 0)
		abort();
	free(out);
}

/* --- the store ---------------------------------------------------------------- */

static struct kv_store *store;
static char dir[64];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void remove_store(void)
{
	kv_close(&store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
	char err[KV_ERR_MAX] = "";
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/omnifs-fuzz-chunk-XXXXXX", tmp);
	if (!mkdtemp(dir) || kv_open(&store, dir, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_chunk: cannot open a store in %s: %s\n", dir, err);
		abort();
	}
	atexit(remove_store);
}

struct progress {
	bool has, complete;
	uint64_t src;
	struct kv_buf cursor;
};

static void progress_get(struct progress *p)
{
	if (kv_import_progress(store, &p->has, &p->src, &p->cursor, &p->complete) != 0)
		abort();
}

static bool progress_at(const struct progress *p, uint64_t src, struct ref_bytes cursor,
			bool complete)
{
	return p->has && p->src == src && p->complete == complete && p->cursor.len == cursor.len &&
	       (cursor.len == 0 || memcmp(p->cursor.data, cursor.p, cursor.len) == 0);
}

/* The import of src waiting at cursor (empty, or a key the store can hold:
 * one record ending there is fed first). False if cursor cannot be one. */
static bool wait_at(uint64_t src, struct ref_bytes cursor)
{
	struct progress p;
	progress_get(&p);
	bool there = progress_at(&p, src, cursor, false);
	free(p.cursor.data);
	if (there)
		return true;
	uint8_t ver[KV__VERSION_LEN] = {0};
	struct ref_bytes v = {ver, sizeof(ver)};
	if (cursor.len && !ref_record_ok(cursor, v))
		return false;
	if (kv_import_abort(store) != 0 || kv_import_begin(store, src) != 0)
		abort();
	if (!cursor.len)
		return true;
	uint8_t c[CHUNK_HDR_MIN + 8 + KV__STATE_KEY_MAX + KV__VERSION_LEN], *w = c;
	*w++ = 1;
	*w++ = 0;
	put_le64(w, src);
	w += 8;
	put_le32(w, 0); /* from the start */
	w += 4;
	put_le32(w, 1);
	w += 4;
	put_ref(&w, cursor);
	put_ref(&w, v);
	if (kv_import_chunk(store, c, (size_t)(w - c)) != 0)
		abort();
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ref_chunk c;
	if (!store)
		open_store();
	/* An exact-size copy: any read past the end hits ASan's redzone. */
	uint8_t *chunk = malloc(size ? size : 1);
	if (!chunk)
		return 0;
	memcpy(chunk, data, size);
	ref_parse(&c, chunk, size);

	/* Wait for this chunk where it says it goes, if the store can. */
	uint64_t src = c.header_ok && c.src ? c.src : 1;
	struct ref_bytes none = {NULL, 0};
	bool placed = c.header_ok && c.src && wait_at(src, c.after);
	if (!placed && !wait_at(src, none))
		abort();
	struct progress before, after;
	progress_get(&before);

	int want = !c.header_ok ? -EBADMSG : !placed ? -ESTALE : c.records_ok ? 0 : -EBADMSG;
	int rc = kv_import_chunk(store, chunk, size);
	if (rc != want) {
		fprintf(stderr, "fuzz_chunk: kv_import_chunk said %d, the format says %d\n", rc,
			want);
		abort();
	}
	progress_get(&after);
	if (rc == 0) {
		ref_check_round_trip(&c, chunk, size);
		struct ref_bytes last = c.n ? c.key[c.n - 1] : c.after;
		if (!progress_at(&after, c.src, last, c.flags & 1))
			abort();
	} else {
		struct ref_bytes was = {before.cursor.data, (uint32_t)before.cursor.len};
		if (!progress_at(&after, before.src, was, before.complete))
			abort();
	}
	free(before.cursor.data);
	free(after.cursor.data);
	free(chunk);
	return 0;
}
