#!/usr/bin/env python3
"""The claims of docs/security.md that no other test backs (issue 6).

Each test names the claim it checks; docs/security.md names the test.

- Files: the server's data directory is created 0700 and lxcm.db (and its
  -wal, -shm), server.key and admin.token are 0600 even when the server is
  started with umask 0; server.crt is 0644.
- Stored secrets: the admin token is stored as its SHA-256 only; a join
  token's secret is stored as its SHA-256 only (neither text is anywhere
  in the database files).
- No endpoint returns secrets: every GET route of both listeners (and the
  heartbeat's answer), called with the admin token or an enrolled
  certificate, never shows an API token, its hash, a join secret or token,
  or a private key.
- TLS: both listeners refuse TLS 1.0 and 1.1 (protocol_version alert),
  TLS 1.2 without forward secrecy or without AEAD (handshake_failure), and
  negotiate ECDHE + AES-GCM on TLS 1.2 and TLS 1.3 (openssl s_client).
- Constant-time comparisons: API token hashes and join secrets are
  compared with CRYPTO_memcmp (a check of the source).
- The proxy drops the headers a request's Connection header names (and the
  hop-by-hop ones), keeps the others; an IPv6 client appears bracketed and
  quoted in Forwarded (management listener on [::1]).
- Audit: a proxied request's row names its actor as "token:" and the first
  12 hex digits of the token's SHA-256, never the token.
- Tunnels: a cluster that removes itself (DELETE /1.0/remote-cluster) has
  its live v2 tunnel closed (WebSocket close 1008); a v2 tunnel peer that
  never sends a byte is closed after the 45 s dead timeout (there is no
  flag to shorten it, so this test takes about 50 s).
- A cluster certificate means nothing on the management listener: every
  management route, the proxy to another cluster included, answers 401.
- The agent listens on no port; an https:// upstream without a CA or a
  pinned fingerprint is refused by `lxcm-agent join` before it contacts
  the manager.

Server, agent and upstream_fake.py only (no LXD). Python standard library.
"""

import base64
import hashlib
import http.client
import os
import re
import socket
import sqlite3
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_security_claims")
S = None        # the main server
AGENT = {}      # the agent cluster "sec" of S: up, dir, proc


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def cluster_meta(srv, name):
    r = srv.mgmt("GET", "/1.0/remote-cluster/" + name)
    return r.metadata if r.status == 200 else None


def tunnel_up(srv, name):
    m = cluster_meta(srv, name)
    return bool(m and m.get("tunnel_registered"))


def start_agent(srv, name, log_dir=None):
    """Enrolls name through a real lxcm-agent in front of upstream_fake.py."""
    up = U.FakeUpstream(name).start()
    d = os.path.join(log_dir or L.tmpdir("agent"), name)
    L.agent("join", srv.create_token(name), "--data-dir", d, "--upstream", up.url,
            check_rc=0, timeout=60)
    proc = L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    L.wait_for(lambda: tunnel_up(srv, name), timeout=30, what="the tunnel of " + name)
    return {"up": up, "dir": d, "proc": proc}


def db_bytes(srv):
    """The bytes of lxcm.db and its -wal / -shm files."""
    out = b""
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(srv.data_dir, "lxcm.db" + suffix)
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


def db_query(srv, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(srv.data_dir, "lxcm.db"), uri=True,
                          timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def tunnel_peer(srv, cert):
    """A hand-rolled v2 tunnel peer (WebSocket with lxcm-tunnel.v2), silent."""
    sock = L.tls_connect(srv.conn_port, cert=cert)
    r, ws = L.ws_upgrade(sock, "/1.0/remote-cluster/ws",
                         headers={"Sec-WebSocket-Protocol": "lxcm-tunnel.v2"})
    L.eq(r.status, 101, "tunnel upgrade")
    return ws


def wait_ws_closed(ws, timeout):
    """Reads until the server closes the WebSocket; returns (close code or
    None for a bare EOF, seconds waited), or None if still open at timeout."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        try:
            fin, op, payload = ws.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
        except (socket.timeout, TimeoutError):
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            return None, time.monotonic() - t0
        if op == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            return code, time.monotonic() - t0
    return None


def s_client(port, *args):
    """openssl s_client against 127.0.0.1:port; (established, protocol,
    cipher, output)."""
    cp = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief"]
                        + list(args), input="", capture_output=True, text=True, timeout=30)
    out = cp.stdout + cp.stderr
    proto = re.search(r"Protocol version: (\S+)", out)
    cipher = re.search(r"Ciphersuite: (\S+)", out)
    return ("CONNECTION ESTABLISHED" in out and cp.returncode == 0,
            proto.group(1) if proto else None, cipher.group(1) if cipher else None, out)


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

@t.setup
def setup():
    global S
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    # A data directory the server creates itself, with umask 0 around its
    # start: the modes below are the server's doing, not ours.
    old = os.umask(0)
    try:
        parent = L.tmpdir("srvparent")
        S = L.Server(data_dir=os.path.join(parent, "data"))
        S.log_path = os.path.join(parent, "server.log")
        S.start()
    finally:
        os.umask(old)
    AGENT.update(start_agent(S, "sec"))


# ---------------------------------------------------------------------------
# Files and stored secrets
# ---------------------------------------------------------------------------

@t.test
def test_server_file_modes():
    # Write something so the WAL exists.
    S.create_token("modes")
    want = {"server.key": 0o600, "admin.token": 0o600, "lxcm.db": 0o600, "server.crt": 0o644}
    for suffix in ("-wal", "-shm"):
        if os.path.exists(os.path.join(S.data_dir, "lxcm.db" + suffix)):
            want["lxcm.db" + suffix] = 0o600
    L.check("lxcm.db-wal" in want, "no lxcm.db-wal: the database is not in WAL mode?")
    got = {name: mode_of(os.path.join(S.data_dir, name)) for name in want}
    L.eq({k: oct(v) for k, v in got.items()}, {k: oct(v) for k, v in want.items()},
         "file modes in the data directory (server started with umask 0)")
    L.eq(oct(mode_of(S.data_dir)), oct(0o700), "mode of the data directory the server made")


@t.test
def test_admin_token_stored_as_hash():
    rows = db_query(S, "SELECT name, hash FROM api_tokens")
    hashes = {name: h for name, h in rows}
    want = L.sha256_hex(S.token.encode())
    L.check(want in hashes.values(), "the admin token's SHA-256 is not in api_tokens: %r" % rows)
    raw = db_bytes(S)
    L.check(S.token.encode() not in raw, "the admin token's text is in the database files")
    L.check(S.token[len("lxcm_"):].encode() not in raw,
            "the admin token's hex digits are in the database files")


@t.test
def test_join_secret_stored_as_hash():
    tok = S.create_token("hashed")
    secret = L.decode_join_token(tok)["secret"]
    rows = db_query(S, "SELECT cluster_name, secret_hash FROM join_tokens WHERE cluster_name = ?",
                    ("hashed",))
    L.eq(rows, [("hashed", L.sha256_hex(secret.encode()))], "the stored join token row")
    raw = db_bytes(S)
    L.check(secret.encode() not in raw, "the join secret is in the database files")
    L.check(tok.encode() not in raw, "the join token's text is in the database files")


@t.test
def test_no_endpoint_returns_secrets():
    # Secrets of every kind the server has seen.
    r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "ops"})
    L.eq(r.status, 200, "create API token ops")
    ops = r.metadata["token"]
    join_tok = S.create_token("pending")
    join_secret = L.decode_join_token(join_tok)["secret"]
    cert = S.enroll("leaky")
    with open(cert.key_path) as f:
        client_key = f.read()
    with open(os.path.join(S.data_dir, "server.key")) as f:
        server_key = f.read()
    with open(os.path.join(AGENT["dir"], "agent.key")) as f:
        agent_key = f.read()

    def key_lines(pem):
        return [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]

    secrets = {"admin token": S.token, "ops token": ops,
               "admin token hash": L.sha256_hex(S.token.encode()),
               "ops token hash": L.sha256_hex(ops.encode()),
               "join secret": join_secret, "join token": join_tok,
               "join secret hash": L.sha256_hex(join_secret.encode())}
    for what, pem in (("client key", client_key), ("server key", server_key),
                      ("agent key", agent_key)):
        for i, ln in enumerate(key_lines(pem)):
            secrets["%s line %d" % (what, i)] = ln
    # A heartbeat, so the cluster object carries status details too.
    hb = S.conn("POST", "/1.0/remote-cluster/status", {"cluster_certificate": cert.pem},
                cert=cert)
    answers = [("connector heartbeat answer", hb)]
    for path in ("/1.0", "/1.0/status", "/1.0/remote-cluster", "/1.0/remote-cluster/leaky",
                 "/1.0/remote-cluster/sec", "/1.0/remote-cluster-join-token",
                 "/1.0/auth/tokens"):
        for token in (True, "ops", None):
            r = S.mgmt("GET", path, token=ops if token == "ops" else token)
            answers.append(("management GET %s (%s)" % (path, {True: "admin", "ops": "ops",
                                                               None: "no token"}[token]), r))
    for path in ("/1.0/status", "/1.0"):
        answers.append(("connector GET " + path, S.conn("GET", path, cert=cert)))
    checked = 0
    for what, r in answers:
        text = r.raw.decode("utf-8", "replace") + repr(r.headers)
        checked += r.status == 200
        for name, value in secrets.items():
            L.check(value not in text, "%s (status %d) shows the %s" % (what, r.status, name))
    L.check(checked >= 15, "too few answers were 200 to mean anything: %d" % checked)


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

@t.test
def test_tls_versions_and_ciphers():
    for listener, port in (("management", S.mgmt_port), ("connector", S.conn_port)):
        for proto in ("-tls1", "-tls1_1"):
            ok, _, _, out = s_client(port, proto, "-cipher", "DEFAULT@SECLEVEL=0")
            L.check(not ok, "%s accepted %s" % (listener, proto))
            # The server said no (alert 70), not our own OpenSSL.
            L.check("alert protocol version" in out, "%s %s: no protocol_version alert from "
                    "the server:\n%s" % (listener, proto, out[-600:]))
        for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA",
                       "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA"):
            ok, _, _, out = s_client(port, "-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")
            L.check(not ok, "%s accepted TLS 1.2 with %s" % (listener, cipher))
            L.check("alert handshake failure" in out, "%s %s: no handshake_failure alert from "
                    "the server:\n%s" % (listener, cipher, out[-600:]))
        ok, proto, cipher, out = s_client(port, "-tls1_2")
        L.check(ok, "%s: TLS 1.2 failed:\n%s" % (listener, out[-600:]))
        L.eq(proto, "TLSv1.2", listener + " protocol")
        L.check(cipher and cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA" in cipher),
                "%s: TLS 1.2 negotiated %r (want ECDHE with AEAD)" % (listener, cipher))
        ok, proto, cipher, out = s_client(port, "-tls1_3")
        L.check(ok and proto == "TLSv1.3", "%s: TLS 1.3 failed:\n%s" % (listener, out[-600:]))


@t.test
def test_constant_time_compare():
    # A check of the source: the comparisons of secrets use CRYPTO_memcmp.
    def src(path):
        with open(os.path.join(L.SRC, path)) as f:
            return f.read()
    secret_c = src("src/common/secret.c")
    m = re.search(r"int secret_equal\([^)]*\)\s*\{(.*?)\n\}", secret_c, re.S)
    L.check(m and "CRYPTO_memcmp" in m.group(1), "secret_equal does not use CRYPTO_memcmp")
    auth_c = src("src/server/auth.c")
    L.check(re.search(r"ok \|= secret_equal\(", auth_c),
            "auth.c does not compare the token hash with every entry through secret_equal")
    for path in ("src/server/auth.c", "src/store/sqlite.c", "src/store/store_cluster.c",
                 "src/server/api.c", "src/server/connector.c"):
        for i, line in enumerate(src(path).splitlines(), 1):
            if re.search(r"\b(str|mem|strn|strcase)cmp\s*\(", line) and \
                    re.search(r"hash|secret|token", line, re.I):
                raise L.TestFailure("%s:%d compares a secret without constant time: %s" % (
                    path, i, line.strip()))
    # The join rule lives above the backends since issue 10 (store_cluster.c).
    L.check("CRYPTO_memcmp(stored, secret_hash" in src("src/store/store_cluster.c"),
            "the join secret's hash is not compared with CRYPTO_memcmp in store_cluster.c")


# ---------------------------------------------------------------------------
# The proxy and the audit log
# ---------------------------------------------------------------------------

def echo_headers(r):
    L.eq(r.status, 200, "proxied /1.0/echo")
    hdrs = {}
    for k, v in r.metadata["headers"]:
        hdrs.setdefault(k.lower(), []).append(v)
    return hdrs


@t.test
def test_connection_named_headers_dropped():
    r = S.mgmt("GET", "/1.0/remote-cluster/sec/tunnel/1.0/echo", headers={
        "Connection": "keep-alive, X-Hop-One,x-hop-two", "X-Hop-One": "1", "X-Hop-Two": "2",
        "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic c2VjcmV0",
        "Proxy-Connection": "keep-alive", "TE": "trailers", "X-Kept": "yes"})
    hdrs = echo_headers(r)
    for name in ("x-hop-one", "x-hop-two", "keep-alive", "proxy-authorization",
                 "proxy-connection", "te", "authorization"):
        L.check(name not in hdrs, "%s reached the upstream: %r" % (name, hdrs.get(name)))
    L.eq(hdrs.get("x-kept"), ["yes"], "X-Kept at the upstream")


class V6Server(L.Server):
    """An lxcm-server whose management listener is on [::1]."""

    # The extra "--management-addr [::1]:PORT" comes after the harness's
    # own 127.0.0.1 one, and the last one wins.

    def _ready(self):
        try:
            r = v6_request(self.mgmt_port, "GET", "/1.0/status")
            if r.status != 200 or L.request(self.conn_port, "GET", "/1.0/status",
                                             timeout=5).status != 200:
                return False
            return os.path.exists(self.token_file)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False

    def mgmt(self, method, path, body=None, token=True, headers=None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + (self.token if token is True else token)
        return v6_request(self.mgmt_port, method, path, body=body, headers=h)


def v6_request(port, method, path, body=None, headers=None):
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        import json
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPSConnection("::1", port, timeout=15, context=L.tls_context())
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return L.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@t.test
def test_forwarded_ipv6_bracketed():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
    except OSError as e:
        L.log("  no IPv6 loopback here (%s): nothing to check" % e)
        return
    port = L.free_port()
    srv = V6Server("--management-addr", "[::1]:%d" % port)
    srv.mgmt_port = port
    srv.conn_port = L.free_port()
    # Server.start() picks ports itself on a retry; give it ours once.
    if not srv._start_once(30):
        raise L.TestFailure("lxcm-server on [::1] did not start:\n" + srv.log_tail())
    try:
        ag = start_agent(srv, "six")
        try:
            hdrs = echo_headers(srv.mgmt("GET", "/1.0/remote-cluster/six/tunnel/1.0/echo",
                                         headers={"Forwarded": "for=203.0.113.7"}))
            L.eq(hdrs.get("x-forwarded-for"), ["::1"], "X-Forwarded-For of an IPv6 client")
            fwd = hdrs.get("forwarded", [""])
            L.eq(len(fwd), 1, "one Forwarded header")
            L.check('for="[::1]"' in fwd[0], "Forwarded of an IPv6 client is not bracketed "
                    "and quoted: %r" % fwd[0])
            L.check("203.0.113.7" not in fwd[0], "a client's Forwarded was kept: %r" % fwd[0])
        finally:
            ag["proc"].terminate()
            ag["proc"].wait(10)
            ag["up"].stop()
    finally:
        srv.stop()


@t.test
def test_audit_actor_is_token_hash_prefix():
    mark = "audit-%d" % os.getpid()
    r = S.mgmt("GET", "/1.0/remote-cluster/sec/tunnel/1.0/echo?" + mark)
    L.eq(r.status, 200, "proxied request")
    rows = L.wait_for(lambda: db_query(S, "SELECT actor, cluster, method, path FROM audit_log "
                                          "WHERE path LIKE ?", ("%" + mark + "%",)),
                      timeout=10, what="the audit row of the proxied request")
    want = "token:" + L.sha256_hex(S.token.encode())[:12]
    L.eq([row[0] for row in rows], [want], "audit actor")
    L.eq(rows[0][1], "sec", "audit cluster")
    all_rows = repr(db_query(S, "SELECT * FROM audit_log"))
    L.check(S.token not in all_rows, "the token is in the audit log")


# ---------------------------------------------------------------------------
# Tunnels
# ---------------------------------------------------------------------------

@t.test
def test_self_removal_closes_tunnel():
    cert = S.enroll("selfrm")
    ws = tunnel_peer(S, cert)
    L.wait_for(lambda: tunnel_up(S, "selfrm"), timeout=15, what="the tunnel of selfrm")
    r = S.conn("DELETE", "/1.0/remote-cluster", cert=cert)
    L.eq(r.status, 200, "the cluster removes itself")
    res = wait_ws_closed(ws, 10)
    L.check(res is not None, "the tunnel of a cluster that removed itself is still open")
    L.eq(res[0], 1008, "close code of the tunnel of a cluster that removed itself")
    ws.close()
    L.eq(S.mgmt("GET", "/1.0/remote-cluster/selfrm").status, 404, "the cluster after leaving")
    L.eq(S.mgmt("GET", "/1.0/remote-cluster/selfrm/tunnel/1.0/echo").status, 404,
         "the proxy to a cluster that left")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=cert).status, 403,
         "a heartbeat after leaving")


@t.test
def test_cluster_cert_means_nothing_on_management():
    cert = S.enroll("certonly")
    for method, path in (("GET", "/1.0/remote-cluster"), ("GET", "/1.0/remote-cluster/sec"),
                         ("GET", "/1.0/remote-cluster/certonly"),
                         ("GET", "/1.0/remote-cluster/sec/tunnel/1.0/echo"),
                         ("GET", "/1.0/remote-cluster/certonly/tunnel/1.0/echo"),
                         ("DELETE", "/1.0/remote-cluster/sec"),
                         ("POST", "/1.0/remote-cluster-join-token"),
                         ("GET", "/1.0/auth/tokens"), ("POST", "/1.0/auth/tokens")):
        r = L.request(S.mgmt_port, method, path, cert=cert,
                      body={} if method == "POST" else None)
        L.eq(r.status, 401, "%s %s on the management listener with only a cluster "
             "certificate" % (method, path))
    # And the connector has no route into another cluster's tunnel.
    r = S.conn("GET", "/1.0/remote-cluster/sec/tunnel/1.0/echo", cert=cert)
    L.eq(r.status, 404, "the connector's answer to a proxy path")
    L.check(tunnel_up(S, "sec"), "the tunnel of sec was disturbed")


@t.test
def test_silent_tunnel_peer_closed_after_dead_timeout():
    # --tunnel-dead-after 3000: the manager PINGs every second, checks every
    # 1/3 s and closes a tunnel silent for 3 s. A real agent answers the
    # PINGs and keeps its tunnel; a peer silent from the start is closed.
    D = L.Server("--tunnel-dead-after", "3000").start()
    try:
        live = start_agent(D, "alive")
        since = (cluster_meta(D, "alive").get("tunnel") or {}).get("connected_since")
        cert = D.enroll("silent")
        ws = tunnel_peer(D, cert)
        L.wait_for(lambda: tunnel_up(D, "silent"), timeout=15, what="the tunnel of silent")
        t0 = time.monotonic()
        res = wait_ws_closed(ws, 20)
        waited = time.monotonic() - t0
        L.check(res is not None, "a tunnel peer silent from the start is still open after "
                "%.0f s" % waited)
        L.check(2.5 <= res[1] <= 8, "the silent peer was closed after %.1f s (want about 3-4)"
                % res[1])
        L.log("  silent v2 peer closed after %.1f s (close code %r)" % (res[1], res[0]))
        L.wait_for(lambda: not tunnel_up(D, "silent"), timeout=10,
                   what="the silent peer's tunnel to be forgotten")
        ws.close()
        # Meanwhile (> 3 dead times) the real agent's tunnel stayed the same one.
        L.check(tunnel_up(D, "alive"), "the live agent's tunnel was closed as silent")
        tun = cluster_meta(D, "alive").get("tunnel") or {}
        L.eq(tun.get("connected_since"), since, "the live agent's tunnel is the same one")
        L.check(tun.get("rtt_ms", -1) >= 0, "the live tunnel's PINGs were answered: %r" % tun)
        with open(D.log_path, "rb") as f:
            L.check(b"tunnel of alive silent" not in f.read(),
                    "the live agent's tunnel was reported silent")
        live["proc"].terminate()
        live["up"].stop()
    finally:
        D.stop()


# ---------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------

def listening_inodes():
    """Socket inodes in LISTEN state (TCP, TCP6) or listening (unix)."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                for line in list(f)[1:]:
                    parts = line.split()
                    if parts[3] == "0A":
                        out.add(parts[9])
        except OSError:
            pass
    with open("/proc/net/unix") as f:
        for line in list(f)[1:]:
            parts = line.split()
            if int(parts[3], 16) & 0x10000:  # __SO_ACCEPTCON
                out.add(parts[6])
    return out


@t.test
def test_agent_listens_on_no_port():
    pid = AGENT["proc"].pid
    mine = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            mine.add(m.group(1))
    L.check(mine, "the agent has no socket at all (is it running?)")
    # The check must be able to see listeners: the fake upstream has one.
    L.check(listening_inodes(), "no listening socket seen on this machine at all")
    L.eq(sorted(mine & listening_inodes()), [], "listening sockets of lxcm-agent")


@t.test
def test_https_upstream_needs_ca_or_pin():
    tok = S.create_token("nopin")
    d = os.path.join(L.tmpdir("agent"), "nopin")
    cp = L.agent("join", tok, "--data-dir", d, "--upstream", "https://127.0.0.1:8443",
                 timeout=60)
    L.check(cp.returncode != 0, "join with an unverified https upstream succeeded")
    L.check("--upstream-ca or --upstream-fingerprint" in cp.stderr,
            "no reason given: %r" % cp.stderr)
    tokens = S.mgmt("GET", "/1.0/remote-cluster-join-token").metadata
    L.check("nopin" in repr(tokens), "the join token was used: %r" % (tokens,))
    L.eq(S.mgmt("GET", "/1.0/remote-cluster/nopin").status, 404, "the cluster nopin")


if __name__ == "__main__":
    t.main()
