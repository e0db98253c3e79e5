/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Every buffer a peer can grow is made with a named cap (STYLE.md rule 4).
 * Appending past the cap fails with -E2BIG and leaves the content as it was.
 * The data is always NUL-terminated for convenience, but the length is what
 * counts.
 *
 * Slices into a buffer (a parsed head's header names and values) are valid
 * only while the bytes neither move nor change. Such a buffer is sealed
 * (buf_seal) before the first slice into it is made: from then on an append
 * fails with -EPERM instead of reallocating, and consuming, resetting or
 * stealing it is a bug that stops the process. Only buf_free ends a seal. See docs/architecture.md,
 * "Slices into buffers".
 */
#ifndef LXCM_BUF_H
#define LXCM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t max; /* the cap: len never exceeds it */
	int sealed; /* buf_seal: the bytes never move or change again */
};

void buf_init(struct buf *b, size_t max);
/* 0, -E2BIG past the cap, -EPERM once sealed, -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fixes the bytes in place: slices into them stay valid until buf_free. */
void buf_seal(struct buf *b);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *buf_steal(struct buf *b, size_t *len);

#endif
