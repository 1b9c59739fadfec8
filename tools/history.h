/*
 * omnifsctl history / restore (tools/history.c): the kept versions of a
 * file, read through the mount's /.omnifs/history/ view.
 */
#ifndef OMNIFS_TOOLS_HISTORY_H
#define OMNIFS_TOOLS_HISTORY_H

/*
 * Runs `history` (restore false) or `restore` with the words after it;
 * mount is the mountpoint from the config (NULL or "" if unknown: the
 * command then fails, it works through the mount). Returns the exit
 * status: 0, 1 failed, 2 bad usage.
 */
int history_main(const char *mount, int restore, int argc, char **argv);

#endif /* OMNIFS_TOOLS_HISTORY_H */
