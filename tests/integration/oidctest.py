"""oidctest - OpenID providers and a browser without a browser, for the OIDC
tests (test_oidc.py, test_oidc_hostile.py).

- make_pki(dir): a CA and a certificate for 127.0.0.1 it signed (openssl),
  so lxcm verifies the provider with --oidc-ca-file as it would a company's
  private CA;
- RealProvider: tests/oidc/provider.mjs (npm's oidc-provider, `npm ci` by
  scripts/install-deps.sh) over HTTPS;
- Browser: cookies per host and path, the HTTP calls of a browser, and
  login(): the authorization code flow through lxcm and the provider's
  development login form, following redirects and posting its forms.

Standard library only.
"""

import html
import http.client
import http.cookies
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.parse

import lxcmtest as L

OIDC_DIR = os.path.join(L.SRC, "tests", "oidc")


def make_pki(d):
    """(ca.pem, cert.pem, key.pem) for 127.0.0.1 under d."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, cert = (os.path.join(d, n) for n in ("idp.key", "idp.csr", "idp.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=lxcm test IdP CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return ca, cert, key


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise L.TestFailure("%s exited (%s)" % (what, proc.returncode))
        try:
            s = L.tls_connect(port, timeout=2)
            s.close()
            return
        except OSError:
            time.sleep(0.1)
    raise L.TestFailure("%s did not listen on %d" % (what, port))


class RealProvider:
    """npm's oidc-provider (tests/oidc/provider.mjs) on a free port."""

    def __init__(self, pki, redirect_uri, secret="", access_ttl=3600, port=None):
        if shutil.which("node") is None or not os.path.isdir(
                os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
            raise L.Skip("node or tests/oidc/node_modules (scripts/install-deps.sh) missing")
        self.port = port or L.free_port()
        self.issuer = "https://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(L.tmpdir("idp"), "provider.log")
        env = dict(os.environ, PORT=str(self.port), CA=pki[0], CERT=pki[1], KEY=pki[2],
                   REDIRECT_URI=redirect_uri, CLIENT_SECRET=secret, ACCESS_TTL=str(access_ttl))
        with open(self.log_path, "ab") as logf:
            self.proc = L.spawn(["node", os.path.join(OIDC_DIR, "provider.mjs")], env=env,
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=OIDC_DIR)
        wait_port(self.port, self.proc, "oidc-provider")

    def post(self, path):
        b = Browser()
        return b.request(self.issuer + path, "POST", body=b"")

    def set_groups(self, user, groups):
        r = self.post("/test/groups?" + urllib.parse.urlencode(
            {"user": user, "groups": ",".join(groups)}))
        L.eq(r.status, 200, "set the groups of %s: %r" % (user, r))


class Resp:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_cookies(self):
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    @property
    def metadata(self):
        return self.json.get("metadata") if isinstance(self.json, dict) else None

    @property
    def error(self):
        return self.json.get("error") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "<Resp %d %r %s>" % (self.status, self.header("location"), self.raw[:300])


class Browser:
    """Cookies per (host:port, name, path), as a browser keeps them (no expiry clock)."""

    def __init__(self):
        self.jar = {}

    def cookies_for(self, hostport, path):
        got = [(p, n, v) for (h, n, p), v in self.jar.items()
               if h == hostport and path.startswith(p)]
        got.sort(key=lambda x: -len(x[0]))
        return "; ".join("%s=%s" % (n, v) for _, n, v in got)

    def keep(self, hostport, set_cookie, path):
        c = http.cookies.SimpleCookie()
        c.load(set_cookie)
        for name, m in c.items():
            cpath = m["path"] or path.rsplit("/", 1)[0] or "/"
            if m["max-age"] == "0" or m.value == "":
                self.jar.pop((hostport, name, cpath), None)
            else:
                self.jar[(hostport, name, cpath)] = m.value

    def cookie(self, hostport, name):
        for (h, n, _), v in self.jar.items():
            if h == hostport and n == name:
                return v
        return None

    def request(self, url, method="GET", body=None, headers=None, cookies=True):
        u = urllib.parse.urlsplit(url)
        hostport = u.netloc
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c = self.cookies_for(hostport, u.path or "/") if cookies else ""
        if c:
            h["Cookie"] = c
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                           context=L.tls_context())
        try:
            conn.request(method, target, body=body, headers=h)
            r = conn.getresponse()
            resp = Resp(r.status, r.getheaders(), r.read())
        finally:
            conn.close()
        for sc in resp.set_cookies():
            self.keep(hostport, sc, u.path or "/")
        return resp


FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.I)
PROMPT_RE = re.compile(r'name="prompt" value="([a-z]+)"')


def provider_flow(b, url, user, lxcm_url, max_steps=20):
    """Follows the provider's redirects and posts its forms as `user` until it
    sends the browser back to lxcm; returns that URL (the callback)."""
    for _ in range(max_steps):
        if url.startswith(lxcm_url):
            return url
        r = b.request(url)
        if r.status in (302, 303):
            url = urllib.parse.urljoin(url, r.header("location"))
            continue
        text = r.raw.decode("utf-8", "replace")
        m, p = FORM_RE.search(text), PROMPT_RE.search(text)
        if r.status != 200 or m is None or p is None:
            raise L.TestFailure("the provider answered %r" % (r,))
        action = urllib.parse.urljoin(url, html.unescape(m.group(1)))
        form = {"prompt": p.group(1)}
        if p.group(1) == "login":
            form.update(login=user, password="any")
        r = b.request(action, "POST", body=urllib.parse.urlencode(form).encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        if r.status not in (302, 303):
            raise L.TestFailure("the provider's form answered %r" % (r,))
        url = urllib.parse.urljoin(action, r.header("location"))
    raise L.TestFailure("the provider never sent the browser back")


def start_login(b, server, next_path=None):
    """GET /oidc/login: the provider's URL (lxcm's login cookie kept in b)."""
    q = "" if next_path is None else "?next=" + urllib.parse.quote(next_path, safe="")
    r = b.request(server.url + "/oidc/login" + q)
    L.eq(r.status, 303, "GET /oidc/login: %r" % (r,))
    return r, r.header("location")


def login(b, server, user, next_path=None):
    """The whole code flow as user; the callback's answer (a 303 with the cookie)."""
    _, url = start_login(b, server, next_path)
    cb = provider_flow(b, url, user, server.url)
    return b.request(cb)


SESSION = "__Host-lxcm_session"


def session_cookie(b, server):
    return b.cookie("127.0.0.1:%d" % server.mgmt_port, SESSION)
