/*
 * The control socket, server and client. See ctl.h.
 *
 * The server thread only accepts; each connection gets a detached worker
 * thread that reads one request, runs the handler and writes the answer.
 * Stopping closes the listener (which ends accept), makes workers waiting
 * for a request close their connection, and waits until every worker has
 * finished (a running command first), so the handler's context may be freed
 * afterwards.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Threads: everything but n_workers is set before the accept thread starts
 * and only read until ctl_server_stop has joined it and seen n_workers 0. */
struct ctl_server {
	int listen_fd;
	int stop_pipe[2]; /* written once: wakes the accept loop and idle workers */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	ctl_handler_fn fn;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t lock; /* protects n_workers (a leaf: nothing else is locked under it) */
	pthread_cond_t idle;  /* signalled when n_workers drops */
	unsigned n_workers;
};

struct worker {
	struct ctl_server *s;
	int fd;
};

/* The connection whose command runs on this thread, for ctl_hold and
 * ctl_client_gone (set by serve_request around the handler). */
struct conn {
	struct ctl_server *s;
	int fd;
	bool answered; /* ctl_hold answered: the handler's own answer is dropped */
};
static _Thread_local struct conn *current_conn;

int ctl_buf_append(struct ctl_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	char *tmp = malloc((size_t)n + 1);
	if (!tmp)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(tmp, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int rc = ctl_buf_append(b, tmp, (size_t)n);
	free(tmp);
	return rc;
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A request must arrive within this long once its first byte did; an idle
 * connection between requests may wait this long too. */
#define CTL__IO_TIMEOUT_MS   5000
#define CTL__IDLE_TIMEOUT_MS 600000

/*
 * Reads or writes exactly the bytes of iov[0..n) (updated as it goes) before
 * deadline_ms. 0 or -errno; -ECANCELED as soon as stop_fd (if >= 0: the
 * server's stop pipe) is readable while waiting, so a stopping server does
 * not wait for idle clients. Unless wait_first (a read that is known to
 * wait: the next request, an answer), the call is tried before any poll:
 * the bytes are usually there, or room for them, and a poll(2) before each
 * send and receive was half the system calls of a put.
 */
static int io_vec(int fd, struct iovec *iov, int n, bool writing, uint64_t deadline_ms, int stop_fd,
		  bool wait_first)
{
	while (n > 0 && iov[0].iov_len == 0) {
		iov++;
		n--;
	}
	bool wait = wait_first;
	while (n > 0) {
		if (wait) {
			uint64_t now = now_ms();
			if (now >= deadline_ms)
				return -ETIMEDOUT;
			struct pollfd pfd[2] = {{.fd = fd, .events = writing ? POLLOUT : POLLIN},
						{.fd = stop_fd, .events = POLLIN}};
			int pr = poll(pfd, stop_fd >= 0 ? 2 : 1, (int)(deadline_ms - now));
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				return -errno;
			if (pr == 0)
				return -ETIMEDOUT;
			if (stop_fd >= 0 && pfd[1].revents)
				return -ECANCELED;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t got = writing ? sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)
				      : recvmsg(fd, &mh, MSG_DONTWAIT);
		if (got < 0 && errno == EINTR)
			continue;
		wait = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
		if (wait)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			return -ECONNRESET;
		size_t left = (size_t)got;
		while (n > 0 && left >= iov[0].iov_len) {
			left -= iov[0].iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov[0].iov_base = (char *)iov[0].iov_base + left;
			iov[0].iov_len -= left;
		}
	}
	return 0;
}

static int io_full(int fd, void *buf, size_t len, bool writing, uint64_t deadline_ms, int stop_fd,
		   bool wait_first)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	return io_vec(fd, &iov, 1, writing, deadline_ms, stop_fd, wait_first);
}

/* An answer: its header and body in one send, so the client wakes once. */
static int send_answer(int fd, uint32_t status, const void *body, size_t len)
{
	unsigned char hdr[8];
	put_u32(hdr, status);
	put_u32(hdr + 4, (uint32_t)len);
	struct iovec iov[2] = {{.iov_base = hdr, .iov_len = 8},
			       {.iov_base = (void *)body, .iov_len = len}};
	/* The answer goes out even when stopping: the command has run. */
	return io_vec(fd, iov, 2, true, now_ms() + CTL__IO_TIMEOUT_MS, -1, false);
}

int ctl_parse_len(const unsigned char hdr[4], uint32_t *len)
{
	*len = get_u32(hdr);
	return *len == 0 || *len > CTL_MAX_REQUEST ? -EMSGSIZE : 0;
}

int ctl_split_args(char *req, size_t len, char **argv)
{
	int argc = 0;
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (req[i] != '\0')
			continue;
		if (argc == CTL_MAX_ARGS)
			return -EBADMSG;
		argv[argc++] = req + start;
		start = i + 1;
	}
	if (start != len || argc == 0)
		return -EBADMSG;
	argv[argc] = NULL;
	return argc;
}

/* Serves one request. Returns 0 to keep the connection, -1 to close it. */
static int serve_request(struct ctl_server *s, int fd)
{
	int stop = s->stop_pipe[0];
	unsigned char hdr[8];
	char *req = NULL;
	struct ctl_buf out = {0};
	uint32_t status;
	int keep = -1;

	if (io_full(fd, hdr, 4, false, now_ms() + CTL__IDLE_TIMEOUT_MS, stop, true) != 0)
		goto out;
	uint32_t len;
	if (ctl_parse_len(hdr, &len) != 0) {
		status = EMSGSIZE;
		ctl_buf_printf(&out, "request of %u bytes: expected 1 to %u\n", len,
			       CTL_MAX_REQUEST);
		goto reply; /* the stream is out of step: close after replying */
	}
	req = malloc(len);
	if (!req)
		goto out;
	if (io_full(fd, req, len, false, now_ms() + CTL__IO_TIMEOUT_MS, stop, false) != 0)
		goto out;
	char *argv[CTL_MAX_ARGS + 1];
	int argc = ctl_split_args(req, len, argv);
	if (argc < 0) {
		status = EBADMSG;
		ctl_buf_printf(&out, "malformed request: expected NUL-ended arguments\n");
		goto reply;
	}
	struct conn c = {.s = s, .fd = fd};
	current_conn = &c;
	status = (uint32_t)s->fn(s->ctx, argc, argv, &out);
	current_conn = NULL;
	keep = 0;
	if (c.answered) {
		keep = -1; /* held until the client left */
		goto out;
	}
reply:
	if (send_answer(fd, status, out.data, out.len) != 0)
		keep = -1;
out:
	free(req);
	ctl_buf_free(&out);
	return keep;
}

int ctl_hold(const char *body, size_t len)
{
	struct conn *c = current_conn;
	if (!c || c->answered)
		return -EINVAL;
	c->answered = true;
	if (send_answer(c->fd, 0, body, len) != 0)
		return -EPIPE;
	/* The client sends nothing more: readable means it closed (or broke
	 * the protocol, which ends the hold as well). */
	for (;;) {
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN | POLLRDHUP},
					{.fd = c->s->stop_pipe[0], .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents)
			return 0;
		if (pfd[1].revents)
			return -ESHUTDOWN;
	}
}

bool ctl_client_gone(void)
{
	struct conn *c = current_conn;
	if (!c)
		return false;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
	return poll(&pfd, 1, 0) > 0 && pfd.revents != 0;
}

/* A connection may carry many requests, one after the other. */
static void serve_one(struct ctl_server *s, int fd)
{
	while (serve_request(s, fd) == 0)
		;
	close(fd);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_setname_np(pthread_self(), "ofs-ctl");
	struct ctl_server *s = w->s;
	serve_one(s, w->fd);
	free(w);
	pthread_mutex_lock(&s->lock);
	s->n_workers--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void spawn_worker(struct ctl_server *s, int fd)
{
	pthread_mutex_lock(&s->lock);
	bool full = s->n_workers >= CTL_MAX_CLIENTS;
	if (!full)
		s->n_workers++;
	pthread_mutex_unlock(&s->lock);
	if (full) {
		log_warn("control: %u commands already running, refusing another", CTL_MAX_CLIENTS);
		close(fd);
		return;
	}
	struct worker *w = malloc(sizeof(*w));
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!w || (w->s = s, w->fd = fd, pthread_create(&t, &attr, worker_main, w) != 0)) {
		free(w);
		close(fd);
		pthread_mutex_lock(&s->lock);
		s->n_workers--;
		pthread_cond_broadcast(&s->idle);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct ctl_server *s = arg;
	pthread_setname_np(pthread_self(), "ofs-ctl-accept");
	for (;;) {
		struct pollfd pfd[2] = {{.fd = s->listen_fd, .events = POLLIN},
					{.fd = s->stop_pipe[0], .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control: poll: %s", strerror(errno));
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				log_warn("control: accept: %s", strerror(errno));
			continue;
		}
		spawn_worker(s, fd);
	}
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* True if a live process accepts connections on path. */
static bool socket_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return live;
}

struct ctl_server *ctl_server_start(const char *path, ctl_handler_fn fn, void *ctx, char *err,
				    size_t err_len)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) != 0) {
		snprintf(err, err_len, "control socket path %s is too long (at most %zu bytes)",
			 path, sizeof(sa.sun_path) - 1);
		return NULL;
	}
	struct ctl_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	s->fn = fn;
	s->ctx = ctx;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);

	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		snprintf(err, err_len, "control socket: %s", strerror(errno));
		goto out_free;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, err_len,
				 "control socket %s exists and is not a socket: remove it or set "
				 "[node] control_socket elsewhere",
				 path);
			goto out_close;
		}
		if (socket_is_live(&sa)) {
			snprintf(err, err_len,
				 "control socket %s is in use: another omnifsd runs with this "
				 "config (stop it first)",
				 path);
			goto out_close;
		}
		unlink(path); /* left by a daemon that died */
	}
	/* Linux gives the bound socket the mode of the socket's own inode,
	 * masked by the umask: set that mode first, so the socket is never
	 * open to others, not even between bind and a chmod. Changing the
	 * umask instead would change it for every thread of the daemon while
	 * they create files. A umask can only narrow 0600; the chmod after
	 * bind gives back owner bits a strange umask took. */
	if (fchmod(s->listen_fd, 0600) != 0) {
		snprintf(err, err_len, "control socket: fchmod: %s", strerror(errno));
		goto out_close;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		snprintf(err, err_len, "cannot bind control socket %s: %s", path, strerror(errno));
		goto out_close;
	}
	if (lstat(path, &st) != 0) {
		snprintf(err, err_len, "control socket %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	if ((st.st_mode & 07777) != 0600 && chmod(path, 0600) != 0) {
		snprintf(err, err_len, "control socket %s: cannot make it mode 0600: %s", path,
			 strerror(errno));
		goto out_unlink;
	}
	if (listen(s->listen_fd, 16) != 0 || pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
		snprintf(err, err_len, "control socket %s: %s", path, strerror(errno));
		goto out_unlink;
	}
	if (pthread_create(&s->thread, NULL, accept_main, s) != 0) {
		snprintf(err, err_len, "control socket: cannot start its thread");
		goto out_unlink;
	}
	return s;

out_unlink:
	unlink(path);
out_close:
	close(s->listen_fd);
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
out_free:
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
	return NULL;
}

void ctl_server_stop(struct ctl_server **sp)
{
	struct ctl_server *s = *sp;
	if (!s)
		return;
	*sp = NULL;
	ssize_t ignored = write(s->stop_pipe[1], "x", 1);
	(void)ignored;
	pthread_join(s->thread, NULL);
	close(s->listen_fd);
	unlink(s->path);
	pthread_mutex_lock(&s->lock);
	while (s->n_workers > 0)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s);
}

int ctl_connect(const char *path, char *err, size_t err_len)
{
	struct sockaddr_un sa;
	if (fill_addr(&sa, path) != 0) {
		snprintf(err, err_len, "control socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		snprintf(err, err_len, "cannot reach omnifsd at %s: %s (is the daemon running?)",
			 path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int ctl_request(int fd, int argc, char **argv, uint32_t timeout_ms, uint32_t *status, char **body,
		size_t *body_len, char *err, size_t err_len)
{
	*body = NULL;
	*body_len = 0;
	size_t len = 0;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > CTL_MAX_REQUEST || argc > CTL_MAX_ARGS || argc < 1) {
		snprintf(err, err_len, "request too large");
		return -EMSGSIZE;
	}
	uint64_t deadline = now_ms() + timeout_ms;
	unsigned char *req = malloc(4 + len);
	if (!req) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	put_u32(req, (uint32_t)len);
	size_t off = 4;
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;
		memcpy(req + off, argv[i], n);
		off += n;
	}
	int rc = io_full(fd, req, off, true, deadline, -1, false);
	free(req);
	unsigned char hdr[8];
	if (rc == 0)
		rc = io_full(fd, hdr, 8, false, deadline, -1, true);
	if (rc != 0) {
		snprintf(err, err_len, "talking to omnifsd: %s", strerror(-rc));
		return rc;
	}
	*status = get_u32(hdr);
	uint32_t blen = get_u32(hdr + 4);
	*body = malloc((size_t)blen + 1);
	if (!*body) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	rc = io_full(fd, *body, blen, false, deadline, -1, false); /* sent with its header */
	if (rc != 0) {
		free(*body);
		*body = NULL;
		snprintf(err, err_len, "reading omnifsd's answer: %s", strerror(-rc));
		return rc;
	}
	(*body)[blen] = '\0';
	*body_len = blen;
	return 0;
}

int ctl_call(const char *path, int argc, char **argv, uint32_t timeout_ms, uint32_t *status,
	     char **body, size_t *body_len, char *err, size_t err_len)
{
	*body = NULL;
	*body_len = 0;
	int fd = ctl_connect(path, err, err_len);
	if (fd < 0)
		return fd;
	int rc = ctl_request(fd, argc, argv, timeout_ms, status, body, body_len, err, err_len);
	close(fd);
	return rc;
}
