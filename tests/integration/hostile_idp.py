"""hostile_idp - an OpenID provider that lies, for test_oidc_hostile.py.

It serves a correct discovery document and JWKS over HTTPS (the test's
private CA), and answers the token endpoint with an ID token crafted for
the scenario the test registered under the code it hands to lxcm: wrong
iss, wrong aud, expired, iat in the future, a bad signature, alg none,
HS256 keyed with the public key, an unknown kid, a kid only a rotated JWKS
has, a foreign nonce, and the good tokens of each algorithm. A code is
good once. Runs in the test's process, in a thread.

Needs python3-cryptography (scripts/install-deps.sh).
"""

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def n2b(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Key:
    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        if kind == "RS256":
            self.k = rsa.generate_private_key(65537, 2048)
            n = self.k.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": b64u(n2b(n.n)), "e": b64u(n2b(n.e))}
        elif kind == "ES256":
            self.k = ec.generate_private_key(ec.SECP256R1())
            n = self.k.public_key().public_numbers()
            self.jwk = {"kty": "EC", "kid": kid, "crv": "P-256",
                        "x": b64u(n.x.to_bytes(32, "big")), "y": b64u(n.y.to_bytes(32, "big"))}
        else:
            self.k = ed25519.Ed25519PrivateKey.generate()
            self.jwk = {"kty": "OKP", "kid": kid, "crv": "Ed25519",
                        "x": b64u(self.k.public_key().public_bytes_raw())}

    def pem(self):
        return self.k.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, msg):
        if self.kind == "RS256":
            return self.k.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        if self.kind == "ES256":
            r, s = decode_dss_signature(self.k.sign(msg, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.k.sign(msg)


def jws(header, claims, signer):
    h = b64u(json.dumps(header).encode())
    p = b64u(json.dumps(claims).encode())
    msg = (h + "." + p).encode()
    return h + "." + p + "." + b64u(signer(msg))


class HostileIdP:
    def __init__(self, pki, client_id="lxcm"):
        self.client_id = client_id
        self.rs, self.es, self.ed = Key("RS256", "r1"), Key("ES256", "e1"), Key("EdDSA", "d1")
        self.rotated = Key("RS256", "r2")       # in the JWKS only after rotate()
        self.never = Key("RS256", "ghost")     # never in the JWKS
        self.keys = [self.rs, self.es, self.ed]
        self.codes = {}     # code -> (scenario, nonce, user)
        self.used = set()
        self.jwks_fetches = 0
        self.lock = threading.Lock()
        idp = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/.well-known/openid-configuration":
                    self.send(200, idp.discovery())
                elif path == "/jwks":
                    with idp.lock:
                        idp.jwks_fetches += 1
                    self.send(200, {"keys": [k.jwk for k in idp.keys]})
                else:
                    self.send(404, {"error": "not_found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                if self.path != "/token":
                    self.send(404, {"error": "not_found"})
                    return
                status, obj = idp.token(form)
                self.send(status, obj)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki[1], pki[2])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.issuer = "https://127.0.0.1:%d" % self.port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def discovery(self):
        u = self.issuer
        return {"issuer": u, "authorization_endpoint": u + "/authorize",
                "token_endpoint": u + "/token", "jwks_uri": u + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
                "authorization_response_iss_parameter_supported": True}

    def rotate(self):
        self.keys = [self.rs, self.es, self.ed, self.rotated]

    def code_for(self, scenario, nonce, user="mallory"):
        code = "code-%s-%d" % (scenario, len(self.codes))
        self.codes[code] = (scenario, nonce, user)
        return code

    def token(self, form):
        code = form.get("code", "")
        with self.lock:
            if code not in self.codes or code in self.used:
                return 400, {"error": "invalid_grant", "error_description": "code unknown or used"}
            self.used.add(code)
        scenario, nonce, user = self.codes[code]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": self.client_id, "exp": now + 300,
                  "iat": now, "nonce": nonce, "email": user + "@example.com",
                  "groups": ["lxcm-admins"]}
        key, alg, kid = self.rs, "RS256", "r1"
        signer = None
        if scenario == "wrong_iss":
            claims["iss"] = "https://evil.example"
        elif scenario == "wrong_aud":
            claims["aud"] = "someone-else"
        elif scenario == "azp_missing":
            claims["aud"] = [self.client_id, "other"]
        elif scenario == "expired":
            claims["exp"], claims["iat"] = now - 3600, now - 7200
        elif scenario == "iat_future":
            claims["iat"], claims["exp"] = now + 3600, now + 7200
        elif scenario == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif scenario == "no_groups":
            del claims["groups"]
        elif scenario == "bad_signature":
            signer = Key("RS256", "r1").sign
        elif scenario == "alg_none":
            alg, signer = "none", (lambda m: b"")
        elif scenario == "hs256_public_key":
            alg = "HS256"
            signer = lambda m: hmac.new(self.rs.pem(), m, hashlib.sha256).digest()
        elif scenario == "unknown_kid":
            key, kid = self.never, "ghost"
        elif scenario == "rotated_kid":
            key, kid = self.rotated, "r2"
        elif scenario == "es256":
            key, alg, kid = self.es, "ES256", "e1"
        elif scenario == "eddsa":
            key, alg, kid = self.ed, "EdDSA", "d1"
        tok = jws({"alg": alg, "kid": kid, "typ": "JWT"}, claims, signer or key.sign)
        return 200, {"access_token": "at-" + code, "token_type": "Bearer", "expires_in": 300,
                     "id_token": tok}

    def close(self):
        self.httpd.shutdown()
