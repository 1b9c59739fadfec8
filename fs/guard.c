/*
 * The mount's guardian: a tiny process omnifsd forks at start that aborts
 * the FUSE connection when the daemon dies with its filesystem mounted.
 *
 * Why a process, and why it must abort: the daemon's invalidation thread
 * tells the kernel about other nodes' changes (fuse_lowlevel_notify_inval_*).
 * For an entry, the kernel first takes the parent directory's lock, which a
 * local rename or create in that directory holds while it waits for the
 * daemon's answer. Kill the daemon (-9, a crash, the OOM killer) at that
 * moment and the thread waits for the lock in the kernel, uninterruptibly
 * and forever: the answer will never come, and the connection is aborted
 * (which would fail the rename and free the lock) only when the daemon's last
 * descriptor of /dev/fuse closes, that is when its last thread has exited.
 * So the dead daemon never exits, keeps its RocksDB locks, and every program
 * touching the mount hangs. No thread of the dying process can break this
 * (the kernel does not run it again); only an abort from outside can, by
 * writing to /sys/fs/fuse/connections/<N>/abort (fusectl, mounted here if
 * it is not). The guardian is that outside: it is forked before the daemon
 * opens anything (it holds no data dir lock, no socket, no /dev/fuse, which
 * would keep the connection alive), learns through a pipe when the mount is
 * up and when it was cleanly unmounted, and watches the daemon: the pipe's
 * end (the process is gone), PR_SET_PDEATHSIG (the main thread exited) and,
 * every GUARD__POLL_MS, /proc/<pid>/status (a SIGKILL pending for the whole
 * process, a core dump in progress: a dumping thread also waits for the
 * others to exit first). The abort fails every request in flight with
 * ENOTCONN and every later one too, the stuck thread gets its lock and
 * exits, and the daemon with it.
 *
 * The guardian does not unmount: a dead mount answers ENOTCONN, loudly,
 * where an empty mountpoint would let programs write to the local disk
 * under it, hidden by the next mount. The next start of the node (or the
 * unit's ExecStopPost) takes the dead mount away: guard_release_stale.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"

#define GUARD__POLL_MS	     250
#define GUARD__FUSECTL	     "/sys/fs/fuse/connections"
#define GUARD__FUSECTL_MAGIC 0x65735543 /* FUSE_CTL_SUPER_MAGIC */
#define GUARD__FSTYPE	     "fuse.omnifs"

/* One mount's device, as /proc/self/mountinfo shows it. */
struct mnt_dev {
	unsigned major, minor;
};

/*
 * mountpoint as the kernel names it in mountinfo: its folder resolved by
 * realpath(3), trailing slashes dropped. The last part is not resolved: that
 * would stat the mount, which hangs when it is wedged. 0 or -errno.
 */
static int canonical(const char *mountpoint, char *out, size_t cap)
{
	char mp[PATH_MAX], dir[PATH_MAX];
	snprintf(mp, sizeof(mp), "%s", mountpoint);
	size_t len = strlen(mp);
	while (len > 1 && mp[len - 1] == '/')
		mp[--len] = '\0';
	char *slash = strrchr(mp, '/');
	const char *base = slash ? slash + 1 : mp;
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == mp)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - mp), mp);
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return -errno;
	int n = snprintf(out, cap, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *out = s;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/*
 * The topmost mount on mountpoint, if it is an omnifs mount: 1 and *dev, 0
 * if the topmost is something else or there is none, -errno. Reads only
 * /proc/self/mountinfo: a stat(2) of a wedged mount would hang.
 */
static int omnifs_mount_at(const char *mountpoint, struct mnt_dev *dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options... - fstype source super */
		unsigned maj, min;
		char mp[PATH_MAX + 1], *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*u %*u %u:%u %*s %4096s", &maj, &min, mp) != 3)
			continue;
		unescape(mp);
		if (strcmp(mp, mountpoint) != 0)
			continue;
		char fstype[64];
		if (sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		/* Later lines are mounted on top of earlier ones. */
		found = strcmp(fstype, GUARD__FSTYPE) == 0;
		dev->major = maj;
		dev->minor = min;
	}
	free(line);
	fclose(f);
	return found;
}

/* Aborts FUSE connection dev (its fusectl name is the minor of the mount's
 * device), mounting fusectl first if it is not mounted. 0 or -errno. */
static int abort_connection(const struct mnt_dev *dev)
{
	char path[64];
	snprintf(path, sizeof(path), GUARD__FUSECTL "/%u/abort", dev->minor);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		struct statfs sf;
		if (statfs(GUARD__FUSECTL, &sf) == 0 && sf.f_type != GUARD__FUSECTL_MAGIC &&
		    mount("fusectl", GUARD__FUSECTL, "fusectl", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) != 0)
			return -errno;
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	int rc = write(fd, "1", 1) == 1 ? 0 : -errno;
	close(fd);
	return rc;
}

/* True if the process whose /proc directory is procfd is dying or gone: its
 * main thread has exited, a SIGKILL is pending for the whole process, or it
 * dumps core. A live daemon never shows any of these. */
static bool proc_dying(int procfd)
{
	int fd = openat(procfd, "status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ESRCH || errno == ENOENT;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	bool dying = false;
	for (char *l = buf; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (strncmp(l, "State:\t", 7) == 0)
			dying |= l[7] == 'Z' || l[7] == 'X';
		else if (strncmp(l, "ShdPnd:\t", 8) == 0)
			dying |= (strtoull(l + 8, NULL, 16) >> (SIGKILL - 1)) & 1;
		else if (strncmp(l, "CoreDumping:\t", 13) == 0)
			dying |= l[13] == '1';
	}
	return dying;
}

static void on_parent_death(int sig)
{
	(void)sig; /* only interrupts poll(2) */
}

/* The guardian's life; never returns. */
static void guard_main(int rfd, pid_t daemon, const char *mountpoint)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)daemon);
	int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool mounted = false, aborted = false;
	struct mnt_dev dev = {0, 0};
	for (;;) {
		struct pollfd p = {.fd = rfd, .events = POLLIN};
		if (poll(&p, 1, GUARD__POLL_MS) > 0) {
			char buf[16];
			ssize_t n = read(rfd, buf, sizeof(buf));
			if (n == 0)
				break; /* every thread of the daemon is gone */
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] == 'M') {
					mounted = omnifs_mount_at(mountpoint, &dev) == 1;
					if (!mounted)
						log_warn("omnifsd: guard: no omnifs mount on %s in "
							 "/proc/self/mountinfo: not guarding it",
							 mountpoint);
				} else if (buf[i] == 'U')
					mounted = false;
			}
		}
		if (!mounted || aborted || !(procfd < 0 || proc_dying(procfd)))
			continue;
		aborted = true;
		int rc = abort_connection(&dev);
		if (rc == 0)
			log_warn(
				"omnifsd: guard: the daemon (pid %d) is dying with %s mounted: "
				"aborted its FUSE connection %u (programs on the mount get ENOTCONN)",
				(int)daemon, mountpoint, dev.minor);
		else
			log_err("omnifsd: guard: the daemon (pid %d) is dying with %s mounted, "
				"and aborting its FUSE connection %u failed: %s",
				(int)daemon, mountpoint, dev.minor, strerror(-rc));
	}
	if (mounted && !aborted)
		log_warn("omnifsd: guard: the daemon (pid %d) died with %s mounted; the mount "
			 "is dead until the node starts again",
			 (int)daemon, mountpoint);
	_exit(0); /* nothing to flush; no atexit handlers (sanitizers') in a child */
}

int guard_start(struct guard *g, const char *mountpoint)
{
	g->pid = 0;
	g->fd = -1;
	char mp[PATH_MAX];
	int rc = canonical(mountpoint, mp, sizeof(mp));
	if (rc)
		return rc;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	pid_t daemon = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		/* The main thread's exit (the daemon's death) wakes us at once. */
		struct sigaction sa = {.sa_handler = on_parent_death};
		sigaction(SIGUSR1, &sa, NULL);
		prctl(PR_SET_PDEATHSIG, SIGUSR1);
		/* Stopping the daemon (a terminal's Ctrl-C, systemd's stop) is
		 * not ours to obey: we leave with it, at the pipe's end. */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(p[1]);
		int rfd = p[0];
		if (rfd > 3) {
			close_range(3, (unsigned)rfd - 1, 0);
		}
		close_range((unsigned)rfd + 1, ~0u, 0);
		if (chdir("/") != 0) {
			/* not holding the daemon's folder is a nicety */
		}
		prctl(PR_SET_NAME, "omnifsd-guard");
		if (getppid() != daemon)
			kill(getpid(), SIGUSR1); /* died before PDEATHSIG was set */
		guard_main(rfd, daemon, mp);
	}
	close(p[0]);
	g->pid = pid;
	g->fd = p[1];
	return 0;
}

static void tell(struct guard *g, char c)
{
	if (g->fd >= 0 && write(g->fd, &c, 1) != 1)
		log_warn("omnifsd: cannot reach the mount's guardian: %s", strerror(errno));
}

void guard_mounted(struct guard *g)
{
	tell(g, 'M');
}

void guard_unmounted(struct guard *g)
{
	tell(g, 'U');
}

void guard_close(struct guard *g)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

/* The pid of a process holding a write lock on path (RocksDB's LOCK), 0 if
 * none, -errno. */
static pid_t lock_holder(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int rc = fcntl(fd, F_GETLK, &fl);
	int e = errno;
	close(fd);
	if (rc != 0)
		return -e;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

/* The holder of either of data_dir's RocksDB locks, 0 if none. */
static pid_t data_dir_holder(const char *data_dir)
{
	static const char *const dbs[] = {"state", "log"};
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s/LOCK", data_dir, dbs[i]);
		pid_t pid = lock_holder(path);
		if (pid > 0)
			return pid;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int guard_release_stale(const char *mountpoint_arg, const char *data_dir, int wait_ms)
{
	struct mnt_dev dev;
	char mountpoint[PATH_MAX];
	int rc = canonical(mountpoint_arg, mountpoint, sizeof(mountpoint));
	if (rc == 0)
		rc = omnifs_mount_at(mountpoint, &dev);
	if (rc <= 0)
		return rc;
	pid_t holder = data_dir_holder(data_dir);
	if (holder > 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d", (int)holder);
		int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (procfd >= 0 && !proc_dying(procfd)) {
			close(procfd);
			log_notice("omnifsd: %s is mounted by a running omnifsd (pid %d)",
				   mountpoint, (int)holder);
			return -EBUSY;
		}
		rc = abort_connection(&dev);
		if (rc != 0 && rc != -ENOENT)
			log_err("omnifsd: cannot abort the FUSE connection %u of %s: %s", dev.minor,
				mountpoint, strerror(-rc));
		else
			log_warn("omnifsd: the previous daemon (pid %d) is dying with %s mounted: "
				 "aborted its FUSE connection %u",
				 (int)holder, mountpoint, dev.minor);
		uint64_t deadline = now_ms() + (uint64_t)wait_ms;
		while (procfd >= 0 && data_dir_holder(data_dir) == holder) {
			if (now_ms() >= deadline) {
				close(procfd);
				log_err("omnifsd: the previous daemon (pid %d) still holds %s after "
					"%d ms",
					(int)holder, data_dir, wait_ms);
				return -ETIMEDOUT;
			}
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		if (procfd >= 0)
			close(procfd);
	}
	/* The daemon is gone: the connection died with its last descriptor. */
	if (umount2(mountpoint, MNT_DETACH) != 0) {
		rc = -errno;
		log_err("omnifsd: cannot unmount the dead mount on %s: %s", mountpoint,
			strerror(-rc));
		return rc;
	}
	log_notice("omnifsd: unmounted the dead mount a previous daemon left on %s", mountpoint);
	return 0;
}
