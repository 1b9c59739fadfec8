/*
 * Leveled logging to stderr, one line per message.
 *
 * Lines carry the journal's "<N>" priority prefix when stderr is the journal
 * (JOURNAL_STREAM names it: systemd's journal strips the prefix and keeps
 * the level), and are plain elsewhere (terminals, pipes, files): the tag, a
 * level word and the text. The threshold and the node tag are process-wide:
 * the only process-wide state below main(); the tag is set once at
 * start-up, the threshold may change at any time (omnifsctl log-level,
 * SIGHUP).
 *
 * Never split a user-visible message across calls: people grep for them.
 *
 * Layer: fs/base/, the daemon's basics (this logger, the config file in
 * config.h, the control socket in ctl.h, sd_notify, atomic small files). Every
 * fs/ layer and the admin tools may use it; it uses nothing else of omnifs.
 * consensus/ and transport/ do not link it: they take a log callback, which
 * log_line serves.
 */
#ifndef OMNIFS_LOG_H
#define OMNIFS_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* syslog(3) priorities, without pulling in <syslog.h>'s LOG_* names. */
enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* Messages above this level are dropped. Default: LOG_LEVEL_INFO. Safe
 * from any thread at any time. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warning"... as log_level_parse reads them; "?" for others. */
const char *log_level_name(enum log_level level);

/* True if stderr is the journal's stream (JOURNAL_STREAM matches it). */
bool log_stderr_is_journal(void);

/* Tag written after the program name, e.g. "n2". NULL clears it. Copied. */
void log_set_tag(const char *tag);

/* Parses "error", "warning", "notice", "info", "debug". Returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A log callback for the libraries below the daemon (consensus/, transport/),
 * which take one instead of linking this logger: one finished line at a
 * syslog(3) priority. ctx is unused. */
void log_line(void *ctx, int level, const char *line);

#define log_err(...)	log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * Rate limiting for messages an outsider can trigger at will (malformed
 * frames, refused keys): at most one line per interval; the next line that
 * passes reports how many were suppressed. Caller-owned, no locking.
 */
struct log_ratelimit {
	uint64_t interval_ms; /* minimum gap between two logged lines */
	uint64_t last_ms;     /* when the last line was logged */
	uint64_t suppressed;  /* lines dropped since then */
	bool primed;	      /* false until the first line */
};

/* True if a line may be logged at now_ms; *suppressed gets the number of
 * lines dropped since the previous one (and the counter restarts). */
bool log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms, uint64_t *suppressed);

#endif /* OMNIFS_LOG_H */
