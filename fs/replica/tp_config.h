/*
 * Fills the transport's plain-data config from the node's config file.
 *
 * The transport itself takes struct tp_config, not struct cfg: tests and the
 * benchmark build meshes on ephemeral ports with in-memory keys, and the
 * transport should not change when the file format does. This is the one
 * place that knows both. It reads the secret key file (with its mode check).
 */
#ifndef OMNIFS_TP_CONFIG_H
#define OMNIFS_TP_CONFIG_H

#include <stddef.h>

#include "config.h"
#include "transport.h"

/*
 * node_id, cluster_id, listen ("tcp://" + [node] listen or our own [peers]
 * address), every other peer with its key, plaintext, the keypair from
 * secret_key_file, silence_ms = 4 election timeouts, and the daemon's logger
 * (log_line). Tuning fields stay 0 (defaults). 0, or a negative errno with one
 * line in err.
 */
int tp_config_from_cfg(const struct cfg *c, struct tp_config *tc, char *err, size_t err_len);

/* One member as the transport wants it: 0, -EINVAL (address too long) or
 * -EKEYREJECTED (not a Z85 key; plaintext ignores the key). */
int tp_peer_from_cfg(const struct cfg_peer *p, bool plaintext, struct tp_peer_config *tp);

#endif /* OMNIFS_TP_CONFIG_H */
