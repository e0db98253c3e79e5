/* buf.c - growable byte buffer with a cap. */
#include "common/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
	b->sealed = 0;
}

static int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, n;
	char *p;

	if (b->sealed)
		return -EPERM;
	if (extra > b->max - b->len)
		return -E2BIG;
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	n = b->alloc ? b->alloc : 256;
	while (n < need)
		n *= 2;
	if (n > b->max + 1)
		n = b->max + 1;
	p = realloc(b->data, n);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->alloc = n;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int rc = buf_reserve(b, len);

	if (rc < 0)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	b->len += (size_t)n;
	return 0;
}

/*
 * Consuming, resetting or stealing a sealed buffer would change bytes that
 * slices still point at: a bug in our code, never peer input, so it stops
 * the process in every build (an assert would vanish under NDEBUG).
 */
static void buf__check_unsealed(const struct buf *b)
{
	if (b->sealed) {
		fprintf(stderr, "buf: a sealed buffer was consumed, reset or stolen\n");
		abort();
	}
}

void buf_seal(struct buf *b)
{
	b->sealed = 1;
}

void buf_consume(struct buf *b, size_t n)
{
	buf__check_unsealed(b);
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
	buf__check_unsealed(b);
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->sealed = 0;
}

char *buf_steal(struct buf *b, size_t *len)
{
	char *p = b->data;

	buf__check_unsealed(b);
	if (len)
		*len = b->len;
	if (p == NULL)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}
