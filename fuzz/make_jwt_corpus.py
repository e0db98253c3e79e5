#!/usr/bin/env python3
"""Seeds of fuzz_jwt (fuzz/corpus/jwt): a JWKS with an RSA, an EC P-256 and
an Ed25519 key, a NUL, and a token; valid tokens of each algorithm and the
classic refusals (alg none, HS256 keyed with the JWKS, wrong iss, expired,
unknown kid). Needs python3-cryptography; run once, the output is committed."""
import base64, json, os
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "jwt")
NOW = 1700000000


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def n2b(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


rk = rsa.generate_private_key(65537, 2048)
ek = ec.generate_private_key(ec.SECP256R1())
dk = ed25519.Ed25519PrivateKey.generate()
rn = rk.public_key().public_numbers()
en = ek.public_key().public_numbers()
jwks = json.dumps({"keys": [
    {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": b64u(n2b(rn.n)), "e": b64u(n2b(rn.e))},
    {"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64u(en.x.to_bytes(32, "big")), "y": b64u(en.y.to_bytes(32, "big"))},
    {"kty": "OKP", "kid": "d1", "crv": "Ed25519", "x": b64u(dk.public_key().public_bytes_raw())},
]}).encode()


def token(alg, kid, claims, hs_key=None):
    h = b64u(json.dumps({"alg": alg, "kid": kid}).encode())
    p = b64u(json.dumps(claims).encode())
    msg = (h + "." + p).encode()
    if alg == "RS256" and hs_key is None:
        sig = rk.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(ek.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = dk.sign(msg)
    elif alg == "HS256":
        m = hmac.HMAC(hs_key, hashes.SHA256())
        m.update(msg)
        sig = m.finalize()
    else:
        sig = b""
    return (h + "." + p + "." + b64u(sig)).encode()


good = {"iss": "https://idp.example.com", "sub": "alice", "aud": "lxcm", "exp": NOW + 300,
        "iat": NOW, "nonce": "n0nce", "groups": ["admins"], "email": "alice@example.com"}
cases = {
    "rs256": token("RS256", "r1", good),
    "es256": token("ES256", "e1", good),
    "eddsa": token("EdDSA", "d1", good),
    "aud-array-azp": token("RS256", "r1", dict(good, aud=["lxcm", "x"], azp="lxcm")),
    "alg-none": token("none", "r1", good),
    "hs256-public-key": token("HS256", "r1", good, hs_key=jwks),
    "wrong-iss": token("RS256", "r1", dict(good, iss="https://evil.example")),
    "expired": token("RS256", "r1", dict(good, exp=NOW - 3600)),
    "unknown-kid": token("ES256", "rotated", good),
}
os.makedirs(OUT, exist_ok=True)
for name, tok in cases.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(jwks + b"\0" + tok)
