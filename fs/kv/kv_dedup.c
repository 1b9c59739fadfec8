/*
 * The dedup record of one proposer node (see kv_int.h for the struct): its
 * encoding, and the window that says which sequences were processed. Shared
 * by apply (which reads and updates records), reads (kv_view_dedup_hwm) and
 * state transfer (which checks the records it imports). Pure: no RocksDB.
 *
 * Encoding: version byte 1, u64 hwm, then the window's words, little-endian.
 */
#include "kv_int.h"

#include <string.h>

#include "byteorder.h"

void kv__dedup_encode(uint8_t *p, const struct kv__dedup *d)
{
	p[0] = 1;
	put_le64(p + 1, d->hwm);
	for (int i = 0; i < KV__DEDUP_WORDS; i++)
		put_le64(p + 9 + 8 * i, d->window[i]);
}

bool kv__dedup_decode(const char *raw, size_t len, struct kv__dedup *d)
{
	const uint8_t *p = (const uint8_t *)raw;
	if (len != KV__DEDUP_LEN || p[0] != 1)
		return false;
	d->hwm = get_le64(p + 1);
	for (int i = 0; i < KV__DEDUP_WORDS; i++)
		d->window[i] = get_le64(p + 9 + 8 * i);
	/* The high-water mark itself is always marked. */
	return d->window[0] & 1;
}

bool kv__dedup_seen(const struct kv__dedup *d, uint64_t seq)
{
	if (seq > d->hwm)
		return false;
	uint64_t dist = d->hwm - seq;
	if (dist >= KV_DEDUP_WINDOW)
		return true;
	return (d->window[dist / 64] >> (dist % 64)) & 1;
}

void kv__dedup_mark(struct kv__dedup *d, uint64_t seq)
{
	if (seq > d->hwm) {
		/* Every remembered sequence moves shift places further away. */
		uint64_t shift = seq - d->hwm;
		if (shift >= KV_DEDUP_WINDOW) {
			memset(d->window, 0, sizeof(d->window));
		} else {
			int ws = (int)(shift / 64), bs = (int)(shift % 64);
			for (int i = KV__DEDUP_WORDS - 1; i >= 0; i--) {
				uint64_t w = 0;
				if (i - ws >= 0)
					w = d->window[i - ws] << bs;
				if (bs && i - ws - 1 >= 0)
					w |= d->window[i - ws - 1] >> (64 - bs);
				d->window[i] = w;
			}
		}
		d->hwm = seq;
		d->window[0] |= 1;
		return;
	}
	uint64_t dist = d->hwm - seq;
	d->window[dist / 64] |= 1ull << (dist % 64);
}
