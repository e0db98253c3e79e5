#!/usr/bin/env python3
"""X-Forwarded-For is ignored unless it comes from a --trusted-proxy.

The client address the server uses (in Forwarded / X-Forwarded-For towards
the cluster, for the join rate limit, in logs) is the socket's address, or,
when the socket's address is in a --trusted-proxy range, the right-most
X-Forwarded-For entry that is not itself a trusted proxy. Checked against a
fake upstream that echoes the headers it got through a real agent.

Server and agent only (no LXD). Python standard library only.
"""

import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_trusted_proxy")

UP = None
PLAIN = None      # no --trusted-proxy
TRUSTING = None   # --trusted-proxy 127.0.0.0/8,::1
AGENTS = []


def start_server(*args):
    srv = L.Server("--join-rate", "0.001", "--join-burst", "3", *args).start()
    adir = os.path.join(L.tmpdir("agent"), "k")
    L.agent("join", srv.create_token("k"), "--data-dir", adir, "--upstream", UP.url,
            check_rc=0, timeout=60)
    AGENTS.append(L.spawn_agent("run", "--data-dir", adir, log_path=adir + ".log"))
    L.wait_for(lambda: srv.mgmt("GET", "/1.0/remote-cluster/k").metadata.get(
        "tunnel_registered"), timeout=60, what="the tunnel of k")
    return srv


def send(port, method, path, headers, body=None, token=None):
    """One request with headers given as a list (names may repeat)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                       context=L.tls_context())
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


def seen_by_cluster(srv, xff_headers):
    """The X-Forwarded-For and Forwarded headers the upstream received."""
    st, raw = send(srv.mgmt_port, "GET", "/1.0/remote-cluster/k/tunnel/1.0/echo",
                   [("X-Forwarded-For", v) for v in xff_headers], token=srv.token)
    L.eq(st, 200, "proxied echo: %r" % raw[:200])
    hdrs = json.loads(raw)["metadata"]["headers"]
    xff = [v for k, v in hdrs if k.lower() == "x-forwarded-for"]
    fwd = [v for k, v in hdrs if k.lower() == "forwarded"]
    L.eq(len(xff), 1, "one X-Forwarded-For reaches the cluster: %r" % xff)
    L.eq(len(fwd), 1, "one Forwarded reaches the cluster: %r" % fwd)
    return xff[0], fwd[0]


def join_status(srv, xff):
    st, _ = send(srv.conn_port, "POST", "/1.0/remote-cluster",
                 [("X-Forwarded-For", xff)] if xff else [],
                 body={"cluster_name": "x", "cluster_certificate": "junk", "token": "junk"})
    return st


@t.setup
def setup():
    global UP, PLAIN, TRUSTING
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    UP = U.FakeUpstream("k").start()
    PLAIN = start_server()
    TRUSTING = start_server("--trusted-proxy", "127.0.0.0/8,::1",
                            "--trusted-proxy", "192.0.2.0/24")


@t.test
def test_bad_values_refused():
    for bad in ("10.0.0.0/33", "1.2.3.4,", "", "example.com", "10.0.0.0/8,,::1"):
        r = L.run([L.binary("lxcm-server"), "--trusted-proxy", bad, "--data-dir",
                   L.tmpdir("bad")], timeout=30)
        L.eq(r.returncode, 2, "exit status for --trusted-proxy %r" % bad)
        L.check("trusted-proxy" in r.stderr, "the error names the flag: %r" % r.stderr)


@t.test
def test_ignored_without_trusted_proxy():
    xff, fwd = seen_by_cluster(PLAIN, ["203.0.113.7"])
    L.eq(xff, "127.0.0.1", "X-Forwarded-For the cluster sees")
    L.check(fwd.startswith('for="127.0.0.1"'), "Forwarded the cluster sees: %r" % fwd)
    xff, _ = seen_by_cluster(PLAIN, ["203.0.113.7", "198.51.100.2"])
    L.eq(xff, "127.0.0.1", "X-Forwarded-For with two headers")


@t.test
def test_believed_from_trusted_proxy():
    cases = [
        ([], "127.0.0.1"),
        (["203.0.113.7"], "203.0.113.7"),
        # Right-most untrusted entry; trusted hops (127.0.0.5, 192.0.2.9) skipped,
        # anything left of the first untrusted one is the client's word.
        (["198.51.100.1, 203.0.113.7, 192.0.2.9, 127.0.0.5"], "203.0.113.7"),
        (["198.51.100.1", "203.0.113.9"], "203.0.113.9"),
        (["garbage"], "127.0.0.1"),
        (["203.0.113.7, garbage"], "127.0.0.1"),
        (["203.0.113.7, unknown, 127.0.0.1"], "127.0.0.1"),
        (["127.0.0.9, 192.0.2.1"], "127.0.0.9"),
        (["::ffff:203.0.113.8"], "203.0.113.8"),
        (["[2001:db8::5]"], "2001:db8::5"),
    ]
    for headers, want in cases:
        xff, fwd = seen_by_cluster(TRUSTING, headers)
        L.eq(xff, want, "X-Forwarded-For the cluster sees for %r" % headers)
        q = "[%s]" % want if ":" in want else want
        L.check(fwd.startswith('for="%s"' % q), "Forwarded for %r: %r" % (headers, fwd))


@t.test
def test_join_rate_limit_keyed_on_client():
    # Without a trusted proxy, every join from this socket address shares one
    # bucket whatever X-Forwarded-For says.
    # (The agent's join in setup took one of the burst of 3.)
    got = [join_status(PLAIN, "203.0.113.%d" % i) for i in range(1, 4)]
    L.eq(got[2], 429, "third join from the same socket address (XFF varies): %r" % got)
    # Behind a trusted proxy each client has its own bucket.
    got = [join_status(TRUSTING, "203.0.113.1") for _ in range(4)]
    L.check(all(s != 429 for s in got[:3]), "first three joins of a client: %r" % got)
    L.eq(got[3], 429, "fourth join of the same client")
    L.check(join_status(TRUSTING, "203.0.113.2") != 429, "another client is not limited")
    L.eq(join_status(TRUSTING, "203.0.113.1"), 429, "the first client still is")


if __name__ == "__main__":
    t.main()
