#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (committed).

The seeds are small valid and invalid inputs for each target, built here
from the protocols' rules (HTTP/1.1, RFC 6455 frames, HTTP/2 frames with
HPACK literals, join tokens) so that they can be read and regenerated.
Run from anywhere: python3 fuzz/make_corpus.py. It rewrites every seed it
knows and leaves other files (inputs added by hand) alone.
"""

import base64
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n----\n"  # fuzz_next_part() in fuzz.h

# A self-signed P-256 certificate (CN=fuzz); fuzz_api enrolls its fingerprint.
PEM = """-----BEGIN CERTIFICATE-----
MIIBdTCCARugAwIBAgIUUOYi9dR1MaSsCrj8vJm1dooT0sowCgYIKoZIzj0EAwIw
DzENMAsGA1UEAwwEZnV6ejAgFw0yNjExMjQyMzQ4MDBaGA8yMTI2MTAzMTIzNDgw
MFowDzENMAsGA1UEAwwEZnV6ejBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGvT
I/2eTVyIIsXyE4iyCggbVR01C0kFLUwkRTknD0QDMeEdz79IO6WpvheYLHxGqqZH
WzsdgS7azUfB8NrhimyjUzBRMB0GA1UdDgQWBBTJyneQDbLsWC0v4jjDf1gkOer+
AjAfBgNVHSMEGDAWgBTJyneQDbLsWC0v4jjDf1gkOer+AjAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0gAMEUCIQCUPfobgCKPeoejXteTtB60JUyMPWAGgpiq
wQ4elhURvAIgNwtoosDDKiLnd1VoDTBlOL7ezE0PB7FdmYnlvbzBzsI=
-----END CERTIFICATE-----
"""
FP = "b6ff19aabfc89b8364d5f5bd736d58f4ed1077f0bfbed6da6597e58daf28ecfe"
JOIN_SECRET = "fuzzsecret0123456789abcdef0123456789abcdef0123456789abcdef012345"
API_TOKEN = "lxcm_fuzz"


def write(target, name, data, where="corpus"):
    d = os.path.join(HERE, where, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def token_json(**over):
    t = {"server_name": "joinme", "fingerprint": FP, "addresses": ["127.0.0.1:9443"],
         "secret": JOIN_SECRET, "expires_at": "2099-01-01T00:00:00Z"}
    t.update(over)
    return json.dumps(t, separators=(",", ":"))


def token(**over):
    return base64.b64encode(token_json(**over).encode()).decode()


def der():
    body = "".join(l for l in PEM.splitlines() if not l.startswith("-----"))
    return base64.b64decode(body)


# ---------------------------------------------------------------- jointoken
def jointoken():
    write("jointoken", "valid", "T" + token())
    write("jointoken", "valid_spaces", "T \n" + token() + "\r\n ")
    write("jointoken", "json_valid", "J" + token_json())
    write("jointoken", "json_upper_fp", "J" + token_json(fingerprint=FP.upper()))
    write("jointoken", "json_two_addresses",
          "J" + token_json(addresses=["10.0.0.1:9443", "[::1]:9443"]))
    write("jointoken", "json_offset_fraction",
          "J" + token_json(expires_at="2030-06-01T12:00:00.123456789+02:00"))
    write("jointoken", "json_missing_secret", "J" + json.dumps({"server_name": "x"}))
    write("jointoken", "json_no_addresses", "J" + token_json(addresses=[]))
    write("jointoken", "json_wrong_types", "J" + token_json(addresses="1.2.3.4:1", secret=5))
    write("jointoken", "json_nul", "J" + token_json(server_name="a\u0000b"))
    write("jointoken", "bad_padding", "T" + token().rstrip("=") + "=")
    write("jointoken", "not_base64", "T!!!!")
    write("jointoken", "array", "J[1,2,3]")


# ---------------------------------------------------------------- cert_pem
def cert_pem():
    write("cert_pem", "valid", "P" + PEM)
    write("cert_pem", "valid_with_text", "Psubject=CN=fuzz\n" + PEM + "trailing text\n")
    write("cert_pem", "two_blocks", "P" + PEM + PEM)
    write("cert_pem", "wrong_type", "P" + PEM.replace("CERTIFICATE", "PRIVATE KEY"))
    write("cert_pem", "truncated", "P" + PEM[:200])
    write("cert_pem", "der_valid", b"D" + der())
    write("cert_pem", "der_trailing", b"D" + der() + b"\x00\x00")
    write("cert_pem", "der_short", b"D" + der()[:40])
    write("cert_pem", "empty_block", "P-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")


# ---------------------------------------------------------------- rfc3339
def rfc3339():
    for i, s in enumerate(["2026-11-24T22:58:01Z", "1970-01-01T00:00:00Z",
                           "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
                           "2030-06-01T12:00:00.123456789+02:00", "2024-02-29T00:00:00-23:59",
                           "2023-02-29T00:00:00Z", "2026-11-24T24:00:00Z",
                           "2026-11-24t22:58:01z", "2026-11-24T22:58:60Z",
                           "2026-11-24T22:58:01.Z", "2026-11-24 22:58:01Z"]):
        write("rfc3339", "t%02d" % i, s)


# ---------------------------------------------------------------- audit_cursor
def audit_cursor():
    cur = "%016x%016x" % (1767225600, 42)
    for i, s in enumerate([
            "", "limit=100", "cluster=lxd1&actor=token%3Aabcdef012345&status=5xx&limit=1000",
            "status=404&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00+02:00",
            "actor=api-token%3Aci-bot&cursor=" + cur, cur, "cursor=" + cur.upper(),
            "limit=0", "limit=1001", "status=6xx", "cluster=a%zz", "cluster=a%00b",
            "cluster=a&cluster=b", "project=default", "since=2026-01-02T00:00:00Z&"
            "until=2026-01-01T00:00:00Z", "cursor=" + "f" * 32, "actor=" + "a" * 200]):
        write("audit_cursor", "q%02d" % i, s)


# ---------------------------------------------------------------- router
def router():
    paths = [(0, "/1.0"), (0, "/1.0/remote-cluster"), (0, "/1.0/remote-cluster/c1"),
             (3, "/1.0/remote-cluster/c1"), (4, "/1.0/remote-cluster-join-token/c1"),
             (0, "/1.0/remote-cluster/c1/tunnel/1.0/instances?recursion=1"),
             (1, "/1.0/remote-cluster/c1/tunnel"), (0, "/1.0/remote-cluster/ws"),
             (1, "/1.0/remote-cluster/status"), (0, "//1.0"), (0, "/1.0/"),
             (0, "/1.0/remote-cluster//tunnel/"), (0, "/a/b/c/d/e/f/g/h/i/j"), (0, "")]
    for i, (m, p) in enumerate(paths):
        write("router", "p%02d" % i, bytes([m]) + p.encode())


# ---------------------------------------------------------------- json bodies
JOIN_BODY = {"cluster_name": "joinme", "cluster_certificate": PEM, "token": token()}
STATUS_BODY = {
    "instance_statuses": [{"status": "Running", "count": 2}, {"status": "Stopped", "count": 1}],
    "member_statuses": [{"status": "Online", "count": 3}],
    "ceph_statuses": [],
    "cpu_total_count": 24, "cpu_load_1": "0.52", "cpu_load_5": 0.4, "cpu_load_15": "0.30",
    "memory_total_amount": 68719476736, "memory_usage": 1073741824,
    "storage_pool_usages": [{"name": "default", "member": "m1", "total": 100, "usage": 5},
                            {"name": "remote", "member": "", "total": 1000, "usage": 10}],
    "ui_url": "https://10.0.0.1:8443",
    "server_metrics": [{"member": "m1", "service": "LXD", "metrics": "# HELP x\nx 1\n"}],
}


def bodies():
    return {
        "join": json.dumps(JOIN_BODY),
        "join_bad_name": json.dumps(dict(JOIN_BODY, cluster_name="-bad")),
        "join_bad_cert": json.dumps(dict(JOIN_BODY, cluster_certificate="nope")),
        "join_other_name": json.dumps(dict(JOIN_BODY, cluster_name="other")),
        "token_create": json.dumps({"cluster_name": "c1", "description": "x",
                                    "expiry": "2099-01-01T00:00:00Z"}),
        "token_create_past": json.dumps({"cluster_name": "c2", "expiry": "2001-01-01T00:00:00Z"}),
        "token_create_null": json.dumps({"cluster_name": "c3", "description": None,
                                         "expiry": None}),
        "patch": json.dumps({"description": "d", "disk_threshold": 90, "memory_threshold": 0}),
        "patch_bad": json.dumps({"description": 5, "disk_threshold": 101}),
        "status": json.dumps(STATUS_BODY),
        "status_bad_type": json.dumps({"cpu_total_count": "many"}),
        "dup_keys": '{"a":1,"a":2}',
        "not_object": "[1,2]",
        "deep": "[" * 3000,
        "truncated": '{"cluster_name": "c1", ',
        "unicode": '{"description":"\\u00e9\\ud83d\\ude00","x":"\\u0000"}',
    }


def json_target():
    for name, b in bodies().items():
        write("json", name, b)


# ---------------------------------------------------------------- cluster_json
def cluster_json():
    write("cluster_json", "status", json.dumps(STATUS_BODY))
    write("cluster_json", "empty", "")
    write("cluster_json", "not_object", "[]")
    write("cluster_json", "odd_types", json.dumps({
        "instance_statuses": [{"status": 1, "count": "2"}, {"status": "A", "count": -1}, 5],
        "member_statuses": {"x": 1}, "cpu_load_1": 1e300, "cpu_load_5": -3.5,
        "cpu_load_15": None, "memory_usage": 1.5, "storage_pool_usages": [{"name": 3}],
        "ui_url": 7}))


# ---------------------------------------------------------------- agent_status
def agent_status():
    instances = [{"name": "c1", "status": "Running"}, {"name": "c2", "status": "Stopped"},
                 {"name": "c3"}, 5]
    resources = {"cpu": {"total": 8}, "memory": {"total": 1 << 34, "used": 1 << 30}}
    members = [{"server_name": "m1", "status": "Online"}, {"server_name": "m2",
                                                           "status": "Offline"}]
    pools = [{"name": "default", "driver": "zfs"}, {"name": "remote", "driver": "ceph"},
             {"name": 7}]
    pool_res = {"default": {"space": {"total": 100, "used": 5}},
                "remote": {"space": {"total": 1000, "used": 10}}}
    member_res = {"m1": resources, "m2": {"cpu": {"total": -1}}}
    member_pool_res = {"m1": pool_res, "m2": {"default": {"space": {"total": 0}}}}
    loads = struct.pack("<3d", 0.5, float("nan"), 1e308)
    parts = [json.dumps(x).encode() for x in (instances, resources, members, pools, pool_res,
                                              member_res, member_pool_res)]
    full = SEP.join(parts + [b"m1", b"https://10.0.0.1:8443", loads,
                             b"# HELP lxd_cpu\nlxd_cpu_seconds_total 5\n"])
    write("agent_status", "full", full)
    write("agent_status", "standalone", SEP.join(
        [json.dumps(instances).encode(), json.dumps(resources).encode(), b"null", b"[]",
         json.dumps(pool_res).encode(), b"{}", b"{}", b"host", b"", struct.pack("<3d", 1, 2, 3)]))
    write("agent_status", "empty", b"")
    write("agent_status", "bad_utf8_metrics", SEP.join([b"[]"] * 7 + [b"m\xff", b"", b"",
                                                                      b"\xff\xfe metrics"]))


# ---------------------------------------------------------------- HTTP/1.1
def http_target():
    w = lambda n, d: write("http", n, d)
    w("get_root", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    w("xff_chain", "GET /items/1 HTTP/1.1\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.1\r\n"
      "X-Forwarded-For: junk, [2001:db8::1], ::ffff:10.2.3.4,127.0.0.9\r\n\r\n")
    w("echo_post", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    w("echo_chunked", "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    w("echo_too_big", "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + "a" * 100)
    # Answered at the head (413, pre_route's 403), the body arrives while the
    # connection lingers; past linger_max_bytes (8 KiB in the harness) it is cut.
    w("linger_413_body", "POST /echo HTTP/1.1\r\nContent-Length: 99999\r\n\r\n" + "{" * 2000)
    w("linger_past_cap", "POST /echo HTTP/1.1\r\nContent-Length: 99999\r\n\r\n" + "{" * 9000)
    w("linger_deny_body", "POST /echo HTTP/1.1\r\nX-Deny: 1\r\nContent-Length: 300\r\n\r\n"
      + "a" * 300 + "GET / HTTP/1.1\r\n\r\n")
    w("delete_204", "DELETE /echo HTTP/1.1\r\n\r\n")
    w("items", "GET /items/abc HTTP/1.1\r\nX-Fuzz: v\r\n\r\nGET /items/0123456789abcdefXYZ "
      "HTTP/1.1\r\n\r\nGET /items/a/b/c?q=1 HTTP/1.1\r\n\r\n")
    w("json", 'POST /json HTTP/1.1\r\nContent-Length: 15\r\n\r\n{"a":[1,2,{}]}\n')
    w("json_bad", "POST /json HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":}x")
    w("pipelined_later", "GET /later HTTP/1.1\r\n\r\nGET /later HTTP/1.1\r\n\r\n"
      "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    w("stream", "POST /stream/x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
    w("stream_pause_chunked", "POST /stream/pause HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    w("stream_empty", "GET /stream/ HTTP/1.1\r\n\r\n")
    w("deny", "GET / HTTP/1.1\r\nX-Deny: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    w("not_found_405", "GET /nope HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\n\r\n")
    w("head", "HEAD / HTTP/1.1\r\n\r\n")
    w("http10", "GET / HTTP/1.0\r\n\r\n")
    w("malformed", "GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    w("bad_version", "GET / HTTP/7.1\r\n\r\n")
    w("too_many_headers", "GET / HTTP/1.1\r\n" + "".join("H%d: v\r\n" % i for i in range(20))
      + "\r\n")
    w("header_too_big", "GET / HTTP/1.1\r\nX: " + "a" * 3000 + "\r\n\r\n")
    w("cl_and_te", "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n")
    w("two_cl", "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
    w("expect", "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    up = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode()
    w("ws_upgrade_frames", up + ws_frame(1, b"hello", mask=True) + ws_frame(2, b"\x00\x01",
                                                                            mask=True)
      + ws_frame(8, struct.pack(">H", 1000), mask=True))
    w("ws_upgrade_close_msg", up + ws_frame(1, b"close", mask=True))
    w("ws_upgrade_bad", up.replace(b"13", b"8"))
    w("upgrade_elsewhere", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "GET / HTTP/1.1\r\n\r\n")
    w("connect", "CONNECT x:443 HTTP/1.1\r\n\r\n")


# ---------------------------------------------------------------- WebSocket
def ws_frame(opcode, payload, fin=True, mask=False, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = b"\x11\x22\x33\x44"
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


def ws_target():
    # flags: 1 client role, 2 echo, 4 pause, 8 close on first, 16 ws_feed
    for role, mask in ((0, True), (1, False)):
        f = lambda *a, **k: ws_frame(*a, mask=mask, **k)
        tag = "server" if role == 0 else "client"
        close = f(8, struct.pack(">H", 1000) + b"bye")
        write("ws", tag + "_echo", bytes([role | 2]) + f(1, b"hello") + f(2, b"\x00\xff")
              + close)
        write("ws", tag + "_fragments", bytes([role | 2]) + f(1, b"hel", fin=False)
              + f(9, b"ping") + f(0, b"lo") + close)
        write("ws", tag + "_pause", bytes([role | 2 | 4]) + f(2, b"a") + f(2, b"b") + f(2, b"c"))
        write("ws", tag + "_we_close", bytes([role | 8]) + f(1, b"x") + f(1, b"y") + close)
        write("ws", tag + "_feed", bytes([role | 2 | 16 | (3 << 5)]) + f(1, b"fed") + close)
        write("ws", tag + "_too_big", bytes([role]) + f(2, b"z" * 5000))
        write("ws", tag + "_bad_utf8", bytes([role]) + f(1, b"\xc3\x28"))
        write("ws", tag + "_bad_opcode", bytes([role]) + f(3, b"") + f(1, b"after"))
        write("ws", tag + "_rsv", bytes([role]) + f(1, b"x", rsv=4))
        write("ws", tag + "_close_bad_code", bytes([role]) + f(8, struct.pack(">H", 1005)))
        write("ws", tag + "_long_ping", bytes([role]) + f(9, b"p" * 200))
    write("ws", "server_unmasked", bytes([2]) + ws_frame(1, b"hi"))
    write("ws", "client_masked", bytes([3]) + ws_frame(1, b"hi", mask=True))


def ws_client():
    ok = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: @ACCEPT@\r\nSec-WebSocket-Protocol: lxcm-tunnel.v2\r\n\r\n").encode()
    write("ws_client", "ok_frames", ok + ws_frame(2, b"\x00\x00\x00\x04\x01") + ws_frame(
        1, b"text") + ws_frame(8, struct.pack(">H", 1001)))
    write("ws_client", "ok_then_nothing", ok)
    write("ws_client", "no_protocol", ok.replace(b"Sec-WebSocket-Protocol: lxcm-tunnel.v2\r\n", b""))
    write("ws_client", "wrong_accept", ok.replace(b"@ACCEPT@", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
    write("ws_client", "extension", ok.replace(b"\r\n\r\n",
                                               b"\r\nSec-WebSocket-Extensions: x\r\n\r\n"))
    write("ws_client", "refused_403", "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
          "Content-Length: 24\r\n\r\n{\"type\":\"error\",\"x\":1}  ")
    write("ws_client", "refused_chunked", "HTTP/1.1 501 Not Implemented\r\nTransfer-Encoding: "
          "chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n")
    write("ws_client", "ok_200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    write("ws_client", "garbage", "SSH-2.0-OpenSSH\r\n")
    write("ws_client", "masked_from_server", ok + ws_frame(2, b"abc", mask=True))


# ---------------------------------------------------------------- HTTP/2
def h2_int(n, prefix_bits):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([n])
    out = [limit]
    n -= limit
    while n >= 128:
        out.append((n % 128) + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def hpack(headers):
    out = b""
    for name, value in headers:
        name, value = name.encode(), value.encode()
        out += b"\x00" + h2_int(len(name), 7) + name + h2_int(len(value), 7) + value
    return out


def h2(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", sid) + payload


DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINUP, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 1, 1, 4, 8, 0x20


def settings(*pairs):
    return h2(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def req(sid, method, path, end=True, extra=()):
    hs = [(":method", method), (":scheme", "https"), (":authority", "lxd"), (":path", path)]
    return h2(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, hpack(hs + list(extra)))


def tunnel_agent():
    s0 = settings((4, 65535), (8, 1)) + h2(SETTINGS, ACK, 0)
    write("tunnel_agent", "get", s0 + req(1, "GET", "/1.0"))
    write("tunnel_agent", "post_body", s0 + req(1, "POST", "/1.0/instances", end=False)
          + h2(DATA, 0, 1, b'{"name":') + SEP + h2(DATA, END_STREAM, 1, b'"c1"}'))
    write("tunnel_agent", "many", s0 + req(1, "GET", "/reset") + req(3, "POST", "/hold", False)
          + h2(DATA, 0, 3, b"x" * 1000) + req(5, "POST", "/early", False) + h2(DATA, 0, 5, b"e")
          + SEP + h2(DATA, END_STREAM, 3, b"y") + h2(DATA, END_STREAM, 5, b"f")
          + h2(PING, 0, 0, b"12345678") + h2(WINUP, 0, 0, struct.pack(">I", 100000))
          + h2(RST, 0, 1, struct.pack(">I", 8)))
    write("tunnel_agent", "connect", settings((8, 1)) + h2(
        HEADERS, END_HEADERS, 1, hpack([(":method", "CONNECT"), (":protocol", "websocket"),
                                        (":scheme", "https"), (":authority", "lxd"),
                                        (":path", "/early/1.0/events")]))
          + h2(DATA, 0, 1, b"ws bytes") + SEP + h2(RST, 0, 1, struct.pack(">I", 0)))
    block = hpack([(":method", "GET"), (":scheme", "https"), (":authority", "lxd"),
                   (":path", "/1.0/instances"), ("x-long", "v" * 300)])
    write("tunnel_agent", "continuation", s0 + h2(HEADERS, END_STREAM, 1, block[:40])
          + h2(CONT, 0, 1, block[40:100]) + h2(CONT, END_HEADERS, 1, block[100:]))
    write("tunnel_agent", "padded_priority", s0 + h2(
        HEADERS, END_HEADERS | END_STREAM | PADDED | PRIO, 1,
        b"\x03" + struct.pack(">IB", 0, 15) + hpack([(":method", "GET"), (":scheme", "https"),
                                                     (":path", "/")]) + b"\x00\x00\x00")
          + h2(PRIORITY, 0, 3, struct.pack(">IB", 1, 10)))
    write("tunnel_agent", "goaway", s0 + req(1, "GET", "/1.0", end=False)
          + h2(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye"))
    write("tunnel_agent", "flood_streams", s0 + b"".join(
        req(i, "GET", "/hold", end=False) for i in range(1, 80, 2)))
    write("tunnel_agent", "data_unknown_stream", s0 + h2(DATA, 0, 9, b"zz"))
    write("tunnel_agent", "window_overflow", s0 + req(1, "POST", "/x", end=False)
          + h2(WINUP, 0, 1, struct.pack(">I", 0x7fffffff)) + h2(WINUP, 0, 1,
                                                                struct.pack(">I", 0x7fffffff)))
    write("tunnel_agent", "trailers", s0 + req(1, "POST", "/t", end=False) + h2(DATA, 0, 1, b"b")
          + h2(HEADERS, END_HEADERS | END_STREAM, 1, hpack([("x-trailer", "1")])))
    write("tunnel_agent", "junk", b"\x00\x00\x04\x99\xff\x00\x00\x00\x01abcd")


def tunnel_manager():
    s0 = settings((3, 100), (4, 1 << 20), (8, 1)) + h2(SETTINGS, ACK, 0)
    resp = lambda sid, status, end=False, extra=(): h2(
        HEADERS, END_HEADERS | (END_STREAM if end else 0), sid,
        hpack([(":status", status)] + list(extra)))
    write("tunnel_manager", "all_streams", s0 + resp(1, "200", extra=[("content-type", "x")])
          + h2(DATA, END_STREAM, 1, b"hello") + SEP + resp(3, "201", end=True)
          + resp(5, "200") + h2(DATA, 0, 5, b"e" * 2000) + SEP + resp(7, "404")
          + h2(DATA, END_STREAM, 7, b"nf"))
    write("tunnel_manager", "informational", s0 + resp(1, "103", extra=[("link", "x")])
          + resp(1, "200", end=True))
    write("tunnel_manager", "trailers", s0 + resp(1, "200") + h2(DATA, 0, 1, b"x")
          + h2(HEADERS, END_HEADERS | END_STREAM, 1, hpack([("grpc-status", "0")])))
    write("tunnel_manager", "rst_goaway", s0 + h2(RST, 0, 3, struct.pack(">I", 2))
          + h2(GOAWAY, 0, 0, struct.pack(">II", 5, 0)) + resp(1, "200", end=True))
    write("tunnel_manager", "ping_winup", s0 + h2(PING, 0, 0, b"abcdefgh")
          + h2(PING, ACK, 0, b"\x00" * 8) + h2(WINUP, 0, 0, struct.pack(">I", 1000))
          + h2(WINUP, 0, 7, struct.pack(">I", 1000)))
    write("tunnel_manager", "push_refused", s0 + h2(PUSH, END_HEADERS, 1, struct.pack(">I", 2)
                                                    + hpack([(":method", "GET")])))
    write("tunnel_manager", "bad_status", s0 + resp(1, "2x0", end=True) + resp(3, "200"))
    write("tunnel_manager", "over_window", s0 + resp(5, "200") + h2(DATA, 0, 5, b"w" * 16000)
          + h2(DATA, 0, 5, b"w" * 16000) + h2(DATA, 0, 5, b"w" * 16000)
          + h2(DATA, 0, 5, b"w" * 16000) + h2(DATA, 0, 5, b"w" * 16000))
    write("tunnel_manager", "no_settings", resp(1, "200", end=True))
    write("tunnel_manager", "empty", b"")


# ---------------------------------------------------------------- fuzz_api
def api():
    auth = "Authorization: Bearer %s\r\n" % API_TOKEN
    m = lambda name, text: write("api", name, b"\x00" + text.encode())
    c = lambda name, data: write("api", name, b"\x01" + (data if isinstance(data, bytes)
                                                          else data.encode()))
    m("root", "GET /1.0 HTTP/1.1\r\n\r\nGET /1.0 HTTP/1.1\r\n" + auth + "\r\n")
    m("list", "GET /1.0/remote-cluster HTTP/1.1\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster/enrolled HTTP/1.1\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster-join-token HTTP/1.1\r\n" + auth + "\r\n")
    m("no_auth", "GET /1.0/remote-cluster HTTP/1.1\r\n\r\n")
    m("bad_auth", "GET /1.0/remote-cluster HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n")
    m("token_create_delete", "POST /1.0/remote-cluster-join-token HTTP/1.1\r\n" + auth +
      "Content-Length: 22\r\n\r\n{\"cluster_name\":\"tmp\"}"
      "DELETE /1.0/remote-cluster-join-token/tmp HTTP/1.1\r\n" + auth + "\r\n")
    m("proxy_no_tunnel", "GET /1.0/remote-cluster/enrolled/tunnel/1.0 HTTP/1.1\r\n" + auth
      + "\r\n")
    m("proxy_unknown", "POST /1.0/remote-cluster/nope/tunnel/1.0/instances HTTP/1.1\r\n" + auth
      + "Content-Length: 2\r\n\r\n{}")
    m("bad_name", "GET /1.0/remote-cluster/%2e%2e HTTP/1.1\r\n" + auth + "\r\n")
    m("delete_unknown", "DELETE /1.0/remote-cluster/nope HTTP/1.1\r\n" + auth + "\r\n")
    c("status_ping", "GET /1.0/status HTTP/1.1\r\n\r\n")
    c("no_cert", "POST /1.0/remote-cluster/status HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    c("leave_unknown_route", "DELETE /1.0/remote-cluster/x HTTP/1.1\r\nX-Fuzz-Cert: 1\r\n\r\n")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    up = ("GET /1.0/remote-cluster/ws HTTP/1.1\r\nHost: lxcm\r\nX-Fuzz-Cert: 1\r\n"
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: lxcm-tunnel.v2\r\n\r\n" % key).encode()
    agent_settings = settings((3, 256), (4, 1 << 20), (8, 1)) + h2(SETTINGS, ACK, 0)
    c("tunnel_v2", up + ws_frame(2, agent_settings, mask=True)
      + ws_frame(2, h2(PING, 0, 0, b"pingpong"), mask=True))
    c("tunnel_v2_junk", up + ws_frame(2, b"\x00\x00\x01\x07\x00\x00\x00\x00\x00z", mask=True))
    c("tunnel_v1_refused", up.replace(b"lxcm-tunnel.v2", b"lxcm-tunnel.v1"))
    c("tunnel_no_upgrade", "GET /1.0/remote-cluster/ws HTTP/1.1\r\nX-Fuzz-Cert: 1\r\n\r\n")
    b = bodies()
    write("api", "join", b"\x02" + b["join"].encode())
    write("api", "join_bad", b"\x02" + b["join_other_name"].encode())
    write("api", "status", b"\x03" + b["status"].encode())
    write("api", "status_bad", b"\x03" + b["status_bad_type"].encode())
    write("api", "patch", b"\x04" + b["patch"].encode())
    write("api", "patch_bad", b"\x04" + b["patch_bad"].encode())
    write("api", "token_create", b"\x05" + b["token_create"].encode())
    write("api", "token_create_past", b"\x05" + b["token_create_past"].encode())
    write("api", "api_token_create", b"\x07" + json.dumps({"name": "ops"}).encode())
    write("api", "api_token_bad", b"\x07" + json.dumps({"name": "-x"}).encode())
    m("api_tokens", "GET /1.0/auth/tokens HTTP/1.1\r\n" + auth + "\r\n"
      "DELETE /1.0/auth/tokens/ops HTTP/1.1\r\n" + auth + "\r\n"
      "DELETE /1.0/auth/tokens/nope HTTP/1.1\r\n" + auth + "\r\n")


# ---------------------------------------------------------------- agent_forward
def agent_forward():
    # Byte 0: 1 the allow-list /1.0/instances and /ui/, 2 a slow transport.
    s0 = settings((4, 1 << 20), (8, 1)) + h2(SETTINGS, ACK, 0)
    w = lambda name, flags, data: write("agent_forward", name, bytes([flags]) + data)
    body = lambda sid, data, end=True: h2(DATA, END_STREAM if end else 0, sid, data)
    ws = lambda sid, path: h2(HEADERS, END_HEADERS, sid, hpack([
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
        (":authority", "lxd"), (":path", path), ("sec-websocket-protocol", "fuzz")]))
    w("get", 0, s0 + req(1, "GET", "/1.0"))
    w("post_echo", 0, s0 + req(1, "POST", "/1.0/instances", end=False,
                               extra=[("content-type", "application/json"),
                                      ("content-length", "13")])
      + body(1, b'{"name":', False) + SEP + body(1, b'"c1"}'))
    w("post_no_length", 2, s0 + req(1, "PUT", "/1.0/instances/c1", end=False)
      + body(1, b"x" * 20000, False) + SEP + body(1, b"y" * 20000))
    w("big", 0, s0 + req(1, "GET", "/1.0/big") + SEP + h2(WINUP, 0, 1, struct.pack(">I", 1 << 20))
      + h2(WINUP, 0, 0, struct.pack(">I", 1 << 20)))
    w("big_slow_reset", 2, s0 + req(1, "GET", "/1.0/big") + SEP + h2(RST, 0, 1, struct.pack(">I", 8)))
    w("hang_reset", 0, s0 + req(1, "GET", "/1.0/hang") + SEP + h2(RST, 0, 1, struct.pack(">I", 8)))
    w("hang_goaway", 0, s0 + req(1, "POST", "/1.0/hang", end=False) + body(1, b"a", False) + SEP
      + h2(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
    w("close_bad_chunked", 0, s0 + req(1, "GET", "/1.0/close") + req(3, "GET", "/1.0/bad")
      + req(5, "GET", "/1.0/chunked") + req(7, "HEAD", "/1.0/big") + req(9, "GET", "/1.0/204")
      + req(11, "GET", "/1.0/hop"))
    w("early", 0, s0 + req(1, "POST", "/1.0/early", end=False) + body(1, b"part1", False) + SEP
      + body(1, b"part2"))
    w("refused_paths", 0, s0 + req(1, "GET", "/forbidden") + req(3, "GET", "/1.0x")
      + req(5, "GET", "/1.0/../x") + req(7, "GET", "/1.0/%2e%2e/x") + req(9, "GET", "//1.0")
      + req(11, "GET", "/") + req(13, "GET", "/1.0/."))
    w("allow_list", 1, s0 + req(1, "GET", "/1.0") + req(3, "GET", "/1.0/instances?recursion=1")
      + req(5, "GET", "/ui/") + req(7, "GET", "/ui") + req(9, "GET", "/1.0/instancesx"))
    w("websocket", 0, settings((8, 1)) + ws(1, "/1.0/events") + SEP
      + h2(DATA, 0, 1, b"\x81\x85abcd" + b"hello") + SEP + h2(DATA, END_STREAM, 1, b"bye"))
    w("websocket_bad_accept", 0, settings((8, 1)) + ws(1, "/1.0/badws"))
    w("websocket_rst", 2, settings((8, 1)) + ws(1, "/1.0/operations/x/websocket") + SEP
      + h2(DATA, 0, 1, b"z" * 30000) + SEP + h2(RST, 0, 1, struct.pack(">I", 0)))
    w("connect_no_protocol", 0, s0 + h2(HEADERS, END_HEADERS, 1, hpack([
        (":method", "CONNECT"), (":authority", "lxd:443")])))
    w("bad_headers", 0, s0 + req(1, "GET", "/1.0", extra=[("content-length", "x")])
      + req(3, "POST", "/1.0", end=False, extra=[("x-nul", "a\x00b")])
      + req(5, "GET", "/1.0", extra=[("connection", "close"), ("te", "trailers"),
                                     ("host", "evil"), ("upgrade", "h2c")]))
    w("long_path", 0, s0 + req(1, "GET", "/1.0/" + "p" * 9000))
    w("many_streams", 2, s0 + b"".join(req(i, "GET", "/1.0/big" if i % 4 == 1 else "/1.0/x%d" % i)
                                       for i in range(1, 60, 2)))

# ---------------------------------------------------------------- fuzz_proxy
def proxy():
    # Byte 0: 1 hold the user's write side open, 2 reset it (see fuzz_proxy.c).
    # Then the user's bytes, SEP, the fake agent's script (blocks cut at "==").
    auth = "Authorization: Bearer %s\r\n" % API_TOKEN
    base = "/1.0/remote-cluster/enrolled/tunnel"

    def w(name, flags, user, script=None):
        data = bytes([flags]) + (user if isinstance(user, bytes) else user.encode())
        if script is not None:
            data += SEP + (script if isinstance(script, bytes) else script.encode())
        write("proxy", name, data)

    def get(path, extra=""):
        return "GET %s%s HTTP/1.1\r\nHost: lxcm\r\n%s%s\r\n" % (base, path, auth, extra)

    def post(path, body, extra=""):
        return ("POST %s%s HTTP/1.1\r\nHost: lxcm\r\n%sContent-Type: application/json\r\n"
                "Content-Length: %d\r\n%s\r\n%s" % (base, path, auth, len(body), extra, body))

    def chunked(path, chunks, extra=""):
        body = "".join("%x\r\n%s\r\n" % (len(c), c) for c in chunks) + "0\r\n\r\n"
        return ("PUT %s%s HTTP/1.1\r\nHost: lxcm\r\n%sTransfer-Encoding: chunked\r\n%s\r\n%s"
                % (base, path, auth, extra, body))

    key = "dGhlIHNhbXBsZSBub25jZQ=="
    upgrade = ("GET %s/1.0/events?type=logging HTTP/1.1\r\nHost: lxcm\r\n%sUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Protocol: lxd\r\n\r\n" % (base, auth, key))
    ok = "s 200\nh content-type application/json\nrespond\nd {\"type\":\"sync\"}\nend\n"
    w("get_default", 0, get("/1.0"))
    w("get_ok", 0, get("/1.0/instances?recursion=1", "Accept: application/json\r\n"), ok)
    w("get_hostile_request_headers", 0, get(
        "/1.0", "Cookie: a=b; lxcm_session=s; c=d\r\nCookie: lxcm_x=1\r\nConnection: keep-alive, "
        "X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic x\r\nTE: trailers\r\n"
        "Forwarded: for=evil\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\n"
        "Expect: 100-continue\r\nHTTP2-Settings: AAA\r\nUpgrade: h2c\r\n"), ok)
    w("post_echo", 0, post("/1.0/instances", '{"name":"c1"}'),
      "s 201\nwait\necho\nrespond\nend\n")
    w("post_echo_before_end", 0, post("/1.0/instances", '{"name":"c1"}'),
      "echo\ns 200\nrespond\nwait\nend\n")
    w("post_chunked", 0, chunked("/1.0/instances/c1", ["{\"a\"", ":1}"]),
      "wait\ns 200\nh content-length 2\nrespond\nd {}\nend\n")
    w("post_early_answer_hold", 1, post("/1.0/instances", '{"name":"c1"}')[:-5],
      "s 200\nrespond-end\n")
    w("post_early_answer_body", 1, chunked("/1.0/images", ["x" * 100])[:-5],
      "s 400\nh content-type application/json\nrespond\nd {\"type\":\"error\"}\nend\n")
    w("pipelined", 0, get("/1.0") + post("/1.0/x", "{}") + get("/1.0/y")
      + "HEAD %s/1.0 HTTP/1.1\r\nHost: lxcm\r\n%s\r\n" % (base, auth),
      ok + "==\n" + "wait\ns 204\nrespond-end\n==\ns 404\nh content-length 2\nrespond\nd nf\nend\n"
      "==\ns 200\nh content-length 10\nrespond-end\n")
    # The server's synchronous errors (bad name, 431) come last: the
    # connection closes after them (see known_bugs in fixed_bugs()).
    w("bad_paths", 0, "GET /1.0/remote-cluster/enrolled/tunnel HTTP/1.1\r\n" + auth + "\r\n"
      "GET " + base + "/../../1.0 HTTP/1.1\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster/notunnel/tunnel/1.0 HTTP/1.1\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster/nope/tunnel/1.0 HTTP/1.1\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster/%2e%2e/tunnel/1.0 HTTP/1.1\r\n" + auth + "\r\n")
    w("path_too_long", 0, "GET /1.0/remote-cluster/enrolled/tunnel/" + "p" * 9000 + " HTTP/1.1\r\n"
      + auth + "\r\n")
    w("never_answers", 0, get("/1.0/operations/x/wait"), "wait\n")
    w("answer_late", 0, get("/1.0"), "sleep 200\n" + ok)
    w("headers_then_stall_rst", 0, get("/1.0"), "s 200\nrespond\nd partial\nsleep 200\nrst 8\n")
    w("rst_before_headers", 0, get("/1.0"), "rst 8\n")
    w("rst_refused", 0, get("/1.0"), "rst 7\n")
    w("rst_after_headers", 0, get("/1.0"), "s 200\nh content-length 100\nrespond\nd abc\nrst 2\n")
    w("rst_during_upload", 1, post("/1.0/x", "a" * 10)[:-3], "rst 0\n")
    w("goaway_in_flight", 0, get("/1.0") + get("/1.0/b"), "goaway\n" + ok)
    w("close_tunnel", 0, get("/1.0"), "s 200\nrespond\nd x\nclose\n")
    w("abort_tunnel", 0, post("/1.0/x", "{}"), "abort\n")
    w("hop_response_headers", 0, get("/1.0"),
      "s 200\nh connection close\nh keep-alive 5\nh transfer-encoding chunked\nh upgrade h2c\n"
      "h te trailers\nh proxy-connection x\nh x-ok 1\nrespond\nd hi\nend\n")
    w("content_length_mismatch", 0, get("/1.0"), "s 200\nh content-length 10\nrespond\nd abc\nend\n")
    w("content_length_over", 0, get("/1.0"), "s 200\nh content-length 2\nrespond\nd abcdef\nend\n")
    w("content_length_dup", 0, get("/1.0"),
      "s 200\nh content-length 2\nh content-length 3\nrespond\nd ab\nend\n")
    w("content_length_bad", 0, get("/1.0"), "s 200\nh content-length -1\nrespond\nd ab\nend\n")
    w("huge_header", 0, get("/1.0"), "s 200\nhx x-big 60000\nhx x-big2 60000\nrespond-end\n")
    w("many_headers", 0, get("/1.0"), "s 200\n" + "".join("h x-h%d v\n" % i for i in range(90))
      + "respond-end\n")
    w("status_odd", 0, get("/1.0") + get("/1.0") + get("/1.0") + get("/1.0"),
      "s 599\nrespond-end\n==\ns 099\nrespond-end\n==\ns 2x0\nrespond-end\n==\ns 1000\nrespond-end\n")
    w("status_1xx", 0, get("/1.0"), "s 103\nh link x\nrespond-end\n")
    w("status_304_body", 0, get("/1.0"), "s 304\nrespond\nd body\nend\n")
    w("raw_headers_uppercase", 0, get("/1.0"),
      "s 200\nh X-Upper yes\nh :path /x\nh Connection close\nrawh 5\n")
    w("raw_headers_crlf", 0, get("/1.0"), "s 200\nh x-a a\rInjected: 1\nrawh 5\n")
    w("raw_headers_no_end", 0, get("/1.0"), "s 200\nh content-length 3\nrawh 4\nrawd 1 abc\n")
    w("raw_data_before_headers", 0, get("/1.0"), "rawd 1 abc\n")
    w("raw_junk", 0, get("/1.0"), "raw 0000040800000000000000ffff\n")
    w("raw_goaway", 0, get("/1.0"), "raw 0000080700000000000000000100000000\n" + ok)
    w("big_body", 0, get("/1.0/images/x/export"), "s 200\nrespond\ndn 300000\ndn 300000\nend\n")
    w("big_upload_noconsume", 0, post("/1.0/images", "u" * 70000), "noconsume\nsleep 100\n" + ok)
    w("ws_echo", 0, upgrade.encode() + ws_frame(1, b"hello", mask=True),
      "s 200\nh sec-websocket-protocol lxd\nrespond\necho\nd \x81\x02hi\nwait\nend\n")
    w("ws_hold", 1, upgrade.encode() + ws_frame(2, b"\x00\x01", mask=True),
      "s 200\nrespond\nd \x82\x01z\nsleep 50\nend\n")
    w("ws_refused", 0, upgrade, "s 403\nh content-type application/json\nrespond\n"
      "d {\"type\":\"error\"}\nend\n")
    w("ws_rst", 0, upgrade, "s 200\nrespond\nd x\nrst 8\n")
    w("ws_never", 0, upgrade, "wait\n")
    w("ws_bad_key", 0, upgrade.replace(key, "short"))
    w("ws_then_pipelined", 0, upgrade + get("/1.0"), "s 200\nrespond\nend\n")
    w("connect_method", 0, "CONNECT %s/1.0 HTTP/1.1\r\n%s\r\n" % (base, auth))
    w("options_star", 0, "OPTIONS * HTTP/1.1\r\n" + auth + "\r\n")
    # Flag 4: the user reads slowly through a small buffer (backpressure).
    w("slow_reader_big", 4, get("/1.0/images/x/export"), "s 200\nrespond\ndn 300000\nend\n")
    w("slow_reader_echo_upload", 4, post("/1.0/x", "e" * 60000),
      "echo\ns 200\nrespond\nwait\nend\n")
    w("ws_slow_both_ways", 4, upgrade.encode() + ws_frame(2, b"w" * 60000, mask=True),
      "s 200\nrespond\necho\ndn 200000\nwait\nend\n")
    w("upload_stalls_agent", 0, chunked("/1.0/images", ["c" * 30000, "d" * 30000, "e" * 30000]),
      "noconsume\nwait\n" + ok)
    w("reset_user", 2, post("/1.0/x", "abc"), "sleep 20\n" + ok)
    w("reset_user_big", 2, get("/1.0"), "s 200\nrespond\ndn 300000\nend\n")


# ---------------------------------------------------------------- open bugs
# Inputs of open bugs: written to fuzz/out/known/<target>/ by --known-bugs
# only. fuzz_proxy tolerates them unless FUZZ_STRICT=1; reproduce with
# FUZZ_STRICT=1 build-fuzz/fuzz/fuzz_proxy fuzz/out/known/proxy/<name>
def proxy_known_bugs():
    """No fuzz_proxy input waits for a fix now (see fixed_bugs())."""


# ---------------------------------------------------------------- fuzz_tls
def client_hello(versions=(0x0304, 0x0303), legacy=0x0303, suites=None, groups=(0x001d, 0x0017),
                 alpn=b"http/1.1", extra=b"", record_version=0x0301):
    """A TLS ClientHello record, built by hand so that seeds are the same on
    every run (fixed random, session id and x25519 key share)."""
    ext = lambda t, body: struct.pack(">HH", t, len(body)) + body
    if suites is None:
        suites = (0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8)
    exts = b""
    if versions:
        vs = b"".join(struct.pack(">H", v) for v in versions)
        exts += ext(0x002b, bytes([len(vs)]) + vs)
    gs = b"".join(struct.pack(">H", g) for g in groups)
    exts += ext(0x000a, struct.pack(">H", len(gs)) + gs)
    exts += ext(0x000b, b"\x01\x00")
    sig = bytes.fromhex("0403080404010503080505010806060102010201")
    exts += ext(0x000d, struct.pack(">H", len(sig)) + sig)
    if versions and 0x0304 in versions:
        share = bytes(range(1, 33))
        ks = struct.pack(">HH", 0x001d, 32) + share
        exts += ext(0x0033, struct.pack(">H", len(ks)) + ks)
        exts += ext(0x002d, b"\x01\x01")  # psk_key_exchange_modes
    if alpn:
        a = bytes([len(alpn)]) + alpn
        exts += ext(0x0010, struct.pack(">H", len(a)) + a)
    exts += extra
    cs = b"".join(struct.pack(">H", c) for c in suites)
    body = (struct.pack(">H", legacy) + bytes(32) + b"\x20" + bytes(range(32))
            + struct.pack(">H", len(cs)) + cs + b"\x01\x00"
            + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + struct.pack(">HH", record_version, len(hs)) + hs


def tls():
    # Byte 0: 1 connector, 2 handshake first, 4 client certificate,
    # 8 TLS 1.2 at most, 16 resume the last session (see fuzz_tls.c).
    M, C, HS, CERT, V12, RES = 0, 1, 2, 4, 8, 16
    w = lambda name, flags, data: write("tls", name, bytes([flags]) + (
        data if isinstance(data, bytes) else data.encode()))
    ch = client_hello()
    w("raw_hello13", M, ch)
    w("raw_hello13_connector", C, ch)
    w("raw_hello12", M, client_hello(versions=None))
    w("raw_hello_tls11", M, client_hello(versions=(0x0302,), legacy=0x0302))
    w("raw_hello_tls10", C, client_hello(versions=None, legacy=0x0301))
    w("raw_hello_weak_ciphers", M, client_hello(versions=None, suites=(0x0005, 0x000a, 0x0002,
                                                                       0x002f, 0x009c)))
    w("raw_hello_no_groups", M, client_hello(groups=()))
    w("raw_hello_heartbeat", M, client_hello(extra=struct.pack(">HHB", 0x000f, 1, 1)))
    # The ClientHello over two records.
    w("raw_hello_split", M, b"\x16\x03\x01" + struct.pack(">H", 40) + ch[5:45] + b"\x16\x03\x01"
      + struct.pack(">H", len(ch) - 45) + ch[45:])
    w("raw_hello_then_junk", C, ch + b"\x17\x03\x03\x00\x10" + bytes(16))
    w("raw_alert_first", M, b"\x15\x03\x03\x00\x02\x02\x28")
    w("raw_ccs_first", M, b"\x14\x03\x03\x00\x01\x01" + ch)
    w("raw_plain_http", M, "GET /1.0 HTTP/1.1\r\nHost: x\r\n\r\n")
    w("raw_sslv2", M, bytes.fromhex("80 2e 01 00 02 00 15 00 00 00 10 07 00 c0 05 00 80 03 00 80"
                                    "01 00 80 06 00 40 04 00 80 02 00 80 00 00 00 00 00 00 00 00"
                                    "00 00 00 00 00 00 00 00".replace(" ", "")))
    w("raw_huge_record", C, b"\x16\x03\x01\xff\xff" + ch[5:])
    auth = "Authorization: Bearer %s\r\n" % API_TOKEN
    w("mgmt_root", HS, "GET /1.0 HTTP/1.1\r\nHost: lxcm\r\n\r\n")
    w("mgmt_authed", HS, "GET /1.0 HTTP/1.1\r\nHost: lxcm\r\n" + auth + "\r\n"
      "GET /1.0/remote-cluster HTTP/1.1\r\nHost: lxcm\r\n" + auth + "\r\n")
    w("mgmt_tls12", HS | V12, "GET /1.0/remote-cluster/tlsfuzz HTTP/1.1\r\n" + auth + "\r\n")
    w("mgmt_resume", HS | RES, "GET /1.0/status HTTP/1.1\r\n\r\n")
    write("tls", "mgmt_split_records", bytes([HS]) + ("POST /1.0/remote-cluster-join-token "
          "HTTP/1.1\r\n" + auth).encode() + SEP + b"Content-Length: 22\r\n\r\n" + SEP
          + b'{"cluster_name":"tls1"}' + SEP + b"!read" + SEP
          + ("DELETE /1.0/remote-cluster-join-token/tls1 HTTP/1.1\r\n" + auth + "\r\n").encode())
    w("mgmt_proxy", HS, "GET /1.0/remote-cluster/tlsfuzz/tunnel/1.0 HTTP/1.1\r\n" + auth + "\r\n")
    write("tls", "mgmt_keyupdate", bytes([HS]) + b"GET /1.0 HTTP/1.1\r\n\r\n" + SEP
          + b"!keyupdate" + SEP + b"GET /1.0/status HTTP/1.1\r\n\r\n" + SEP + b"!keyupdate"
          + SEP + b"!keyupdate" + SEP + b"GET /1.0 HTTP/1.1\r\n" + auth.encode() + b"\r\n")
    write("tls", "mgmt_reneg12", bytes([HS | V12]) + b"GET /1.0 HTTP/1.1\r\n\r\n" + SEP
          + b"!reneg" + SEP + b"GET /1.0 HTTP/1.1\r\n\r\n")
    write("tls", "mgmt_close_then_data", bytes([HS]) + b"GET /1.0 HTTP/1.1\r\n" + SEP + b"!close"
          + SEP + b"\r\n")
    write("tls", "mgmt_raw_after", bytes([HS]) + b"GET /1.0 HTTP/1.1\r\n\r\n" + SEP + b"!read"
          + SEP + b"!raw \x17\x03\x03\x00\x20" + bytes(32))
    write("tls", "mgmt_raw_alert", bytes([HS | V12]) + b"!raw \x15\x03\x03\x00\x02\x01\x00"
          + SEP + b"GET /1.0 HTTP/1.1\r\n\r\n")
    write("tls", "mgmt_raw_hello_again", bytes([HS]) + b"!raw " + ch)
    w("mgmt_big_head", HS, "GET /1.0 HTTP/1.1\r\nX-Big: " + "b" * 70000 + "\r\n\r\n")
    w("conn_status_ping", HS | C, "GET /1.0/status HTTP/1.1\r\n\r\n")
    w("conn_no_cert", HS | C, "POST /1.0/remote-cluster/status HTTP/1.1\r\nContent-Length: 2"
      "\r\n\r\n{}")
    body = json.dumps(STATUS_BODY)
    w("conn_heartbeat", HS | C | CERT, "POST /1.0/remote-cluster/status HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    w("conn_heartbeat12", HS | C | CERT | V12, "POST /1.0/remote-cluster/status HTTP/1.1\r\n"
      "Content-Length: 2\r\n\r\n{}")
    w("conn_cert_on_mgmt", HS | CERT, "GET /1.0/remote-cluster HTTP/1.1\r\n\r\n")
    w("conn_join", HS | C, "POST /1.0/remote-cluster HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    up = ("GET /1.0/remote-cluster/ws HTTP/1.1\r\nHost: lxcm\r\n"
          "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: lxcm-tunnel.v2\r\n\r\n" % key).encode()
    agent_settings = settings((3, 256), (4, 1 << 20), (8, 1)) + h2(SETTINGS, ACK, 0)
    write("tls", "conn_tunnel_v2", bytes([HS | C | CERT]) + up + SEP + b"!read" + SEP
          + ws_frame(2, agent_settings, mask=True) + SEP
          + ws_frame(2, h2(PING, 0, 0, b"pingpong"), mask=True) + SEP + b"!keyupdate" + SEP
          + ws_frame(9, b"p", mask=True) + SEP + ws_frame(8, struct.pack(">H", 1000), mask=True))
    write("tls", "conn_tunnel_v1", bytes([HS | C | CERT]) + up.replace(b"lxcm-tunnel.v2\r\n",
                                                                      b"x\r\n") + SEP
          + ws_frame(1, b'{"uuid":"x","status":200}', mask=True))
    write("tls", "conn_tunnel_no_cert", bytes([HS | C]) + up)
    write("tls", "conn_leave", bytes([HS | C | CERT]) + b"DELETE /1.0/remote-cluster HTTP/1.1"
          b"\r\n\r\n")


# ---------------------------------------------------------------- tunnel v1
def tunnel_direct():
    # Byte 0: flags (fuzz_tunnel_direct.c): 1 stranger, 2 no certificate, 4 a user's GET.
    s0 = settings((3, 256), (4, 1 << 20), (8, 1)) + h2(SETTINGS, ACK, 0)
    resp = lambda sid, status, end=False: h2(
        HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, hpack([(":status", status)]))
    write("tunnel_direct", "settings_only", b"\x00" + s0)
    write("tunnel_direct", "answer", b"\x04" + s0 + resp(1, "200")
          + h2(DATA, 0, 1, b'{"type":"sync"}') + SEP + h2(DATA, END_STREAM, 1, b""))
    write("tunnel_direct", "answer_whole", b"\x04" + s0 + resp(1, "404", end=True))
    write("tunnel_direct", "ping_goaway", b"\x00" + s0 + h2(PING, 0, 0, b"abcdefgh") + SEP
          + h2(GOAWAY, 0, 0, struct.pack(">II", 0, 0) + b"bye"))
    write("tunnel_direct", "reset_request", b"\x04" + s0 + h2(RST, 0, 1, struct.pack(">I", 8)))
    write("tunnel_direct", "stranger", b"\x01" + s0)
    write("tunnel_direct", "no_cert", b"\x02" + s0 + resp(1, "200", end=True))
    write("tunnel_direct", "http11_junk", b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("tunnel_direct", "no_settings", b"\x04" + resp(1, "200", end=True))
    write("tunnel_direct", "empty", b"\x00")


def tunnel_v1():
    def resp(uuid, status=200, headers=None, body=b"", cookies=None, key="uuid"):
        o = {key: uuid, "status": status,
             "headers": headers if headers is not None else {"Content-Type": ["application/json"]},
             "body": base64.b64encode(body).decode() if body is not None else None}
        if cookies is not None:
            o["cookies"] = cookies
        return json.dumps(o).encode()
    flags = b"\x00"
    write("tunnel_v1", "both", flags + resp("@UUID1@", body=b'{"type":"sync"}') + SEP
          + resp("@UUID2@", 201, body=b"{}"))
    write("tunnel_v1", "reversed_early_id", flags + resp("@UUID2@", 202, body=None, key="id")
          + SEP + resp("@UUID1@", 404, {"X-Single": "v", "Set-Cookie": ["a=b; Path=/"]}))
    write("tunnel_v1", "cookies", flags + resp("@UUID1@", cookies=[
        {"Name": "session", "Value": "s3cr3t", "Path": "/", "MaxAge": 3600, "HttpOnly": True,
         "Secure": True, "SameSite": 3},
        {"Name": "other", "Value": "a b", "Domain": ".example.com",
         "Expires": "2030-01-01T00:00:00Z", "SameSite": "lax", "Partitioned": True,
         "Quoted": True},
        {"Name": "bad name", "Value": "x"},
        {"Name": "gone", "Value": "", "MaxAge": -1, "Expires": "0001-01-01T00:00:00Z"}]))
    write("tunnel_v1", "binary_frames", b"\x01" + resp("@UUID1@") + SEP + resp("@UUID2@"))
    write("tunnel_v1", "invalid_answers", flags + resp("@UUID1@", 700) + SEP
          + resp("@UUID2@", 200, {"Bad Name": ["x"], "X": ["a\r\nInjected: 1"]}))
    write("tunnel_v1", "bad_body_and_cookies", flags + resp("@UUID1@", body=None).replace(
        b'"body": null', b'"body": "!!"') + SEP + resp("@UUID2@", cookies={"Name": "x"}))
    write("tunnel_v1", "junk", flags + b"not json" + SEP + b"[1,2]" + SEP + b'{"uuid":5}' + SEP
          + b'{"uuid":"nobody"}' + SEP + b'{"uuid":"@UUID1@","status":200,"status":201}')
    write("tunnel_v1", "many_headers", flags + resp("@UUID1@", {"H%d" % i: ["v"]
                                                               for i in range(120)}))
    write("tunnel_v1", "nothing", flags)


# ---------------------------------------------------------------- fixed bugs
# Inputs that found bugs in src/, kept as regression seeds (all fixed; the
# targets check them by default). A new open bug's input goes to
# fuzz/out/known/<target>/ (where=os.path.join("out", "known")) and is
# written only with --known-bugs, so `make check` stays green until it is
# fixed; then move it here.
def fixed_bugs():
    # Inputs found by long runs are also committed as files of their own in
    # fuzz/corpus/ (not written here): issue17-trailers-use-after-free (http:
    # chunk trailers grew a head that slices pointed into),
    # issue17-stream-never-ends and slow-reader-half-closed-not-cut (proxy: a
    # half-closed WebSocket with a quiet cluster held forever; then one with
    # a slow reader cut too early). scripts/fuzz-merge.sh keeps such
    # hand-named seeds whatever the merge picks.
    # stream_pipe.c sp_c_on_end: the user's clean EOF on an upgraded
    # WebSocket ends the stream (right) and closes the socket (wrong): what
    # the agent still sends is dropped; the user gets one stream window
    # (65535 bytes) of the 200000 and a close. Fixed: a conn takes the
    # peer's EOF as a half-close and the pipe writes on until the stream ends.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    write("proxy", "ws_user_eof_truncates", b"\x00" + (
        "GET %s/1.0/events HTTP/1.1\r\nHost: lxcm\r\n%sUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n"
        % ("/1.0/remote-cluster/enrolled/tunnel", "Authorization: Bearer %s\r\n" % API_TOKEN, key)).encode() + SEP + b"s 200\nrespond\ndn 200000\nend\n")
    # http_server.c hc_finish: a request with an unknown Transfer-Encoding
    # answered at its headers (404: bad cluster name) kept the connection,
    # and llhttp's 400 on the "body" was a second answer to one request.
    write("proxy", "te_unknown_two_answers", b"\x00PUT /1.0/remote-cluster/enro\xd9lled/tunnel/1.0/"
          b"instances/c1 HTTP/1.1\r\nHost: lxcm\r\nAuthorization: Bearer lxcm_fuzz\r\n"
          b"Transfer-Encoding: c`unked\r\n\r\n1h 2\nrespond\nd {}\nend\n")
    # proxy.c proxy_on_end: the agent ends its answer while the request body
    # is held up by flow control (the agent does not read it): the user's
    # request is finished, but tunnel_stream_end only queues END_STREAM
    # behind the blocked body; nobody resets the stream, so it and its
    # struct proxy stay until the tunnel ends (server streams 1 after the
    # user left). Fixed: the stream is reset there.
    body = "u" * 70000
    write("proxy", "early_end_body_blocked", b"\x00" + (
        "POST /1.0/remote-cluster/enrolled/tunnel/1.0/images HTTP/1.1\r\nHost: lxcm\r\n"
        "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s" % (API_TOKEN, len(body), body)).encode() + SEP
        + b"noconsume\ns 200\nrespond\nd ok\nend\n")
    # cluster_json.c cj_status_list: the sum of counts overflows int64 (UBSan).
    write("cluster_json", "sum_overflow", json.dumps({
        "instance_statuses": [{"status": "A", "count": 9223372036854775807},
                              {"status": "B", "count": 9223372036854775807}]}))
    # http_server.c hc_next_request: a pipelined request whose head is not
    # complete when the previous (asynchronous) answer finishes is never read
    # further: the connection stalls until the header timeout. Fixed.
    write("http", "stall_pipelined_partial_head", "GET /later HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHo")
    # http_server.c hc_parse: after a request with Upgrade headers to a route
    # that does not upgrade, llhttp stops at HPE_PAUSED_UPGRADE and the rest
    # of the connection is never parsed (stall until the idle timeout). Fixed.
    # tunnel_v1.c v1_is_field_value: control characters (here DEL) in a
    # response header value reach the operator; strict parsers refuse the
    # answer. Fixed.
    write("tunnel_v1", "ctl_in_header_value", b"\x00" + json.dumps(
        {"uuid": "@UUID1@", "status": 200, "headers": {"X-A": ["a\x7fb"]}, "body": None}).encode())
    # http_server.c hc_parse: an upgrade request on a route that upgrades,
    # answered without the upgrade (400: bad Sec-WebSocket-Key), leaves
    # llhttp in HPE_PAUSED_UPGRADE while the connection is read on; the
    # next bytes make hc_parse use a stale llhttp_get_error_pos (UBSan
    # pointer overflow) and the connection stalls. fuzz_tls stops its
    # script after such an answer. Fixed (the connection closes after it).
    write("tls", "upgrade_refused_then_data", bytes([2 | 1 | 4])
          + b"GET /1.0/remote-cluster/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n"
          b"Sec-WebSocket-Protocol: lxcm-tunnel.v2\r\n\r\n" + SEP + b"!read" + SEP
          + b"GET /1.0/status HTTP/1.1\r\n\r\n")
    # agent/forward.c forward_request: a stream refused with fwd_error (403
    # outside the allow-list) keeps its stream callbacks; DATA on it
    # (fwd_s_on_data -> fwd_start) sends the request to LXD anyway: a POST
    # whose first body bytes (not END_STREAM) come with its HEADERS, or any DATA on a WebSocket CONNECT
    # stream (then the agent opens the upgrade on the refused path). Fixed.
    write("agent_forward", "refused_post_with_body", b"\x00" + settings((8, 1))
          + req(1, "POST", "/forbidden", end=False, extra=[("content-length", "7")])
          + h2(DATA, 0, 1, b'{"a":') + SEP + h2(DATA, END_STREAM, 1, b"1}"))
    write("agent_forward", "ws_refused_path_then_data", b"\x00" + settings((8, 1))
          + h2(HEADERS, END_HEADERS, 1, hpack([(":method", "CONNECT"), (":protocol", "websocket"),
                                               (":scheme", "https"), (":authority", "lxd"),
                                               (":path", "/forbidden")]))
          + h2(DATA, 0, 1, b"x"))
    # http_server.c hc_parse: a request that paused reading (a streaming
    # body) and was answered without resuming left the connection not
    # reading: the pipelined request was answered, nothing after it. Fixed.
    write("http", "stall_paused_then_pipelined", "POST /stream/pause HTTP/1.1\r\n"
          "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"
          "GET / HTTP/1.1\r\n\r\n")
    write("http", "stall_ignored_upgrade", "GET / HTTP/1.1\r\nConnection: Upgrade\r\n"
          "Upgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    # fuzz_proxy found these, fixed:
    # proxy.c proxy_on_response took any :status in 100..999 from the agent:
    # the user got "HTTP/1.1 999 Unknown". Now 200..599, else 502.
    pauth = "Authorization: Bearer %s\r\n" % API_TOKEN
    pget = lambda path: ("GET /1.0/remote-cluster/enrolled/tunnel%s HTTP/1.1\r\nHost: lxcm\r\n%s"
                         "\r\n" % (path, pauth))
    write("proxy", "status_999", b"\x00" + (pget("/1.0") + "\n----\ns 999\nrespond-end\n").encode())
    # http_server.c hc_finish: an answer at the headers (a streaming route's
    # 404 for a bad name, 400, 431, 501; also the auth hook's 403) closed the
    # connection after a head without "Connection: close", dropping the
    # pipelined request.
    write("proxy", "sync_error_then_pipelined", b"\x00" + (
        "GET /1.0/remote-cluster/%2e%2e/tunnel/1.0 HTTP/1.1\r\n" + pauth + "\r\n"
        + pget("/1.0")).encode())
    # proxy.c: a response whose agent stalls after the headers held the
    # connection and the stream forever (the server does not read a user's
    # socket while answering, so a user who left went unnoticed). Now
    # --proxy-idle-timeout cuts it.
    write("proxy", "stalled_response_user_gone", b"\x00" + (
        pget("/1.0") + "\n----\ns 200\nrespond\nd partial\n").encode())
    # http_server.c hc_on_headers_complete (0f635dc until 7d39d6c): a request
    # the auth hook refused (401/403) left its connection open, unread and
    # untimed: every unauthenticated request leaked a connection.
    write("proxy", "no_auth", b"\x00" + ("GET /1.0/remote-cluster/enrolled/tunnel/1.0 HTTP/1.1\r\n"
                                         "Host: lxcm\r\n\r\n").encode())
    # proxy.c proxy_on_data (until 6fbb543): DATA before any response head
    # was written raw to the user ("injectedHTTP/1.1 502 ..."): here the
    # final answer after a 103, which tunnel_h2 does not pass on.
    write("proxy", "final_after_1xx_body_before_head", b"\x00" + pget("/1.0").encode() + SEP
          + b"s 103\nrespond\ns 200\nrespond\nd injected\nend\n")
    write("proxy", "bad_auth_then_pipelined", b"\x00" + (
        "GET /1.0/remote-cluster/enrolled/tunnel/1.0 HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n"
        + pget("/1.0")).encode())


# ---------------------------------------------------------------- proxy_proto
def pp2(ver_cmd, fam, block):
    """A PROXY protocol v2 header: signature, version/command, family, length, block."""
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([ver_cmd, fam])
            + struct.pack("!H", len(block)) + block)


def proxy_proto():
    v4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack("!HH", 56324, 443)
    v6 = (bytes.fromhex("20010db8000000000000000000000001")
          + bytes.fromhex("20010db8000000000000000000000002") + struct.pack("!HH", 80, 443))
    hello = b"\x16\x03\x01\x00\x05hello"
    write("proxy_proto", "v1_tcp4", b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + hello)
    write("proxy_proto", "v1_tcp4_max", b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n")
    write("proxy_proto", "v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n" + hello)
    write("proxy_proto", "v1_tcp6_mapped", b"PROXY TCP6 ::ffff:192.0.2.7 ::1 1000 443\r\n")
    write("proxy_proto", "v1_unknown", b"PROXY UNKNOWN\r\n" + hello)
    write("proxy_proto", "v1_unknown_long", b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")
    write("proxy_proto", "v1_partial", b"PROXY TCP4 192.0.2.1 198.5")
    write("proxy_proto", "v1_leading_zero", b"PROXY TCP4 192.0.02.1 198.51.100.2 1 2\r\n")
    write("proxy_proto", "v1_lone_lf", b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n")
    write("proxy_proto", "v2_tcp4", pp2(0x21, 0x11, v4) + hello)
    write("proxy_proto", "v2_tcp6", pp2(0x21, 0x21, v6) + hello)
    write("proxy_proto", "v2_tcp4_tlvs", pp2(0x21, 0x11, v4 + b"\x01\x00\x02h2\x04\x00\x00"
                                              + b"\xea\x00\x05vpc-1"))
    write("proxy_proto", "v2_local", pp2(0x20, 0x00, b"") + hello)
    write("proxy_proto", "v2_local_block", pp2(0x20, 0x11, v4))
    write("proxy_proto", "v2_unix", pp2(0x21, 0x31, b"/run/a".ljust(216, b"\x00")))
    write("proxy_proto", "v2_udp", pp2(0x21, 0x12, v4))
    write("proxy_proto", "v2_unspec", pp2(0x21, 0x00, b"junk"))
    write("proxy_proto", "v2_short_block", pp2(0x21, 0x11, v4[:8]))
    write("proxy_proto", "v2_truncated_tlv", pp2(0x21, 0x11, v4 + b"\x01\x00\x09ab"))
    write("proxy_proto", "v2_partial", pp2(0x21, 0x21, v6)[:30])
    write("proxy_proto", "v2_at_cap", pp2(0x21, 0x11, v4 + b"\x04" + struct.pack("!H", 4065)
                                          + b"n" * 4065))
    write("proxy_proto", "tls_client_hello", hello)


# ---------------------------------------------------------------- config_file
def config_file():
    # First byte: 'P' parse in memory, 'M' through config_file_merge.
    example = ("# lxcm-server.conf\n"
               "\n"
               "data-dir = /var/lib/lxcm-server\n"
               "# management-addr = 127.0.0.1:8443\n"
               "management-addr = [::1]:8443\n"
               "trusted-proxy = 10.0.0.0/8\n"
               "trusted-proxy = fd00::/8\n"
               "log-level = info\n")
    write("config_file", "example", "P" + example)
    write("config_file", "merge_example", "M" + example)
    write("config_file", "merge_interval_in_file", "Minterval = 5\nonce = true\ndata-dir=/x\n")
    write("config_file", "agent", "P\tdata-dir\t=\t/var/lib/lxcm-agent\t\n"
          "allow-path = /1.0\nallow-path=/ui\ndebug = true\nonce = false\n")
    write("config_file", "quoted", "Pdata-dir = \"  /a b # c  \"\nlog-level=\"debug\"\n")
    write("config_file", "crlf", "Pdata-dir = /x\r\ninterval = 60\r\n")
    write("config_file", "no_final_newline", "Pinterval = 60")
    write("config_file", "unknown_key", "P# ok\nnope = 1\n")
    write("config_file", "reserved_key", "Pconfig = /etc/other.conf\n")
    write("config_file", "bool_bad", "Ponce = yes\n")
    write("config_file", "no_equals", "Pdata-dir /x\n")
    write("config_file", "empty_value", "Pdata-dir =\n")
    write("config_file", "unbalanced_quote", "Pdata-dir = \"/x\n")
    write("config_file", "nul", b"Pdata-dir = /a\x00b\n")
    write("config_file", "control", b"Pdata-dir = /a\x1b[31m\n")
    write("config_file", "long_line", "Pdata-dir = " + "x" * 4100 + "\n")
    write("config_file", "merge_missing_value", "Mdata-dir\n")


if __name__ == "__main__":
    if "--known-bugs" in sys.argv[1:]:
        proxy_known_bugs()
        sys.exit(0)
    jointoken()
    config_file()
    cert_pem()
    rfc3339()
    audit_cursor()
    router()
    json_target()
    cluster_json()
    agent_status()
    http_target()
    ws_target()
    ws_client()
    tunnel_agent()
    tunnel_manager()
    tunnel_direct()
    tunnel_v1()
    api()
    tls()
    agent_forward()
    proxy()
    proxy_proto()
    fixed_bugs()
