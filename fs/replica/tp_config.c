/* struct cfg -> struct tp_config (see tp_config.h). */
#include "tp_config.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int endpoint(char *out, const char *address)
{
	int n = snprintf(out, TP_ENDPOINT_MAX, "tcp://%s", address);
	return (n < 0 || n >= TP_ENDPOINT_MAX) ? -EINVAL : 0;
}

int tp_peer_from_cfg(const struct cfg_peer *p, bool plaintext, struct tp_peer_config *tp)
{
	memset(tp, 0, sizeof(*tp));
	tp->id = p->id;
	if (endpoint(tp->endpoint, p->address))
		return -EINVAL;
	if (!plaintext && tp_key_from_z85(p->public_key, tp->public_key))
		return -EKEYREJECTED;
	return 0;
}

int tp_config_from_cfg(const struct cfg *c, struct tp_config *tc, char *err, size_t err_len)
{
	memset(tc, 0, sizeof(*tc));
	tc->node_id = c->node_id;
	tc->cluster_id = c->cluster_id;
	tc->plaintext = c->plaintext;
	tc->silence_ms = 4 * c->election_timeout_ms;
	tc->log = log_line;

	const char *listen = c->listen;
	if (!listen[0]) {
		const struct cfg_peer *self = cfg_find_peer(c, c->node_id);
		listen = self ? self->address : "";
	}
	if (!listen[0] || endpoint(tc->listen, listen)) {
		snprintf(err, err_len, "%s: no usable listen address for node %llu", c->path,
			 (unsigned long long)c->node_id);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct cfg_peer *p = &c->peers[i];
		if (p->id == c->node_id)
			continue;
		if (tc->n_peers == TP_MAX_PEERS)
			break;
		int rc = tp_peer_from_cfg(p, c->plaintext, &tc->peers[tc->n_peers]);
		if (rc) {
			snprintf(err, err_len, "%s: peer %llu: %s", c->path,
				 (unsigned long long)p->id,
				 rc == -EINVAL ? "address too long" : "not a Z85 public key");
			return -EINVAL;
		}
		tc->n_peers++;
	}
	if (!c->plaintext)
		return tp_keyfile_load(c->secret_key_file, tc->public_key, tc->secret_key, err,
				       err_len);
	return 0;
}
