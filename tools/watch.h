/*
 * omnifsctl watch / kv watch (tools/watch.c): the change feed's client.
 */
#ifndef OMNIFS_TOOLS_WATCH_H
#define OMNIFS_TOOLS_WATCH_H

#include <stdbool.h>

/* Exit status when the index to go on from was dropped from the feed. */
#define WATCH_EXIT_COMPACTED 5

/*
 * Runs `watch` (kv false) or `kv watch` with the words after it, talking to
 * the daemon at sock; mount is the mountpoint from the config (NULL or ""
 * if unknown: paths are then paths in the tree). Returns the exit status:
 * 2 bad usage, WATCH_EXIT_COMPACTED; otherwise it runs until killed.
 */
int watch_main(const char *sock, const char *mount, bool kv, int argc, char **argv);

#endif /* OMNIFS_TOOLS_WATCH_H */
