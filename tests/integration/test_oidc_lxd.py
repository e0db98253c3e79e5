#!/usr/bin/env python3
"""People's roles end to end through a real tunnel to the real LXD (issue 11).

lxcm-server with npm's oidc-provider (tests/oidc), cluster "lxd1" joined by
lxcm-agent with the LXD of scripts/lxd-test-env.sh as its upstream (as in
test_roles.py). Each person logs in through the provider and uses only the
session cookie (with the Origin of lxcm's pages):

- victor (viewer) lists the instances through the tunnel and is refused a
  state change (PUT .../state, PATCH) with 403 before anything reaches LXD;
- olivia (operator) changes an instance (PATCH its description, seen in
  LXD) through the tunnel;
- nora (no role) gets 403 for the instance list;
- the events WebSocket with the cookie needs lxcm's Origin;
- audit rows name the person: `victor@example.com (oidc)`, and the agent
  logs who made each request (X-Lxcm-User, which a caller cannot forge).

Needs root, Debian's lxd and node with tests/oidc/node_modules; otherwise
skipped (LXCM_SKIP_LXD=1 skips too).
"""

import os
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import oidctest as O  # noqa: E402

t = L.Tests("test_oidc_lxd")

LXD_SOCKET = None
S = None
B = {}
AGENT_LOG = None
EMPTY = "lxcm-test-empty"


@t.setup
def setup():
    global LXD_SOCKET, S, AGENT_LOG
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    if not os.path.isdir(os.path.join(O.OIDC_DIR, "node_modules", "oidc-provider")):
        raise L.Skip("tests/oidc/node_modules missing (scripts/install-deps.sh)")
    LXD_SOCKET = L.lxd_start()
    L.lxd_get(LXD_SOCKET, "/1.0")
    pki = O.make_pki(L.tmpdir("pki"))
    port = L.free_port()
    S = L.Server("--oidc-issuer", "https://127.0.0.1:%d" % port, "--oidc-client-id", "lxcm",
                 "--oidc-ca-file", pki[0], "--oidc-role-map",
                 "admin=lxcm-admins,operator=lxcm-operators,viewer=lxcm-viewers").start()
    O.RealProvider(pki, S.url + "/oidc/callback", port=port)  # a public client: PKCE only
    d = os.path.join(L.tmpdir("agent"), "lxd1")
    L.agent("join", S.create_token("lxd1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    AGENT_LOG = d + ".log"
    L.spawn_agent("run", "--data-dir", d, log_path=AGENT_LOG)
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"],
               timeout=30, interval=0.1, what="the tunnel of lxd1 to come up")
    for user in ("victor", "olivia", "nora"):
        b = O.Browser()
        r = O.login(b, S, user)
        L.eq(r.status, 303, "login of %s: %r" % (user, r))
        B[user] = b


def tunnel(user, method, path, body=None):
    return B[user].request(S.url + "/1.0/remote-cluster/lxd1/tunnel" + path, method, body=body,
                           headers={"Origin": S.url})


@t.test
def test_viewer():
    r = tunnel("victor", "GET", "/1.0/instances?recursion=1")
    L.eq(r.status, 200, "viewer lists instances: %r" % (r,))
    L.check(EMPTY in {i["name"] for i in r.metadata}, "the seeded instance is listed")
    before = L.lxd_get(LXD_SOCKET, "/1.0/instances/" + EMPTY)["description"]
    r = tunnel("victor", "PUT", "/1.0/instances/%s/state" % EMPTY, {"action": "start"})
    L.eq(r.status, 403, "viewer state change: %r" % (r,))
    r = tunnel("victor", "PATCH", "/1.0/instances/" + EMPTY, {"description": "by victor"})
    L.eq(r.status, 403, "viewer PATCH: %r" % (r,))
    L.eq(L.lxd_get(LXD_SOCKET, "/1.0/instances/" + EMPTY)["description"], before,
         "the viewer's change reached LXD")


@t.test
def test_operator():
    text = "by olivia " + uuid.uuid4().hex[:8]
    r = tunnel("olivia", "PATCH", "/1.0/instances/" + EMPTY, {"description": text})
    L.eq(r.status, 200, "operator PATCH through the tunnel: %r" % (r,))
    L.eq(L.lxd_get(LXD_SOCKET, "/1.0/instances/" + EMPTY)["description"], text,
         "the operator's change in LXD")


@t.test
def test_no_role():
    r = tunnel("nora", "GET", "/1.0/instances")
    L.eq(r.status, 403, "no-role GET through the tunnel: %r" % (r,))
    L.eq(B["nora"].request(S.url + "/1.0").metadata["role"], "none", "nora's role")


@t.test
def test_events_websocket_origin():
    cookie = "%s=%s" % (O.SESSION, O.session_cookie(B["victor"], S))
    path = "/1.0/remote-cluster/lxd1/tunnel/1.0/events?type=lifecycle"
    for origin, want in (("https://evil.example", 403), (S.url, 101)):
        s = L.tls_connect(S.mgmt_port, timeout=30)
        try:
            resp, _ = L.ws_upgrade(s, path, host="127.0.0.1:%d" % S.mgmt_port,
                                   headers={"Cookie": cookie, "Origin": origin}, timeout=30)
            L.eq(resp.status, want, "events WebSocket from %s: %r" % (origin, resp))
        finally:
            s.close()


def audit_rows(actor):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(S.data_dir, "lxcm.db"), uri=True,
                          timeout=10)
    try:
        return con.execute("SELECT method, path, status FROM audit_log WHERE actor = ?",
                           (actor,)).fetchall()
    finally:
        con.close()


@t.test
def test_audit_names_the_person():
    rows = L.wait_for(lambda: audit_rows("victor@example.com (oidc)"), timeout=20,
                      what="victor's audit rows")
    L.check(("PATCH", "/1.0/instances/" + EMPTY, 403) in rows, "victor's refusal: %r" % rows)
    rows = L.wait_for(lambda: audit_rows("olivia@example.com (oidc)"), timeout=20,
                      what="olivia's audit rows")
    L.check(("PATCH", "/1.0/instances/" + EMPTY, 200) in rows, "olivia's change: %r" % rows)


@t.test
def test_agent_logs_the_person():
    def logged(words):
        with open(AGENT_LOG, errors="replace") as f:
            return words in f.read()
    L.wait_for(lambda: logged("for olivia@example.com (oidc)"), timeout=10,
               what="the agent to log olivia's request")
    r = S.mgmt("GET", "/1.0/remote-cluster/lxd1/tunnel/1.0/instances",
               headers={"X-Lxcm-User": "mallory@example.com (oidc)"})
    L.eq(r.status, 200, "a token's request: %r" % (r,))
    time.sleep(0.5)
    L.check(not logged("mallory"), "a caller's own X-Lxcm-User reached the agent")


t.main()
