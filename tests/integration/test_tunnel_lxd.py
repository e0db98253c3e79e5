#!/usr/bin/env python3
"""The management proxy and tunnel v2 against a real LXD.

lxcm-server on free loopback ports; cluster "lxd1" joined by lxcm-agent with
the LXD of scripts/lxd-test-env.sh as its upstream, and `lxcm-agent run`
holding the tunnel. Through ANY /1.0/remote-cluster/lxd1/tunnel/...:
instance lists equal what LXD's unix socket returns; an empty instance is
created, waited on and deleted; a WebSocket to /1.0/events receives the
instance-created event of a separate request. The same through
`lxcm proxy` (plain HTTP on a local port). The cluster object tells whether
a tunnel is live; unknown cluster 404, enrolled without agent 503.

Needs root and Debian's lxd. LXCM_SKIP_LXD=1 skips this file (exit 0).
Instances made here are named lxcm-tt-* and removed at exit.
"""

import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_tunnel_lxd")

LXD_SOCKET = None
S = None
CLI = None
AGENT = {}          # "dir", "proc", "log"
CREATED = set()     # instance names to remove at exit


@t.setup
def setup():
    global LXD_SOCKET, S, CLI
    for name in ("lxcm-server", "lxcm", "lxcm-agent"):
        L.binary(name)
    LXD_SOCKET = L.lxd_start()
    L.lxd_get(LXD_SOCKET, "/1.0")
    L.at_exit(remove_created)
    S = L.Server().start()
    CLI = L.Cli(S)
    d = os.path.join(L.tmpdir("agent"), "lxd1")
    L.agent("join", S.create_token("lxd1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    AGENT.update(dir=d, log=d + ".log")
    AGENT["proc"] = L.spawn_agent("run", "--data-dir", d, log_path=AGENT["log"])
    L.wait_for(lambda: cluster("lxd1")["tunnel_registered"], timeout=30, interval=0.1,
               what="the tunnel of lxd1 to come up")
    S.enroll("idle")        # enrolled, but no agent ever runs for it


def remove_created():
    for name in list(CREATED):
        try:
            L.lxd_request(LXD_SOCKET, "DELETE", "/1.0/instances/" + name, timeout=60)
        except Exception:
            pass


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tpath(path, name="lxd1"):
    return "/1.0/remote-cluster/%s/tunnel%s" % (name, path)


def proxy(method, path, name="lxd1", **kw):
    kw.setdefault("timeout", 120)
    return S.mgmt(method, tpath(path, name), **kw)


def cluster(name):
    r = S.mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET /1.0/remote-cluster/" + name)
    return r.metadata


def agent_log():
    try:
        with open(AGENT["log"]) as f:
            return f.read()[-2500:]
    except OSError:
        return "(no log)"


def new_name():
    name = "lxcm-tt-" + uuid.uuid4().hex[:10]
    CREATED.add(name)
    return name


def summary(instances):
    """What must agree between two listings: (project, name, status, type)."""
    return sorted((i.get("project", "default"), i["name"], i["status"], i["type"])
                  for i in instances)


def compare_with_lxd(path, fetch):
    """fetch(path) returns the proxied metadata; retried until LXD itself did
    not change around it (other tests may share the LXD)."""
    def attempt():
        before = summary(L.lxd_get(LXD_SOCKET, path))
        got = fetch(path)
        after = summary(L.lxd_get(LXD_SOCKET, path))
        if before != after:
            return None
        L.eq(summary(got), before, "GET %s through the proxy vs LXD's unix socket" % path)
        return True
    L.wait_for(attempt, timeout=60, interval=0.5, what="a stable listing of " + path)


def wait_operation(op, request_fn, what):
    """Waits on an LXD operation through request_fn(method, path)."""
    L.check(isinstance(op, str) and op.startswith("/1.0/operations/"),
            "%s: operation %r" % (what, op))
    r = request_fn("GET", op + "/wait?timeout=120")
    L.eq(r.status, 200, "GET %s/wait (%s): %r" % (op, what, r))
    L.eq(r.metadata["status"], "Success", "%s: operation status (%r)" % (
        what, r.metadata.get("err")))
    return r.metadata


def create_instance(request_fn, name):
    r = request_fn("POST", "/1.0/instances", {"name": name, "source": {"type": "none"}})
    L.eq(r.status, 202, "POST /1.0/instances %s: %r" % (name, r))
    L.eq(r.json["type"], "async", "type of the POST answer")
    wait_operation(r.json["operation"], request_fn, "create " + name)


def delete_instance(request_fn, name):
    r = request_fn("DELETE", "/1.0/instances/" + name)
    L.eq(r.status, 202, "DELETE /1.0/instances/%s: %r" % (name, r))
    wait_operation(r.json["operation"], request_fn, "delete " + name)
    CREATED.discard(name)


def via_manager(method, path, body=None):
    return proxy(method, path, body=body)


def wait_event(ws, action, name, timeout=60):
    """The first lifecycle event `action` whose source names instance `name`."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            op, payload = ws.recv_message(max(0.5, deadline - time.monotonic()))
        except ConnectionError as e:
            raise L.TestFailure("waiting for %s of %s: the events WebSocket was cut without a "
                                "close frame (%s); events seen: %r" % (action, name, e, seen))
        if op == 0x8:
            raise L.TestFailure("the events WebSocket was closed (%r); events seen: %r" % (
                payload, seen))
        L.eq(op, 0x1, "opcode of an LXD event (text)")
        ev = json.loads(payload)
        L.eq(ev["type"], "lifecycle", "event type with ?type=lifecycle")
        md = ev["metadata"]
        seen.append((md.get("action"), md.get("source")))
        src = md.get("source", "").split("?")[0]
        if md.get("action") == action and src == "/1.0/instances/" + name:
            return ev
    raise L.TestFailure("no %s event for %s within %d s; events seen: %r" % (
        action, name, timeout, seen))


def events_roundtrip(ws, request_fn, how):
    name = new_name()
    try:
        create_instance(request_fn, name)
        ev = wait_event(ws, "instance-created", name)
        L.eq(ev["metadata"]["action"], "instance-created", how + ": event action")
    finally:
        if name in CREATED:
            delete_instance(request_fn, name)
    wait_event(ws, "instance-deleted", name)


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

@t.test
def test_tunnel_object():
    c = cluster("lxd1")
    L.eq(c["tunnel_registered"], True, "tunnel_registered while the agent runs")
    tn = c["tunnel"]
    L.check(isinstance(tn, dict), "tunnel object: %r" % (tn,))
    L.eq(tn["protocol"], "v2", "tunnel.protocol")
    L.eq(tn["transport"], L.expected_transport(), "tunnel.transport")
    L.check(abs(L.parse_rfc3339(tn["connected_since"]) - time.time()) < 300,
            "tunnel.connected_since %r" % (tn["connected_since"],))
    L.check(isinstance(tn["replica"], str) and tn["replica"], "tunnel.replica %r" % tn["replica"])
    L.check(isinstance(tn["rtt_ms"], int), "tunnel.rtt_ms %r" % (tn["rtt_ms"],))
    L.check(isinstance(tn["active_streams"], int) and tn["active_streams"] >= 0,
            "tunnel.active_streams %r" % (tn["active_streams"],))
    c = cluster("idle")
    L.eq(c["tunnel_registered"], False, "tunnel_registered of a cluster without agent")
    L.eq(c["tunnel"], None, "tunnel of a cluster without agent")


@t.test
def test_unknown_and_idle_clusters():
    for method in ("GET", "POST", "DELETE"):
        r = proxy(method, "/1.0/instances", name="nosuch",
                  body=None if method != "POST" else {"name": "x"})
        L.eq(r.status, 404, "%s through the proxy of an unknown cluster" % method)
        L.check_envelope_error(r.json, 404)
        r = proxy(method, "/1.0/instances", name="idle",
                  body=None if method != "POST" else {"name": "x"})
        L.eq(r.status, 503, "%s through the proxy of an enrolled cluster without agent" % method)
        L.check_envelope_error(r.json, 503)
    r = proxy("GET", "/1.0", token=None)
    L.eq(r.status, 401, "the proxy without an API token")


@t.test
def test_server_info():
    r = proxy("GET", "/1.0")
    L.eq(r.status, 200, "GET /1.0 through the proxy")
    L.check_envelope_sync(r.json, "GET /1.0 through the proxy")
    direct = L.lxd_get(LXD_SOCKET, "/1.0")
    for k in ("api_version", "api_extensions"):
        L.eq(r.metadata[k], direct[k], "GET /1.0 %s vs LXD" % k)
    L.eq(r.metadata["environment"]["server_name"], direct["environment"]["server_name"],
         "server_name vs LXD")


@t.test
def test_instances_match_lxd():
    def fetch(path):
        r = proxy("GET", path)
        L.eq(r.status, 200, "GET %s through the proxy" % path)
        L.check_envelope_sync(r.json, path)
        return r.metadata
    for path in ("/1.0/instances?recursion=1",
                 "/1.0/instances?recursion=1&all-projects=true",
                 "/1.0/instances?recursion=1&project=lxcm-test"):
        compare_with_lxd(path, fetch)
    # The seeded instances are there (the environment script makes them).
    names = {(i["project"], i["name"]) for i in
             fetch("/1.0/instances?recursion=1&all-projects=true")}
    L.check(("default", "lxcm-test-empty") in names and ("lxcm-test", "lxcm-test-other") in names,
            "seeded instances missing from %r" % (sorted(names),))


@t.test
def test_create_wait_delete():
    name = new_name()
    create_instance(via_manager, name)
    r = proxy("GET", "/1.0/instances/" + name)
    L.eq(r.status, 200, "GET the new instance through the proxy")
    L.eq((r.metadata["name"], r.metadata["status"]), (name, "Stopped"), "the new instance")
    direct = L.lxd_request(LXD_SOCKET, "GET", "/1.0/instances/" + name)
    L.eq(direct.status, 200, "the new instance on LXD's unix socket")
    delete_instance(via_manager, name)
    r = proxy("GET", "/1.0/instances/" + name)
    L.eq(r.status, 404, "GET a deleted instance through the proxy")
    L.eq(L.lxd_request(LXD_SOCKET, "GET", "/1.0/instances/" + name).status, 404,
         "the deleted instance on LXD's unix socket")
    # LXD's own errors pass through with their status.
    r = proxy("POST", "/1.0/instances", body={"name": "bad name!", "source": {"type": "none"}})
    L.eq(r.status, 400, "POST an invalid instance name through the proxy: %r" % (r,))


@t.test
def test_events_websocket_through_manager():
    s = L.tls_connect(S.mgmt_port, timeout=30)
    try:
        resp, ws = L.ws_upgrade(s, tpath("/1.0/events?type=lifecycle"),
                                host="127.0.0.1:%d" % S.mgmt_port,
                                headers={"Authorization": "Bearer " + S.token})
        L.eq(resp.status, 101, "WebSocket upgrade of /1.0/events through the proxy: %r" % (resp,))
        L.check(ws is not None, "no WebSocket")
        events_roundtrip(ws, via_manager, "through the manager")
        ws.close()
    finally:
        s.close()


@t.test
def test_events_websocket_client_frames():
    # The user -> LXD direction of a proxied WebSocket: a pong (what every
    # browser sends back for LXD's keepalive ping) must not break the
    # socket, and a close frame reaches LXD, which answers with its own.
    s = L.tls_connect(S.mgmt_port, timeout=30)
    try:
        resp, ws = L.ws_upgrade(s, tpath("/1.0/events?type=lifecycle"),
                                host="127.0.0.1:%d" % S.mgmt_port,
                                headers={"Authorization": "Bearer " + S.token})
        L.eq(resp.status, 101, "WebSocket upgrade of /1.0/events through the proxy: %r" % (resp,))
        fin, op, payload = ws.recv_frame(30)
        L.eq((op, payload), (0x9, b"keepalive"), "LXD's first frame (its keepalive ping)")
        ws.send(0xA, payload)   # the pong; it is all the test sends before the close
        name = new_name()
        try:
            create_instance(via_manager, name)
            wait_event(ws, "instance-created", name)
        finally:
            delete_instance(via_manager, name)
        wait_event(ws, "instance-deleted", name)
        ws.send(0x8, (1000).to_bytes(2, "big"))
        op, payload = ws.recv_message(30)
        L.eq(op, 0x8, "LXD's answer to our close frame")
    finally:
        s.close()


@t.test
def test_lxcm_proxy_port_forward():
    port = L.free_port()
    logf = open(os.path.join(L.tmpdir("log"), "lxcm-proxy.log"), "w+b")
    argv = [L.binary("lxcm"), "--server", S.url, "--token-file", S.token_file, "proxy", "lxd1",
            "--listen", "127.0.0.1:%d" % port]
    env = dict(os.environ, XDG_CONFIG_HOME=CLI.config_home, HOME=CLI.config_home,
               LXCM_SERVER="", LXCM_TOKEN="")
    p = L.spawn(argv, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL, env=env)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        line = p.stdout.readline().decode() if ready else ""
        L.check(re.search(r"Forwarding http://127\.0\.0\.1:%d\b" % port, line),
                "lxcm proxy said %r (exit %r)" % (line, p.poll()))
        host = "127.0.0.1:%d" % port

        def local(method, path, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                h = {"Host": host}
                if body is not None:
                    body = json.dumps(body)
                    h["Content-Type"] = "application/json"
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                return L.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            finally:
                c.close()

        def fetch(path):
            r = local("GET", path)
            L.eq(r.status, 200, "GET %s through lxcm proxy" % path)
            return r.metadata
        compare_with_lxd("/1.0/instances?recursion=1", fetch)
        compare_with_lxd("/1.0/instances?recursion=1&all-projects=true", fetch)
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            resp, ws = L.ws_upgrade(s, "/1.0/events?type=lifecycle", host=host)
            L.eq(resp.status, 101, "WebSocket upgrade through lxcm proxy: %r" % (resp,))
            events_roundtrip(ws, local, "through lxcm proxy")
            ws.close()
        finally:
            s.close()
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        L.forget(p)
        logf.seek(0)
        L.log("lxcm proxy stderr (tail):\n" + logf.read().decode("utf-8", "replace")[-1500:])
        logf.close()
    L.eq(p.returncode, 0, "exit status of lxcm proxy after SIGTERM")


@t.test
def test_tunnel_gone_after_agent_stops():
    p = AGENT["proc"]
    L.eq(cluster("lxd1")["tunnel_registered"], True, "tunnel_registered before the stop")
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    finally:
        L.forget(p)
    L.eq(rc, 0, "agent exit status after SIGTERM (log:\n%s)" % agent_log())
    L.wait_for(lambda: cluster("lxd1")["tunnel_registered"] is False, timeout=20, interval=0.1,
               what="tunnel_registered to become false after the agent stopped")
    L.eq(cluster("lxd1")["tunnel"], None, "tunnel object after the agent stopped")
    r = proxy("GET", "/1.0/instances")
    L.eq(r.status, 503, "the proxy after the agent stopped")
    L.check_envelope_error(r.json, 503)


if __name__ == "__main__":
    t.main()
