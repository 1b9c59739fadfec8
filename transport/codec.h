/*
 * The omnifs wire format: one binary frame per ZeroMQ message.
 *
 * A frame is a fixed 40-byte header followed by a payload. Every field is
 * fixed-width little-endian:
 *
 *   off len field
 *     0   4 magic        "OMFS" (bytes 4f 4d 46 53)
 *     4   1 version      TP_WIRE_VERSION
 *     5   1 type         1..14: an OmniPaxos message (enum opx_msg_type); 128: APP
 *     6   2 flags        0 (any other value is rejected: room for later versions)
 *     8   8 cluster_id   the 64-bit hash of the cluster name
 *    16   8 from         sender node id
 *    24   8 to           receiver node id
 *    32   4 config_id    the sender's configuration
 *    36   4 payload_len  bytes after the header; must equal the rest of the frame
 *
 * Payloads (ballot = config_id u32, n u32, priority u32, pid u64; seq = session
 * u64, counter u64; bool = one byte 0 or 1; entries = count u32, then per entry
 * len u32 + bytes; stop-sign = config_id u32, n_nodes u32, n_nodes x u64, read
 * quorum u32, write quorum u32, metadata_len u32 + bytes; optional stop-sign =
 * bool + stop-sign; log sync = snapshot kind u8, snapshot_len u32 + bytes,
 * sync_idx u64, entries, optional stop-sign) follow the field order of the
 * structs in consensus/msg.h. An APP payload is app_type u16 then opaque bytes.
 *
 * Decoding checks every length against the bytes that remain, every enum and
 * bool against its range, and that the payload is consumed exactly; any
 * violation is -EBADMSG, never a crash or an over-read. A decoded message
 * borrows the frame (entries, snapshots and metadata point into it) and a
 * caller-supplied scratch area (entry arrays, stop-signs): at most one entry
 * array and one stop-sign, so it never needs more than the frame justifies.
 *
 * This file knows nothing of sockets, peers or keys: transport.c does that.
 */
#ifndef OMNIFS_TP_CODEC_H
#define OMNIFS_TP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

#define TP_WIRE_MAGIC	 0x53464d4fu /* "OMFS" read as little-endian u32 */
#define TP_WIRE_VERSION	 1
#define TP_HDR_LEN	 40
#define TP_FRAME_APP	 128 /* header type of an application frame */
#define TP_MAX_FRAME_LEN (TP_HDR_LEN + (size_t)UINT32_MAX)

/* The header fields, decoded. */
struct tp_hdr {
	uint8_t version;
	uint8_t type; /* enum opx_msg_type or TP_FRAME_APP */
	uint64_t cluster_id;
	uint64_t from;
	uint64_t to;
	uint32_t config_id;
	uint32_t payload_len;
};

/*
 * An application frame: node-to-node traffic of the replicated KV (chunked
 * state transfer and other requests). app_type is the KV's to define; the
 * transport only carries it. data is borrowed (see each function).
 */
struct tp_app {
	uint16_t app_type;
	const uint8_t *data;
	uint32_t len;
};

/* A decoded frame: either an OmniPaxos message or an app frame. */
struct tp_frame {
	struct tp_hdr hdr;
	bool is_app; /* true: app is set; false: msg is set */
	struct opx_msg msg;
	struct tp_app app;
};

/* A growable output buffer. Owns data; release with tp_buf_free. */
struct tp_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void tp_buf_free(struct tp_buf *b);

/*
 * Bytes the encoded frame of m needs, header included, into *len. Returns 0,
 * or -EINVAL if m cannot be encoded (unknown type, enum out of range, more
 * than OPX_MAX_NODES nodes, metadata or entry too long, frame over 4 GiB).
 */
int tp_encoded_len(const struct opx_msg *m, size_t *len);

/*
 * Encodes m (borrowed) as a frame of cluster_id into buf[0..cap). The header
 * takes from, to and config_id from m. On success returns 0 and sets *len.
 * If cap is too small, returns -ENOBUFS with *len set to the size needed and
 * writes nothing (buf may be NULL with cap 0: a size query). -EINVAL as
 * tp_encoded_len.
 */
int tp_encode_msg(uint64_t cluster_id, const struct opx_msg *m, uint8_t *buf, size_t cap,
		  size_t *len);

/* As tp_encode_msg, replacing b's contents (grown as needed). -ENOMEM if it cannot grow. */
int tp_encode_msg_buf(uint64_t cluster_id, const struct opx_msg *m, struct tp_buf *b);

/* Size of the app frame carrying data_len payload bytes, or 0 if too long. */
size_t tp_app_encoded_len(size_t data_len);

/*
 * Encodes an application frame (hdr from/to/config_id given; app->data
 * borrowed). Returns 0, -ENOBUFS with *len = needed, or -EINVAL if too long.
 */
int tp_encode_app(uint64_t cluster_id, uint64_t from, uint64_t to, uint32_t config_id,
		  const struct tp_app *app, uint8_t *buf, size_t cap, size_t *len);

/*
 * Where the decoder puts entry arrays and stop-signs. buf (caller-owned,
 * aligned for pointers: malloc'd memory is) holds cap bytes. When decoding
 * fails with -ENOBUFS, need says how many bytes would have been enough; grow
 * and decode again. tp_decode_scratch_len bounds need from the frame length.
 */
struct tp_scratch {
	void *buf;
	size_t cap;
	size_t need;
};

/* Upper bound of the scratch a frame of frame_len bytes may need to decode. */
size_t tp_decode_scratch_len(size_t frame_len);

/*
 * Parses only the header of frame[0..len): magic, version, flags and that
 * payload_len matches len exactly. 0, or -EBADMSG (truncated, bad magic,
 * flags, length) or -EPROTONOSUPPORT (another wire version).
 */
int tp_decode_hdr(const uint8_t *frame, size_t len, struct tp_hdr *hdr);

/*
 * Decodes frame[0..len) into *out. The frame must belong to cluster_id
 * (-EACCES otherwise). Pointers in *out point into frame (borrowed: valid as
 * long as the frame is) and into scratch->buf (borrowed, likewise). Errors:
 * -EBADMSG malformed, -EPROTONOSUPPORT other version, -EACCES other cluster,
 * -ENOBUFS scratch too small (scratch->need set; never if cap is at least
 * tp_decode_scratch_len(len)).
 * On error *out is unspecified.
 */
int tp_decode(const uint8_t *frame, size_t len, uint64_t cluster_id, struct tp_scratch *scratch,
	      struct tp_frame *out);

#endif /* OMNIFS_TP_CODEC_H */
