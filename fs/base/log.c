/*
 * Leveled logging to stderr. See log.h. One fprintf per line, so lines from
 * several threads never interleave mid-line (stderr is unbuffered and glibc
 * locks the stream for the call).
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

/* Atomic: omnifsctl log-level and SIGHUP change it while every thread logs. */
static _Atomic int log_threshold = LOG_LEVEL_INFO;
static char log_tag[32];
/* Whether stderr is the journal: 0 not decided yet, 1 yes, 2 no. Decided
 * once (stderr does not change under a running process); a race decides
 * it twice, the same way. */
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

void log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag ? tag : "");
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

/* The journal gets "<N>" (it strips it and keeps the priority); terminals,
 * pipes and files get plain lines with the level in words. */
static bool use_priority_prefix(void)
{
	int j = atomic_load_explicit(&log_to_journal, memory_order_relaxed);
	if (j == 0) {
		j = log_stderr_is_journal() ? 1 : 2;
		atomic_store_explicit(&log_to_journal, j, memory_order_relaxed);
	}
	return j == 1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if ((int)level > atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	int saved_errno = errno;
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	const char *sep = log_tag[0] ? " " : "";
	if (use_priority_prefix())
		fprintf(stderr, "<%d>%s%s%s\n", (int)level, log_tag, sep, text);
	else
		fprintf(stderr, "%s%s%s: %s\n", log_tag, sep, level_names[level], text);
	errno = saved_errno;
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
