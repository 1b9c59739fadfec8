/*
 * Small helpers the command-line programs share: numbers read strictly
 * (the whole word, in range, or refused) and the exit status for bad usage.
 */
#ifndef OMNIFS_CLI_H
#define OMNIFS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

/* Bad usage, as sysexits(3) names it: every omnifs program exits with it
 * for an unknown option, a missing argument or a malformed number. */
#define CLI_EXIT_USAGE EX_USAGE

/* Reads s as a decimal number in [min, max] into *out: true, or false
 * (and *out untouched) for anything else, "5x", "", "-1" or an overflow. */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Writes the path arg names into abs (cap bytes, at least 2), without
 * trailing slashes. With resolve, a path that exists is made canonical
 * (symlinks followed) and a relative one that does not is taken from the
 * working directory; without, arg is taken as it is. */
void cli_abs_path(const char *arg, bool resolve, char *abs, size_t cap);

#endif /* OMNIFS_CLI_H */
