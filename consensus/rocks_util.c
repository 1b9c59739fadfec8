/*
 * Opening a RocksDB store and checking its identity; RocksDB's error
 * strings. See rocks_util.h. Used by the consensus log and the KV state,
 * which each keep their own layout; this file reads only the identity.
 *
 * The identity record ("identity" in the default column family) is 20
 * bytes: the kind's 8-byte magic, u32 format, u64 cluster id, little-endian.
 */
#include "rocks_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "rocks_memory.h"

#define IDENTITY_KEY "identity"
#define IDENTITY_LEN 20

/* What a store finds at its path before opening it. */
enum dir_kind {
	DIR_NEW,   /* missing (now created, mode 0700, with parents) or empty */
	DIR_DB,	   /* a directory holding a RocksDB database (CURRENT) */
	DIR_OTHER, /* a file, or a directory holding anything else */
};

void rocks_msg(char *msg, size_t msg_len, const char *fmt, ...)
{
	if (!msg || !msg_len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, msg_len, fmt, ap);
	va_end(ap);
}

int rocks_error(char *e, char *msg, size_t msg_len, const char *what)
{
	int rc = strstr(e, "No space left on device") ? -ENOSPC : -EIO;
	rocks_msg(msg, msg_len, "%s: %s", what, e);
	rocksdb_free(e);
	return rc;
}

int rocks_sync_parent(const char *path)
{
	char parent[PATH_MAX];
	if (snprintf(parent, sizeof(parent), "%s", path) >= (int)sizeof(parent))
		return -ENAMETOOLONG;
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else
		slash[slash == parent ? 1 : 0] = '\0';
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 || fsync(fd) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* mkdir -p, each directory it makes synced into its parent. Returns 0 or a
 * negative errno. */
static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int rc = 0;
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) == 0)
			rc = rocks_sync_parent(p);
		else if (errno != EEXIST)
			rc = -errno;
		if (rc)
			break;
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

/* Returns 0 with *kind, or a negative errno with "path: reason" in err. */
static int dir_probe(const char *path, enum dir_kind *kind, char *err, size_t err_len)
{
	struct stat sb;
	if (stat(path, &sb)) {
		int rc = -errno;
		if (rc != -ENOENT) {
			rocks_msg(err, err_len, "%s: %s", path, strerror(-rc));
			return rc;
		}
		*kind = DIR_NEW;
		rc = mkdir_p(path);
		if (rc)
			rocks_msg(err, err_len, "%s: cannot create: %s", path, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(sb.st_mode)) {
		*kind = DIR_OTHER;
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		int rc = -errno;
		rocks_msg(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	bool empty = true, current = false;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		empty = false;
		current |= !strcmp(de->d_name, "CURRENT");
	}
	closedir(d);
	*kind = empty ? DIR_NEW : current ? DIR_DB : DIR_OTHER;
	return 0;
}

static int refuse(const char *path, const struct rocks_kind *k, const char *why, char *err,
		  size_t err_len)
{
	rocks_msg(
		err, err_len,
		"%s is not an omnifs %s (%s): point data_dir at this cluster's data, or move it away",
		path, k->name, why);
	return -EINVAL;
}

/* The existing database must have exactly the kind's column families. */
static int check_cfs(struct rocks_db *d, const char *path, const struct rocks_kind *k, char *err,
		     size_t err_len)
{
	char *e = NULL;
	size_t n = 0;
	char **names = rocksdb_list_column_families(d->opts, path, &n, &e);
	if (e) {
		rocks_msg(err, err_len, "%s: cannot open the %s (corrupt?): %s", path, k->name, e);
		rocksdb_free(e);
		/* RocksDB allocates the (empty) list even when it fails. */
		if (names)
			rocksdb_list_column_families_destroy(names, n);
		return -EIO;
	}
	unsigned seen = 0;
	bool other = false;
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (size_t c = 0; c < k->n_cfs; c++) {
			if (!strcmp(names[i], k->cf_names[c])) {
				seen |= 1u << c;
				known = true;
			}
		}
		other |= !known;
	}
	rocksdb_list_column_families_destroy(names, n);
	if (seen != (1u << k->n_cfs) - 1 || other)
		return refuse(path, k, "a RocksDB database with other column families", err,
			      err_len);
	return 0;
}

static bool cfs_empty(struct rocks_db *d)
{
	bool empty = true;
	for (size_t c = 0; c < d->n_cfs && empty; c++) {
		rocksdb_iterator_t *it = rocksdb_create_iterator_cf(d->db, d->ropts, d->cfs[c]);
		rocksdb_iter_seek_to_first(it);
		empty = !rocksdb_iter_valid(it);
		rocksdb_iter_destroy(it);
	}
	return empty;
}

static int check_identity(struct rocks_db *d, const char *path, const struct rocks_kind *k,
			  uint64_t cluster_id, bool *fresh, char *err, size_t err_len)
{
	char *e = NULL;
	size_t len;
	char *v = rocksdb_get_cf(d->db, d->ropts, d->cfs[0], IDENTITY_KEY, strlen(IDENTITY_KEY),
				 &len, &e);
	if (e) {
		char what[PATH_MAX + 32];
		snprintf(what, sizeof(what), "%s: read identity", path);
		return rocks_error(e, err, err_len, what);
	}
	if (!v) {
		/* A crash between creating the database and writing the
		 * identity leaves it empty: the caller finishes the creation. */
		*fresh = cfs_empty(d);
		return *fresh ? 0 : refuse(path, k, "no omnifs identity in it", err, err_len);
	}
	if (len != IDENTITY_LEN || memcmp(v, k->magic, 8)) {
		rocksdb_free(v);
		return refuse(path, k, "another identity in it", err, err_len);
	}
	uint32_t format = get_le32((const uint8_t *)v + 8);
	uint64_t cid = get_le64((const uint8_t *)v + 12);
	rocksdb_free(v);
	d->found_format = format;
	if (format != k->format &&
	    !(k->oldest_format && format >= k->oldest_format && format < k->format)) {
		rocks_msg(
			err, err_len,
			"%s has %s format %u, this omnifs reads format %u: move it away or use a matching omnifs",
			path, k->name, format, k->format);
		return -EINVAL;
	}
	if (cid != cluster_id) {
		rocks_msg(
			err, err_len,
			"%s belongs to cluster %#llx, this node is configured for cluster %#llx: point data_dir at this cluster's data, or move the old one away",
			path, (unsigned long long)cid, (unsigned long long)cluster_id);
		return -EINVAL;
	}
	return 0;
}

int rocks_db_open(struct rocks_db *d, const char *path, const struct rocks_kind *k,
		  uint64_t cluster_id, bool *fresh, char *err, size_t err_len)
{
	enum dir_kind kind;
	int rc;

	memset(d, 0, sizeof(*d));
	*fresh = false;
	rocks_msg(err, err_len, "%s", "");
	if (k->n_cfs > ROCKS_MAX_CFS)
		return -EINVAL;
	d->opts = rocksdb_options_create();
	d->wsync = rocksdb_writeoptions_create();
	d->wnosync = rocksdb_writeoptions_create();
	d->ropts = rocksdb_readoptions_create();
	if (!d->opts || !d->wsync || !d->wnosync || !d->ropts) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (k->no_wal) {
		/* Every flush covers every family at once (automatic ones too),
		 * so what a crash leaves is the store after one whole batch. */
		rocksdb_options_set_atomic_flush(d->opts, 1);
		rocksdb_writeoptions_disable_WAL(d->wsync, 1);
		rocksdb_writeoptions_disable_WAL(d->wnosync, 1);
	} else {
		rocksdb_writeoptions_set_sync(d->wsync, 1);
	}
	rocksdb_readoptions_set_verify_checksums(d->ropts, 1);
	rocksdb_options_set_paranoid_checks(d->opts, 1);
	rocksdb_options_set_keep_log_file_num(d->opts, 4);
	rocks_memory_apply(d->opts);
	/* Large values (the log's entries of file data, the state's file
	 * blocks) go to blob files when a memtable is flushed, and compactions
	 * then move only references to them: inline, every compaction of a
	 * level wrote the data again, which made a large file's every byte
	 * cost several writes of the disk and most of the daemons' CPU. Blob
	 * files are written and synced by the flush, as table files are.
	 * Without garbage collection: RocksDB's moves the live blobs of the
	 * oldest quarter of the blob files into new ones at every compaction
	 * that meets them, garbage or not, and each batch of the state spans
	 * its keys, so every compaction met them all: a large file's bytes
	 * were written again about once more per node, a fifth of the
	 * daemons' CPU. A blob file is dropped without it once all its blobs
	 * are garbage: the log's entries die in index order, so its files die
	 * whole; the state turns collection on while it has garbage to collect
	 * (kv_blob_gc.c). */
	rocksdb_options_set_enable_blob_files(d->opts, 1);
	rocksdb_options_set_min_blob_size(d->opts, ROCKS_BLOB_MIN_LEN);
	rocksdb_options_set_enable_blob_gc(d->opts, 0);
	/* Let the kernel read ahead in the stores' files (RocksDB's default
	 * advises random access, which turns it off): a file read from start
	 * to end reads its blocks in key order, which is their order on disk,
	 * and each 64 KiB block was a synchronous read of the disk. */
	rocksdb_options_set_advise_random_on_open(d->opts, 0);

	rc = dir_probe(path, &kind, err, err_len);
	if (rc)
		goto out_close;
	if (kind == DIR_OTHER) {
		rc = refuse(path, k, "it holds other files and no database", err, err_len);
		goto out_close;
	}
	if (kind == DIR_DB) {
		rc = check_cfs(d, path, k, err, err_len);
		if (rc)
			goto out_close;
	} else {
		rocksdb_options_set_create_if_missing(d->opts, 1);
		rocksdb_options_set_create_missing_column_families(d->opts, 1);
	}

	const rocksdb_options_t *cf_opts[ROCKS_MAX_CFS];
	for (size_t c = 0; c < k->n_cfs; c++)
		cf_opts[c] = d->opts;
	char *e = NULL;
	d->db = rocksdb_open_column_families(d->opts, path, (int)k->n_cfs, k->cf_names, cf_opts,
					     d->cfs, &e);
	if (e) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "%s: cannot open the %s", path, k->name);
		rc = rocks_error(e, err, err_len, what);
		goto out_close;
	}
	d->n_cfs = k->n_cfs;
	d->found_format = k->format;
	rocks_memory_add(d->db, d->cfs, d->n_cfs);

	if (kind == DIR_NEW)
		*fresh = true;
	else
		rc = check_identity(d, path, k, cluster_id, fresh, err, err_len);
	if (rc)
		goto out_close;
	return 0;
out_close:
	rocks_db_close(d);
	return rc;
}

void rocks_db_close(struct rocks_db *d)
{
	for (size_t c = 0; c < ROCKS_MAX_CFS; c++)
		if (d->cfs[c])
			rocksdb_column_family_handle_destroy(d->cfs[c]);
	if (d->db) {
		rocks_memory_remove(d->db);
		rocksdb_close(d->db);
	}
	if (d->ropts)
		rocksdb_readoptions_destroy(d->ropts);
	if (d->wsync)
		rocksdb_writeoptions_destroy(d->wsync);
	if (d->wnosync)
		rocksdb_writeoptions_destroy(d->wnosync);
	if (d->opts)
		rocksdb_options_destroy(d->opts);
	memset(d, 0, sizeof(*d));
}

/*
 * RocksDB 7.8's C API flushes one column family at a time: rocksdb_flush_cf
 * flushes only the one named, even with atomic_flush on. A manual compaction
 * whose range overlaps a memtable flushes first, and with atomic_flush it
 * flushes every family at once (DBImpl::CompactRange picks them all). So a
 * mark goes into the default family and the compaction covers just that
 * key. rocksdb_compact_range_cf_opt reports no error: whether every memtable
 * is empty afterwards says whether the flush happened, and a failed flush
 * leaves RocksDB refusing writes, so writing the mark again says why.
 */
#define FLUSH_MARK_KEY "flush-mark"

/* NULL, or RocksDB's error (the caller frees it through rocks_error). */
static char *put_flush_mark(struct rocks_db *d)
{
	static const char one = 1;
	char *e = NULL;
	rocksdb_put_cf(d->db, d->wnosync, d->cfs[0], FLUSH_MARK_KEY, strlen(FLUSH_MARK_KEY), &one,
		       1, &e);
	return e;
}

static bool memtables_empty(struct rocks_db *d)
{
	for (size_t c = 0; c < d->n_cfs; c++) {
		uint64_t active = 1, imm = 1;
		if (rocksdb_property_int_cf(d->db, d->cfs[c],
					    "rocksdb.num-entries-active-mem-table", &active) != 0 ||
		    rocksdb_property_int_cf(d->db, d->cfs[c], "rocksdb.num-immutable-mem-table",
					    &imm) != 0 ||
		    active != 0 || imm != 0)
			return false;
	}
	return true;
}

/* RocksDB's error e as "path: flush: e" in err; -EIO or -ENOSPC. */
static int flush_error(const char *path, char *e, char *err, size_t err_len)
{
	char what[PATH_MAX + 64];
	snprintf(what, sizeof(what), "%s: flush", path);
	return rocks_error(e, err, err_len, what);
}

int rocks_flush_start(struct rocks_db *d, const char *path, char *err, size_t err_len)
{
	char *e = put_flush_mark(d);
	if (e)
		return flush_error(path, e, err, err_len);
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
	if (!co)
		return -ENOMEM;
	/* Not behind the automatic compactions running meanwhile. */
	rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
	rocksdb_compact_range_cf_opt(d->db, d->cfs[0], co, FLUSH_MARK_KEY, strlen(FLUSH_MARK_KEY),
				     FLUSH_MARK_KEY, strlen(FLUSH_MARK_KEY));
	rocksdb_compactoptions_destroy(co);
	return 0;
}

int rocks_flush_all(struct rocks_db *d, const char *path, char *err, size_t err_len)
{
	int rc = rocks_flush_start(d, path, err, err_len);
	if (rc || memtables_empty(d))
		return rc;
	char *e = put_flush_mark(d);
	if (e)
		return flush_error(path, e, err, err_len);
	rocks_msg(
		err, err_len,
		"%s: flush: RocksDB left memtables unflushed (its LOG in that directory may say why)",
		path);
	return -EIO;
}

void rocks_identity_put(const struct rocks_db *d, rocksdb_writebatch_t *wb,
			const struct rocks_kind *k, uint64_t cluster_id)
{
	uint8_t v[IDENTITY_LEN];
	memcpy(v, k->magic, 8);
	put_le32(v + 8, k->format);
	put_le64(v + 12, cluster_id);
	rocksdb_writebatch_put_cf(wb, d->cfs[0], IDENTITY_KEY, strlen(IDENTITY_KEY),
				  (const char *)v, sizeof(v));
}
