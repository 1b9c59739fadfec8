/*
 * systemd notifications. See sdnotify.h. The built-in sender follows
 * sd_notify(3): one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET
 * ('@' at the start means the abstract namespace).
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#ifndef HAVE_LIBSYSTEMD
static int builtin_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}
#endif

int sdn_notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	int rc = sd_notify(0, state);
	return rc < 0 ? rc : 0;
#else
	return builtin_notify(state);
#endif
}

int sdn_status(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "STATUS=");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	return sdn_notify(line);
}

uint64_t sdn_watchdog_ms(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	if (!usec)
		return 0;
	const char *pid = getenv("WATCHDOG_PID");
	if (pid && (pid_t)strtol(pid, NULL, 10) != getpid())
		return 0;
	return strtoull(usec, NULL, 10) / 1000;
}
