/*
 * omnifs-fsbench: a filesystem benchmark that runs the same single-threaded
 * workloads on an omnifs mount and on a local directory (and, if given, a
 * third directory such as a plain FUSE passthrough's mount), in one run,
 * and prints one table with the ratios omnifs/local (and omnifs/passthrough).
 *
 *   omnifs-fsbench [-n FILES] [-m MIB] [-R OTHER_MOUNT] [-o small|large]
 *                  [-p PID,...] OMNIFS_DIR LOCAL_DIR [PASSTHROUGH_DIR]
 *
 * With -p (the daemons' pids), the CPU they use (user+system from
 * /proc/PID/stat, summed) over the omnifs create, rename and unlink loops is
 * printed per operation: what one change costs the cluster.
 *
 * Small files (FILES, default 2000, 4 KiB each), one phase per operation:
 *   create   open(O_CREAT|O_EXCL) + write 4 KiB + close, each syscall timed
 *            on its own as well as together;
 *   create (O_TRUNC)  open(O_CREAT|O_TRUNC) of a new name + write 4 KiB +
 *            close, open and close also on their own: how fopen(path, "w"), a shell's
 *            redirection and tar --overwrite create (omnifs commits such a
 *            file once, at close; O_EXCL, as cp and tar use it, needs the
 *            cluster's answer at open);
 *   stat     stat(2), once the kernel's 1 s attribute and entry caches of
 *            omnifs have expired for every file (so the daemon answers);
 *   read     open + read to EOF + close (the data was just written: warm);
 *   rename   rename(2) over an existing (empty) file;
 *   unlink   unlink(2).
 * Large file (MIB, default 256): open(O_CREAT|O_TRUNC), MIB writes of 1 MiB,
 * fsync, close, timed together (fsync so the local figure is the disk's, not
 * the page cache's); then sync and drop the page cache (needs root: without
 * it the table says so) and read it back in 1 MiB reads. With -R, the file is
 * also read through OTHER_MOUNT (another node's mount of the same cluster),
 * once its full size is visible there.
 *
 * Latencies are per syscall (CLOCK_MONOTONIC around each call); ops/s is the
 * number of operations over the time spent in them. Every read is checked
 * against what was written. Each target gets a fresh fsbench.PID directory,
 * removed at the end; after the omnifs workloads the benchmark waits (bounded)
 * until the filesystem has freed the unlinked files, so that work does not
 * spill into the next measurement. -o runs only one of the two workloads.
 * It asserts nothing about speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SMALL_LEN   4096
#define LARGE_CHUNK (1024 * 1024)

enum row {
	ROW_CREATE_OPEN,
	ROW_CREATE_WRITE,
	ROW_CREATE_CLOSE,
	ROW_CREATE,
	ROW_TRUNC_OPEN,
	ROW_TRUNC_CLOSE,
	ROW_CREATE_TRUNC,
	ROW_STAT,
	ROW_READ,
	ROW_RENAME,
	ROW_UNLINK,
	ROW_LARGE_WRITE,
	ROW_LARGE_READ,
	ROW_LARGE_READ_OTHER,
	ROW_COUNT,
};

static const char *const row_names[ROW_COUNT] = {
	[ROW_CREATE_OPEN] = "small  create: open(O_CREAT)",
	[ROW_CREATE_WRITE] = "small  create: write 4 KiB",
	[ROW_CREATE_CLOSE] = "small  create: close",
	[ROW_CREATE] = "small  create+write+close",
	[ROW_TRUNC_OPEN] = "small  O_TRUNC create: open",
	[ROW_TRUNC_CLOSE] = "small  O_TRUNC create: close",
	[ROW_CREATE_TRUNC] = "small  O_TRUNC create+write+close",
	[ROW_STAT] = "small  stat (caches expired)",
	[ROW_READ] = "small  open+read 4 KiB+close",
	[ROW_RENAME] = "small  rename over existing",
	[ROW_UNLINK] = "small  unlink",
	[ROW_LARGE_WRITE] = "large  write+fsync+close MiB/s",
	[ROW_LARGE_READ] = "large  read, cache dropped MiB/s",
	[ROW_LARGE_READ_OTHER] = "large  read via other node MiB/s",
};

/* One row of one target: latencies in seconds (owned), and for the large
 * rows the throughput. */
struct series {
	double *lat;
	size_t n, cap;
	double busy_s;
	double mib_s; /* large rows only; 0 when not measured */
	double cpu_s; /* the daemons' CPU over the row's loop (with -p); 0 if not measured */
};

struct target {
	const char *label;
	const char *dir;
	char work[4096]; /* DIR/fsbench.PID */
	bool cpu;	 /* measure the -p processes' CPU over its small rows */
	struct series rows[ROW_COUNT];
};

struct bench {
	unsigned files;
	unsigned large_mib;
	const char *other_mount;
	int pids[8]; /* -p: the daemons whose CPU the omnifs rows report */
	size_t n_pids;
	bool cache_dropped;
	bool cache_drop_failed;
	char small_buf[SMALL_LEN];
	char *large_buf; /* LARGE_CHUNK bytes, owned */
	char *read_buf;	 /* LARGE_CHUNK bytes, owned */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User+system CPU seconds the -p processes have used so far (0 without -p
 * or if one is gone). */
static double cpu_s(const struct bench *b)
{
	long hz = sysconf(_SC_CLK_TCK);
	double sum = 0;

	for (size_t i = 0; i < b->n_pids; i++) {
		char path[64], buf[1024];
		unsigned long ut = 0, st = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", b->pids[i]);
		f = fopen(path, "r");
		if (!f)
			return 0;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		/* After the command's closing parenthesis: state is field 3,
		 * utime and stime fields 14 and 15. */
		char *r = strrchr(buf, ')');
		if (!r || sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				 &st) != 2)
			return 0;
		sum += (double)(ut + st) / (double)hz;
	}
	return sum;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "omnifs-fsbench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void add(struct series *s, double lat)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		double *p = realloc(s->lat, cap * sizeof(*p));
		if (!p) {
			fprintf(stderr, "omnifs-fsbench: out of memory\n");
			exit(1);
		}
		s->lat = p;
		s->cap = cap;
	}
	s->lat[s->n++] = lat;
	s->busy_s += lat;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile; sorts s->lat in place. */
static double percentile(struct series *s, double q)
{
	size_t k;

	qsort(s->lat, s->n, sizeof(*s->lat), cmp_double);
	k = (size_t)(q * (double)s->n);
	if ((double)k < q * (double)s->n)
		k++;
	return s->lat[k ? k - 1 : 0];
}

static void path_of(char *out, size_t cap, const char *dir, const char *name, unsigned i)
{
	if ((size_t)snprintf(out, cap, "%s/%s%u", dir, name, i) >= cap) {
		fprintf(stderr, "omnifs-fsbench: path too long under %s\n", dir);
		exit(1);
	}
}

static void stamp(char *buf, uint64_t v)
{
	memcpy(buf, &v, sizeof(v));
}

static bool stamped(const char *buf, uint64_t v)
{
	return memcmp(buf, &v, sizeof(v)) == 0;
}

/* Waits until DIR's filesystem has as many free inodes as FREE_INODES (the
 * count before the workload): omnifs frees an unlinked file's data 2 s after
 * its last use, by a transaction of its own. Bounded; says so if it gives up. */
static void wait_freed(const char *dir, unsigned long free_inodes)
{
	double deadline = now_s() + 30;
	struct statvfs sv;

	while (now_s() < deadline) {
		if (statvfs(dir, &sv) != 0)
			die("statvfs", dir);
		if (sv.f_ffree >= free_inodes)
			return;
		usleep(50 * 1000);
	}
	fprintf(stderr, "omnifs-fsbench: note: %s had not freed every inode after 30 s\n", dir);
}

/* Creates b->files files PREFIX<i> with flags (| O_WRONLY), writes 4 KiB
 * into each and closes it, timing the open, the write, the close and the
 * whole into rows[0..3] (ROW_COUNT: not timed), and the daemons' CPU into
 * the whole's row. */
static void create_files(struct bench *b, struct target *t, const char *prefix, int flags,
			 const enum row rows[4])
{
	char p[4200];
	double c0 = t->cpu ? cpu_s(b) : 0;
	for (unsigned i = 0; i < b->files; i++) {
		path_of(p, sizeof(p), t->work, prefix, i);
		stamp(b->small_buf, i);
		double t0 = now_s();
		int fd = open(p, flags | O_WRONLY, 0644);
		double t1 = now_s();
		if (fd < 0)
			die("create", p);
		if (write(fd, b->small_buf, SMALL_LEN) != SMALL_LEN)
			die("write", p);
		double t2 = now_s();
		if (close(fd) != 0)
			die("close", p);
		double t3 = now_s(), lat[4] = {t1 - t0, t2 - t1, t3 - t2, t3 - t0};
		for (int r = 0; r < 4; r++)
			if (rows[r] != ROW_COUNT)
				add(&t->rows[rows[r]], lat[r]);
	}
	if (t->cpu)
		t->rows[rows[3]].cpu_s = cpu_s(b) - c0;
}

static void small_workload(struct bench *b, struct target *t)
{
	char p[4200], q[4200];
	ssize_t got;
	double t0, t1, c0, end_create, wait_s;
	unsigned i;
	int fd;

	create_files(b, t, "f", O_CREAT | O_EXCL,
		     (enum row[]){ROW_CREATE_OPEN, ROW_CREATE_WRITE, ROW_CREATE_CLOSE, ROW_CREATE});
	create_files(b, t, "t", O_CREAT | O_TRUNC,
		     (enum row[]){ROW_TRUNC_OPEN, ROW_COUNT, ROW_TRUNC_CLOSE, ROW_CREATE_TRUNC});
	end_create = now_s();

	/* omnifs hands the kernel 1 s attribute and entry timeouts: past them a
	 * stat goes to the daemon, which is the case worth measuring. */
	wait_s = end_create + 1.1 - now_s();
	if (wait_s > 0)
		usleep((useconds_t)(wait_s * 1e6));
	for (i = 0; i < b->files; i++) {
		struct stat st;

		path_of(p, sizeof(p), t->work, "f", i);
		t0 = now_s();
		if (stat(p, &st) != 0)
			die("stat", p);
		t1 = now_s();
		if (st.st_size != SMALL_LEN) {
			fprintf(stderr, "omnifs-fsbench: %s has size %lld, wrote %d\n", p,
				(long long)st.st_size, SMALL_LEN);
			exit(1);
		}
		add(&t->rows[ROW_STAT], t1 - t0);
	}

	for (i = 0; i < b->files; i++) {
		size_t total = 0;

		path_of(p, sizeof(p), t->work, "f", i);
		t0 = now_s();
		fd = open(p, O_RDONLY);
		if (fd < 0)
			die("open", p);
		while ((got = read(fd, b->read_buf + total, LARGE_CHUNK - total)) > 0)
			total += (size_t)got;
		if (got < 0)
			die("read", p);
		if (close(fd) != 0)
			die("close", p);
		t1 = now_s();
		if (total != SMALL_LEN || !stamped(b->read_buf, i) ||
		    memcmp(b->read_buf + 8, b->small_buf + 8, SMALL_LEN - 8) != 0) {
			fprintf(stderr,
				"omnifs-fsbench: %s: read %zu bytes, not what was written\n", p,
				total);
			exit(1);
		}
		add(&t->rows[ROW_READ], t1 - t0);
	}

	/* The files renamed over: empty, made outside the timings. */
	for (i = 0; i < b->files; i++) {
		path_of(q, sizeof(q), t->work, "g", i);
		fd = open(q, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0)
			die("create", q);
		if (close(fd) != 0)
			die("close", q);
	}
	c0 = t->cpu ? cpu_s(b) : 0;
	for (i = 0; i < b->files; i++) {
		path_of(p, sizeof(p), t->work, "f", i);
		path_of(q, sizeof(q), t->work, "g", i);
		t0 = now_s();
		if (rename(p, q) != 0)
			die("rename", p);
		t1 = now_s();
		add(&t->rows[ROW_RENAME], t1 - t0);
	}
	if (t->cpu)
		t->rows[ROW_RENAME].cpu_s = cpu_s(b) - c0;
	c0 = t->cpu ? cpu_s(b) : 0;
	for (i = 0; i < b->files; i++) {
		path_of(q, sizeof(q), t->work, "g", i);
		t0 = now_s();
		if (unlink(q) != 0)
			die("unlink", q);
		t1 = now_s();
		add(&t->rows[ROW_UNLINK], t1 - t0);
	}
	if (t->cpu)
		t->rows[ROW_UNLINK].cpu_s = cpu_s(b) - c0;
	for (i = 0; i < b->files; i++) { /* the O_TRUNC creates' files, untimed */
		path_of(p, sizeof(p), t->work, "t", i);
		if (unlink(p) != 0)
			die("unlink", p);
	}
}

/* sync, then drop the page cache (dentries and inodes too): the read that
 * follows comes from the disk, for omnifs through RocksDB. Needs root. */
static void drop_caches(struct bench *b)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2) {
		b->cache_drop_failed = true;
	} else {
		b->cache_dropped = true;
	}
	if (fd >= 0)
		close(fd);
}

/* Reads PATH in 1 MiB reads into ROW, checking each chunk's stamp. */
static void large_read(struct bench *b, const char *path, struct series *row)
{
	uint64_t chunk = 0;
	double t0, t1, start;
	ssize_t got;
	int fd;

	start = now_s();
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open", path);
	for (;;) {
		size_t total = 0;

		t0 = now_s();
		while (total < LARGE_CHUNK &&
		       (got = read(fd, b->read_buf + total, LARGE_CHUNK - total)) > 0)
			total += (size_t)got;
		t1 = now_s();
		if (got < 0)
			die("read", path);
		if (total == 0)
			break;
		if (total != LARGE_CHUNK || !stamped(b->read_buf, chunk) ||
		    memcmp(b->read_buf + 8, b->large_buf + 8, LARGE_CHUNK - 8) != 0) {
			fprintf(stderr,
				"omnifs-fsbench: %s: MiB %llu differs from what was written\n",
				path, (unsigned long long)chunk);
			exit(1);
		}
		add(row, t1 - t0);
		chunk++;
	}
	if (close(fd) != 0)
		die("close", path);
	if (chunk != b->large_mib) {
		fprintf(stderr, "omnifs-fsbench: %s: read %llu MiB, wrote %u\n", path,
			(unsigned long long)chunk, b->large_mib);
		exit(1);
	}
	row->mib_s = (double)b->large_mib / (now_s() - start);
}

/* Polls PATH until it has SIZE bytes (it is being replicated there). */
static void wait_size(const char *path, off_t size)
{
	double deadline = now_s() + 60;
	struct stat st;

	while (now_s() < deadline) {
		if (stat(path, &st) == 0 && st.st_size == size)
			return;
		usleep(50 * 1000);
	}
	fprintf(stderr, "omnifs-fsbench: %s did not reach %lld bytes within 60 s\n", path,
		(long long)size);
	exit(1);
}

static void large_workload(struct bench *b, struct target *t, bool other)
{
	struct series *w = &t->rows[ROW_LARGE_WRITE];
	char p[4200];
	double t0, t1, start;
	unsigned k;
	int fd;

	path_of(p, sizeof(p), t->work, "large", 0);
	start = now_s();
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		die("create", p);
	for (k = 0; k < b->large_mib; k++) {
		stamp(b->large_buf, k);
		t0 = now_s();
		if (write(fd, b->large_buf, LARGE_CHUNK) != LARGE_CHUNK)
			die("write", p);
		t1 = now_s();
		add(w, t1 - t0);
	}
	if (fsync(fd) != 0)
		die("fsync", p);
	if (close(fd) != 0)
		die("close", p);
	w->mib_s = (double)b->large_mib / (now_s() - start);

	drop_caches(b);
	large_read(b, p, &t->rows[ROW_LARGE_READ]);

	if (other) {
		char o[4200];
		char *base = strrchr(t->work, '/');

		if ((size_t)snprintf(o, sizeof(o), "%s%s/large0", b->other_mount, base) >=
		    sizeof(o)) {
			fprintf(stderr, "omnifs-fsbench: path too long under %s\n", b->other_mount);
			exit(1);
		}
		wait_size(o, (off_t)b->large_mib * LARGE_CHUNK);
		drop_caches(b);
		large_read(b, o, &t->rows[ROW_LARGE_READ_OTHER]);
	}
	if (unlink(p) != 0)
		die("unlink", p);
}

static void fmt_rate(char *out, size_t cap, struct series *s, bool large)
{
	if (large ? s->mib_s <= 0 : s->n == 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.0f", large ? s->mib_s : (double)s->n / s->busy_s);
}

static void fmt_lat(char *out, size_t cap, struct series *s, double q)
{
	if (s->n == 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.1f", percentile(s, q) * 1e6);
}

static void print_table(struct bench *b, struct target *t, size_t n_targets)
{
	char c[3][32];
	size_t r, k;

	printf("%-33s", "");
	for (k = 0; k < n_targets; k++)
		printf(" | %-28s", t[k].label);
	printf(" |\n%-33s", "operation");
	for (k = 0; k < n_targets; k++)
		printf(" | %9s %8s %9s", "ops/s", "p50 us", "p99 us");
	for (k = 1; k < n_targets; k++)
		printf(" | %s/%s", t[0].label, t[k].label);
	printf("\n");
	for (r = 0; r < ROW_COUNT; r++) {
		bool large = r >= ROW_LARGE_WRITE;
		double v[3] = {0, 0, 0};

		if (t[0].rows[r].n == 0 && t[1].rows[r].n == 0)
			continue;
		printf("%-33s", row_names[r]);
		for (k = 0; k < n_targets; k++) {
			struct series *s = &t[k].rows[r];

			fmt_rate(c[0], sizeof(c[0]), s, large);
			fmt_lat(c[1], sizeof(c[1]), s, 0.50);
			fmt_lat(c[2], sizeof(c[2]), s, 0.99);
			printf(" | %9s %8s %9s", c[0], c[1], c[2]);
			v[k] = large ? s->mib_s : (s->n ? (double)s->n / s->busy_s : 0);
		}
		for (k = 1; k < n_targets; k++) {
			if (v[0] > 0 && v[k] > 0)
				printf(" | %.3fx", v[0] / v[k]);
			else
				printf(" | -");
		}
		printf("\n");
	}
	printf("small: %u files of 4 KiB; large: %u MiB in 1 MiB writes then fsync and close,"
	       " read in 1 MiB reads (large rows: latency of one 1 MiB write or read);"
	       " last columns: ratios of the rates\n",
	       b->files, b->large_mib);
	if (b->n_pids && t[0].rows[ROW_CREATE].n) {
		printf("omnifs daemons' CPU per change (user+system over the loop, summed over %zu"
		       " processes):",
		       b->n_pids);
		const enum row cpu_rows[] = {ROW_CREATE, ROW_CREATE_TRUNC, ROW_RENAME, ROW_UNLINK};
		for (k = 0; k < 4; k++) {
			struct series *s = &t[0].rows[cpu_rows[k]];
			printf("%s %s %.2f ms", k ? "," : "", row_names[cpu_rows[k]] + 7,
			       s->n ? s->cpu_s * 1e3 / (double)s->n : 0);
		}
		printf("\n");
	}
	if (b->cache_drop_failed)
		printf("note: the page cache could NOT be dropped before the large reads (not root?):"
		       " they may have been served from memory\n");
	else if (b->cache_dropped)
		printf("page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each large"
		       " read\n");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: omnifs-fsbench [-n FILES] [-m MIB] [-R OTHER_MOUNT] [-o small|large]\n"
		"                      [-p PID,PID,...]\n"
		"                      OMNIFS_DIR LOCAL_DIR [PASSTHROUGH_DIR]\n");
	exit(2);
}

static unsigned parse_count(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 1000000)
		usage();
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct bench b = {.files = 2000, .large_mib = 256};
	struct target t[3];
	size_t n_targets;
	struct statvfs sv;
	unsigned long free_inodes;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t i;
	bool small = true, large = true;
	int opt;

	while ((opt = getopt(argc, argv, "n:m:R:o:p:h")) != -1) {
		switch (opt) {
		case 'n':
			b.files = parse_count(optarg);
			break;
		case 'm':
			b.large_mib = parse_count(optarg);
			break;
		case 'R':
			b.other_mount = optarg;
			break;
		case 'p':
			for (char *tok = strtok(optarg, ","); tok && b.n_pids < 8;
			     tok = strtok(NULL, ","))
				b.pids[b.n_pids++] = atoi(tok);
			break;
		case 'o':
			small = strcmp(optarg, "small") == 0;
			large = strcmp(optarg, "large") == 0;
			if (!small && !large)
				usage();
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 && argc - optind != 3)
		usage();
	n_targets = (size_t)(argc - optind);
	memset(t, 0, sizeof(t));
	t[0].label = "omnifs";
	t[0].dir = argv[optind];
	t[0].cpu = true;
	t[1].label = "local";
	t[1].dir = argv[optind + 1];
	if (n_targets == 3) {
		t[2].label = "passthrough";
		t[2].dir = argv[optind + 2];
	}

	/* Incompressible content, so neither side gains from compression;
	 * each chunk and file also carries its number in its first 8 bytes. */
	b.large_buf = malloc(LARGE_CHUNK);
	b.read_buf = malloc(LARGE_CHUNK);
	if (!b.large_buf || !b.read_buf) {
		fprintf(stderr, "omnifs-fsbench: out of memory\n");
		return 1;
	}
	for (i = 0; i < LARGE_CHUNK; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b.large_buf[i] = (char)(x >> 32);
	}
	memcpy(b.small_buf, b.large_buf, SMALL_LEN);

	for (i = 0; i < n_targets; i++) {
		if ((size_t)snprintf(t[i].work, sizeof(t[i].work), "%s/fsbench.%ld", t[i].dir,
				     (long)getpid()) >= sizeof(t[i].work)) {
			fprintf(stderr, "omnifs-fsbench: path too long: %s\n", t[i].dir);
			return 1;
		}
		if (mkdir(t[i].work, 0755) != 0)
			die("mkdir", t[i].work);
	}
	if (statvfs(t[0].dir, &sv) != 0)
		die("statvfs", t[0].dir);
	free_inodes = sv.f_ffree;

	/* Local first, so omnifs's deferred frees never run during a local phase. */
	if (small) {
		for (i = 1; i < n_targets; i++)
			small_workload(&b, &t[i]);
		small_workload(&b, &t[0]);
		wait_freed(t[0].dir, free_inodes - 1);
	}
	if (large) {
		for (i = 1; i < n_targets; i++)
			large_workload(&b, &t[i], false);
		large_workload(&b, &t[0], b.other_mount != NULL);
		wait_freed(t[0].dir, free_inodes - 1);
	}

	for (i = 0; i < n_targets; i++)
		if (rmdir(t[i].work) != 0)
			die("rmdir", t[i].work);
	print_table(&b, t, n_targets);
	for (i = 0; i < n_targets; i++)
		for (size_t r = 0; r < ROW_COUNT; r++)
			free(t[i].rows[r].lat);
	free(b.large_buf);
	free(b.read_buf);
	return 0;
}
