#!/usr/bin/env python3
"""Roles of API tokens, tried as a new user would, against a real LXD.

lxcm-server on free loopback ports; cluster "lxd1" joined by lxcm-agent with
the LXD of scripts/lxd-test-env.sh as its upstream, and `lxcm-agent run`
holding the tunnel (as in test_tunnel_lxd.py). Three tokens, viewer,
operator and admin (docs/security.md):

- a viewer reads the management API and GETs through the tunnel (and opens
  the events WebSocket), and gets 403 in the LXD envelope for a POST, a PUT,
  a DELETE, an exec WebSocket and every management change;
- an operator creates an instance, execs in a running one (WebSockets),
  pushes, pulls and deletes files through the tunnel (the last two need the
  env's local image and running instance, which it makes when it can build
  a static binary), reads the management API, and cannot create tokens or
  remove clusters;
- an admin may do everything;
- every refusal is an audit row naming the token (its audit actor), and so
  is what the operator did;
- a revoked token is refused on the very next request (the cache in front of
  the store forgets it at once);
- 100 tokens work (there used to be a cap of 64).

Needs root and Debian's lxd. LXCM_SKIP_LXD=1 skips this file (exit 0).
Instances made here are named lxcm-role-* and removed at exit.
"""

import json
import os
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_roles")

LXD_SOCKET = None
S = None
TOK = {}            # role -> secret
ACTOR = {}          # role -> audit actor ("token:" + 12 hex digits)
CREATED = set()     # instance names to remove at exit
RUNNING = "lxcm-test-running"   # made by lxd-test-env.sh when it can build IMAGE
IMAGE = "lxcm-test-init"


@t.setup
def setup():
    global LXD_SOCKET, S
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    LXD_SOCKET = L.lxd_start()
    L.lxd_get(LXD_SOCKET, "/1.0")
    L.at_exit(remove_created)
    S = L.Server().start()
    d = os.path.join(L.tmpdir("agent"), "lxd1")
    L.agent("join", S.create_token("lxd1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"],
               timeout=30, interval=0.1, what="the tunnel of lxd1 to come up")
    for role in ("viewer", "operator", "admin"):
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "ci-" + role, "role": role})
        L.eq(r.status, 200, "create the %s token: %r" % (role, r))
        TOK[role] = r.metadata["token"]
        ACTOR[role] = "token:" + L.sha256_hex(TOK[role].encode())[:12]


def remove_created():
    for name in list(CREATED):
        try:
            L.lxd_request(LXD_SOCKET, "DELETE", "/1.0/instances/" + name, timeout=60)
        except Exception:
            pass


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tpath(path):
    return "/1.0/remote-cluster/lxd1/tunnel" + path


def as_role(role, method, path, body=None, **kw):
    kw.setdefault("timeout", 120)
    return S.mgmt(method, path, body=body, token=TOK[role], **kw)


def tunnel(role, method, path, body=None, **kw):
    return as_role(role, method, tpath(path), body=body, **kw)


def forbidden(r, what):
    L.eq(r.status, 403, "%s: %r" % (what, r))
    L.check_envelope_error(r.json, 403, what)


def ws_open(role, path):
    """(Response, WebSocket or None, socket) of a WebSocket upgrade through the tunnel."""
    s = L.tls_connect(S.mgmt_port, timeout=30)
    resp, ws = L.ws_upgrade(s, tpath(path), host="127.0.0.1:%d" % S.mgmt_port,
                            headers={"Authorization": "Bearer " + TOK[role]}, timeout=30)
    return resp, ws, s


def new_name():
    name = "lxcm-role-" + uuid.uuid4().hex[:10]
    CREATED.add(name)
    return name


def wait_operation(role, op, what):
    r = tunnel(role, "GET", op + "/wait?timeout=120")
    L.eq(r.status, 200, "GET %s/wait (%s): %r" % (op, what, r))
    return r.metadata


def audit_rows(where, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(S.data_dir, "lxcm.db"), uri=True,
                          timeout=10)
    try:
        return con.execute("SELECT actor, cluster, method, path, status FROM audit_log "
                           "WHERE " + where, args).fetchall()
    finally:
        con.close()


def running_instance():
    try:
        return L.lxd_get(LXD_SOCKET, "/1.0/instances/" + RUNNING)["status"] == "Running"
    except Exception:
        return False


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

@t.test
def test_role_field():
    r = S.mgmt("GET", "/1.0/auth/tokens")
    L.eq(r.status, 200, "list the tokens")
    roles = {x["name"]: x["role"] for x in r.metadata}
    L.eq(roles, {"admin": "admin", "ci-viewer": "viewer", "ci-operator": "operator",
                 "ci-admin": "admin"}, "roles in GET /1.0/auth/tokens")
    actors = {x["name"]: x["audit_actor"] for x in r.metadata}
    L.eq(actors["ci-viewer"], ACTOR["viewer"], "audit actor of the viewer token")
    # No role: admin, as every token was before roles.
    r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "no-role"})
    L.eq(r.status, 200, "a token without a role")
    r = S.mgmt("GET", "/1.0/auth/tokens")
    L.eq({x["name"]: x["role"] for x in r.metadata}["no-role"], "admin", "default role")
    L.eq(S.mgmt("DELETE", "/1.0/auth/tokens/no-role").status, 200, "revoke no-role")
    for bad in ("root", "Admin", "", 1, ["viewer"], {"role": "viewer"}):
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "bad-role", "role": bad})
        L.eq(r.status, 400, "role %r: %r" % (bad, r))
        L.check_envelope_error(r.json, 400)
    L.check("bad-role" not in [x["name"] for x in S.mgmt("GET", "/1.0/auth/tokens").metadata],
            "a token with a bad role was made")


@t.test
def test_viewer_reads():
    for path in ("/1.0/remote-cluster", "/1.0/remote-cluster/lxd1", "/1.0/auth/tokens",
                 "/1.0/remote-cluster-join-token"):
        r = as_role("viewer", "GET", path)
        L.eq(r.status, 200, "viewer GET %s: %r" % (path, r))
    L.eq(as_role("viewer", "GET", "/1.0").metadata["auth"], "trusted", "GET /1.0 for a viewer")
    r = tunnel("viewer", "GET", "/1.0/instances?recursion=1")
    L.eq(r.status, 200, "viewer GET through the tunnel: %r" % (r,))
    names = {i["name"] for i in r.metadata}
    L.check("lxcm-test-empty" in names, "the seeded instance through the tunnel: %r" % names)
    # LXD itself may not implement HEAD (501): what counts is that lxcm let it through.
    r = tunnel("viewer", "HEAD", "/1.0")
    L.check(r.status in (200, 501), "viewer HEAD through the tunnel: %r" % (r,))
    resp, ws, s = ws_open("viewer", "/1.0/events?type=lifecycle")
    try:
        L.eq(resp.status, 101, "viewer events WebSocket through the tunnel: %r" % (resp,))
    finally:
        s.close()


@t.test
def test_viewer_refused():
    name = new_name()
    forbidden(tunnel("viewer", "POST", "/1.0/instances",
                     {"name": name, "source": {"type": "none"}}), "viewer POST /1.0/instances")
    L.eq(L.lxd_request(LXD_SOCKET, "GET", "/1.0/instances/" + name).status, 404,
         "the viewer's POST reached LXD")
    forbidden(tunnel("viewer", "PUT", "/1.0/instances/lxcm-test-empty",
                     {"description": "by a viewer"}), "viewer PUT")
    forbidden(tunnel("viewer", "PATCH", "/1.0/instances/lxcm-test-empty",
                     {"description": "by a viewer"}), "viewer PATCH")
    forbidden(tunnel("viewer", "DELETE", "/1.0/instances/lxcm-test-empty"), "viewer DELETE")
    L.eq(L.lxd_get(LXD_SOCKET, "/1.0/instances/lxcm-test-empty")["name"], "lxcm-test-empty",
         "the viewer's DELETE reached LXD")
    forbidden(tunnel("viewer", "POST", "/1.0/instances/%s/exec" % RUNNING,
                     {"command": ["/sbin/init"], "wait-for-websocket": True}), "viewer exec")
    # The exec WebSocket itself (a made-up operation: lxcm refuses before LXD looks).
    for path in ("/1.0/operations/%s/websocket?secret=x" % uuid.uuid4(),
                 "/1.0/instances/%s/console" % RUNNING, "/1.0/events/",
                 "/1.0/%65vents"):
        resp, ws, s = ws_open("viewer", path)
        s.close()
        L.eq(resp.status, 403, "viewer WebSocket %s: %r" % (path, resp))
        L.check_envelope_error(resp.json, 403, "viewer WebSocket " + path)
    # Every change of the manager.
    for method, path, body in (
            ("POST", "/1.0/auth/tokens", {"name": "by-viewer"}),
            ("DELETE", "/1.0/auth/tokens/ci-operator", None),
            ("POST", "/1.0/remote-cluster-join-token", {"cluster_name": "by-viewer"}),
            ("DELETE", "/1.0/remote-cluster-join-token/nosuch", None),
            ("PATCH", "/1.0/remote-cluster/lxd1", {"description": "by a viewer"}),
            ("DELETE", "/1.0/remote-cluster/lxd1", None)):
        forbidden(as_role("viewer", method, path, body), "viewer %s %s" % (method, path))
    L.eq(S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"], True,
         "lxd1 after the viewer's attempts")


def init_image():
    """The alias of the test env's local image (a rootfs for files), or None."""
    r = L.lxd_request(LXD_SOCKET, "GET", "/1.0/images/aliases/" + IMAGE)
    return IMAGE if r.status == 200 else None


@t.test
def test_operator_through_tunnel():
    name = new_name()
    image = init_image()
    source = {"type": "image", "alias": image} if image else {"type": "none"}
    r = tunnel("operator", "POST", "/1.0/instances", {"name": name, "source": source})
    L.eq(r.status, 202, "operator POST /1.0/instances: %r" % (r,))
    L.eq(wait_operation("operator", r.json["operation"], "create")["status"], "Success",
         "create by the operator")
    if image is None:
        L.log("  no local image %s here: files not tried" % IMAGE)
    else:
        operator_files(name)
    r = tunnel("operator", "DELETE", "/1.0/instances/" + name)
    L.eq(r.status, 202, "operator DELETE the instance: %r" % (r,))
    wait_operation("operator", r.json["operation"], "delete")
    CREATED.discard(name)


def operator_files(name):
    """Push, pull and delete a file (an instance with a rootfs, stopped)."""
    content = b"pushed by an operator through lxcm\n"
    r = tunnel("operator", "POST", "/1.0/instances/%s/files?path=/lxcm-roles.txt" % name,
               content, headers={"Content-Type": "application/octet-stream",
                                 "X-LXD-type": "file", "X-LXD-mode": "0644"})
    L.eq(r.status, 200, "operator file push: %r" % (r,))
    r = tunnel("operator", "GET", "/1.0/instances/%s/files?path=/lxcm-roles.txt" % name)
    L.eq((r.status, r.raw), (200, content), "operator file pull")
    forbidden(tunnel("viewer", "DELETE", "/1.0/instances/%s/files?path=/lxcm-roles.txt" % name),
              "viewer file delete")
    r = tunnel("operator", "DELETE", "/1.0/instances/%s/files?path=/lxcm-roles.txt" % name)
    L.eq(r.status, 200, "operator file delete: %r" % (r,))
    L.eq(tunnel("operator", "GET", "/1.0/instances/%s/files?path=/lxcm-roles.txt" % name).status,
         404, "the deleted file")


@t.test
def test_operator_exec():
    if not running_instance():
        L.log("  %s is not running (no static init image here): exec checked up to LXD only"
              % RUNNING)
        r = tunnel("operator", "POST", "/1.0/instances/lxcm-test-empty/exec",
                   {"command": ["/sbin/init"], "wait-for-websocket": True})
        L.check(r.status != 403, "the operator's exec was refused by lxcm: %r" % (r,))
        return
    r = tunnel("operator", "POST", "/1.0/instances/%s/exec" % RUNNING,
               {"command": ["/sbin/init"], "wait-for-websocket": True, "interactive": False,
                "environment": {}})
    L.eq(r.status, 202, "operator exec: %r" % (r,))
    op = r.json["operation"]
    fds = r.metadata["metadata"]["fds"]
    socks = []
    try:
        for fd in ("control", "0", "1", "2"):
            resp, ws, s = ws_open("operator", "%s/websocket?secret=%s" % (op, fds[fd]))
            socks.append(s)
            L.eq(resp.status, 101, "operator exec WebSocket %s: %r" % (fd, resp))
            if fd == "control":
                control = ws
        # The command (a sleeping init) runs once every stream is there; kill
        # it through the control stream (again until LXD has started it).
        deadline = time.monotonic() + 60
        while True:
            control.send(0x1, json.dumps({"command": "signal", "signal": 9}).encode())
            md = tunnel("operator", "GET", op + "/wait?timeout=2").metadata
            if md["status"] != "Running" or time.monotonic() > deadline:
                break
        L.eq(md["status"], "Success", "the exec's operation: %r" % (md,))
        L.eq(md["metadata"]["return"], 137, "the exec's exit status (SIGKILL)")
    finally:
        for s in socks:
            s.close()


@t.test
def test_operator_management():
    for path in ("/1.0/remote-cluster", "/1.0/auth/tokens", "/1.0/remote-cluster-join-token"):
        L.eq(as_role("operator", "GET", path).status, 200, "operator GET " + path)
    for method, path, body in (
            ("POST", "/1.0/auth/tokens", {"name": "by-operator"}),
            ("DELETE", "/1.0/auth/tokens/ci-viewer", None),
            ("POST", "/1.0/remote-cluster-join-token", {"cluster_name": "by-operator"}),
            ("DELETE", "/1.0/remote-cluster-join-token/nosuch", None),
            ("PATCH", "/1.0/remote-cluster/lxd1", {"description": "by an operator"}),
            ("DELETE", "/1.0/remote-cluster/lxd1", None)):
        forbidden(as_role("operator", method, path, body), "operator %s %s" % (method, path))
    L.eq(S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"], True,
         "lxd1 after the operator's attempts")


@t.test
def test_admin_everything():
    r = as_role("admin", "POST", "/1.0/auth/tokens", {"name": "by-admin", "role": "viewer"})
    L.eq(r.status, 200, "admin creates a token: %r" % (r,))
    L.eq(as_role("admin", "DELETE", "/1.0/auth/tokens/by-admin").status, 200,
         "admin revokes it")
    r = as_role("admin", "POST", "/1.0/remote-cluster-join-token", {"cluster_name": "by-admin"})
    L.eq(r.status, 200, "admin creates a join token: %r" % (r,))
    L.eq(as_role("admin", "DELETE", "/1.0/remote-cluster-join-token/by-admin").status, 200,
         "admin deletes it")
    r = as_role("admin", "PATCH", "/1.0/remote-cluster/lxd1", {"description": "by an admin"})
    L.eq(r.status, 200, "admin PATCH: %r" % (r,))
    resp, ws, s = ws_open("admin", "/1.0/events?type=lifecycle")
    s.close()
    L.eq(resp.status, 101, "admin events WebSocket")


@t.test
def test_audit_names_the_token():
    # Refusals: the viewer's POST through the tunnel and its management change.
    want = [(ACTOR["viewer"], "lxd1", "POST", "/1.0/instances", 403),
            (ACTOR["viewer"], "", "POST", "/1.0/auth/tokens", 403),
            (ACTOR["operator"], "", "DELETE", "/1.0/remote-cluster/lxd1", 403)]
    for row in want:
        L.wait_for(lambda: row in audit_rows("actor = ?", (row[0],)), timeout=10,
                   what="the audit row %r" % (row,))
    # What the operator did, by the operator's token.
    rows = audit_rows("actor = ? AND method = 'POST' AND path = '/1.0/instances'",
                      (ACTOR["operator"],))
    L.check([r for r in rows if r[4] == 202],
            "no audit row of the operator's instance creation: %r" % rows)
    # Refusals of a WebSocket name the path the cluster would have seen.
    L.check(audit_rows("actor = ? AND status = 403 AND path LIKE '/1.0/operations/%'",
                       (ACTOR["viewer"],)), "no audit row of the viewer's exec WebSocket")
    # No row carries a secret.
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(S.data_dir, "lxcm.db"), uri=True)
    try:
        everything = repr(con.execute("SELECT * FROM audit_log").fetchall())
    finally:
        con.close()
    for role, tok in TOK.items():
        L.check(tok not in everything, "the %s token is in the audit log" % role)


@t.test
def test_revoked_refused_on_next_request():
    r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "short-lived", "role": "operator"})
    tok = r.metadata["token"]
    # Used (and so cached) just before the revoke.
    for _ in range(3):
        L.eq(S.mgmt("GET", "/1.0/remote-cluster", token=tok).status, 200, "before the revoke")
        L.eq(S.mgmt("GET", tpath("/1.0"), token=tok).status, 200, "through the tunnel")
    L.eq(S.mgmt("DELETE", "/1.0/auth/tokens/short-lived").status, 200, "revoke")
    t0 = time.monotonic()
    r = S.mgmt("GET", "/1.0/remote-cluster", token=tok)
    L.eq(r.status, 403, "the very next request with the revoked token: %r" % (r,))
    L.check_envelope_error(r.json, 403)
    L.eq(S.mgmt("GET", tpath("/1.0"), token=tok).status, 403, "through the tunnel")
    L.check(time.monotonic() - t0 < 4, "the refusal waited for the cache to expire")
    L.eq(S.mgmt("GET", "/1.0", token=tok).metadata["auth"], "untrusted", "GET /1.0")
    # The others were not disturbed.
    L.eq(as_role("viewer", "GET", "/1.0/remote-cluster").status, 200, "viewer after a revoke")


@t.test
def test_bad_token_flood():
    # One bad token many times: every answer is a quick 403 (the cache
    # remembers that it is no token); the real tokens keep working.
    bad = "lxcm_" + "0" * 64
    t0 = time.monotonic()
    for _ in range(50):
        L.eq(S.mgmt("GET", "/1.0/remote-cluster", token=bad).status, 403, "a bad token")
    L.log("  50 requests with one bad token: %.2f s" % (time.monotonic() - t0))
    L.eq(S.mgmt("GET", "/1.0/remote-cluster", token=None).status, 401, "no token")
    L.eq(S.mgmt("GET", "/1.0/remote-cluster", headers={"Authorization": "Basic eDp5"},
                token=None).status, 403, "not a bearer token")
    L.eq(as_role("viewer", "GET", "/1.0/remote-cluster").status, 200, "the viewer still works")


@t.test
def test_hundred_tokens():
    toks = []
    for i in range(100):
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "many-%03d" % i,
                                                "role": ("viewer", "operator", "admin")[i % 3]})
        L.eq(r.status, 200, "token %d of 100: %r" % (i, r))
        toks.append(r.metadata["token"])
    L.check(len(S.mgmt("GET", "/1.0/auth/tokens").metadata) >= 104, "the list of 100+ tokens")
    for i, tok in enumerate(toks):
        L.eq(S.mgmt("GET", "/1.0/remote-cluster", token=tok).status, 200,
             "token %d of 100 reads" % i)
    # The last ones still carry their roles.
    forbidden(S.mgmt("POST", "/1.0/auth/tokens", {"name": "x"}, token=toks[99]),
              "token 99 (viewer) creates a token")
    L.eq(S.mgmt("POST", "/1.0/auth/tokens", {"name": "by-many"}, token=toks[98]).status, 200,
         "token 98 (admin) creates a token")


if __name__ == "__main__":
    t.main()
