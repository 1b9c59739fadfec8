/*
 * Leveled logging to stderr. See log.h. One fprintf per line, so lines from
 * several threads never interleave mid-line (stderr is unbuffered and glibc
 * locks the stream for the call).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;
static char log_tag[32];

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
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

/* The journal (JOURNAL_STREAM set) and pipes get "<N>"; a terminal gets words. */
static bool use_priority_prefix(void)
{
	return getenv("JOURNAL_STREAM") != NULL || !isatty(STDERR_FILENO);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_threshold)
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
