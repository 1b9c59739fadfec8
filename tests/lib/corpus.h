/*
 * Writing fuzz seed files, for the corpus generators (tests/<area>/gen_*.c):
 * one file DIR/NAME holding exactly buf. 0, or 1 with the reason on stderr.
 */
#ifndef OMNIFS_TEST_CORPUS_H
#define OMNIFS_TEST_CORPUS_H

#include <stdio.h>

static inline int corpus_write(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		perror(path);
		if (f)
			fclose(f);
		return 1;
	}
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

#endif /* OMNIFS_TEST_CORPUS_H */
