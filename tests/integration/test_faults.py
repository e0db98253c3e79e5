#!/usr/bin/env python3
"""Fault injection on lxcm-server and lxcm-agent (issue 6).

- The upstream (upstream_fake.py standing in for LXD) stopped, killed in
  the middle of a download, and restarted on the same socket: the agent
  answers 502 meanwhile and serves again afterwards.
- The agent SIGKILLed in the middle of a large download: the user's
  request ends with an error promptly, the tunnel leaves the cluster
  object, a restarted agent reconnects and serves.
- The server SIGKILLed and restarted on the same data directory and ports:
  no enrolled cluster, join token or audit row is lost (rows counted in
  DATA/lxcm.db with Python's sqlite3 module), and the agents come back by
  themselves.
- The database's file system full (a small tmpfs holding only the
  database, as root): writes answer 503 with the LXD error envelope, reads
  still work, nothing crashes, and everything works again once there is
  space; the database passes PRAGMA integrity_check afterwards.
- 1,000 tunnel open/close cycles (hand-rolled lxcm-tunnel.v2 WebSocket
  clients with enrolled certificates) and 1,000 proxied streams through a
  real agent (echo, downloads, uploads, downloads abandoned midway): the
  server's open file descriptors and VmRSS come back near their level
  before (after a short warm-up).

Server and agent only (no LXD). Python standard library only.
"""

import hashlib
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_faults")

F = None            # the server of the first tests
UP = None           # the fake upstream of cluster k
AGENTS = {}         # name -> Agent
SANITIZED = False   # ASan build: RSS bounds are not checked (L.sanitized_build)
MiB = 1 << 20
TOKEN_PATH = "/1.0/remote-cluster-join-token"


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def expect(r, code, what):
    if r.status != code:
        raise L.TestFailure("%s: HTTP %d, want %d: %r" % (what, r.status, code, r))
    L.check_envelope_error(r.json, code, what)


class Agent:
    """An lxcm-agent joined to srv as name, forwarding to upstream."""

    def __init__(self, srv, name, upstream):
        self.name = name
        self.dir = os.path.join(L.tmpdir("agent"), name)
        self.log = self.dir + ".log"
        self.proc = None
        L.agent("join", srv.create_token(name), "--data-dir", self.dir, "--upstream",
                upstream.url, check_rc=0, timeout=60)

    def start(self):
        self.proc = L.spawn_agent("run", "--data-dir", self.dir, log_path=self.log)
        return self

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=15)
        L.forget(self.proc)
        self.proc = None

    def stop(self):
        if self.proc is not None:
            L._stop_proc(self.proc)
            L.forget(self.proc)
            self.proc = None

    def log_tail(self, n=15):
        try:
            with open(self.log, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def cluster_tunnel(srv, name):
    r = srv.mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET cluster " + name)
    return r.metadata.get("tunnel") if r.metadata.get("tunnel_registered") else None


def wait_tunnel(srv, name, timeout=30):
    return L.wait_for(lambda: cluster_tunnel(srv, name), timeout=timeout, interval=0.2,
                      what="the tunnel of " + name)


def proxied(srv, name, path, method="GET", **kw):
    return srv.mgmt(method, "/1.0/remote-cluster/%s/tunnel%s" % (name, path), **kw)


def echo_ok(srv, name, marker, what):
    r = proxied(srv, name, "/1.0/echo?what=" + what.replace(" ", "-"), timeout=30)
    L.eq(r.status, 200, "%s: proxied echo to %s: %r" % (what, name, r))
    L.eq(r.metadata.get("marker"), marker, "%s: marker of %s's upstream" % (what, name))
    return r


def open_download(srv, name, n):
    """Starts GET /1.0/bytes?n=n through the tunnel on a raw socket; returns
    (socket, status, headers, body bytes already read)."""
    s = L.tls_connect(srv.mgmt_port, timeout=30)
    s.sendall(("GET /1.0/remote-cluster/%s/tunnel/1.0/bytes?n=%d HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (name, n, srv.token)).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise L.TestFailure("download closed before its head: %r" % data[:300])
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return s, int(lines[0].split()[1]), headers, len(rest)


def read_until(s, have, want, timeout=30):
    """Reads until have >= want bytes in total; returns the new total."""
    s.settimeout(timeout)
    while have < want:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise L.TestFailure("download ended early at %d bytes" % have)
        have += len(chunk)
    return have


def read_to_end(s, have, timeout):
    """Reads until EOF or error: (total bytes, 'eof'|'reset'|'timeout', seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    how = "timeout"
    try:
        while time.monotonic() < deadline:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(1 << 20)
            if not chunk:
                how = "eof"
                break
            have += len(chunk)
    except socket.timeout:
        how = "timeout"
    except (ConnectionResetError, ssl.SSLError, OSError):
        how = "reset"
    return have, how, time.monotonic() - t0


def db_rows(path, sql, args=()):
    """Rows of a query on an SQLite database, read-only."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_check(path):
    con = sqlite3.connect(path, timeout=30)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def sigkill_server(srv):
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=15)
    L.forget(srv.proc)
    srv.proc = None


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    return L.proc_status_kb(pid, "VmRSS")


# ---------------------------------------------------------------------------
# A minimal lxcm-tunnel.v2 WebSocket client (the agent's side)
# ---------------------------------------------------------------------------

class TunnelPeer(L.WebSocket):
    """lxcmtest's WebSocket client, upgraded to the connector's tunnel route."""

    def __init__(self, port, cert, timeout=15):
        sock = L.tls_connect(port, cert=cert, timeout=timeout)
        r, ws = L.ws_upgrade(sock, "/1.0/remote-cluster/ws", timeout=timeout,
                             headers={"Sec-WebSocket-Protocol": "lxcm-tunnel.v2"})
        if ws is None:
            raise L.TestFailure("tunnel upgrade answered %d" % r.status)
        L.WebSocket.__init__(self, sock, ws.buf)

    def recv_frame(self, timeout=15):
        """(opcode, payload) of the next frame."""
        _, op, payload = L.WebSocket.recv_frame(self, timeout)
        return op, payload

    def send_frame(self, opcode, payload=b""):
        self.send(opcode, payload)

    def close(self, abrupt=False):
        if not abrupt:
            L.WebSocket.close(self)
            return
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

@t.setup
def setup():
    global F, UP, SANITIZED
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    SANITIZED = L.sanitized_build()
    if SANITIZED:
        L.log("NOTE sanitizer build: RSS bounds are not enforced (fd counts are)")
    F = L.Server("--join-rate", "1000", "--join-burst", "1000").start()
    UP = U.FakeUpstream("k").start()
    AGENTS["k"] = Agent(F, "k", UP).start()
    wait_tunnel(F, "k")
    echo_ok(F, "k", "k", "setup")


# ---------------------------------------------------------------------------
# Upstream stopped and restarted
# ---------------------------------------------------------------------------

@t.test
def test_upstream_stopped_and_restarted():
    echo_ok(F, "k", "k", "before stopping the upstream")
    UP.stop()
    for i in range(3):
        r = proxied(F, "k", "/1.0/echo", timeout=30)
        expect(r, 502, "proxied request while the upstream is down (%d)" % i)
    L.check(cluster_tunnel(F, "k") is not None, "the tunnel went with the upstream")
    UP.start()
    L.wait_for(lambda: proxied(F, "k", "/1.0/echo").status == 200, timeout=15,
               what="the agent to reach the restarted upstream")
    echo_ok(F, "k", "k", "after restarting the upstream")
    # The upstream killed in the middle of a download: the user's download
    # ends promptly with an error, the tunnel stays, the next request works.
    n = 2 << 30
    s, status, headers, have = open_download(F, "k", n)
    try:
        L.eq(status, 200, "download status")
        have = read_until(s, have, 4 * MiB)
        UP.proc.send_signal(signal.SIGKILL)
        UP.proc.wait(timeout=10)
        have, how, took = read_to_end(s, have, 20)
    finally:
        s.close()
    L.forget(UP.proc)
    UP.proc = None
    L.log("  upstream killed mid-download: user got %d MiB, then %s after %.2f s" % (
        have // MiB, how, took))
    L.check(how != "timeout", "the user's download did not end within 20 s of the upstream "
            "being killed")
    L.check(took < 10, "the user's download ended %.1f s after the upstream was killed" % took)
    L.check(have < n, "the download cannot be complete")
    L.check(cluster_tunnel(F, "k") is not None, "the tunnel went with the upstream")
    expect(proxied(F, "k", "/1.0/echo", timeout=30), 502, "request with the upstream killed")
    UP.start()
    L.wait_for(lambda: proxied(F, "k", "/1.0/echo").status == 200, timeout=15,
               what="the agent to reach the restarted upstream")
    L.check(F.alive() and AGENTS["k"].proc.poll() is None, "server or agent died")


# ---------------------------------------------------------------------------
# Agent SIGKILL in the middle of a stream
# ---------------------------------------------------------------------------

@t.test
def test_agent_sigkill_mid_stream():
    ag = AGENTS["k"]
    UP.stats(reset=True)
    n = 2 << 30
    s, status, headers, have = open_download(F, "k", n)
    try:
        L.eq(status, 200, "download status")
        L.eq(headers.get("content-length"), str(n), "download Content-Length")
        have = read_until(s, have, 8 * MiB)
        t_kill = time.monotonic()
        ag.kill(signal.SIGKILL)
        have, how, took = read_to_end(s, have, 20)
    finally:
        s.close()
    L.log("  agent killed mid-download: user got %d MiB, then %s after %.2f s" % (
        have // MiB, how, took))
    L.check(how != "timeout", "the user's download did not end within 20 s of the agent "
            "being killed")
    L.check(took < 10, "the user's download ended %.1f s after the agent was killed" % took)
    L.check(have < n, "the download cannot be complete")
    L.wait_for(lambda: cluster_tunnel(F, "k") is None, timeout=10,
               what="the killed agent's tunnel to leave the cluster object")
    L.log("  tunnel gone %.2f s after the kill" % (time.monotonic() - t_kill))
    expect(proxied(F, "k", "/1.0/echo"), 503, "request while the agent is dead")
    # The upstream saw its connection go too.
    L.wait_for(lambda: UP.stats()["active"]["bytes"] == 0, timeout=15,
               what="the upstream's download to end after the agent was killed")
    ag.start()
    t0 = time.monotonic()
    wait_tunnel(F, "k", timeout=30)
    L.log("  restarted agent reconnected in %.2f s" % (time.monotonic() - t0))
    r = proxied(F, "k", "/1.0/bytes?n=%d" % (8 * MiB), timeout=60)
    L.eq(r.status, 200, "download after the agent restarted")
    L.eq(hashlib.sha256(r.raw).hexdigest(), U.gen_sha256(8 * MiB), "downloaded bytes")
    L.check(F.alive(), "server died")


# ---------------------------------------------------------------------------
# Server SIGKILL and restart
# ---------------------------------------------------------------------------

def names_of(lst, key):
    return sorted(x[key] if isinstance(x, dict) else x.rsplit("/", 1)[-1] for x in lst)


def snapshot(srv):
    clusters = names_of(srv.mgmt("GET", "/1.0/remote-cluster").metadata, "name")
    tokens = names_of(srv.mgmt("GET", TOKEN_PATH).metadata, "cluster_name")
    return clusters, tokens


@t.test
def test_server_sigkill_restart():
    db = os.path.join(F.data_dir, "lxcm.db")
    k2 = AGENTS["k2"] = Agent(F, "k2", UP).start()
    wait_tunnel(F, "k")
    wait_tunnel(F, "k2")
    plain = F.enroll("plain")
    F.create_token("pend1")
    F.create_token("pend2", description="pending")
    pend3 = F.create_token("pend3")
    L.eq(F.mgmt("PATCH", "/1.0/remote-cluster/k", {"description": "kept",
                                                   "disk_threshold": 55}).status, 200, "PATCH k")
    audit_sql = "SELECT id, at, cluster, method, path, status FROM audit_log ORDER BY id"
    time.sleep(0.5)   # audit rows of the earlier tests are written asynchronously
    n0 = len(db_rows(db, audit_sql))
    for i in range(3):
        echo_ok(F, "k", "k", "audit %d" % i)
        echo_ok(F, "k2", "k", "audit %d" % i)
    L.eq(proxied(F, "k", "/1.0/upload", method="PUT", body=b"x" * 1000).status, 200, "upload")
    want = n0 + 7
    rows = L.wait_for(lambda: (lambda r: r if len(r) >= want else None)(db_rows(db, audit_sql)),
                      timeout=15, what="%d audit rows in the database" % want)
    L.eq(len(rows), want, "audit rows before the kill")
    L.check(all(r[5] == 200 for r in rows[n0:]), "audit statuses: %r" % (rows[n0:],))
    clusters, tokens = snapshot(F)
    L.eq(clusters, ["k", "k2", "plain"], "clusters before the kill")
    L.eq(tokens, ["pend1", "pend2", "pend3"], "tokens before the kill")
    fp = L.server_fingerprint(F.conn_port)
    ports = (F.mgmt_port, F.conn_port)

    # One more request, answered just before the SIGKILL: its row may still
    # be waiting for its batch, but it is in the audit journal, so after the
    # restart it must be in the database.
    echo_ok(F, "k", "k", "just before the kill")
    sigkill_server(F)
    # Every row that was in the database is still there: count on the file,
    # with the server down.
    after_kill = db_rows(db, audit_sql)
    L.eq(after_kill[:len(rows)], rows, "audit rows in the database after SIGKILL")
    L.check(len(after_kill) in (want, want + 1), "audit rows after SIGKILL: %d, want %d "
            "or %d" % (len(after_kill), want, want + 1))
    L.log("  the audit row of the request answered just before SIGKILL was %s" % (
        "in the database" if len(after_kill) == want + 1 else "in the journal only"))
    F.start()
    rows = db_rows(db, audit_sql)
    L.eq(rows[:len(after_kill)], after_kill, "rows from before the kill, after the restart")
    L.eq(len(rows), want + 1, "audit rows after the restart: the last one recovered from "
         "the journal")
    L.check(rows[-1][4].endswith("just-before-the-kill"), "the recovered row: %r" % (rows[-1],))
    L.eq((F.mgmt_port, F.conn_port), ports, "ports after the restart")
    L.eq(L.server_fingerprint(F.conn_port), fp, "certificate after the restart")
    L.eq(snapshot(F), (clusters, tokens), "clusters and tokens after SIGKILL and restart")
    c = F.mgmt("GET", "/1.0/remote-cluster/k").metadata
    L.eq((c["description"], c["disk_threshold"]), ("kept", 55), "k's fields after the restart")
    # The agents come back by themselves.
    t0 = time.monotonic()
    wait_tunnel(F, "k", timeout=60)
    wait_tunnel(F, "k2", timeout=max(1, 60 - (time.monotonic() - t0)))
    L.log("  both agents reconnected %.1f s after the restart" % (time.monotonic() - t0))
    echo_ok(F, "k", "k", "after the restart")
    echo_ok(F, "k2", "k", "after the restart")
    L.eq(F.join("pend3", pend3, L.Cert("pend3")).status, 200,
         "join with a token made before the kill")
    L.eq(F.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 2},
                cert=plain).status, 200, "heartbeat of a cluster enrolled before the kill")
    L.check(k2.proc.poll() is None and AGENTS["k"].proc.poll() is None, "an agent died")
    # Stopped cleanly, the database holds every row: the ones from before
    # the kill and the two made since.
    L.eq(F.stop(), 0, "exit status after SIGTERM")
    final = db_rows(db, audit_sql)
    L.eq(final[:len(rows)], rows, "audit rows from before the kill, after the restart")
    L.eq(len(final), len(rows) + 2, "audit rows after the restart (2 more requests)")
    L.eq(db_check(db), [("ok",)], "integrity_check")
    F.start()
    wait_tunnel(F, "k", timeout=60)


# ---------------------------------------------------------------------------
# Database file system full
# ---------------------------------------------------------------------------

def fill(directory):
    """Fills the file system of directory; returns the filler's path."""
    path = os.path.join(directory, "filler")
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    f.write(block[:size])
                except OSError:
                    break
    return path


@t.test
def test_database_full():
    if os.geteuid() != 0:
        L.log("  NOT RUN: needs root to mount a small tmpfs for the database")
        return
    mnt = L.tmpdir("dbfs")
    cp = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt],
                        capture_output=True, text=True, timeout=30)
    if cp.returncode != 0:
        L.log("  NOT RUN: cannot mount a tmpfs for the database (%s)" % cp.stderr.strip())
        return
    L.at_exit(lambda: subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30))
    db = os.path.join(mnt, "lxcm.db")
    D = L.Server("--db", "sqlite:" + db).start()
    try:
        cert = D.enroll("d1")
        L.eq(D.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 2},
                    cert=cert).status, 200, "heartbeat before the disk is full")
        pend = D.create_token("dpend")
        filler = fill(mnt)
        L.log("  filled the database's tmpfs with %d KiB" % (os.path.getsize(filler) // 1024))
        # Writes: 503 with the error envelope, each time.
        for i in range(3):
            expect(D.mgmt("POST", TOKEN_PATH, {"cluster_name": "dfull%d" % i}), 503,
                   "token create on a full disk (%d)" % i)
        expect(D.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 4}, cert=cert),
               503, "heartbeat on a full disk")
        expect(D.join("dpend", pend, L.Cert("dpend")), 503, "join on a full disk")
        expect(D.mgmt("PATCH", "/1.0/remote-cluster/d1", {"description": "x"}), 503,
               "PATCH on a full disk")
        # Reads still work.
        r = D.mgmt("GET", "/1.0/remote-cluster")
        L.eq(r.status, 200, "cluster list on a full disk: %r" % r)
        L.eq(names_of(r.metadata, "name"), ["d1"], "clusters on a full disk")
        r = D.mgmt("GET", TOKEN_PATH)
        L.eq(r.status, 200, "token list on a full disk: %r" % r)
        L.eq(names_of(r.metadata, "cluster_name"), ["dpend"], "tokens on a full disk")
        c = D.mgmt("GET", "/1.0/remote-cluster/d1").metadata
        L.eq(c["cpu_total_count"], 2, "the refused heartbeat changed nothing")
        L.check(D.alive(), "server died on a full disk")
        # Space again: everything works, including the join the full disk refused.
        os.unlink(filler)
        L.wait_for(lambda: D.mgmt("POST", TOKEN_PATH, {"cluster_name": "dfull0"}).status == 200,
                   timeout=15, what="token create to work again after freeing space")
        L.eq(D.join("dpend", pend, L.Cert("dpend")).status, 200,
             "join with the token a full disk refused")
        L.eq(D.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 4},
                    cert=cert).status, 200, "heartbeat after freeing space")
        L.eq(D.mgmt("GET", "/1.0/remote-cluster/d1").metadata["cpu_total_count"], 4,
             "cpu_total_count after freeing space")
        # Full again, then a restart with the disk full, then space again.
        filler = fill(mnt)
        expect(D.mgmt("POST", TOKEN_PATH, {"cluster_name": "dfull1"}), 503,
               "token create on a full disk, second time")
        L.eq(D.mgmt("GET", "/1.0/remote-cluster").status, 200, "reads, second time")
        os.unlink(filler)
        L.wait_for(lambda: D.mgmt("POST", TOKEN_PATH, {"cluster_name": "dfull1"}).status == 200,
                   timeout=15, what="token create to work again, second time")
        L.eq(D.stop(), 0, "exit status after SIGTERM")
        L.eq(db_check(db), [("ok",)], "integrity_check after the full disk")
        L.eq(sorted(r[0] for r in db_rows(db, "SELECT name FROM clusters")), ["d1", "dpend"],
             "clusters in the database")
    finally:
        D.stop()


# ---------------------------------------------------------------------------
# 1,000 tunnel cycles and 1,000 streams: no leaks
# ---------------------------------------------------------------------------

def ws_cycle(port, cert, i):
    peer = TunnelPeer(port, cert)
    try:
        op, payload = peer.recv_frame(15)    # the server's HTTP/2 preface: registered
        L.eq(op, 0x2, "first message of the server on a new tunnel")
        how = i % 3
        if how == 0:
            peer.close()                     # close frame, then close
        elif how == 1:
            peer.close(abrupt=True)          # just drop the connection
        else:
            peer.send_frame(0x1, "text")     # the server closes it
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    op, _ = peer.recv_frame(max(0.1, deadline - time.monotonic()))
                except (ConnectionError, ssl.SSLError, OSError):
                    break
                if op == 0x8:
                    break
            peer.close(abrupt=True)
    except Exception:
        peer.close(abrupt=True)
        raise


def stream_cycle(srv, name, i):
    kind = i % 4
    if kind == 0:
        r = proxied(srv, name, "/1.0/echo?i=%d" % i, timeout=60)
        L.eq(r.status, 200, "echo %d" % i)
    elif kind == 1:
        r = proxied(srv, name, "/1.0/bytes?n=%d" % MiB, timeout=60)
        L.eq((r.status, len(r.raw)), (200, MiB), "1 MiB download %d" % i)
    elif kind == 2:
        s, status, _, have = open_download(srv, name, 256 * MiB)
        try:
            L.eq(status, 200, "abandoned download %d" % i)
            read_until(s, have, 256 * 1024)
        finally:
            s.close()
    else:
        body = os.urandom(128 * 1024)
        r = proxied(srv, name, "/1.0/upload", method="PUT", body=body, timeout=60)
        L.eq(r.status, 200, "upload %d" % i)
        L.eq(r.metadata["sha256"], hashlib.sha256(body).hexdigest(), "upload %d sha256" % i)


def run_parallel(fn, count, nthreads):
    errors = []
    lock = threading.Lock()
    counter = iter(range(count))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None or len(errors) > 5:
                return
            try:
                fn(i)
            except Exception as e:
                with lock:
                    errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    return errors


@t.test
def test_cycles_no_leaks():
    R = L.Server("--join-rate", "1000", "--join-burst", "1000").start()
    up = U.FakeUpstream("r").start()
    ag = Agent(R, "r", up).start()
    try:
        wait_tunnel(R, "r")
        certs = [R.enroll("cyc%d" % i) for i in range(4)]
        pid = R.proc.pid

        def ws_fn(i):
            ws_cycle(R.conn_port, certs[i % 4], i)

        def stream_fn(i):
            stream_cycle(R, "r", i)

        def settled():
            for i in range(4):
                if cluster_tunnel(R, "cyc%d" % i) is not None:
                    return False
            tun = cluster_tunnel(R, "r")
            return tun is not None and tun["active_streams"] == 0

        # Warm-up (first-use allocations, caches), then the baseline.
        def agent_alive(when):
            if ag.proc.poll() is not None:
                raise L.TestFailure("the agent exited (status %r) %s; its log ends:\n%s" % (
                    ag.proc.returncode, when, ag.log_tail(30)))

        errs = run_parallel(ws_fn, 24, 4) + run_parallel(stream_fn, 24, 4)
        agent_alive("during the warm-up")
        L.check(not errs, "warm-up errors: %r" % errs)
        L.wait_for(settled, timeout=30, what="the warm-up to settle")
        time.sleep(1)
        fd0, rss0 = fd_count(pid), rss_kb(pid)
        afd0 = fd_count(ag.proc.pid)
        t0 = time.monotonic()
        res = {}
        th_ws = threading.Thread(target=lambda: res.update(ws=run_parallel(ws_fn, 1000, 4)))
        th_st = threading.Thread(target=lambda: res.update(st=run_parallel(stream_fn, 1000, 6)))
        th_ws.start()
        th_st.start()
        peak_fd = 0
        while th_ws.is_alive() or th_st.is_alive():
            peak_fd = max(peak_fd, fd_count(pid))
            time.sleep(0.2)
        th_ws.join()
        th_st.join()
        took = time.monotonic() - t0
        agent_alive("during the 1000 streams")
        L.check(not res["ws"], "tunnel cycle errors: %r" % res["ws"])
        L.check(not res["st"], "stream errors: %r" % res["st"])
        L.wait_for(settled, timeout=30, what="the tunnels and streams to be gone")
        L.wait_for(lambda: up.stats()["active"]["bytes"] == 0, timeout=30,
                   what="the upstream's abandoned downloads to end")

        # Under ASan freed memory stays in its quarantine: only the fd counts
        # are checked there (the RSS is still logged).
        rss_slack = None if SANITIZED else 8 * 1024

        def back():
            fd, rss, afd = fd_count(pid), rss_kb(pid), fd_count(ag.proc.pid)
            rss_ok = rss_slack is None or rss <= rss0 + rss_slack
            return (fd, rss, afd) if (fd <= fd0 + 5 and rss_ok and
                                      afd <= afd0 + 5) else None
        try:
            fd1, rss1, afd1 = L.wait_for(back, timeout=30, interval=1,
                                         what="fds and RSS back near the baseline")
        except L.TestFailure:
            fd1, rss1, afd1 = fd_count(pid), rss_kb(pid), fd_count(ag.proc.pid)
            raise L.TestFailure("after 1000 tunnel cycles and 1000 streams: server fds %d -> "
                                "%d (peak %d), VmRSS %d -> %d KiB; agent fds %d -> %d" % (
                                    fd0, fd1, peak_fd, rss0, rss1, afd0, afd1))
        L.log("  1000 tunnel cycles + 1000 streams in %.1f s: server fds %d -> %d (peak %d), "
              "VmRSS %d -> %d KiB; agent fds %d -> %d" % (took, fd0, fd1, peak_fd, rss0, rss1,
                                                          afd0, afd1))
        echo_ok(R, "r", "r", "after the cycles")
        L.check(R.alive() and ag.proc.poll() is None, "server or agent died")
    finally:
        ag.stop()
        R.stop()
        up.stop()


@t.test
def test_processes_alive_at_end():
    L.check(F.alive(), "server died")
    for name, ag in AGENTS.items():
        L.check(ag.proc is not None and ag.proc.poll() is None, "agent %s died:\n%s" % (
            name, ag.log_tail()))


if __name__ == "__main__":
    t.main()
