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
#include <sys/uio.h>
#include <unistd.h>

#include "byteorder.h"
#include "rocks_crc32c.h"

#define SLOT_BYTES   512 /* one sector each: a header write is never torn across them */
#define HEADER_BYTES 4096
#define REC_HEAD     24
#define REC_MAGIC    0x4a52464fu /* "OFRJ" little-endian */
#define SLOT_MAGIC   "omnifsJ1"
#define GROW_BYTES   (4u << 20) /* zeroed and synced at a time */

struct log_journal {
	int fd;
	uint64_t gen;	  /* the current generation */
	unsigned slot;	  /* the header slot that holds it */
	uint64_t tail;	  /* where the next record goes */
	uint64_t zeroed;  /* the file's size: all of it written at least once */
	uint64_t records; /* appended since the last reset or open */
	int sys_errno;	  /* of the last failed system call */
};

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
	uint8_t s[SLOT_BYTES];
	unsigned slot = j->slot ^ 1;
	slot_encode(s, gen);
	int rc = write_all(j->fd, s, sizeof(s), (uint64_t)slot * SLOT_BYTES);
	if (!rc)
		rc = sync_fd(j->fd);
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
	static const char zeros[64 << 10];
	uint64_t to = (end + GROW_BYTES - 1) / GROW_BYTES * GROW_BYTES;
	if (to > LOG_JOURNAL_MAX_BYTES)
		to = LOG_JOURNAL_MAX_BYTES;
	for (uint64_t off = j->zeroed; off < to; off += sizeof(zeros)) {
		uint64_t n = to - off < sizeof(zeros) ? to - off : sizeof(zeros);
		int rc = write_all(j->fd, zeros, n, off);
		if (rc)
			return rc;
	}
	int rc = sync_fd(j->fd);
	if (!rc)
		j->zeroed = to;
	return rc;
}

/* Reads the record at j->tail if it is whole and of this generation. */
static int read_record(struct log_journal *j, char **rec, size_t *len)
{
	uint8_t h[REC_HEAD];
	if (j->tail + REC_HEAD > j->zeroed || read_all(j->fd, h, REC_HEAD, j->tail) != 0)
		return -ENODATA;
	uint32_t n = get_le32(h + 4);
	if (get_le32(h) != REC_MAGIC || get_le64(h + 8) != j->gen ||
	    j->tail + padded(n) > j->zeroed)
		return -ENODATA;
	char *buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	if (read_all(j->fd, buf, n, j->tail + REC_HEAD) != 0 ||
	    crc_of(h, buf, n) != get_le32(h + 16)) {
		free(buf);
		return -ENODATA;
	}
	*rec = buf;
	*len = n;
	return 0;
}

static int replay_all(struct log_journal *j, log_journal_replay_fn replay, void *ctx)
{
	for (;;) {
		char *rec;
		size_t len;
		int rc = read_record(j, &rec, &len);
		if (rc == -ENODATA)
			return 0; /* the end, or a record the crash cut short */
		if (rc)
			return rc;
		rc = replay(ctx, rec, len);
		free(rec);
		if (rc)
			return rc;
		j->tail += padded(len);
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
static int load_header(struct log_journal *j, char *err, size_t err_len, const char *path)
{
	uint8_t s[2][SLOT_BYTES];
	uint64_t g[2];
	bool ok[2];
	if (j->zeroed < HEADER_BYTES) {
		int rc = grow(j, HEADER_BYTES);
		j->slot = 1; /* so the first header lands in slot 0 */
		rc = rc ? rc : write_header(j, 1);
		return rc ? rc : sync_dir_of(path);
	}
	if (read_all(j->fd, s, sizeof(s), 0) != 0) {
		snprintf(err, err_len, "%s: cannot read its header", path);
		return -EIO;
	}
	ok[0] = slot_decode(s[0], &g[0]);
	ok[1] = slot_decode(s[1], &g[1]);
	if (!ok[0] && !ok[1]) {
		snprintf(err, err_len, "%s: corrupt journal header (neither copy is valid)", path);
		return -EIO;
	}
	j->slot = ok[0] && (!ok[1] || g[0] > g[1]) ? 0 : 1;
	j->gen = g[j->slot];
	return 0;
}

int log_journal_open(struct log_journal **out, const char *path, log_journal_replay_fn replay,
		     void *ctx, uint64_t *replayed, char *err, size_t err_len)
{
	*out = NULL;
	*replayed = 0;
	struct log_journal *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	int rc;
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat sb;
	if (j->fd < 0 || fstat(j->fd, &sb) != 0) {
		rc = io_error();
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	j->zeroed = (uint64_t)sb.st_size;
	rc = load_header(j, err, err_len, path);
	if (rc) {
		if (!err[0])
			snprintf(err, err_len, "%s: cannot write its header: %s", path,
				 strerror(-rc));
		goto fail;
	}
	j->tail = HEADER_BYTES;
	rc = replay_all(j, replay, ctx);
	if (rc) {
		snprintf(err, err_len, "%s: replaying record %llu: %s", path,
			 (unsigned long long)j->records + 1, strerror(-rc));
		goto fail;
	}
	*replayed = j->records;
	*out = j;
	return 0;
fail:
	log_journal_close(&j);
	return rc;
}

void log_journal_close(struct log_journal **jp)
{
	struct log_journal *j = *jp;
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
	*jp = NULL;
}

int log_journal_append(struct log_journal *j, const void *rec, size_t len)
{
	if (len > UINT32_MAX || HEADER_BYTES + padded(len) > LOG_JOURNAL_MAX_BYTES)
		return -E2BIG;
	uint64_t end = j->tail + padded(len);
	if (end > LOG_JOURNAL_MAX_BYTES)
		return -ENOSPC;
	if (end > j->zeroed) {
		int rc = noted(j, grow(j, end));
		if (rc)
			return rc;
	}
	uint8_t h[REC_HEAD] = {0};
	static const uint8_t pad[8];
	put_le32(h, REC_MAGIC);
	put_le32(h + 4, (uint32_t)len);
	put_le64(h + 8, j->gen);
	put_le32(h + 16, crc_of(h, rec, len));
	struct iovec iov[3] = {
		{h, REC_HEAD}, {(void *)rec, len}, {(void *)pad, padded(len) - REC_HEAD - len}};
	size_t total = padded(len);
	ssize_t n = pwritev(j->fd, iov, 3, (off_t)j->tail);
	if (n != (ssize_t)total) {
		/* Short or failed: write it again whole (rare; pwritev of a
		 * regular file is short only on errors). */
		char *buf = malloc(total);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, h, REC_HEAD);
		memcpy(buf + REC_HEAD, rec, len);
		memset(buf + REC_HEAD + len, 0, total - REC_HEAD - len);
		int rc = noted(j, write_all(j->fd, buf, total, j->tail));
		free(buf);
		if (rc)
			return rc;
	}
	j->tail = end;
	j->records++;
	return 0;
}

int log_journal_sync(struct log_journal *j)
{
	return noted(j, sync_fd(j->fd));
}

int log_journal_reset(struct log_journal *j)
{
	int rc = noted(j, write_header(j, j->gen + 1));
	if (rc)
		return rc;
	j->tail = HEADER_BYTES;
	j->records = 0;
	return 0;
}

int log_journal_errno(const struct log_journal *j)
{
	return j->sys_errno;
}

uint64_t log_journal_used(const struct log_journal *j)
{
	return j->tail;
}

bool log_journal_is_empty(const struct log_journal *j)
{
	return j->records == 0;
}
