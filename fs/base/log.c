/*
 * Leveled logging to stderr or, for a systemd service, to journald with
 * structured fields. See log.h. One fprintf per line, so lines from several
 * threads never interleave mid-line (stderr is unbuffered and glibc locks
 * the stream for the call); one sd_journal_sendv (one datagram) per message.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
/* CODE_FILE and CODE_LINE would name this file for every message. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#endif

/* journald's socket for its native protocol (systemd-journald.service(8)). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Atomic: omnifsctl log-level and SIGHUP change it while every thread logs. */
static _Atomic int log_threshold = LOG_LEVEL_INFO;
/* Set once at start-up, before other threads (log_set_node). */
static char log_tag[32];
static uint64_t log_node;
/* Where lines go: 0 not decided yet, 1 the journal's native protocol, 2 the
 * journal's stream ("<N>" lines), 3 plain lines. Decided once (stderr does
 * not change under a running process); a race decides it twice, the same
 * way. */
static _Atomic int log_to_journal;

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

const char *log_level_name(enum log_level level)
{
	return level >= LOG_LEVEL_ERR && level <= LOG_LEVEL_DEBUG ? level_names[level] : "?";
}

void log_set_node(uint64_t node_id)
{
	log_node = node_id;
	if (node_id)
		snprintf(log_tag, sizeof(log_tag), "n%llu", (unsigned long long)node_id);
	else
		log_tag[0] = '\0';
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int l = LOG_LEVEL_ERR; l <= LOG_LEVEL_DEBUG; l++) {
		if (strcmp(name, level_names[l]) == 0) {
			*out = (enum log_level)l;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * stderr is the journal when JOURNAL_STREAM ("DEVICE:INODE", set by systemd
 * for a service whose output goes to the journal) names the very file
 * stderr is, as systemd.exec(5) says to check: a child whose stderr was
 * redirected inherits the variable but not the stream.
 */
bool log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/*
 * The journal gets its native protocol, or "<N>" lines (it strips the
 * prefix and keeps the priority) without libsystemd or its socket:
 * sd_journal_sendv reports success when the socket is missing, so its
 * absence is checked here. Terminals, pipes and files get plain lines with
 * the level in words.
 */
static int destination(void)
{
	int d = atomic_load_explicit(&log_to_journal, memory_order_relaxed);
	if (d == 0) {
		bool native = false;
#ifdef HAVE_LIBSYSTEMD
		struct stat st;
		native = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
#endif
		d = !log_stderr_is_journal() ? 3 : native ? 1 : 2;
		atomic_store_explicit(&log_to_journal, d, memory_order_relaxed);
	}
	return d;
}

/* Sets iov[n] to the field the buffer holds and counts it. */
static void add_field(struct log_journal_msg *m, char *buf)
{
	m->iov[m->n].iov_base = buf;
	m->iov[m->n].iov_len = strlen(buf);
	m->n++;
}

void log_journal_build(struct log_journal_msg *m, enum log_level level, const char *ident,
		       uint64_t node, uint64_t peer, uint64_t index, const char *text)
{
	m->n = 0;
	snprintf(m->priority, sizeof(m->priority), "PRIORITY=%d", (int)level);
	add_field(m, m->priority);
	/* The text as the stream's lines show it, tag first. */
	if (node)
		snprintf(m->message, sizeof(m->message), "MESSAGE=n%llu %s",
			 (unsigned long long)node, text);
	else
		snprintf(m->message, sizeof(m->message), "MESSAGE=%s", text);
	add_field(m, m->message);
	snprintf(m->ident, sizeof(m->ident), "SYSLOG_IDENTIFIER=%s", ident);
	add_field(m, m->ident);
	if (node) {
		snprintf(m->node, sizeof(m->node), "OMNIFS_NODE=%llu", (unsigned long long)node);
		add_field(m, m->node);
	}
	if (peer != LOG_NO_PEER) {
		snprintf(m->peer, sizeof(m->peer), "OMNIFS_PEER=%llu", (unsigned long long)peer);
		add_field(m, m->peer);
	}
	if (index != LOG_NO_INDEX) {
		snprintf(m->index, sizeof(m->index), "OMNIFS_INDEX=%llu",
			 (unsigned long long)index);
		add_field(m, m->index);
	}
}

/* To the journal's socket: true if it took the message. */
static bool send_native(enum log_level level, uint64_t peer, uint64_t index, const char *text)
{
#ifdef HAVE_LIBSYSTEMD
	struct log_journal_msg m;
	log_journal_build(&m, level, program_invocation_short_name, log_node, peer, index, text);
	return sd_journal_sendv(m.iov, m.n) >= 0;
#else
	(void)level;
	(void)peer;
	(void)index;
	(void)text;
	return false;
#endif
}

static void __attribute__((format(printf, 4, 0)))
log_vkv(enum log_level level, uint64_t peer, uint64_t index, const char *fmt, va_list ap)
{
	if ((int)level > atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	int saved_errno = errno;
	char text[LOG_TEXT_MAX];
	vsnprintf(text, sizeof(text), fmt, ap);

	const char *sep = log_tag[0] ? " " : "";
	int d = destination();
	if (d == 3)
		fprintf(stderr, "%s%s%s: %s\n", log_tag, sep, level_names[level], text);
	else if (d == 2 || !send_native(level, peer, index, text))
		fprintf(stderr, "<%d>%s%s%s\n", (int)level, log_tag, sep, text);
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vkv(level, LOG_NO_PEER, LOG_NO_INDEX, fmt, ap);
	va_end(ap);
}

void log_kv(enum log_level level, uint64_t peer, uint64_t index, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vkv(level, peer, index, fmt, ap);
	va_end(ap);
}

void log_line(void *ctx, int level, const char *line)
{
	(void)ctx;
	log_msg((enum log_level)level, "%s", line);
}

bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed)
{
	if (rl->primed && now_ms - rl->last_ms < rl->interval_ms) {
		rl->suppressed++;
		return false;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now_ms;
	rl->primed = true;
	return true;
}
