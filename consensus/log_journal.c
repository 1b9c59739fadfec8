/*
 * The consensus log's journal; see log_journal.h.
 */
#include "log_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "byteorder.h"
#include "rocks_crc32c.h"

#define SLOT_BYTES   512 /* one sector each: a header write is never torn across them */
#define HEADER_BYTES 4096
#define BLOCK	     4096 /* what is written at a time: whole, aligned blocks */
#define REC_HEAD     24
#define REC_MAGIC    0x4a52464fu /* "OFRJ" little-endian */
#define SLOT_MAGIC   "omnifsJ1"
#define GROW_BYTES   (4u << 20) /* zeroed and synced at a time */
#define WRITE_OUT_AT (4u << 20) /* records kept in memory until a sync, at most */

/*
 * Records are gathered in memory (buf) and written, in whole blocks from the
 * block the tail is in, when synced (or once WRITE_OUT_AT accumulate), so an
 * unsynced append costs no system call, and the block the tail is in is
 * never read back from the disk before it is written again.
 *
 * The file is opened with O_DIRECT where the filesystem allows it: the
 * journal is never read but at open, so it need not take page cache. And
 * buffered, a small overwrite can cost far more than its block: the page
 * cache keeps a file's data in folios as large as the writes (or the
 * readahead) that brought it in (up to 2 MiB on Linux 6.18's ext4), and
 * writes a dirtied folio back whole. Measured: a 4.6 KB record synced into
 * a file zeroed in 1 MiB writes wrote 1,028 KiB; zeroed in 64 KiB writes,
 * 68.5 KiB; zeroed in 4 KiB writes, or with the page cache dropped, 8.5. So
 * where O_DIRECT is refused, the file's pages are dropped from the page
 * cache once synced (they are clean then, and buf always writes whole
 * blocks, so none is read back before it is written).
 */
struct log_journal {
	int fd;
	bool direct;	    /* fd is O_DIRECT */
	char *path;	    /* to open it again without O_DIRECT */
	uint64_t gen;	    /* the current generation */
	unsigned slot;	    /* the header slot that holds it */
	uint8_t *hdr;	    /* the header block as on disk (aligned) */
	uint8_t *buf;	    /* the file from buf_off to the tail (aligned) */
	size_t cap;	    /* of buf, a multiple of BLOCK */
	uint64_t buf_off;   /* a multiple of BLOCK */
	size_t buf_len;	    /* the tail is at buf_off + buf_len */
	size_t written_len; /* buf_len, and records, when buf was last written */
	uint64_t written_records;
	bool unsynced;	  /* the file holds writes not synced yet */
	uint64_t zeroed;  /* the file's size: all of it written at least once */
	uint64_t records; /* appended since the last reset or open */
	int sys_errno;	  /* of the last failed system call */
};

/* Zeros to grow the file with: aligned for O_DIRECT. */
static _Alignas(BLOCK) const uint8_t zeros[1u << 20];

static uint64_t tail_of(const struct log_journal *j)
{
	return j->buf_off + j->buf_len;
}

static uint32_t crc_of(const uint8_t *head, const void *rec, size_t len)
{
	uint32_t c = rocks_crc32c_extend(0, (const char *)head, 16);
	return rocks_crc32c_extend(c, rec, len);
}

static size_t padded(size_t len)
{
	return (REC_HEAD + len + 7) & ~(size_t)7;
}

static int io_error(void)
{
	return errno == ENOSPC ? -ENOSPC : errno == ENOMEM ? -ENOMEM : -EIO;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? io_error() : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -EIO : -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int sync_fd(int fd)
{
	return fdatasync(fd) == 0 ? 0 : io_error();
}

/* Keeps errno for log_journal_errno when rc reports a failed call. */
static int noted(struct log_journal *j, int rc)
{
	if (rc)
		j->sys_errno = errno ? errno : EIO;
	return rc;
}

/* Opens the file, O_DIRECT if direct. */
static int open_file(struct log_journal *j, bool direct)
{
	int fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
	if (fd < 0)
		return io_error();
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd;
	j->direct = direct;
	return 0;
}

/* Writes n bytes (whole blocks) at off (a block boundary). Some filesystems
 * take O_DIRECT at open and refuse the writes (EINVAL; a FUSE filesystem
 * that opens its own file with the flag): the file is then opened again
 * without it. */
static int write_blocks(struct log_journal *j, const uint8_t *p, size_t n, uint64_t off)
{
	int rc = write_all(j->fd, p, n, off);
	if (rc && j->direct && errno == EINVAL && open_file(j, false) == 0)
		rc = write_all(j->fd, p, n, off);
	if (!rc)
		j->unsynced = true;
	return rc;
}

/* fdatasync, and without O_DIRECT, the file's pages out of the page cache
 * (see the top of this file). */
static int sync_file(struct log_journal *j)
{
	int rc = sync_fd(j->fd);
	if (!rc)
		j->unsynced = false;
	if (!rc && !j->direct)
		(void)posix_fadvise(j->fd, 0, 0, POSIX_FADV_DONTNEED);
	return rc;
}

/* Header slot: magic (8), generation (8), CRC32C of both (4). */
static void slot_encode(uint8_t *s, uint64_t gen)
{
	memset(s, 0, SLOT_BYTES);
	memcpy(s, SLOT_MAGIC, 8);
	put_le64(s + 8, gen);
	put_le32(s + 16, rocks_crc32c_extend(0, (const char *)s, 16));
}

static bool slot_decode(const uint8_t *s, uint64_t *gen)
{
	if (memcmp(s, SLOT_MAGIC, 8) != 0 ||
	    get_le32(s + 16) != rocks_crc32c_extend(0, (const char *)s, 16))
		return false;
	*gen = get_le64(s + 8);
	return true;
}

/* Writes the generation into the slot the current one is not in, synced. */
static int write_header(struct log_journal *j, uint64_t gen)
{
	unsigned slot = j->slot ^ 1;
	slot_encode(j->hdr + slot * SLOT_BYTES, gen);
	int rc = write_blocks(j, j->hdr, HEADER_BYTES, 0);
	if (!rc)
		rc = sync_file(j);
	if (!rc) {
		j->gen = gen;
		j->slot = slot;
	}
	return rc;
}

/* Zeroes the file from j->zeroed up to at least end (whole chunks), synced:
 * records then only ever overwrite blocks the file already has. */
static int grow(struct log_journal *j, uint64_t end)
{
	uint64_t to = (end + GROW_BYTES - 1) / GROW_BYTES * GROW_BYTES;
	if (to > LOG_JOURNAL_MAX_BYTES)
		to = LOG_JOURNAL_MAX_BYTES;
	for (uint64_t off = j->zeroed; off < to; off += sizeof(zeros)) {
		uint64_t n = to - off < sizeof(zeros) ? to - off : sizeof(zeros);
		int rc = write_blocks(j, zeros, n, off);
		if (rc)
			return rc;
	}
	int rc = sync_file(j);
	if (!rc)
		j->zeroed = to;
	return rc;
}

/* Reads the record at *at through rfd if it is whole and of this
 * generation. */
static int read_record(struct log_journal *j, int rfd, uint64_t at, char **rec, size_t *len)
{
	uint8_t h[REC_HEAD];
	if (at + REC_HEAD > j->zeroed || read_all(rfd, h, REC_HEAD, at) != 0)
		return -ENODATA;
	uint32_t n = get_le32(h + 4);
	if (get_le32(h) != REC_MAGIC || get_le64(h + 8) != j->gen || at + padded(n) > j->zeroed)
		return -ENODATA;
	char *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	if (read_all(rfd, buf, n, at + REC_HEAD) != 0 || crc_of(h, buf, n) != get_le32(h + 16)) {
		free(buf);
		return -ENODATA;
	}
	*rec = buf;
	*len = n;
	return 0;
}

/* Replays the records from the header on, and sets the tail after them. */
static int replay_all(struct log_journal *j, int rfd, log_journal_replay_fn replay, void *ctx,
		      uint64_t *tail)
{
	*tail = HEADER_BYTES;
	for (;;) {
		char *rec;
		size_t len;
		int rc = read_record(j, rfd, *tail, &rec, &len);
		if (rc == -ENODATA)
			return 0; /* the end, or a record the crash cut short */
		if (rc)
			return rc;
		rc = replay(ctx, rec, len);
		free(rec);
		if (rc)
			return rc;
		*tail += padded(len);
		j->records++;
	}
}

/* Makes the journal's name in its directory durable (a new file's name is
 * not, until its directory is synced). */
static int sync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, n ? path : ".", n ? n : 1);
	dir[n ? n : 1] = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_error();
	int rc = fsync(fd) == 0 ? 0 : io_error();
	close(fd);
	return rc;
}

/* Reads the header: the newer valid slot. A file shorter than the header is
 * new (its creation was cut short). */
static int load_header(struct log_journal *j, int rfd, char *err, size_t err_len, const char *path)
{
	uint64_t g[2];
	bool ok[2];
	if (j->zeroed < HEADER_BYTES) {
		int rc = grow(j, HEADER_BYTES);
		j->slot = 1; /* so the first header lands in slot 0 */
		rc = rc ? rc : write_header(j, 1);
		return rc ? rc : sync_dir_of(path);
	}
	if (read_all(rfd, j->hdr, HEADER_BYTES, 0) != 0) {
		snprintf(err, err_len, "%s: cannot read its header", path);
		return -EIO;
	}
	ok[0] = slot_decode(j->hdr, &g[0]);
	ok[1] = slot_decode(j->hdr + SLOT_BYTES, &g[1]);
	if (!ok[0] && !ok[1]) {
		snprintf(err, err_len, "%s: corrupt journal header (neither copy is valid)", path);
		return -EIO;
	}
	j->slot = ok[0] && (!ok[1] || g[0] > g[1]) ? 0 : 1;
	j->gen = g[j->slot];
	return 0;
}

/* Makes buf hold at least need bytes (aligned, whole blocks). */
static int reserve(struct log_journal *j, size_t need)
{
	if (need <= j->cap)
		return 0;
	size_t cap = j->cap ? j->cap : 16 * BLOCK;
	while (cap < need)
		cap *= 2;
	void *p;
	if (posix_memalign(&p, BLOCK, cap) != 0)
		return -ENOMEM;
	if (j->buf_len)
		memcpy(p, j->buf, j->buf_len);
	free(j->buf);
	j->buf = p;
	j->cap = cap;
	return 0;
}

/* Replays the records through rfd (a plain descriptor) and keeps the block
 * the tail is in. */
static int replay_file(struct log_journal *j, int rfd, const char *path,
		       log_journal_replay_fn replay, void *ctx, char *err, size_t err_len)
{
	uint64_t tail;
	int rc = replay_all(j, rfd, replay, ctx, &tail);
	if (rc) {
		snprintf(err, err_len, "%s: replaying record %llu: %s", path,
			 (unsigned long long)j->records + 1, strerror(-rc));
	} else {
		rc = reserve(j, BLOCK);
		j->buf_off = tail / BLOCK * BLOCK;
		j->buf_len = (size_t)(tail - j->buf_off);
		j->written_len = j->buf_len;
		j->written_records = j->records;
		if (!rc && j->buf_len && read_all(rfd, j->buf, j->buf_len, j->buf_off) != 0)
			rc = -EIO;
		if (rc)
			snprintf(err, err_len, "%s: reading its last block: %s", path,
				 strerror(-rc));
	}
	return rc;
}

int log_journal_open(struct log_journal **out, const char *path, log_journal_replay_fn replay,
		     void *ctx, uint64_t *replayed, char *err, size_t err_len)
{
	*out = NULL;
	*replayed = 0;
	struct log_journal *j = calloc(1, sizeof(*j));
	void *hdr = NULL;
	if (!j || posix_memalign(&hdr, BLOCK, HEADER_BYTES) != 0) {
		free(j);
		return -ENOMEM;
	}
	memset(hdr, 0, HEADER_BYTES);
	j->hdr = hdr;
	j->fd = -1;
	int rfd = -1;
	struct stat sb;
	j->path = strdup(path);
	int rc = j->path ? 0 : -ENOMEM;
	if (!rc) {
		rc = open_file(j, true);
		if (rc == -EIO && errno == EINVAL) /* O_DIRECT refused at open */
			rc = open_file(j, false);
	}
	/* Read through a plain descriptor (O_DIRECT reads need aligned
	 * buffers), dropped from the page cache once read. */
	if (!rc && (rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = io_error();
	if (rc || fstat(j->fd, &sb) != 0) {
		rc = rc ? rc : io_error();
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	/* A size that is not whole blocks: a growth cut short; the rest of
	 * its last block is written again before use. */
	j->zeroed = (uint64_t)sb.st_size / BLOCK * BLOCK;
	rc = load_header(j, rfd, err, err_len, path);
	if (rc) {
		if (!err[0])
			snprintf(err, err_len, "%s: cannot write its header: %s", path,
				 strerror(-rc));
		goto fail;
	}
	rc = replay_file(j, rfd, path, replay, ctx, err, err_len);
	if (rc)
		goto fail;
	(void)posix_fadvise(rfd, 0, 0, POSIX_FADV_DONTNEED);
	close(rfd);
	*replayed = j->records;
	*out = j;
	return 0;
fail:
	if (rfd >= 0)
		close(rfd);
	log_journal_close(&j);
	return rc;
}

static int write_out(struct log_journal *j);

void log_journal_close(struct log_journal **jp)
{
	struct log_journal *j = *jp;
	if (!j)
		return;
	/* Unsynced records may be lost (a crash would lose them), but a
	 * clean close keeps them. */
	if (j->fd >= 0 && j->buf)
		(void)write_out(j);
	if (j->fd >= 0)
		close(j->fd);
	free(j->hdr);
	free(j->buf);
	free(j->path);
	free(j);
	*jp = NULL;
}

/* Writes the records gathered in buf, in whole blocks (zeros after the
 * tail), and keeps the block the tail is in. If that fails, the records not
 * written are dropped: the calls that added them fail (the store's write
 * that syncs, or the sync), so they were not added. */
static int write_out(struct log_journal *j)
{
	if (j->records == j->written_records)
		return 0; /* nothing appended since */
	size_t n = (j->buf_len + BLOCK - 1) / BLOCK * BLOCK;
	memset(j->buf + j->buf_len, 0, n - j->buf_len);
	int rc = noted(j, write_blocks(j, j->buf, n, j->buf_off));
	if (rc) {
		j->buf_len = j->written_len;
		j->records = j->written_records;
		return rc;
	}
	size_t whole = j->buf_len / BLOCK * BLOCK;
	memmove(j->buf, j->buf + whole, j->buf_len - whole);
	j->buf_off += whole;
	j->buf_len -= whole;
	j->written_len = j->buf_len;
	j->written_records = j->records;
	return 0;
}

int log_journal_append(struct log_journal *j, const void *rec, size_t len)
{
	if (len > UINT32_MAX || HEADER_BYTES + padded(len) > LOG_JOURNAL_MAX_BYTES)
		return -E2BIG;
	uint64_t end = tail_of(j) + padded(len);
	if (end > LOG_JOURNAL_MAX_BYTES)
		return -ENOSPC;
	int rc = end > j->zeroed ? noted(j, grow(j, end)) : 0;
	if (!rc)
		rc = reserve(j, j->buf_len + padded(len) + BLOCK);
	if (rc)
		return rc;
	uint8_t *h = j->buf + j->buf_len;
	put_le32(h, REC_MAGIC);
	put_le32(h + 4, (uint32_t)len);
	put_le64(h + 8, j->gen);
	memcpy(h + REC_HEAD, rec, len);
	put_le32(h + 16, crc_of(h, rec, len));
	put_le32(h + 20, 0);
	memset(h + REC_HEAD + len, 0, padded(len) - REC_HEAD - len);
	j->buf_len += padded(len);
	j->records++;
	return j->buf_len >= WRITE_OUT_AT ? write_out(j) : 0;
}

int log_journal_sync(struct log_journal *j)
{
	int rc = write_out(j);
	if (rc || !j->unsynced)
		return rc;
	return noted(j, sync_file(j));
}

int log_journal_reset(struct log_journal *j)
{
	int rc = noted(j, write_header(j, j->gen + 1));
	if (rc)
		return rc;
	j->buf_off = HEADER_BYTES;
	j->buf_len = 0;
	j->records = 0;
	j->written_len = 0;
	j->written_records = 0;
	return 0;
}

int log_journal_errno(const struct log_journal *j)
{
	return j->sys_errno;
}

uint64_t log_journal_used(const struct log_journal *j)
{
	return tail_of(j);
}

bool log_journal_is_empty(const struct log_journal *j)
{
	return j->records == 0;
}
