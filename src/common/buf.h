/*
 * buf.h - a growable byte buffer with a hard cap (curl's dynbuf).
 *
 * Every buffer a peer can grow is made with a named cap (STYLE.md rule 4).
 * Appending past the cap fails with -E2BIG and leaves the content as it was.
 * The data is always NUL-terminated for convenience, but the length is what
 * counts.
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
};

void buf_init(struct buf *b, size_t max);
/* 0, -E2BIG past the cap, -ENOMEM. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the bytes to the caller (who frees them) and resets the buffer. */
char *buf_steal(struct buf *b, size_t *len);

#endif
