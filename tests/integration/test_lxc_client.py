#!/usr/bin/env python3
"""Debian's own `lxc` client through `lxcm proxy --listen unix:PATH`.

lxcm-server on free loopback ports; cluster "lc1" joined by a real
lxcm-agent whose upstream is the LXD of scripts/lxd-test-env.sh, holding a
real tunnel; `lxcm proxy lc1 --listen unix:DIR/lc1.socket`; and `lxc` with
a throwaway LXD_CONF/HOME and `lxc remote add c1 unix://DIR/lc1.socket`.
Through it, as against LXD's own socket: `lxc list`, `lxc info`, `lxc
launch`, `lxc exec` (exit code and output; and interactive, on a pty),
`lxc file push/pull` of 64 MiB (checksums equal), `lxc console` (attach,
see output, detach with ctrl+a q), `lxc monitor` (an event caused by an
action) and `lxc image export`/`import` (checksums equal).

Also the socket itself: mode 0600, no Host/Origin refusal there, removed
when the proxy ends (SIGTERM and SIGINT), a stale socket replaced, a live
one or a file that is not a socket refused.

The container image is built from Debian's busybox-static
(busybox_image.py) and imported once. Instances and images made here are
named lxcm-lc-* and removed at exit. Needs root and Debian's lxd;
LXCM_SKIP_LXD=1 skips this file.
"""

import hashlib
import http.client
import json
import os
import pty
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import busybox_image  # noqa: E402
import lxcmtest as L  # noqa: E402

t = L.Tests("test_lxc_client")

LXD_SOCKET = None
S = None
CLI = None
IMAGE = None
DIR = None
SOCK = None
PROXY = {}          # "proc", "log"
LXC_ENV = None      # lxc with remote c1 (the proxy) and a throwaway config
CT = None           # the running busybox container
INSTANCES = set()   # to delete at exit
IMAGES = set()      # fingerprints to delete at exit


def unique(kind):
    return "lxcm-lc-%s-%s" % (kind, uuid.uuid4().hex[:8])


def lxd_wait(method, path, body=None):
    """A request on LXD's own socket, waiting for its operation if any."""
    r = L.lxd_request(LXD_SOCKET, method, path, body, timeout=120)
    op = r.json.get("operation") if r.json else None
    if op:
        L.lxd_request(LXD_SOCKET, "GET", op + "/wait?timeout=90", timeout=120)
    return r


def remove_made():
    for name in list(INSTANCES):
        try:
            lxd_wait("PUT", "/1.0/instances/%s/state" % name, {"action": "stop", "force": True})
            lxd_wait("DELETE", "/1.0/instances/" + name)
        except Exception as e:
            L.log("cleanup of %s: %r" % (name, e))
    for fp in list(IMAGES):
        try:
            lxd_wait("DELETE", "/1.0/images/" + fp)
        except Exception as e:
            L.log("cleanup of image %s: %r" % (fp, e))


def cli_env():
    return dict(os.environ, XDG_CONFIG_HOME=CLI.config_home, HOME=CLI.config_home,
                LXCM_SERVER="", LXCM_TOKEN="")


def start_proxy(path, name="lc1", expect_ok=True):
    """Spawns `lxcm proxy NAME --listen unix:path`; returns (proc, log file)."""
    logf = open(os.path.join(L.tmpdir("log"), "proxy.log"), "w+b")
    argv = [L.binary("lxcm"), "--server", S.url, "--token-file", S.token_file, "proxy", name,
            "--listen", "unix:" + path]
    p = L.spawn(argv, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL,
                env=cli_env())
    if expect_ok:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        line = p.stdout.readline().decode() if ready else ""
        L.check(line.startswith("Forwarding unix:%s -> cluster %s" % (path, name)),
                "lxcm proxy said %r (exit %r): %s" % (line, p.poll(), log_of(logf)))
    return p, logf


def log_of(logf):
    logf.seek(0)
    return logf.read().decode("utf-8", "replace")[-1500:]


def stop_proxy(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    L.forget(p)
    return p.returncode


def lxc(*args, check_rc=0, timeout=120, env=None, input=None):
    return L.run(["lxc"] + list(args), timeout=timeout, env=env or LXC_ENV,
                 check_rc=check_rc, input=input)


def local_lxc(*args, **kw):
    """The same lxc, against LXD's own unix socket."""
    return lxc(*args, env=LOCAL_ENV, **kw)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("unix.socket", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_get(path, target, headers):
    """GET target on the unix socket at path; returns L.Response."""
    c = UnixHTTPConnection(path)
    try:
        c.request("GET", target, headers=headers)
        r = c.getresponse()
        return L.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        c.close()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@t.setup
def setup():
    global LXD_SOCKET, S, CLI, IMAGE, DIR, SOCK, LXC_ENV, LOCAL_ENV, CT
    for name in ("lxcm-server", "lxcm", "lxcm-agent"):
        L.binary(name)
    if not os.access("/usr/bin/lxc", os.X_OK):
        raise L.Skip("Debian's lxc client is not installed")
    LXD_SOCKET = L.lxd_start()
    L.at_exit(remove_made)
    IMAGE = busybox_image.ensure(LXD_SOCKET)
    S = L.Server().start()
    CLI = L.Cli(S)
    d = os.path.join(L.tmpdir("agent"), "lc1")
    L.agent("join", S.create_token("lc1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")

    def up():
        r = S.mgmt("GET", "/1.0/remote-cluster/lc1")
        return r.status == 200 and r.metadata["tunnel_registered"]
    L.wait_for(up, timeout=30, interval=0.1, what="the tunnel of lc1 to come up")
    DIR = L.tmpdir("lxc")
    SOCK = os.path.join(DIR, "lc1.socket")
    PROXY["proc"], PROXY["log"] = start_proxy(SOCK)
    conf = os.path.join(DIR, "conf")
    os.mkdir(conf)
    LXC_ENV = busybox_image.lxc_env("/nonexistent/not-this-one", conf)
    local_conf = os.path.join(DIR, "local-conf")
    os.mkdir(local_conf)
    LOCAL_ENV = busybox_image.lxc_env(LXD_SOCKET, local_conf)
    lxc("remote", "add", "c1", "unix://" + SOCK)
    CT = unique("ct")
    INSTANCES.add(CT)
    # Created and started through the proxy: operations, waits, the image by alias.
    lxc("launch", "c1:" + IMAGE, "c1:" + CT, timeout=240)
    L.wait_for(lambda: lxc("exec", "c1:" + CT, "--", "true", check_rc=None).returncode == 0,
               timeout=60, interval=0.5, what="the container's shell")


# ---------------------------------------------------------------------------
# the socket
# ---------------------------------------------------------------------------

@t.test
def test_socket_mode_0600():
    st = os.lstat(SOCK)
    L.check(stat.S_ISSOCK(st.st_mode), "%s is a socket" % SOCK)
    L.eq(stat.S_IMODE(st.st_mode), 0o600, "mode of the proxy's unix socket")


@t.test
def test_no_host_or_origin_check_on_unix():
    """lxc sends Host: unix.socket; a browser cannot reach a unix socket."""
    for extra in ({"Host": "unix.socket"},
                  {"Host": "evil.example", "Origin": "http://evil.example"}):
        r = unix_get(SOCK, "/1.0", extra)
        L.eq(r.status, 200, "GET /1.0 on the unix socket with %r" % extra)
        L.eq(r.json["metadata"]["auth"], "trusted", "LXD trusts the agent's unix socket")


@t.test
def test_refuses_live_socket_and_non_socket():
    p, logf = start_proxy(SOCK, expect_ok=False)
    rc = p.wait(timeout=30)
    L.forget(p)
    L.check(rc != 0 and "another process listens" in log_of(logf),
            "a second proxy on a live socket: exit %r, %s" % (rc, log_of(logf)))
    L.check(stat.S_ISSOCK(os.lstat(SOCK).st_mode), "the live socket is left alone")
    plain = os.path.join(DIR, "plain-file")
    with open(plain, "w") as f:
        f.write("keep me\n")
    p, logf = start_proxy(plain, expect_ok=False)
    rc = p.wait(timeout=30)
    L.forget(p)
    L.check(rc != 0 and "not a socket" in log_of(logf),
            "a proxy on a regular file: exit %r, %s" % (rc, log_of(logf)))
    with open(plain) as f:
        L.eq(f.read(), "keep me\n", "the regular file is left alone")


@t.test
def test_stale_socket_replaced_and_removed_at_exit():
    for sig in (signal.SIGTERM, signal.SIGINT):
        path = os.path.join(DIR, "stale.socket")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()           # a socket file nobody listens on: stale
        L.check(os.path.exists(path), "the stale socket is there")
        p, logf = start_proxy(path)
        L.eq(stat.S_IMODE(os.lstat(path).st_mode), 0o600, "mode of the new socket")
        r = unix_get(path, "/1.0", {"Host": "unix.socket"})
        L.eq(r.status, 200, "GET /1.0 on the new socket")
        L.eq(stop_proxy(p, sig), 0, "exit status after %s" % signal.Signals(sig).name)
        L.check(not os.path.exists(path), "the socket is removed after %s: %s" % (
            signal.Signals(sig).name, log_of(logf)))


# ---------------------------------------------------------------------------
# lxc
# ---------------------------------------------------------------------------

@t.test
def test_lxc_list_and_info():
    def names(out):
        return sorted((i["name"], i["status"]) for i in json.loads(out))

    def attempt():
        before = names(local_lxc("list", "--format", "json").stdout)
        got = names(lxc("list", "c1:", "--format", "json").stdout)
        after = names(local_lxc("list", "--format", "json").stdout)
        if before != after:
            return None     # another test changed the LXD meanwhile
        L.eq(got, before, "lxc list c1: vs the local socket")
        return True
    L.wait_for(attempt, timeout=60, interval=0.5, what="a stable lxc list")
    L.check((CT, "Running") in names(lxc("list", "c1:", "--format", "json").stdout),
            "the container is listed as running")
    out = lxc("info", "c1:").stdout
    local = local_lxc("info").stdout
    for key in ("server_name", "server_version", "driver"):
        m = re.search(r"^\s*%s: (.*)$" % key, local, re.M)
        L.check(m and m.group(0) in out, "lxc info c1: has %r:\n%s" % (m and m.group(0), out))
    out = lxc("info", "c1:" + CT).stdout
    L.check(re.search(r"^Status: RUNNING$", out, re.M), "lxc info c1:%s:\n%s" % (CT, out))


@t.test
def test_lxc_exec_non_interactive():
    cmd = ["--", "sh", "-c", "echo out-$((6*7)); echo err-$((6*9)) >&2; exit 7"]
    got = lxc("exec", "c1:" + CT, *cmd, check_rc=None)
    want = local_lxc("exec", CT, *cmd, check_rc=None)
    L.eq(got.returncode, 7, "exit code of lxc exec through the proxy")
    L.eq((got.returncode, got.stdout, got.stderr), (want.returncode, want.stdout, want.stderr),
         "lxc exec through the proxy vs the local socket")
    L.eq(got.stdout, "out-42\n", "stdout")
    L.eq(got.stderr, "err-54\n", "stderr")
    data = os.urandom(300000)
    p = subprocess.run(["lxc", "exec", "c1:" + CT, "--", "sha256sum"], input=data,
                       capture_output=True, env=LXC_ENV, timeout=120)
    L.eq(p.returncode, 0, "sha256sum of stdin: %r" % p.stderr)
    L.eq(p.stdout.split()[0].decode(), hashlib.sha256(data).hexdigest(), "stdin piped through")


def pty_spawn(argv):
    """argv on a new pty; returns (Popen, master fd)."""
    master, slave = pty.openpty()
    p = L.spawn(argv, stdin=slave, stdout=slave, stderr=slave, env=LXC_ENV,
                start_new_session=True)
    os.close(slave)
    return p, master


def pty_end(p, master):
    os.close(master)
    if p.poll() is None:
        p.kill()
        p.wait()
    L.forget(p)


def pty_expect(master, pattern, timeout=60, seen=None):
    """Reads the pty until pattern (bytes regex) appears; returns all read."""
    buf = seen if seen is not None else bytearray()
    deadline = time.monotonic() + timeout
    while not re.search(pattern, bytes(buf)):
        left = deadline - time.monotonic()
        if left <= 0:
            raise L.TestFailure("no %r on the pty within %s s; got %r" % (
                pattern, timeout, bytes(buf[-600:])))
        r, _, _ = select.select([master], [], [], left)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise L.TestFailure("the pty closed before %r; got %r" % (
                    pattern, bytes(buf[-600:])))
            buf += chunk
    return buf


@t.test
def test_lxc_exec_interactive():
    p, master = pty_spawn(["lxc", "exec", "c1:" + CT, "--", "sh"])
    try:
        time.sleep(0.5)
        os.write(master, b"echo tty-$((6*7)); tty\n")
        buf = pty_expect(master, rb"tty-42\r?\n/dev/pts/\d+")
        os.write(master, b"stty size; exit 3\n")
        pty_expect(master, rb"\d+ \d+", seen=buf)
        L.eq(p.wait(timeout=30), 3, "exit code of the interactive lxc exec")
    finally:
        pty_end(p, master)


@t.test
def test_lxc_file_push_pull_64mib():
    src = os.path.join(DIR, "big.bin")
    with open(src, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    want = sha256_file(src)
    lxc("file", "push", src, "c1:%s/tmp/big.bin" % CT, timeout=300)
    inside = local_lxc("exec", CT, "--", "sha256sum", "/tmp/big.bin").stdout.split()[0]
    L.eq(inside, want, "sha256 of the pushed file, read in the container")
    back = os.path.join(DIR, "back.bin")
    lxc("file", "pull", "c1:%s/tmp/big.bin" % CT, back, timeout=300)
    L.eq(os.path.getsize(back), 64 << 20, "size of the pulled file")
    L.eq(sha256_file(back), want, "sha256 of the pulled file")
    local_lxc("exec", CT, "--", "rm", "/tmp/big.bin")
    os.unlink(back)
    os.unlink(src)


@t.test
def test_lxc_console_attach_and_detach():
    p, master = pty_spawn(["lxc", "console", "c1:" + CT])
    try:
        buf = pty_expect(master, rb"ctrl>\+a q", timeout=60)
        # The console's shell (busybox init respawns it) answers a command.
        # Keys typed before the console's WebSocket is up are lost, as they
        # are against the local socket: type again until it answers.
        for attempt in range(30):
            os.write(master, b"\recho console-$((6*7))\r")
            try:
                pty_expect(master, rb"console-42", seen=buf, timeout=2)
                break
            except L.TestFailure:
                if attempt == 29:
                    raise
        # ctrl+a q detaches; lxc looks at the first byte of each read only,
        # so the two keys come as a person types them, one after the other.
        os.write(master, b"\x01")
        time.sleep(0.5)
        os.write(master, b"q")
        L.eq(p.wait(timeout=30), 0, "exit code of lxc console after ctrl+a q")
    finally:
        pty_end(p, master)
    info = lxc("info", "c1:" + CT).stdout
    L.check(re.search(r"^Status: RUNNING$", info, re.M), "still running after the detach")


@t.test
def test_lxc_monitor_sees_an_action():
    logpath = os.path.join(DIR, "monitor.out")
    out = open(logpath, "w+b")
    p = L.spawn(["lxc", "monitor", "c1:", "--type", "lifecycle", "--format", "json"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=LXC_ENV)
    try:
        key = "user.lxcm-monitor-%s" % uuid.uuid4().hex[:6]

        def seen():
            if p.poll() is not None:
                raise L.TestFailure("lxc monitor exited %r" % p.returncode)
            # Set again until seen: the monitor may not be listening yet.
            local_lxc("config", "set", CT, key, str(time.monotonic()))
            out.seek(0)
            for line in out.read().decode("utf-8", "replace").splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                md = ev.get("metadata", {})
                if ev.get("type") == "lifecycle" and md.get("action") == "instance-updated" \
                        and md.get("source", "").endswith("/" + CT):
                    return ev
            return None
        ev = L.wait_for(seen, timeout=60, interval=1, what="an instance-updated event")
        L.check(ev["metadata"]["source"] == "/1.0/instances/" + CT, "event source %r" % ev)
    finally:
        stop_proxy(p)
        out.close()


@t.test
def test_lxc_image_export_import():
    fp = json.loads(local_lxc("query", "/1.0/images/aliases/" + IMAGE).stdout)["target"]
    exp = os.path.join(DIR, "exported")
    lxc("image", "export", "c1:" + IMAGE, exp, timeout=300)
    files = [f for f in os.listdir(DIR) if f.startswith("exported")]
    L.eq(len(files), 1, "one unified tarball exported: %r" % files)
    L.eq(sha256_file(os.path.join(DIR, files[0])), fp,
         "sha256 of the exported image is its fingerprint")
    # Another image (other metadata, so another fingerprint) in through the proxy.
    tarball = busybox_image.build(L.tmpdir("img"), "lxcm-lc import %s" % uuid.uuid4().hex)
    want = sha256_file(tarball)
    alias = unique("img")
    IMAGES.add(want)
    lxc("image", "import", tarball, "c1:", "--alias", alias, timeout=300)
    got = json.loads(local_lxc("query", "/1.0/images/aliases/" + alias).stdout)["target"]
    L.eq(got, want, "fingerprint of the image imported through the proxy")
    # And back out again.
    back = os.path.join(L.tmpdir("imgback"), "back")
    lxc("image", "export", "c1:" + alias, back, timeout=300)
    d = os.path.dirname(back)
    L.eq(sha256_file(os.path.join(d, os.listdir(d)[0])), want, "exported back, same sha256")
    lxc("image", "delete", "c1:" + alias)
    IMAGES.discard(want)


@t.test
def test_lxc_delete_through_proxy():
    name = unique("del")
    INSTANCES.add(name)
    lxc("init", "c1:" + IMAGE, "c1:" + name, timeout=240)
    L.check(name in lxc("list", "c1:", "--format", "csv", "-c", "n").stdout, "created")
    lxc("delete", "c1:" + name, timeout=120)
    INSTANCES.discard(name)
    L.check(name not in local_lxc("list", "--format", "csv", "-c", "n").stdout,
            "deleted, as the local socket sees")


@t.test
def test_proxy_exits_cleanly_and_removes_socket():
    L.eq(stop_proxy(PROXY["proc"]), 0, "exit status of lxcm proxy after SIGTERM")
    L.log("lxcm proxy stderr (tail):\n" + log_of(PROXY["log"]))
    L.check(not os.path.exists(SOCK), "the socket is removed at exit")


if __name__ == "__main__":
    t.main()
