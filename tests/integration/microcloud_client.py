"""microcloud_client - plays a MicroCloud cluster against a cluster manager.

Written from MICROCLOUD-PROTOCOL.md alone, as an existing MicroCloud would
connect: it shares no code with lxcm (nor with lxcm's test harness) and
uses only Python's standard library and the `openssl` command.

    c = MicroCloud(token_text)          # decodes the join token
    c.pin()                             # tries each address, pins the fingerprint
    c.join()                            # POST /1.0/remote-cluster with its own cert
    c.post_status(c.sample_status())    # POST /1.0/remote-cluster/status
    t = c.open_tunnel()                 # GET /1.0/remote-cluster/ws, tunnel v1
    t.serve_in_thread(FakeLXD())        # answers request frames one at a time
    ...
    c.leave()                           # DELETE /1.0/remote-cluster

Every response of the manager is returned as (status, headers, parsed JSON
or None, raw body). The WebSocket client is hand-rolled from RFC 6455:
masked frames, no extensions, no subprotocol (tunnel v1).
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class ProtocolError(Exception):
    pass


class TunnelClosed(Exception):
    def __init__(self, code=None, reason=""):
        Exception.__init__(self, "tunnel closed (code %r) %s" % (code, reason))
        self.code = code
        self.reason = reason


def decode_token(text):
    """The join token: base64 (standard, padded) of a JSON object."""
    obj = json.loads(base64.b64decode(text.strip(), validate=True))
    for k in ("server_name", "fingerprint", "addresses", "secret", "expires_at"):
        if k not in obj:
            raise ProtocolError("join token has no %r" % k)
    return obj


def make_certificate(name, directory):
    """A fresh self-signed certificate and key for this cluster (openssl CLI)."""
    crt = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "30",
                    "-subj", "/CN=microcloud-" + name],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    with open(crt) as f:
        pem = f.read()
    return crt, key, pem


class MicroCloud:
    """One MicroCloud cluster: its certificate, the manager's pinned address."""

    def __init__(self, token_text, name=None, directory=None, cert=None):
        self.token_text = token_text.strip()
        self.token = decode_token(self.token_text)
        self.name = name or self.token["server_name"]
        self.dir = directory or tempfile.mkdtemp(prefix="mc-")
        if cert is None:
            cert = make_certificate(self.name, self.dir)
        self.cert_path, self.key_path, self.cert_pem = cert
        self.address = None      # (host, port) that matched the fingerprint
        self.fingerprint = self.token["fingerprint"].lower()

    # -- TLS with the pinned certificate --

    def _context(self, with_cert=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE      # trust is the pinned fingerprint
        if with_cert:
            ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def _tls(self, addr, with_cert=True, timeout=15):
        raw = socket.create_connection(addr, timeout=timeout)
        try:
            s = self._context(with_cert).wrap_socket(raw)
        except Exception:
            raw.close()
            raise
        got = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
        if got != self.fingerprint:
            s.close()
            raise ProtocolError("server certificate %s does not match the token's %s" %
                                (got, self.fingerprint))
        return s

    def pin(self):
        """Tries each address of the token; keeps the first whose certificate matches."""
        errors = []
        for a in self.token["addresses"]:
            host, _, port = a.rpartition(":")
            addr = (host.strip("[]"), int(port))
            try:
                self._tls(addr, with_cert=False).close()
            except (OSError, ProtocolError, ssl.SSLError) as e:
                errors.append("%s: %s" % (a, e))
                continue
            self.address = addr
            return addr
        raise ProtocolError("no address of the token works: %s" % "; ".join(errors))

    def request(self, method, path, body=None, with_cert=True, timeout=30):
        """(status, headers dict lower-case, JSON or None, raw bytes)."""
        if self.address is None:
            self.pin()
        conn = http.client.HTTPConnection(self.address[0], self.address[1], timeout=timeout)
        conn.sock = self._tls(self.address, with_cert=with_cert, timeout=timeout)
        headers = {"User-Agent": "microcloud-conformance"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return r.status, hdrs, parsed, raw

    # -- the protocol --

    def join(self, token_text=None, name=None):
        return self.request("POST", "/1.0/remote-cluster", {
            "cluster_name": name or self.name,
            "cluster_certificate": self.cert_pem,
            "token": token_text or self.token_text})

    def post_status(self, status):
        return self.request("POST", "/1.0/remote-cluster/status", status)

    def leave(self):
        return self.request("DELETE", "/1.0/remote-cluster")

    @staticmethod
    def sample_status(members=("mc-a", "mc-b")):
        """A heartbeat as MicroCloud sends one, with the metrics of each member."""
        metrics = []
        for i, m in enumerate(members):
            metrics.append({
                "member": m,
                "service": "LXD",
                "metrics": ("# HELP lxd_cpu_seconds_total The total number of CPU seconds.\n"
                            "# TYPE lxd_cpu_seconds_total counter\n"
                            'lxd_cpu_seconds_total{cpu="0",mode="user"} %d.5\n'
                            "# TYPE lxd_memory_MemTotal_bytes gauge\n"
                            "lxd_memory_MemTotal_bytes %d\n" % (100 + i, 8 << 30)),
            })
        return {
            "cpu_total_count": 8 * len(members),
            "cpu_load_1": "0.42", "cpu_load_5": "0.31", "cpu_load_15": "0.20",
            "memory_total_amount": (8 << 30) * len(members),
            "memory_usage": (3 << 30) * len(members),
            "instance_statuses": [{"status": "Running", "count": 3},
                                  {"status": "Stopped", "count": 1}],
            "member_statuses": [{"status": "ONLINE", "count": len(members)}],
            "ceph_statuses": [{"status": "HEALTH_OK", "count": 1}],
            "storage_pool_usages": [
                {"name": "local", "member": members[0], "total": 100 << 30, "usage": 10 << 30},
                {"name": "remote", "member": "", "total": 500 << 30, "usage": 50 << 30}],
            "ui_url": "https://10.0.0.1:8443",
            "server_metrics": metrics,
        }

    def open_tunnel(self, timeout=15):
        if self.address is None:
            self.pin()
        s = self._tls(self.address, with_cert=True, timeout=timeout)
        try:
            return Tunnel(s, self.address)
        except Exception:
            s.close()
            raise


class Tunnel:
    """The client end of a tunnel v1 WebSocket (RFC 6455, client role)."""

    def __init__(self, sock, addr):
        self.sock = sock
        self.buf = bytearray()      # received, not yet parsed
        self.closed = False
        self.close_code = None
        self._thread = None
        self._stop = threading.Event()
        self.served = 0
        self.errors = []
        self.send_timeout = 60
        self._handshake(addr)

    def _handshake(self, addr):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /1.0/remote-cluster/ws HTTP/1.1\r\n"
               "Host: %s:%d\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "User-Agent: microcloud-conformance\r\n\r\n" % (addr[0], addr[1], key))
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed during the WebSocket handshake")
            self.buf += chunk
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            raise ProtocolError("WebSocket handshake answered %d: %r" % (status, head[:300]))
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise ProtocolError("bad Sec-WebSocket-Accept %r" % hdrs.get("sec-websocket-accept"))
        if hdrs.get("upgrade", "").lower() != "websocket":
            raise ProtocolError("bad Upgrade header %r" % hdrs.get("upgrade"))
        if "sec-websocket-protocol" in hdrs:
            raise ProtocolError("a subprotocol was chosen although none was offered")

    # -- frames --

    def send_frame(self, opcode, payload, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        # XOR with the mask, fast: through big integers.
        if n:
            reps = (mask * (n // 4 + 1))[:n]
            masked = (int.from_bytes(payload, "big") ^ int.from_bytes(reps, "big")).to_bytes(n, "big")
        else:
            masked = b""
        # Reads leave short timeouts on the socket; a big frame needs longer.
        self.sock.settimeout(self.send_timeout)
        self.sock.sendall(head + mask + masked)

    def send_json(self, obj):
        self.send_frame(OP_TEXT, json.dumps(obj))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            self.sock.settimeout(left if left is None else max(left, 0.01))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                self.closed = True
                raise TunnelClosed(self.close_code, "connection ended")
            self.buf += chunk

    def _frame(self, deadline):
        """One whole frame (opcode, fin, payload); nothing is consumed on a timeout."""
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ProtocolError("the server masked a frame")
        n, off = b1 & 0x7f, 2
        if n == 126:
            self._need(4, deadline)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10, deadline)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n, deadline)
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return b0 & 0x0f, bool(b0 & 0x80), payload

    def recv_message(self, timeout=15):
        """(opcode, payload) of the next data message; answers pings, reports a close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        parts, first = [], None
        while True:
            op, fin, payload = self._frame(deadline)
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code
                if not self.closed:
                    try:    # echo it, then end the connection, as Go clients do
                        self.send_frame(OP_CLOSE, payload[:2])
                        self.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                self.closed = True
                raise TunnelClosed(code, payload[2:].decode("utf-8", "replace"))
            if op != OP_CONT:
                first = op
            parts.append(payload)
            if fin:
                return first, b"".join(parts)

    def recv_request(self, timeout=15):
        """The next request frame as a dict."""
        op, payload = self.recv_message(timeout)
        if op != OP_TEXT:
            raise ProtocolError("request frame is not a text message (opcode %d)" % op)
        req = json.loads(payload)
        for k in ("uuid", "method", "path", "headers", "body"):
            if k not in req:
                raise ProtocolError("request frame has no %r: %r" % (k, req))
        return req

    def respond(self, req_or_uuid, status=200, headers=None, cookies=None, body=b"",
                early_form=False):
        """Sends one response frame. body: bytes, str or a JSON value."""
        u = req_or_uuid["uuid"] if isinstance(req_or_uuid, dict) else req_or_uuid
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        hdrs = {}
        for k, v in (headers or {}).items():
            vals = v if isinstance(v, list) else [v]
            hdrs[k] = vals[0] if early_form and len(vals) == 1 else vals
        frame = {"uuid": u, "status": status, "headers": hdrs,
                 "cookies": cookies or [],
                 "body": base64.b64encode(body).decode() if body is not None else None}
        if early_form:
            frame["id"] = frame.pop("uuid")
        self.send_json(frame)

    def close(self, code=1000, reason=""):
        if self.closed:
            self.sock.close()
            return
        self.closed = True
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())
            deadline = time.monotonic() + 3
            while True:     # wait for the server's close frame
                op, _, _ = self._frame(deadline)
                if op == OP_CLOSE:
                    break
        except (OSError, TunnelClosed, ProtocolError, socket.timeout):
            pass
        finally:
            self.sock.close()

    def abort(self):
        """Ends the connection without a closing handshake."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- serving, one request at a time as the reference does --

    def serve_one(self, handler, timeout=15):
        req = self.recv_request(timeout)
        status, headers, cookies, body = handler(req)
        self.respond(req, status, headers, cookies, body)
        self.served += 1
        return req

    def serve_in_thread(self, handler):
        def loop():
            while not self._stop.is_set():
                try:
                    self.serve_one(handler, timeout=0.2)
                except socket.timeout:
                    continue
                except TunnelClosed:
                    return
                except Exception as e:     # reported by stop_serving
                    self.errors.append(e)
                    return
        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop_serving(self):
        """Stops the serving thread; after this the caller owns the socket again."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            self._thread = None
        if self.errors:
            raise self.errors[0]


def _b64(req):
    return base64.b64decode(req["body"]) if req.get("body") else b""


class FakeLXD:
    """Answers request frames as a small LXD would.

    /1.0                   server info (sync envelope)
    /1.0/instances         a list of URLs, ?recursion=1 objects
    /1.0/echo...           what arrived: method, path, headers, base64 body
    /1.0/binary            the request body back, application/octet-stream
    /1.0/session/set?v=X   sets cookie session=X (and a plain `theme` cookie)
    /1.0/session/check     the Cookie headers that arrived
    /1.0/session/clear     expires the session cookie (MaxAge -1)
    anything else          404 in LXD's error envelope
    """

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    @staticmethod
    def sync(metadata, status=200):
        return {"type": "sync", "status": "Success", "status_code": 200, "operation": "",
                "error_code": 0, "error": "", "metadata": metadata}

    def __call__(self, req):
        with self.lock:
            self.seen.append(req)
        path, _, query = req["path"].partition("?")
        base = {"Content-Type": ["application/json"], "X-Fake-Lxd": ["one", "two"]}
        if path == "/1.0":
            return 200, base, [], self.sync({"api_version": "1.0", "auth": "trusted",
                                             "environment": {"server_name": "mc-a"}})
        if path == "/1.0/instances":
            names = ["c1", "c2", "c3"]
            if "recursion=1" in query:
                md = [{"name": n, "status": "Running"} for n in names]
            else:
                md = ["/1.0/instances/" + n for n in names]
            return 200, base, [], self.sync(md)
        if path.startswith("/1.0/echo"):
            return 200, base, [], self.sync({
                "method": req["method"], "path": req["path"], "headers": req["headers"],
                "body": req["body"]})
        if path == "/1.0/binary":
            return 200, {"Content-Type": ["application/octet-stream"]}, [], _b64(req)
        if path == "/1.0/session/set":
            v = query.split("v=", 1)[1] if "v=" in query else "s3cr3t"
            cookies = [
                {"Name": "session", "Value": v, "Path": "/", "Domain": "", "Expires":
                 "0001-01-01T00:00:00Z", "RawExpires": "", "MaxAge": 0, "Secure": True,
                 "HttpOnly": True, "SameSite": 2, "Raw": "", "Unparsed": None},
                {"Name": "theme", "Value": "dark", "Path": "/1.0", "Domain": "",
                 "Expires": "2030-01-02T03:04:05Z", "RawExpires": "", "MaxAge": 3600,
                 "Secure": False, "HttpOnly": True, "SameSite": 3, "Raw": "",
                 "Unparsed": None}]
            return 200, base, cookies, self.sync({})
        if path == "/1.0/session/check":
            return 200, base, [], self.sync({"cookie": req["headers"].get("Cookie", [])})
        if path == "/1.0/session/clear":
            cookies = [{"Name": "session", "Value": "", "Path": "/", "MaxAge": -1}]
            return 200, base, cookies, self.sync({})
        return 404, {"Content-Type": ["application/json"]}, [], {
            "type": "error", "status": "", "status_code": 0, "operation": "",
            "error_code": 404, "error": "not found", "metadata": None}


def new_uuid():
    return str(uuidlib.uuid4())
