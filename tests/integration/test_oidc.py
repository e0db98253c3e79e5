#!/usr/bin/env python3
"""People log in with a real OpenID provider (issue 11), as a new user would.

npm's oidc-provider (tests/oidc/provider.mjs, an OpenID-certified
implementation) over HTTPS with a private CA given to lxcm-server as
--oidc-ca-file, lxcm a confidential client (--oidc-client-secret-file),
four people: alice (lxcm-admins), olivia (lxcm-operators), victor
(lxcm-viewers), nora (no group). A python "browser" follows the redirects
and posts the provider's login and consent forms.

- each role's login, the cookie's attributes, GET /1.0 telling who is
  calling, and what each role may do on the management API;
- several sessions per person, listed and revoked (own; admin: all);
  identities for admins;
- logout, and the cookie replayed after it; an admin's revoke; tampered
  and missing cookies: 401;
- `next` never leads to another site;
- state mismatch, a code used twice, a foreign iss, a missing login
  cookie: refused with a message and no session;
- CSRF: a cross-site POST, a form-typed body, a cross-origin WebSocket,
  each with a valid cookie, refused;
- idle and absolute expiry (a second server with short lifetimes);
- refresh: groups changed at the provider reach the role after the access
  token's lifetime; a refresh the provider refuses ends the session.

Needs node and tests/oidc/node_modules (scripts/install-deps.sh), else skipped.
"""

import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import oidctest as O  # noqa: E402

t = L.Tests("test_oidc")

S = None      # lxcm-server
IDP = None    # the provider
PKI = None
SECRET = "s3cret-of-lxcm-at-the-idp"
ROLE_MAP = "admin=lxcm-admins,operator=lxcm-operators,viewer=lxcm-viewers"


def oidc_server(idp_port, *extra):
    d = L.tmpdir("srv")
    secret = os.path.join(d, "client-secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(secret, 0o600)
    return L.Server("--oidc-issuer", "https://127.0.0.1:%d" % idp_port,
                    "--oidc-client-id", "lxcm", "--oidc-client-secret-file", secret,
                    "--oidc-ca-file", PKI[0], "--oidc-role-map", ROLE_MAP, *extra,
                    data_dir=d).start()


@t.setup
def setup():
    global S, IDP, PKI
    PKI = O.make_pki(L.tmpdir("pki"))
    port = L.free_port()
    S = oidc_server(port)
    IDP = O.RealProvider(PKI, S.url + "/oidc/callback", secret=SECRET, port=port)


def logged_in(user, server=None, next_path=None):
    """A browser with a session of user."""
    server = server or S
    b = O.Browser()
    r = O.login(b, server, user, next_path)
    L.eq(r.status, 303, "the callback for %s: %r" % (user, r))
    L.check(O.session_cookie(b, server), "no session cookie for %s: %r" % (user, r))
    return b


def call(b, method, path, body=None, server=None, headers=None, **kw):
    server = server or S
    h = {"Origin": server.url}
    h.update(headers or {})
    return b.request(server.url + path, method, body=body, headers=h, **kw)


# ---------------------------------------------------------------------------

@t.test
def test_login_admin():
    b = O.Browser()
    r = O.login(b, S, "alice", "/ui/instances?project=default")
    L.eq(r.status, 303, "callback: %r" % (r,))
    L.eq(r.header("location"), "/ui/instances?project=default", "where the login goes")
    sc = [c for c in r.set_cookies() if c.startswith(O.SESSION + "=")]
    L.eq(len(sc), 1, "one session cookie: %r" % r.set_cookies())
    for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        L.check(attr in sc[0], "cookie attribute %s: %s" % (attr, sc[0]))
    value = O.session_cookie(b, S)
    L.eq(len(value), 43, "a cookie of 32 random bytes in base64url")
    me = call(b, "GET", "/1.0").metadata
    L.eq(me["auth"], "trusted", "auth")
    L.eq(me["auth_user_name"], "alice@example.com", "auth_user_name")
    L.eq(me["auth_user_method"], "oidc", "auth_user_method")
    L.eq(me["role"], "admin", "role")
    L.eq(me["groups"], ["lxcm-admins"], "groups")
    L.check(me.get("expires_at"), "expires_at: %r" % me)
    L.check("oidc" in me["auth_methods"], "auth_methods: %r" % me)
    # The store keeps the cookie's hash only, never the cookie.
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(S.data_dir, "lxcm.db"), uri=True)
    try:
        rows = con.execute("SELECT hash, tokens FROM sessions").fetchall()
    finally:
        con.close()
    L.check(any(h == L.sha256_hex(value.encode()) for h, _ in rows), "hash stored")
    dump = repr(rows)
    L.check(value not in dump, "the cookie is in the store")
    L.check("eyJ" not in dump, "a token in the clear in the store")
    L.eq(call(b, "GET", "/1.0/auth/identities").status, 200, "identities for an admin")
    # An API token caller is described too.
    me = S.mgmt("GET", "/1.0").metadata
    L.eq((me["auth_user_method"], me["role"]), ("token", "admin"), "GET /1.0 with a token")
    out = L.Cli(S)("whoami").stdout
    for words in ("auth: trusted", "user: admin-token:admin", "method: token", "role: admin"):
        L.check(words in out, "lxcm whoami lacks %r: %r" % (words, out))
    L.eq(L.Cli(S).json("whoami")["auth_user_method"], "token", "lxcm whoami --json")


@t.test
def test_roles_management():
    op, viewer, nobody = logged_in("olivia"), logged_in("victor"), logged_in("nora")
    L.eq(call(op, "GET", "/1.0").metadata["role"], "operator", "olivia's role")
    L.eq(call(viewer, "GET", "/1.0").metadata["role"], "viewer", "victor's role")
    me = call(nobody, "GET", "/1.0").metadata
    L.eq((me["role"], me["groups"], me["auth_user_name"]), ("none", [], "nora@example.com"),
         "nora: who she is, and no role")
    for b, who in ((op, "operator"), (viewer, "viewer")):
        L.eq(call(b, "GET", "/1.0/remote-cluster").status, 200, who + " reads clusters")
        r = call(b, "POST", "/1.0/remote-cluster-join-token", {"cluster_name": "x"})
        L.eq(r.status, 403, who + " creates a join token: %r" % (r,))
        L.eq(call(b, "GET", "/1.0/auth/identities").status, 403, who + " lists people")
    for path in ("/1.0/remote-cluster", "/1.0/auth/tokens", "/1.0/auth/sessions"):
        r = call(nobody, "GET", path)
        L.eq(r.status, 403, "no-role GET %s: %r" % (path, r))
        L.check("none" in r.error, "the refusal names the role: %r" % r.error)
    admin = logged_in("alice")
    r = call(admin, "POST", "/1.0/remote-cluster-join-token", {"cluster_name": "by-alice"})
    L.eq(r.status, 200, "an admin session creates a join token: %r" % (r,))


@t.test
def test_sessions_list_and_revoke():
    a1, a2, v = logged_in("alice"), logged_in("alice"), logged_in("victor")
    mine = call(v, "GET", "/1.0/auth/sessions").metadata
    L.check(all(s["subject"] == "victor" for s in mine) and mine, "victor's own: %r" % mine)
    L.eq(sum(1 for s in mine if s["current"]), 1, "the current session is marked")
    every = call(a1, "GET", "/1.0/auth/sessions").metadata
    L.check({"alice", "victor"} <= {s["subject"] for s in every}, "admin sees all")
    alice = call(a1, "GET", "/1.0/auth/sessions?user=alice@example.com").metadata
    L.check(len(alice) >= 2 and all(s["subject"] == "alice" for s in alice), "?user=: %r" % alice)
    id2 = call(a2, "GET", "/1.0").metadata["session_id"]
    id1 = call(a1, "GET", "/1.0").metadata["session_id"]
    L.check(id1 != id2, "a new session id at every login")
    # A viewer cannot revoke someone else's session (it is as unknown as none).
    L.eq(call(v, "DELETE", "/1.0/auth/sessions/" + id2).status, 404, "victor revokes alice's")
    L.eq(call(a2, "GET", "/1.0/remote-cluster").status, 200, "a2 still works")
    # Alice revokes her second browser from the first: refused at once.
    L.eq(call(a1, "DELETE", "/1.0/auth/sessions/" + id2).status, 200, "revoke own")
    r = call(a2, "GET", "/1.0/remote-cluster")
    L.eq(r.status, 401, "a revoked session: %r" % (r,))
    L.eq(call(a1, "GET", "/1.0/remote-cluster").status, 200, "the other session lives")
    # An admin API token revokes any session.
    vid = call(v, "GET", "/1.0").metadata["session_id"]
    L.eq(call(v, "GET", "/1.0/remote-cluster").status, 200, "victor before the revoke")
    L.eq(S.mgmt("DELETE", "/1.0/auth/sessions/" + vid).status, 200, "admin token revokes")
    L.eq(call(v, "GET", "/1.0/remote-cluster").status, 401, "victor after the admin's revoke")
    ids = S.mgmt("GET", "/1.0/auth/identities").metadata
    L.check({"alice", "olivia", "victor", "nora"} <= {i["subject"] for i in ids},
            "identities: %r" % ids)


@t.test
def test_logout_and_replay():
    b = logged_in("olivia")
    cookie = O.session_cookie(b, S)
    L.eq(call(b, "GET", "/1.0/remote-cluster").status, 200, "before logout")
    r = call(b, "POST", "/oidc/logout")
    L.eq(r.status, 200, "logout: %r" % (r,))
    L.check(any(c.startswith(O.SESSION + "=;") and "Max-Age=0" in c for c in r.set_cookies()),
            "logout clears the cookie: %r" % r.set_cookies())
    L.check((r.metadata or {}).get("logout_url", "").startswith(IDP.issuer),
            "RP-initiated logout URL: %r" % (r,))
    replay = O.Browser()
    replay.jar[("127.0.0.1:%d" % S.mgmt_port, O.SESSION, "/")] = cookie
    r = call(replay, "GET", "/1.0/remote-cluster")
    L.eq(r.status, 401, "the cookie replayed after logout: %r" % (r,))
    L.eq(call(replay, "GET", "/1.0").metadata["auth"], "untrusted", "GET /1.0 after logout")


@t.test
def test_bad_cookies():
    b = logged_in("alice")
    cookie = O.session_cookie(b, S)
    hp = "127.0.0.1:%d" % S.mgmt_port
    flipped = cookie[:10] + ("A" if cookie[10] != "A" else "B") + cookie[11:]
    for what, value in (("tampered", flipped), ("short", cookie[:-1]), ("long", cookie + "A"),
                        ("bad characters", cookie[:-1] + "!"), ("empty", "")):
        x = O.Browser()
        x.jar[(hp, O.SESSION, "/")] = value
        r = call(x, "GET", "/1.0/remote-cluster")
        L.eq(r.status, 401, "%s cookie: %r" % (what, r))
    r = call(O.Browser(), "GET", "/1.0/remote-cluster")
    L.eq(r.status, 401, "no cookie: %r" % (r,))


@t.test
def test_open_redirects():
    for bad in ("//evil.example/x", "/\\evil.example", "https://evil.example/",
                "http:evil.example", "/\r\nSet-Cookie:x=y", "\\\\evil", "evil.example"):
        b = O.Browser()
        r = O.login(b, S, "victor", bad)
        L.eq((r.status, r.header("location")), (303, "/"), "next=%r: %r" % (bad, r))


@t.test
def test_callback_refusals():
    def no_session(b, r, what, words):
        L.check(r.status in (400, 401), "%s: %r" % (what, r))
        L.check(words in (r.error or ""), "%s: %r lacks %r" % (what, r.error, words))
        L.check(not any(c.startswith(O.SESSION + "=") and "Max-Age=0" not in c
                        for c in r.set_cookies()), "%s: a session cookie" % what)

    # State mismatch.
    b = O.Browser()
    _, url = O.start_login(b, S)
    cb = O.provider_flow(b, url, "alice", S.url)
    u = urllib.parse.urlsplit(cb)
    q = dict(urllib.parse.parse_qsl(u.query))
    bad = dict(q, state="x" + q["state"][1:])
    no_session(b, b.request(S.url + u.path + "?" + urllib.parse.urlencode(bad)),
               "state mismatch", "state mismatch")
    # A foreign iss (RFC 9207).
    bad = dict(q, iss="https://evil.example")
    no_session(b, b.request(S.url + u.path + "?" + urllib.parse.urlencode(bad)),
               "foreign iss", "iss")
    # The code, once: works; twice (with the login cookie kept): the provider refuses it.
    b2 = O.Browser()
    b2.jar = dict(b.jar)
    r = b.request(cb)
    L.eq(r.status, 303, "the first use of the code: %r" % (r,))
    no_session(b2, b2.request(cb), "code used twice", "refused the code")
    # No login cookie at all.
    no_session(O.Browser(), O.Browser().request(cb), "no login cookie", "login cookie")
    # The provider's error answer.
    r = b2.request(S.url + "/oidc/callback?" + urllib.parse.urlencode(
        {"error": "access_denied", "state": q["state"], "iss": IDP.issuer}))
    L.check(r.status in (400, 401), "an error answer: %r" % (r,))


@t.test
def test_csrf():
    b = logged_in("alice")
    body = {"cluster_name": "csrf-x"}
    r = b.request(S.url + "/1.0/remote-cluster-join-token", "POST", body=body,
                  headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    L.eq(r.status, 403, "a cross-site POST with the cookie: %r" % (r,))
    r = b.request(S.url + "/1.0/remote-cluster-join-token", "POST", body=body)
    L.eq(r.status, 403, "a POST with the cookie and neither Origin nor Sec-Fetch-Site: %r" % (r,))
    r = b.request(S.url + "/1.0/remote-cluster-join-token", "POST",
                  body=b'{"cluster_name": "csrf-y"}',
                  headers={"Origin": S.url, "Content-Type": "text/plain"})
    L.eq(r.status, 403, "a form-typed body with the cookie: %r" % (r,))
    r = b.request(S.url + "/1.0/remote-cluster-join-token", "POST", body=body,
                  headers={"Sec-Fetch-Site": "same-origin"})
    L.eq(r.status, 200, "a same-origin POST: %r" % (r,))
    r = call(b, "DELETE", "/1.0/remote-cluster-join-token/csrf-x")
    L.eq(r.status, 200, "a DELETE with our Origin: %r" % (r,))
    # The same POST with an API token needs none of this.
    r = S.mgmt("POST", "/1.0/remote-cluster-join-token", {"cluster_name": "csrf-z"})
    L.eq(r.status, 200, "a POST with a token: %r" % (r,))
    # WebSockets: our Origin or nothing.
    cookie = "%s=%s" % (O.SESSION, O.session_cookie(b, S))
    path = "/1.0/remote-cluster/nope/tunnel/1.0/events"
    for origin in ("https://evil.example", None):
        s = L.tls_connect(S.mgmt_port)
        try:
            h = {"Cookie": cookie}
            if origin:
                h["Origin"] = origin
            resp, _ = L.ws_upgrade(s, path, host="127.0.0.1:%d" % S.mgmt_port, headers=h)
            L.eq(resp.status, 403, "a WebSocket from %r with the cookie: %r" % (origin, resp))
        finally:
            s.close()
    s = L.tls_connect(S.mgmt_port)
    try:
        resp, _ = L.ws_upgrade(s, path, host="127.0.0.1:%d" % S.mgmt_port,
                               headers={"Cookie": cookie, "Origin": S.url})
        L.eq(resp.status, 404, "a WebSocket from our pages goes on (no such cluster): %r" % resp)
    finally:
        s.close()


@t.test
def test_expiry():
    port = L.free_port()
    s3 = oidc_server(port, "--session-idle", "3s", "--session-max", "8s")
    O.RealProvider(PKI, s3.url + "/oidc/callback", secret=SECRET, port=port)
    # idle: unused for longer than 3 s
    b = logged_in("victor", s3)
    L.eq(call(b, "GET", "/1.0/remote-cluster", server=s3).status, 200, "fresh session")
    time.sleep(4)
    L.eq(call(b, "GET", "/1.0/remote-cluster", server=s3).status, 401, "idle session")
    # absolute: used every second, still ends at 8 s
    b = logged_in("victor", s3)
    start = time.monotonic()
    while time.monotonic() - start < 6.5:
        r = call(b, "GET", "/1.0/remote-cluster", server=s3)
        L.eq(r.status, 200, "a session in use at %.1f s: %r" % (time.monotonic() - start, r))
        time.sleep(1)
    time.sleep(max(0, 8.5 - (time.monotonic() - start)))
    L.eq(call(b, "GET", "/1.0/remote-cluster", server=s3).status, 401, "past --session-max")


@t.test
def test_refresh():
    # Access tokens of 65 s: lxcm refreshes 60 s before they end, so 5 s after a login.
    port = L.free_port()
    s4 = oidc_server(port)
    idp = O.RealProvider(PKI, s4.url + "/oidc/callback", secret=SECRET, port=port,
                         access_ttl=65)
    idp.set_groups("rita", ["lxcm-viewers"])
    b = logged_in("rita", s4)
    L.eq(call(b, "GET", "/1.0", server=s4).metadata["role"], "viewer", "rita at login")
    idp.set_groups("rita", ["lxcm-operators"])
    L.eq(call(b, "GET", "/1.0", server=s4).metadata["role"], "viewer", "before the refresh")
    time.sleep(6)
    me = call(b, "GET", "/1.0", server=s4).metadata
    L.eq((me["role"], me["groups"]), ("operator", ["lxcm-operators"]), "after a refresh")
    L.eq(call(b, "POST", "/1.0/remote-cluster-join-token", {"cluster_name": "r"},
              server=s4).status, 403, "an operator still cannot make join tokens")
    idp.set_groups("rita", [])
    time.sleep(6)
    me = call(b, "GET", "/1.0", server=s4).metadata
    L.eq(me["role"], "none", "groups removed at the provider: %r" % me)
    L.eq(call(b, "GET", "/1.0/remote-cluster", server=s4).status, 403, "no role any more")
    # A refresh the provider refuses (the person is gone there) ends the session.
    idp.post("/test/delete?user=rita")
    time.sleep(6)
    r = call(b, "GET", "/1.0/remote-cluster", server=s4)
    L.eq(r.status, 401, "after a refused refresh: %r" % (r,))
    L.eq(call(b, "GET", "/1.0", server=s4).metadata["auth"], "untrusted", "the session ended")


@t.test
def test_flags_refused():
    d = L.tmpdir("flags")
    base = [L.binary("lxcm-server"), "--data-dir", d, "--management-addr", "127.0.0.1:0",
            "--connector-addr", "127.0.0.1:0", "--oidc-client-id", "lxcm"]
    cp = L.run(base + ["--oidc-issuer", "http://idp.example.com"], timeout=30)
    L.eq(cp.returncode, 2, "a plain http issuer: %r" % (cp.stderr,))
    L.check("plain http://" in cp.stderr, "the reason: %r" % cp.stderr)
    cp = L.run(base + ["--oidc-issuer", "https://idp.example.com", "--session-idle", "12"],
               timeout=30)
    L.eq(cp.returncode, 2, "a duration without a unit: %r" % (cp.stderr,))
    secret = os.path.join(d, "secret")
    with open(secret, "w") as f:
        f.write("x\n")
    os.chmod(secret, 0o644)
    cp = L.run(base + ["--oidc-issuer", "https://127.0.0.1:1", "--oidc-client-secret-file",
                       secret], timeout=30)
    L.eq(cp.returncode, 1, "a secret file others may read: %r" % (cp.stderr,))
    L.check("0600" in cp.stderr, "the reason: %r" % cp.stderr)


t.main()
