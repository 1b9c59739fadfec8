/*
 * The node's config file (INI, parsed with libinih).
 *
 * One file per node names the node, its cluster, its peers, its data dir and
 * mountpoint, timing and security. Every key is checked: an unknown section
 * or key, a duplicate, a bad value or a missing required key is an error whose
 * text names the file, the line, the key and what was expected. The example
 * in fs/omnifs.conf.example documents every key.
 */
#ifndef OMNIFS_CONFIG_H
#define OMNIFS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define CFG_MAX_PEERS	64  /* members a config may list */
#define CFG_ADDR_MAX	256 /* "host:port", NUL included */
#define CFG_CLUSTER_MAX 64  /* cluster name, NUL included */
#define CFG_KEY_Z85_LEN 40  /* a CURVE public key in Z85 */
#define CFG_ERR_MAX	512 /* room for one error message */

struct cfg_peer {
	uint64_t id;			      /* node id, >= 1 */
	char address[CFG_ADDR_MAX];	      /* host:port other nodes dial */
	char public_key[CFG_KEY_Z85_LEN + 1]; /* Z85 CURVE key, "" if not given */
	bool learner; /* a member table's non-voting member (never in [peers]) */
};

struct cfg {
	char path[PATH_MAX]; /* the file this was read from (for messages) */

	/* [node] */
	uint64_t node_id;	       /* required */
	char cluster[CFG_CLUSTER_MAX]; /* required: name shared by all members */
	uint64_t cluster_id;	   /* derived: 64-bit hash of cluster, on the wire and on disk */
	char listen[CFG_ADDR_MAX]; /* bind address; default: own [peers] address */
	char data_dir[PATH_MAX];   /* required */
	char mountpoint[PATH_MAX]; /* "" = run without a FUSE mount (KV only) */
	char control_socket[PATH_MAX]; /* default: <data_dir>/control.sock */
	enum log_level log_level;      /* default: info */
	bool join; /* joins a running cluster instead of forming one from [peers] */

	/* [peers]: every member, this node included, id = host:port */
	size_t n_peers;
	struct cfg_peer peers[CFG_MAX_PEERS];

	/* [timing], all in milliseconds */
	uint32_t tick_ms;	      /* the consensus clock, default 10 */
	uint32_t election_timeout_ms; /* one heartbeat round, default 200 */
	uint32_t resend_timeout_ms;   /* resend of unanswered messages, default 500 */
	uint32_t flush_timeout_ms;    /* forced flush of a partial batch, default 10 */
	uint32_t commit_timeout_ms;   /* a write not decided by then fails, default 5000 */

	/* [consensus] */
	uint32_t batch_size;	  /* entries per replicated batch, default 64 */
	uint32_t leader_priority; /* higher wins elections among equals, default 0 */
	uint32_t read_quorum;	  /* flexible quorum, 0 = majority */
	uint32_t write_quorum;	  /* flexible quorum, 0 = majority */

	/* [compaction]: when the log is compacted (replica_apply.c) */
	uint32_t compact_max_entries;	 /* compact once this many entries are retained */
	uint64_t compact_max_bytes;	 /* ... or this many bytes were applied since */
	uint32_t compact_retain_entries; /* entries kept below the applied index */
	uint32_t feed_entries;		 /* indexes the change feed keeps (omnifsctl watch) */

	/* [security] */
	bool plaintext;			/* true only if asked for: no CURVE at all */
	bool plaintext_allow_network;	/* plaintext may listen beyond loopback */
	char secret_key_file[PATH_MAX]; /* this node's keypair; required unless plaintext */

	/* [fs]: limits of the filesystem, the same on every node */
	uint32_t fs_max_file_size_mb;  /* largest regular file, default 64 */
	uint32_t fs_max_total_size_mb; /* sum of all file sizes, default 10240 */
	uint32_t fs_max_inodes;	       /* files, dirs and links, default 1000000 */
	uint32_t fs_write_buffer_mb;   /* buffered writes per open file before a flush, default 4 */
	uint32_t fs_read_ahead_kb;     /* the mount's kernel readahead window, default 4096 */
	/* For tests, not documented for users: */
	uint32_t fs_inval_queue_max; /* queued kernel invalidations before they turn coarse,
				      * default 65536 */
	uint32_t fs_kernel_cache_ms; /* kernel attribute and dentry cache, default 1000 */

	/* [locks]: cluster-wide flock, fcntl and named locks (fs/vfs/locks.h) */
	uint32_t lock_lease_ms; /* a silent node's locks are freed after this, default 5000 */
	/* [history]: previous versions of files, bounds the same on every node */
	bool hist_enabled;	    /* default true */
	uint32_t hist_versions;	    /* kept per file, default 10 */
	uint32_t hist_max_age_s;    /* 0 = no age bound, default 30 days */
	uint32_t hist_max_total_mb; /* all kept versions, default 256 */
	uint32_t hist_max_file_kb;  /* larger files keep no versions, default 1024 */
	uint32_t hist_trim_s;	    /* for tests: seconds between trimmings, default 30 */

	/* [metrics]: Prometheus metrics over HTTP (also at /.omnifs/metrics) */
	char metrics_listen[CFG_ADDR_MAX]; /* host:port of the endpoint; "" = off (default) */
	/* [storage] */
	uint32_t storage_memory_mb; /* RocksDB's memtables and block cache, default 16 */
};

/*
 * Fills *c with defaults, then reads the file at path. On error returns
 * -EINVAL (bad content) or -errno (cannot read the file) and writes one line
 * into err (always NUL-terminated). On error *c is unspecified.
 */
int cfg_load(struct cfg *c, const char *path, char *err, size_t err_len);

/* As cfg_load, from a string; name stands in for the path in messages. */
int cfg_parse_string(struct cfg *c, const char *text, const char *name, char *err, size_t err_len);

/* The peer entry with this id, or NULL. */
const struct cfg_peer *cfg_find_peer(const struct cfg *c, uint64_t id);

/* 64-bit FNV-1a of the cluster name, never 0. */
uint64_t cfg_cluster_hash(const char *name);

/* A 40-character Z85 CURVE public key. */
bool cfg_key_is_valid(const char *z85);

/* Checks "host:port" (host: IPv4, [IPv6] or a DNS name; port 1..65535). */
bool cfg_address_is_valid(const char *address);

/* True if a valid host:port names this machine only: 127.0.0.0/8, [::1] or
 * localhost (where plaintext may listen without plaintext_allow_network). */
bool cfg_address_is_loopback(const char *address);

#endif /* OMNIFS_CONFIG_H */
