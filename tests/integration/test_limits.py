#!/usr/bin/env python3
"""Limits and timeouts of lxcm-server under hostile clients (issue 6).

- Slowloris: 200 TLS connections sending a request head one byte every
  0.5 s and 100 TCP connections that never start TLS do not stop a normal
  client from being answered promptly; the header timeout (which starts at
  accept) then closes all of them. The per-address cap on TLS handshakes in
  progress closes the connection over the cap at once.
- Header count and bytes at and over their caps (431), the buffered JSON
  body at and over its cap (413) on the management listener and the
  connector's join, the heartbeat's larger cap (7 MiB in, 9 MiB 413), the
  flags that change them, and the idle keep-alive timeout.
- A tunnel peer with a valid enrolled certificate that misbehaves (a
  hand-rolled `lxcm-tunnel.v2` WebSocket client): junk instead of HTTP/2,
  a text message, a message over 1 MiB (1009), a peer that stops reading
  while many requests are proxied to it, a peer that ignores HTTP/2 flow
  control. Each is cut off (or its requests fail) while another cluster's
  tunnel, a real lxcm-agent in front of upstream_fake.py, keeps working,
  and the server's memory stays bounded.

Server and agent only (no LXD). Python standard library only.
"""

import json
import os
import select
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_limits")

S = None            # the main server: a real agent cluster "good" + hostile peers
GOOD = {}           # the good cluster: upstream, agent process, data dir
SANITIZED = False   # ASan build: RSS bounds are not checked (L.sanitized_build)
PROXY_HEADER_TIMEOUT_MS = 3000
TOKEN_PATH = "/1.0/remote-cluster-join-token"
MiB = 1 << 20


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def expect(r, code, what):
    if r.status != code:
        raise L.TestFailure("%s: HTTP %d, want %d: %r" % (what, r.status, code, r))
    L.check_envelope_error(r.json, code, what)


def connect_from(port, src, timeout=15):
    """A TCP connection to the loopback port from source address src (127.x.y.z)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(src, 0))


def tls_from(port, src, cert=None, timeout=15):
    raw = connect_from(port, src, timeout)
    try:
        return L.tls_context(cert).wrap_socket(raw, server_hostname=None)
    except Exception:
        raw.close()
        raise


def get_from(port, src, path="/1.0", timeout=20, token=None):
    """GET path on a fresh TLS connection from src: (Response, seconds taken)."""
    t0 = time.monotonic()
    s = tls_from(port, src, timeout=timeout)
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
                   % (path, auth)).encode())
        r = L.read_http_response(s, timeout)
    finally:
        s.close()
    return r, time.monotonic() - t0


def peer_closed(sock, wait=0.0):
    """True if the peer closed sock (EOF or reset) within wait seconds.

    Data the server sends first (an error answer) is read and ignored.
    """
    deadline = time.monotonic() + wait
    while True:
        left = max(0.0, deadline - time.monotonic())
        try:
            r, _, _ = select.select([sock], [], [], left)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            sock.setblocking(False)
            data = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            return True
        finally:
            try:
                sock.setblocking(True)
            except OSError:
                pass
        if not data:
            return True
        if time.monotonic() >= deadline:
            return False


def proxied(name, path, **kw):
    return S.mgmt("GET", "/1.0/remote-cluster/%s/tunnel%s" % (name, path), **kw)


def good_ok(what, limit=5.0):
    """The good cluster's tunnel answers through its real agent, in time."""
    t0 = time.monotonic()
    r = proxied("good", "/1.0/echo?x=" + what.replace(" ", "-"), timeout=30)
    took = time.monotonic() - t0
    L.eq(r.status, 200, "good cluster through its tunnel (%s): %r" % (what, r))
    L.eq(r.metadata.get("marker"), "good", "marker of the good cluster's upstream")
    L.check(took < limit, "good cluster answered in %.1f s (%s), want < %.0f s" % (
        took, what, limit))
    return took


def cluster_tunnel(srv, name):
    r = srv.mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET cluster " + name)
    return r.metadata.get("tunnel") if r.metadata.get("tunnel_registered") else None


def rss_kb(srv):
    return L.proc_status_kb(srv.proc.pid, "VmRSS")


# ---------------------------------------------------------------------------
# A hand-rolled lxcm-tunnel.v2 peer: WebSocket client + minimal HTTP/2 frames
# ---------------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_RST, H2_SETTINGS, H2_PING, H2_GOAWAY, H2_WINUP = 0, 1, 3, 4, 6, 7, 8


def ws_mask(payload, key):
    n = len(payload)
    if n == 0 or key == b"\0\0\0\0":
        return bytes(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(
        n, "little")


def h2_frame(ftype, flags, sid, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            (sid & 0x7FFFFFFF).to_bytes(4, "big") + payload)


def h2_settings(**kv):
    ids = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
           "initial_window_size": 4, "max_frame_size": 5, "enable_connect_protocol": 8}
    return h2_frame(H2_SETTINGS, 0, 0, b"".join(
        ids[k].to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in kv.items()))


class TunnelPeer(L.WebSocket):
    """The agent's side of a v2 tunnel, written by hand so it can misbehave
    (lxcmtest's WebSocket client, with raw framing options and HTTP/2 state)."""

    def __init__(self, port, cert, timeout=15, protocol="lxcm-tunnel.v2"):
        sock = L.tls_connect(port, cert=cert, timeout=timeout)
        r, ws = L.ws_upgrade(sock, "/1.0/remote-cluster/ws", timeout=timeout,
                             headers={"Sec-WebSocket-Protocol": protocol})
        if ws is None:
            raise L.TestFailure("tunnel upgrade answered %d: %r" % (r.status, r.raw[:200]))
        L.eq(r.headers.get("sec-websocket-protocol"), protocol, "the tunnel's subprotocol")
        L.WebSocket.__init__(self, sock, ws.buf)
        self.h2buf = b""
        self.h2_preface_seen = False
        self.closed = None

    # -- WebSocket --

    def send_frame(self, opcode, payload=b"", fin=True, zero_mask=False):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        key = b"\0\0\0\0" if zero_mask else os.urandom(4)
        self.sock.sendall(head + key + ws_mask(payload, key))

    def send_h2(self, data):
        """HTTP/2 bytes as one binary WebSocket message."""
        self.send_frame(0x2, data)

    def recv_frame(self, timeout=15):
        """(fin, opcode, payload) of the next frame from the server, which must
        not be masked."""
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        if self.buf[1] & 0x80:
            raise L.TestFailure("the server sent a masked frame")
        return L.WebSocket.recv_frame(self, max(0.001, deadline - time.monotonic()))

    def _handle(self, op, payload):
        """One frame from the server: HTTP/2 bytes kept, pings answered."""
        if op == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            self.closed = self.closed or ("close", code)
        elif op == 0x9:
            try:
                self.send_frame(0xA, payload)
            except OSError:
                pass
        elif op in (0x0, 0x2):
            self.h2buf += payload

    def pump(self):
        """Reads what the server has sent so far without waiting; returns
        self.closed (None while the connection is open)."""
        while self.closed is None:
            try:
                if not self.buf and not self.sock.pending():
                    r, _, _ = select.select([self.sock], [], [], 0)
                    if not r:
                        break
                fin, op, payload = self.recv_frame(5)
            except socket.timeout:
                break
            except (ConnectionError, ssl.SSLError, OSError):
                self.closed = ("eof", None)
                break
            self._handle(op, payload)
        return self.closed

    def send_stream(self, chunks):
        """Sends raw bytes (already framed) while reading what comes back;
        stops early once the server closed. Returns self.closed."""
        for c in chunks:
            if self.pump():
                return self.closed
            try:
                self.sock.sendall(c)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.closed = self.closed or ("eof", None)
                self.pump()
                return self.closed
        return self.pump()

    def wait_closed(self, timeout, on_tick=None):
        """Reads until the server closes: ('close', code) for a close frame,
        ('eof', None) for EOF or reset, None if still open after timeout.
        HTTP/2 bytes received meanwhile go to self.h2buf; on_tick() runs
        about every 0.5 s (a peer that keeps talking)."""
        deadline = time.monotonic() + timeout
        while self.closed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                fin, op, payload = self.recv_frame(min(0.5, left))
            except socket.timeout:
                if on_tick is not None:
                    try:
                        on_tick()
                    except OSError:
                        self.closed = ("eof", None)
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                self.closed = ("eof", None)
                break
            self._handle(op, payload)
        return self.closed

    # -- HTTP/2 bytes carried in binary messages --

    def h2_frames(self, timeout=15, until=None):
        """Reads binary messages and returns the complete HTTP/2 frames
        (type, flags, stream id, payload) received, after the client preface.
        Stops when until(frames) is true or at timeout (then returns what it has)."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            while True:
                if not self.h2_preface_seen:
                    if len(self.h2buf) < len(H2_PREFACE):
                        break
                    L.eq(self.h2buf[:len(H2_PREFACE)], H2_PREFACE, "the server's HTTP/2 preface")
                    self.h2buf = self.h2buf[len(H2_PREFACE):]
                    self.h2_preface_seen = True
                if len(self.h2buf) < 9:
                    break
                n = int.from_bytes(self.h2buf[:3], "big")
                if len(self.h2buf) < 9 + n:
                    break
                f = (self.h2buf[3], self.h2buf[4],
                     int.from_bytes(self.h2buf[5:9], "big") & 0x7FFFFFFF, self.h2buf[9:9 + n])
                self.h2buf = self.h2buf[9 + n:]
                frames.append(f)
            if until is not None and until(frames):
                return frames
            left = deadline - time.monotonic()
            if left <= 0:
                return frames
            if self.closed:
                raise ConnectionError("the server closed the tunnel: %r" % (self.closed,))
            try:
                fin, op, payload = self.recv_frame(left)
            except socket.timeout:
                return frames
            except (ConnectionError, ssl.SSLError, OSError):
                self.closed = ("eof", None)
                raise
            self._handle(op, payload)

    def close(self, abrupt=False):
        try:
            if not abrupt:
                self.send_frame(0x8, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def hostile_peer(name):
    """A fresh enrolled cluster and a v2 tunnel from a hand-rolled peer."""
    cert = S.enroll(name)
    peer = TunnelPeer(S.conn_port, cert)
    L.wait_for(lambda: cluster_tunnel(S, name), timeout=15, what="tunnel of " + name)
    return peer


def check_cut_off(peer, name, what, timeout=10, keep_talking=None):
    """The server closes peer's tunnel within timeout and forgets it."""
    res = peer.wait_closed(timeout, on_tick=keep_talking)
    if res is None:
        tun = cluster_tunnel(S, name)
        raise L.TestFailure("%s: the server did not close the tunnel within %d s "
                            "(tunnel still registered: %r)" % (what, timeout, tun))
    L.wait_for(lambda: cluster_tunnel(S, name) is None, timeout=10,
               what="the tunnel of %s to be gone (%s)" % (name, what))
    r = proxied(name, "/1.0/echo")
    expect(r, 503, "request to %s after its tunnel was cut (%s)" % (name, what))
    peer.close(abrupt=True)
    return res


# ---------------------------------------------------------------------------
# Raw HTTP exchanges that keep sending while the server may answer early
# ---------------------------------------------------------------------------

def upload_exchange(port, head, body_len, timeout=60, chunk=16384, src="127.0.0.1"):
    """Sends head then body_len bytes, reading at the same time; returns the
    answer's status (None if the connection ended without one) and the
    number of body bytes the server took."""
    s = tls_from(port, src, timeout=15)
    s.setblocking(False)
    out = memoryview(head + b"u" * body_len)
    head_len = len(head)
    sent = 0
    inbuf = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            want_w = sent < len(out)
            if s.pending():
                r, w = [s], []
            else:
                r, w, _ = select.select([s], [s] if want_w else [], [], 0.5)
            if r:
                try:
                    d = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    d = None
                except (ConnectionResetError, ssl.SSLError, OSError):
                    break
                if d is not None:
                    if not d:
                        break
                    inbuf += d
                    if b"\r\n\r\n" in inbuf:
                        break
            if w and want_w:
                try:
                    sent += s.send(out[sent:sent + chunk])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    sent = len(out)
    finally:
        s.close()
    status = None
    if inbuf.startswith(b"HTTP/1."):
        status = int(inbuf.split(b" ", 2)[1])
    return status, max(0, sent - head_len)


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

@t.setup
def setup():
    global S, SANITIZED
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    SANITIZED = L.sanitized_build()
    if SANITIZED:
        L.log("NOTE sanitizer build: RSS bounds are not enforced (counts are)")
    S = L.Server("--proxy-header-timeout", str(PROXY_HEADER_TIMEOUT_MS),
                 "--join-rate", "1000", "--join-burst", "1000").start()
    up = U.FakeUpstream("good").start()
    d = os.path.join(L.tmpdir("agent"), "good")
    L.agent("join", S.create_token("good"), "--data-dir", d, "--upstream", up.url,
            check_rc=0, timeout=60)
    proc = L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    GOOD.update(up=up, dir=d, proc=proc)
    L.wait_for(lambda: cluster_tunnel(S, "good"), timeout=30, what="the good agent's tunnel")
    good_ok("setup", limit=30)


# ---------------------------------------------------------------------------
# Slowloris and handshakes
# ---------------------------------------------------------------------------

class Dripper(threading.Thread):
    """Sends a request head one byte at a time to many sockets, every interval,
    and records when each socket was closed by the server."""

    HEAD = (b"GET /1.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: " +
            b"a" * 4096)

    def __init__(self, socks, interval=0.5):
        super().__init__(daemon=True)
        self.socks = socks
        self.interval = interval
        self.pos = [0] * len(socks)
        self.closed_at = [None] * len(socks)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for i, s in enumerate(self.socks):
                if self.closed_at[i] is not None:
                    continue
                if peer_closed(s):
                    self.closed_at[i] = time.monotonic()
                    continue
                try:
                    s.send(self.HEAD[self.pos[i] % len(self.HEAD):][:1])
                    self.pos[i] += 1
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    self.closed_at[i] = time.monotonic()
            self.stop.wait(self.interval)

    def open_count(self):
        return sum(1 for c in self.closed_at if c is None)


@t.test
def test_slowloris():
    header_timeout = 10.0
    H = L.Server("--header-timeout", str(int(header_timeout * 1000))).start()
    slow, raw = [], []
    dripper = None
    try:
        # 200 TLS connections from 127.0.0.1 that will send their head a byte at a time.
        t0 = time.monotonic()
        opened = []
        for i in range(200):
            s = L.tls_connect(H.mgmt_port, timeout=20)
            opened.append(time.monotonic())
            slow.append(s)
        setup_s = time.monotonic() - t0
        L.log("  200 TLS connections made in %.1f s" % setup_s)
        L.check(setup_s < header_timeout - 2, "opening 200 TLS connections took %.1f s; "
                "the machine is too slow for this test's timing" % setup_s)
        dripper = Dripper(slow)
        dripper.start()
        # 100 TCP connections from 127.0.0.3 that never start TLS: 64 (the
        # default cap on handshakes in progress per address) are held, the
        # rest are closed at once.
        raw_opened = []
        for i in range(100):
            raw.append(connect_from(H.mgmt_port, "127.0.0.3"))
            raw_opened.append(time.monotonic())
        time.sleep(1.0)
        closed_now = [i for i, s in enumerate(raw) if peer_closed(s, 0.05)]
        L.eq(len(closed_now), 36, "raw connections over the per-address handshake cap "
             "closed at once (closed: %r)" % closed_now)
        L.check(min(closed_now) >= 64, "the held raw connections must be the first 64: "
                "closed %r" % closed_now)
        # A normal client is answered promptly, several times, from the
        # slowloris address and from another one.
        for i in range(4):
            for src in ("127.0.0.1", "127.0.0.2"):
                r, took = get_from(H.mgmt_port, src)
                L.eq(r.status, 200, "GET /1.0 from %s during the slowloris" % src)
                L.check(took < 2.0, "GET /1.0 from %s took %.2f s during the slowloris" % (
                    src, took))
            r, took = get_from(H.conn_port, "127.0.0.2", "/1.0/status")
            L.eq(r.status, 200, "connector GET /1.0/status during the slowloris")
            L.check(took < 2.0, "connector status took %.2f s during the slowloris" % took)
            L.check(dripper.open_count() >= 195, "the slowloris connections must still be "
                    "open while the normal client is served (%d open)" % dripper.open_count())
            time.sleep(0.5)
        L.check(time.monotonic() - opened[-1] < header_timeout,
                "the checks above took longer than the header timeout")
        # The header timeout (from accept) closes them all.
        deadline = max(opened[-1], raw_opened[-1]) + header_timeout + 10
        L.wait_for(lambda: dripper.open_count() == 0, timeout=deadline - time.monotonic(),
                   interval=0.5, what="the header timeout to close the 200 slow connections "
                   "(%d still open)" % dripper.open_count())
        early = [i for i, c in enumerate(dripper.closed_at)
                 if c - opened[i] < header_timeout * 0.75]
        L.check(not early, "%d slow connections closed well before the header timeout "
                "(first %r after %.1f s)" % (len(early), early[:5], (
                    dripper.closed_at[early[0]] - opened[early[0]]) if early else 0))
        held = list(range(64))
        L.wait_for(lambda: all(peer_closed(raw[i], 0.01) for i in held),
                   timeout=max(1, deadline - time.monotonic()), interval=0.5,
                   what="the header timeout to close the 64 connections that never "
                   "started TLS")
        L.log("  slowloris bytes sent per connection: max %d" % max(dripper.pos))
        r, took = get_from(H.mgmt_port, "127.0.0.3")
        L.eq(r.status, 200, "GET /1.0 from the address that held 64 half-open connections")
        L.check(H.alive(), "server died")
    finally:
        if dripper is not None:
            dripper.stop.set()
            dripper.join(5)
        for s in slow + raw:
            try:
                s.close()
            except OSError:
                pass
        H.stop()


@t.test
def test_handshake_cap_per_address():
    H = L.Server("--max-handshakes-per-ip", "16").start()
    socks = []
    try:
        for port, name in ((H.mgmt_port, "management"), (H.conn_port, "connector")):
            held = [connect_from(port, "127.0.0.4") for _ in range(16)]
            socks += held
            time.sleep(0.5)
            L.check(not any(peer_closed(s, 0.01) for s in held),
                    "%s: one of 16 half-open connections was closed" % name)
            extra = connect_from(port, "127.0.0.4")
            socks.append(extra)
            t0 = time.monotonic()
            L.check(peer_closed(extra, 3.0), "%s: the 17th half-open connection from one "
                    "address was not closed" % name)
            took = time.monotonic() - t0
            L.check(took < 2.0, "%s: the 17th connection was closed after %.2f s, "
                    "want at once" % (name, took))
            L.check(not any(peer_closed(s, 0.01) for s in held),
                    "%s: closing the 17th closed one of the first 16" % name)
            # A TLS client from that address is refused too; one from another is served.
            try:
                s = tls_from(port, "127.0.0.4", timeout=5)
                s.close()
                raise L.TestFailure("%s: a TLS handshake over the cap succeeded" % name)
            except (ssl.SSLError, ConnectionError, OSError) as e:
                if isinstance(e, L.TestFailure):
                    raise
            r, took = get_from(port, "127.0.0.5", "/1.0/status")
            L.eq(r.status, 200, "%s: a client from another address" % name)
            L.check(took < 2.0, "%s: another address waited %.2f s" % (name, took))
            # Freeing slots lets the address in again.
            for s in held[:4]:
                s.close()

            def served():
                r, _ = get_from(port, "127.0.0.4", "/1.0/status", timeout=5)
                return r.status == 200
            L.wait_for(served, timeout=10, interval=0.3,
                       what="%s: a TLS client from the capped address after 4 slots were "
                       "freed" % name)
            for s in held[4:]:
                s.close()
        L.check(H.alive(), "server died")
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        H.stop()


# ---------------------------------------------------------------------------
# Header and body caps
# ---------------------------------------------------------------------------

def _get_head(nheaders=0, pad=0, path="/1.0/status"):
    """A GET head with Host plus nheaders X-N headers and pad bytes of X-Pad."""
    lines = [b"GET " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [b"X-H%d: v" % i for i in range(nheaders)]
    if pad:
        lines.append(b"X-Pad: " + b"p" * pad)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@t.test
def test_header_count_cap():
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        # Host + 99 = 100 headers: the cap itself is allowed.
        r = L.raw_exchange(port, _get_head(99))
        L.eq(r.status, 200, name + ": 100 headers")
        expect(L.raw_exchange(port, _get_head(100)), 431, name + ": 101 headers")
        expect(L.raw_exchange(port, _get_head(1000)), 431, name + ": 1001 headers")
        L.eq(L.request(port, "GET", "/1.0/status").status, 200, name + " still answers")


@t.test
def test_header_bytes_cap():
    cap = 64 * 1024
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        base = len(_get_head(0, pad=1)) - 1
        under = _get_head(0, pad=cap - base - 64)   # the whole head on the wire < cap
        L.check(len(under) < cap, "test bug: head of %d bytes" % len(under))
        r = L.raw_exchange(port, under)
        L.eq(r.status, 200, "%s: a %d-byte head (cap %d)" % (name, len(under), cap))
        over = _get_head(0, pad=cap + 1)            # one header value alone over the cap
        expect(L.raw_exchange(port, over), 431, "%s: a %d-byte head" % (name, len(over)))
        many = _get_head(0, pad=0)[:-2] + b"".join(
            b"X-M%d: %s\r\n" % (i, b"m" * 900) for i in range(75)) + b"\r\n"
        expect(L.raw_exchange(port, many), 431, "%s: 75 headers of 900 bytes" % name)


def _post_head(path, length, token=None, extra=b""):
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Content-Type: application/json", b"Content-Length: %d" % length]
    if token:
        lines.append(b"Authorization: Bearer " + token.encode())
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


def _padded_json(obj_text, size):
    """obj_text followed by JSON whitespace to exactly size bytes."""
    L.check(len(obj_text) <= size, "test bug: JSON longer than its padded size")
    return obj_text + b" " * (size - len(obj_text))


@t.test
def test_json_body_cap():
    cap = MiB
    # Management: a token create padded to exactly the cap is read and served.
    ok = _padded_json(b'{"cluster_name":"capok"}', cap)
    r = L.raw_exchange(S.mgmt_port, _post_head(TOKEN_PATH, len(ok), S.token) + ok)
    L.eq(r.status, 200, "token create with a body of exactly 1 MiB: %r" % r)
    big = _padded_json(b'{"cluster_name":"capbig"}', cap + 1)
    r = L.raw_exchange(S.mgmt_port, _post_head(TOKEN_PATH, len(big), S.token) + big)
    expect(r, 413, "token create with a body of 1 MiB + 1")
    names = [x["cluster_name"] for x in S.mgmt("GET", TOKEN_PATH).metadata]
    L.check("capbig" not in names, "a refused body created a token")
    # Connector join: the same cap.
    cert = L.Cert("capjoin")
    tok = S.create_token("capjoin")
    text = ('{"cluster_name":"capjoin","cluster_certificate":%s,"token":"%s"}' % (
        json.dumps(cert.pem), tok)).encode()
    r = L.raw_exchange(S.conn_port, _post_head("/1.0/remote-cluster", cap + 1) +
                       _padded_json(text, cap + 1))
    expect(r, 413, "join with a body of 1 MiB + 1")
    r = L.raw_exchange(S.conn_port, _post_head("/1.0/remote-cluster", cap) +
                       _padded_json(text, cap))
    L.eq(r.status, 200, "join with a body of exactly 1 MiB: %r" % r)
    # A huge announced body is refused from its head, without reading it.
    t0 = time.monotonic()
    s = L.tls_connect(S.mgmt_port)
    try:
        s.sendall(_post_head(TOKEN_PATH, 10 << 30, S.token))
        r = L.read_http_response(s, timeout=10)
    finally:
        s.close()
    expect(r, 413, "a 10 GiB Content-Length")
    L.check(time.monotonic() - t0 < 5, "the 413 for a 10 GiB Content-Length took too long")


@t.test
def test_heartbeat_body_cap():
    cert = S.enroll("hbbig")
    line = "m" * 1000

    def body(size):
        n = size // (len(line) + 3)
        text = ('{"cpu_total_count":3,"server_metrics":[%s]}' % ",".join(
            ['"%s"' % line] * n)).encode()
        return _padded_json(text, size)

    b7 = body(7 * MiB)
    r = S.conn("POST", "/1.0/remote-cluster/status", b7, cert=cert,
               headers={"Content-Type": "application/json"}, timeout=60)
    L.eq(r.status, 200, "a 7 MiB heartbeat: %r" % r)
    c = S.mgmt("GET", "/1.0/remote-cluster/hbbig").metadata
    L.eq(c["cpu_total_count"], 3, "cpu_total_count from the 7 MiB heartbeat")
    b9 = body(9 * MiB)
    head = (b"POST /1.0/remote-cluster/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b9))
    expect(L.raw_exchange(S.conn_port, head + b9, cert=cert, timeout=60), 413,
           "a 9 MiB heartbeat")
    # 8 MiB + 1 is over; the management listener's cap stays 1 MiB.
    b8 = body(8 * MiB + 1)
    head = head.replace(b"%d" % len(b9), b"%d" % len(b8))
    expect(L.raw_exchange(S.conn_port, head + b8, cert=cert, timeout=60), 413,
           "a heartbeat of 8 MiB + 1")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 5},
                cert=cert).status, 200, "a small heartbeat after the refused one")


@t.test
def test_flags_change_caps_and_idle_timeout():
    H = L.Server("--idle-timeout", "1000", "--max-header-bytes", "4096",
                 "--max-json-body", "4096").start()
    try:
        expect(L.raw_exchange(H.mgmt_port, _get_head(0, pad=4200)), 431,
               "a 4 KiB head with --max-header-bytes 4096")
        L.eq(L.raw_exchange(H.mgmt_port, _get_head(0, pad=3000)).status, 200,
             "a 3 KiB head with --max-header-bytes 4096")
        ok = _padded_json(b'{"cluster_name":"small"}', 4096)
        L.eq(L.raw_exchange(H.mgmt_port, _post_head(TOKEN_PATH, len(ok), H.token) + ok).status,
             200, "a 4096-byte body with --max-json-body 4096")
        big = _padded_json(b'{"cluster_name":"small2"}', 4097)
        expect(L.raw_exchange(H.mgmt_port, _post_head(TOKEN_PATH, len(big), H.token) + big),
               413, "a 4097-byte body with --max-json-body 4096")
        # Idle keep-alive: closed about 1 s after the last answer; a request
        # before that restarts the wait.
        for port, name in ((H.mgmt_port, "management"), (H.conn_port, "connector")):
            s = L.tls_connect(port)
            try:
                s.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\n\r\n")
                L.eq(L.read_http_response(s).status, 200, name + ": first keep-alive request")
                time.sleep(0.5)
                s.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\n\r\n")
                L.eq(L.read_http_response(s).status, 200,
                     name + ": second request 0.5 s later on the same connection")
                t0 = time.monotonic()
                L.check(peer_closed(s, 10), name + ": idle connection not closed in 10 s")
                took = time.monotonic() - t0
                L.check(0.6 <= took <= 4.0, "%s: idle connection closed after %.2f s, "
                        "want about 1 s" % (name, took))
            finally:
                s.close()
        L.check(H.alive(), "server died")
    finally:
        H.stop()


# ---------------------------------------------------------------------------
# Hostile tunnel peers with valid certificates
# ---------------------------------------------------------------------------

@t.test
def test_tunnel_junk_before_settings():
    peer = hostile_peer("hjunk1")
    good_ok("before junk")
    junk = b"GET / HTTP/1.1\r\nHost: not-http2\r\n\r\n" * 4
    peer.send_h2(junk)
    # The peer goes on talking junk: a tunnel the server has given up on
    # must still be closed (not kept alive by the peer's bytes).
    res = check_cut_off(peer, "hjunk1", "junk instead of HTTP/2", timeout=10,
                        keep_talking=lambda: peer.send_h2(junk))
    L.log("  junk before SETTINGS: %r" % (res,))
    good_ok("after junk")


@t.test
def test_tunnel_junk_after_settings():
    peer = hostile_peer("hjunk2")
    peer.send_h2(h2_settings(max_concurrent_streams=100) + h2_frame(H2_SETTINGS, 1, 0))
    frames = peer.h2_frames(timeout=10, until=lambda fs: any(
        f[0] == H2_SETTINGS and f[1] & 1 for f in fs))
    L.check(any(f[0] == H2_SETTINGS and f[1] & 1 for f in frames),
            "the server did not ACK our SETTINGS: %r" % (frames,))
    # A DATA frame on stream 0 and a frame bigger than the maximum frame size.
    bad = h2_frame(H2_DATA, 0, 0, b"x" * 10) + h2_frame(0x0, 0, 1, b"y" * 20000)
    peer.send_h2(bad)
    res = check_cut_off(peer, "hjunk2", "HTTP/2 protocol errors after SETTINGS", timeout=10,
                        keep_talking=lambda: peer.send_h2(h2_frame(H2_PING, 0, 0, b"8bytes!!")))
    L.log("  junk after SETTINGS: %r" % (res,))
    good_ok("after junk frames")


@t.test
def test_tunnel_text_message():
    peer = hostile_peer("htext")
    peer.send_frame(0x1, '{"type":"request","id":"1"}')
    res = check_cut_off(peer, "htext", "a text message on a v2 tunnel")
    L.check(res[0] == "eof" or res[1] in (1002, 1003, 1007, 1008),
            "close code for a text message: %r" % (res,))
    good_ok("after the text message")


def _ignored_frames(total):
    """HTTP/2 bytes of exactly total bytes: an empty SETTINGS then frames of an
    unknown type, which a receiver must ignore."""
    out = [h2_settings()]
    left = total - len(out[0])
    while left:
        n = min(left - 9, 16384)
        out.append(h2_frame(0xEE, 0, 0, b"i" * n))
        left -= 9 + n
    data = b"".join(out)
    L.eq(len(data), total, "test bug: size of the ignored frames")
    return data


def _frame_bytes(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + ws_mask(payload, key)


@t.test
def test_tunnel_message_size_cap():
    # Exactly 1 MiB in one message is fine (HTTP/2 frames the server ignores).
    peer = hostile_peer("hbig")
    peer.send_h2(_ignored_frames(MiB))
    L.check(peer.wait_closed(2.0) is None, "a message of exactly 1 MiB closed the tunnel")
    L.check(cluster_tunnel(S, "hbig") is not None, "the tunnel went after a 1 MiB message")
    good_ok("after a 1 MiB message")
    # 1 MiB + 1 in one frame: 1009.
    data = _frame_bytes(0x2, _ignored_frames(MiB + 9 + 1)[:MiB + 1])
    peer.send_stream(data[i:i + 16384] for i in range(0, len(data), 16384))
    res = check_cut_off(peer, "hbig", "one frame of 1 MiB + 1")
    L.eq(res, ("close", 1009), "close of a 1 MiB + 1 message")
    # The same in fragments of 64 KiB.
    cert = S.enroll("hbig2")
    peer = TunnelPeer(S.conn_port, cert)
    L.wait_for(lambda: cluster_tunnel(S, "hbig2"), timeout=15, what="tunnel of hbig2")
    payload = _ignored_frames(MiB + 64 * 1024)
    frags = []
    for i in range(0, len(payload), 64 * 1024):
        piece = payload[i:i + 64 * 1024]
        frags.append(_frame_bytes(0x2 if i == 0 else 0x0, piece,
                                  fin=i + 64 * 1024 >= len(payload)))
    peer.send_stream(frags)
    res = check_cut_off(peer, "hbig2", "a fragmented message over 1 MiB")
    L.eq(res, ("close", 1009), "close of a fragmented message over 1 MiB")
    good_ok("after the messages over 1 MiB")


@t.test
def test_tunnel_peer_never_reads():
    pid = S.proc.pid
    peer = hostile_peer("hslow")
    # Big windows, so the server would push request bodies as fast as it can;
    # then the peer never reads again.
    peer.send_h2(h2_settings(initial_window_size=0x7FFFFFFF, max_concurrent_streams=1000) +
                 h2_frame(H2_SETTINGS, 1, 0) +
                 h2_frame(H2_WINUP, 0, 0, (0x7FFFFFFF - 65535).to_bytes(4, "big")))
    try:
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    except OSError:
        pass
    time.sleep(0.5)
    base = rss_kb(S)
    L.reset_peak_rss(pid)
    results = {"get": [], "put": []}
    lock = threading.Lock()

    def src(i):
        # Many users: spread over source addresses (one address may have 64
        # TLS handshakes in progress).
        return "127.0.%d.%d" % (10 + i // 100, 1 + i % 100)

    def do_get(i):
        try:
            r, _ = get_from(S.mgmt_port, src(i), "/1.0/remote-cluster/hslow/tunnel/1.0/echo?i=%d"
                            % i, timeout=60, token=S.token)
            st = r.status
            if st in (503, 504):
                L.check_envelope_error(r.json, st, "proxied error")
        except Exception as e:
            st = repr(e)
        with lock:
            results["get"].append(st)

    def do_put(i):
        head = ("PUT /1.0/remote-cluster/hslow/tunnel/1.0/upload?i=%d HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (
                    i, S.token, 4 * MiB)).encode()
        try:
            st, sent = upload_exchange(S.mgmt_port, head, 4 * MiB, timeout=60, src=src(300 + i))
        except Exception as e:
            st, sent = repr(e), 0
        with lock:
            results["put"].append((st, sent))

    threads = [threading.Thread(target=do_get, args=(i,), daemon=True) for i in range(300)]
    threads += [threading.Thread(target=do_put, args=(i,), daemon=True) for i in range(40)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    # Another cluster's tunnel is not affected meanwhile.
    slowest = 0
    while any(th.is_alive() for th in threads) and time.monotonic() - t0 < 90:
        slowest = max(slowest, good_ok("while hslow does not read", limit=5))
        time.sleep(0.3)
    for th in threads:
        th.join(max(1, 90 - (time.monotonic() - t0)))
    took = time.monotonic() - t0
    L.check(not any(th.is_alive() for th in threads), "proxied requests still hanging "
            "after %.0f s" % took)
    peak = L.proc_status_kb(pid, "VmHWM")
    gets = results["get"]
    bad = [st for st in gets if st not in (503, 504)]
    L.check(not bad, "requests to a tunnel that does not read must fail with 503/504, "
            "got %d others: %r" % (len(bad), bad[:10]))
    puts = results["put"]
    bad = [p for p in puts if p[0] not in (503, 504, None)]
    L.check(not bad, "uploads to a tunnel that does not read: %r" % (bad[:10],))
    L.check(sum(1 for p in puts if p[0] in (503, 504)) >= len(puts) // 2,
            "most uploads must get an answer (503/504): %r" % (puts,))
    L.log("  300 GETs: %d x 504, %d x 503; 40 uploads of 4 MiB: statuses %r, body bytes "
          "taken max %d; %.1f s; good cluster slowest %.2f s; RSS %d -> peak %d KiB" % (
              gets.count(504), gets.count(503), sorted(set(p[0] for p in puts), key=str),
              max(p[1] for p in puts), took, slowest, base, peak))
    L.check(SANITIZED or peak - base < 64 * 1024, "server memory grew by %d KiB (limit "
            "64 MiB) while a tunnel peer did not read" % (peak - base))
    good_ok("after the flood")
    peer.close(abrupt=True)
    L.wait_for(lambda: cluster_tunnel(S, "hslow") is None, timeout=15,
               what="the tunnel of hslow to go after its peer closed")


@t.test
def test_tunnel_peer_ignores_flow_control():
    pid = S.proc.pid
    peer = hostile_peer("hflow")
    peer.send_h2(h2_settings(max_concurrent_streams=100) + h2_frame(H2_SETTINGS, 1, 0))
    peer.h2_frames(timeout=10, until=lambda fs: any(f[0] == H2_SETTINGS and f[1] & 1
                                                       for f in fs))
    base = rss_kb(S)
    L.reset_peak_rss(pid)
    # A user who asks and never reads the answer.
    user = L.tls_connect(S.mgmt_port)
    user.sendall(("GET /1.0/remote-cluster/hflow/tunnel/1.0/bytes HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % S.token).encode())
    frames = peer.h2_frames(timeout=10, until=lambda fs: any(f[0] == H2_HEADERS for f in fs))
    hs = [f for f in frames if f[0] == H2_HEADERS]
    L.check(hs, "the request did not reach the hostile peer: %r" % (frames,))
    sid = hs[0][2]
    # :status 200 (HPACK static index 8), then 24 MiB of DATA, ignoring the
    # stream window (1 MiB) and the connection window (16 MiB).
    peer.send_h2(h2_frame(H2_HEADERS, 0x4, sid, b"\x88"))
    chunk = _frame_bytes(0x2, h2_frame(H2_DATA, 0, sid, b"d" * 16384) * 16)
    total = 24 * MiB
    t0 = time.monotonic()
    cut = peer.send_stream(chunk for _ in range(total // (16 * 16384)))
    send_s = time.monotonic() - t0
    # Whatever the server did (RST_STREAM, GOAWAY, closing the tunnel), it
    # must not have buffered the excess, and the stream must be over.
    frames = []
    if cut is None:
        try:
            frames = peer.h2_frames(timeout=5, until=lambda fs: any(
                (f[0] == H2_RST and f[2] == sid) or f[0] == H2_GOAWAY for f in fs))
        except (ConnectionError, ssl.SSLError, OSError):
            cut = peer.closed
    ended = cut is not None or any((f[0] == H2_RST and f[2] == sid) or f[0] == H2_GOAWAY
                                   for f in frames)
    sent = total
    peak = L.proc_status_kb(pid, "VmHWM")
    stops = [(f[0], f[2], f[3][:8]) for f in frames if f[0] in (H2_RST, H2_GOAWAY)]
    L.log("  flow control ignored: sent %d MiB in %.1f s, server: %r %r; RSS %d -> peak "
          "%d KiB" % (sent // MiB, send_s, cut, stops, base, peak))
    L.check(ended, "the server neither reset the stream nor ended the tunnel after %d MiB "
            "past the flow-control windows" % (sent // MiB))
    L.check(SANITIZED or peak - base < 64 * 1024, "server memory grew by %d KiB while a "
            "peer ignored flow control" % (peak - base))
    # The user's answer is cut promptly: EOF without the end of the chunked body.
    user.settimeout(10)
    got = b""
    eof = False
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 15:
            d = user.recv(1 << 20)
            if not d:
                eof = True
                break
            got += d
    except (ConnectionResetError, ssl.SSLError):
        eof = True
    except (socket.timeout, OSError):
        pass
    user.close()
    L.check(got.startswith(b"HTTP/1.1 200"), "the user's answer: %r" % (got[:100],))
    L.check(eof, "the user's answer was not cut within 15 s of the stream's reset "
            "(%d bytes received)" % len(got))
    L.check(not got.endswith(b"0\r\n\r\n"), "the user got a complete answer from a stream "
            "that broke flow control")
    good_ok("after a peer ignored flow control")
    peer.close(abrupt=True)


@t.test
def test_server_alive_at_end():
    L.check(S.alive(), "server died")
    L.check(GOOD["proc"].poll() is None, "the good agent died")
    good_ok("at the end")


if __name__ == "__main__":
    t.main()
