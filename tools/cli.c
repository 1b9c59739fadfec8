/* Helpers shared by the command-line programs (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	/* strtoull takes leading blanks and a sign: a number starts with a digit. */
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

void cli_abs_path(const char *arg, bool resolve, char *abs, size_t cap)
{
	char real[PATH_MAX];
	if (resolve && realpath(arg, real))
		snprintf(abs, cap, "%s", real);
	else if (resolve && arg[0] != '/' && getcwd(real, sizeof(real)))
		snprintf(abs, cap, "%s/%s", real, arg);
	else
		snprintf(abs, cap, "%s", arg);
	size_t len = strlen(abs);
	while (len > 1 && abs[len - 1] == '/')
		abs[--len] = '\0';
}
