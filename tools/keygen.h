/*
 * `omnifs-keygen`: writes a node's CURVE keypair. Kept as a function so the
 * admin CLI can offer the same thing as `omnifsctl keygen`.
 */
#ifndef OMNIFS_KEYGEN_H
#define OMNIFS_KEYGEN_H

/* argv[0] is the command name. Returns the process exit status. */
int keygen_main(int argc, char **argv);

#endif /* OMNIFS_KEYGEN_H */
