/*
 * fuzz.h - the libFuzzer entry points every fuzz/fuzz_*.c defines, and small
 * helpers for carving one fuzz input into parts.
 */
#ifndef LXCM_FUZZ_H
#define LXCM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * The invariant checks of a target: a failed one aborts, so libFuzzer saves
 * the input as a crash. assert() would vanish under -DNDEBUG.
 */
#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* A malloc'd NUL-terminated copy of len bytes (for APIs that take C strings). */
static inline char *fuzz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

/*
 * Splits the input at a separator: returns the next part of *data (length
 * in *len) and advances past the separator, or returns NULL when the input
 * is used up. The separator is one line holding only "----".
 */
static inline const uint8_t *fuzz_next_part(const uint8_t **data, size_t *size, size_t *len)
{
	static const char sep[] = "\n----\n";
	const uint8_t *start = *data, *p;

	if (*data == NULL)
		return NULL;
	p = memmem(start, *size, sep, sizeof(sep) - 1);
	if (p == NULL) {
		*len = *size;
		*data = NULL;
		*size = 0;
		return start;
	}
	*len = (size_t)(p - start);
	*size -= *len + sizeof(sep) - 1;
	*data = p + sizeof(sep) - 1;
	return start;
}

#endif
