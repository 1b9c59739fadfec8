/* Helpers shared by the command-line programs (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>

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
