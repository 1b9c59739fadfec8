/*
 * The transport's log lines: formatted here and handed to the optional
 * callback of its config (struct tp_config: log, log_ctx), so the transport
 * depends on no logging library. Lines an outsider can trigger at will
 * (refused keys, bad frames) pass a rate limit, and the next line that passes
 * says how many were dropped.
 */
#include <stdarg.h>
#include <stdio.h>

#include "tp_internal.h"

__attribute__((format(printf, 3, 0))) static void emit(struct tp *t, int level, const char *fmt,
						       va_list ap, uint64_t suppressed)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= 0 && suppressed && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, " (%llu similar lines suppressed)",
			 (unsigned long long)suppressed);
	t->cfg.log(t->cfg.log_ctx, level, line);
}

void tp__log(struct tp *t, int level, const char *fmt, ...)
{
	if (!t->cfg.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(t, level, fmt, ap, 0);
	va_end(ap);
}

void tp__log_limited(struct tp *t, struct tp__ratelimit *rl, int level, const char *fmt, ...)
{
	uint64_t now = tp_now_ms();
	if (rl->primed && now - rl->last_ms < TP__RATELIMIT_MS) {
		rl->suppressed++;
		return;
	}
	uint64_t suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->last_ms = now;
	rl->primed = true;
	if (!t->cfg.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(t, level, fmt, ap, suppressed);
	va_end(ap);
}
