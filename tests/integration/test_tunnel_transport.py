#!/usr/bin/env python3
"""The tunnel's transports (issue 16): direct (HTTP/2 over TLS, ALPN
lxcm-tunnel.v2) and websocket, and the choice between them.

Debian's real HAProxy runs from the test in `mode http`, terminating TLS
with the connector's own certificate (so the agent's pin holds) and
re-encrypting to the connector with the agent's certificate (an ingress
that passes the agent's identity on): an HTTP/1.1-only ingress. Two
frontends: one answers ALPN http/1.1, the other does no ALPN at all (an
ingress that strips it).

Checked:
- `--tunnel-transport direct` through either frontend fails with a clear
  message and never registers a tunnel; `auto` through the same frontend
  falls back to the WebSocket transport and serves requests.
- Without the proxy `auto` is direct, `websocket` is the WebSocket.
- The connector with ALPN: HTTP/1.1 clients (no ALPN, or h2 and http/1.1
  offered) are served as before on the same port; a client offering
  lxcm-tunnel.v2 gets the HTTP/2 preface, and without an enrolled
  certificate a GOAWAY(INADEQUATE_SECURITY) with the reason, then the end.
- A cluster removed while its direct tunnel is up: the agent logs that it
  is not enrolled.

Server, agent and HAProxy only (no LXD). Python standard library only.
"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_tunnel_transport")

SRV = None
UP = None
HAP = {}  # "alpn" / "noalpn": frontend ports; "proc", "log"
AGENT_DIR = None  # the joined agent (its certificate is the proxy's towards the connector)
PROCS = []

HAPROXY_CFG = """\
global
    log stdout format raw local0 info
    maxconn 200
    nbthread 1

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h

frontend alpn_in
    bind 127.0.0.1:{alpn} ssl crt {front_pem} alpn http/1.1
    default_backend conn

frontend noalpn_in
    bind 127.0.0.1:{noalpn} ssl crt {front_pem}
    default_backend conn

backend conn
    server lxcm 127.0.0.1:{conn_port} ssl verify none crt {agent_pem}
"""


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def cat(paths, out):
    with open(out, "w") as f:
        for p in paths:
            f.write(read(p))
    os.chmod(out, 0o600)


def start_haproxy():
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(exe, os.X_OK):
        raise L.TestFailure("haproxy is not installed (scripts/install-deps.sh installs it)")
    d = L.tmpdir("haproxy")
    front = os.path.join(d, "front.pem")
    agent = os.path.join(d, "agent.pem")
    cat([os.path.join(SRV.data_dir, "server.crt"), os.path.join(SRV.data_dir, "server.key")], front)
    cat([os.path.join(AGENT_DIR, "agent.crt"), os.path.join(AGENT_DIR, "agent.key")], agent)
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(alpn=HAP["alpn"], noalpn=HAP["noalpn"], front_pem=front,
                                   agent_pem=agent, conn_port=SRV.conn_port))
    r = L.run([exe, "-c", "-f", cfg], timeout=30)
    L.eq(r.returncode, 0, "haproxy -c on the generated config: %s%s" % (r.stdout, r.stderr))
    HAP["log"] = os.path.join(d, "haproxy.log")
    logf = open(HAP["log"], "ab")
    try:
        HAP["proc"] = L.spawn([exe, "-db", "-f", cfg], stdout=logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=d)
    finally:
        logf.close()

    def listening():
        if HAP["proc"].poll() is not None:
            raise L.TestFailure("haproxy exited: " + read(HAP["log"])[-2000:])
        for port in (HAP["alpn"], HAP["noalpn"]):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    L.wait_for(listening, timeout=30, what="haproxy's frontends")


def cluster():
    r = SRV.mgmt("GET", "/1.0/remote-cluster/k")
    L.eq(r.status, 200, "GET /1.0/remote-cluster/k")
    return r.metadata


def echo():
    r = SRV.mgmt("GET", "/1.0/remote-cluster/k/tunnel/1.0/echo")
    return r.status, (r.metadata or {}).get("marker")


def run_agent(transport, port=None):
    """Starts the agent of k with a copy of its state naming port (the
    proxy) or the connector itself; returns (proc, log path)."""
    d = L.tmpdir("agentrun")
    for name in ("agent.crt", "agent.key", "agent.json"):
        shutil.copy(os.path.join(AGENT_DIR, name), os.path.join(d, name))
    os.chmod(os.path.join(d, "agent.key"), 0o600)
    if port is not None:
        import json
        p = os.path.join(d, "agent.json")
        with open(p) as f:
            st = json.load(f)
        st["addresses"] = ["127.0.0.1:%d" % port]
        with open(p, "w") as f:
            json.dump(st, f)
        os.chmod(p, 0o600)
    log = d + ".log"
    proc = L.spawn_agent("run", "--data-dir", d, "--tunnel-transport", transport, log_path=log)
    PROCS.append(proc)
    return proc, log


def stop_agent(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    L.wait_for(lambda: not cluster()["tunnel_registered"], timeout=20, interval=0.1,
               what="the tunnel of k to go away")


def wait_log(path, needle, timeout=20):
    L.wait_for(lambda: needle in read(path), timeout=timeout, interval=0.1,
               what="%r in %s: %s" % (needle, path, read(path)[-1500:]))


@t.setup
def setup():
    global SRV, UP, AGENT_DIR
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    HAP["alpn"], HAP["noalpn"] = L.free_port(), L.free_port()
    while HAP["noalpn"] == HAP["alpn"]:
        HAP["noalpn"] = L.free_port()
    UP = U.FakeUpstream("K").start()
    SRV = L.Server("--log-level", "debug").start()
    AGENT_DIR = os.path.join(L.tmpdir("agent"), "k")
    L.agent("join", SRV.create_token("k"), "--data-dir", AGENT_DIR, "--upstream", UP.url,
            check_rc=0, timeout=60)
    start_haproxy()


@t.test
def test_auto_without_proxy_is_direct():
    proc, log = run_agent("auto")
    L.wait_for(lambda: cluster()["tunnel_registered"], timeout=30, interval=0.1,
               what="the tunnel of k (agent log: %s)" % log)
    L.eq(cluster()["tunnel"]["transport"], "direct", "tunnel.transport with auto")
    L.eq(echo(), (200, "K"), "a request through the direct tunnel")
    wait_log(log, "is up (transport direct)")
    cp = L.Cli(SRV)("cluster", "show", "k")
    L.check("yes (direct)" in cp.stdout, "cluster show names the transport:\n" + cp.stdout
            + cp.stderr)
    stop_agent(proc)


@t.test
def test_websocket_without_proxy():
    proc, log = run_agent("websocket")
    L.wait_for(lambda: cluster()["tunnel_registered"], timeout=30, interval=0.1,
               what="the tunnel of k (agent log: %s)" % log)
    L.eq(cluster()["tunnel"]["transport"], "websocket", "tunnel.transport with websocket")
    L.eq(echo(), (200, "K"), "a request through the WebSocket tunnel")
    stop_agent(proc)


@t.test
def test_direct_through_http_proxy_fails_clearly():
    for front, answered in (("alpn", "ALPN http/1.1"), ("noalpn", "no ALPN protocol")):
        proc, log = run_agent("direct", HAP[front])
        wait_log(log, "refused the direct tunnel transport (it answered %s" % answered)
        wait_log(log, "Use --tunnel-transport auto or websocket")
        time.sleep(1)
        L.eq(cluster()["tunnel_registered"], False, "no tunnel with direct through " + front)
        L.check(proc.poll() is None, "the agent keeps running (and retrying)")
        proc.terminate()
        proc.wait(timeout=15)


@t.test
def test_auto_through_http_proxy_falls_back():
    for front in ("alpn", "noalpn"):
        proc, log = run_agent("auto", HAP[front])
        L.wait_for(lambda: cluster()["tunnel_registered"], timeout=30, interval=0.1,
                   what="the tunnel of k through %s (agent log: %s)" % (front, read(log)[-1500:]))
        L.eq(cluster()["tunnel"]["transport"], "websocket", "tunnel.transport through " + front)
        wait_log(log, "using the WebSocket transport")
        L.eq(echo(), (200, "K"), "a request through the proxied WebSocket tunnel")
        stop_agent(proc)


def alpn_connect(protocols, cert=None):
    ctx = L.tls_context(cert)
    ctx.set_alpn_protocols(protocols)
    raw = socket.create_connection(("127.0.0.1", SRV.conn_port), timeout=15)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_frames(s, timeout=10):
    """Reads until the peer ends; returns the bytes."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ssl.SSLError, OSError):
        pass
    return data


def goaway_of(data):
    """The preface, then (type, payload) frames; returns the GOAWAY's (code, debug)."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    L.check(data.startswith(preface), "the HTTP/2 client preface first: %r" % data[:40])
    p = len(preface)
    while p + 9 <= len(data):
        length = int.from_bytes(data[p:p + 3], "big")
        ftype = data[p + 3]
        payload = data[p + 9:p + 9 + length]
        p += 9 + length
        if ftype == 7:
            _, code = struct.unpack(">II", payload[:8])
            return code, payload[8:].decode("utf-8", "replace")
    raise L.TestFailure("no GOAWAY in %r" % data[:200])


@t.test
def test_connector_http11_clients_unchanged():
    for protos in (None, ["h2", "http/1.1"], ["http/1.1"]):
        ctx = L.tls_context()
        if protos:
            ctx.set_alpn_protocols(protos)
        raw = socket.create_connection(("127.0.0.1", SRV.conn_port), timeout=15)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        L.eq(s.selected_alpn_protocol(), None, "ALPN answer to %r" % (protos,))
        s.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = read_frames(s)
        L.check(head.startswith(b"HTTP/1.1 200"), "GET /1.0/status with ALPN %r: %r"
                % (protos, head[:80]))
        s.close()


@t.test
def test_direct_refusals():
    stranger = L.Cert("stranger")
    for cert, why in ((None, "a client certificate of an enrolled cluster is required"),
                      (stranger, "this client certificate is not enrolled")):
        s = alpn_connect(["lxcm-tunnel.v2", "http/1.1"], cert)
        L.eq(s.selected_alpn_protocol(), "lxcm-tunnel.v2", "ALPN selected")
        code, debug = goaway_of(read_frames(s))
        L.eq((code, debug), (0xc, why), "GOAWAY of a refused direct tunnel")
        s.close()
    L.check(SRV.alive(), "the server survived the refusals")


@t.test
def test_direct_enrolled_gets_preface():
    cert = L.agent_cert(AGENT_DIR)
    s = alpn_connect(["lxcm-tunnel.v2"], cert)
    s.settimeout(10)
    data = b""
    while len(data) < 24 + 9:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    L.check(data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "preface: %r" % data[:40])
    L.eq(data[24 + 3], 4, "a SETTINGS frame after the preface")
    L.wait_for(lambda: cluster()["tunnel_registered"], timeout=10, interval=0.1,
               what="the hand-made direct tunnel registered")
    L.eq(cluster()["tunnel"]["transport"], "direct", "its transport")
    # Junk instead of HTTP/2: cut off, unregistered, the server lives on.
    s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 4)
    read_frames(s)
    s.close()
    L.wait_for(lambda: not cluster()["tunnel_registered"], timeout=10, interval=0.1,
               what="the junk-sending tunnel to go away")
    L.check(SRV.alive(), "the server survived the junk")


@t.test
def test_removed_cluster_direct_agent_told():
    proc, log = run_agent("direct")
    L.wait_for(lambda: cluster()["tunnel_registered"], timeout=30, interval=0.1,
               what="the tunnel of k (agent log: %s)" % log)
    r = SRV.mgmt("DELETE", "/1.0/remote-cluster/k")
    L.eq(r.status, 200, "DELETE the cluster")
    wait_log(log, "this cluster is not enrolled")
    L.check(proc.poll() is None, "the agent keeps running")
    proc.terminate()
    proc.wait(timeout=15)


if __name__ == "__main__":
    t.main()
