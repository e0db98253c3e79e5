/*
 * ws.c - WebSocket (RFC 6455) over a conn, both roles, with our own frame
 * codec.
 *
 * Why not wslay (DESIGN.md named it): wslay unmasks and masks one byte at a
 * time and pulls its input through a 4 KiB buffer, then reassembles and
 * flattens every message; on a bulk download through the tunnel that was a
 * quarter of all CPU (docs/performance.md). The codec here is small: a 2 to
 * 14 byte header, a mask applied a 64-bit word at a time, and the rules of
 * RFC 6455 section 5 that wslay enforced.
 *
 * Input: the conn hands us plaintext in on_data and frames are parsed in
 * place from that buffer (conn.h lets us modify it). A header is read
 * straight from it, or gathered in w->hbuf when it straddles two reads. A
 * data frame that is a whole message and lies whole in the buffer is
 * unmasked in place and handed to on_message without a copy; any other
 * message is unmasked into w->m_data while it is copied (one pass) and
 * delivered after its last frame (the buffer is recycled per thread). The
 * mask's phase is carried across reads.
 *
 * The parser stops right after a message when on_message calls
 * ws_read_stop; what is left of the buffer goes to w->backlog (bounded: the
 * conn delivers no more once stopped) and is parsed after ws_read_start, on
 * a later loop turn. So no on_message runs while reading is stopped, and no
 * decoded message ever has to be held.
 *
 * Output: ws_send writes the frame at once. The server hands header and
 * payload to conn_writev (no copy here); the client masks the payload into
 * a per-thread buffer, a word at a time, and writes that. The only output
 * queue is the conn's: backpressure is ws_pending() against WS_HIGH_WATER,
 * and the conn's high-water mark is half of it, so whenever we report
 * "full" the conn has flagged a drain too.
 *
 * Peer errors ("fail the WebSocket connection", RFC 6455 section 7.1.7):
 * we send a close frame with 1002, 1007 or 1009, stop parsing, and wait (at
 * most WS_CLOSE_TIMEOUT_MS) for the peer to close its end, so that closing
 * ours does not reset the connection under our close frame.
 *
 * Closing: w->flags & WS_F_CLOSING means the conn is being closed (or
 * flushed, then closed). The ws lives on until the conn's on_close, where the
 * user's on_close runs once; then our two handles are closed and the last
 * close callback frees the ws. Nothing here frees the ws from inside a conn
 * call or a user callback, so callers up the stack may look at w->flags
 * afterwards.
 */
#include "net/ws.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/slice.h"
#include "net/http_hdr.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/*
 * Cap on bytes kept unparsed while reading is stopped: one conn read (64 KiB)
 * plus what came with the upgrade (at most the HTTP header cap).
 */
#define WS_MAX_BACKLOG (256 * 1024)
/* Control frames carry up to 125 bytes; a smaller cap would break pings. */
#define WS_MIN_MAX_MESSAGE 125
#define WS_MAX_CONTROL 125
#define WS_MAX_REASON 123
#define WS_MAX_HEADER 14
/* A client's output is masked into a per-thread buffer of this size. */
#define WS_MASK_CHUNK (64 * 1024)
/* Masking keys come from RAND_bytes this many bytes at a time. */
#define WS_KEY_POOL 4096

#define WS_FIN 0x80
#define WS_MASK_BIT 0x80
#define WS_OP_CONT 0x0
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa
#define WS_OP_CONTROL 0x8 /* the bit that makes an opcode a control opcode */

enum {
	WS_F_CLIENT = 1 << 0,
	WS_F_PAUSED = 1 << 1,	   /* ws_read_stop */
	WS_F_READ_DONE = 1 << 2,   /* parse nothing more: a close frame came, or we failed the peer */
	WS_F_CLOSING = 1 << 3,	   /* finished: the conn is closing */
	WS_F_USER_CLOSED = 1 << 4, /* ws_close called: no more messages */
	WS_F_WANT_DRAIN = 1 << 5,  /* ws_send returned 0 */
	WS_F_PEER_EOF = 1 << 6,	   /* the conn ended while bytes were still kept */
	WS_F_LINGER = 1 << 7,	   /* we failed the peer: wait for its EOF */
	WS_F_CLOSE_SENT = 1 << 8,
	WS_F_CLOSE_RCVD = 1 << 9,
};

struct ws {
	struct conn *conn;
	const struct ws_callbacks *cbs;
	void *data;
	size_t max_message;
	unsigned flags;
	int close_code;
	uv_timer_t timer; /* closing handshake, linger and flush timeouts */
	uv_idle_t idle;	  /* parses kept input on a later loop turn */
	int handles;
	/* Input kept for later: bytes of the upgrade, or left while stopped. */
	struct buf backlog; /* capped at WS_MAX_BACKLOG */
	size_t backlog_off;
	/* The frame being parsed. */
	uint8_t hbuf[WS_MAX_HEADER]; /* a header that straddles two reads */
	size_t hlen;
	int in_frame; /* the header is done, f_left payload bytes are due */
	uint8_t f_op, f_fin, f_masked;
	uint8_t f_key[4];
	unsigned f_phase; /* payload bytes unmasked so far, mod 4 */
	uint64_t f_left;
	/* The data message being received: its opcode (0 between messages). */
	int m_op;
	uint8_t *m_data; /* NULL while nothing had to be copied */
	size_t m_len, m_cap; /* m_len <= max_message */
	struct ws__utf8 m_utf8;
	/* The control frame being received. */
	uint8_t ctl[WS_MAX_CONTROL];
	size_t ctl_len;
};

static const struct conn_callbacks ws_conn_cbs;

static void ws_on_timer(uv_timer_t *t);

/* ---- accessors ---- */

void *ws_data(const struct ws *w)
{
	return w->data;
}

void ws_set_data(struct ws *w, void *data)
{
	w->data = data;
}

struct conn *ws_conn(const struct ws *w)
{
	return w->conn;
}

size_t ws_pending(const struct ws *w)
{
	return w->conn ? conn_write_pending(w->conn) : 0;
}

/* ---- masking and UTF-8 ---- */

/*
 * The key widened to 64 bits and rotated to the phase, so that byte i of the
 * span is XORed with k[i & 7]. memcpy loads and stores compile to plain
 * (unaligned) word moves, and the loop over 32 bytes vectorises.
 */
unsigned ws__mask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4], unsigned phase)
{
	uint8_t k[8];
	uint64_t m, a, b, c, d;
	size_t i = 0, j;

	for (j = 0; j < 8; j++)
		k[j] = key[(phase + j) & 3];
	memcpy(&m, k, 8);
	for (; i + 32 <= n; i += 32) {
		memcpy(&a, src + i, 8);
		memcpy(&b, src + i + 8, 8);
		memcpy(&c, src + i + 16, 8);
		memcpy(&d, src + i + 24, 8);
		a ^= m;
		b ^= m;
		c ^= m;
		d ^= m;
		memcpy(dst + i, &a, 8);
		memcpy(dst + i + 8, &b, 8);
		memcpy(dst + i + 16, &c, 8);
		memcpy(dst + i + 24, &d, 8);
	}
	for (; i + 8 <= n; i += 8) {
		memcpy(&a, src + i, 8);
		a ^= m;
		memcpy(dst + i, &a, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ k[i & 7];
	return (unsigned)((phase + n) & 3);
}

/*
 * RFC 3629: after a lead byte, u->need continuation bytes are due, the next
 * one in [lo, hi] (narrower after E0, ED, F0 and F4: no overlong forms, no
 * surrogates, nothing above U+10FFFF). ASCII is skipped 8 bytes at a time.
 */
int ws__utf8(struct ws__utf8 *u, const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t v;
	uint8_t ch;

	while (i < n) {
		if (u->need) {
			ch = p[i++];
			if (ch < u->lo || ch > u->hi)
				return -1;
			u->need--;
			u->lo = 0x80;
			u->hi = 0xbf;
			continue;
		}
		while (i + 8 <= n) {
			memcpy(&v, p + i, 8);
			if (v & 0x8080808080808080ULL)
				break;
			i += 8;
		}
		if (i == n)
			break;
		ch = p[i++];
		if (ch < 0x80)
			continue;
		u->lo = 0x80;
		u->hi = 0xbf;
		if (ch < 0xc2 || ch > 0xf4)
			return -1;
		if (ch < 0xe0) {
			u->need = 1;
		} else if (ch < 0xf0) {
			u->need = 2;
			if (ch == 0xe0)
				u->lo = 0xa0;
			else if (ch == 0xed)
				u->hi = 0x9f;
		} else {
			u->need = 3;
			if (ch == 0xf0)
				u->lo = 0x90;
			else if (ch == 0xf4)
				u->hi = 0x8f;
		}
	}
	return 0;
}

/* ---- lifetime ---- */

/*
 * One reassembly buffer per thread is kept between messages: a bulk stream
 * reassembles every 64 KiB message (TLS hands them over in 16 KiB records),
 * and a malloc and free of each let glibc trim and re-fault the heap top.
 * At most WS_SPARE_MAX bytes are kept; the spare is freed when the thread
 * ends.
 */
#define WS_SPARE_MAX (256 * 1024)

struct ws_spare {
	uint8_t *data;
	size_t cap;
};

static _Thread_local struct ws_spare ws_spare;
static pthread_key_t ws_spare_key;
static uv_once_t ws_spare_once = UV_ONCE_INIT;

static void ws_spare_drop(void *arg)
{
	struct ws_spare *sp = arg;

	free(sp->data);
	sp->data = NULL;
	sp->cap = 0;
}

static void ws_spare_key_init(void)
{
	(void)pthread_key_create(&ws_spare_key, ws_spare_drop);
}

/* Gives a message buffer back: kept as the thread's spare, or freed. */
static void ws_buf_put(uint8_t *p, size_t cap)
{
	if (p == NULL)
		return;
	if (cap > WS_SPARE_MAX || cap <= ws_spare.cap) {
		free(p);
		return;
	}
	free(ws_spare.data);
	if (ws_spare.data == NULL) {
		uv_once(&ws_spare_once, ws_spare_key_init);
		(void)pthread_setspecific(ws_spare_key, &ws_spare);
	}
	ws_spare.data = p;
	ws_spare.cap = cap;
}

/* Grows *p (capacity *cap) to at least need bytes, from the spare when it fits. */
static int ws_buf_grow(uint8_t **p, size_t *cap, size_t need)
{
	uint8_t *np;

	if (*p == NULL && ws_spare.data && ws_spare.cap >= need) {
		*p = ws_spare.data;
		*cap = ws_spare.cap;
		ws_spare.data = NULL;
		ws_spare.cap = 0;
		return 0;
	}
	np = realloc(*p, need);
	if (np == NULL)
		return -ENOMEM;
	*p = np;
	*cap = need;
	return 0;
}

static void ws_msg_reset(struct ws *w)
{
	ws_buf_put(w->m_data, w->m_cap);
	w->m_data = NULL;
	w->m_len = w->m_cap = 0;
	w->m_op = 0;
	memset(&w->m_utf8, 0, sizeof(w->m_utf8));
}

static void ws_free(struct ws *w)
{
	buf_free(&w->backlog);
	ws_msg_reset(w);
	free(w);
}

static void ws_on_handle_closed(uv_handle_t *h)
{
	struct ws *w = h->data;

	if (--w->handles == 0)
		ws_free(w);
}

/* The conn is about to be freed: tell the user, then let our handles go. */
static void ws_on_conn_close(struct conn *c)
{
	struct ws *w = conn_data(c);

	if (w == NULL)
		return;
	w->conn = NULL;
	if (!(w->flags & WS_F_CLOSING)) {
		w->flags |= WS_F_CLOSING;
		w->close_code = -ECONNRESET;
	}
	if (w->cbs->on_close)
		w->cbs->on_close(w, w->close_code);
	w->handles = 2;
	uv_close((uv_handle_t *)&w->timer, ws_on_handle_closed);
	uv_close((uv_handle_t *)&w->idle, ws_on_handle_closed);
}

/*
 * Ends the WebSocket with code. graceful: flush queued output first (bounded
 * by WS_CLOSE_TIMEOUT_MS). on_close follows from the conn's on_close.
 */
static void ws_finish(struct ws *w, int code, int graceful)
{
	if (w->flags & WS_F_CLOSING)
		return;
	w->flags |= WS_F_CLOSING;
	w->close_code = code;
	uv_idle_stop(&w->idle);
	if (graceful) {
		uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
		conn_shutdown(w->conn);
	} else {
		uv_timer_stop(&w->timer);
		conn_close(w->conn);
	}
}

static void ws_on_timer(uv_timer_t *t)
{
	struct ws *w = t->data;

	if (w->flags & WS_F_CLOSING) {
		/* The peer does not take our last bytes. */
		if (w->conn)
			conn_close(w->conn);
		return;
	}
	ws_finish(w, (w->flags & WS_F_LINGER) ? w->close_code : WS_CLOSE_ABNORMAL, 0);
}

/* Both close frames went: the closing handshake is complete. */
static void ws_check_done(struct ws *w)
{
	if ((w->flags & (WS_F_CLOSING | WS_F_CLOSE_SENT | WS_F_CLOSE_RCVD)) ==
	    (WS_F_CLOSE_SENT | WS_F_CLOSE_RCVD))
		ws_finish(w, w->close_code, 1);
}

/* ---- output ---- */

static _Thread_local uint8_t ws_key_pool[WS_KEY_POOL];
static _Thread_local size_t ws_key_off = WS_KEY_POOL;
static _Thread_local uint8_t ws_mask_buf[WS_MAX_HEADER + WS_MASK_CHUNK];

/* A fresh masking key: one RAND_bytes call per 1024 frames, not per frame. */
static int ws_mask_key(uint8_t key[4])
{
	if (ws_key_off + 4 > WS_KEY_POOL) {
		if (RAND_bytes(ws_key_pool, WS_KEY_POOL) != 1)
			return -EIO;
		ws_key_off = 0;
	}
	memcpy(key, ws_key_pool + ws_key_off, 4);
	ws_key_off += 4;
	return 0;
}

/* Client role: header h (key last) and the masked payload, in 64 KiB writes. */
static int ws_write_masked(struct ws *w, const uint8_t *h, size_t hlen, const uint8_t *data,
			   size_t len)
{
	const uint8_t *key = h + hlen - 4;
	size_t used = hlen, take;
	unsigned phase = 0;
	int rc;

	memcpy(ws_mask_buf, h, hlen);
	for (;;) {
		take = len < sizeof(ws_mask_buf) - used ? len : sizeof(ws_mask_buf) - used;
		phase = ws__mask(ws_mask_buf + used, data, take, key, phase);
		rc = conn_write(w->conn, ws_mask_buf, used + take);
		if (rc < 0)
			return rc;
		data += take;
		len -= take;
		if (len == 0)
			return 0;
		used = 0;
	}
}

/*
 * Writes one frame (b0 = FIN | opcode) to the conn. A write error finishes
 * the WebSocket (on_close follows later) and is returned.
 */
static int ws_write_frame(struct ws *w, uint8_t b0, const void *data, size_t len)
{
	uint8_t h[WS_MAX_HEADER];
	size_t hlen = 2, i;
	int rc;

	h[0] = b0;
	if (len < 126) {
		h[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hlen = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hlen = 10;
	}
	if (w->flags & WS_F_CLIENT) {
		h[1] |= WS_MASK_BIT;
		rc = ws_mask_key(h + hlen);
		if (rc == 0)
			rc = ws_write_masked(w, h, hlen + 4, data, len);
	} else {
		struct slice v[2] = {slice_make((const char *)h, hlen), slice_make(data, len)};

		rc = conn_writev(w->conn, v, len ? 2 : 1);
	}
	if (rc < 0)
		ws_finish(w, rc, 0);
	return rc < 0 ? rc : 0;
}

/* Our close frame: code 0 sends none (and no reason). */
static int ws_send_close(struct ws *w, uint16_t code, const uint8_t *reason, size_t rlen)
{
	uint8_t p[2 + WS_MAX_REASON];
	size_t n = 0;

	w->flags |= WS_F_CLOSE_SENT;
	if (code) {
		if (rlen > WS_MAX_REASON)
			rlen = WS_MAX_REASON;
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		if (rlen)
			memcpy(p + 2, reason, rlen);
		n = 2 + rlen;
	}
	return ws_write_frame(w, WS_FIN | WS_OP_CLOSE, p, n);
}

/* Calls the user's on_drain once the output fell to half the high-water mark. */
static void ws_maybe_drain(struct ws *w)
{
	if ((w->flags & (WS_F_WANT_DRAIN | WS_F_CLOSING)) != WS_F_WANT_DRAIN ||
	    ws_pending(w) > WS_HIGH_WATER / 2)
		return;
	w->flags &= ~WS_F_WANT_DRAIN;
	if (w->cbs->on_drain)
		w->cbs->on_drain(w);
}

/* ---- input: frames ---- */

/*
 * Fails the peer with code (1002, 1007, 1009): our close frame, then no more
 * parsing while we wait for its EOF. Returns -1 for the parser's callers.
 */
static int ws_fail(struct ws *w, int code, const char *why)
{
	if (w->flags & (WS_F_CLOSING | WS_F_READ_DONE))
		return -1;
	w->flags |= WS_F_READ_DONE | WS_F_LINGER;
	w->close_code = code;
	ws_msg_reset(w);
	if (code == WS_CLOSE_TOO_BIG)
		LOG_INFO("closing %s: a message exceeded %zu bytes", conn_peer_addr(w->conn),
			 w->max_message);
	else
		LOG_DEBUG("closing %s: %s (%d)", conn_peer_addr(w->conn), why, code);
	if (!(w->flags & WS_F_CLOSE_SENT) && ws_send_close(w, (uint16_t)code, NULL, 0) < 0)
		return -1;
	uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
	return -1;
}

static size_t ws_header_size(const uint8_t *h)
{
	size_t n = (h[1] & WS_MASK_BIT) ? 6 : 2;

	if ((h[1] & 0x7f) == 126)
		n += 2;
	else if ((h[1] & 0x7f) == 127)
		n += 8;
	return n;
}

/*
 * The payload length after the 7-bit one. Like wslay we take only the
 * shortest encoding (RFC 6455 section 5.2 says "the minimal number of
 * bytes MUST be used") and no 64-bit length with the top bit set.
 */
static int ws_frame_length(struct ws *w, const uint8_t *h, uint64_t *len, size_t *off)
{
	unsigned len7 = h[1] & 0x7f;
	size_t i;

	*len = len7;
	*off = 2;
	if (len7 == 126) {
		*len = (uint64_t)h[2] << 8 | h[3];
		*off = 4;
		if (*len < 126)
			return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "16-bit length below 126");
	} else if (len7 == 127) {
		*len = 0;
		for (i = 0; i < 8; i++)
			*len = *len << 8 | h[2 + i];
		*off = 10;
		if (*len < 65536 || (*len >> 63))
			return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "bad 64-bit length");
	}
	return 0;
}

/* Checks a whole header (RFC 6455 sections 5.2 to 5.5) and starts its frame. */
static int ws_begin_frame(struct ws *w, const uint8_t *h)
{
	unsigned op = h[0] & 0x0f, fin = (h[0] & WS_FIN) != 0, masked = (h[1] & WS_MASK_BIT) != 0;
	uint64_t len;
	size_t off;

	if (h[0] & 0x70)
		return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set");
	if (op > WS_BINARY && op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
		return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "reserved opcode");
	if ((op & WS_OP_CONTROL) && (!fin || (h[1] & 0x7f) > WS_MAX_CONTROL))
		return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "fragmented or long control frame");
	if (masked != !(w->flags & WS_F_CLIENT))
		return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR,
			       masked ? "masked frame from the server" : "unmasked client frame");
	if (ws_frame_length(w, h, &len, &off) < 0)
		return -1;
	if (op & WS_OP_CONTROL) {
		w->ctl_len = 0;
	} else {
		if ((op == WS_OP_CONT) != (w->m_op != 0))
			return ws_fail(w, WS_CLOSE_PROTOCOL_ERROR,
				       op == WS_OP_CONT ? "continuation without a message"
							: "new message inside a fragmented one");
		if (len > w->max_message - w->m_len)
			return ws_fail(w, WS_CLOSE_TOO_BIG, "message too big");
		if (op != WS_OP_CONT)
			w->m_op = (int)op;
	}
	w->f_op = (uint8_t)op;
	w->f_fin = (uint8_t)fin;
	w->f_masked = (uint8_t)masked;
	if (masked)
		memcpy(w->f_key, h + off, 4);
	w->f_phase = 0;
	w->f_left = len;
	w->in_frame = 1;
	return 0;
}

/* Reads a header from p, or gathers it in hbuf across reads. Returns bytes used. */
static size_t ws_take_header(struct ws *w, const uint8_t *p, size_t n)
{
	size_t used = 0, need, take;

	if (w->hlen == 0 && n >= 2 && n >= (need = ws_header_size(p))) {
		(void)ws_begin_frame(w, p);
		return need;
	}
	for (;;) {
		need = w->hlen < 2 ? 2 : ws_header_size(w->hbuf);
		if (w->hlen == need)
			break;
		if (used == n)
			return used;
		take = need - w->hlen < n - used ? need - w->hlen : n - used;
		memcpy(w->hbuf + w->hlen, p + used, take);
		w->hlen += take;
		used += take;
	}
	w->hlen = 0;
	(void)ws_begin_frame(w, w->hbuf);
	return used;
}

static void ws_unmask(struct ws *w, uint8_t *dst, const uint8_t *src, size_t n)
{
	if (w->f_masked)
		w->f_phase = ws__mask(dst, src, n, w->f_key, w->f_phase);
	else if (dst != src)
		memcpy(dst, src, n);
}

/*
 * A whole data message: checked, then handed to the user. The message state
 * is reset first, so on_message may stop reading, close or abort.
 */
static void ws_message(struct ws *w, const uint8_t *data, size_t len)
{
	int op = w->m_op;
	uint8_t *own = w->m_data;
	size_t own_cap = w->m_cap;

	if (op == WS_TEXT && w->m_utf8.need) {
		ws_fail(w, WS_CLOSE_INVALID_DATA, "text message ends inside a character");
		return;
	}
	w->m_data = NULL;
	ws_msg_reset(w);
	if (!(w->flags & WS_F_USER_CLOSED) && w->cbs->on_message)
		w->cbs->on_message(w, op, data ? (const char *)data : "", len);
	ws_buf_put(own, own_cap);
}

/* Copies (unmasking) a fragment or a frame that straddles reads into m_data. */
static int ws_take_copy(struct ws *w, const uint8_t *p, size_t take)
{
	/* f_left <= max_message - m_len: checked when the frame began. */
	if (w->m_cap - w->m_len < w->f_left &&
	    ws_buf_grow(&w->m_data, &w->m_cap, w->m_len + (size_t)w->f_left) < 0) {
		ws_finish(w, -ENOMEM, 0);
		return -1;
	}
	ws_unmask(w, w->m_data + w->m_len, p, take);
	if (w->m_op == WS_TEXT && ws__utf8(&w->m_utf8, w->m_data + w->m_len, take) < 0)
		return ws_fail(w, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message");
	w->m_len += take;
	return 0;
}

/* Payload bytes of the current frame from p. Returns bytes used. */
static size_t ws_take_payload(struct ws *w, uint8_t *p, size_t n)
{
	size_t take = w->f_left < n ? (size_t)w->f_left : n;

	if (w->f_op & WS_OP_CONTROL) {
		ws_unmask(w, w->ctl + w->ctl_len, p, take);
		w->ctl_len += take;
	} else if (w->m_data == NULL && w->f_fin && take == w->f_left) {
		/* The whole message is here: unmask in place, no copy. */
		ws_unmask(w, p, p, take);
		w->f_left = 0;
		w->in_frame = 0;
		if (w->m_op == WS_TEXT && ws__utf8(&w->m_utf8, p, take) < 0)
			ws_fail(w, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in a text message");
		else
			ws_message(w, p, take);
		return take;
	} else if (ws_take_copy(w, p, take) < 0) {
		return take;
	}
	w->f_left -= take;
	return take;
}

static int ws_code_sendable(uint16_t code)
{
	return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
	       (code >= 3000 && code <= 4999);
}

/* The peer's close frame: check it, echo it, and finish if ours went already. */
static void ws_close_frame(struct ws *w)
{
	uint16_t code = 0;
	struct ws__utf8 u = {0};

	if (w->ctl_len == 1) {
		ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte body");
		return;
	}
	if (w->ctl_len >= 2) {
		code = (uint16_t)(w->ctl[0] << 8 | w->ctl[1]);
		if (!ws_code_sendable(code)) {
			ws_fail(w, WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
			return;
		}
		if (ws__utf8(&u, w->ctl + 2, w->ctl_len - 2) < 0 || u.need) {
			ws_fail(w, WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
			return;
		}
	}
	w->flags |= WS_F_CLOSE_RCVD | WS_F_READ_DONE;
	w->close_code = code ? code : WS_CLOSE_NO_STATUS;
	if (!(w->flags & WS_F_CLOSE_SENT) &&
	    ws_send_close(w, code, w->ctl + 2, code ? w->ctl_len - 2 : 0) < 0)
		return;
	ws_check_done(w);
}

/* The payload of the current frame is complete. */
static void ws_end_frame(struct ws *w)
{
	w->in_frame = 0;
	switch (w->f_op) {
	case WS_OP_CLOSE:
		ws_close_frame(w);
		break;
	case WS_OP_PING:
		/* Answered at once; after our close frame nothing more goes out. */
		if (!(w->flags & WS_F_CLOSE_SENT))
			(void)ws_write_frame(w, WS_FIN | WS_OP_PONG, w->ctl, w->ctl_len);
		break;
	case WS_OP_PONG:
		break;
	default:
		if (w->f_fin)
			ws_message(w, w->m_data, w->m_len);
		break;
	}
}

/*
 * Parses frames from p[0..n) (which it may modify: unmasking in place) until
 * the input ends, reading stops, or the WebSocket is done reading. Returns
 * the bytes used; the rest must be kept for later unless reading is done.
 */
static size_t ws_parse(struct ws *w, uint8_t *p, size_t n)
{
	size_t used = 0;

	while (!(w->flags & (WS_F_PAUSED | WS_F_CLOSING | WS_F_READ_DONE))) {
		if (w->in_frame && w->f_left == 0) {
			ws_end_frame(w);
			continue;
		}
		if (used == n)
			break;
		if (w->in_frame)
			used += ws_take_payload(w, p + used, n - used);
		else
			used += ws_take_header(w, p + used, n - used);
	}
	return used;
}

/* ---- input: the conn ---- */

static size_t ws_kept(const struct ws *w)
{
	return w->backlog.len - w->backlog_off;
}

static void ws_drop_kept(struct ws *w)
{
	buf_reset(&w->backlog);
	w->backlog_off = 0;
}

/* Keeps bytes that cannot be parsed now, behind those already kept. */
static int ws_stash(struct ws *w, const char *data, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	if (w->backlog_off) {
		buf_consume(&w->backlog, w->backlog_off);
		w->backlog_off = 0;
	}
	rc = buf_append(&w->backlog, data, len);
	if (rc < 0) {
		LOG_WARN("%s: more than %d bytes arrived while reading was stopped",
			 w->conn ? conn_peer_addr(w->conn) : "?", WS_MAX_BACKLOG);
		ws_finish(w, rc, 0);
	}
	return rc;
}

/* Parses kept bytes. Runs from conn callbacks and the idle handle only. */
static void ws_pump(struct ws *w)
{
	size_t used;

	if (ws_kept(w) == 0 || (w->flags & (WS_F_PAUSED | WS_F_CLOSING)))
		return;
	if (!(w->flags & WS_F_READ_DONE)) {
		used = ws_parse(w, (uint8_t *)w->backlog.data + w->backlog_off, ws_kept(w));
		if (w->flags & WS_F_CLOSING)
			return;
		w->backlog_off += used;
	}
	if (ws_kept(w) == 0 || (w->flags & WS_F_READ_DONE))
		ws_drop_kept(w);
	ws_maybe_drain(w);
}

static void ws_on_idle(uv_idle_t *h);

/* Parses kept input on a later loop turn (never from inside our API). */
static void ws_schedule(struct ws *w)
{
	if (!(w->flags & (WS_F_CLOSING | WS_F_PAUSED)))
		uv_idle_start(&w->idle, ws_on_idle);
}

/* The conn ended cleanly; finish unless kept input still has to be parsed. */
static void ws_eof(struct ws *w)
{
	if (ws_kept(w) && !(w->flags & WS_F_READ_DONE)) {
		w->flags |= WS_F_PEER_EOF;
		ws_schedule(w); /* unless stopped: then ws_read_start does */
		return;
	}
	ws_finish(w, (w->flags & WS_F_LINGER) ? w->close_code : WS_CLOSE_ABNORMAL, 0);
}

static void ws_on_idle(uv_idle_t *h)
{
	struct ws *w = h->data;

	uv_idle_stop(h);
	if (w->flags & (WS_F_PAUSED | WS_F_CLOSING))
		return;
	ws_pump(w);
	if ((w->flags & (WS_F_PEER_EOF | WS_F_PAUSED | WS_F_CLOSING)) == WS_F_PEER_EOF)
		ws_eof(w);
}

static void ws_on_data(struct conn *c, const char *data, size_t len)
{
	struct ws *w = conn_data(c);
	size_t used;

	if (w == NULL || (w->flags & (WS_F_CLOSING | WS_F_READ_DONE)))
		return; /* after a close frame or a failure: discard */
	if ((w->flags & WS_F_PAUSED) || ws_kept(w)) {
		/* Behind kept bytes (or while stopped): keep the order. */
		if (ws_stash(w, data, len) == 0)
			ws_pump(w);
		return;
	}
	/* The conn's read buffer is ours to modify during this call (conn.h). */
	used = ws_parse(w, (uint8_t *)(uintptr_t)data, len);
	if (used < len && !(w->flags & (WS_F_CLOSING | WS_F_READ_DONE)))
		ws_stash(w, data + used, len - used);
	ws_maybe_drain(w);
}

static void ws_on_end(struct conn *c, int err)
{
	struct ws *w = conn_data(c);

	if (w == NULL || (w->flags & WS_F_CLOSING)) {
		conn_close(c);
		return;
	}
	if (err < 0) {
		ws_finish(w, err, 0);
		return;
	}
	ws_eof(w);
}

static void ws_on_conn_drain(struct conn *c)
{
	struct ws *w = conn_data(c);

	if (w)
		ws_maybe_drain(w);
}

static const struct conn_callbacks ws_conn_cbs = {
	.on_data = ws_on_data,
	.on_end = ws_on_end,
	.on_drain = ws_on_conn_drain,
	.on_close = ws_on_conn_close,
};

/* ---- API ---- */

struct ws *ws_new(struct conn *c, int is_client, size_t max_message, const struct ws_callbacks *cbs,
		  void *data)
{
	struct ws *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	if (max_message == 0)
		max_message = WS_DEFAULT_MAX_MESSAGE;
	if (max_message < WS_MIN_MAX_MESSAGE)
		max_message = WS_MIN_MAX_MESSAGE;
	w->conn = c;
	w->cbs = cbs;
	w->data = data;
	w->max_message = max_message;
	w->flags = is_client ? WS_F_CLIENT : 0;
	buf_init(&w->backlog, WS_MAX_BACKLOG);
	uv_timer_init(conn_loop(c), &w->timer);
	w->timer.data = w;
	uv_idle_init(conn_loop(c), &w->idle);
	w->idle.data = w;
	conn_set_high_water(c, WS_HIGH_WATER / 2);
	conn_set_data(c, w);
	conn_set_callbacks(c, &ws_conn_cbs);
	/* The HTTP layer may have stopped reading at the upgrade. */
	conn_read_start(c);
	return w;
}

void ws_feed(struct ws *w, const char *data, size_t len)
{
	if ((w->flags & WS_F_CLOSING) || len == 0)
		return;
	if (ws_stash(w, data, len) == 0)
		ws_schedule(w);
}

int ws_send(struct ws *w, int opcode, const void *data, size_t len)
{
	if (opcode != WS_TEXT && opcode != WS_BINARY)
		return -EINVAL;
	if (w->flags & (WS_F_CLOSING | WS_F_USER_CLOSED | WS_F_CLOSE_SENT))
		return -EPIPE;
	if (ws_write_frame(w, (uint8_t)(WS_FIN | opcode), data, len) < 0)
		return -EPIPE;
	if (ws_pending(w) > WS_HIGH_WATER) {
		w->flags |= WS_F_WANT_DRAIN;
		return 0;
	}
	return 1;
}

void ws_read_stop(struct ws *w)
{
	if (w->flags & (WS_F_PAUSED | WS_F_CLOSING))
		return;
	w->flags |= WS_F_PAUSED;
	conn_read_stop(w->conn);
}

void ws_read_start(struct ws *w)
{
	if (!(w->flags & WS_F_PAUSED))
		return;
	w->flags &= ~WS_F_PAUSED;
	if (w->flags & WS_F_CLOSING)
		return;
	conn_read_start(w->conn);
	if (ws_kept(w) || (w->flags & WS_F_PEER_EOF))
		ws_schedule(w);
}

void ws_close(struct ws *w, uint16_t code, const char *reason)
{
	size_t rlen = reason ? strlen(reason) : 0;

	if (w->flags & (WS_F_CLOSING | WS_F_USER_CLOSED))
		return;
	w->flags |= WS_F_USER_CLOSED;
	if (!ws_code_sendable(code))
		code = 0; /* a close frame without a code is always valid */
	if (!(w->flags & WS_F_CLOSE_SENT) &&
	    ws_send_close(w, code, (const uint8_t *)reason, code ? rlen : 0) < 0)
		return;
	/* Listen for the peer's close frame even if the user had stopped reading. */
	if (w->flags & WS_F_PAUSED) {
		w->flags &= ~WS_F_PAUSED;
		conn_read_start(w->conn);
	}
	if (ws_kept(w) || (w->flags & WS_F_PEER_EOF))
		ws_schedule(w);
	uv_timer_start(&w->timer, ws_on_timer, WS_CLOSE_TIMEOUT_MS, 0);
	ws_check_done(w);
}

void ws_abort(struct ws *w)
{
	ws_finish(w, -ECONNABORTED, 0);
}

/* ---- handshake helpers ---- */

/* How many headers are called name; *value is the last one, trimmed. */
static size_t ws_headers_count(const struct http_header *h, size_t n, struct slice name,
			       struct slice *value)
{
	size_t i, count = 0;

	*value = SLICE_NULL;
	for (i = 0; i < n; i++) {
		if (slice_eq_nocase(h[i].name, name)) {
			*value = slice_trim_blanks(h[i].value);
			count++;
		}
	}
	return count;
}

/* 16 bytes in base64 (RFC 6455 section 4.1): 22 alphabet characters and "==". */
static int ws_key_valid(struct slice k)
{
	unsigned char raw[18];
	size_t n = 0;

	return k.len == 24 && base64_decode(k.base, k.len, raw, &n) == 0 && n == 16;
}

int ws_accept_key(const char *key, size_t key_len, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	int ok;

	out[0] = '\0';
	if (mc == NULL)
		return -EIO;
	ok = EVP_DigestInit_ex(mc, EVP_sha1(), NULL) == 1 &&
	     EVP_DigestUpdate(mc, key, key_len) == 1 &&
	     EVP_DigestUpdate(mc, WS_GUID, sizeof(WS_GUID) - 1) == 1 &&
	     EVP_DigestFinal_ex(mc, md, &mdlen) == 1 && mdlen == 20;
	EVP_MD_CTX_free(mc);
	if (!ok)
		return -EIO;
	base64_encode(md, 20, out);
	out[28] = '\0';
	return 0;
}

int ws_client_key(char out[25])
{
	unsigned char raw[16];

	out[0] = '\0';
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	base64_encode(raw, sizeof(raw), out);
	out[24] = '\0';
	return 0;
}

int ws_check_upgrade_request(const struct http_request *req, const char **why)
{
	const struct http_header *h = req->headers;
	size_t n = req->nheaders;
	struct slice v;

	*why = NULL;
	if (!slice_eq(req->method, LIT("GET")))
		*why = "a WebSocket upgrade must be a GET";
	else if (!http_hdr_has_token(h, n, LIT("Upgrade"), LIT("websocket")))
		*why = "missing Upgrade: websocket";
	else if (!http_hdr_has_token(h, n, LIT("Connection"), LIT("upgrade")))
		*why = "missing Connection: upgrade";
	else if (ws_headers_count(h, n, LIT("Sec-WebSocket-Version"), &v) != 1 ||
		 !slice_eq(v, LIT("13")))
		*why = "unsupported Sec-WebSocket-Version (need 13)";
	else if (ws_headers_count(h, n, LIT("Sec-WebSocket-Key"), &v) != 1 || !ws_key_valid(v))
		*why = "missing or malformed Sec-WebSocket-Key";
	return *why ? -EINVAL : 0;
}

int ws_request_offers_protocol(const struct http_request *req, const char *protocol)
{
	return http_hdr_has_token(req->headers, req->nheaders, LIT(WS_PROTOCOL_HEADER),
				     slice_cstr(protocol));
}

struct ws *ws_server_accept(struct http_request *req, const char *protocol, size_t max_message,
			    const struct ws_callbacks *cbs, void *data)
{
	struct http_header h[4] = {
		{LIT("Upgrade"), LIT("websocket")},
		{LIT("Connection"), LIT("Upgrade")},
	};
	size_t n = 2, extra_len = 0;
	const char *why = NULL;
	char accept[29], *extra = NULL;
	struct slice key;
	struct conn *c;
	struct ws *w;

	if (ws_check_upgrade_request(req, &why) < 0) {
		http_respond_error(req, 400, "%s", why);
		return NULL;
	}
	if (protocol && !ws_request_offers_protocol(req, protocol)) {
		http_respond_error(req, 400, "the client does not offer subprotocol %s", protocol);
		return NULL;
	}
	ws_headers_count(req->headers, req->nheaders, LIT("Sec-WebSocket-Key"), &key);
	if (ws_accept_key(key.base, key.len, accept) < 0) {
		http_respond_error(req, 500, "cannot compute Sec-WebSocket-Accept");
		return NULL;
	}
	h[n++] = (struct http_header){LIT("Sec-WebSocket-Accept"), slice_make(accept, 28)};
	if (protocol)
		h[n++] = (struct http_header){LIT(WS_PROTOCOL_HEADER), slice_cstr(protocol)};
	if (http_response_start(req, 101, h, n, 0) < 0) {
		http_response_abort(req);
		return NULL;
	}
	c = http_request_take_conn(req, &extra, &extra_len);
	if (c == NULL) {
		free(extra);
		return NULL;
	}
	w = ws_new(c, 0, max_message, cbs, data);
	if (w == NULL)
		conn_close(c);
	else if (extra_len)
		ws_feed(w, extra, extra_len);
	free(extra);
	return w;
}

/* ---- client ---- */

struct ws_connecting {
	ws_connect_cb done;
	void *arg;
	const struct ws_callbacks *cbs;
	void *data;
	size_t max_message;
	char accept[29];
	char *protocol;
};

static void ws_connecting_free(struct ws_connecting *wc)
{
	free(wc->protocol);
	free(wc);
}

/* A refusal: report the status and drop the rest of the response. */
static void ws_cl_on_head(struct http_client *cl, const struct http_response_head *head)
{
	struct ws_connecting *wc = http_client_data(cl);

	wc->done(NULL, head->status, wc->arg);
	ws_connecting_free(wc);
	http_client_cancel(cl);
}

static void ws_cl_on_done(struct http_client *cl, int err)
{
	struct ws_connecting *wc = http_client_data(cl);

	wc->done(NULL, err < 0 ? err : -EPROTO, wc->arg);
	ws_connecting_free(wc);
}

/* The checks of RFC 6455 section 4.1 on the server's 101. */
static int ws_check_101(const struct ws_connecting *wc, const struct http_response_head *head)
{
	const struct http_header *h = head->headers;
	size_t n = head->nheaders, np;
	struct slice v;

	if (!http_hdr_has_token(h, n, LIT("Upgrade"), LIT("websocket")) ||
	    !http_hdr_has_token(h, n, LIT("Connection"), LIT("upgrade")))
		return -EPROTO;
	if (ws_headers_count(h, n, LIT("Sec-WebSocket-Accept"), &v) != 1 ||
	    !slice_eq(v, slice_make(wc->accept, 28)))
		return -EPROTO;
	if (ws_headers_count(h, n, LIT("Sec-WebSocket-Extensions"), &v) != 0)
		return -EPROTO;
	np = ws_headers_count(h, n, LIT(WS_PROTOCOL_HEADER), &v);
	if (wc->protocol == NULL ? np != 0 : (np != 1 || !slice_eq(v, slice_cstr(wc->protocol))))
		return -EPROTO;
	return 0;
}

static void ws_cl_on_upgrade(struct http_client *cl, const struct http_response_head *head,
			     struct conn *c, const char *extra, size_t extra_len)
{
	struct ws_connecting *wc = http_client_data(cl);
	struct ws *w = NULL;
	int rc = ws_check_101(wc, head);

	if (rc < 0) {
		LOG_DEBUG("the server's 101 is not a valid WebSocket handshake");
	} else {
		w = ws_new(c, 1, wc->max_message, wc->cbs, wc->data);
		rc = w ? 0 : -ENOMEM;
	}
	if (w == NULL) {
		conn_close(c);
		wc->done(NULL, rc, wc->arg);
	} else {
		ws_feed(w, extra, extra_len);
		wc->done(w, 101, wc->arg);
	}
	ws_connecting_free(wc);
}

static const struct http_client_callbacks ws_cl_cbs = {
	.on_head = ws_cl_on_head,
	.on_done = ws_cl_on_done,
	.on_upgrade = ws_cl_on_upgrade,
};

int ws_connect(uv_loop_t *loop, const struct http_client_opts *opts, const char *target,
	       const char *protocol, const struct http_header *hdrs, size_t n, size_t max_message,
	       const struct ws_callbacks *cbs, void *data, ws_connect_cb done, void *arg)
{
	struct ws_connecting *wc = calloc(1, sizeof(*wc));
	struct http_header *h = NULL;
	char key[25];
	size_t nh = 0;
	int rc = -ENOMEM;

	if (wc == NULL)
		return -ENOMEM;
	if (protocol && (wc->protocol = strdup(protocol)) == NULL)
		goto fail;
	h = calloc(n + 5, sizeof(*h));
	if (h == NULL)
		goto fail;
	rc = ws_client_key(key);
	if (rc == 0)
		rc = ws_accept_key(key, 24, wc->accept);
	if (rc < 0)
		goto fail;
	wc->done = done;
	wc->arg = arg;
	wc->cbs = cbs;
	wc->data = data;
	wc->max_message = max_message;
	h[nh++] = (struct http_header){LIT("Upgrade"), LIT("websocket")};
	h[nh++] = (struct http_header){LIT("Connection"), LIT("Upgrade")};
	h[nh++] = (struct http_header){LIT("Sec-WebSocket-Key"), slice_make(key, 24)};
	h[nh++] = (struct http_header){LIT("Sec-WebSocket-Version"), LIT("13")};
	if (protocol)
		h[nh++] = (struct http_header){LIT(WS_PROTOCOL_HEADER), slice_cstr(protocol)};
	if (n)
		memcpy(h + nh, hdrs, n * sizeof(*h));
	/* The request head is built and copied right away: h may go. */
	if (http_client_request(loop, opts, "GET", target, h, nh + n, 0, &ws_cl_cbs, wc) == NULL) {
		rc = -EIO;
		goto fail;
	}
	free(h);
	return 0;
fail:
	free(h);
	ws_connecting_free(wc);
	return rc;
}
