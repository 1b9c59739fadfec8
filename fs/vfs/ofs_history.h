/*
 * File history (ofs_history.c): the previous versions of files, kept in the
 * replicated state, and the read-only view /.omnifs/history/ over them.
 *
 * Keys (beside schema.h's, same conventions: 'F', a kind, big-endian):
 *   F h <ino:8>                 writer: who last wrote ino's content (node, uid, time)
 *   F h <ino:8> <idx:8>         a kept version of ino (struct ofs_hversion)
 *   F v <ino:8> <idx:8> <blk:8> that version's data, OFS_BLOCK_SIZE bytes at most
 *                               (none for a version kept in place: its data are
 *                               the inode's own F b keys, left by the reaper)
 *   F p <path> 0x00 <ino:8>     ino was kept under path (deleted files by path)
 * idx is the log index of the version: the version of ino's attributes when
 * it was kept (the last change that made that state). A version's keys
 * outlive the inode: the reaper of unlinked files does not touch them.
 *
 * The pure part (keys, values) is here for the tests and the fuzzers; the
 * rest is the filesystem's.
 */
#ifndef OMNIFS_OFS_HISTORY_H
#define OMNIFS_OFS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

#define OFS_K_HIST	       'h'
#define OFS_K_HIST_DATA	       'v'
#define OFS_K_HIST_PATH	       'p'
#define OFS_HVERSION_LEN       50u
#define OFS_HWRITER_LEN	       21u
#define OFS_HIST_PATH_MAX      2048u /* longer paths keep versions, not the path index */
#define OFS_HIST_VERSIONS_JSON ".versions.json"

/* A kept version. */
struct ofs_hversion {
	uint32_t mode, uid, gid; /* the file's, for the view's permissions */
	uint64_t node;		 /* the node that wrote this content */
	uint32_t writer_uid;	 /* the uid that wrote it */
	int64_t time_ns;	 /* when it was written (the writer's clock) */
	uint64_t size;
	int64_t kept_ns; /* when it was kept (the age bound counts from here) */
	bool deleted;	 /* kept because the file lost its last name */
	bool in_place;	 /* its data are the inode's F b keys, not F v copies */
};

/* Who last wrote a file's content. */
struct ofs_hwriter {
	uint64_t node;
	uint32_t uid;
	int64_t time_ns;
};

/* Keys. A history key is at most 2 + OFS_HIST_PATH_MAX + 9 bytes. */
struct ofs_hkey {
	size_t len;
	uint8_t b[2 + OFS_HIST_PATH_MAX + 9];
};
void ofs_hkey_writer(struct ofs_hkey *k, uint64_t ino);
void ofs_hkey_version(struct ofs_hkey *k, uint64_t ino, uint64_t idx);
void ofs_hkey_versions_prefix(struct ofs_hkey *k, uint64_t ino); /* writer too */
void ofs_hkey_all_prefix(struct ofs_hkey *k);			 /* every F h key */
void ofs_hkey_data(struct ofs_hkey *k, uint64_t ino, uint64_t idx, uint64_t blk);
void ofs_hkey_data_prefix(struct ofs_hkey *k, uint64_t ino, uint64_t idx);
/* path: len 1..OFS_HIST_PATH_MAX, no NUL (-EINVAL otherwise). */
int ofs_hkey_path(struct ofs_hkey *k, const char *path, size_t len, uint64_t ino);
/* Every ino kept under exactly path (with_nul) or under path and below it. */
int ofs_hkey_path_prefix(struct ofs_hkey *k, const char *path, size_t len, bool with_nul);

/* F h key: 1 and *idx for a version, 0 for a writer record, -EBADMSG. */
int ofs_hkey_parse(const void *key, size_t len, uint64_t *ino, uint64_t *idx);
/* F p key: the path (borrowed from key) and the ino; 0 or -EBADMSG. */
int ofs_hkey_parse_path(const void *key, size_t len, const char **path, size_t *path_len,
			uint64_t *ino);

void ofs_hversion_encode(const struct ofs_hversion *v, uint8_t out[OFS_HVERSION_LEN]);
int ofs_hversion_decode(struct ofs_hversion *v, const void *val, size_t len);
void ofs_hwriter_encode(const struct ofs_hwriter *w, uint8_t out[OFS_HWRITER_LEN]);
int ofs_hwriter_decode(struct ofs_hwriter *w, const void *val, size_t len);

/* The filesystem's side (ofs_history.c's top says how it works). */
struct ofs;
struct kv_txn;
struct ofs_attr;
struct ofs_dirent_list;
struct ofs_hist;
/* Adds to t (about to be proposed) the copy of every version it replaces,
 * and the per-file trimming. 0, -ENOMEM, -EIO, -EFBIG (t then is partly
 * extended: do not propose it). */
int ofs_history_capture(struct ofs *o, struct kv_txn *t);
/* For the reaper, about to free ino: 1 if a version kept in place holds
 * ino's blocks (leave them; t then guards that version), 0 if none, or
 * -errno. */
int ofs_history_holds_blocks(struct ofs *o, struct kv_txn *t, uint64_t ino);
/* Drops kept versions past the age bound (counted to now_ns) and, oldest
 * kept first, beyond the total size bound. Returns how many, or -errno. */
int ofs_history_trim(struct ofs *o, int64_t now_ns);
/* The view's inode table: new (NULL if out of memory), destroy. */
struct ofs_hist *ofs_hist_new(void);
void ofs_hist_destroy(struct ofs_hist **h);
/* Is ino one of the view's (/.omnifs/history and below)? */
bool ofs_hist_is_vino(uint64_t ino);
int ofs_hist_lookup(struct ofs *o, uint64_t parent, const char *name, struct ofs_attr *out);
int ofs_hist_getattr(struct ofs *o, uint64_t ino, struct ofs_attr *out);
/* The content of a file of the view, rendered into *buf (malloc'd). */
int ofs_hist_open(struct ofs *o, uint64_t ino, char **buf, size_t *len);
int ofs_hist_opendir(struct ofs *o, uint64_t ino, struct ofs_dirent_list **out);

#endif /* OMNIFS_OFS_HISTORY_H */
