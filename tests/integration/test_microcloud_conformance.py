#!/usr/bin/env python3
"""MicroCloud conformance: an independent MicroCloud-protocol client against lxcm-server.

The cluster side is microcloud_client.py, written from MICROCLOUD-PROTOCOL.md
alone; lxcmtest.py only spawns the server and makes management calls. The
client decodes a token printed by `lxcm token create`, pins the connector's
fingerprint, joins with its own certificate, posts a heartbeat with metrics
of two members, opens a tunnel v1 and plays LXD behind it; requests made on
the management API's proxy route reach it and come back intact. Then the
negative cases of docs/protocol-v1.md, and the cluster removes itself.
"""

import base64
import concurrent.futures
import http.client
import json
import os
import re
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import microcloud_client as M  # noqa: E402

t = L.Tests("test_microcloud_conformance")

NAME = "mc1"
HEADER_TIMEOUT_MS = 6000
V1_MAX_BODY = 8 * 1024 * 1024
V1_MAX_FRAME = 16 * 1024 * 1024

S = None          # the server
CLI = None
MC = None         # the MicroCloud client
T = None          # its current tunnel
FAKE = M.FakeLXD()
TOKEN_TEXT = None
USER2 = "lxcm_" + "ab" * 32   # a second API token (another user)
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.header_list = headers                  # [(name, value)] as sent
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def all(self, name):
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.raw[:300])


def call(method, lxd_path, body=None, headers=(), token=True, timeout=30, cluster=NAME):
    """A request on the proxy route; headers may repeat a name."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    conn = http.client.HTTPSConnection("127.0.0.1", S.mgmt_port, timeout=timeout,
                                       context=L.tls_context())
    try:
        conn.putrequest(method, "/1.0/remote-cluster/%s/tunnel%s" % (cluster, lxd_path),
                        skip_accept_encoding=True)
        hl = list(headers)
        if token:
            hl.append(("Authorization", "Bearer " + (S.token if token is True else token)))
        if body is not None:
            hl.append(("Content-Length", str(len(body))))
        for k, v in hl:
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        raw = r.read()
        return Resp(r.status, r.getheaders(), raw)
    finally:
        conn.close()


def expect_error(r, code, what, contains=None):
    if r.status != code:
        raise L.TestFailure("%s: HTTP %d, want %d: %r" % (what, r.status, code, r))
    L.check_envelope_error(r.json, code, what)
    if contains:
        L.check(contains in r.json["error"], "%s: error %r does not mention %r" % (
            what, r.json["error"], contains))


def cluster_obj():
    r = S.mgmt("GET", "/1.0/remote-cluster/" + NAME)
    L.eq(r.status, 200, "cluster get")
    return r.metadata


def wait_tunnel(protocol="v1", since=None):
    def ok():
        c = cluster_obj()
        tn = c.get("tunnel")
        if not c.get("tunnel_registered") or not isinstance(tn, dict):
            return None
        if since is not None and tn.get("connected_since") == since:
            return None
        return tn if tn.get("protocol") == protocol else None
    return L.wait_for(ok, timeout=15, what="a %s tunnel of %s" % (protocol, NAME))


def wait_no_tunnel():
    L.wait_for(lambda: not cluster_obj().get("tunnel_registered"), timeout=15,
               what="the tunnel of %s to go away" % NAME)


def new_tunnel():
    """Opens a fresh tunnel (replacing any) and serves FAKE on it."""
    global T
    T = MC.open_tunnel()
    wait_tunnel()
    T.serve_in_thread(FAKE)
    return T


def manual():
    """Stops the serving thread: the test answers frames itself."""
    T.stop_serving()


def log_text():
    with open(S.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def lxd_metadata(r, what):
    L.eq(r.status, 200, what + " status")
    L.check_envelope_sync(r.json, what)
    return r.json["metadata"]


# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------

@t.setup
def setup():
    global S, CLI
    for name in ("lxcm-server", "lxcm"):
        L.binary(name)
    S = L.Server("--proxy-header-timeout", str(HEADER_TIMEOUT_MS),
                 "--join-rate", "1000", "--join-burst", "1000").start()
    # A second user: API tokens are loaded at start, so add one and restart.
    S.stop()
    db = sqlite3.connect(os.path.join(S.data_dir, "lxcm.db"))
    db.execute("INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?)",
               ("user2", L.sha256_hex(USER2.encode()), int(time.time())))
    db.commit()
    db.close()
    S.start()
    CLI = L.Cli(S)


# ---------------------------------------------------------------------------
# enrollment
# ---------------------------------------------------------------------------

@t.test
def test_token_create_prints_microcloud_command():
    global TOKEN_TEXT
    out = CLI("token", "create", NAME, "--description", "a MicroCloud").stdout
    m = re.search(r"^\s*microcloud cluster-manager join (\S+)\s*$", out, re.M)
    L.check(m is not None, "no `microcloud cluster-manager join TOKEN` line in:\n" + out)
    TOKEN_TEXT = m.group(1)
    tok = M.decode_token(TOKEN_TEXT)
    L.eq(tok["server_name"], NAME, "token server_name")
    L.check(re.fullmatch(r"[0-9a-f]{64}", tok["fingerprint"]), "fingerprint %r" % tok)
    L.check(any(a.endswith(":%d" % S.conn_port) for a in tok["addresses"]),
            "the connector address in %r" % (tok["addresses"],))
    L.check(L.parse_rfc3339(tok["expires_at"]) > time.time() + 23 * 3600,
            "default expiry about 24 h: %r" % tok["expires_at"])


@t.test
def test_join_wrong_secret_403():
    text = S.create_token("mcbad")
    tok = M.decode_token(text)
    tok["secret"] = ("0" if tok["secret"][0] != "0" else "1") + tok["secret"][1:]
    bad = base64.b64encode(json.dumps(tok).encode()).decode()
    c = M.MicroCloud(bad, directory=L.tmpdir("mcbad"))
    c.pin()
    st, _, body, _ = c.join()
    L.eq(st, 403, "join with a wrong secret")
    L.check_envelope_error(body, 403, "wrong secret")
    names = [x["cluster_name"] for x in S.mgmt("GET", "/1.0/remote-cluster-join-token").metadata]
    L.check("mcbad" in names, "a failed join must not burn the token")


@t.test
def test_join_expired_token_403():
    text = S.create_token("mcexp", expiry=L.rfc3339(time.time() + 2))
    c = M.MicroCloud(text, directory=L.tmpdir("mcexp"))
    c.pin()
    time.sleep(3.2)
    st, _, body, _ = c.join()
    L.eq(st, 403, "join with an expired token")
    L.check_envelope_error(body, 403, "expired token")


@t.test
def test_join_name_without_token_404():
    """MicroCloud's manager looks the token up by cluster_name first: a name
    without a token is 404 even with a token that is valid for another name;
    a name that has a token, with a token for another name, stays 403."""
    text = S.create_token("mcvalid")
    c = M.MicroCloud(text, directory=L.tmpdir("mcnotok"))
    c.pin()
    st, _, body, _ = c.join(name="mcnotoken")
    L.eq(st, 404, "join a name without a token, with another name's valid token")
    L.check_envelope_error(body, 404, "name without a token")
    S.create_token("mchastoken")
    st, _, body, _ = c.join(name="mchastoken")
    L.eq(st, 403, "join a name that has a token, with another name's token")
    L.check_envelope_error(body, 403, "another name's token")
    names = [x["cluster_name"] for x in S.mgmt("GET", "/1.0/remote-cluster-join-token").metadata]
    L.check("mcvalid" in names and "mchastoken" in names, "refused joins burn no token")
    st, _, body, _ = c.join()
    L.eq(st, 200, "the token still joins its own name")


@t.test
def test_pin_refuses_wrong_fingerprint():
    tok = M.decode_token(TOKEN_TEXT)
    tok["fingerprint"] = "00" * 32
    c = M.MicroCloud(base64.b64encode(json.dumps(tok).encode()).decode(),
                     directory=L.tmpdir("mcpin"))
    try:
        c.pin()
    except M.ProtocolError:
        return
    raise L.TestFailure("pinning accepted a certificate that does not match the token")


@t.test
def test_status_unregistered_certificate_403():
    c = M.MicroCloud(TOKEN_TEXT, directory=L.tmpdir("mcunreg"))
    st, _, body, _ = c.post_status(M.MicroCloud.sample_status())
    L.eq(st, 403, "status with an unregistered certificate")
    L.check_envelope_error(body, 403, "unregistered certificate")
    st, _, body, _ = c.request("GET", "/1.0/remote-cluster/ws")
    L.eq(st, 403, "tunnel with an unregistered certificate")


@t.test
def test_join():
    global MC
    MC = M.MicroCloud(TOKEN_TEXT, directory=L.tmpdir("mc1"))
    addr = MC.pin()
    L.eq(addr[1], S.conn_port, "pinned address")
    st, hdrs, body, _ = MC.join()
    L.eq(st, 200, "join")
    L.check_envelope_sync(body, "join")
    L.eq(body["metadata"], {}, "join metadata")
    L.check(hdrs.get("content-type", "").startswith("application/json"), "join Content-Type")
    c = cluster_obj()
    L.eq(c["name"], NAME, "cluster name")
    L.eq(c["status"], "ACTIVE", "cluster status")
    L.eq(c["cluster_certificate"].strip(), MC.cert_pem.strip(), "cluster certificate")
    L.eq(c["tunnel_registered"], False, "no tunnel yet")
    st, _, body, _ = MC.join()
    L.eq(st, 404, "the token works once: a second join finds no token")
    L.check_envelope_error(body, 404, "second join")


@t.test
def test_status_with_two_members():
    st, _, body, _ = MC.post_status(M.MicroCloud.sample_status())
    L.eq(st, 200, "status")
    L.check_envelope_sync(body, "status")
    md = body["metadata"]
    L.check(isinstance(md.get("next_update_in_seconds"), int) and md["next_update_in_seconds"] > 0,
            "next_update_in_seconds is a number: %r" % md)
    L.check(isinstance(md.get("cluster_manager_address"), str), "cluster_manager_address %r" % md)
    c = cluster_obj()
    L.eq(c["member_count"], 2, "member_count")
    L.eq(c["instance_count"], 4, "instance_count")
    L.eq(c["ceph_count"], 1, "ceph_count")
    L.eq(c["cpu_total_count"], 16, "cpu_total_count")
    for k, v in (("cpu_load_1", "0.42"), ("cpu_load_5", "0.31"), ("cpu_load_15", "0.20")):
        L.eq(str(c[k]), v, k)
    L.eq(c["memory_total_amount"], 16 << 30, "memory_total_amount")
    L.eq(c["memory_usage"], 6 << 30, "memory_usage")
    L.eq(c["ui_url"], "https://10.0.0.1:8443", "ui_url")
    L.eq(sorted(p["name"] for p in c["storage_pool_usages"]), ["local", "remote"], "pools")
    L.eq(c["disk_threshold"], 80, "disk_threshold")
    L.eq(c["memory_threshold"], 80, "memory_threshold")
    L.check(c["last_status_update_at"] != "0001-01-01T00:00:00Z", "last_status_update_at")


# ---------------------------------------------------------------------------
# tunnel v1, happy path
# ---------------------------------------------------------------------------

@t.test
def test_tunnel_v1_registers():
    new_tunnel()
    tn = wait_tunnel()
    L.eq(tn["protocol"], "v1", "tunnel.protocol")
    L.check(tn.get("connected_since"), "tunnel.connected_since")
    c = cluster_obj()
    L.eq(c["tunnel_registered"], True, "tunnel_registered")


@t.test
def test_proxy_get_root():
    r = call("GET", "/1.0")
    md = lxd_metadata(r, "GET /1.0")
    L.eq(md["environment"]["server_name"], "mc-a", "metadata from the fake LXD")
    L.eq(r.all("X-Fake-Lxd"), ["one", "two"], "a response header with two values")
    L.check(r.headers.get("content-type") == "application/json", "Content-Type %r" % r.headers)
    L.eq(FAKE.seen[-1]["body"], None, "a request without a body sends body null")
    L.eq(FAKE.seen[-1]["method"], "GET", "method")
    L.eq(FAKE.seen[-1]["path"], "/1.0", "path")


@t.test
def test_proxy_instances_with_query():
    md = lxd_metadata(call("GET", "/1.0/instances"), "instances")
    L.eq(md, ["/1.0/instances/c1", "/1.0/instances/c2", "/1.0/instances/c3"], "instance URLs")
    md = lxd_metadata(call("GET", "/1.0/instances?recursion=1&project=default"), "recursion")
    L.eq([i["name"] for i in md], ["c1", "c2", "c3"], "recursion=1 objects")
    L.eq(FAKE.seen[-1]["path"], "/1.0/instances?recursion=1&project=default",
         "the path carries the query string")
    r = call("GET", "/1.0/nothing-here")
    L.eq(r.status, 404, "LXD's 404 passes through")
    L.eq(r.json["error"], "not found", "LXD's error body passes through")


@t.test
def test_proxy_request_headers_and_json_body():
    body = json.dumps({"name": "c9", "source": {"type": "none"}, "snow": "\u2603"}).encode()
    r = call("POST", "/1.0/echo?target=mc-b", body, headers=[
        ("X-Test", "a"), ("X-Test", "b"), ("Content-Type", "application/json"),
        ("Cookie", "theirs=1"), ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
        ("X-Forwarded-For", "6.6.6.6"), ("user-agent", "conformance/1")])
    md = lxd_metadata(r, "echo")
    h = md["headers"]
    L.eq(md["method"], "POST", "method")
    L.eq(md["path"], "/1.0/echo?target=mc-b", "path with query")
    L.eq(h.get("X-Test"), ["a", "b"], "a repeated header arrives as an array of strings")
    L.eq(h.get("Content-Type"), ["application/json"], "Content-Type")
    L.eq(h.get("User-Agent"), ["conformance/1"], "names in Go's canonical form")
    L.eq(h.get("Cookie"), ["theirs=1"], "the user's own cookies pass")
    for hop in ("Authorization", "Connection", "Keep-Alive", "Host", "Content-Length"):
        L.check(hop not in h, "%s must not be forwarded: %r" % (hop, h))
    L.check(h.get("X-Forwarded-For") != ["6.6.6.6"], "X-Forwarded-For from the user is replaced")
    for k, v in h.items():
        L.check(isinstance(v, list) and all(isinstance(x, str) for x in v),
                "header %s is not an array of strings: %r" % (k, v))
    L.eq(base64.b64decode(md["body"]), body, "the JSON body, base64 in the frame")


@t.test
def test_proxy_binary_body_round_trip():
    blob = bytes(range(256)) * 16 + os.urandom(300 * 1024) + b"\x00\xff\r\n"
    for method in ("PUT", "POST", "PATCH"):
        r = call(method, "/1.0/binary", blob, headers=[("Content-Type",
                                                         "application/octet-stream")])
        L.eq(r.status, 200, method + " binary")
        L.eq(r.headers.get("content-type"), "application/octet-stream", "binary Content-Type")
        L.check(r.raw == blob, "%s: binary body changed on the way (%d bytes back, %d sent)" % (
            method, len(r.raw), len(blob)))
    r = call("DELETE", "/1.0/binary")
    L.eq(r.status, 200, "DELETE")
    L.eq(r.raw, b"", "empty body")


@t.test
def test_proxy_body_at_the_cap():
    blob = os.urandom(V1_MAX_BODY)
    r = call("PUT", "/1.0/binary", blob, timeout=60)
    L.eq(r.status, 200, "a body of exactly the v1 cap")
    L.check(r.raw == blob, "the 8 MiB body came back changed")


@t.test
def test_session_cookie_per_user():
    r = call("GET", "/1.0/session/set?v=abc123")
    lxd_metadata(r, "session set")
    sc = r.all("Set-Cookie")
    L.check(not any(v.startswith("session=") for v in sc),
            "LXD's session cookie must stay on the manager, got %r" % sc)
    L.eq(sc, ["theme=dark; Path=/1.0; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Max-Age=3600; "
              "HttpOnly; SameSite=Strict"], "other cookies become Set-Cookie lines")
    md = lxd_metadata(call("GET", "/1.0/session/check"), "session check")
    L.eq(md["cookie"], ["session=abc123"], "the session cookie comes back on the next request")
    md = lxd_metadata(call("GET", "/1.0/session/check", headers=[("Cookie", "x=1")]),
                      "session check with a cookie of the user")
    L.eq(sorted(md["cookie"]), ["session=abc123", "x=1"], "both the user's and the session")
    md = lxd_metadata(call("GET", "/1.0/session/check", token=USER2), "session check user2")
    L.eq(md["cookie"], [], "another user does not get the first user's session")
    lxd_metadata(call("GET", "/1.0/session/set?v=u2value", token=USER2), "user2 set")
    md = lxd_metadata(call("GET", "/1.0/session/check", token=USER2), "user2 check")
    L.eq(md["cookie"], ["session=u2value"], "user2's own session")
    md = lxd_metadata(call("GET", "/1.0/session/check"), "admin check again")
    L.eq(md["cookie"], ["session=abc123"], "admin keeps its own session")
    lxd_metadata(call("GET", "/1.0/session/clear", token=USER2), "user2 clear")
    md = lxd_metadata(call("GET", "/1.0/session/check", token=USER2), "user2 after clear")
    L.eq(md["cookie"], [], "MaxAge -1 forgets the session")
    L.check("abc123" not in log_text(), "a session cookie value appears in the server log")


# ---------------------------------------------------------------------------
# several in flight, early form, bad frames
# ---------------------------------------------------------------------------

@t.test
def test_out_of_order_answers():
    manual()
    try:
        n = 6
        futs = [POOL.submit(call, "GET", "/1.0/echo/%d" % i) for i in range(n)]
        reqs = [T.recv_request(timeout=10) for _ in range(n)]
        L.eq(len({r["uuid"] for r in reqs}), n, "every request has its own uuid")
        for r in reqs:
            L.check(re.fullmatch(r"[0-9a-f-]{36}", r["uuid"]), "uuid %r" % r["uuid"])
        L.eq(sorted(r["path"] for r in reqs), sorted("/1.0/echo/%d" % i for i in range(n)),
             "all requests were in flight at once")
        for r in reversed(reqs):
            T.respond(r, 200, {"Content-Type": ["application/json"], "X-Path": [r["path"]]},
                      [], {"path": r["path"]})
        for i, f in enumerate(futs):
            res = f.result(timeout=15)
            L.eq(res.status, 200, "request %d" % i)
            L.eq(res.json, {"path": "/1.0/echo/%d" % i}, "request %d got its own answer" % i)
            L.eq(res.headers.get("x-path"), "/1.0/echo/%d" % i, "request %d headers" % i)
    finally:
        T.serve_in_thread(FAKE)


@t.test
def test_early_form_id_and_string_headers():
    manual()
    try:
        f = POOL.submit(call, "GET", "/1.0/early")
        req = T.recv_request()
        T.respond(req, 201, {"X-Early": "yes", "Content-Type": "text/plain"}, None, b"early",
                  early_form=True)
        r = f.result(timeout=10)
        L.eq(r.status, 201, "status from an early-form frame")
        L.eq(r.headers.get("x-early"), "yes", "a header value as a single string")
        L.eq(r.raw, b"early", "body")
    finally:
        T.serve_in_thread(FAKE)


@t.test
def test_unknown_uuid_dropped():
    manual()
    try:
        stray = M.new_uuid()
        T.respond(stray, 200, {}, [], b"nobody asked")
        f = POOL.submit(call, "GET", "/1.0/after-stray")
        req = T.recv_request()
        T.respond(req, 200, {"Content-Type": ["text/plain"]}, [], b"fine")
        r = f.result(timeout=10)
        L.eq((r.status, r.raw), (200, b"fine"), "the next request after a stray frame")
    finally:
        T.serve_in_thread(FAKE)
    L.wait_for(lambda: stray in log_text(), timeout=5, what="a log line about the stray uuid")
    L.check("no request is waiting" in log_text(), "the drop is logged")


@t.test
def test_frames_that_are_not_json_are_dropped():
    manual()
    try:
        T.send_frame(M.OP_TEXT, "this is not JSON {")
        T.send_frame(M.OP_TEXT, "[1, 2, 3]")
        T.send_frame(M.OP_TEXT, '{"status": 200}')
        T.send_frame(M.OP_BINARY, os.urandom(64))
        T.send_frame(M.OP_TEXT, '{"uuid": 12, "status": 200}')
        f = POOL.submit(call, "GET", "/1.0/after-junk")
        req = T.recv_request()
        T.respond(req, 200, {"Content-Type": ["text/plain"]}, [], b"still here")
        r = f.result(timeout=10)
        L.eq((r.status, r.raw), (200, b"still here"), "the tunnel survives junk frames")
    finally:
        T.serve_in_thread(FAKE)
    L.check("not a JSON object" in log_text(), "junk frames are logged")
    L.check(S.alive(), "the server is alive")


@t.test
def test_invalid_response_502():
    manual()
    try:
        cases = [
            {"status": "200", "headers": {}, "body": None},
            {"status": 200, "headers": {}, "body": "***not base64***"},
            {"status": 200, "headers": {"X-Bad": ["a\r\nInjected: 1"]}, "body": None},
            {"status": 200, "headers": {"Bad Name": ["x"]}, "body": None},
            {"status": 99, "headers": {}, "body": None},
            {"status": 200, "headers": {"X": [1]}, "body": None},
        ]
        for i, frame in enumerate(cases):
            f = POOL.submit(call, "GET", "/1.0/bad/%d" % i)
            req = T.recv_request()
            frame = dict(frame, uuid=req["uuid"], cookies=[])
            T.send_json(frame)
            r = f.result(timeout=10)
            expect_error(r, 502, "invalid response %d" % i, "invalid response")
            L.check("injected" not in r.headers, "header injection")
    finally:
        T.serve_in_thread(FAKE)
    L.eq(call("GET", "/1.0").status, 200, "the tunnel still works")


# ---------------------------------------------------------------------------
# what v1 cannot carry
# ---------------------------------------------------------------------------

def raw_proxy(head_lines, body=b""):
    req = ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + body
    return L.raw_exchange(S.mgmt_port, req, timeout=30)


@t.test
def test_body_over_cap_413():
    path = "/1.0/remote-cluster/%s/tunnel/1.0/binary" % NAME
    r = raw_proxy(["PUT %s HTTP/1.1" % path, "Host: x", "Authorization: Bearer " + S.token,
                   "Content-Length: %d" % (V1_MAX_BODY + 1)], b"\0" * (V1_MAX_BODY + 1))
    L.eq(r.status, 413, "Content-Length over the v1 cap")
    L.check_envelope_error(json.loads(r.raw), 413, "413 envelope")
    # A chunked body learns it only on the way.
    chunk = b"\1" * (1 << 20)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(9)) + b"0\r\n\r\n"
    r = raw_proxy(["POST %s HTTP/1.1" % path, "Host: x", "Authorization: Bearer " + S.token,
                   "Transfer-Encoding: chunked"], body)
    L.eq(r.status, 413, "chunked body over the v1 cap")
    L.check_envelope_error(json.loads(r.raw), 413, "413 envelope (chunked)")
    L.eq(call("GET", "/1.0").status, 200, "the tunnel still works")


@t.test
def test_websocket_upgrade_501():
    r = raw_proxy(["GET /1.0/remote-cluster/%s/tunnel/1.0/events HTTP/1.1" % NAME, "Host: x",
                   "Authorization: Bearer " + S.token, "Upgrade: websocket",
                   "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
    L.eq(r.status, 501, "WebSocket through a v1 tunnel")
    body = json.loads(r.raw)
    L.check_envelope_error(body, 501, "501 envelope")
    L.check("v1" in body["error"] and "WebSocket" in body["error"],
            "the message says v1 cannot carry WebSockets: %r" % body["error"])


@t.test
def test_methods_and_paths_v1_cannot_carry():
    for m in ("OPTIONS", "HEAD", "TRACE"):
        r = call(m, "/1.0")
        L.eq(r.status, 405, m)
        if m != "HEAD":
            L.check_envelope_error(r.json, 405, m)
        L.check("GET" in r.headers.get("allow", ""), "%s: Allow header %r" % (m, r.headers))
    for p in ("/", "/ui/", "/1.0x", "/2.0/instances"):
        expect_error(call("GET", p), 501, "path " + p, "v1")
    expect_error(call("GET", "/1.0/../secret"), 400, "dot segments")
    r = raw_proxy(["GET /1.0/remote-cluster/%s/tunnel/1.0 HTTP/1.1" % NAME, "Host: x",
                   "Authorization: Bearer " + S.token, "X-Latin1: caf\xe9"])
    L.eq(r.status, 400, "a header that is not UTF-8 cannot go into a JSON frame")
    body = json.loads(r.raw)
    L.check_envelope_error(body, 400, "400 envelope (UTF-8)")
    L.check("UTF-8" in body["error"], "the 400 says why: %r" % body["error"])


@t.test
def test_path_rule_of_every_hop_400():
    # The path rule of every hop (src/net/http_hdr.c). Tunnel v1 used to
    # refuse only a literal "." or ".." segment; now dots in any
    # percent-encoding, encoded slashes, backslashes and NULs, and empty
    # segments are refused too (400, as for ".."), and never reach the cluster.
    before = len(FAKE.seen)
    for p in ("/1.0/%2e%2e/secret", "/1.0/%2E%2E/secret", "/1.0/.%2e/secret",
              "/1.0/%2E./secret", "/1.0/%2e/x", "/1.0/%2e", "/1.0/a%2fb", "/1.0/a%2Fb",
              "/1.0/a%5cb", "/1.0/a%00b", "/1.0//instances", "/1.0/./x", "/1.0/x/.."):
        expect_error(call("GET", p), 400, "path " + p)
    L.eq(len(FAKE.seen), before, "requests with a refused path that reached the cluster")
    # The query is not the path: dots and slashes there go through untouched.
    md = lxd_metadata(call("GET", "/1.0/echo?path=/etc/../hosts&x=%2e%2e%2f"), "echo")
    L.eq(md["path"], "/1.0/echo?path=/etc/../hosts&x=%2e%2e%2f", "a query with dots")


@t.test
def test_connection_named_and_manager_cookies_v1():
    # The header rules of every hop (src/net/http_hdr.c) now hold on tunnel
    # v1 as on v2: headers a Connection header names are hop-by-hop both
    # ways, and the manager's lxcm_* cookies are withheld cookie by cookie
    # (v1 used to drop a Cookie header only when it began with one).
    r = call("GET", "/1.0/echo", headers=[
        ("Connection", "x-hop-one, X-Hop-Two"), ("X-Hop-One", "1"), ("X-Hop-Two", "2"),
        ("X-Kept", "3"), ("Cookie", "ui=keep; lxcm_session=secret-cookie; b=2")])
    h = lxd_metadata(r, "echo")["headers"]
    L.check("X-Hop-One" not in h and "X-Hop-Two" not in h,
            "headers named in Connection reached the cluster: %r" % h)
    L.eq(h.get("X-Kept"), ["3"], "an ordinary header")
    # (the LXD session cookie kept for this user by an earlier test may follow)
    L.eq(h.get("Cookie", [])[:1], ["ui=keep; b=2"], "the user's cookies without the manager's")
    L.check(not any("lxcm_" in c or "secret-cookie" in c for c in h.get("Cookie", [])),
            "the manager's cookie reached the cluster: %r" % h.get("Cookie"))
    manual()
    try:
        f = POOL.submit(call, "GET", "/1.0/hop")
        req = T.recv_request()
        T.respond(req, 200, {"Content-Type": ["text/plain"], "Connection": ["close, X-Secret"],
                             "X-Secret": ["1"], "X-Kept": ["2"],
                             "X-Forwarded-For": ["192.0.2.1"]}, [], b"hop")
        r = f.result(timeout=10)
    finally:
        T.serve_in_thread(FAKE)
    L.eq(r.status, 200, "status")
    L.eq(r.raw, b"hop", "body")
    L.eq(r.headers.get("x-kept"), "2", "an ordinary response header")
    for name in ("x-secret", "x-forwarded-for"):
        L.check(name not in r.headers, "%s reached the user: %r" % (name, r.headers))


@t.test
def test_bad_cookie_dropped_rest_passes():
    manual()
    try:
        f = POOL.submit(call, "GET", "/1.0/cookies")
        req = T.recv_request()
        T.respond(req, 200, {"Content-Type": ["text/plain"]}, [
            {"Name": "bad name", "Value": "x"},
            {"Name": "inject", "Value": "a\r\nX-Evil: 1"},
            {"Name": "ok", "Value": "has space", "Path": "/1.0", "Domain": ".example.org",
             "MaxAge": -1, "Secure": True, "SameSite": "lax"},
        ], b"cookies")
        r = f.result(timeout=10)
    finally:
        T.serve_in_thread(FAKE)
    L.eq(r.status, 200, "status")
    L.eq(r.all("Set-Cookie"), ['ok="has space"; Path=/1.0; Domain=example.org; Max-Age=0; '
                               'Secure; SameSite=Lax'], "only the valid cookie, Go-style")
    L.check("x-evil" not in r.headers, "cookie injection")


@t.test
def test_no_answer_504():
    manual()
    try:
        t0 = time.monotonic()
        f = POOL.submit(call, "GET", "/1.0/slow")
        req = T.recv_request()
        r = f.result(timeout=HEADER_TIMEOUT_MS / 1000 + 10)
        took = time.monotonic() - t0
        expect_error(r, 504, "no answer")
        L.check(HEADER_TIMEOUT_MS / 1000 - 0.5 <= took <= HEADER_TIMEOUT_MS / 1000 + 3,
                "504 after %.1f s, the timeout is %.1f s" % (took, HEADER_TIMEOUT_MS / 1000))
        T.respond(req, 200, {}, [], b"too late")   # dropped: nobody waits any more
    finally:
        T.serve_in_thread(FAKE)
    L.eq(call("GET", "/1.0").status, 200, "the tunnel still works after a timeout")


# ---------------------------------------------------------------------------
# the tunnel going away
# ---------------------------------------------------------------------------

@t.test
def test_tunnel_closing_with_pending_request_502():
    lxd_metadata(call("GET", "/1.0/session/set?v=before-close"), "session set")
    manual()
    f = POOL.submit(call, "GET", "/1.0/pending")
    T.recv_request()
    t0 = time.monotonic()
    T.abort()
    r = f.result(timeout=15)
    took = time.monotonic() - t0
    expect_error(r, 502, "pending request when the tunnel closed")
    L.check(took < 2.0, "502 took %.1f s after the tunnel closed" % took)
    wait_no_tunnel()
    r = call("GET", "/1.0")
    expect_error(r, 503, "no tunnel")
    new_tunnel()
    md = lxd_metadata(call("GET", "/1.0/session/check"), "session after a new tunnel")
    L.eq(md["cookie"], [], "session cookies are dropped with the tunnel")


@t.test
def test_frame_over_cap_closes_tunnel():
    manual()
    f = POOL.submit(call, "GET", "/1.0/pending-big")
    req = T.recv_request()
    big = json.dumps({"uuid": req["uuid"], "status": 200, "headers": {}, "cookies": [],
                      "body": "A" * V1_MAX_FRAME})
    t0 = time.monotonic()
    try:
        T.send_frame(M.OP_TEXT, big)
    except OSError:
        pass   # the server may close before it has read it all
    code = None
    try:
        while True:
            T.recv_message(timeout=10)
    except M.TunnelClosed as e:
        code = e.code
    except OSError:
        pass
    r = f.result(timeout=15)
    expect_error(r, 502, "pending request when an oversized frame closed the tunnel")
    L.check(time.monotonic() - t0 < 5, "the 502 came promptly")
    L.check(code in (1009, None), "close code %r, want 1009 (message too big)" % code)
    T.abort()
    wait_no_tunnel()
    L.check(S.alive(), "the server survives an oversized frame")
    new_tunnel()
    L.eq(call("GET", "/1.0").status, 200, "a new tunnel works")


@t.test
def test_new_tunnel_replaces_old():
    global T
    old = T
    since = wait_tunnel()["connected_since"]
    time.sleep(1.1)    # connected_since has a resolution of one second
    old.stop_serving()
    T = MC.open_tunnel()
    wait_tunnel(since=since)
    T.serve_in_thread(FAKE)
    try:
        while True:
            old.recv_message(timeout=10)
    except M.TunnelClosed as e:
        L.check(e.code in (1001, None), "the old tunnel closes with 1001, got %r" % e.code)
    except OSError:
        pass
    old.abort()
    L.eq(call("GET", "/1.0").status, 200, "the new tunnel serves")
    L.eq(wait_tunnel()["protocol"], "v1", "still v1")


@t.test
def test_concurrent_load():
    futs = [POOL.submit(call, "GET", "/1.0/instances") for _ in range(40)]
    for f in futs:
        L.eq(f.result(timeout=30).status, 200, "request under load")
    L.check(T.served >= 40, "served %d" % T.served)


@t.test
def test_leave():
    T.stop_serving()
    T.close()
    st, _, body, _ = MC.leave()
    L.eq(st, 200, "DELETE /1.0/remote-cluster")
    L.check_envelope_sync(body, "leave")
    L.eq(body["metadata"], {}, "leave metadata")
    r = S.mgmt("GET", "/1.0/remote-cluster/" + NAME)
    L.eq(r.status, 404, "the cluster is gone")
    st, _, _, _ = MC.post_status(M.MicroCloud.sample_status())
    L.eq(st, 403, "status after leaving")
    L.check(S.alive(), "server alive at the end")


if __name__ == "__main__":
    t.main()
