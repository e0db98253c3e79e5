#!/usr/bin/env python3
"""The real LXD behind an agent stopped and started again.

A private LXD (its own state directory, so the LXD the other tests share is
never disturbed) started with scripts/lxd-test-env.sh is the upstream of a
real lxcm-agent. While LXD is down, requests through the manager get a
clear error envelope at once (no hang), the agent stays up and its tunnel
stays registered; once LXD is back, requests work again by themselves (the
agent's idle keep-alive connections to the old daemon are not reused).

Needs root and Debian's lxd. LXCM_SKIP_LXD=1 skips this file (exit 0).
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_lxd_restart")

S = None
AGENT = {}
LXD = {}    # "env", "socket"
SCRIPT = os.path.join(L.SRC, "scripts", "lxd-test-env.sh")


def lxd_env_cmd(cmd, timeout=240):
    cp = subprocess.run(["sh", SCRIPT, cmd], capture_output=True, text=True, timeout=timeout,
                        env=LXD["env"], stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise L.TestFailure("lxd-test-env.sh %s failed (%d): %s" % (cmd, cp.returncode,
                                                                   cp.stderr[-2000:]))
    return cp.stdout


def proxied(path, timeout=30):
    return S.mgmt("GET", "/1.0/remote-cluster/r1/tunnel" + path, timeout=timeout)


def tunnel_up():
    r = S.mgmt("GET", "/1.0/remote-cluster/r1")
    return r.status == 200 and r.metadata.get("tunnel_registered")


@t.setup
def setup():
    global S
    if os.environ.get("LXCM_SKIP_LXD") == "1":
        raise L.Skip("LXCM_SKIP_LXD=1: not starting LXD")
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    # A short state path: unix socket paths are limited to 108 bytes.
    state = "/tmp/lxcm-lxdr-%d" % os.getpid()
    LXD["env"] = dict(os.environ, LXCM_LXD_DIR=state, LXCM_LXD_RUNNING="0")
    LXD["env"].pop("LXCM_LXD_SOCKET", None)
    L.at_exit(lambda: subprocess.run(["sh", SCRIPT, "purge"], capture_output=True,
                                     timeout=240, env=LXD["env"]))
    out = lxd_env_cmd("start")
    LXD["socket"] = [ln for ln in out.splitlines() if ln.startswith("LXD_SOCKET=")][-1][11:]
    S = L.Server().start()
    d = os.path.join(L.tmpdir("agent"), "r1")
    L.agent("join", S.create_token("r1"), "--data-dir", d, "--upstream",
            "unix://" + LXD["socket"], check_rc=0, timeout=90)
    AGENT["proc"] = L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    AGENT["log"] = d + ".log"
    L.wait_for(tunnel_up, timeout=30, what="the tunnel of r1")


@t.test
def test_lxd_stopped_and_started():
    # Several requests first, so the agent holds idle connections to LXD.
    for i in range(5):
        r = proxied("/1.0/instances")
        L.eq(r.status, 200, "GET /1.0/instances through the manager (%d)" % i)
    want = r.json["metadata"]
    lxd_env_cmd("stop")
    L.check(not os.path.exists(LXD["socket"]) or
            subprocess.run(["sh", SCRIPT, "status"], env=LXD["env"],
                           capture_output=True).returncode != 0, "LXD still answers")
    for i in range(3):
        t0 = time.monotonic()
        r = proxied("/1.0/instances", timeout=60)
        took = time.monotonic() - t0
        L.check(r.status in (502, 503, 504), "with LXD down: HTTP %d %r" % (r.status, r.raw[:200]))
        L.check_envelope_error(r.json, r.status, "error envelope with LXD down")
        L.check(took < 15, "the answer with LXD down took %.1f s" % took)
        L.log("  LXD down: HTTP %d in %.2f s: %s" % (r.status, took, r.json.get("error")))
    L.check(AGENT["proc"].poll() is None, "the agent died with LXD down")
    L.check(tunnel_up(), "the tunnel went down with LXD")
    lxd_env_cmd("start")
    t0 = time.monotonic()
    r = L.wait_for(lambda: (lambda x: x if x.status == 200 else None)(proxied("/1.0/instances")),
                   timeout=60, what="requests to work again after LXD is back")
    L.log("  requests work again %.1f s after LXD is back" % (time.monotonic() - t0))
    L.eq(sorted(r.json["metadata"]), sorted(want), "the instance list after the restart")
    for i in range(5):
        L.eq(proxied("/1.0").status, 200, "GET /1.0 after the restart (%d)" % i)
    L.check(AGENT["proc"].poll() is None, "the agent died")


if __name__ == "__main__":
    t.main()
