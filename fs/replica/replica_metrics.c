/*
 * The replica's metrics in the Prometheus text format (metrics.h): the
 * indexes, leadership and quorum from the view the loop publishes each turn,
 * the links' byte counts and reachability by peer, state transfers, the
 * latency histograms of proposals (proposals.c observes) and of the log's
 * synced writes (the log store reports them here), and the state store's
 * RocksDB memory. It takes view_lock for one copy and nothing else, so a
 * scrape never holds up the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "kv.h"
#include "rocks_memory.h"
#include "replica_int.h"

void replica_log_synced(void *ctx, uint64_t ns)
{
	struct replica *r = ctx;
	metrics_observe_ns(&r->log_sync_latency, ns);
}

static void gauge(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
	metrics_family(t, name, "gauge", help);
	metrics_sample_u64(t, name, NULL, 0, v);
}

static void counter(struct metrics_text *t, const char *name, const char *help, uint64_t v)
{
	metrics_family(t, name, "counter", help);
	metrics_sample_u64(t, name, NULL, 0, v);
}

enum peer_value { PEER_TX_BYTES, PEER_RX_BYTES, PEER_UP, PEER_DOWNS };

/* One family with a sample per peer, labelled peer="<id>". */
static void by_peer(struct metrics_text *t, const struct replica_view *v, const char *name,
		    const char *type, const char *help, enum peer_value which)
{
	metrics_family(t, name, type, help);
	for (uint32_t i = 0; i < v->opx.n_peers && i < OPX_MAX_NODES; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%" PRIu64, (uint64_t)v->opx.peers[i].pid);
		struct metrics_label l = {"peer", id};
		const struct tp_peer_stats *st = &v->peer_stats[i];
		uint64_t value = which == PEER_TX_BYTES	  ? st->tx_bytes
				 : which == PEER_RX_BYTES ? st->rx_bytes
				 : which == PEER_DOWNS	  ? st->downs
							  : st->up;
		metrics_sample_u64(t, name, &l, 1, value);
	}
}

void replica_metrics_write(struct replica *r, struct metrics_text *t)
{
	struct replica_view *v = malloc(sizeof(*v)); /* a few KiB: not on a small stack */
	if (!v) {
		t->rc = t->rc ? t->rc : -ENOMEM;
		return;
	}
	pthread_mutex_lock(&r->view_lock);
	*v = r->view;
	pthread_mutex_unlock(&r->view_lock);

	gauge(t, "omnifs_applied_index", "Log entries applied to this node's state (a count).",
	      v->applied_idx);
	gauge(t, "omnifs_decided_index", "Entries this node's log knows to be decided.",
	      v->opx.decided_idx);
	gauge(t, "omnifs_known_decided_index",
	      "The highest decided index this node has heard of, from its log or its peers.",
	      v->known_decided);
	gauge(t, "omnifs_compacted_index",
	      "Entries trimmed from this node's log (covered by the state).", v->opx.compacted_idx);
	gauge(t, "omnifs_is_leader", "1 if this node is the leader in its accept phase, else 0.",
	      v->mode == REPLICA_MEMBER && v->opx.role == OPX_ROLE_LEADER && v->accept_phase);
	counter(t, "omnifs_leader_changes_total",
		"Times this node saw a different leader (the first one counts).",
		v->leader_changes);
	gauge(t, "omnifs_ballot", "The number of the ballot this node follows (its promise).",
	      v->opx.promise.n);
	gauge(t, "omnifs_quorum",
	      "1 if a write made through this node can be decided now (status: quorum), else 0.",
	      v->writable);
	gauge(t, "omnifs_caught_up",
	      "1 if this node has applied everything it knows to be decided and reaches a leader.",
	      v->caught_up);
	gauge(t, "omnifs_proposals_in_flight", "Proposals of this node not yet applied.",
	      v->proposals_in_flight);
	gauge(t, "omnifs_configuration_id", "The membership configuration this node runs.",
	      v->config_id);
	metrics_histogram_family(t, "omnifs_proposal_duration_seconds",
				 "Proposals made on this node that were applied: time from the "
				 "proposal to its application here.",
				 &r->proposal_latency);
	metrics_histogram_family(t, "omnifs_log_sync_duration_seconds",
				 "Synced writes of the consensus log (RocksDB write with "
				 "fsync), and syncs of writes made before.",
				 &r->log_sync_latency);
	by_peer(t, v, "omnifs_peer_sent_bytes_total", "counter",
		"Bytes of frames handed to the link to each peer.", PEER_TX_BYTES);
	by_peer(t, v, "omnifs_peer_received_bytes_total", "counter",
		"Bytes of frames received from each peer.", PEER_RX_BYTES);
	by_peer(t, v, "omnifs_peer_connected", "gauge", "1 if the link to the peer is up, else 0.",
		PEER_UP);
	by_peer(t, v, "omnifs_peer_link_failures_total", "counter",
		"Times the link to each peer went down: its connection lost, or nothing heard "
		"for silence_ms.",
		PEER_DOWNS);
	counter(t, "omnifs_state_transfers_total",
		"State transfers this node completed (it fetched a peer's whole state).",
		atomic_load(&r->xfers_done));
	counter(t, "omnifs_state_transfer_received_bytes_total",
		"Bytes of state received by state transfers.", atomic_load(&r->xfer_bytes_total));
	gauge(t, "omnifs_state_transfer_active", "1 while a state transfer is in progress.",
	      v->transferring);
	struct rocks_memory m;
	rocks_memory_get(&m);
	gauge(t, "omnifs_rocksdb_memory_budget_bytes",
	      "RocksDB's memory budget in this process ([storage] memory_mb).", m.budget);
	metrics_family(t, "omnifs_rocksdb_memory_bytes", "gauge",
		       "RocksDB's memory in this process (the log and the state), by use.");
	struct metrics_label l = {"use", "memtables"};
	metrics_sample_u64(t, "omnifs_rocksdb_memory_bytes", &l, 1, m.memtables);
	l.value = "block_cache";
	metrics_sample_u64(t, "omnifs_rocksdb_memory_bytes", &l, 1, m.block_cache);
	l.value = "table_readers";
	metrics_sample_u64(t, "omnifs_rocksdb_memory_bytes", &l, 1, m.readers);
	free(v);
}
