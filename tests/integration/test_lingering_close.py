#!/usr/bin/env python3
"""The lingering close after an early answer, on both listeners.

A client that sends its whole request body before reading anything
(Python's http.client, many SDKs) must receive an answer the server gave
before reading that body (413, 401, 403, 431), not a connection reset: the
server reads and drops the rest for a bounded time and number of bytes
before it closes (http_server.c, hc_linger). Past the byte bound (16 MiB) a
client that never stops sending is cut.

Server only (no agent, CLI or LXD).
"""

import http.client
import json
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_lingering_close")

S = None
TOKEN_PATH = "/1.0/remote-cluster-join-token"
MIB = 1024 * 1024


@t.setup
def setup():
    global S
    S = L.Server("--join-rate", "1000", "--join-burst", "1000").start()


def big_json(size=8 * MIB):
    """A valid JSON object of about size bytes."""
    head = b'{"cluster_name":"cbig","description":"'
    return head + b"a" * (size - len(head) - 2) + b'"}'


def post(port, path, body, headers=None, chunked=False, timeout=60):
    """http.client POST: the whole body is sent before the answer is read."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                    context=L.tls_context())
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if chunked:
            pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
            c.request("POST", path, body=iter(pieces), headers=h, encode_chunked=True)
        else:
            c.request("POST", path, body=body, headers=h)
        r = c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(raw)
    finally:
        c.close()


def expect(got, code, what):
    status, headers, body = got
    L.eq(status, code, what)
    L.check_envelope_error(body, code, what)
    L.eq(headers.get("connection", "").lower(), "close", what + ": Connection: close")


@t.test
def test_413_management_8mib_json():
    auth = {"Authorization": "Bearer " + S.token}
    expect(post(S.mgmt_port, TOKEN_PATH, big_json(), auth), 413,
           "management: 8 MiB JSON (Content-Length) to a 1 MiB endpoint")
    expect(post(S.mgmt_port, TOKEN_PATH, big_json(), auth, chunked=True), 413,
           "management: 8 MiB JSON (chunked) to a 1 MiB endpoint")


@t.test
def test_413_connector_8mib_json():
    expect(post(S.conn_port, "/1.0/remote-cluster", big_json()), 413,
           "connector: 8 MiB JSON (Content-Length) to the join endpoint")
    expect(post(S.conn_port, "/1.0/remote-cluster", big_json(), chunked=True), 413,
           "connector: 8 MiB JSON (chunked) to the join endpoint")


@t.test
def test_401_403_before_the_body():
    expect(post(S.mgmt_port, TOKEN_PATH, big_json()), 401,
           "management: 8 MiB without a token")
    expect(post(S.mgmt_port, TOKEN_PATH, big_json(), {"Authorization": "Bearer nope"}), 403,
           "management: 8 MiB with a wrong token")
    # The connector refuses a heartbeat without an enrolled certificate.
    expect(post(S.conn_port, "/1.0/remote-cluster/status", big_json()), 403,
           "connector: 8 MiB status without a certificate")


@t.test
def test_431_then_body():
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        expect(post(port, TOKEN_PATH, big_json(), {"X-Big": "a" * (70 * 1024)}), 431,
               name + ": a header over 64 KiB, then 8 MiB of body")


@t.test
def test_no_lingering_past_the_byte_cap():
    """A client that never stops sending is cut after about 16 MiB."""
    raw = socket.create_connection(("127.0.0.1", S.mgmt_port), timeout=30)
    s = L.tls_context().wrap_socket(raw)
    sent = 0
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (
            TOKEN_PATH.encode(), 1 << 40))
        chunk = b"x" * 65536
        while sent < 256 * MIB:
            s.sendall(chunk)
            sent += len(chunk)
        raise L.TestFailure("the server took 256 MiB after its answer")
    except (OSError, ssl.SSLError):
        pass
    finally:
        s.close()
    L.log("cut after %d MiB" % (sent // MIB))
    L.check(12 * MIB <= sent <= 64 * MIB, "cut after %d MiB (cap 16 MiB plus buffers)" % (sent // MIB))
    L.eq(S.mgmt("GET", "/1.0/status").status, 200, "the server still answers")


if __name__ == "__main__":
    t.main()
