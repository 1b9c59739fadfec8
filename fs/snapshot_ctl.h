/*
 * The control command `snapshot-save PATH` (omnifsctl snapshot save): the
 * daemon writes a snapshot file of its applied state at PATH itself.
 */
#ifndef OMNIFS_SNAPSHOT_CTL_H
#define OMNIFS_SNAPSHOT_CTL_H

#include "config.h"
#include "ctl.h"
#include "kv.h"

/* argv: "snapshot-save" PATH (absolute). Writes PATH.part, then renames it.
 * The body says where, at which index, the digest, records, bytes and time.
 * Returns 0 or a positive errno (ctl_handler_fn). Any thread. */
int snapshot_save_cmd(struct kv_store *kv, const struct cfg *c, int argc, char **argv,
		      struct ctl_buf *out);

#endif /* OMNIFS_SNAPSHOT_CTL_H */
