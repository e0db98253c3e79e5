#!/usr/bin/env python3
"""Tunnel v2 and the management proxy under load, with a fake upstream.

Two clusters, a and b, each with its own lxcm-agent whose upstream is
upstream_fake.py (marker "A" or "B"), behind one lxcm-server; a third
server with --proxy-header-timeout 2000 for the 504 check. Checked, each
with exact statuses: the agent's path allow-list; the manager's own
credentials are not forwarded; 32 requests in flight on one tunnel; 1 GiB
down and up with bounded memory (VmHWM of server and agent against their
idle VmRSS); a slow reader; the agent killed mid-transfer; the server
restarted under a running agent; the response-header timeout; that one
cluster's certificate cannot reach another cluster's tunnel; that the
tunnel endpoint wants an enrolled certificate (403 before any upgrade);
and that a removed cluster's tunnel is closed (last: it removes a).

A process that dies in one test fails that test and is restarted before
the next, so one crash does not fail the whole file.

No LXD needed. Memory numbers and timings are printed (grep "MEM"/"TIME").
"""

import hashlib
import os
import signal
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_tunnel_stream")

MiB = 1 << 20
GiB = 1 << 30
RSS_BUDGET_KB = 64 * 1024    # peak above idle, per process

S = None            # the server of clusters a and b
SANITIZED = False   # ASan build: memory budget not enforced
CL = {}             # name -> {"up": FakeUpstream, "dir": agent data dir, "proc": Popen, "log": path}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tpath(name, path):
    return "/1.0/remote-cluster/%s/tunnel%s" % (name, path)


def proxy(name, method, path, srv=None, **kw):
    return (srv or S).mgmt(method, tpath(name, path), **kw)


def cluster(name, srv=None):
    r = (srv or S).mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET /1.0/remote-cluster/" + name)
    return r.metadata


def tunnel(name, srv=None):
    return cluster(name, srv).get("tunnel")


def active_streams(name, srv=None):
    tn = tunnel(name, srv)
    return None if tn is None else tn["active_streams"]


def start_agent(name, srv=None):
    c = CL[name]
    c["proc"] = L.spawn_agent("run", "--data-dir", c["dir"], log_path=c["log"])
    L.wait_for(lambda: cluster(name, srv)["tunnel_registered"], timeout=30, interval=0.1,
               what="the tunnel of %s to come up (agent log: %s)" % (name, c["log"]))


def add_cluster(name, marker, srv=None):
    srv = srv or S
    up = U.FakeUpstream(marker).start()
    d = os.path.join(L.tmpdir("agent"), name)
    L.agent("join", srv.create_token(name), "--data-dir", d, "--upstream", up.url,
            check_rc=0, timeout=60)
    CL[name] = {"up": up, "dir": d, "log": d + ".log", "proc": None}
    start_agent(name, srv)


def agent_log(name):
    try:
        with open(CL[name]["log"]) as f:
            return f.read()[-3000:]
    except OSError:
        return "(no log)"


def echo_marker(name, srv=None, timeout=30):
    r = proxy(name, "GET", "/1.0/echo", srv=srv, timeout=timeout)
    return r.status, (r.metadata or {}).get("marker")


def open_get(port, path, token, timeout=60):
    """A raw TLS GET; returns (sock, status, headers, pending body bytes)."""
    s = L.tls_connect(port, timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n"
               % (path, port, token)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise L.TestFailure("connection closed before the response head of " + path)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return s, int(lines[0].split()[1]), headers, rest


def slow_read(s, got, n, rate):
    """Reads from s until n bytes (got already) at about rate bytes/s; returns the count."""
    t0 = time.monotonic() - got / rate
    while got < n:
        ahead = t0 + got / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        chunk = s.recv(min(64 * 1024, n - got))
        if not chunk:
            break
        got += len(chunk)
    return got


def sanitized_build():
    """Whether the binaries are built with AddressSanitizer (LXCM_SANITIZE=ON):
    its quarantine keeps freed memory, so RSS says nothing about our buffers."""
    try:
        with open(os.path.join(L.BUILD, "CMakeCache.txt")) as f:
            if "LXCM_SANITIZE:BOOL=ON" in f.read():
                return True
    except OSError:
        pass
    with open(L.binary("lxcm-server"), "rb") as f:
        return b"__asan_init" in f.read()


class Mem:
    """Idle VmRSS of the server and an agent, then their peak (VmHWM) since.
    The budget is not enforced for a sanitizer build (numbers still printed)."""

    def __init__(self, procs):
        self.procs = procs          # label -> pid
        self.idle = {k: L.proc_status_kb(p, "VmRSS") for k, p in procs.items()}
        self.reset = all([L.reset_peak_rss(p) for p in procs.values()])

    def peaks(self):
        return {k: L.proc_status_kb(p, "VmHWM") for k, p in self.procs.items()}

    def check(self, what):
        peaks = self.peaks()
        for k in self.procs:
            L.log("MEM %s %s: idle VmRSS %d KiB, peak VmHWM %d KiB, +%.1f MiB%s" % (
                what, k, self.idle[k], peaks[k], (peaks[k] - self.idle[k]) / 1024.0,
                "" if self.reset else " (VmHWM could not be reset: peak since start)"))
            if SANITIZED:
                continue
            L.check(peaks[k] - self.idle[k] < RSS_BUDGET_KB,
                    "%s: %s peak RSS %d KiB is %d KiB above its idle %d KiB (budget %d KiB)" % (
                        what, k, peaks[k], peaks[k] - self.idle[k], self.idle[k],
                        RSS_BUDGET_KB))


def mem_of(name):
    return Mem({"server": S.proc.pid, "agent " + name: CL[name]["proc"].pid})


def ensure_up(names=("a", "b")):
    """Before a test: the server and the agents run. One that died in an
    earlier test is restarted here (that test already failed for it), so
    one crash fails one test, not every test after it."""
    if not S.alive():
        L.log("NOTE the server had exited (%r); restarting it" % (S.proc and S.proc.returncode,))
        S.stop()
        S.start()
    for name in names:
        p = CL[name]["proc"]
        if p is None or p.poll() is not None:
            L.log("NOTE the agent of %s had exited (%r); restarting it; its log:\n%s" % (
                name, p and p.returncode, agent_log(name)[-1500:]))
            if p is not None:
                L.forget(p)
            start_agent(name)
        elif not cluster(name)["tunnel_registered"]:
            L.wait_for(lambda: cluster(name)["tunnel_registered"], timeout=40, interval=0.2,
                       what="the tunnel of %s to come back" % name)


def dead_processes(what, names=("a", "b")):
    """'' if the server and the agents are running, else what died and its log."""
    out = []
    if not S.alive():
        out.append("the server died during %s (exit %r); log:\n%s" % (
            what, S.proc and S.proc.poll(), S.log_tail(30)))
    for name in names:
        p = CL[name]["proc"]
        if p is None or p.poll() is not None:
            out.append("the agent of %s died during %s (exit %r); its log:\n%s" % (
                name, what, p and p.poll(), agent_log(name)[-2000:]))
    return "\n".join(out)


def test(fn):
    """t.test with ensure_up() before and a check that nothing died after."""
    def wrapped():
        ensure_up()
        try:
            fn()
        except Exception as e:
            dead = dead_processes(fn.__name__)
            if dead:
                raise L.TestFailure("%s\nand: %s" % (e, dead)) from e
            raise
        dead = dead_processes(fn.__name__)
        L.check(not dead, dead)
    wrapped.__name__ = fn.__name__
    return t.test(wrapped)


# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------

@t.setup
def setup():
    global S, SANITIZED
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    SANITIZED = sanitized_build()
    if SANITIZED:
        L.log("NOTE sanitizer build: the RSS budget of %d MiB is not enforced" % (
            RSS_BUDGET_KB // 1024))
    S = L.Server().start()
    add_cluster("a", "A")
    add_cluster("b", "B")


@test
def test_tunnels_registered():
    for name in ("a", "b"):
        c = cluster(name)
        L.eq(c["tunnel_registered"], True, name + " tunnel_registered")
        tn = c["tunnel"]
        L.check(isinstance(tn, dict), "%s tunnel object: %r" % (name, tn))
        L.eq(tn["protocol"], "v2", name + " tunnel.protocol")
        L.eq(tn["transport"], L.expected_transport(), name + " tunnel.transport")
        L.eq(tn["active_streams"], 0, name + " tunnel.active_streams when idle")
        since = L.parse_rfc3339(tn["connected_since"])
        L.check(time.time() - 120 < since <= time.time() + 5,
                "%s connected_since %r" % (name, tn["connected_since"]))
        L.check(isinstance(tn["replica"], str) and tn["replica"], "replica %r" % tn["replica"])
        L.check(isinstance(tn["rtt_ms"], int), "rtt_ms %r" % (tn["rtt_ms"],))
        st, marker = echo_marker(name)
        L.eq((st, marker), (200, name.upper()), "GET /1.0/echo through the tunnel of " + name)


@test
def test_agent_allow_list():
    up = CL["a"]["up"]
    before = up.stats()["hits"]
    for path in ("/forbidden", "/forbidden?x=1", "/1.0x", "/1.0/../forbidden",
                 "/1.0/%2e%2e/forbidden", "//1.0/echo", "/"):
        r = proxy("a", "GET", path)
        L.eq(r.status, 403, "GET %s through the proxy" % path)
        L.check_envelope_error(r.json, 403, "403 of " + path)
    r = proxy("a", "POST", "/forbidden", body=b"x")
    L.eq(r.status, 403, "POST /forbidden through the proxy")
    after = up.stats()["hits"]
    L.eq(after.get("/forbidden", 0), before.get("/forbidden", 0),
         "requests for /forbidden that reached the upstream")
    # /ui and /1.0 are allowed: they reach the upstream (which answers 404 for /ui).
    r = proxy("a", "GET", "/ui/index.html")
    L.eq(r.status, 404, "GET /ui/index.html (the fake's own 404)")
    L.eq(up.stats()["hits"].get("/ui/index.html", 0), 1, "/ui/index.html reached the upstream")
    r = proxy("a", "GET", "/1.0")
    L.eq(r.status, 200, "GET /1.0 through the proxy")
    L.eq(r.metadata["marker"], "A", "marker of GET /1.0")


@test
def test_path_rule_at_the_manager():
    # The path rule of every hop (src/net/http_hdr.c) also runs at the
    # manager, before any stream: dots in any percent-encoding, encoded
    # slashes, backslashes and NULs, and empty segments get the agent's 403
    # even under an allowed prefix (the agent used to let %5c, %00 and "//"
    # through there), and never reach the upstream.
    up = CL["a"]["up"]

    def echo_hits():  # heartbeats hit other paths meanwhile
        return {k: v for k, v in up.stats()["hits"].items()
                if "echo" in k or k.endswith("/x") or "//" in k}

    before = echo_hits()
    for path in ("/1.0/%2e%2e/x", "/1.0/.%2E/x", "/1.0/%2E./x", "/1.0/echo%2e", "/1.0/echo%2fx",
                 "/1.0/echo%5cx", "/1.0/echo%00", "/1.0//echo", "/1.0/./echo", "/1.0/echo/."):
        r = proxy("a", "GET", path)
        L.eq(r.status, 403, "GET %s through the proxy" % path)
        L.check_envelope_error(r.json, 403, "403 of " + path)
    L.eq(echo_hits(), before, "refused paths that reached the upstream")
    # The query is not the path: dots and slashes there go through untouched.
    r = proxy("a", "GET", "/1.0/echo?path=/etc/../hosts&x=%2e%2e%2f")
    L.eq(r.status, 200, "GET /1.0/echo with dots in the query")
    L.eq(r.metadata["query"], "path=/etc/../hosts&x=%2e%2e%2f", "the query at the upstream")


@test
def test_request_forwarding():
    # Method, path, query and body arrive unchanged; the manager's own
    # credentials (its Authorization header) do not; X-Forwarded-For is the
    # manager's view of the client, not what the client claims.
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        body = None if method == "GET" else ("body of %s \u00e9" % method).encode()
        r = proxy("a", method, "/1.0/echo?x=1&y=a%20b&x=2", body=body, headers={
            "X-Custom": "kept", "X-Forwarded-For": "203.0.113.9"})
        L.eq(r.status, 200, method + " /1.0/echo")
        m = r.metadata
        L.eq((m["method"], m["path"], m["query"]), (method, "/1.0/echo", "x=1&y=a%20b&x=2"),
             method + " method/path/query at the upstream")
        L.eq(m["body_length"], len(body or b""), method + " body length at the upstream")
        if body:
            L.eq(m["body_sha256"], hashlib.sha256(body).hexdigest(), method + " body")
        hdrs = {}
        for k, v in m["headers"]:
            hdrs.setdefault(k.lower(), []).append(v)
        L.eq(hdrs.get("x-custom"), ["kept"], "X-Custom at the upstream")
        L.check("authorization" not in hdrs, "the manager's Authorization header reached the "
                "upstream: %r" % (hdrs.get("authorization"),))
        L.check(S.token not in r.raw.decode("utf-8", "replace"),
                "the admin token reached the upstream")
        L.check("203.0.113.9" not in hdrs.get("x-forwarded-for", [""])[0],
                "a client's X-Forwarded-For was trusted: %r" % hdrs.get("x-forwarded-for"))
        L.eq(hdrs.get("x-forwarded-for"), ["127.0.0.1"], "X-Forwarded-For at the upstream")
        L.check(hdrs.get("forwarded") and "127.0.0.1" in hdrs["forwarded"][0],
                "Forwarded at the upstream: %r" % hdrs.get("forwarded"))


@test
def test_manager_cookies_not_forwarded():
    # The manager's own cookies (lxcm_*, see proxy.c) are withheld wherever
    # they sit in the Cookie header; the cluster's own (LXD UI) cookies go on.
    problems = []
    for cookie in ("lxcm_session=secret-cookie; ui=keep", "ui=keep; lxcm_session=secret-cookie",
                   "ui=keep;lxcm_session=secret-cookie"):
        r = proxy("a", "GET", "/1.0/echo", headers={"Cookie": cookie})
        L.eq(r.status, 200, "GET /1.0/echo with Cookie: " + cookie)
        got = "; ".join(v for k, v in r.metadata["headers"] if k.lower() == "cookie")
        if "secret-cookie" in got or "lxcm_" in got:
            problems.append("Cookie %r: the manager's cookie reached the upstream as %r" % (
                cookie, got))
        if "ui=keep" not in got:
            problems.append("Cookie %r: the cluster's own cookie was dropped (upstream got %r)"
                            % (cookie, got))
    L.check(not problems, "\n".join(problems))


@test
def test_32_in_flight():
    up = CL["a"]["up"]
    up.stats(reset=True)
    results = {}
    t0 = time.monotonic()

    def call(i, secs):
        try:
            r = proxy("a", "GET", "/1.0/hold?s=%s" % secs, timeout=60)
            results[i] = (r.status, (r.metadata or {}).get("marker"), time.monotonic() - t0)
        except Exception as e:   # reported below
            results[i] = (repr(e), None, time.monotonic() - t0)

    long_th = threading.Thread(target=call, args=("long", 5))
    long_th.start()
    L.wait_for(lambda: up.stats()["holds"] >= 1, timeout=10, interval=0.02,
               what="the 5 s hold to reach the upstream")
    shorts = [threading.Thread(target=call, args=(i, 2)) for i in range(31)]
    for th in shorts:
        th.start()
    samples = []
    while long_th.is_alive() and time.monotonic() - t0 < 60:
        try:
            samples.append(active_streams("a"))
        except Exception:
            pass
        time.sleep(0.2)
    long_th.join(60)
    for th in shorts:
        th.join(60)
    L.eq(len(results), 32, "finished requests")
    bad = {k: v for k, v in results.items() if v[:2] != (200, "A")}
    L.check(not bad, "requests not answered 200 by A: %r" % (bad,))
    long_done = results["long"][2]
    short_done = sorted(v[2] for k, v in results.items() if k != "long")
    L.log("TIME 32 in flight: 31 short (2 s) holds done at %.2f..%.2f s, the 5 s hold at %.2f s; "
          "upstream saw %d at once; active_streams samples max %s" % (
              short_done[0], short_done[-1], long_done, up.stats()["max_holds"],
              max([s for s in samples if s is not None] or [None])))
    L.check(long_done >= 4.9, "the 5 s hold finished after %.2f s" % long_done)
    L.check(short_done[-1] < long_done,
            "a 2 s hold finished at %.2f s, after the 5 s hold (%.2f s): head-of-line blocking"
            % (short_done[-1], long_done))
    L.eq(up.stats()["max_holds"], 32, "requests in flight at the upstream at once")
    L.check(max([s for s in samples if s is not None] or [0]) >= 32,
            "tunnel.active_streams never showed 32 streams: %r" % (samples,))
    L.wait_for(lambda: active_streams("a") == 0, timeout=15,
               what="active_streams of a back to 0")


@test
def test_download_1gib():
    mem = mem_of("a")
    t0 = time.monotonic()
    s, status, headers, pending = open_get(S.mgmt_port, tpath("a", "/1.0/bytes?n=%d" % GiB),
                                           S.token)
    try:
        L.eq(status, 200, "GET /1.0/bytes?n=1GiB")
        L.eq(headers.get("content-length"), str(GiB), "Content-Length of the download")
        h = hashlib.sha256(pending)
        got = len(pending)
        buf = bytearray(MiB)
        while got < GiB:
            n = s.recv_into(buf)
            if not n:
                break
            h.update(memoryview(buf)[:n])
            got += n
    finally:
        s.close()
    secs = time.monotonic() - t0
    L.log("TIME 1 GiB download: %.1f s (%.0f MiB/s)" % (secs, GiB / MiB / secs))
    L.eq(got, GiB, "bytes downloaded")
    L.eq(h.hexdigest(), U.gen_sha256(GiB), "SHA-256 of the download")
    mem.check("1 GiB download")


@test
def test_upload_1gib():
    mem = mem_of("a")
    t0 = time.monotonic()
    s = L.tls_connect(S.mgmt_port, timeout=60)
    try:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % (
                       tpath("a", "/1.0/upload"), S.mgmt_port, S.token, GiB)).encode())
        for c in U.gen_chunks(GiB):
            s.sendall(c)
        r = L.read_http_response(s, timeout=120)
    finally:
        s.close()
    secs = time.monotonic() - t0
    L.log("TIME 1 GiB upload: %.1f s (%.0f MiB/s)" % (secs, GiB / MiB / secs))
    L.eq(r.status, 200, "PUT /1.0/upload of 1 GiB: %r" % (r,))
    L.eq(r.metadata["length"], GiB, "length the upstream received")
    L.eq(r.metadata["sha256"], U.gen_sha256(GiB), "SHA-256 the upstream received")
    mem.check("1 GiB upload")


@test
def test_upload_chunked():
    # A body without Content-Length (chunked) streams through too.
    n = 8 * MiB + 12345
    s = L.tls_connect(S.mgmt_port, timeout=60)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % (
                       tpath("a", "/1.0/upload"), S.mgmt_port, S.token)).encode())
        for c in U.gen_chunks(n):
            s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        r = L.read_http_response(s, timeout=60)
    finally:
        s.close()
    L.eq(r.status, 200, "chunked POST /1.0/upload: %r" % (r,))
    L.eq((r.metadata["length"], r.metadata["sha256"]), (n, U.gen_sha256(n)),
         "length and SHA-256 the upstream received")


@test
def test_slow_reader():
    # A reader at ~1 MiB/s of a 1 GiB response: memory stays bounded, other
    # requests on the same tunnel stay fast (small ones, and a 256 MiB
    # download at full speed), and closing cancels the upstream request.
    up = CL["a"]["up"]
    up.stats(reset=True)
    mem = mem_of("a")
    target = 8 * MiB
    s, status, headers, pending = open_get(S.mgmt_port, tpath("a", "/1.0/bytes?n=%d" % GiB),
                                           S.token)
    lat = []
    fast_n = 256 * MiB
    fast = {}

    def fast_download():
        t1 = time.monotonic()
        try:
            fs, st, _, rest = open_get(S.mgmt_port, tpath("a", "/1.0/bytes?n=%d" % fast_n),
                                       S.token)
            try:
                h, n, buf = hashlib.sha256(rest), len(rest), bytearray(MiB)
                while st == 200 and n < fast_n:
                    k = fs.recv_into(buf)
                    if not k:
                        break
                    h.update(memoryview(buf)[:k])
                    n += k
            finally:
                fs.close()
            fast.update(status=st, n=n, sha=h.hexdigest(), secs=time.monotonic() - t1)
        except Exception as e:   # reported below
            fast.update(error=repr(e), secs=time.monotonic() - t1)
    fast_th = threading.Thread(target=fast_download)
    try:
        L.eq(status, 200, "GET /1.0/bytes?n=1GiB (slow reader)")
        fast_th.start()
        got = len(pending)
        t0 = time.monotonic()
        next_probe = t0 + 1.0
        while got < target:
            ahead = t0 + got / MiB - time.monotonic()
            if ahead > 0:
                time.sleep(min(ahead, 0.25))
            if time.monotonic() >= next_probe:
                p0 = time.monotonic()
                st, marker = echo_marker("a", timeout=30)
                lat.append(time.monotonic() - p0)
                L.eq((st, marker), (200, "A"), "a small request during the slow read")
                next_probe = time.monotonic() + 1.0
                continue
            chunk = s.recv(64 * 1024)
            if not chunk:
                raise L.TestFailure("the slow download ended after %d bytes" % got)
            got += len(chunk)
        secs = time.monotonic() - t0
        fast_th.join(120)
        sent = up.stats()["bytes_sent"] - fast.get("n", 0)
        L.log("TIME slow reader: %d MiB in %.1f s; upstream had written %.1f MiB for it; "
              "small requests meanwhile took %s s; a 256 MiB download meanwhile %.1f s" % (
                  got // MiB, secs, sent / MiB, ", ".join("%.3f" % x for x in lat),
                  fast.get("secs", -1)))
        L.check("error" not in fast, "the 256 MiB download beside the slow reader: %s" % (
            fast.get("error"),))
        L.eq((fast["status"], fast["n"]), (200, fast_n), "the 256 MiB download beside it")
        L.eq(fast["sha"], U.gen_sha256(fast_n), "SHA-256 of the 256 MiB download")
        L.check(fast["secs"] < 60, "the 256 MiB download beside the slow reader took %.1f s" %
                fast["secs"])
        L.check(lat, "no small request was made during the slow read")
        L.check(max(lat) < 5.0, "a small request took %.1f s during the slow read" % max(lat))
        L.check(sent < 256 * MiB, "the upstream wrote %d MiB for a reader of %d MiB: "
                "no backpressure" % (sent // MiB, got // MiB))
        mem.check("slow reader")
    finally:
        s.close()
        if fast_th.is_alive():
            fast_th.join(120)
    # Going away cancels the stream, and the agent aborts its upstream request.
    L.wait_for(lambda: active_streams("a") == 0, timeout=15,
               what="active_streams of a back to 0 after the slow reader left")
    L.wait_for(lambda: up.stats()["active"]["bytes"] == 0, timeout=15,
               what="the upstream's /1.0/bytes request to be aborted")
    L.eq(up.stats()["aborted"]["bytes"], 1, "upstream /1.0/bytes responses cut short")
    L.eq(echo_marker("a"), (200, "A"), "GET /1.0/echo after the slow reader")


@test
def test_upload_user_goes_away():
    # The user drops an upload half way: the stream is cancelled and the
    # agent aborts its upstream request (the upstream sees the body cut).
    up = CL["a"]["up"]
    up.stats(reset=True)
    s = L.tls_connect(S.mgmt_port, timeout=60)
    try:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: %d\r\n\r\n" % (
                       tpath("a", "/1.0/upload"), S.mgmt_port, S.token, GiB)).encode())
        for k, c in enumerate(U.gen_chunks(GiB)):
            if k == 32:
                break
            s.sendall(c)
        L.wait_for(lambda: up.stats()["active"]["upload"] == 1, timeout=15,
                   what="the upload to reach the upstream")
    finally:
        s.close()
    L.wait_for(lambda: up.stats()["active"]["upload"] == 0, timeout=15,
               what="the upstream's upload request to be aborted after the user left")
    L.eq(up.stats()["aborted"]["upload"], 1, "uploads the upstream saw cut short")
    L.wait_for(lambda: active_streams("a") == 0, timeout=15,
               what="active_streams of a back to 0 after the user left")
    L.eq(echo_marker("a"), (200, "A"), "GET /1.0/echo after the dropped upload")


@test
def test_upstream_down_502():
    # The agent cannot reach its upstream: 502 from the agent, and the
    # tunnel itself stays up; once the upstream is back, 200 again.
    up = CL["b"]["up"]
    up.stop()
    try:
        for method, path in (("GET", "/1.0/echo"), ("PUT", "/1.0/upload")):
            r = proxy("b", method, path, body=None if method == "GET" else b"x" * 1000)
            L.eq(r.status, 502, "%s %s with the upstream down" % (method, path))
            L.check_envelope_error(r.json, 502)
        L.eq(cluster("b")["tunnel_registered"], True, "tunnel of b with its upstream down")
    finally:
        up.start()
    L.eq(echo_marker("b"), (200, "B"), "GET /1.0/echo with the upstream back")


@test
def test_agent_killed_mid_transfer():
    p = CL["a"]["proc"]
    s, status, headers, pending = open_get(S.mgmt_port, tpath("a", "/1.0/bytes?n=%d" % GiB),
                                           S.token, timeout=30)
    got = len(pending)
    t_kill = None
    err = None
    try:
        L.eq(status, 200, "GET /1.0/bytes?n=1GiB")
        s.settimeout(30)
        while got < GiB:
            if t_kill is None and got >= 64 * MiB:
                p.send_signal(signal.SIGKILL)
                t_kill = time.monotonic()
            try:
                chunk = s.recv(MiB)
            except (OSError, ssl.SSLError) as e:
                err = e
                break
            if not chunk:
                err = "EOF"
                break
            got += len(chunk)
    finally:
        s.close()
        p.wait(timeout=10)
        L.forget(p)
    L.check(t_kill is not None, "the download finished before the agent could be killed")
    secs = time.monotonic() - t_kill
    L.log("TIME agent killed after %d MiB: the user's download ended after %d MiB (%s), "
          "%.2f s after the kill" % (64, got // MiB, err, secs))
    L.check(got < GiB, "the whole 1 GiB arrived although the agent was killed")
    L.check(not isinstance(err, socket.timeout),
            "the download hung until the socket timeout after the agent died")
    L.check(secs < 10, "the user's download ended %.1f s after the agent died" % secs)
    L.wait_for(lambda: not cluster("a")["tunnel_registered"], timeout=10, interval=0.1,
               what="the server to drop the tunnel of the killed agent")
    L.eq(cluster("a")["tunnel"], None, "tunnel object after the agent died")
    r = proxy("a", "GET", "/1.0/echo")
    L.eq(r.status, 503, "proxy to a without its agent")
    L.check_envelope_error(r.json, 503)
    start_agent("a")
    L.eq(echo_marker("a"), (200, "A"), "GET /1.0/echo after the agent came back")


@test
def test_server_restart_agents_reconnect():
    L.eq(S.stop(), 0, "server exit status after SIGTERM")
    t0 = time.monotonic()
    S.start()
    took = {}
    for name in ("a", "b"):
        L.wait_for(lambda: echo_marker(name, timeout=10) == (200, name.upper()), timeout=40,
                   interval=0.3, what="the agent of %s to reconnect (log:\n%s)" % (
                       name, agent_log(name)))
        took[name] = time.monotonic() - t0
        L.check(CL[name]["proc"].poll() is None, "the agent of %s exited" % name)
        c = cluster(name)
        L.eq((c["tunnel_registered"], c["tunnel"]["protocol"]), (True, "v2"),
             name + " tunnel after the restart")
    L.log("TIME server restarted: proxy to a works again after %.1f s, to b after %.1f s" % (
        took["a"], took["b"]))


@test
def test_response_header_timeout():
    s2 = L.Server("--proxy-header-timeout", "2000").start()
    add_cluster("c", "C", srv=s2)
    up = CL["c"]["up"]
    t0 = time.monotonic()
    r = proxy("c", "GET", "/1.0/nohead", srv=s2, timeout=60)
    secs = time.monotonic() - t0
    L.log("TIME /1.0/nohead with --proxy-header-timeout 2000: %d after %.2f s" % (r.status, secs))
    L.eq(r.status, 504, "GET /1.0/nohead")
    L.check_envelope_error(r.json, 504)
    L.check(1.5 <= secs < 15, "504 after %.2f s with a 2 s header timeout" % secs)
    L.wait_for(lambda: up.stats()["closed"]["nohead"] >= 1, timeout=15,
               what="the agent to abort its upstream request after the 504")
    L.wait_for(lambda: active_streams("c", s2) == 0, timeout=15, what="active_streams 0")
    # The timeout is for the head only: a slow answer within it and a body
    # that takes longer than it both go through.
    r = proxy("c", "GET", "/1.0/hold?s=1", srv=s2)
    L.eq(r.status, 200, "GET /1.0/hold?s=1 with a 2 s header timeout")
    n = 4 * MiB
    s, status, headers, pending = open_get(s2.mgmt_port, tpath("c", "/1.0/bytes?n=%d" % n),
                                           s2.token)
    try:
        L.eq(status, 200, "GET /1.0/bytes")
        t0 = time.monotonic()
        got = slow_read(s, len(pending), n, MiB)
        L.check(time.monotonic() - t0 > 2.5, "the slow body read was too fast to matter")
    finally:
        s.close()
    L.eq(got, n, "a body read at 1 MiB/s, longer than the header timeout")
    # An upload that keeps moving for longer than the timeout is not cut:
    # the wait for the answer restarts with every chunk.
    n = 3 * MiB
    s = L.tls_connect(s2.mgmt_port, timeout=30)
    try:
        s.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: %d\r\n\r\n" % (tpath("c", "/1.0/upload"), s2.token, n)
                   ).encode())
        t0 = time.monotonic()
        chunk = b"u" * (256 * 1024)
        for _ in range(n // len(chunk)):
            s.sendall(chunk)
            time.sleep(0.3)   # ~0.85 MiB/s: about 3.6 s in all
        L.check(time.monotonic() - t0 > 2.5, "the slow upload was too fast to matter")
        resp = L.read_http_response(s, timeout=30)
    finally:
        s.close()
    L.eq(resp.status, 200, "a slow upload longer than the header timeout: %r" % (resp,))
    CL["c"]["proc"].terminate()
    s2.stop()


@test
def test_response_body_idle_timeout():
    # A cluster that stalls in the middle of a response body (here after
    # 1000 of 1 MiB announced bytes) is cut after --proxy-idle-timeout, even
    # though nobody reads the user's socket meanwhile; a body that keeps
    # moving, even slowly and for longer than the timeout, is not cut.
    s3 = L.Server("--proxy-idle-timeout", "1500").start()
    add_cluster("d", "D", srv=s3)
    up = CL["d"]["up"]
    try:
        s, status, headers, pending = open_get(s3.mgmt_port, tpath("d", "/1.0/stall?n=1000"),
                                               s3.token)
        try:
            L.eq(status, 200, "GET /1.0/stall")
            t0 = time.monotonic()
            got, eof = len(pending), False
            s.settimeout(20)
            while True:
                try:
                    chunk = s.recv(65536)
                except (socket.timeout, TimeoutError):
                    break
                except OSError:
                    eof = True
                    break
                if not chunk:
                    eof = True
                    break
                got += len(chunk)
            secs = time.monotonic() - t0
        finally:
            s.close()
        L.log("TIME a body stalled after %d bytes: cut after %.2f s" % (got, secs))
        L.check(eof, "the stalled response was not cut within 20 s")
        L.eq(got, 1000, "bytes before the stall")
        L.check(1.0 <= secs < 12, "cut after %.2f s with a 1.5 s idle timeout" % secs)
        L.wait_for(lambda: up.stats()["closed"]["stall"] >= 1, timeout=15,
                   what="the agent to abort its upstream request after the cut")
        L.wait_for(lambda: active_streams("d", s3) == 0, timeout=15, what="active_streams 0")
        n = 3 * MiB
        s, status, headers, pending = open_get(s3.mgmt_port, tpath("d", "/1.0/bytes?n=%d" % n),
                                               s3.token)
        try:
            L.eq(status, 200, "GET /1.0/bytes")
            t0 = time.monotonic()
            got = slow_read(s, len(pending), n, MiB)
            L.check(time.monotonic() - t0 > 2.5, "the slow body read was too fast to matter")
        finally:
            s.close()
        L.eq(got, n, "a body read at 1 MiB/s, longer than the idle timeout")
    finally:
        CL["d"]["proc"].terminate()
        s3.stop()


@test
def test_half_closed_websocket_fin_timeout():
    # End to end over TLS: a WebSocket with both sides open outlives
    # --proxy-fin-timeout; the user's half-close (close_notify) then ends
    # the pass-through even though the cluster's LXD ignores its EOF and
    # stays quiet (the agent closes its LXD socket at the stream's end), and
    # the stream is gone on the manager. The manager's own fin timeout, for
    # a cluster whose agent never ends the stream (issue 17,
    # proxy-stream-never-ends.bin), is tested in tests/unit/test_stream_pipe.c
    # and by fuzz_proxy's seed of it.
    s4 = L.Server("--proxy-fin-timeout", "700").start()
    add_cluster("e", "E", srv=s4)
    up = CL["e"]["up"]
    try:
        s = L.tls_connect(s4.mgmt_port)
        try:
            resp, ws = L.ws_upgrade(s, tpath("e", "/1.0/wsquiet"), headers={
                "Authorization": "Bearer " + s4.token})
            L.eq(resp.status, 101, "WebSocket upgrade through the tunnel")
            op, payload = ws.recv_message(15)
            L.eq((op, payload), (1, b"hello"), "the cluster's first message")
            time.sleep(2.1)  # three fin timeouts, both sides open: nothing happens
            s.settimeout(0.2)
            try:
                early = s.recv(1)
            except (socket.timeout, TimeoutError):
                early = None
            L.eq(early, None, "an open WebSocket with both sides open was touched")
            L.eq(active_streams("e", s4), 1, "active_streams with the WebSocket open")
            # The user's half-close over TLS: close_notify, then read on.
            # (unwrap waits for the server's close_notify, which comes only
            # when the server closes: that wait is cut short on purpose.)
            s.settimeout(0.3)
            try:
                s.unwrap()
            except (OSError, ssl.SSLError):
                pass
            raw = socket.socket(fileno=os.dup(s.fileno()))
            raw.settimeout(20)
            eof = False
            try:
                while raw.recv(65536):
                    pass
                eof = True
            except (socket.timeout, TimeoutError):
                pass
            except OSError:
                eof = True
            finally:
                raw.close()
            L.check(eof, "the half-closed WebSocket was not closed by the server")
        finally:
            s.close()
        L.wait_for(lambda: up.stats()["eof"]["wsquiet"] >= 1, timeout=15,
                   what="the agent to pass the user's half-close on to the cluster")
        L.wait_for(lambda: active_streams("e", s4) == 0, timeout=15,
                   what="the stream of the half-closed WebSocket to end")
        L.eq(echo_marker("e", srv=s4), (200, "E"), "the tunnel still works")
    finally:
        CL["e"]["proc"].terminate()
        s4.stop()


@test
def test_cluster_cert_cannot_reach_other_cluster():
    certA = L.agent_cert(CL["a"]["dir"])
    # The management listener wants an API token, whatever certificate comes.
    for path in (tpath("b", "/1.0/echo"), tpath("a", "/1.0/echo")):
        r = S.mgmt("GET", path, token=None, cert=certA)
        L.eq(r.status, 401, "GET %s with a's certificate and no token" % path)
        L.check_envelope_error(r.json, 401)
    # The connector has no proxy route at all.
    r = S.conn("GET", tpath("b", "/1.0/echo"), cert=certA)
    L.eq(r.status, 404, "proxy path on the connector with a's certificate")
    b_hits = CL["b"]["up"].stats()["hits"].get("/1.0/echo", 0)
    b_since = tunnel("b")["connected_since"]
    a_before = cluster("a")["tunnel"]
    # a's certificate on the tunnel endpoint opens a tunnel for a, never b.
    s = L.tls_connect(S.conn_port, cert=certA)
    try:
        resp, ws = L.ws_upgrade(s, "/1.0/remote-cluster/ws",
                                headers={"Sec-WebSocket-Protocol": "lxcm-tunnel.v2"})
        L.eq(resp.status, 101, "tunnel upgrade with a's certificate")
        L.eq(resp.headers.get("sec-websocket-protocol"), "lxcm-tunnel.v2", "subprotocol")
        op, payload = ws.recv_message(15)
        L.eq(op, 2, "first message of the tunnel (binary)")
        L.check(payload.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
                "the server did not start HTTP/2 on the tunnel: %r" % payload[:40])
    finally:
        s.close()
    L.check(a_before is not None, "a had no tunnel before")
    tb = tunnel("b")
    L.check(tb is not None and tb["connected_since"] == b_since,
            "b's tunnel changed when a's certificate opened a tunnel: %r (was since %s)" % (
                tb, b_since))
    L.eq(echo_marker("b"), (200, "B"), "GET /1.0/echo of b after a's extra tunnel")
    L.eq(CL["b"]["up"].stats()["hits"].get("/1.0/echo", 0), b_hits + 1,
         "b's upstream got exactly the one echo")
    # a's real agent takes its tunnel back by itself.
    L.wait_for(lambda: echo_marker("a", timeout=10) == (200, "A"), timeout=40, interval=0.3,
               what="a's agent to take its tunnel back")


@t.test
def test_tunnel_upgrade_needs_enrolled_cert():
    ensure_up()
    hdr = {"Sec-WebSocket-Protocol": "lxcm-tunnel.v2"}
    for what, cert in (("no client certificate", None),
                       ("an unknown certificate", L.Cert("stranger"))):
        s = L.tls_connect(S.conn_port, cert=cert)
        try:
            resp, ws = L.ws_upgrade(s, "/1.0/remote-cluster/ws", headers=hdr)
        finally:
            s.close()
        L.check(ws is None, "tunnel upgrade with %s was accepted (101)" % what)
        L.eq(resp.status, 403, "tunnel upgrade with " + what)
        L.check("upgrade" not in resp.headers, "the 403 carries an Upgrade header")
        L.check_envelope_error(resp.json, 403, "403 with " + what)


@t.test
def test_removed_cluster():
    # Runs last: removes cluster a. Its certificate is then unknown to the
    # tunnel endpoint, and its live tunnel must not stay usable.
    ensure_up()
    hdr = {"Sec-WebSocket-Protocol": "lxcm-tunnel.v2"}
    certA = L.agent_cert(CL["a"]["dir"])
    L.eq(S.mgmt("DELETE", "/1.0/remote-cluster/a").status, 200, "DELETE cluster a")
    s = L.tls_connect(S.conn_port, cert=certA)
    try:
        resp, ws = L.ws_upgrade(s, "/1.0/remote-cluster/ws", headers=hdr)
    finally:
        s.close()
    L.check(ws is None, "tunnel upgrade with a removed cluster's certificate was accepted")
    L.eq(resp.status, 403, "tunnel upgrade with a removed cluster's certificate")
    # The removed cluster's tunnel must not stay usable: the proxy answers 404.
    seen = []

    def gone():
        seen.append(proxy("a", "GET", "/1.0/echo").status)
        return seen[-1] == 404
    try:
        L.wait_for(gone, timeout=15, interval=0.5,
                   what="the proxy to a removed cluster to answer 404")
    finally:
        L.log("NOTE statuses of the proxy to a after DELETE, every 0.5 s: %s" % (
            sorted(set(seen)),))
    L.eq(echo_marker("b"), (200, "B"), "b still works")


if __name__ == "__main__":
    t.main()
