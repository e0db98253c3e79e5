#!/usr/bin/env python3
"""--proxy-protocol-from: lxcm-server behind Debian's real HAProxy in TCP mode.

HAProxy runs from the test (a generated config in a temporary directory,
in the foreground, not as a system service) with two TCP frontends: one
sends PROXY protocol v2 (`send-proxy-v2`) to the management listener, the
other v1 (`send-proxy`) to the connector, both from the source address
127.0.0.2, the only one in the server's --proxy-protocol-from. Clients
choose their own loopback source address (127.0.0.x) by binding, so the
address HAProxy puts in the header is known and differs from HAProxy's.

Checked: through HAProxy a request reaches a cluster (a real agent whose
tunnel itself goes through HAProxy's v1 frontend) and the cluster sees the
client's address in X-Forwarded-For and Forwarded; the join rate limit and
the logs use it; HAProxy's health checks (v2 LOCAL) are accepted. Directly
from 127.0.0.2 a connection without a header is closed, one with a header
made here is served with the header's address; from any other source a
header is refused while plain TLS is served as before.

Server, agent and HAProxy only (no LXD). Python standard library only.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_proxy_protocol")

LB = "127.0.0.2"     # HAProxy's source towards the server: listed
CLIENT = "127.0.0.5"  # a client of HAProxy
OTHER = "127.0.0.7"  # a direct client, not listed

UP = None
SRV = None
HAP = {}  # "mgmt" / "conn": HAProxy's frontend ports; "proc", "log"

HAPROXY_CFG = """\
global
    log stdout format raw local0 info
    maxconn 200
    nbthread 1
    stats socket {stats} mode 600 level admin

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend mgmt_in
    bind 127.0.0.1:{mgmt_front}
    default_backend mgmt

backend mgmt
    # Health checks: v2 LOCAL header, TLS, GET /1.0/status answered 200.
    option httpchk GET /1.0/status
    http-check expect status 200
    server lxcm 127.0.0.1:{mgmt_port} source {lb} send-proxy-v2 check inter 500ms check-ssl verify none

frontend conn_in
    bind 127.0.0.1:{conn_front}
    default_backend conn

backend conn
    option httpchk GET /1.0/status
    http-check expect status 200
    server lxcm 127.0.0.1:{conn_port} source {lb} send-proxy check inter 500ms check-ssl verify none
"""


def start_haproxy(srv):
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(exe, os.X_OK):
        raise L.TestFailure("haproxy is not installed (scripts/install-deps.sh installs it)")
    d = L.tmpdir("haproxy")
    cfg = os.path.join(d, "haproxy.cfg")
    HAP["stats"] = os.path.join(d, "stats.sock")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(mgmt_front=HAP["mgmt"], conn_front=HAP["conn"],
                                   mgmt_port=srv.mgmt_port, conn_port=srv.conn_port, lb=LB,
                                   stats=HAP["stats"]))
    r = L.run([exe, "-c", "-f", cfg], timeout=30)
    L.eq(r.returncode, 0, "haproxy -c on the generated config: %s%s" % (r.stdout, r.stderr))
    HAP["log"] = os.path.join(d, "haproxy.log")
    logf = open(HAP["log"], "ab")
    try:
        # -db: foreground, no daemon; stopped with the other processes at exit.
        HAP["proc"] = L.spawn([exe, "-db", "-f", cfg], stdout=logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, cwd=d)
    finally:
        logf.close()

    def listening():
        if HAP["proc"].poll() is not None:
            raise L.TestFailure("haproxy exited: " + read(HAP["log"])[-2000:])
        for port in (HAP["mgmt"], HAP["conn"]):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    L.wait_for(listening, timeout=30, what="haproxy's frontends")


def haproxy_stat(backend, server):
    """The row of HAProxy's "show stat" for backend/server, as a dict."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(HAP["stats"])
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    lines = data.decode().splitlines()
    names = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(names, line.split(",")))
        if row.get("pxname") == backend and row.get("svname") == server:
            return row
    raise L.TestFailure("no %s/%s in haproxy's stats: %r" % (backend, server, data[:500]))


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def server_log():
    return read(SRV.log_path)


def https(port, method, path, source, headers=(), body=None, token=None):
    """One HTTPS request from the given loopback source address."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                       context=L.tls_context(), source_address=(source, 0))
    try:
        conn.putrequest(method, path)
        if token:
            conn.putheader("Authorization", "Bearer " + token)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        for k, v in headers:
            conn.putheader(k, v)
        conn.endheaders(data)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def echo_seen(port, source, prefix=None):
    """The X-Forwarded-For and Forwarded the cluster received for an echo."""
    path = "/1.0/remote-cluster/k/tunnel/1.0/echo"
    if prefix is None:
        st, raw = https(port, "GET", path, source, token=SRV.token)
    else:
        r = raw_https(port, source, prefix, "GET", path, token=SRV.token)
        st, raw = r.status, r.raw
    L.eq(st, 200, "proxied echo: %r" % raw[:300])
    hdrs = json.loads(raw)["metadata"]["headers"]
    xff = [v for k, v in hdrs if k.lower() == "x-forwarded-for"]
    fwd = [v for k, v in hdrs if k.lower() == "forwarded"]
    L.eq(len(xff), 1, "one X-Forwarded-For: %r" % xff)
    L.eq(len(fwd), 1, "one Forwarded: %r" % fwd)
    return xff[0], fwd[0]


def dial(port, source, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def raw_https(port, source, prefix, method, path, token=None):
    """prefix (a PROXY header made here), then TLS and one request."""
    s = dial(port, source)
    try:
        s.sendall(prefix)
        tls = L.tls_context().wrap_socket(s, server_hostname=None)
        req = "%s %s HTTP/1.1\r\nHost: lxcm\r\nConnection: close\r\n" % (method, path)
        if token:
            req += "Authorization: Bearer %s\r\n" % token
        tls.sendall((req + "\r\n").encode())
        return L.read_http_response(tls)
    finally:
        s.close()


def closed_without_tls(port, source, prefix=b""):
    """True when the server closes the connection instead of finishing TLS."""
    s = dial(port, source)
    try:
        if prefix:
            s.sendall(prefix)
        try:
            tls = L.tls_context().wrap_socket(s, server_hostname=None)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError):
            return True
        tls.close()
        return False
    finally:
        s.close()


def v1(src, sport=40000, dport=443):
    fam, dst = ("TCP6", "::1") if ":" in src else ("TCP4", "127.0.0.1")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src=None, dst="127.0.0.1", sport=40000, dport=443, tlvs=b""):
    """v2 PROXY over TCP4 (or LOCAL when src is None)."""
    if src is None:
        return V2_SIG + b"\x20\x00" + struct.pack("!H", 0)
    block = (socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
             + tlvs)
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(block)) + block


def wait_log(needle, timeout=10):
    return L.wait_for(lambda: needle in server_log(), timeout=timeout,
                      what="%r in the server log" % needle)


@t.setup
def setup():
    global UP, SRV
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    HAP["mgmt"], HAP["conn"] = L.free_port(), L.free_port()
    while HAP["conn"] == HAP["mgmt"]:
        HAP["conn"] = L.free_port()
    UP = U.FakeUpstream("k").start()
    # Join tokens carry HAProxy's connector frontend: the agent goes through it.
    SRV = L.Server("--proxy-protocol-from", LB + "/32",
                   "--connector-public-address", "127.0.0.1:%d" % HAP["conn"],
                   "--join-rate", "0.001", "--join-burst", "3",
                   "--log-level", "debug").start()
    start_haproxy(SRV)
    adir = os.path.join(L.tmpdir("agent"), "k")
    L.agent("join", SRV.create_token("k"), "--data-dir", adir, "--upstream", UP.url,
            check_rc=0, timeout=60)
    L.spawn_agent("run", "--data-dir", adir, log_path=adir + ".log")
    L.wait_for(lambda: SRV.mgmt("GET", "/1.0/remote-cluster/k").metadata.get(
        "tunnel_registered"), timeout=60, what="the tunnel of k")


@t.test
def test_bad_values_refused():
    for bad in ("10.0.0.0/33", "1.2.3.4,", "", "example.com", "10.0.0.0/8,,::1"):
        r = L.run([L.binary("lxcm-server"), "--proxy-protocol-from", bad, "--data-dir",
                   L.tmpdir("bad")], timeout=30)
        L.eq(r.returncode, 2, "exit status for --proxy-protocol-from %r" % bad)
        L.check("proxy-protocol-from" in r.stderr, "the error names the flag: %r" % r.stderr)
    r = L.run([L.binary("lxcm-server"), "--help"], timeout=30)
    L.check("--proxy-protocol-from" in r.stdout, "--help shows the flag")


@t.test
def test_connector_through_haproxy_v1():
    # The agent's join and tunnel went through HAProxy's v1 frontend: the
    # server saw the agent's own address (127.0.0.1), not HAProxy's.
    log = server_log()
    L.check("cluster k joined from 127.0.0.1 " in log, "join logged with the agent's address")
    L.check("joined from %s" % LB not in log, "never HAProxy's address")
    L.check("connector: %s relays 127.0.0.1 (PROXY protocol v1)" % LB in log,
            "v1 header from HAProxy on the connector")


@t.test
def test_management_through_haproxy_v2():
    xff, fwd = echo_seen(HAP["mgmt"], CLIENT)
    L.eq(xff, CLIENT, "X-Forwarded-For the cluster sees through HAProxy")
    L.check(fwd.startswith('for="%s"' % CLIENT), "Forwarded through HAProxy: %r" % fwd)
    xff, _ = echo_seen(HAP["mgmt"], "127.0.0.6")
    L.eq(xff, "127.0.0.6", "another client of HAProxy")
    L.check("management: %s relays %s (PROXY protocol v2)" % (LB, CLIENT) in server_log(),
            "v2 header from HAProxy on the management listener")


@t.test
def test_join_rate_limit_keyed_on_header_address():
    # Every join reaches the server from 127.0.0.2 (HAProxy); the limit is
    # per client all the same. Burst 3, then 429 for that client only.
    body = {"cluster_name": "x", "cluster_certificate": "junk", "token": "junk"}
    got = [https(HAP["conn"], "POST", "/1.0/remote-cluster", CLIENT, body=body)[0]
           for _ in range(4)]
    L.check(all(s != 429 for s in got[:3]), "first three joins of a client: %r" % got)
    L.eq(got[3], 429, "fourth join of the same client")
    L.check(https(HAP["conn"], "POST", "/1.0/remote-cluster", "127.0.0.6", body=body)[0] != 429,
            "another client behind the same HAProxy is not limited")
    wait_log("join from %s rate limited" % CLIENT)
    L.check("join from %s rate limited" % LB not in server_log(), "never HAProxy's address")


@t.test
def test_haproxy_health_checks_accepted():
    # HAProxy's checks send a PROXY header (v2: LOCAL), then TLS and
    # GET /1.0/status: the server takes them, with HAProxy's own address.
    for backend in ("mgmt", "conn"):
        row = L.wait_for(lambda: (lambda r: r if r.get("check_status") == "L7OK" else None)(
            haproxy_stat(backend, "lxcm")), timeout=30, what="an L7OK check of " + backend)
        L.eq(row["status"], "UP", "the state of %s in HAProxy" % backend)
    log = server_log()
    L.check("management: %s relays %s (PROXY protocol v2)" % (LB, LB) in log,
            "a LOCAL health check keeps HAProxy's own address")
    # v1 checks carry the check connection's own addresses.
    L.check("connector: %s relays %s (PROXY protocol v1)" % (LB, LB) in log,
            "v1 health checks")
    L.check("closing %s" % LB not in log, "no connection from HAProxy refused:\n%s" % log[-3000:])


@t.test
def test_listed_source_without_header_closed():
    for port, name in ((SRV.mgmt_port, "management"), (SRV.conn_port, "connector")):
        L.check(closed_without_tls(port, LB), "%s: TLS without a header from %s" % (name, LB))
        wait_log("%s: closing %s: no valid PROXY protocol header" % (name, LB))
    # A header cut short, then nothing: closed at the header timeout or EOF.
    s = dial(SRV.mgmt_port, LB)
    s.sendall(v2("198.51.100.1")[:20])
    s.shutdown(socket.SHUT_WR)
    s.settimeout(15)
    L.eq(s.recv(1), b"", "a truncated header: closed")
    s.close()
    wait_log("management: closing %s: the connection ended inside its PROXY protocol header"
             % LB)


@t.test
def test_listed_source_with_header_made_here():
    xff, fwd = echo_seen(SRV.mgmt_port, LB, prefix=v2("198.51.100.20", tlvs=b"\x04\x00\x01z"))
    L.eq(xff, "198.51.100.20", "v2 with a TLV, straight from the listed source")
    xff, _ = echo_seen(SRV.mgmt_port, LB, prefix=v1("203.0.113.30"))
    L.eq(xff, "203.0.113.30", "v1, straight from the listed source")
    xff, _ = echo_seen(SRV.mgmt_port, LB, prefix=v1("2001:db8::30"))
    L.eq(xff, "2001:db8::30", "v1 TCP6")
    xff, _ = echo_seen(SRV.mgmt_port, LB, prefix=v2(None))
    L.eq(xff, LB, "v2 LOCAL keeps the socket's address")
    xff, _ = echo_seen(SRV.mgmt_port, LB, prefix=b"PROXY UNKNOWN\r\n")
    L.eq(xff, LB, "v1 UNKNOWN keeps the socket's address")
    r = raw_https(SRV.conn_port, LB, v1("203.0.113.31"), "GET", "/1.0/status")
    L.eq(r.status, 200, "the connector behind a header made here")


@t.test
def test_header_from_other_source_refused():
    for port, name in ((SRV.mgmt_port, "management"), (SRV.conn_port, "connector")):
        for prefix in (v1("203.0.113.66"), v2("203.0.113.66"), v2(None)):
            L.check(closed_without_tls(port, OTHER, prefix),
                    "%s: a header from %s must not be believed" % (name, OTHER))
        wait_log("%s: closing %s: a PROXY protocol header from a source not in "
                 "--proxy-protocol-from" % (name, OTHER))
    L.check("203.0.113.66" not in server_log(), "the spoofed address is never used")
    # Without a header the same source is served as before.
    xff, _ = echo_seen(SRV.mgmt_port, OTHER)
    L.eq(xff, OTHER, "a direct client outside the list")
    st, _ = https(SRV.conn_port, "GET", "/1.0/status", OTHER)
    L.eq(st, 200, "the connector, directly")


if __name__ == "__main__":
    t.main()
