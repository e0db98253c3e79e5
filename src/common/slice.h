/*
 * slice.h - wire data as pointer + length (STYLE.md rule 5).
 *
 * Bytes that came from a peer are never treated as C strings: they travel as
 * a struct slice. LIT("x") makes a slice from a string literal.
 */
#ifndef LXCM_SLICE_H
#define LXCM_SLICE_H

#include <stddef.h>
#include <string.h>

struct slice {
	const char *base;
	size_t len;
};

#define LIT(s) ((struct slice){(s), sizeof(s) - 1})
#define SLICE_NULL ((struct slice){NULL, 0})

static inline struct slice slice_make(const char *base, size_t len)
{
	return (struct slice){base, len};
}

/* Only for our own NUL-terminated strings, never for peer bytes. */
static inline struct slice slice_cstr(const char *s)
{
	return (struct slice){s, s ? strlen(s) : 0};
}

static inline int slice_eq(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

int slice_eq_nocase(struct slice a, struct slice b);
int slice_starts_with(struct slice s, struct slice prefix);
/* The value of one hex digit (either case), or -1: the one hex decoder of the tree. */
int slice_hexval(char c);
/* Returns a malloc'd NUL-terminated copy, or NULL on allocation failure. */
char *slice_dup(struct slice s);
/* Parses a whole slice as a base-10 integer in [min, max]; 0 or -EINVAL. */
int slice_to_int64(struct slice s, long long min, long long max, long long *out);

#endif
