/*
 * omnifsctl watch and omnifsctl kv watch: stream the changes under some
 * paths (or KV keys) from the daemon's change feed, and optionally run a
 * command after each burst of them.
 *
 * The daemon serves the feed as a long poll ("feed SINCE WAIT_MS", see
 * fs/replica/replica_ctl.c): each answer covers every log index in [SINCE,
 * next), so asking again from next never misses nor repeats one. The loop
 * keeps next in memory across lost connections and daemon restarts (it
 * waits and asks again from there); a caller that restarts this program
 * passes --since (the last index it printed, plus one). If the feed no
 * longer reaches back to next, this program says so and exits with
 * WATCH_EXIT_COMPACTED: the caller must read the tree afresh.
 *
 * Paths: the feed names files by their path in the tree ("/etc/x"); with a
 * config (the default one or -c) this program maps the mountpoint to and
 * from the tree, so PATH and the printed paths are host paths. With -s
 * alone PATH is a path in the tree.
 *
 * SIGTERM or SIGINT ends it (status 0) once the batch in hand is printed,
 * so the last line is whole and its index is the one to go on after.
 *
 * It does not decide what a change means for a program: --exec runs CMD,
 * with the burst's last index in OMNIFS_WATCH_INDEX, and the program reads
 * what it needs.
 */
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"
#include "kv.h"

#define POLL_WAIT_MS	 1000u /* one long poll when nothing is pending */
#define CALL_MARGIN_MS	 10000u
#define RETRY_MIN_MS	 100u
#define RETRY_MAX_MS	 2000u
#define DEBOUNCE_DEFAULT 200u
#define MAX_WATCHES	 64

struct watch {
	bool kv;	      /* kv watch: prefixes of keys, kv changes only */
	bool recursive;	      /* -r: everything below a directory */
	bool json, quiet;     /* output */
	const char *exec_cmd; /* --exec */
	uint32_t debounce_ms;
	const char *mount; /* host path of the tree's root, or NULL */
	size_t mount_len;
	char *paths[MAX_WATCHES]; /* tree paths or key prefixes (malloc'd) */
	size_t n_paths;
};

/* SIGTERM or SIGINT: stop after the batch in hand, its lines complete. */
static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(uint32_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* PATH as a path in the tree (malloc'd), or NULL after a message. */
static char *tree_path(const struct watch *w, const char *arg)
{
	char abs[PATH_MAX * 2];
	cli_abs_path(arg, w->mount != NULL, abs, sizeof(abs));
	if (abs[0] != '/') {
		fprintf(stderr, "omnifsctl: watch: %s: give an absolute path\n", arg);
		return NULL;
	}
	const char *rel = abs;
	if (w->mount) {
		if (strncmp(abs, w->mount, w->mount_len) != 0 ||
		    (abs[w->mount_len] != '/' && abs[w->mount_len] != '\0')) {
			fprintf(stderr, "omnifsctl: watch: %s is not under the mount %s\n", arg,
				w->mount);
			return NULL;
		}
		rel = abs[w->mount_len] ? abs + w->mount_len : "/";
	}
	return strdup(rel);
}

/* Does tree path p (len bytes) fall under watch t? */
static bool path_matches(const struct watch *w, const char *t, const char *p, size_t len)
{
	size_t tl = strlen(t);
	if (w->kv)
		return len >= tl && memcmp(p, t, tl) == 0;
	if (tl == 1) /* the root */
		return w->recursive || memchr(p + 1, '/', len - 1) == NULL;
	if (len < tl || memcmp(p, t, tl) != 0)
		return false;
	if (len == tl)
		return true;
	if (p[tl] != '/')
		return false;
	return w->recursive || memchr(p + tl + 1, '/', len - tl - 1) == NULL;
}

static bool rec_matches(const struct watch *w, const struct kv_feed_rec *r)
{
	if (kv_note_kind_is_fs(r->note.kind) == w->kv)
		return false;
	for (size_t i = 0; i < w->n_paths; i++)
		if (path_matches(w, w->paths[i], r->note.path, r->note.path_len) ||
		    (r->note.path2 &&
		     path_matches(w, w->paths[i], r->note.path2, r->note.path2_len)))
			return true;
	return false;
}

/* A tree path as the user sees it: below the mount (the root: the mount
 * itself), or as it is; JSON-escaped if json. */
static void put_path(const struct watch *w, const char *p, size_t len, bool json)
{
	if (w->mount && w->mount_len && !w->kv) {
		fputs(w->mount, stdout);
		if (len == 1)
			return;
	}
	if (!json) {
		fwrite(p, 1, len, stdout);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
}

static void put_time(int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("%s.%03dZ", buf, (int)(ms % 1000));
}

static void print_rec(const struct watch *w, const struct kv_feed_rec *r)
{
	const struct kv_note *n = &r->note;
	if (w->json) {
		printf("{\"index\":%llu,\"kind\":\"%s\",\"%s\":\"", (unsigned long long)r->idx,
		       kv_note_kind_name(n->kind), w->kv ? "key" : "path");
		put_path(w, n->path, n->path_len, true);
		if (n->path2) {
			printf("\",\"new_path\":\"");
			put_path(w, n->path2, n->path2_len, true);
		}
		printf("\",\"node\":%llu,\"uid\":%u,\"time_ms\":%lld,\"time\":\"",
		       (unsigned long long)r->node, n->uid, (long long)n->time_ms);
		put_time(n->time_ms);
		printf("\"}\n");
	} else {
		printf("%llu\t", (unsigned long long)r->idx);
		put_time(n->time_ms);
		printf("\tn%llu\t%u\t%s\t", (unsigned long long)r->node, n->uid,
		       kv_note_kind_name(n->kind));
		put_path(w, n->path, n->path_len, false);
		if (n->path2) {
			putchar('\t');
			put_path(w, n->path2, n->path2_len, false);
		}
		putchar('\n');
	}
}

/* Runs the --exec command through the shell and waits for it. */
static void run_exec(const struct watch *w, uint64_t last_idx)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "omnifsctl: watch: --exec: fork: %s\n", strerror(errno));
		return;
	}
	if (pid == 0) {
		char idx[24];
		snprintf(idx, sizeof(idx), "%llu", (unsigned long long)last_idx);
		setenv("OMNIFS_WATCH_INDEX", idx, 1);
		execl("/bin/sh", "sh", "-c", w->exec_cmd, (char *)NULL);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "omnifsctl: watch: --exec %s: %s %d\n", w->exec_cmd,
			WIFEXITED(st) ? "exit status" : "signal",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* One long poll: fills *next, prints the matching records, says whether
 * any matched (and the last one's index). Returns 0, WATCH_EXIT_COMPACTED
 * (after a message), or -1 if the daemon could not be asked (retry). */
static int poll_once(const struct watch *w, const char *sock, bool *have_next, uint64_t *next,
		     uint32_t wait_ms, bool *matched, uint64_t *last_idx)
{
	char since[24], wait[16], err[512];
	char *args[3] = {"feed", since, wait};
	if (*have_next)
		snprintf(since, sizeof(since), "%llu", (unsigned long long)*next);
	else
		snprintf(since, sizeof(since), "now");
	snprintf(wait, sizeof(wait), "%u", wait_ms);
	uint32_t status;
	char *body;
	size_t len;
	int rc = ctl_call(sock, 3, args, wait_ms + CALL_MARGIN_MS, &status, &body, &len, err,
			  sizeof(err));
	if (rc) {
		fprintf(stderr, "omnifsctl: watch: %s; trying again\n", err);
		return -1;
	}
	if (status == ERANGE) {
		unsigned long long first = 0;
		sscanf(body, "first %llu", &first);
		fprintf(stderr,
			"omnifsctl: watch: the changes from index %s on are no longer in the "
			"feed (it starts at %llu): read the tree afresh, then watch --since "
			"%llu\n",
			since, first, first);
		free(body);
		return WATCH_EXIT_COMPACTED;
	}
	uint64_t first, nx;
	if (status != 0 || kv_feed_header(body, len, &first, &nx) != 0) {
		fprintf(stderr, "omnifsctl: watch: the daemon answered %s%s%.*s; trying again\n",
			status ? strerror((int)status) : "a malformed batch", status ? ": " : "",
			status ? (int)len : 0, body);
		free(body);
		return -1;
	}
	uint64_t min = *have_next ? *next : first;
	size_t pos = KV_FEED_HDR_LEN;
	struct kv_feed_rec r;
	int more;
	while ((more = kv_feed_next(body, len, &pos, min, &r)) == 1) {
		if (r.idx >= nx)
			break;
		min = r.idx + 1;
		if (!rec_matches(w, &r))
			continue;
		*matched = true;
		*last_idx = r.idx;
		if (!w->quiet)
			print_rec(w, &r);
	}
	free(body);
	if (more < 0) {
		fprintf(stderr, "omnifsctl: watch: a malformed batch; trying again\n");
		return -1;
	}
	fflush(stdout);
	/* An empty "now" answer still fixes where we are. */
	if (!*have_next || nx > *next)
		*next = nx;
	*have_next = true;
	return 0;
}

static int run(struct watch *w, const char *sock, bool have_next, uint64_t next)
{
	bool pending = false, lost = false;
	uint64_t last_match = 0, last_idx = 0;
	uint32_t retry = RETRY_MIN_MS;
	while (!stopping) {
		uint32_t wait = POLL_WAIT_MS;
		if (pending) {
			uint64_t due = last_match + w->debounce_ms, t = now_ms();
			if (due < t + wait)
				wait = due > t ? (uint32_t)(due - t) : 0;
		}
		bool matched = false;
		int rc = poll_once(w, sock, &have_next, &next, wait, &matched, &last_idx);
		if (rc > 0)
			return rc;
		if (rc < 0 && stopping)
			break;
		if (rc < 0) {
			lost = true;
			nap_ms(retry);
			retry = retry * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry * 2;
			continue;
		}
		if (lost) {
			fprintf(stderr, "omnifsctl: watch: back, going on from index %llu\n",
				(unsigned long long)next);
			lost = false;
		}
		retry = RETRY_MIN_MS;
		if (matched && w->exec_cmd) {
			pending = true;
			last_match = now_ms();
		}
		if (pending && now_ms() >= last_match + w->debounce_ms) {
			pending = false;
			run_exec(w, last_idx);
		}
	}
	return 0;
}

static int usage_err(const char *what)
{
	fprintf(stderr, "omnifsctl: watch: %s (see omnifsctl --help)\n", what);
	return CLI_EXIT_USAGE;
}

int watch_main(const char *sock, const char *mount, bool kv, int argc, char **argv)
{
	struct watch w = {.kv = kv, .debounce_ms = DEBOUNCE_DEFAULT};
	bool have_since = false;
	uint64_t since = 0;
	int rc = CLI_EXIT_USAGE;
	char *words[MAX_WATCHES];
	size_t n_words = 0;
	bool opts_done = false;
	/* Options may come before or after the paths (watch PATH --exec CMD). */
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || !a[1]) {
			if (n_words == MAX_WATCHES)
				return usage_err("too many paths");
			words[n_words++] = argv[i];
		} else if (strcmp(a, "--") == 0) {
			opts_done = true;
		} else if (strcmp(a, "-r") == 0 && !kv) {
			w.recursive = true;
		} else if (strcmp(a, "--json") == 0) {
			w.json = true;
		} else if (strcmp(a, "-q") == 0) {
			w.quiet = true;
		} else if (strcmp(a, "--since") == 0 && i + 1 < argc) {
			if (!cli_parse_u64(argv[++i], 0, UINT64_MAX, &since))
				return usage_err("--since takes a log index");
			have_since = true;
		} else if (strcmp(a, "--exec") == 0 && i + 1 < argc) {
			w.exec_cmd = argv[++i];
		} else if (strcmp(a, "--debounce") == 0 && i + 1 < argc) {
			uint64_t ms;
			if (!cli_parse_u64(argv[++i], 0, 3600000, &ms))
				return usage_err("--debounce takes milliseconds, 0 to 3600000");
			w.debounce_ms = (uint32_t)ms;
		} else {
			fprintf(stderr, "omnifsctl: watch: unknown option or missing value: %s\n",
				a);
			return CLI_EXIT_USAGE;
		}
	}
	if (n_words == 0 && !kv)
		return usage_err("give at least one PATH");
	static char m[PATH_MAX];
	if (mount && mount[0] && !kv) {
		if (!realpath(mount, m))
			snprintf(m, sizeof(m), "%s", mount);
		size_t len = strlen(m);
		while (len > 1 && m[len - 1] == '/')
			m[--len] = '\0'; /* a config may say "/srv/omnifs/" */
		if (strcmp(m, "/") == 0)
			m[--len] = '\0'; /* mounted on / itself */
		w.mount = m;
		w.mount_len = len;
	}
	if (kv && n_words == 0)
		w.paths[w.n_paths++] = strdup(""); /* every key */
	for (size_t i = 0; i < n_words; i++) {
		char *p = kv ? strdup(words[i]) : tree_path(&w, words[i]);
		if (!p)
			goto out;
		w.paths[w.n_paths++] = p;
	}
	/* A reader that went away must not kill us with SIGPIPE mid-line. */
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: end the wait */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = run(&w, sock, have_since, since);
out:
	for (size_t j = 0; j < w.n_paths; j++)
		free(w.paths[j]);
	return rc;
}
