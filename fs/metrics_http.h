/*
 * The HTTP endpoint of the metrics ([metrics] listen): GET /metrics answers
 * the page of a metrics registry, rendered at each request, with
 * libmicrohttpd on a thread of its own. Nothing else is served (404), and
 * only GET and HEAD (405). One request is answered at a time.
 */
#ifndef OMNIFS_METRICS_HTTP_H
#define OMNIFS_METRICS_HTTP_H

#include <stddef.h>

struct metrics_registry;
struct metrics_http;

/* Listens on address ("host:port", as cfg_address_is_valid accepts it) and
 * serves reg (borrowed: it and its sources must stay valid until
 * metrics_http_stop). NULL with a one-line reason in err if it cannot. */
struct metrics_http *metrics_http_start(const char *address, const struct metrics_registry *reg,
					char *err, size_t err_len);

/* Stops serving (a request in progress finishes first), frees and NULLs *h.
 * NULL is a no-op. */
void metrics_http_stop(struct metrics_http **h);

#endif /* OMNIFS_METRICS_HTTP_H */
