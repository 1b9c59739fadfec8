/*
 * `omnifsctl lock NAME [--wait SECONDS] -- CMD...`: runs CMD holding the
 * cluster-wide named lock NAME (omnifsctl_lock.c).
 */
#ifndef OMNIFS_OMNIFSCTL_LOCK_H
#define OMNIFS_OMNIFSCTL_LOCK_H

/* argv[0] is "lock". Returns the exit status for omnifsctl: CMD's, or 1 the
 * lock was not taken, 2 bad usage, 3 the daemon could not be reached. */
int lock_main(const char *sock, int argc, char **argv);

#endif /* OMNIFS_OMNIFSCTL_LOCK_H */
