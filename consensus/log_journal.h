/*
 * The consensus log's journal: the durable copy of the log store's recent
 * write batches, in a file whose blocks are written once with zeros and then
 * only overwritten, so that making a batch durable costs one fdatasync of its
 * bytes. RocksDB's own log appends to its file: each fdatasync of it also
 * commits the file's new size through the filesystem's journal (ext4: a
 * second ordered write and cache flush), about 1.5 times the time on the
 * disks measured (163 against 108 µs for 400 bytes), and on the path of every
 * consensus round (a follower answers only once its copy is synced).
 *
 * The file: two header slots (the generation; the newer valid one counts, so
 * a torn header write leaves the older), then records of that generation one
 * after the other: magic, length, generation, CRC32C of all three and the
 * bytes, the bytes, padding to 8. It grows in zeroed chunks (each synced
 * before records go there) up to a fixed size. Records wait in memory until
 * a sync writes them, with the block the last one ends in, in whole blocks
 * (O_DIRECT where the filesystem allows). Opening replays the records of
 * the current generation up to the first that is torn or of another
 * generation: what a crash left half-written is ignored, as RocksDB's
 * point-in-time recovery does.
 *
 * The store using it (storage_rocksdb.c) writes each batch here first, then
 * to its memtables without RocksDB's log. When the journal is full it
 * flushes its memtables (so every record is in its table files) and starts a
 * new generation. Replaying a suffix of the batches over table files that
 * already hold some of them yields the same state: each batch puts or
 * deletes whole keys, and the last write of a key wins.
 *
 * One thread uses a journal at a time.
 */
#ifndef OMNIFS_LOG_JOURNAL_H
#define OMNIFS_LOG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most the file grows to; a record must fit in it with its header. */
#define LOG_JOURNAL_MAX_BYTES (64u << 20)

struct log_journal;

/* Called for each record replayed at open, in order; a non-zero return stops
 * the open with that error. */
typedef int (*log_journal_replay_fn)(void *ctx, const char *rec, size_t len);

/*
 * Opens the journal at path (creating it, empty, if missing) and replays its
 * records through replay. Returns 0 and *out, with *replayed the number of
 * records replayed, or a negative errno with a one-line reason in err
 * (-EIO: unreadable, or neither header slot valid in a file that has them).
 */
int log_journal_open(struct log_journal **out, const char *path, log_journal_replay_fn replay,
		     void *ctx, uint64_t *replayed, char *err, size_t err_len);
void log_journal_close(struct log_journal **j);

/* Adds a record after the others, unsynced (kept in memory until a sync, or
 * the close, or until a few MiB wait: a crash may lose it). Returns 0; -ENOSPC if it does
 * not fit in what is left (make the records durable elsewhere, then
 * log_journal_reset, then append again); -E2BIG if it cannot fit even in an
 * empty journal; -EIO on a write error. */
int log_journal_append(struct log_journal *j, const void *rec, size_t len);
/* Makes every record appended so far durable. 0 or -EIO. */
int log_journal_sync(struct log_journal *j);
/* Drops every record: a new generation starts, durable on return. Call it
 * only once they are all durable elsewhere. 0 or -EIO. */
int log_journal_reset(struct log_journal *j);
/* The errno of the last system call that failed (for messages: the -errno
 * returned is one of the few the log's callers tell apart). */
int log_journal_errno(const struct log_journal *j);
/* Bytes of the file in use (header and records): at most
 * LOG_JOURNAL_MAX_BYTES. */
uint64_t log_journal_used(const struct log_journal *j);
/* True if no record was appended since the last reset (or open). */
bool log_journal_is_empty(const struct log_journal *j);

#endif /* OMNIFS_LOG_JOURNAL_H */
