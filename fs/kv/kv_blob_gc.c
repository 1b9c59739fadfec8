/*
 * Garbage collection of the state's blob files, on only while there is
 * garbage to collect. See kv_blob_gc_tend in kv.h.
 *
 * Why not always on: RocksDB's collection moves every live blob of the
 * oldest blob files (a quarter of them by default) into new files at each
 * compaction that meets it, whether those files hold garbage or not. Each
 * batch the state applies spans its key space (the proposer's dedup
 * record, the change note, the inode, the blocks), so every compaction
 * from level 0 meets every key, and collection rewrote the oldest quarter
 * of all file data each time: writing a large file cost its bytes once
 * more on every node, and the work grows with the data stored, not with
 * the garbage. Without it, a blob file is dropped once all its blobs are
 * garbage (a file deleted or rewritten whole takes its blob files with
 * it); what it leaves is files that mix live blobs with garbage. Turning
 * collection on only once garbage is half the blob bytes bounds both
 * sides: the space taken stays under about twice the live data, and an
 * episode (its first compaction meets every key, and moves every live
 * blob: the age cutoff is set to all files) moves the live data about
 * once for at least as much garbage collected. Off again under a quarter,
 * so it does not flap around one threshold.
 *
 * The option is a mutable one of the live state's family; a new store,
 * and a restarted one, start with it off (rocks_util.c) and the first call
 * sets it from the figures.
 */
#include "kv.h"
#include "kv_int.h"

#include "log.h"

bool kv_blob_gc_wanted(bool on, uint64_t blob_bytes, uint64_t garbage_bytes)
{
	if (garbage_bytes > blob_bytes)
		garbage_bytes = blob_bytes; /* figures read one after the other */
	if (garbage_bytes == 0)
		return false;
	/* garbage >= bytes / 4 (on) or / 2 (off), rounded up, without overflow */
	uint64_t d = on ? 4 : 2;
	return garbage_bytes >= blob_bytes / d + (blob_bytes % d != 0);
}

static uint64_t property(struct kv_store *s, rocksdb_column_family_handle_t *cf, const char *name)
{
	uint64_t v = 0;
	return rocksdb_property_int_cf(s->db, cf, name, &v) == 0 ? v : 0;
}

int kv_blob_gc_tend(struct kv_store *s)
{
	rocksdb_column_family_handle_t *cf = s->cf_state[s->active];
	bool *on = &s->blob_gc_on[s->active];
	uint64_t bytes = property(s, cf, "rocksdb.live-blob-file-size");
	uint64_t garbage = property(s, cf, "rocksdb.live-blob-file-garbage-size");
	bool want = kv_blob_gc_wanted(*on, bytes, garbage);
	if (want == *on)
		return 0;
	/* Every blob file, not RocksDB's default of the oldest quarter: with
	 * fewer than four files that is none, and one pass that meets every
	 * key (below) leaves no garbage, so it runs once an episode. */
	const char *keys[2] = {"enable_blob_garbage_collection",
			       "blob_garbage_collection_age_cutoff"};
	const char *values[2] = {want ? "true" : "false", "1.0"};
	char *e = NULL;
	rocksdb_set_options_cf(s->db, cf, 2, keys, values, &e);
	if (e)
		return kv__rocks_fail(s, "blob garbage collection: set option", e);
	*on = want;
	log_info("kv: blob garbage collection %s: %llu MiB of garbage in %llu MiB of blob files",
		 want ? "on" : "off", (unsigned long long)(garbage >> 20),
		 (unsigned long long)(bytes >> 20));
	return 0;
}

bool kv_blob_gc_is_on(const struct kv_store *s)
{
	return s->blob_gc_on[s->active];
}
