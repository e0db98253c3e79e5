#!/usr/bin/env python3
"""Bad input on both listeners of lxcm-server, each with its exact status.

Server only (no agent, CLI or LXD): join tokens and certificates are made
here, requests are sent with http.client or raw TLS sockets. Also checks the
LXD error envelope of MICROCLOUD-PROTOCOL.md and that enrolled clusters and
pending join tokens survive a restart of the server.
"""

import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_connector_bad_input")

# The main server: joins are not rate limited here (that has its own server).
S = None
C1 = None                   # certificate of the enrolled cluster c1
EXPIRING = {}               # a token made at setup that expires a few seconds later

TOKEN_PATH = "/1.0/remote-cluster-join-token"


def expect(r, code, what):
    """r has HTTP status code and exactly the error envelope for it."""
    if r.status != code:
        raise L.TestFailure("%s: HTTP %d, want %d: %r" % (what, r.status, code, r))
    L.check_envelope_error(r.json, code, what)
    ctype = r.headers.get("content-type", "")
    L.check(ctype.startswith("application/json"),
            "%s: Content-Type %r, want application/json" % (what, ctype))


def cluster_names():
    r = S.mgmt("GET", "/1.0/remote-cluster")
    L.eq(r.status, 200, "cluster list status")
    return sorted(c["name"] if isinstance(c, dict) else c.rsplit("/", 1)[-1]
                  for c in r.metadata)


def token_names():
    r = S.mgmt("GET", TOKEN_PATH)
    L.eq(r.status, 200, "token list status")
    return sorted(x["cluster_name"] for x in r.metadata)


@t.setup
def setup():
    global S, C1
    S = L.Server("--join-rate", "1000", "--join-burst", "1000").start()
    C1 = S.enroll("c1")
    exp = int(time.time()) + 5
    EXPIRING["at"] = exp
    EXPIRING["token"] = S.create_token("cexp", expiry=L.rfc3339(exp))


@t.test
def test_success_envelope():
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        r = L.request(port, "GET", "/1.0/status")
        L.eq(r.status, 200, name + " /1.0/status")
        L.check_envelope_sync(r.json, name + " /1.0/status")
        L.eq(r.json["metadata"], None, name + " /1.0/status metadata")
    r = S.mgmt("GET", "/1.0/remote-cluster")
    L.check_envelope_sync(r.json, "cluster list")


@t.test
def test_admin_token_file():
    st = os.stat(S.token_file)
    L.eq(st.st_mode & 0o777, 0o600, "admin.token mode")
    L.check(len(S.token) >= 32, "admin token too short: %d bytes" % len(S.token))
    L.eq(S.mgmt("GET", "/1.0/remote-cluster").status, 200, "the admin token works")


@t.test
def test_management_unauthenticated_401():
    for method, path in (("GET", "/1.0/remote-cluster"), ("GET", "/1.0/remote-cluster/c1"),
                         ("GET", TOKEN_PATH), ("DELETE", "/1.0/remote-cluster/c1")):
        expect(S.mgmt(method, path, token=None), 401, "%s %s without a token" % (method, path))
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "x"}, token=None), 401,
           "token create without a token")
    # The public endpoints stay public.
    r = S.mgmt("GET", "/1.0", token=None)
    L.eq(r.status, 200, "GET /1.0 without a token")
    L.eq(r.metadata["auth"], "untrusted", "GET /1.0 auth without a token")
    L.eq(S.mgmt("GET", "/1.0").metadata["auth"], "trusted", "GET /1.0 auth with the token")


@t.test
def test_management_wrong_bearer_403():
    wrong = "lxcm_" + "0" * 64
    expect(S.mgmt("GET", "/1.0/remote-cluster", token=wrong), 403, "wrong bearer")
    expect(S.mgmt("GET", "/1.0/remote-cluster", token=S.token + "x"), 403, "bearer + suffix")
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "x"}, token=wrong), 403,
           "token create with a wrong bearer")
    expect(S.mgmt("GET", "/1.0/remote-cluster",
                  headers={"Authorization": "Basic " + S.token}, token=None), 403,
           "Basic instead of Bearer")
    L.check("x" not in token_names(), "a refused token create must not create anything")


@t.test
def test_join_token_format():
    tok = S.create_token("cfmt", description="format check")
    d = L.decode_join_token(tok)
    for k in ("server_name", "fingerprint", "addresses", "secret", "expires_at"):
        L.check(k in d, "token field %s missing: %r" % (k, d))
    L.eq(d["server_name"], "cfmt", "server_name")
    L.eq(d["fingerprint"], L.server_fingerprint(S.conn_port), "token fingerprint")
    L.eq(d["fingerprint"], d["fingerprint"].lower(), "fingerprint is lowercase")
    L.check("127.0.0.1:%d" % S.conn_port in d["addresses"], "addresses %r" % d["addresses"])
    L.check(isinstance(d["secret"], str) and len(d["secret"]) >= 32, "secret %r" % d["secret"])
    left = L.parse_rfc3339(d["expires_at"]) - time.time()
    L.check(23 * 3600 < left <= 24 * 3600 + 60, "default expiry is 24 h, got %.0f s" % left)
    listed = [x for x in S.mgmt("GET", TOKEN_PATH).metadata if x["cluster_name"] == "cfmt"]
    L.eq(len(listed), 1, "token list entries for cfmt")
    L.eq(listed[0]["description"], "format check", "listed description")
    L.check("secret" not in listed[0] and "token" not in listed[0],
            "token list must not show secrets: %r" % listed[0])


@t.test
def test_join_and_status_ok():
    cert = L.Cert("cok")
    r = S.join("cok", S.create_token("cok"), cert)
    L.eq(r.status, 200, "join")
    L.check_envelope_sync(r.json, "join")
    L.eq(r.metadata, {}, "join metadata")
    r = S.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 4}, cert=cert)
    L.eq(r.status, 200, "status")
    L.check_envelope_sync(r.json, "status")
    n = r.metadata["next_update_in_seconds"]
    L.check(isinstance(n, int) and not isinstance(n, bool) and n > 0,
            "next_update_in_seconds must be a positive number, got %r" % (n,))
    L.check(isinstance(r.metadata["cluster_manager_address"], str),
            "cluster_manager_address %r" % (r.metadata,))
    c = S.mgmt("GET", "/1.0/remote-cluster/cok").metadata
    L.eq(c["cpu_total_count"], 4, "cpu_total_count after a heartbeat")
    L.eq(c["cluster_certificate"].strip(), cert.pem.strip(), "stored certificate")
    L.eq(c["status"], "ACTIVE", "status")
    L.check("cok" not in token_names(), "a used token must leave the token list")


@t.test
def test_reused_token_404():
    tok = S.create_token("creuse")
    L.eq(S.join("creuse", tok, L.Cert("creuse")).status, 200, "first join")
    expect(S.join("creuse", tok, L.Cert("creuse2")), 404, "join with a used token")


@t.test
def test_wrong_secret_403():
    tok = S.create_token("csecret")
    d = L.decode_join_token(tok)
    d["secret"] = "f" * len(d["secret"]) if d["secret"] != "f" * len(d["secret"]) else "0" * 64
    expect(S.join("csecret", L.encode_join_token(d), L.Cert("csecret")), 403,
           "join with a wrong secret")
    d["secret"] = ""
    r = S.join("csecret", L.encode_join_token(d), L.Cert("csecret"))
    L.check(r.status in (400, 403), "empty secret: %r" % r)
    L.check(r.json is not None and r.json.get("type") == "error", "empty secret: %r" % r)
    L.check("csecret" not in cluster_names(), "a wrong secret must not enroll")
    # A token for another name does not enroll this name either.
    other = L.decode_join_token(S.create_token("cother"))
    other_tok = L.encode_join_token(other)
    expect(S.join("csecret", other_tok, L.Cert("x")), 403, "join with another name's token")


@t.test
def test_unknown_cluster_404():
    d = L.decode_join_token(S.create_token("cknown"))
    d["server_name"] = "nosuchcluster"
    expect(S.join("nosuchcluster", L.encode_join_token(d), L.Cert("nosuch")), 404,
           "join a name without a token")


@t.test
def test_duplicate_cluster_409():
    # c1 is enrolled: no token can be made for that name.
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "c1"}), 409, "token for an enrolled name")
    # A second token for a name that has one already.
    S.create_token("cdup")
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "cdup"}), 409, "second token for a name")
    # The same certificate under another name, with a valid token for it.
    tok = S.create_token("cdup2")
    expect(S.join("cdup2", tok, C1), 409, "join with c1's certificate under another name")
    L.check("cdup2" not in cluster_names(), "the duplicate certificate must not enroll")


@t.test
def test_token_revoke():
    tok = S.create_token("crevoke")
    r = S.mgmt("DELETE", TOKEN_PATH + "/crevoke")
    L.eq(r.status, 200, "token revoke")
    L.check("crevoke" not in token_names(), "revoked token still listed")
    expect(S.join("crevoke", tok, L.Cert("crevoke")), 404, "join with a revoked token")
    expect(S.mgmt("DELETE", TOKEN_PATH + "/crevoke"), 404, "revoke twice")
    expect(S.mgmt("DELETE", TOKEN_PATH + "/nosuch"), 404, "revoke an unknown token")


@t.test
def test_status_without_client_cert_403():
    expect(S.conn("POST", "/1.0/remote-cluster/status", {}), 403, "status without a certificate")
    expect(S.conn("DELETE", "/1.0/remote-cluster"), 403, "leave without a certificate")
    L.check("c1" in cluster_names(), "c1 must still be there")


@t.test
def test_status_unknown_cert_403():
    stranger = L.Cert("stranger")
    expect(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=stranger), 403,
           "status with an unknown certificate")
    # Refused before the body is looked at: even a malformed body gets 403.
    expect(S.conn("POST", "/1.0/remote-cluster/status", "{bad", cert=stranger), 403,
           "status with an unknown certificate and a bad body")
    expect(S.conn("DELETE", "/1.0/remote-cluster", cert=stranger), 403,
           "leave with an unknown certificate")
    L.check("c1" in cluster_names(), "c1 must still be there")


@t.test
def test_malformed_json_400():
    bad = ["{not json", "[1,2", "", "\"just a string\"", "[]", "{\"cluster_name\": }"]
    for body in bad:
        expect(S.mgmt("POST", TOKEN_PATH, body.encode(),
                      headers={"Content-Type": "application/json"}), 400,
               "token create with body %r" % body)
        expect(S.conn("POST", "/1.0/remote-cluster", body.encode(),
                      headers={"Content-Type": "application/json"}), 400,
               "join with body %r" % body)
    expect(S.conn("POST", "/1.0/remote-cluster/status", b"{not json", cert=C1,
                  headers={"Content-Type": "application/json"}), 400,
           "status heartbeat with malformed JSON")
    expect(S.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": "four"}, cert=C1),
           400, "status heartbeat with a field of the wrong type")
    expect(S.mgmt("PATCH", "/1.0/remote-cluster/c1", b"{not json",
                  headers={"Content-Type": "application/json"}), 400, "PATCH with malformed JSON")


@t.test
def test_join_bad_fields_400():
    cert = L.Cert("cfields")
    tok = S.create_token("cfields")
    cases = [
        ({"cluster_certificate": cert.pem, "token": tok}, "no cluster_name"),
        ({"cluster_name": "cfields", "token": tok}, "no certificate"),
        ({"cluster_name": "cfields", "cluster_certificate": "not a PEM", "token": tok},
         "bad certificate"),
        ({"cluster_name": "cfields", "cluster_certificate": cert.pem}, "no token"),
        ({"cluster_name": "cfields", "cluster_certificate": cert.pem, "token": "!!!"},
         "undecodable token"),
        ({"cluster_name": 5, "cluster_certificate": cert.pem, "token": tok}, "name not a string"),
    ]
    for body, what in cases:
        expect(S.conn("POST", "/1.0/remote-cluster", body), 400, "join: " + what)
    # None of that consumed the token.
    L.eq(S.join("cfields", tok, cert).status, 200, "join after the bad attempts")


def _post_head(path, length=None, chunked=False, token=None):
    lines = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Content-Type: application/json"]
    if token:
        lines.append("Authorization: Bearer " + token)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append("Content-Length: %d" % length)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@t.test
def test_json_body_over_cap_413():
    cap = 1024 * 1024
    big = b'{"cluster_name":"cbig","description":"' + b"a" * (cap + 1024) + b'"}'
    r = L.raw_exchange(S.mgmt_port, _post_head(TOKEN_PATH, len(big), token=S.token) + big)
    expect(r, 413, "management JSON body over 1 MiB (Content-Length)")
    # Chunked: the size is only known while reading.
    chunk = b"a" * 65536
    body = b'{"cluster_name":"cbig","description":"'
    body = b"%x\r\n%s\r\n" % (len(body), body)
    body += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(cap // len(chunk) + 2))
    body += b'3\r\n"}\n\r\n0\r\n\r\n'
    r = L.raw_exchange(S.mgmt_port, _post_head(TOKEN_PATH, chunked=True, token=S.token) + body)
    expect(r, 413, "management JSON body over 1 MiB (chunked)")
    # The connector's join body has the same cap.
    r = L.raw_exchange(S.conn_port, _post_head("/1.0/remote-cluster", len(big)) + big)
    expect(r, 413, "join JSON body over 1 MiB")
    L.check("cbig" not in token_names(), "an oversized request must not create a token")
    # Just under the cap is fine (a long but valid description is refused as
    # too long by the API, with 400, which proves the body was read whole).
    ok = b'{"cluster_name":"cbig","description":"' + b"a" * (cap - 1024) + b'"}'
    r = L.raw_exchange(S.mgmt_port, _post_head(TOKEN_PATH, len(ok), token=S.token) + ok)
    expect(r, 400, "a JSON body just under 1 MiB with an over-long description")
    L.eq(S.mgmt("GET", "/1.0/status").status, 200, "server still answers")


@t.test
def test_headers_over_cap_431():
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        req = (b"GET /1.0/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (70 * 1024) +
               b"\r\n\r\n")
        expect(L.raw_exchange(port, req), 431, name + ": one header over 64 KiB")
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(80))
        req = b"GET /1.0/status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n"
        expect(L.raw_exchange(port, req), 431, name + ": many headers over 64 KiB")
        req = b"GET /1.0/status?" + b"q" * (70 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        expect(L.raw_exchange(port, req), 431, name + ": request line over 64 KiB")
        L.eq(L.request(port, "GET", "/1.0/status").status, 200, name + " still answers")


@t.test
def test_malformed_http_400_and_keepalive():
    for port, name in ((S.mgmt_port, "management"), (S.conn_port, "connector")):
        expect(L.raw_exchange(port, b"GARBAGE\r\n\r\n"), 400, name + ": garbage request line")
        expect(L.raw_exchange(port, b"GET /1.0/status HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
               400, name + ": bad Content-Length")
    expect(S.mgmt("PUT", "/1.0/remote-cluster"), 405, "unsupported method")
    # Keep-alive: several requests on one connection, and two pipelined.
    conn = L.http.client.HTTPSConnection("127.0.0.1", S.mgmt_port, timeout=30,
                                         context=L.tls_context())
    try:
        for i in range(3):
            conn.request("GET", "/1.0/remote-cluster",
                         headers={"Authorization": "Bearer " + S.token})
            r = conn.getresponse()
            r.read()
            L.eq(r.status, 200, "keep-alive request %d" % i)
    finally:
        conn.close()
    sock = L.tls_connect(S.conn_port)
    try:
        sock.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        for i in range(2):
            L.eq(L.read_http_response(sock).status, 200, "pipelined request %d" % i)
    finally:
        sock.close()
    # A chunked JSON body within the cap is read whole.
    body = b'{"cluster_name":"cchunked"}'
    req = (_post_head(TOKEN_PATH, chunked=True, token=S.token) +
           b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
    r = L.raw_exchange(S.mgmt_port, req)
    L.eq(r.status, 200, "token create with a chunked body: %r" % r)
    L.eq(L.decode_join_token(r.metadata["token"])["server_name"], "cchunked", "chunked name")


@t.test
def test_patch_thresholds():
    path = "/1.0/remote-cluster/c1"
    for field in ("disk_threshold", "memory_threshold"):
        for v in (101, -1, 1000, "50", 50.5, None):
            expect(S.mgmt("PATCH", path, {field: v}), 400, "PATCH %s=%r" % (field, v))
    c = S.mgmt("GET", path).metadata
    L.eq((c["disk_threshold"], c["memory_threshold"]), (80, 80), "thresholds after refusals")
    r = S.mgmt("PATCH", path, {"disk_threshold": 0, "memory_threshold": 100,
                               "description": "edge"})
    L.eq(r.status, 200, "PATCH at the bounds: %r" % r)
    c = S.mgmt("GET", path).metadata
    L.eq((c["disk_threshold"], c["memory_threshold"], c["description"]), (0, 100, "edge"),
         "thresholds after PATCH")
    r = S.mgmt("PATCH", path, {"disk_threshold": 70})
    L.eq(r.status, 200, "PATCH one field")
    c = S.mgmt("GET", path).metadata
    L.eq((c["disk_threshold"], c["memory_threshold"], c["description"]), (70, 100, "edge"),
         "a PATCH keeps the fields it does not name")
    expect(S.mgmt("PATCH", "/1.0/remote-cluster/nosuch", {"disk_threshold": 50}), 404,
           "PATCH an unknown cluster")


@t.test
def test_token_expiry_in_past_400():
    past = L.rfc3339(time.time() - 3600)
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "cpast", "expiry": past}), 400,
           "expiry in the past")
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "cpast", "expiry": "tomorrow"}), 400,
           "expiry not RFC 3339")
    expect(S.mgmt("POST", TOKEN_PATH, {}), 400, "no cluster_name")
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": ""}), 400, "empty cluster_name")
    expect(S.mgmt("POST", TOKEN_PATH, {"cluster_name": "a/b"}), 400, "cluster_name with /")
    L.check("cpast" not in token_names(), "no token from refused creates")
    future = L.rfc3339(time.time() + 7200)
    tok = S.create_token("cfuture", expiry=future)
    L.eq(L.decode_join_token(tok)["expires_at"], future, "token expires_at is the given expiry")


@t.test
def test_unknown_cluster_management_404():
    expect(S.mgmt("GET", "/1.0/remote-cluster/nosuch"), 404, "GET an unknown cluster")
    expect(S.mgmt("DELETE", "/1.0/remote-cluster/nosuch"), 404, "DELETE an unknown cluster")
    expect(S.mgmt("GET", "/1.0/nosuch"), 404, "an unknown path")
    expect(L.request(S.conn_port, "GET", "/1.0/nosuch", cert=C1), 404,
           "an unknown connector path")


@t.test
def test_expired_token_403():
    L.wait_for(lambda: time.time() > EXPIRING["at"] + 1.5, timeout=30, what="token expiry")
    expect(S.join("cexp", EXPIRING["token"], L.Cert("cexp")), 403, "join with an expired token")
    L.check("cexp" not in cluster_names(), "an expired token must not enroll")


@t.test
def test_cluster_remove():
    cert = S.enroll("cdel")
    r = S.mgmt("DELETE", "/1.0/remote-cluster/cdel")
    L.eq(r.status, 200, "DELETE cluster")
    L.check("cdel" not in cluster_names(), "removed cluster still listed")
    expect(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=cert), 403,
           "heartbeat of a removed cluster")
    # The name is free again.
    cert2 = S.enroll("cdel")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=cert2).status, 200,
         "heartbeat after re-enrolling")
    # A cluster removes itself.
    r = S.conn("DELETE", "/1.0/remote-cluster", cert=cert2)
    L.eq(r.status, 200, "self-removal")
    L.check_envelope_sync(r.json, "self-removal")
    L.check("cdel" not in cluster_names(), "self-removed cluster still listed")
    expect(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=cert2), 403,
           "heartbeat after self-removal")


def _silent_closed(sock, deadline):
    """True when the peer closed sock (EOF or reset) before deadline."""
    sock.settimeout(max(0.05, min(0.3, deadline - time.monotonic())))
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
            # Some servers answer 408 first; keep reading until EOF.
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return True


@t.test
def test_header_timeout():
    H = L.Server("--header-timeout", "1000").start()
    try:
        half = L.tls_connect(H.mgmt_port)
        half.sendall(b"GET /1.0/sta")
        silent = socket.create_connection(("127.0.0.1", H.conn_port), timeout=10)
        deadline = time.monotonic() + 30
        served = 0
        half_closed = silent_closed = False
        while not (half_closed and silent_closed):
            r = L.request(H.mgmt_port, "GET", "/1.0/status", timeout=20)
            L.eq(r.status, 200, "another client while one is stalled")
            r = L.request(H.conn_port, "GET", "/1.0/status", timeout=20)
            L.eq(r.status, 200, "another client on the connector")
            served += 1
            half_closed = half_closed or _silent_closed(half, deadline)
            silent_closed = silent_closed or _silent_closed(silent, deadline)
            if time.monotonic() > deadline:
                raise L.TestFailure("after 30 s: half request closed=%s, silent TLS "
                                    "connection closed=%s" % (half_closed, silent_closed))
        L.check(served >= 1, "no other client was served")
        half.close()
        silent.close()
        L.check(H.alive(), "server died")
    finally:
        H.stop()


@t.test
def test_join_rate_limit_429():
    R = L.Server("--join-rate", "0.01", "--join-burst", "2").start()
    try:
        for i in range(2):
            expect(R.conn("POST", "/1.0/remote-cluster", {}), 400, "join %d within the burst" % i)
        r = R.conn("POST", "/1.0/remote-cluster", {})
        expect(r, 429, "join over the rate")
        ra = r.headers.get("retry-after")
        L.check(ra is not None and ra.isdigit() and int(ra) >= 1,
                "Retry-After must be a positive number of seconds, got %r" % (ra,))
        # A valid join is limited too, and other endpoints are not.
        tok = R.create_token("crl")
        expect(R.join("crl", tok, L.Cert("crl")), 429, "valid join over the rate")
        L.eq(R.conn("GET", "/1.0/status").status, 200, "connector status while limited")
        L.eq(R.mgmt("GET", "/1.0/remote-cluster").status, 200, "management while limited")
    finally:
        R.stop()


@t.test
def test_restart_keeps_state():
    cert = S.enroll("csurvive")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {"cpu_total_count": 3}, cert=cert).status,
         200, "heartbeat before restart")
    S.mgmt("PATCH", "/1.0/remote-cluster/csurvive", {"description": "kept", "memory_threshold": 42})
    pending = S.create_token("cpending")
    clusters, tokens = cluster_names(), token_names()
    fp, admin = L.server_fingerprint(S.conn_port), S.token
    rc = S.stop()
    L.eq(rc, 0, "exit status after SIGTERM")
    S.start()
    L.eq(S.token, admin, "admin token after restart")
    L.eq(L.server_fingerprint(S.conn_port), fp, "connector certificate after restart")
    L.eq(cluster_names(), clusters, "clusters after restart")
    L.eq(token_names(), tokens, "join tokens after restart")
    c = S.mgmt("GET", "/1.0/remote-cluster/csurvive").metadata
    L.eq((c["description"], c["memory_threshold"], c["cpu_total_count"]), ("kept", 42, 3),
         "cluster fields after restart")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=cert).status, 200,
         "heartbeat of an enrolled cluster after restart")
    L.eq(S.conn("POST", "/1.0/remote-cluster/status", {}, cert=C1).status, 200,
         "heartbeat of c1 after restart")
    L.eq(S.join("cpending", pending, L.Cert("cpending")).status, 200,
         "join with a token made before the restart")


@t.test
def test_refused_upgrade_closes_connection():
    # A WebSocket upgrade to /ws that is refused (bad key: 400) used to leave
    # the parser stopped at the upgrade: a later request on the connection
    # was never answered. Now the connection closes after the refusal.
    s = L.tls_connect(S.conn_port, cert=C1)
    try:
        s.sendall(b"GET /1.0/remote-cluster/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  b"Sec-WebSocket-Key: bad\r\n\r\n")
        time.sleep(0.3)
        try:
            s.sendall(b"GET /1.0/status HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            pass
        s.settimeout(10)
        data = b""
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, TimeoutError):
                raise L.TestFailure("the connection stalled after a refused upgrade: %r" % data)
            except OSError:
                break
            if not d:
                break
            data += d
    finally:
        s.close()
    L.check(data.startswith(b"HTTP/1.1 400 "), "refused upgrade answered 400: %r" % data[:80])
    L.check(b"Connection: close" in data.split(b"\r\n\r\n")[0], "Connection: close sent")
    L.eq(data.count(b"HTTP/1.1 "), 1, "nothing after the refusal is parsed as a request")


@t.test
def test_refusal_closes_connection():
    # A request the auth hook refuses (401, 403) is answered with
    # Connection: close and the connection is closed: nothing pipelined
    # after it is served, and the socket is not left open (a leak once).
    for headers, code in (("", 401), ("Authorization: Bearer lxcm_wrong\r\n", 403)):
        s = L.tls_connect(S.mgmt_port)
        try:
            s.sendall(("GET /1.0/remote-cluster HTTP/1.1\r\nHost: x\r\n%s\r\n"
                       "GET /1.0/remote-cluster HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                       "\r\n\r\n" % (headers, S.token)).encode())
            s.settimeout(10)
            data = b""
            while True:
                try:
                    d = s.recv(65536)
                except (socket.timeout, TimeoutError):
                    raise L.TestFailure("the connection stayed open after a %d: %r" % (code, data))
                except OSError:
                    break
                if not d:
                    break
                data += d
        finally:
            s.close()
        L.check(data.startswith(b"HTTP/1.1 %d " % code), "refusal answered %d: %r" % (code, data[:60]))
        L.check(b"Connection: close" in data.split(b"\r\n\r\n")[0], "Connection: close sent")
        L.eq(data.count(b"HTTP/1.1 "), 1, "the pipelined request after a %d is not served" % code)


if __name__ == "__main__":
    t.main()
