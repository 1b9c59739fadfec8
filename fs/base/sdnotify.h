/*
 * systemd service notifications (READY=1, STATUS=..., WATCHDOG=1,
 * STOPPING=1). libsystemd's sd_notify is used when omnifs was built with it;
 * otherwise a small built-in sender speaks the same one-datagram protocol.
 * Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef OMNIFS_SDNOTIFY_H
#define OMNIFS_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends state (e.g. "READY=1\nSTATUS=serving"). Returns 0, or -errno. */
int sdn_notify(const char *state);

/* printf-style STATUS= line. */
int sdn_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval asked for by the unit ($WATCHDOG_USEC), in ms; 0 if none. */
uint64_t sdn_watchdog_ms(void);

#endif /* OMNIFS_SDNOTIFY_H */
