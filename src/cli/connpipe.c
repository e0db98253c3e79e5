/* connpipe.c - a backpressured byte pipe between two conns (connpipe.h). */
#include "cli/connpipe.h"

#include <stdlib.h>

/* One direction's source: the conn read from, and where its bytes go. */
struct connpipe_side {
	struct conn *c; /* NULL once closed */
	uint64_t moved; /* bytes read here and written to the peer */
	int stopped;	/* reading stopped until the peer drains */
};

struct connpipe {
	struct connpipe_side s[2];
	connpipe_closed_fn on_closed;
	void *data;
};

static struct connpipe_side *connpipe_side_of(struct connpipe *p, struct conn *c, int *i)
{
	*i = p->s[0].c == c ? 0 : 1;
	return &p->s[*i];
}

/* Ends both sides: the peer keeps its queued output, this side goes now. */
static void connpipe_end_both(struct connpipe *p, int i)
{
	if (p->s[i].c)
		conn_close(p->s[i].c);
	if (p->s[1 - i].c)
		conn_shutdown(p->s[1 - i].c);
}

/* Moves bytes read on side i to the other side. */
static void connpipe_forward(struct connpipe *p, int i, const char *data, size_t len)
{
	struct connpipe_side *from = &p->s[i], *to = &p->s[1 - i];
	int rc;

	if (len == 0)
		return;
	if (to->c == NULL) {
		connpipe_end_both(p, i);
		return;
	}
	rc = conn_write(to->c, data, len);
	if (rc < 0) {
		connpipe_end_both(p, 1 - i);
		return;
	}
	from->moved += len;
	if (rc == 0 && !from->stopped) {
		from->stopped = 1;
		conn_read_stop(from->c);
	}
}

static void connpipe_on_data(struct conn *c, const char *data, size_t len)
{
	struct connpipe *p = conn_data(c);
	int i;

	connpipe_side_of(p, c, &i);
	connpipe_forward(p, i, data, len);
}

static void connpipe_on_end(struct conn *c, int err)
{
	struct connpipe *p = conn_data(c);
	int i;

	(void)err;
	connpipe_side_of(p, c, &i);
	connpipe_end_both(p, i);
}

/* c's output went down: the side that feeds it may read again. */
static void connpipe_on_drain(struct conn *c)
{
	struct connpipe *p = conn_data(c);
	struct connpipe_side *feeder;
	int i;

	connpipe_side_of(p, c, &i);
	feeder = &p->s[1 - i];
	if (feeder->stopped && feeder->c) {
		feeder->stopped = 0;
		conn_read_start(feeder->c);
	}
}

static void connpipe_on_close(struct conn *c)
{
	struct connpipe *p = conn_data(c);
	int i;

	connpipe_side_of(p, c, &i)->c = NULL;
	if (p->s[1 - i].c) {
		conn_close(p->s[1 - i].c);
		return;
	}
	if (p->on_closed)
		p->on_closed(p, p->data);
	free(p);
}

static const struct conn_callbacks connpipe_cbs = {
    .on_data = connpipe_on_data,
    .on_end = connpipe_on_end,
    .on_drain = connpipe_on_drain,
    .on_close = connpipe_on_close,
};

struct connpipe *connpipe_start(struct conn *a, const char *a_read, size_t a_len, struct conn *b,
				const char *b_read, size_t b_len, connpipe_closed_fn on_closed,
				void *data)
{
	struct connpipe *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		conn_close(a);
		conn_close(b);
		return NULL;
	}
	p->s[0].c = a;
	p->s[1].c = b;
	p->on_closed = on_closed;
	p->data = data;
	conn_set_data(a, p);
	conn_set_data(b, p);
	conn_set_callbacks(a, &connpipe_cbs);
	conn_set_callbacks(b, &connpipe_cbs);
	conn_read_start(a);
	conn_read_start(b);
	connpipe_forward(p, 0, a_read, a_len);
	if (p->s[0].c && p->s[1].c)
		connpipe_forward(p, 1, b_read, b_len);
	return p;
}

void connpipe_close(struct connpipe *p)
{
	if (p->s[0].c)
		conn_close(p->s[0].c);
	if (p->s[1].c)
		conn_close(p->s[1].c);
}

void connpipe_counts(const struct connpipe *p, uint64_t *a_to_b, uint64_t *b_to_a)
{
	*a_to_b = p->s[0].moved;
	*b_to_a = p->s[1].moved;
}
