/*
 * omnifsctl snapshot save FILE | verify FILE (snapshot_cli.c).
 */
#ifndef OMNIFS_SNAPSHOT_CLI_H
#define OMNIFS_SNAPSHOT_CLI_H

/* argv[0] is "save" or "verify". sock: the control socket (save only).
 * Returns omnifsctl's exit status. */
int snapshot_main(const char *sock, int argc, char **argv);

#endif /* OMNIFS_SNAPSHOT_CLI_H */
