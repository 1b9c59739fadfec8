/*
 * The metrics over HTTP (see metrics_http.h), served by libmicrohttpd: its
 * internal polling thread accepts connections and calls answer() for each
 * request, which renders the page into a buffer the response then owns.
 * It does not authenticate or encrypt: the address is the operator's choice
 * (loopback or a monitoring network).
 */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl.h"
#include "log.h"
#include "metrics.h"

/* Connections served at once, and seconds an idle one is kept. */
#define METRICS_HTTP__CONNECTIONS 16
#define METRICS_HTTP__IDLE_S	  10

struct metrics_http {
	struct MHD_Daemon *mhd;
	const struct metrics_registry *reg;
};

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **req_cls)
{
	struct metrics_http *h = cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n");
	if (strcmp(url, "/metrics") != 0)
		return reply_text(c, MHD_HTTP_NOT_FOUND, "omnifs serves its metrics at /metrics\n");
	struct ctl_buf page = {0};
	if (metrics_render(h->reg, &page) != 0) {
		ctl_buf_free(&page);
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	/* The response frees the page (with free(), as ctl_buf allocated it). */
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(page.len, page.data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		ctl_buf_free(&page);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* libmicrohttpd's own messages (a failed bind, a broken connection), as log lines. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_warn("metrics: http: %s", line);
}

/* "host:port" or "[v6]:port" into host and port (both NUL-ended). */
static int split_address(const char *address, char *host, size_t host_len, char *port,
			 size_t port_len)
{
	const char *colon = strrchr(address, ':');
	if (!colon)
		return -EINVAL;
	const char *h = address;
	size_t hl = (size_t)(colon - address);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= host_len || strlen(colon + 1) >= port_len)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, port_len, "%s", colon + 1);
	return 0;
}

struct metrics_http *metrics_http_start(const char *address, const struct metrics_registry *reg,
					char *err, size_t err_len)
{
	char host[256], port[8];
	if (split_address(address, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, err_len, "[metrics] listen = %s: not host:port", address);
		return NULL;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	int gai = getaddrinfo(host, port, &hints, &ai);
	if (gai != 0) {
		snprintf(err, err_len, "[metrics] listen = %s: %s", address, gai_strerror(gai));
		return NULL;
	}
	struct metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		freeaddrinfo(ai);
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	h->reg = reg;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first: options before it would log through libmicrohttpd's own. */
	h->mhd = MHD_start_daemon(
		flags, (uint16_t)atoi(port), NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER,
		mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)METRICS_HTTP__CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)METRICS_HTTP__IDLE_S, MHD_OPTION_END);
	int e = errno;
	freeaddrinfo(ai);
	if (!h->mhd) {
		snprintf(err, err_len, "[metrics] listen = %s: cannot serve HTTP there (%s)",
			 address, strerror(e ? e : EADDRINUSE));
		free(h);
		return NULL;
	}
	return h;
}

void metrics_http_stop(struct metrics_http **hp)
{
	struct metrics_http *h = *hp;
	if (!h)
		return;
	*hp = NULL;
	MHD_stop_daemon(h->mhd);
	free(h);
}
