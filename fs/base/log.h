/*
 * Leveled logging to stderr, one line per message.
 *
 * When stderr is the journal (JOURNAL_STREAM names it: a systemd service),
 * messages go to journald through sd_journal_sendv with structured fields:
 * PRIORITY, MESSAGE, SYSLOG_IDENTIFIER, OMNIFS_NODE (log_set_node), and
 * OMNIFS_PEER and OMNIFS_INDEX where the call names them (log_kv), so
 * `journalctl OMNIFS_PEER=3` finds what concerned n3. Without libsystemd, or
 * when the journal's socket refuses a message, the line goes to stderr with
 * the journal's "<N>" priority prefix (the journal strips it and keeps the
 * level). Elsewhere (terminals, pipes, files) lines are plain: the tag, a
 * level word and the text. The threshold and the node are process-wide:
 * the only process-wide state below main(); the node is set once at
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
#include <sys/uio.h>

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

/* The node this process is: its lines start with the tag "n2" and carry
 * OMNIFS_NODE=2 in the journal. 0 clears both. Set once, before threads. */
void log_set_node(uint64_t node_id);

/* Parses "error", "warning", "notice", "info", "debug". Returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * log_msg for a message about a peer or a log index: the same line, and in
 * the journal the fields OMNIFS_PEER=<peer> and OMNIFS_INDEX=<index> (the
 * global log index, as "@41" in the text). LOG_NO_PEER and LOG_NO_INDEX
 * leave a field out.
 */
#define LOG_NO_PEER  0
#define LOG_NO_INDEX UINT64_MAX
void log_kv(enum log_level level, uint64_t peer, uint64_t index, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A log callback for the libraries below the daemon (consensus/, transport/),
 * which take one instead of linking this logger: one finished line at a
 * syslog(3) priority. ctx is unused. */
void log_line(void *ctx, int level, const char *line);

/*
 * The journal fields of one message, as log_kv sends them (built apart from
 * the sending so a test can read them). iov[0..n) point into the struct:
 * "PRIORITY=5", "MESSAGE=n2 text", "SYSLOG_IDENTIFIER=ident", then
 * "OMNIFS_NODE=2" if node is not 0, "OMNIFS_PEER=3" and "OMNIFS_INDEX=41"
 * as given.
 */
#define LOG_TEXT_MAX	       1024 /* bytes of a message's text, NUL included */
#define LOG_JOURNAL_MAX_FIELDS 6
struct log_journal_msg {
	struct iovec iov[LOG_JOURNAL_MAX_FIELDS]; /* what sd_journal_sendv takes */
	int n;
	char priority[16];
	char message[LOG_TEXT_MAX + 48];
	char ident[48];
	char node[40];
	char peer[40];
	char index[40];
};
void log_journal_build(struct log_journal_msg *m, enum log_level level, const char *ident,
		       uint64_t node, uint64_t peer, uint64_t index, const char *text);

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
