/*
 * powercut_fs: a FUSE passthrough that forgets, when it is unmounted, every
 * change nobody made durable, as a power cut would. Tests put the data dirs
 * of every node on it, kill the daemons, unmount it (the cut), mount it
 * again and check that nothing acknowledged was lost.
 *
 *   powercut_fs BACKING MOUNTPOINT [-f] [-o opt,...]
 *
 * BACKING/live is the tree as the mount shows it. At mount, all of it counts
 * as durable (a machine after its reboot). Unmounting rewrites BACKING/live
 * to what was durable at that moment, and nothing else; SIGUSR1 makes
 * everything durable now (what sync(1) and a few seconds of writeback would
 * do), then appends a line to BACKING/checkpoints so a caller can wait for it.
 *
 * What counts as durable, the POSIX contract an application may rely on on
 * any filesystem, a strict subset of what ext4 (data=ordered) gives:
 *  - a file's content and size: what it held at its last fsync or fdatasync
 *    (both treated alike: ext4's fdatasync also persists a size change), or
 *    at mount if it was never synced since; written bytes in between are
 *    gone, including the zeros of a truncation;
 *  - a directory's entries (names and the inodes they point at): as they were
 *    at its last fsync, or at mount. So a file created, written and fsynced
 *    is gone if its directory was not fsynced after the create; a rename is
 *    durable in each of its two directories only once that directory is
 *    fsynced (if only the target is, the file keeps both names, like a hard
 *    link; a directory is restored once, under the first name found);
 *  - modes, owners and times: changed at once (not modelled).
 * ext4 is stronger: its journal commits namespace changes in order, so any
 * fsync makes every earlier create, rename and unlink durable, and it
 * commits them within 5 s anyway; it also writes a file's data before the
 * rename that replaces it (auto_da_alloc). A program that passes here passes
 * there; one that relies on those extras fails here, on purpose.
 *
 * How: every operation goes to BACKING/live at once (reads are plain). Before
 * the first change of a file since mount its content is copied to
 * BACKING/store/<inode> (its durable copy); fsync copies the range written
 * since the last fsync (and the size) into it. Before the first change of a
 * directory its listing is kept in memory; fsyncdir takes a new one. Unlink,
 * rmdir and rename over a name move the old inode into BACKING/grave instead
 * of freeing it, so an inode number names one inode for the whole mount and
 * the durable listings can point at it. The cut walks the durable listings
 * from the root and builds the new tree from the durable copies (or from the
 * live file for one never changed).
 *
 * Deliberately not supported: RENAME_EXCHANGE, special files (mknod), xattrs,
 * more than one mount of a BACKING at a time. All calls are serialised by one
 * lock except reads: it is a test harness, not a filesystem to be fast on.
 */
#define FUSE_USE_VERSION 314

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* One entry of a durable directory listing. */
struct dent {
	char *name;
	ino_t ino;
	unsigned char type; /* DT_DIR, DT_REG, DT_LNK */
};

/* An inode changed since mount (or since the last SIGUSR1). */
struct node {
	ino_t ino;
	struct node *next; /* hash chain */
	/* Files: store/<ino> holds the durable content. */
	bool has_store;
	bool dirty;	/* written or truncated since the durable copy */
	off_t dirty_lo; /* written range since then, [lo, hi) */
	off_t dirty_hi;
	off_t min_size; /* the smallest size the file had since then */
	/* Directories: the durable listing (NULL: the live one is durable). */
	bool has_snap;
	struct dent *snap;
	size_t snap_len;
};

#define NODE_BUCKETS 4096

static struct {
	char backing[PATH_MAX];
	char live[PATH_MAX + 8];
	char store[PATH_MAX + 8];
	char grave[PATH_MAX + 8];
	int live_fd;	      /* every path operation is relative to it */
	pthread_mutex_t lock; /* guards everything below and every change */
	struct node *nodes[NODE_BUCKETS];
	unsigned long grave_seq;
	unsigned long checkpoints;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* "/a/b" -> "a/b", "/" -> "." : relative to live_fd. */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static struct node *node_find(ino_t ino)
{
	for (struct node *n = g.nodes[ino % NODE_BUCKETS]; n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

static struct node *node_get(ino_t ino)
{
	struct node *n = node_find(ino);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		abort();
	n->ino = ino;
	n->next = g.nodes[ino % NODE_BUCKETS];
	g.nodes[ino % NODE_BUCKETS] = n;
	return n;
}

static void snap_free(struct node *n)
{
	for (size_t i = 0; i < n->snap_len; i++)
		free(n->snap[i].name);
	free(n->snap);
	n->snap = NULL;
	n->snap_len = 0;
	n->has_snap = false;
}

/* Forget every node: what is live now is what is durable. */
static void nodes_clear(void)
{
	for (size_t b = 0; b < NODE_BUCKETS; b++) {
		while (g.nodes[b]) {
			struct node *n = g.nodes[b];
			g.nodes[b] = n->next;
			snap_free(n);
			free(n);
		}
	}
}

static void store_path(char *buf, size_t cap, ino_t ino)
{
	snprintf(buf, cap, "%s/%llu", g.store, (unsigned long long)ino);
}

/* Copies [off, off + len) of src into dst at the same offsets. */
static int copy_range(int src, int dst, off_t off, off_t len)
{
	char buf[1 << 16];
	while (len > 0) {
		ssize_t r =
			pread(src, buf, len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf), off);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		if (pwrite(dst, buf, (size_t)r, off) != r)
			return -EIO;
		off += r;
		len -= r;
	}
	return 0;
}

static int copy_file(int src, const char *dst_path, mode_t mode)
{
	struct stat st;
	if (fstat(src, &st))
		return -errno;
	int dst = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (dst < 0)
		return -errno;
	int rc = copy_range(src, dst, 0, st.st_size);
	if (!rc && ftruncate(dst, st.st_size))
		rc = -errno;
	close(dst);
	return rc;
}

/* Before the first change of file fd since mount: its durable copy. */
static int file_cow(int fd, struct node **out)
{
	struct stat st;
	if (fstat(fd, &st))
		return -errno;
	struct node *n = node_get(st.st_ino);
	if (!n->has_store) {
		char sp[PATH_MAX + 32];
		store_path(sp, sizeof(sp), st.st_ino);
		int rc = copy_file(fd, sp, 0600);
		if (rc)
			return rc;
		n->has_store = true;
		n->min_size = st.st_size;
	}
	*out = n;
	return 0;
}

static void mark_written(struct node *n, off_t off, off_t len)
{
	if (!n->dirty) {
		n->dirty = true;
		n->dirty_lo = off;
		n->dirty_hi = off + len;
	} else {
		if (off < n->dirty_lo)
			n->dirty_lo = off;
		if (off + len > n->dirty_hi)
			n->dirty_hi = off + len;
	}
}

static void mark_size(struct node *n, off_t size)
{
	if (!n->dirty) {
		n->dirty = true;
		n->dirty_lo = n->dirty_hi = 0;
	}
	if (size < n->min_size)
		n->min_size = size;
}

/* The listing of directory dfd (borrowed) into a fresh array. */
static int list_dir(int dfd, struct dent **out, size_t *out_len)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dent *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				abort();
		}
		v[len].name = strdup(de->d_name);
		v[len].ino = st.st_ino;
		v[len].type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
		len++;
	}
	closedir(d);
	*out = v;
	*out_len = len;
	return 0;
}

/* Before a change of the directory holding path: its durable listing. */
static int dir_cow_of(const char *path)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", rel(path));
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), ".");
	int dfd = openat(g.live_fd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(dfd, &st) ? -errno : 0;
	if (!rc) {
		struct node *n = node_get(st.st_ino);
		if (!n->has_snap) {
			rc = list_dir(dfd, &n->snap, &n->snap_len);
			n->has_snap = rc == 0;
		}
	}
	close(dfd);
	return rc;
}

/* Moves the entry at path (if any) into the grave, keeping its inode. */
static int bury(const char *path)
{
	char name[64];
	snprintf(name, sizeof(name), "%lu", ++g.grave_seq);
	int gfd = open(g.grave, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (gfd < 0)
		return -errno;
	int rc = renameat(g.live_fd, rel(path), gfd, name) ? -errno : 0;
	close(gfd);
	return rc == -ENOENT ? 0 : rc;
}

/* True if the directory at path has no entries (or cannot be listed). */
static bool dir_is_empty(const char *path)
{
	int dfd = openat(g.live_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return true;
	struct dent *v;
	size_t len;
	int rc = list_dir(dfd, &v, &len);
	close(dfd);
	if (rc)
		return true;
	for (size_t i = 0; i < len; i++)
		free(v[i].name);
	free(v);
	return len == 0;
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (fi)
		return fstat((int)fi->fh, st) ? -errno : 0;
	return fstatat(g.live_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int pc_readlink(const char *path, char *buf, size_t size)
{
	ssize_t r = readlinkat(g.live_fd, rel(path), buf, size - 1);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	return 0;
}

static int pc_mkdir(const char *path, mode_t mode)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(path);
	if (!rc)
		rc = mkdirat(g.live_fd, rel(path), mode) ? -errno : 0;
	if (!rc) {
		/* A new directory is empty in every durable sense. */
		struct stat st;
		if (!fstatat(g.live_fd, rel(path), &st, 0)) {
			struct node *n = node_get(st.st_ino);
			snap_free(n);
			n->has_snap = true;
		}
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_unlink(const char *path)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(path);
	if (!rc) {
		struct stat st;
		rc = fstatat(g.live_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
		if (!rc && S_ISDIR(st.st_mode))
			rc = -EISDIR;
	}
	if (!rc)
		rc = bury(path);
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_rmdir(const char *path)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(path);
	struct stat st;
	if (!rc)
		rc = fstatat(g.live_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	if (!rc && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (!rc && !dir_is_empty(path))
		rc = -ENOTEMPTY;
	if (!rc)
		rc = bury(path);
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_symlink(const char *target, const char *path)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(path);
	if (!rc)
		rc = symlinkat(target, g.live_fd, rel(path)) ? -errno : 0;
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(from);
	if (!rc)
		rc = dir_cow_of(to);
	struct stat sf, st;
	if (!rc)
		rc = fstatat(g.live_fd, rel(from), &sf, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
	if (!rc && !fstatat(g.live_fd, rel(to), &st, AT_SYMLINK_NOFOLLOW)) {
		if (flags & RENAME_NOREPLACE)
			rc = -EEXIST;
		else if (st.st_ino == sf.st_ino)
			rc = 0; /* the same inode: rename does nothing */
		else if (S_ISDIR(sf.st_mode) != S_ISDIR(st.st_mode))
			rc = S_ISDIR(st.st_mode) ? -EISDIR : -ENOTDIR;
		else if (S_ISDIR(st.st_mode))
			rc = dir_is_empty(to) ? bury(to) : -ENOTEMPTY;
		else
			rc = bury(to);
	}
	if (!rc)
		rc = renameat(g.live_fd, rel(from), g.live_fd, rel(to)) ? -errno : 0;
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_link(const char *from, const char *to)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(to);
	if (!rc)
		rc = linkat(g.live_fd, rel(from), g.live_fd, rel(to), 0) ? -errno : 0;
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fi)
		return fchmod((int)fi->fh, mode) ? -errno : 0;
	return fchmodat(g.live_fd, rel(path), mode, 0) ? -errno : 0;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	if (fi)
		return fchown((int)fi->fh, uid, gid) ? -errno : 0;
	return fchownat(g.live_fd, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd = fi ? (int)fi->fh : openat(g.live_fd, rel(path), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&g.lock);
	struct node *n;
	int rc = file_cow(fd, &n);
	if (!rc)
		rc = ftruncate(fd, size) ? -errno : 0;
	if (!rc)
		mark_size(n, size);
	pthread_mutex_unlock(&g.lock);
	if (!fi)
		close(fd);
	return rc;
}

static int pc_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (fi)
		return futimens((int)fi->fh, tv) ? -errno : 0;
	return utimensat(g.live_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

/* Write-only opens become read-write: the durable copy is read from the fd. */
static int rw_flags(int flags)
{
	flags &= ~O_NOFOLLOW;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags;
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	pthread_mutex_lock(&g.lock);
	int rc = dir_cow_of(path);
	int fd = -1;
	if (!rc) {
		fd = openat(g.live_fd, rel(path), rw_flags(fi->flags) | O_CREAT | O_CLOEXEC, mode);
		rc = fd < 0 ? -errno : 0;
	}
	if (!rc) {
		struct node *n;
		/* A new file's durable copy is empty; an existing one's is
		 * what it holds (O_TRUNC then comes as a truncate). */
		rc = file_cow(fd, &n);
		if (rc)
			close(fd);
		else
			fi->fh = (uint64_t)fd;
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_open(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(g.live_fd, rel(path), rw_flags(fi->flags) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fi->flags & O_TRUNC) {
		pthread_mutex_lock(&g.lock);
		struct node *n;
		if (!file_cow(fd, &n))
			mark_size(n, 0);
		pthread_mutex_unlock(&g.lock);
	}
	fi->fh = (uint64_t)fd;
	return 0;
}

static int pc_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	ssize_t r = pread((int)fi->fh, buf, size, off);
	return r < 0 ? -errno : (int)r;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	int fd = (int)fi->fh;
	pthread_mutex_lock(&g.lock);
	struct node *n;
	int rc = file_cow(fd, &n);
	if (!rc) {
		if (fi->flags & O_APPEND) {
			struct stat st;
			off = fstat(fd, &st) ? 0 : st.st_size;
		}
		ssize_t w = pwrite(fd, buf, size, off);
		if (w < 0)
			rc = -errno;
		else {
			mark_written(n, off, w);
			rc = (int)w;
		}
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return fstatvfs(g.live_fd, sv) ? -errno : 0;
}

static int pc_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

/* fsync and fdatasync: the file's durable copy becomes what it holds. */
static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	int fd = (int)fi->fh;
	pthread_mutex_lock(&g.lock);
	struct stat st;
	int rc = fstat(fd, &st) ? -errno : 0;
	struct node *n = rc ? NULL : node_find(st.st_ino);
	if (n && n->has_store && n->dirty) {
		char sp[PATH_MAX + 32];
		store_path(sp, sizeof(sp), st.st_ino);
		int sfd = open(sp, O_WRONLY | O_CLOEXEC);
		rc = sfd < 0 ? -errno : 0;
		if (!rc) {
			struct stat ss;
			off_t hi = n->dirty_hi < st.st_size ? n->dirty_hi : st.st_size;
			if (fstat(sfd, &ss) ||
			    (n->min_size < ss.st_size && ftruncate(sfd, n->min_size)) ||
			    ftruncate(sfd, st.st_size))
				rc = -errno;
			if (!rc && hi > n->dirty_lo)
				rc = copy_range(fd, sfd, n->dirty_lo, hi - n->dirty_lo);
			close(sfd);
		}
		if (!rc) {
			n->dirty = false;
			n->min_size = st.st_size;
		}
	}
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)path;
	int fd = (int)fi->fh;
	pthread_mutex_lock(&g.lock);
	struct node *n;
	int rc = file_cow(fd, &n);
	if (!rc)
		rc = fallocate(fd, mode, off, len) ? -errno : 0;
	/* Only the size can change (KEEP_SIZE aside): preallocated blocks
	 * read as zeros, so the content only grows by zeros. */
	if (!rc)
		mark_written(n, off, len);
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(g.live_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)path;
	(void)off;
	(void)flags;
	struct dent *v;
	size_t len;
	int rc = list_dir((int)fi->fh, &v, &len);
	if (rc)
		return rc;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < len; i++) {
		fill(buf, v[i].name, NULL, 0, 0);
		free(v[i].name);
	}
	free(v);
	return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

/* fsync of a directory: its durable listing becomes what it lists. */
static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	pthread_mutex_lock(&g.lock);
	struct stat st;
	int rc = fstat((int)fi->fh, &st) ? -errno : 0;
	struct node *n = rc ? NULL : node_find(st.st_ino);
	if (n && n->has_snap)
		snap_free(n); /* the live listing is the durable one again */
	pthread_mutex_unlock(&g.lock);
	return rc;
}

static int pc_access(const char *path, int mask)
{
	return faccessat(g.live_fd, rel(path), mask, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static sigset_t usr1; /* SIGUSR1, blocked in every thread */
static void *checkpoint_thread(void *arg);

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* No caching of attributes or names: every change passes here. */
	cfg->use_ino = 1;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* Here, after fuse_main may have forked into the background. */
	pthread_t th;
	if (pthread_create(&th, NULL, checkpoint_thread, &usr1))
		fprintf(stderr, "powercut_fs: no checkpoint thread\n");
	return NULL;
}

static const struct fuse_operations pc_ops = {
	.init = pc_init,
	.getattr = pc_getattr,
	.readlink = pc_readlink,
	.mkdir = pc_mkdir,
	.unlink = pc_unlink,
	.rmdir = pc_rmdir,
	.symlink = pc_symlink,
	.rename = pc_rename,
	.link = pc_link,
	.chmod = pc_chmod,
	.chown = pc_chown,
	.truncate = pc_truncate,
	.open = pc_open,
	.read = pc_read,
	.write = pc_write,
	.statfs = pc_statfs,
	.release = pc_release,
	.fsync = pc_fsync,
	.opendir = pc_opendir,
	.readdir = pc_readdir,
	.releasedir = pc_releasedir,
	.fsyncdir = pc_fsyncdir,
	.access = pc_access,
	.create = pc_create,
	.utimens = pc_utimens,
	.fallocate = pc_fallocate,
};

/* ---- The cut: BACKING/live rebuilt from what is durable. ---- */

/* Where each inode of live/ and grave/ can be found (first path seen). */
struct where {
	ino_t ino;
	char *path;
	char *made; /* its path in the new tree, once made (hard links) */
};
static struct where *wh;
static size_t wh_len, wh_cap;

static int where_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	for (size_t i = 0; i < wh_len; i++)
		if (wh[i].ino == st->st_ino)
			return 0;
	if (wh_len == wh_cap) {
		wh_cap = wh_cap ? wh_cap * 2 : 256;
		wh = realloc(wh, wh_cap * sizeof(*wh));
		if (!wh)
			abort();
	}
	wh[wh_len++] = (struct where){.ino = st->st_ino, .path = strdup(path)};
	return 0;
}

static struct where *where_of(ino_t ino)
{
	for (size_t i = 0; i < wh_len; i++)
		if (wh[i].ino == ino)
			return &wh[i];
	return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		fprintf(stderr, "powercut_fs: remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static unsigned long lost_files, lost_dirs;

/* A path in the tree being built (BACKING/new/...) as the mount shows it. */
static const char *shown(const char *path)
{
	const char *p = path + strlen(g.backing) + strlen("/new");
	return *p ? p : "/";
}

/* Makes dir ino (found at src) at dst with its durable entries. */
static int rebuild_dir(ino_t ino, const char *dst)
{
	struct node *n = node_find(ino);
	struct where *w = where_of(ino);
	struct dent *v;
	size_t len;
	bool owned = false;
	if (n && n->has_snap) {
		v = n->snap;
		len = n->snap_len;
	} else {
		if (!w)
			return -ENOENT;
		int dfd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		int rc = list_dir(dfd, &v, &len);
		close(dfd);
		if (rc)
			return rc;
		owned = true;
	}
	int rc = 0;
	for (size_t i = 0; i < len && !rc; i++) {
		char to[PATH_MAX];
		snprintf(to, sizeof(to), "%s/%s", dst, v[i].name);
		struct where *cw = where_of(v[i].ino);
		struct stat st;
		if (!cw || lstat(cw->path, &st)) {
			fprintf(stderr, "powercut_fs: inode %llu of %s not found\n",
				(unsigned long long)v[i].ino, to);
			rc = -EIO;
			break;
		}
		if (cw->made) {
			if (v[i].type != DT_DIR && link(cw->made, to))
				rc = -errno;
			continue;
		}
		cw->made = strdup(to);
		if (v[i].type == DT_DIR) {
			if (mkdir(to, st.st_mode & 07777))
				rc = -errno;
			else
				rc = rebuild_dir(v[i].ino, to);
		} else if (v[i].type == DT_LNK) {
			char target[PATH_MAX];
			ssize_t r = readlink(cw->path, target, sizeof(target) - 1);
			if (r < 0)
				rc = -errno;
			else {
				target[r] = '\0';
				rc = symlink(target, to) ? -errno : 0;
			}
		} else {
			struct node *cn = node_find(v[i].ino);
			char sp[PATH_MAX + 32];
			const char *src = cw->path;
			if (cn && cn->has_store) {
				store_path(sp, sizeof(sp), v[i].ino);
				src = sp;
				if (cn->dirty) {
					lost_files++;
					fprintf(stderr,
						"powercut_fs: unsynced writes dropped: %s\n",
						shown(to));
				}
			}
			int sfd = open(src, O_RDONLY | O_CLOEXEC);
			rc = sfd < 0 ? -errno : copy_file(sfd, to, st.st_mode & 07777);
			if (sfd >= 0)
				close(sfd);
		}
		if (!rc && lchown(to, st.st_uid, st.st_gid))
			rc = -errno;
	}
	if (owned) {
		for (size_t i = 0; i < len; i++)
			free(v[i].name);
		free(v);
	}
	if (n && n->has_snap) {
		lost_dirs++;
		fprintf(stderr, "powercut_fs: unsynced entries dropped in %s\n", shown(dst));
	}
	return rc;
}

static int cut(void)
{
	char fresh[PATH_MAX + 8], old[PATH_MAX + 8];
	snprintf(fresh, sizeof(fresh), "%s/new", g.backing);
	snprintf(old, sizeof(old), "%s/old", g.backing);
	rm_tree(fresh);
	rm_tree(old);
	wh_len = 0;
	if (nftw(g.live, where_add, 32, FTW_PHYS) || nftw(g.grave, where_add, 32, FTW_PHYS))
		return -errno;
	struct stat st;
	if (stat(g.live, &st) || mkdir(fresh, st.st_mode & 07777))
		return -errno;
	int rc = rebuild_dir(st.st_ino, fresh);
	if (rc)
		return rc;
	if (rename(g.live, old) || rename(fresh, g.live))
		return -errno;
	rm_tree(old);
	rm_tree(g.grave);
	rm_tree(g.store);
	fprintf(stderr,
		"powercut_fs: cut: %lu files lost unsynced writes, %lu directories unsynced changes\n",
		lost_files, lost_dirs);
	return 0;
}

/* SIGUSR1: everything durable now. A thread of its own waits for it. */
static void *checkpoint_thread(void *arg)
{
	sigset_t *set = arg;
	for (;;) {
		int sig;
		if (sigwait(set, &sig))
			continue;
		pthread_mutex_lock(&g.lock);
		nodes_clear();
		g.checkpoints++;
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/checkpoints", g.backing);
		FILE *f = fopen(p, "a");
		if (f) {
			fprintf(f, "%lu\n", g.checkpoints);
			fclose(f);
		}
		pthread_mutex_unlock(&g.lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s BACKING MOUNTPOINT [fuse options]\n", argv[0]);
		return 2;
	}
	if (!realpath(argv[1], g.backing)) {
		fprintf(stderr, "powercut_fs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(g.live, sizeof(g.live), "%s/live", g.backing);
	snprintf(g.store, sizeof(g.store), "%s/store", g.backing);
	snprintf(g.grave, sizeof(g.grave), "%s/grave", g.backing);
	rm_tree(g.store);
	rm_tree(g.grave);
	mkdir(g.live, 0755);
	if (mkdir(g.store, 0700) || mkdir(g.grave, 0700)) {
		fprintf(stderr, "powercut_fs: %s: %s\n", g.backing, strerror(errno));
		return 1;
	}
	g.live_fd = open(g.live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g.live_fd < 0) {
		fprintf(stderr, "powercut_fs: %s: %s\n", g.live, strerror(errno));
		return 1;
	}
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	umask(0);
	char **fargv = calloc((size_t)argc, sizeof(*fargv));
	if (!fargv)
		return 1;
	fargv[0] = argv[0];
	for (int i = 2; i < argc; i++)
		fargv[i - 1] = argv[i];
	fargv[argc - 1] = NULL;
	int rc = fuse_main(argc - 1, fargv, &pc_ops, NULL);
	free(fargv);
	pthread_mutex_lock(&g.lock);
	close(g.live_fd);
	int crc = cut();
	if (crc) {
		fprintf(stderr, "powercut_fs: cut failed: %s\n", strerror(-crc));
		return 1;
	}
	return rc;
}
