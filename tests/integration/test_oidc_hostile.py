#!/usr/bin/env python3
"""A hostile OpenID provider (hostile_idp.py): every crafted ID token is
refused with a clear message and no session (issue 11).

lxcm-server is set up exactly as for a real provider (discovery and JWKS
over HTTPS with --oidc-ca-file). For each case the test starts a login
(GET /oidc/login, keeping lxcm's login cookie), reads state and nonce from
the authorization URL lxcm sends the browser to, and comes back to
/oidc/callback with a code the hostile provider answers with the crafted
token: wrong iss, wrong aud, aud of several without azp, expired, iat in
the future, a bad signature, alg none, HS256 keyed with the public key, an
unknown kid, a nonce of another login, a code used twice, a state of
another login. The good tokens of each algorithm (RS256, ES256, EdDSA),
one without groups (a person with no role), and a kid that only a rotated
JWKS has (one refetch, then it works) are accepted. A second unknown kid
soon after does not make lxcm fetch the JWKS again (rate limit).
"""

import os
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import oidctest as O  # noqa: E402

t = L.Tests("test_oidc_hostile")

S = None
IDP = None


@t.setup
def setup():
    global S, IDP
    try:
        import hostile_idp
    except ImportError:
        raise L.Skip("python3-cryptography is missing (scripts/install-deps.sh)")
    pki = O.make_pki(L.tmpdir("pki"))
    IDP = hostile_idp.HostileIdP(pki)
    L.at_exit(IDP.close)
    S = L.Server("--oidc-issuer", IDP.issuer, "--oidc-client-id", "lxcm",
                 "--oidc-ca-file", pki[0], "--oidc-role-map", "admin=lxcm-admins").start()
    L.wait_for(lambda: IDP.jwks_fetches >= 1, timeout=15, what="lxcm to fetch the JWKS")


def sessions():
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(S.data_dir, "lxcm.db"), uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    finally:
        con.close()


def attempt(scenario, state=None, twice=False):
    """A login answered with scenario's token: (browser, callback response)."""
    b = O.Browser()
    _, url = O.start_login(b, S)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    L.eq(q["code_challenge_method"], "S256", "PKCE")
    L.eq(q["redirect_uri"], S.url + "/oidc/callback", "redirect_uri")
    code = IDP.code_for(scenario, q["nonce"])
    cb = "%s/oidc/callback?%s" % (S.url, urllib.parse.urlencode(
        {"code": code, "state": state or q["state"], "iss": IDP.issuer}))
    if twice:
        keep = dict(b.jar)
        b.request(cb)
        b.jar = keep
    return b, b.request(cb)


def refused(scenario, words, **kw):
    before = sessions()
    b, r = attempt(scenario, **kw)
    L.eq(r.status, 401, "%s: %r" % (scenario, r))
    L.check(words in (r.error or ""), "%s: %r lacks %r" % (scenario, r.error, words))
    L.check(O.session_cookie(b, S) is None, "%s: a session cookie" % scenario)
    L.eq(sessions(), before + (1 if kw.get("twice") else 0), "%s: sessions stored" % scenario)


def accepted(scenario, role="admin"):
    b, r = attempt(scenario)
    L.eq(r.status, 303, "%s: %r" % (scenario, r))
    me = b.request(S.url + "/1.0").metadata
    L.eq((me["auth_user_method"], me["role"]), ("oidc", role), "%s: who" % scenario)


@t.test
def test_good_tokens():
    for scenario in ("rs256", "es256", "eddsa"):
        accepted(scenario)
    accepted("no_groups", role="none")


@t.test
def test_rotated_jwks():
    fetches = IDP.jwks_fetches
    IDP.rotate()
    accepted("rotated_kid")
    L.eq(IDP.jwks_fetches, fetches + 1, "one refetch of the JWKS for the new kid")
    # Another unknown kid within the rate limit: refused, and no fetch.
    refused("unknown_kid", "no RS256 key with kid \"ghost\"")
    L.eq(IDP.jwks_fetches, fetches + 1, "an unknown kid soon after made no fetch")


@t.test
def test_refusals():
    refused("wrong_iss", "iss is https://evil.example")
    refused("wrong_aud", "aud does not name this client")
    refused("azp_missing", "azp")
    refused("expired", "expired")
    refused("iat_future", "issued in the future")
    refused("bad_signature", "signature does not verify")
    refused("alg_none", "algorithm none is not accepted")
    refused("hs256_public_key", "algorithm HS256 is not accepted")
    refused("nonce", "nonce is not the one of this login")
    refused("rs256", "state mismatch", state="forged-state")
    refused("rs256", "refused the code (400 invalid_grant)", twice=True)


t.main()
