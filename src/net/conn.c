/*
 * conn.c - plain or TLS byte streams over libuv.
 *
 * TLS runs through two BIOs of our own. rbio (conn_rbio_*) hands OpenSSL
 * the ciphertext of the current socket read straight from libuv's buffer
 * (c->rin), and only what OpenSSL did not take before the user stopped
 * reading is copied aside (c->rkeep); SSL_read gives plaintext. wbio
 * (conn_bio_*) appends SSL_write's ciphertext straight into the uv_write
 * request being filled (c->wq), which conn_flush_tls then hands to the
 * socket. So no byte is copied into or out of a memory BIO, and an idle
 * connection holds no buffer. All reads share one loop-wide buffer because
 * libuv delivers them synchronously and we consume them before returning.
 *
 * A server-side conn may first read a prefix (conn_set_prefix) before any
 * of this: while it is incomplete, libuv reads into c->pre, a buffer of the
 * prefix's cap, and what follows the prefix is then handled as a read.
 *
 * Re-entrancy: user callbacks may call conn_close; every loop that calls
 * back checks CONN_F_CLOSING afterwards and stops.
 */
#include "net/conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "net/tls.h"

#define CONN_READ_CHUNK (64 * 1024)
/* The largest TLS record's plaintext; SSL_write cuts its input into these. */
#define CONN_TLS_RECORD 16384
/* Room reserved per record for its header, tag and padding. */
#define CONN_TLS_RECORD_SLACK 128

enum {
	CONN_F_HANDLE = 1 << 0,	   /* h is initialised and must be closed */
	CONN_F_OPEN = 1 << 1,	   /* connected and handshake done */
	CONN_F_READING = 1 << 2,   /* the user wants data */
	CONN_F_CLOSING = 1 << 3,   /* conn_close called */
	CONN_F_SHUTDOWN = 1 << 4,  /* close once output is flushed */
	CONN_F_WANT_DRAIN = 1 << 5,/* a write hit the high-water mark */
	CONN_F_ENDED = 1 << 6,	   /* on_end delivered */
	CONN_F_CLIENT = 1 << 7,
	CONN_F_IDLE = 1 << 8,	   /* idle handle initialised */
	CONN_F_HAS_FP = 1 << 9,
	CONN_F_UV_READING = 1 << 10,
	CONN_F_RESOLVING = 1 << 11,
	CONN_F_END_PENDING = 1 << 12, /* on_end is due on the next loop turn */
	CONN_F_HALF = 1 << 13,	   /* ended by the peer's EOF: we may still write */
	CONN_F_WSHUT = 1 << 14,	   /* conn_shutdown_write: our output is ended, reading goes on */
};

struct conn {
	uv_loop_t *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_idle_t idle; /* delivers TLS-buffered plaintext after a resume */
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req; /* conn_shutdown_write */
	uv_getaddrinfo_t gai;
	struct addrinfo *ai_list, *ai_next;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
	const struct conn_callbacks *cbs;
	void *data;
	unsigned flags;
	int handles_open;
	int end_err;
	size_t pending;
	uint64_t submitted; /* bytes handed to libuv writes, ever (conn_bytes_sent) */
	size_t high_water;
	char *early;	   /* plaintext written before the handshake finished */
	size_t early_len;
	const char *rin;	   /* ciphertext of the socket read under way (rbio) */
	size_t rin_len;
	char *rkeep;		   /* ciphertext left over from earlier reads (rbio) */
	size_t rkeep_off, rkeep_len, rkeep_cap;
	struct conn_write_req *wq; /* TLS output being gathered by wbio, not yet written */
	size_t wq_hint;		   /* ciphertext expected from the SSL_write under way */
	char *host;
	int port;
	char pin[65];
	char fingerprint[65];
	char peer_addr[64];
	char socket_addr[64]; /* set once conn_set_peer_addr replaced peer_addr */
	const unsigned char *alpn; /* client: the ALPN list to offer (the caller's) */
	unsigned alpn_len;
	conn_prefix_fn prefix_fn; /* the prefix is not complete yet */
	char *pre;		  /* its bytes so far (pre_len of pre_cap) */
	size_t pre_len, pre_cap;
};

struct conn_write_req {
	uv_write_t req;
	struct conn *c;
	size_t len;
	size_t cap;
	char data[];
};

/* One pair per thread: a loop runs on one thread and consumes reads at once. */
static _Thread_local char conn_read_buf[CONN_READ_CHUNK];
static _Thread_local char conn_plain_buf[CONN_READ_CHUNK];
/* Small slices of conn_writev are gathered here into whole TLS records. */
static _Thread_local char conn_stage_buf[CONN_TLS_RECORD];

static void conn_flush_tls(struct conn *c);
static void conn_tls_input(struct conn *c);

/*
 * Write requests are recycled, per thread: a bulk transfer makes one per
 * write, and freeing them let glibc hand the top of the heap back to the
 * kernel, which then faulted zeroed pages in again for the next ones (a
 * visible share of a download's CPU). Capacities are multiples of
 * CONN_WQ_UNIT so that a recycled request fits most writes; the cache is
 * freed when its thread ends.
 */
#define CONN_WQ_UNIT (16 * 1024)
#define CONN_WQ_CACHE 16
#define CONN_WQ_CACHE_MAX_CAP (256 * 1024)

struct conn_wq_cache {
	int n;
	struct conn_write_req *r[CONN_WQ_CACHE];
};

static _Thread_local struct conn_wq_cache conn_wq_cache;
static pthread_key_t conn_wq_key;
static uv_once_t conn_wq_once = UV_ONCE_INIT;

static void conn_wq_cache_drop(void *arg)
{
	struct conn_wq_cache *cc = arg;

	while (cc->n > 0)
		free(cc->r[--cc->n]);
}

static void conn_wq_key_init(void)
{
	(void)pthread_key_create(&conn_wq_key, conn_wq_cache_drop);
}

static size_t conn_wq_round(size_t need)
{
	return need ? (need + CONN_WQ_UNIT - 1) / CONN_WQ_UNIT * CONN_WQ_UNIT : CONN_WQ_UNIT;
}

/* A write request with room for need bytes (len 0), recycled when one fits. */
static struct conn_write_req *conn_req_new(size_t need)
{
	struct conn_wq_cache *cc = &conn_wq_cache;
	struct conn_write_req *w;
	int i;

	for (i = cc->n - 1; i >= 0; i--) {
		if (cc->r[i]->cap >= need) {
			w = cc->r[i];
			cc->r[i] = cc->r[--cc->n];
			w->len = 0;
			return w;
		}
	}
	w = malloc(sizeof(*w) + conn_wq_round(need));
	if (w) {
		w->cap = conn_wq_round(need);
		w->len = 0;
	}
	return w;
}

static void conn_req_free(struct conn_write_req *w)
{
	struct conn_wq_cache *cc = &conn_wq_cache;

	if (w == NULL)
		return;
	if (cc->n < CONN_WQ_CACHE && w->cap <= CONN_WQ_CACHE_MAX_CAP) {
		if (cc->n == 0) {
			uv_once(&conn_wq_once, conn_wq_key_init);
			(void)pthread_setspecific(conn_wq_key, cc);
		}
		cc->r[cc->n++] = w;
		return;
	}
	free(w);
}

struct conn *conn_new(uv_loop_t *loop, SSL_CTX *tls, const struct conn_callbacks *cbs,
		      void *data)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->cbs = cbs;
	c->data = data;
	c->high_water = CONN_HIGH_WATER_DEFAULT;
	c->flags = CONN_F_READING;
	if (tls) {
		c->ctx = tls;
		SSL_CTX_up_ref(tls);
	}
	return c;
}

void *conn_data(const struct conn *c)
{
	return c->data;
}

void conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

void conn_set_callbacks(struct conn *c, const struct conn_callbacks *cbs)
{
	c->cbs = cbs;
}

uv_loop_t *conn_loop(const struct conn *c)
{
	return c->loop;
}

int conn_is_closing(const struct conn *c)
{
	return (c->flags & CONN_F_CLOSING) != 0;
}

int conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

const char *conn_peer_fingerprint(const struct conn *c)
{
	return (c->flags & CONN_F_HAS_FP) ? c->fingerprint : NULL;
}

const char *conn_peer_addr(const struct conn *c)
{
	return c->peer_addr;
}

const char *conn_socket_addr(const struct conn *c)
{
	return c->socket_addr[0] ? c->socket_addr : c->peer_addr;
}

void conn_set_peer_addr(struct conn *c, const char *addr)
{
	if (c->socket_addr[0] == '\0')
		memcpy(c->socket_addr, c->peer_addr, sizeof(c->socket_addr));
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", addr);
}

void conn_set_prefix(struct conn *c, conn_prefix_fn fn, size_t cap)
{
	c->prefix_fn = fn;
	c->pre_cap = cap;
}

size_t conn_write_pending(const struct conn *c)
{
	return c->pending;
}

uint64_t conn_bytes_sent(const struct conn *c)
{
	return c->submitted - uv_stream_get_write_queue_size(&c->h.stream);
}

void conn_set_high_water(struct conn *c, size_t bytes)
{
	c->high_water = bytes;
}

void conn_set_pin(struct conn *c, const char *fingerprint)
{
	size_t i;

	for (i = 0; fingerprint[i] && i < sizeof(c->pin) - 1; i++)
		c->pin[i] = (char)((fingerprint[i] >= 'A' && fingerprint[i] <= 'F')
					   ? fingerprint[i] + 32
					   : fingerprint[i]);
	c->pin[i] = '\0';
}

void conn__set_peer_fingerprint(struct conn *c, const char *fingerprint)
{
	size_t n = strlen(fingerprint);

	if (n != sizeof(c->fingerprint) - 1)
		return;
	memcpy(c->fingerprint, fingerprint, n + 1);
	c->flags |= CONN_F_HAS_FP;
}

void conn_set_alpn(struct conn *c, const unsigned char *protos, unsigned len)
{
	c->alpn = protos;
	c->alpn_len = len;
}

const char *conn_alpn(const struct conn *c, unsigned *len)
{
	const unsigned char *p = NULL;

	*len = 0;
	if (c->ssl)
		SSL_get0_alpn_selected(c->ssl, &p, len);
	return (const char *)p;
}

char *conn_peer_cert_pem(const struct conn *c)
{
	X509 *x = c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
	BIO *b;
	char *out = NULL, *p;
	long n;

	if (x == NULL || (b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_X509(b, x) == 1) {
		n = BIO_get_mem_data(b, &p);
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

/* ---- closing ---- */

static void conn_free(struct conn *c)
{
	if (c->cbs && c->cbs->on_close)
		c->cbs->on_close(c);
	free(c->pre); /* a prefix that never ended */
	if (c->ai_list)
		uv_freeaddrinfo(c->ai_list);
	SSL_free(c->ssl); /* frees the BIOs too */
	SSL_CTX_free(c->ctx);
	conn_req_free(c->wq);
	free(c->rkeep);
	free(c->early);
	free(c->host);
	free(c);
}

static void conn_on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles_open == 0)
		conn_free(c);
}

static void conn_on_close_timer(uv_handle_t *h)
{
	conn_on_handle_closed(h);
}

/* Closes whatever handles exist; the conn is freed when the last is gone. */
static void conn_close_handles(struct conn *c)
{
	if (c->flags & CONN_F_IDLE) {
		c->handles_open++;
		uv_close((uv_handle_t *)&c->idle, conn_on_close_timer);
	}
	if (c->flags & CONN_F_HANDLE) {
		c->handles_open++;
		uv_close(&c->h.handle, conn_on_handle_closed);
	}
	if (c->handles_open == 0) {
		/* Never had a handle: free on a later turn through a throwaway
		 * idle handle, so conn_close never calls back synchronously. */
		uv_idle_init(c->loop, &c->idle);
		c->idle.data = c;
		c->handles_open++;
		uv_close((uv_handle_t *)&c->idle, conn_on_close_timer);
	}
}

void conn_close(struct conn *c)
{
	if (c == NULL || (c->flags & CONN_F_CLOSING))
		return;
	c->flags |= CONN_F_CLOSING;
	c->flags &= ~CONN_F_READING;
	if (c->flags & CONN_F_RESOLVING) {
		/* conn_on_resolved finishes the close, cancelled or not. */
		uv_cancel((uv_req_t *)&c->gai);
		return;
	}
	conn_close_handles(c);
}

static void conn_on_idle(uv_idle_t *idle);

static void conn_idle_start(struct conn *c)
{
	if (!(c->flags & CONN_F_IDLE)) {
		uv_idle_init(c->loop, &c->idle);
		c->idle.data = c;
		c->flags |= CONN_F_IDLE;
	}
	uv_idle_start(&c->idle, conn_on_idle);
}

/*
 * Records the end of the connection (err 0: the peer closed cleanly) and
 * delivers on_end on the next loop turn, never from inside a conn_* call
 * such as conn_write, so callers up the stack stay valid.
 */
static void conn_end(struct conn *c, int err)
{
	if (c->flags & CONN_F_CLOSING)
		return;
	if (c->flags & CONN_F_ENDED) {
		/* A write failed after the peer's EOF: it is really gone. */
		if (err && (c->flags & CONN_F_HALF))
			conn_close(c);
		return;
	}
	c->flags |= CONN_F_ENDED | CONN_F_END_PENDING;
	c->end_err = err;
	conn_idle_start(c);
}

static void conn_deliver_end(struct conn *c)
{
	c->flags &= ~CONN_F_END_PENDING;
	if (c->cbs && c->cbs->on_end)
		c->cbs->on_end(c, c->end_err);
	else
		conn_close(c);
}

/* ---- writing ---- */

static void conn_on_write(uv_write_t *req, int status)
{
	struct conn_write_req *w = (struct conn_write_req *)req;
	struct conn *c = w->c;

	c->pending -= w->len;
	conn_req_free(w);
	if (c->flags & CONN_F_CLOSING)
		return;
	if (status < 0) {
		conn_end(c, status);
		return;
	}
	if (c->pending == 0 && (c->flags & CONN_F_SHUTDOWN)) {
		conn_close(c);
		return;
	}
	if ((c->flags & CONN_F_WANT_DRAIN) && c->pending <= c->high_water / 2) {
		c->flags &= ~CONN_F_WANT_DRAIN;
		if (c->cbs && c->cbs->on_drain)
			c->cbs->on_drain(c);
	}
}

/* Hands the ciphertext gathered in c->wq to the socket (no copy). */
static void conn_flush_tls(struct conn *c)
{
	struct conn_write_req *w = c->wq;
	uv_buf_t b;
	int rc;

	if (w == NULL || w->len == 0)
		return;
	c->wq = NULL;
	b = uv_buf_init(w->data, (unsigned)w->len);
	rc = uv_write(&w->req, &c->h.stream, &b, 1, conn_on_write);
	if (rc < 0) {
		conn_req_free(w);
		conn_end(c, rc);
		return;
	}
	c->pending += w->len;
	c->submitted += w->len;
}

/* Before the handshake: keep the bytes until on_open. */
static int conn_write_early(struct conn *c, const struct slice *v, size_t n, size_t total)
{
	char *p;
	size_t i;

	if (total == 0)
		return 1;
	p = realloc(c->early, c->early_len + total);
	if (p == NULL)
		return -ENOMEM;
	c->early = p;
	for (i = 0; i < n; i++) {
		if (v[i].len)
			memcpy(p + c->early_len, v[i].base, v[i].len);
		c->early_len += v[i].len;
	}
	if (c->early_len > c->high_water) {
		/* Drains once connected and written out. */
		c->flags |= CONN_F_WANT_DRAIN;
		return 0;
	}
	return 1;
}

/* Plain: the slices are copied into one write request. */
static int conn_raw_writev(struct conn *c, const struct slice *v, size_t n, size_t total)
{
	struct conn_write_req *w;
	uv_buf_t b;
	size_t i, off = 0;
	int rc;

	if (total == 0)
		return 0;
	w = conn_req_new(total);
	if (w == NULL)
		return -ENOMEM;
	w->c = c;
	w->len = total;
	for (i = 0; i < n; i++) {
		if (v[i].len)
			memcpy(w->data + off, v[i].base, v[i].len);
		off += v[i].len;
	}
	b = uv_buf_init(w->data, (unsigned)total);
	rc = uv_write(&w->req, &c->h.stream, &b, 1, conn_on_write);
	if (rc < 0) {
		conn_req_free(w);
		return rc;
	}
	c->pending += total;
	c->submitted += total;
	return 0;
}

/* Encrypts len bytes into c->wq (sized for them up front). */
static int conn_ssl_write(struct conn *c, const char *p, size_t len)
{
	c->wq_hint = len + (len / CONN_TLS_RECORD + 1) * CONN_TLS_RECORD_SLACK;
	while (len > 0) {
		int chunk = len > 65536 ? 65536 : (int)len;
		int n = SSL_write(c->ssl, p, chunk);

		if (n <= 0) {
			ERR_clear_error();
			c->wq_hint = 0;
			return CONN_ETLS;
		}
		p += n;
		len -= (size_t)n;
	}
	c->wq_hint = 0;
	return 0;
}

/*
 * TLS: slices go to SSL_write in whole records where they can. Small ones
 * (a WebSocket frame header) are gathered in a record-sized staging buffer
 * and topped up from the slice behind them; whole records of big slices are
 * encrypted straight from the caller's memory.
 */
static int conn_tls_writev(struct conn *c, const struct slice *v, size_t n)
{
	size_t staged = 0, i, len, take;
	const char *p;
	int rc;

	for (i = 0; i < n; i++) {
		p = v[i].base;
		len = v[i].len;
		if (staged) {
			take = len < CONN_TLS_RECORD - staged ? len : CONN_TLS_RECORD - staged;
			memcpy(conn_stage_buf + staged, p, take);
			staged += take;
			p += take;
			len -= take;
			if (staged < CONN_TLS_RECORD)
				continue;
			rc = conn_ssl_write(c, conn_stage_buf, staged);
			if (rc < 0)
				return rc;
			staged = 0;
		}
		/* The last slice goes whole; others keep their tail for the next. */
		take = i + 1 < n ? len - len % CONN_TLS_RECORD : len;
		if (take) {
			rc = conn_ssl_write(c, p, take);
			if (rc < 0)
				return rc;
		}
		if (len > take) {
			memcpy(conn_stage_buf, p + take, len - take);
			staged = len - take;
		}
	}
	return staged ? conn_ssl_write(c, conn_stage_buf, staged) : 0;
}

int conn_writev(struct conn *c, const struct slice *v, size_t n)
{
	size_t total = 0, i;
	int rc;

	if ((c->flags & (CONN_F_CLOSING | CONN_F_SHUTDOWN | CONN_F_WSHUT)) ||
	    (c->flags & (CONN_F_ENDED | CONN_F_HALF)) == CONN_F_ENDED)
		return -EPIPE;
	for (i = 0; i < n; i++)
		total += v[i].len;
	if (!(c->flags & CONN_F_OPEN))
		return conn_write_early(c, v, n, total);
	if (c->ssl) {
		rc = conn_tls_writev(c, v, n);
		conn_flush_tls(c);
	} else {
		rc = conn_raw_writev(c, v, n, total);
	}
	if (rc < 0)
		return rc;
	if (c->pending > c->high_water) {
		c->flags |= CONN_F_WANT_DRAIN;
		return 0;
	}
	return 1;
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	struct slice v = slice_make(data, len);

	return conn_writev(c, &v, 1);
}

void conn_shutdown(struct conn *c)
{
	if (c->flags & (CONN_F_CLOSING | CONN_F_SHUTDOWN))
		return;
	c->flags |= CONN_F_SHUTDOWN;
	if (c->ssl && (c->flags & CONN_F_OPEN) && !(c->flags & CONN_F_WSHUT)) {
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		conn_flush_tls(c);
	}
	if (c->pending == 0)
		conn_close(c);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	/* UV_ECANCELED: the conn is closing. Another failure: the peer is gone. */
	if (status < 0 && status != UV_ECANCELED && !(c->flags & CONN_F_CLOSING))
		conn_end(c, status);
}

void conn_shutdown_write(struct conn *c)
{
	if (c->flags & (CONN_F_CLOSING | CONN_F_SHUTDOWN | CONN_F_WSHUT))
		return;
	if (!(c->flags & CONN_F_OPEN) || !(c->flags & CONN_F_HANDLE)) {
		conn_shutdown(c); /* nothing to half-close yet */
		return;
	}
	c->flags |= CONN_F_WSHUT;
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* close_notify: TLS's own end of output */
		ERR_clear_error();
		conn_flush_tls(c);
	}
	/* libuv sends the FIN after the writes already queued. */
	c->shutdown_req.data = c;
	if (uv_shutdown(&c->shutdown_req, &c->h.stream, conn_on_shutdown) != 0)
		conn_end(c, -EPIPE);
}

/* ---- reading ---- */

/*
 * Reads go to the loop-wide buffer, except while a prefix is incomplete:
 * then into c->pre, never past its cap, so that nothing read is lost when
 * the prefix turns out to end early. (A NULL buffer makes libuv report
 * UV_ENOBUFS, which ends the conn.)
 */
static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->prefix_fn == NULL) {
		*buf = uv_buf_init(conn_read_buf, sizeof(conn_read_buf));
		return;
	}
	if (c->pre == NULL)
		c->pre = malloc(c->pre_cap);
	if (c->pre == NULL || c->pre_len >= c->pre_cap) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(c->pre + c->pre_len, (unsigned)(c->pre_cap - c->pre_len));
}

/*
 * Keeps ciphertext OpenSSL did not take (the user stopped reading, or a
 * record is incomplete) for the next SSL_read. Bounded: once the user stops
 * reading the socket is not read any more, so at most about one read's
 * worth is kept.
 */
static int conn_rkeep_append(struct conn *c, const char *p, size_t n)
{
	size_t live = c->rkeep_len - c->rkeep_off;
	char *np;

	if (c->rkeep_off) {
		memmove(c->rkeep, c->rkeep + c->rkeep_off, live);
		c->rkeep_off = 0;
		c->rkeep_len = live;
	}
	if (c->rkeep_cap - c->rkeep_len < n) {
		np = realloc(c->rkeep, c->rkeep_len + n);
		if (np == NULL)
			return -ENOMEM;
		c->rkeep = np;
		c->rkeep_cap = c->rkeep_len + n;
	}
	memcpy(c->rkeep + c->rkeep_len, p, n);
	c->rkeep_len += n;
	return 0;
}

/* Bytes read from the socket (after any prefix): to TLS or to the user. */
static void conn_input(struct conn *c, char *data, size_t len)
{
	if (c->ssl) {
		c->rin = data;
		c->rin_len = len;
		conn_tls_input(c);
		if (c->rin_len && !(c->flags & (CONN_F_CLOSING | CONN_F_ENDED)) &&
		    conn_rkeep_append(c, c->rin, c->rin_len) < 0)
			conn_end(c, -ENOMEM);
		c->rin = NULL;
		c->rin_len = 0;
	} else if (c->cbs && c->cbs->on_data) {
		c->cbs->on_data(c, data, len);
	}
}

/* n more bytes of the prefix are in c->pre: ask the user whether it is whole. */
static void conn_prefix_input(struct conn *c, size_t n)
{
	char *pre;
	size_t len;
	int rc;

	c->pre_len += n;
	rc = c->prefix_fn(c, c->pre, c->pre_len);
	if (c->flags & (CONN_F_CLOSING | CONN_F_ENDED))
		return;
	if (rc == CONN_PREFIX_MORE && c->pre_len < c->pre_cap)
		return;
	if (rc < 0) {
		/* Nothing more is read: a full c->pre would make libuv spin. */
		uv_read_stop(&c->h.stream);
		c->flags &= ~CONN_F_UV_READING;
		conn_end(c, rc == CONN_PREFIX_MORE ? CONN_EPREFIX : rc);
		return;
	}
	pre = c->pre;
	len = c->pre_len;
	c->prefix_fn = NULL;
	c->pre = NULL;
	c->pre_len = 0;
	if ((size_t)rc < len)
		conn_input(c, pre + rc, len - (size_t)rc);
	free(pre);
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (c->flags & (CONN_F_CLOSING | CONN_F_ENDED))
		return;
	if (nread < 0) {
		uv_read_stop(s);
		c->flags &= ~CONN_F_UV_READING;
		if (nread == UV_EOF)
			c->flags |= CONN_F_HALF; /* half-closed: writing goes on */
		conn_end(c, nread == UV_EOF ? 0 : (int)nread);
		return;
	}
	if (nread == 0)
		return;
	if (c->prefix_fn)
		conn_prefix_input(c, (size_t)nread);
	else
		conn_input(c, buf->base, (size_t)nread);
}

static void conn_uv_read_start(struct conn *c)
{
	if ((c->flags & CONN_F_UV_READING) || !(c->flags & CONN_F_HANDLE))
		return;
	if (uv_read_start(&c->h.stream, conn_alloc, conn_on_read) == 0)
		c->flags |= CONN_F_UV_READING;
}

static void conn_on_idle(uv_idle_t *idle)
{
	struct conn *c = idle->data;

	uv_idle_stop(idle);
	if (c->flags & CONN_F_CLOSING)
		return;
	if (c->flags & CONN_F_END_PENDING) {
		conn_deliver_end(c);
		return;
	}
	if (!(c->flags & CONN_F_READING) || (c->flags & CONN_F_ENDED))
		return;
	if (c->ssl && (c->flags & CONN_F_OPEN))
		conn_tls_input(c);
}

void conn_read_stop(struct conn *c)
{
	c->flags &= ~CONN_F_READING;
	/*
	 * With TLS we keep pulling ciphertext only while the user reads; the
	 * socket read stops so the kernel window provides backpressure.
	 */
	if ((c->flags & CONN_F_UV_READING) && (c->flags & CONN_F_OPEN)) {
		uv_read_stop(&c->h.stream);
		c->flags &= ~CONN_F_UV_READING;
	}
}

void conn_read_start(struct conn *c)
{
	if (c->flags & (CONN_F_CLOSING | CONN_F_READING))
		return;
	c->flags |= CONN_F_READING;
	if (c->flags & CONN_F_ENDED)
		return;
	conn_uv_read_start(c);
	if (c->ssl && (c->flags & CONN_F_OPEN)) {
		/* Plaintext may already sit inside OpenSSL: deliver it next turn. */
		conn_idle_start(c);
	}
}

void conn_replay_end(struct conn *c)
{
	if (!(c->flags & CONN_F_ENDED) || (c->flags & CONN_F_CLOSING))
		return;
	c->flags |= CONN_F_END_PENDING;
	conn_idle_start(c);
}

static int conn_check_peer(struct conn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	static const char hex[] = "0123456789abcdef";

	if (peer && X509_digest(peer, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32) {
		for (i = 0; i < mdlen; i++) {
			c->fingerprint[2 * i] = hex[md[i] >> 4];
			c->fingerprint[2 * i + 1] = hex[md[i] & 15];
		}
		c->fingerprint[64] = '\0';
		c->flags |= CONN_F_HAS_FP;
	}
	if (c->pin[0] == '\0')
		return 0;
	if (!(c->flags & CONN_F_HAS_FP) || strcmp(c->pin, c->fingerprint) != 0) {
		LOG_WARN("peer certificate %s does not match the pinned %s",
			 (c->flags & CONN_F_HAS_FP) ? c->fingerprint : "(none)", c->pin);
		return CONN_EPIN;
	}
	return 0;
}

/*
 * A server connection whose handshake selected a protocol with an ALPN
 * handover (tls.h) leaves its owner here: the owner saw on_open and now
 * sees on_close, after which it forgets the conn (as if it were freed),
 * and the handover's function takes it with callbacks of its own. Bytes
 * already decrypted go to the new owner (the read loop of
 * conn_tls_input goes on after this).
 */
static void conn_hand_over(struct conn *c)
{
	tls_alpn_handover_fn fn;
	void *arg;

	if (c->ssl == NULL || (c->flags & CONN_F_CLIENT) ||
	    (fn = tls_alpn_handover(c->ssl, &arg)) == NULL)
		return;
	if (c->cbs && c->cbs->on_close)
		c->cbs->on_close(c);
	c->cbs = NULL;
	c->data = NULL;
	fn(c, arg);
}

static void conn_opened(struct conn *c)
{
	char *early = c->early;
	size_t early_len = c->early_len;

	c->flags |= CONN_F_OPEN;
	c->early = NULL;
	c->early_len = 0;
	if (early_len) {
		int rc = conn_write(c, early, early_len);

		free(early);
		if (rc < 0) {
			conn_end(c, rc);
			return;
		}
	} else {
		free(early);
	}
	if (c->cbs && c->cbs->on_open)
		c->cbs->on_open(c);
	if (!(c->flags & CONN_F_CLOSING))
		conn_hand_over(c);
	if (!(c->flags & CONN_F_CLOSING) && !(c->flags & CONN_F_READING))
		conn_read_stop(c);
}

/* Server-side handshakes of this process, by result (loop thread only). */
static uint64_t conn_handshakes_ok, conn_handshakes_failed;

static void conn_count_handshake(const struct conn *c, int ok)
{
	if (!SSL_is_server(c->ssl))
		return;
	if (ok)
		conn_handshakes_ok++;
	else
		conn_handshakes_failed++;
}

void conn_tls_server_stats(uint64_t *ok, uint64_t *failed)
{
	*ok = conn_handshakes_ok;
	*failed = conn_handshakes_failed;
}

/* Advances the handshake, then hands out plaintext while the user reads. */
static void conn_tls_input(struct conn *c)
{
	int n, err;

	if (!(c->flags & CONN_F_OPEN)) {
		n = SSL_do_handshake(c->ssl);
		conn_flush_tls(c);
		if (c->flags & (CONN_F_CLOSING | CONN_F_ENDED))
			return;
		if (n != 1) {
			err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
				return;
			LOG_DEBUG("TLS handshake with %s failed: %s", c->peer_addr,
				  ERR_reason_error_string(ERR_peek_error())
					  ? ERR_reason_error_string(ERR_peek_error())
					  : "unknown");
			ERR_clear_error();
			conn_count_handshake(c, 0);
			conn_end(c, CONN_ETLS);
			return;
		}
		err = conn_check_peer(c);
		conn_count_handshake(c, err == 0);
		if (err < 0) {
			conn_end(c, err);
			return;
		}
		conn_opened(c);
	}
	while (!(c->flags & (CONN_F_CLOSING | CONN_F_ENDED)) && (c->flags & CONN_F_READING)) {
		n = SSL_read(c->ssl, conn_plain_buf, sizeof(conn_plain_buf));
		if (n > 0) {
			if (c->cbs && c->cbs->on_data)
				c->cbs->on_data(c, conn_plain_buf, (size_t)n);
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		/* SSL_read may have produced output (key updates, tickets). */
		conn_flush_tls(c);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return;
		ERR_clear_error();
		if (err == SSL_ERROR_ZERO_RETURN)
			c->flags |= CONN_F_HALF; /* close_notify: TLS's half-close, we may still write */
		conn_end(c, err == SSL_ERROR_ZERO_RETURN ? 0 : CONN_ETLS);
		return;
	}
}

/* ---- setting up ---- */

/*
 * wbio: OpenSSL's output is appended to c->wq, a write request that is not
 * yet handed to libuv (so it may still grow), sized up front from
 * c->wq_hint. Writes never block; flushes are no-ops (conn_flush_tls is
 * ours to call).
 */
static int conn_wq_reserve(struct conn *c, size_t len)
{
	struct conn_write_req *w = c->wq;
	size_t cap;

	if (w && w->cap - w->len >= len)
		return 0;
	if (w == NULL) {
		w = conn_req_new(len > c->wq_hint ? len : c->wq_hint);
		if (w == NULL)
			return -ENOMEM;
		w->c = c;
		c->wq = w;
		return 0;
	}
	cap = conn_wq_round(w->len + len > 2 * w->cap ? w->len + len : 2 * w->cap);
	w = realloc(w, sizeof(*w) + cap);
	if (w == NULL)
		return -ENOMEM;
	w->cap = cap;
	c->wq = w;
	return 0;
}

static int conn_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct conn *c = BIO_get_data(b);

	*written = 0;
	if (c == NULL || conn_wq_reserve(c, len) < 0)
		return 0;
	memcpy(c->wq->data + c->wq->len, data, len);
	c->wq->len += len;
	*written = len;
	return 1;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_WPENDING:
		return c && c->wq ? (long)c->wq->len : 0;
	default:
		return 0;
	}
}

static int conn_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/*
 * rbio: reads come from the bytes kept from earlier socket reads, then from
 * the read under way; with neither, "retry" (SSL_ERROR_WANT_READ), as a
 * memory BIO with eof_return -1 would say.
 */
static int conn_rbio_read(BIO *b, char *out, size_t outl, size_t *readbytes)
{
	struct conn *c = BIO_get_data(b);
	size_t n = 0, take;

	BIO_clear_retry_flags(b);
	*readbytes = 0;
	if (c == NULL)
		return 0;
	if (c->rkeep_len > c->rkeep_off) {
		take = c->rkeep_len - c->rkeep_off < outl ? c->rkeep_len - c->rkeep_off : outl;
		memcpy(out, c->rkeep + c->rkeep_off, take);
		c->rkeep_off += take;
		n = take;
		if (c->rkeep_off == c->rkeep_len)
			c->rkeep_off = c->rkeep_len = 0;
	}
	if (n < outl && c->rin_len) {
		take = c->rin_len < outl - n ? c->rin_len : outl - n;
		memcpy(out + n, c->rin, take);
		c->rin += take;
		c->rin_len -= take;
		n += take;
	}
	if (n == 0) {
		BIO_set_retry_read(b);
		return 0;
	}
	*readbytes = n;
	return 1;
}

static long conn_rbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		return c ? (long)(c->rkeep_len - c->rkeep_off + c->rin_len) : 0;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static BIO_METHOD *conn_bio_method, *conn_rbio_method;

static void conn_bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lxcm conn out");
	BIO_METHOD *r = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lxcm conn in");

	if (m == NULL || r == NULL || BIO_meth_set_write_ex(m, conn_bio_write) != 1 ||
	    BIO_meth_set_ctrl(m, conn_bio_ctrl) != 1 || BIO_meth_set_create(m, conn_bio_create) != 1 ||
	    BIO_meth_set_read_ex(r, conn_rbio_read) != 1 ||
	    BIO_meth_set_ctrl(r, conn_rbio_ctrl) != 1 || BIO_meth_set_create(r, conn_bio_create) != 1) {
		BIO_meth_free(m);
		BIO_meth_free(r);
		return;
	}
	conn_bio_method = m;
	conn_rbio_method = r;
}

/* One of our BIOs for c: input (rbio) or output (wbio). */
static BIO *conn_bio_new(struct conn *c, int input)
{
	static uv_once_t once = UV_ONCE_INIT;
	BIO *b;

	uv_once(&once, conn_bio_method_init);
	if (conn_bio_method == NULL ||
	    (b = BIO_new(input ? conn_rbio_method : conn_bio_method)) == NULL)
		return NULL;
	BIO_set_data(b, c);
	return b;
}

static int conn_setup_tls(struct conn *c, int client)
{
	c->ssl = SSL_new(c->ctx);
	c->rbio = conn_bio_new(c, 1);
	c->wbio = conn_bio_new(c, 0);
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		return -ENOMEM;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	if (client && c->alpn_len && SSL_set_alpn_protos(c->ssl, c->alpn, c->alpn_len) != 0)
		return -ENOMEM;
	if (client)
		SSL_set_connect_state(c->ssl);
	else
		SSL_set_accept_state(c->ssl);
	return 0;
}

static void conn_fill_peer_addr(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0) {
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
		return;
	}
	if (ss.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_addr, sizeof(c->peer_addr));
	else
		uv_ip4_name((struct sockaddr_in *)&ss, c->peer_addr, sizeof(c->peer_addr));
}

int conn_accept(struct conn *c, uv_stream_t *server)
{
	int is_unix = server->type == UV_NAMED_PIPE;
	int rc = is_unix ? uv_pipe_init(c->loop, &c->h.pipe, 0) : uv_tcp_init(c->loop, &c->h.tcp);

	if (rc < 0)
		return rc;
	c->h.handle.data = c;
	c->flags |= CONN_F_HANDLE;
	rc = uv_accept(server, &c->h.stream);
	if (rc < 0)
		return rc;
	if (is_unix) {
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
	} else {
		uv_tcp_nodelay(&c->h.tcp, 1);
		conn_fill_peer_addr(c);
	}
	if (c->ctx) {
		rc = conn_setup_tls(c, 0);
		if (rc < 0)
			return rc;
	} else {
		c->flags |= CONN_F_OPEN;
	}
	conn_uv_read_start(c);
	return 0;
}

static void conn_client_connected(struct conn *c)
{
	conn_uv_read_start(c);
	if (c->ssl) {
		conn_tls_input(c); /* sends the ClientHello */
		return;
	}
	conn_opened(c);
}

static void conn_try_next_addr(struct conn *c);

/* The failed handle is gone; libuv lets us init a new one in its place. */
static void conn_on_retry_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (c->flags & CONN_F_CLOSING) {
		/* conn_close ran meanwhile and counted nothing for h. */
		conn_close_handles(c);
		return;
	}
	conn_try_next_addr(c);
}

static void conn_on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (c->flags & CONN_F_CLOSING)
		return;
	if (status < 0) {
		if (c->ai_next && c->h.handle.type == UV_TCP) {
			c->flags &= ~(CONN_F_HANDLE | CONN_F_UV_READING);
			uv_close(&c->h.handle, conn_on_retry_closed);
			return;
		}
		conn_end(c, status);
		return;
	}
	if (c->h.handle.type == UV_TCP) {
		uv_tcp_nodelay(&c->h.tcp, 1);
		conn_fill_peer_addr(c);
	}
	conn_client_connected(c);
}

static void conn_try_next_addr(struct conn *c)
{
	struct addrinfo *ai = c->ai_next;
	int rc;

	c->ai_next = ai->ai_next;
	rc = uv_tcp_init(c->loop, &c->h.tcp);
	if (rc < 0) {
		conn_end(c, rc);
		return;
	}
	c->h.handle.data = c;
	c->flags |= CONN_F_HANDLE;
	c->connect_req.data = c;
	rc = uv_tcp_connect(&c->connect_req, &c->h.tcp, ai->ai_addr, conn_on_connect);
	if (rc < 0)
		conn_end(c, rc);
}

static void conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;

	c->flags &= ~CONN_F_RESOLVING;
	if (c->flags & CONN_F_CLOSING) {
		if (res)
			uv_freeaddrinfo(res);
		conn_close_handles(c);
		return;
	}
	if (status < 0 || res == NULL) {
		if (res)
			uv_freeaddrinfo(res);
		conn_end(c, status < 0 ? status : UV_EAI_NONAME);
		return;
	}
	c->ai_list = res;
	c->ai_next = res;
	conn_try_next_addr(c);
}

static int conn_is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

int conn_connect_tcp(struct conn *c, const char *host, int port)
{
	struct addrinfo hints;
	char portstr[16];
	int rc;

	c->flags |= CONN_F_CLIENT;
	c->host = strdup(host);
	c->port = port;
	if (c->host == NULL)
		return -ENOMEM;
	if (c->ctx) {
		rc = conn_setup_tls(c, 1);
		if (rc < 0)
			return rc;
		if (!conn_is_ip_literal(host))
			SSL_set_tlsext_host_name(c->ssl, host);
		if (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER)
			SSL_set1_host(c->ssl, host);
	}
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", host);
	snprintf(portstr, sizeof(portstr), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	c->gai.data = c;
	rc = uv_getaddrinfo(c->loop, &c->gai, conn_on_resolved, host, portstr, &hints);
	if (rc == 0)
		c->flags |= CONN_F_RESOLVING;
	return rc;
}

int conn_connect_unix(struct conn *c, const char *path)
{
	int rc;

	c->flags |= CONN_F_CLIENT;
	rc = uv_pipe_init(c->loop, &c->h.pipe, 0);
	if (rc < 0)
		return rc;
	c->h.handle.data = c;
	c->flags |= CONN_F_HANDLE;
	snprintf(c->peer_addr, sizeof(c->peer_addr), "unix");
	if (c->ctx) {
		rc = conn_setup_tls(c, 1);
		if (rc < 0)
			return rc;
	}
	c->connect_req.data = c;
	uv_pipe_connect(&c->connect_req, &c->h.pipe, path, conn_on_connect);
	return 0;
}
