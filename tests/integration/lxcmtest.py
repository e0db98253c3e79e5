"""lxcmtest - a small harness for lxcm's integration tests.

Every tests/integration/test_*.py is a plain script (no pytest): it imports
this module, registers test functions with @t.test, and ends with
t.main(), which runs them in order, prints one PASS/FAIL line per test and
a final "N passed, N failed" line, and exits non-zero on any failure.

The tests spawn the real binaries from $LXCM_BUILD (default: <src>/build) on
free loopback ports, with temporary data directories. Every process started
here is registered and stopped at exit (try/finally, atexit and SIGTERM), so
a failing test never leaves a server behind.

Only Python's standard library is used; certificates come from `openssl`.
"""

import atexit
import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get("LXCM_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("LXCM_BUILD") or os.path.join(SRC, "build")

ENVELOPE_KEYS = {"type", "status", "status_code", "operation", "error_code",
                 "error", "metadata"}

# ---------------------------------------------------------------------------
# Process registry and cleanup
# ---------------------------------------------------------------------------

_procs = []          # every Popen we started that may still run
_servers = []        # every Server made, for log tails on failure
_cleanups = []       # callables run at exit, last registered first
_tmp_root = None


def _stop_proc(p, timeout=10):
    if p.poll() is not None:
        return
    try:
        p.terminate()
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    except OSError:
        pass


def _cleanup_all():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on
            log("cleanup error: %r" % (e,))
    while _procs:
        _stop_proc(_procs.pop())
    if _tmp_root and os.environ.get("LXCM_KEEP_TMP") != "1":
        shutil.rmtree(_tmp_root, ignore_errors=True)


def _on_sigterm(signum, frame):
    # ctest sends SIGTERM (then SIGKILL) on timeout; turn it into a normal
    # exit so atexit stops our children.
    sys.exit(128 + signum)


atexit.register(_cleanup_all)
signal.signal(signal.SIGTERM, _on_sigterm)


def at_exit(fn):
    """Runs fn at exit (after the tests, before the processes are killed)."""
    _cleanups.append(fn)


def spawn(args, **kw):
    """Popen that is registered for cleanup."""
    p = subprocess.Popen(args, **kw)
    _procs.append(p)
    return p


def forget(p):
    if p in _procs:
        _procs.remove(p)


def tmpdir(prefix="t"):
    """A fresh directory under this test file's temporary root.

    The root is short (unix socket paths are limited) and removed at exit
    unless LXCM_KEEP_TMP=1.
    """
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="lxcm-it-")
    return tempfile.mkdtemp(prefix=prefix + "-", dir=_tmp_root)


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what="value"):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def wait_for(fn, timeout=30.0, interval=0.2, what="condition"):
    """Polls fn() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.0f s waiting for %s%s" % (
                timeout, what, "" if last_exc is None else " (last error: %r)" % (last_exc,)))
        time.sleep(interval)


def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def rfc3339(t):
    """RFC 3339 UTC text for a Unix time."""
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    """Unix time of an RFC 3339 text (Z or numeric offset, optional fraction)."""
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + rest[:i][:6].ljust(6, "0") + rest[i:]
    return datetime.datetime.fromisoformat(s).timestamp()


def decode_join_token(tok):
    return json.loads(base64.b64decode(tok.strip(), validate=True))


def encode_join_token(obj):
    return base64.b64encode(json.dumps(obj).encode()).decode()


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def check_envelope_error(body, code, what="error envelope"):
    """body (parsed JSON) is exactly the protocol's error envelope for code."""
    check(isinstance(body, dict), "%s: not a JSON object: %r" % (what, body))
    eq(set(body.keys()), ENVELOPE_KEYS, what + " keys")
    eq(body["type"], "error", what + " type")
    eq(body["status"], "", what + " status")
    eq(body["status_code"], 0, what + " status_code")
    eq(body["operation"], "", what + " operation")
    eq(body["error_code"], code, what + " error_code")
    check(isinstance(body["error"], str) and body["error"] != "",
          "%s: error must be a non-empty message, got %r" % (what, body["error"]))
    eq(body["metadata"], None, what + " metadata")


def check_envelope_sync(body, what="sync envelope"):
    check(isinstance(body, dict), "%s: not a JSON object: %r" % (what, body))
    eq(set(body.keys()), ENVELOPE_KEYS, what + " keys")
    eq(body["type"], "sync", what + " type")
    eq(body["status"], "Success", what + " status")
    eq(body["status_code"], 200, what + " status_code")
    eq(body["operation"], "", what + " operation")
    eq(body["error_code"], 0, what + " error_code")
    eq(body["error"], "", what + " error")


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

class Cert:
    """A self-signed ECDSA P-256 client certificate made with openssl."""

    def __init__(self, name="client", directory=None):
        d = directory or tmpdir("cert")
        self.cert_path = os.path.join(d, name + ".crt")
        self.key_path = os.path.join(d, name + ".key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", self.key_path, "-out", self.cert_path,
             "-days", "2", "-subj", "/CN=" + name],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        with open(self.cert_path) as f:
            self.pem = f.read()
        self.fingerprint = sha256_hex(ssl.PEM_cert_to_DER_cert(self.pem))


# ---------------------------------------------------------------------------
# HTTP over TLS
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers      # dict, lower-case names
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def metadata(self):
        return self.json.get("metadata") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.raw[:300])


def tls_context(cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert.cert_path, cert.key_path)
    return ctx


def tls_connect(port, cert=None, timeout=15, host="127.0.0.1"):
    """A connected, handshaken TLS socket."""
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return tls_context(cert).wrap_socket(raw, server_hostname=None)
    except Exception:
        raw.close()
        raise


def server_fingerprint(port):
    s = tls_connect(port)
    try:
        return sha256_hex(s.getpeercert(binary_form=True))
    finally:
        s.close()


def request(port, method, path, body=None, headers=None, cert=None, timeout=30,
            fingerprint=None):
    """One HTTPS request on a fresh connection. body: bytes, str or a JSON value."""
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                       context=tls_context(cert))
    try:
        conn.request(method, path, body=body, headers=h)
        if fingerprint is not None:
            got = sha256_hex(conn.sock.getpeercert(binary_form=True))
            eq(got, fingerprint, "server certificate fingerprint")
        r = conn.getresponse()
        raw = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
    finally:
        conn.close()


def read_http_response(sock, timeout=15):
    """Reads one HTTP/1.1 response from a socket (Content-Length or close)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        raise TestFailure("no HTTP response, got %r" % (data[:200],))
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        rest = rest[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        raise TestFailure("chunked response not expected here")
    return Response(status, headers, rest)


def raw_exchange(port, data, cert=None, timeout=15):
    """Sends raw bytes (as far as the peer lets us) and reads one response.

    The server may answer and close before reading everything (413, 431);
    a failed send is then expected, and the answer is still read.
    """
    s = tls_connect(port, cert=cert, timeout=timeout)
    try:
        try:
            view = memoryview(data)
            while view:
                n = s.send(view[:16384])
                view = view[n:]
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            pass
        return read_http_response(s, timeout)
    finally:
        s.close()


# ---------------------------------------------------------------------------
# lxcm-server
# ---------------------------------------------------------------------------

def binary(name):
    p = os.path.join(BUILD, name)
    if not os.access(p, os.X_OK):
        raise TestFailure("%s not built (LXCM_BUILD=%s)" % (p, BUILD))
    return p


class Server:
    """An lxcm-server on free loopback ports with its own data directory."""

    def __init__(self, *extra_args, data_dir=None):
        self.extra = list(extra_args)
        self.data_dir = data_dir or tmpdir("srv")
        self.mgmt_port = None
        self.conn_port = None
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.token = None
        _servers.append(self)

    # -- lifecycle --

    def start(self, timeout=30):
        tries = 1 if self.mgmt_port else 3   # restart keeps its ports
        for attempt in range(tries):
            if self.mgmt_port is None or attempt > 0:
                self.mgmt_port, self.conn_port = free_port(), free_port()
                while self.conn_port == self.mgmt_port:
                    self.conn_port = free_port()
            if self._start_once(timeout):
                return self
        raise TestFailure("lxcm-server did not start; log:\n" + self.log_tail())

    def _start_once(self, timeout):
        args = [binary("lxcm-server"), "--data-dir", self.data_dir,
                "--management-addr", "127.0.0.1:%d" % self.mgmt_port,
                "--connector-addr", "127.0.0.1:%d" % self.conn_port] + self.extra
        logf = open(self.log_path, "ab")
        logf.write(("\n=== %s\n" % " ".join(args)).encode())
        logf.flush()
        self.proc = spawn(args, stdout=logf, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                forget(self.proc)
                return False
            if self._ready():
                with open(os.path.join(self.data_dir, "admin.token")) as f:
                    self.token = f.read().strip()
                return True
            time.sleep(0.1)
        _stop_proc(self.proc)
        forget(self.proc)
        return False

    def _ready(self):
        try:
            for port in (self.mgmt_port, self.conn_port):
                r = request(port, "GET", "/1.0/status", timeout=5)
                if r.status != 200:
                    return False
            return os.path.exists(os.path.join(self.data_dir, "admin.token"))
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return False

    def stop(self):
        if self.proc is not None:
            _stop_proc(self.proc)
            forget(self.proc)
            rc = self.proc.returncode
            self.proc = None
            return rc
        return None

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.mgmt_port

    @property
    def token_file(self):
        return os.path.join(self.data_dir, "admin.token")

    # -- clients --

    def mgmt(self, method, path, body=None, token=True, headers=None, **kw):
        """Management API call; token=True uses the admin token, a string
        that token, None/False no Authorization header."""
        h = dict(headers or {})
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = "Bearer " + token
        return request(self.mgmt_port, method, path, body=body, headers=h, **kw)

    def conn(self, method, path, body=None, cert=None, headers=None, **kw):
        """Connector call, with a client certificate when cert is given."""
        return request(self.conn_port, method, path, body=body, headers=headers,
                       cert=cert, **kw)

    # -- common flows --

    def create_token(self, name, **fields):
        body = {"cluster_name": name}
        body.update(fields)
        r = self.mgmt("POST", "/1.0/remote-cluster-join-token", body)
        if r.status != 200:
            raise TestFailure("token create %s: %r" % (name, r))
        return r.metadata["token"]

    def join(self, name, token, cert):
        return self.conn("POST", "/1.0/remote-cluster", {
            "cluster_name": name, "cluster_certificate": cert.pem, "token": token})

    def enroll(self, name, cert=None):
        """Creates a token and joins with a new (or the given) certificate."""
        cert = cert or Cert(name)
        r = self.join(name, self.create_token(name), cert)
        if r.status != 200:
            raise TestFailure("join %s: %r" % (name, r))
        return cert


# ---------------------------------------------------------------------------
# CLI and agent
# ---------------------------------------------------------------------------

def run(args, timeout=60, env=None, check_rc=None, input=None):
    """Runs a command to completion; returns CompletedProcess (text)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    try:
        cp = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                            env=e, input=input, stdin=None if input is not None
                            else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as ex:
        raise TestFailure("%s timed out after %s s; output so far: %r %r" % (
            " ".join(args), timeout, ex.stdout, ex.stderr))
    if check_rc is not None and cp.returncode != check_rc:
        raise TestFailure("%s exited %d (want %d)\nstdout: %s\nstderr: %s" % (
            " ".join(args), cp.returncode, check_rc, cp.stdout, cp.stderr))
    return cp


class Cli:
    """Runs `lxcm` against a Server with its own XDG_CONFIG_HOME."""

    def __init__(self, server, config_home=None):
        self.server = server
        self.config_home = config_home or tmpdir("xdg")

    def __call__(self, *args, check_rc=0, timeout=60, json_out=False):
        argv = [binary("lxcm"), "--server", self.server.url,
                "--token-file", self.server.token_file]
        if json_out:
            argv.append("--json")
        argv += list(args)
        return run(argv, timeout=timeout, check_rc=check_rc,
                   env={"XDG_CONFIG_HOME": self.config_home, "HOME": self.config_home,
                        "LXCM_SERVER": "", "LXCM_TOKEN": ""})

    def json(self, *args, timeout=60):
        cp = self(*args, json_out=True, timeout=timeout)
        try:
            return json.loads(cp.stdout)
        except ValueError:
            raise TestFailure("lxcm --json %s: not JSON: %r" % (" ".join(args), cp.stdout))


def agent(*args, check_rc=None, timeout=60):
    return run([binary("lxcm-agent")] + list(args), timeout=timeout, check_rc=check_rc)


def tunnel_transport():
    """The --tunnel-transport the agents of this run use (LXCM_TEST_TUNNEL_TRANSPORT):
    tests/CMakeLists.txt runs the tunnel tests once per transport. Empty:
    the agent's default (auto, which is direct without a proxy)."""
    return os.environ.get("LXCM_TEST_TUNNEL_TRANSPORT", "")


def expected_transport():
    """tunnel.transport of the cluster object when nothing is in the way."""
    return "websocket" if tunnel_transport() == "websocket" else "direct"


def spawn_agent(*args, log_path):
    args = list(args)
    if args and args[0] == "run" and tunnel_transport() and \
            not any(a.startswith("--tunnel-transport") for a in args):
        args += ["--tunnel-transport", tunnel_transport()]
    logf = open(log_path, "ab")
    try:
        return spawn([binary("lxcm-agent")] + list(args), stdout=logf,
                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        logf.close()


# ---------------------------------------------------------------------------
# LXD
# ---------------------------------------------------------------------------

class Skip(Exception):
    pass


def lxd_start(timeout=240):
    """Starts (or reuses) the test LXD; returns its socket path.

    With LXCM_SKIP_LXD=1 the calling test file is skipped (exit 0) instead;
    without it, any failure to get a working LXD is a test failure. An LXD
    that this call started is stopped at exit (LXCM_KEEP_LXD=1 keeps it);
    one that was already running is left alone.
    """
    if os.environ.get("LXCM_SKIP_LXD") == "1":
        raise Skip("LXCM_SKIP_LXD=1: not starting LXD")
    script = os.path.join(SRC, "scripts", "lxd-test-env.sh")
    if not os.access(script, os.X_OK) and not os.path.exists(script):
        raise TestFailure("%s is missing (set LXCM_SKIP_LXD=1 to skip LXD tests)" % script)
    was_running = subprocess.run(["sh", script, "status"], capture_output=True,
                                 timeout=60).returncode == 0
    try:
        cp = subprocess.run(["sh", script, "start"], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TestFailure("lxd-test-env.sh start timed out after %d s "
                          "(set LXCM_SKIP_LXD=1 to skip LXD tests)" % timeout)
    if not was_running and os.environ.get("LXCM_KEEP_LXD") != "1":
        at_exit(lambda: subprocess.run(["sh", script, "stop"], capture_output=True,
                                       timeout=180))
    lines = [ln for ln in cp.stdout.splitlines() if ln.strip()]
    if cp.returncode != 0 or not lines or not lines[-1].startswith("LXD_SOCKET="):
        raise TestFailure("lxd-test-env.sh start failed (exit %d; set LXCM_SKIP_LXD=1 to "
                          "skip LXD tests)\nstdout: %s\nstderr: %s" % (
                              cp.returncode, cp.stdout, cp.stderr[-3000:]))
    return lines[-1].split("=", 1)[1]


def lxd_get(sock_path, path, timeout=30):
    """GET on LXD's unix socket; returns the response's metadata."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(("GET %s HTTP/1.0\r\nHost: lxd\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        raise TestFailure("LXD GET %s: %d %r" % (path, status, body[:300]))
    return json.loads(body)["metadata"]


# ---------------------------------------------------------------------------
# Test runner
# ---------------------------------------------------------------------------

class Tests:
    def __init__(self, name):
        self.name = name
        self.tests = []
        self.setup_fn = None

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def setup(self, fn):
        """fn() runs once before the tests; Skip from it skips the file."""
        self.setup_fn = fn
        return fn

    def main(self):
        passed = failed = 0
        t0 = time.monotonic()
        try:
            if self.setup_fn is not None:
                try:
                    self.setup_fn()
                except Skip as e:
                    log("SKIP %s: %s" % (self.name, e))
                    log("0 passed, 0 failed (skipped)")
                    sys.stdout.flush()
                    _cleanup_all()
                    os._exit(0)
                except Exception:
                    log("FAIL setup\n" + traceback.format_exc())
                    log("0 passed, 1 failed")
                    sys.stdout.flush()
                    _cleanup_all()
                    os._exit(1)
            # LXCM_TEST_ONLY=name[,name...] runs only those tests (setup still runs).
            only = set(filter(None, os.environ.get("LXCM_TEST_ONLY", "").split(",")))
            for fn in self.tests:
                if only and fn.__name__ not in only:
                    continue
                start = time.monotonic()
                try:
                    fn()
                except Exception:
                    failed += 1
                    log("FAIL %s (%.1f s)\n%s" % (fn.__name__, time.monotonic() - start,
                                                  traceback.format_exc()))
                    for srv in _servers:
                        log("--- last lines of %s\n%s" % (srv.log_path, srv.log_tail(15)))
                else:
                    passed += 1
                    log("PASS %s (%.1f s)" % (fn.__name__, time.monotonic() - start))
        finally:
            _cleanup_all()
        log("%s: %.1f s" % (self.name, time.monotonic() - t0))
        log("%d passed, %d failed" % (passed, failed))
        sys.stdout.flush()
        sys.exit(1 if failed else 0)


# ---------------------------------------------------------------------------
# Helpers added for the tunnel tests (test_tunnel_*.py)
# ---------------------------------------------------------------------------

def cert_from_files(cert_path, key_path):
    """A Cert for an existing certificate and key (e.g. an agent's)."""
    c = Cert.__new__(Cert)
    c.cert_path, c.key_path = cert_path, key_path
    with open(cert_path) as f:
        c.pem = f.read()
    c.fingerprint = sha256_hex(ssl.PEM_cert_to_DER_cert(c.pem))
    return c


def agent_cert(data_dir):
    """The client certificate `lxcm-agent join` saved in data_dir."""
    return cert_from_files(os.path.join(data_dir, "agent.crt"),
                           os.path.join(data_dir, "agent.key"))


def proc_status_kb(pid, field):
    """A 'kB' field of /proc/PID/status (VmRSS, VmHWM...), as an int."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == field:
                return int(v.split()[0])
    raise TestFailure("no %s in /proc/%d/status" % (field, pid))


def reset_peak_rss(pid):
    """Resets VmHWM to the current VmRSS (Linux clear_refs 5); False if not possible."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def lxd_request(sock_path, method, path, body=None, timeout=60):
    """Any request on LXD's unix socket; returns Response (JSON parsed)."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    body = body or b""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(("%s %s HTTP/1.0\r\nHost: lxd\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (method, path, len(body))).encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, raw = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return Response(int(lines[0].split()[1]), headers, raw)


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocket:
    """A minimal RFC 6455 client over a connected socket (TLS or plain).

    ws_upgrade() makes one. recv_message() skips pings (LXD sends
    "keepalive" ones), answering them only with answer_pings=True, and
    returns (opcode, payload) of the next text/binary/close message.
    """

    def __init__(self, sock, pending=b""):
        self.sock = sock
        self.buf = pending

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("WebSocket read timed out")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket peer closed the connection")
            self.buf += chunk

    def _take(self, n, deadline):
        self._fill(n, deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=30):
        """(fin, opcode, payload) of the next frame."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._take(2, deadline), "big")
        elif n == 127:
            n = int.from_bytes(self._take(8, deadline), "big")
        mask = self._take(4, deadline) if b1 & 0x80 else None
        payload = self._take(n, deadline)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def send(self, opcode, payload=b""):
        """Sends one masked frame (clients must mask)."""
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))

    def recv_message(self, timeout=30, answer_pings=False):
        """(opcode, payload) of the next data or close message; pings are skipped
        (and answered with a pong if answer_pings)."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            fin, op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 0x9:
                if answer_pings:
                    self.send(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                return op, payload
            if op != 0:
                first_op = op
            parts.append(payload)
            if fin:
                return first_op, b"".join(parts)

    def close(self):
        try:
            self.send(0x8, (1000).to_bytes(2, "big"))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def ws_upgrade(sock, path, host="127.0.0.1", headers=None, timeout=15):
    """Sends a WebSocket upgrade for path on sock and reads the answer head.

    Returns (Response, WebSocket or None): the WebSocket when the answer is
    101 with the right Sec-WebSocket-Accept (anything else is a
    TestFailure); for other statuses the Response holds the body.
    """
    key = base64.b64encode(os.urandom(16)).decode()
    h = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    sock.settimeout(timeout)
    sock.sendall(req.encode())
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        if time.monotonic() > deadline:
            raise TestFailure("no answer head to the WebSocket upgrade of %s" % path)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        raise TestFailure("no HTTP answer to the WebSocket upgrade of %s: %r" % (path, data[:200]))
    status = int(lines[0].split()[1])
    rh = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        rh[k.strip().lower()] = v.strip()
    if status != 101:
        n = int(rh.get("content-length", "0") or 0)
        while len(rest) < n and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Response(status, rh, rest[:n] if n else rest), None
    want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    eq(rh.get("sec-websocket-accept"), want, "Sec-WebSocket-Accept of %s" % path)
    eq(rh.get("upgrade", "").lower(), "websocket", "Upgrade header of the 101")
    return Response(status, rh, b""), WebSocket(sock, rest)


# ---------------------------------------------------------------------------
# Helpers added for the limit, fault and security-claim tests
# ---------------------------------------------------------------------------

def sanitized_build():
    """Whether the binaries in BUILD are built with AddressSanitizer
    (LXCM_SANITIZE=ON). Its quarantine and shadow memory keep freed memory
    resident, so an RSS bound says nothing about lxcm's own buffers there:
    tests skip RSS bounds (keeping fd and other count checks) when this is
    true."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            if "LXCM_SANITIZE:BOOL=ON" in f.read():
                return True
    except OSError:
        pass
    try:
        with open(binary("lxcm-server"), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False
