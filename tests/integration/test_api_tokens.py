"""API tokens managed at run time: create (shown once, stored hashed), list,
revoke (effective on the next request and after a restart), the last token
kept, through the REST API and the CLI."""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_api_tokens")
S = {}


@t.setup
def setup():
    S["srv"] = L.Server()
    S["srv"].start()


@t.test
def test_create_list_revoke_rest():
    srv = S["srv"]
    r = srv.mgmt("POST", "/1.0/auth/tokens", {"name": "ci"})
    L.eq(r.status, 200, "create: %r" % (r,))
    tok = r.metadata["token"]
    L.check(tok.startswith("lxcm_") and len(tok) == 69, "token shape: %r" % tok)
    # The new token works; the list never shows a secret.
    r = srv.mgmt("GET", "/1.0/auth/tokens", token=tok)
    L.eq(r.status, 200, "list with the new token")
    names = sorted(x["name"] for x in r.metadata)
    L.eq(names, ["admin", "ci"], "token names")
    L.check(tok not in r.raw.decode(), "the list must not hold the secret")
    # Each entry names the actor its requests have in the audit log.
    actors = {x["name"]: x["audit_actor"] for x in r.metadata}
    L.eq(actors["ci"], "token:" + L.sha256_hex(tok.encode())[:12], "audit_actor of ci")
    L.eq(actors["admin"], "token:" + L.sha256_hex(srv.token.encode())[:12], "audit_actor of admin")
    # Only the hash is stored.
    db = sqlite3.connect(os.path.join(srv.data_dir, "lxcm.db"))
    hashes = [h for (h,) in db.execute("SELECT hash FROM api_tokens")]
    db.close()
    L.check(L.sha256_hex(tok.encode()) in hashes, "the stored value is the SHA-256")
    L.check(tok not in hashes, "the secret itself is not stored")
    # Duplicate and invalid names.
    L.eq(srv.mgmt("POST", "/1.0/auth/tokens", {"name": "ci"}).status, 409, "duplicate")
    L.eq(srv.mgmt("POST", "/1.0/auth/tokens", {"name": "../x"}).status, 400, "bad name")
    L.eq(srv.mgmt("POST", "/1.0/auth/tokens", {}).status, 400, "no name")
    # Revoke: refused on the very next request.
    L.eq(srv.mgmt("DELETE", "/1.0/auth/tokens/ci").status, 200, "revoke")
    L.eq(srv.mgmt("GET", "/1.0/remote-cluster", token=tok).status, 403, "revoked token")
    L.eq(srv.mgmt("DELETE", "/1.0/auth/tokens/ci").status, 404, "revoke twice")
    # The last token cannot go.
    r = srv.mgmt("DELETE", "/1.0/auth/tokens/admin")
    L.eq(r.status, 409, "revoking the last token: %r" % (r,))
    L.check_envelope_error(r.json, 409)


@t.test
def test_revocation_survives_restart():
    srv = S["srv"]
    tok = srv.mgmt("POST", "/1.0/auth/tokens", {"name": "temp"}).metadata["token"]
    L.eq(srv.mgmt("DELETE", "/1.0/auth/tokens/temp").status, 200, "revoke")
    srv.restart()
    L.eq(srv.mgmt("GET", "/1.0/remote-cluster", token=tok).status, 403, "after restart")
    L.eq(srv.mgmt("GET", "/1.0/remote-cluster").status, 200, "admin still works")


@t.test
def test_cli():
    srv = S["srv"]
    cli = L.Cli(srv)
    cp = cli("api-token", "create", "ops")
    tok = cp.stdout.strip()
    L.check(tok.startswith("lxcm_"), "CLI prints the token: %r" % cp.stdout)
    cp = cli("api-token", "list")
    L.check("ops" in cp.stdout and tok not in cp.stdout, "CLI list: %r" % cp.stdout)
    L.check("AUDIT ACTOR" in cp.stdout and
            "token:" + L.sha256_hex(tok.encode())[:12] in cp.stdout,
            "CLI list shows the audit actor: %r" % cp.stdout)
    L.eq(sorted(x["name"] for x in cli.json("api-token", "list")), ["admin", "ops"],
         "CLI --json list")
    cli("api-token", "revoke", "ops")
    L.eq(srv.mgmt("GET", "/1.0", token=tok).metadata["auth"], "untrusted", "revoked via CLI")
    cp = cli("api-token", "revoke", "admin", check_rc=1)
    L.check("last API token" in cp.stderr, "CLI explains the last token: %r" % cp.stderr)


@t.test
def test_cli_role():
    srv = S["srv"]
    cli = L.Cli(srv)
    cp = cli("api-token", "create", "nosuchrole", "--role", "root", check_rc=2)
    L.check("--role must be admin, operator or viewer" in cp.stderr, "bad role: %r" % cp.stderr)
    cp = cli("api-token", "create", "dash", "--role", "viewer", check_rc=None)
    listed = {x["name"]: x for x in cli.json("api-token", "list")}
    L.check("nosuchrole" not in listed, "a token was made with a bad role")
    table = cli("api-token", "list").stdout
    L.check(table.startswith("NAME ") and " ROLE " in table.splitlines()[0],
            "ROLE column: %r" % table)
    if any("role" in x for x in listed.values()):
        # A server with roles made a viewer token.
        L.eq(cp.returncode, 0, "create --role viewer: %r" % cp.stderr)
        L.check(cp.stdout.strip().startswith("lxcm_"), "token printed: %r" % cp.stdout)
        L.eq(listed["dash"]["role"], "viewer", "role in the list")
        L.check(re.search(r"^dash\s+viewer\s", table, re.M), "ROLE of dash: %r" % table)
        cli("api-token", "revoke", "dash")
    else:
        # A server from before roles made an admin token: the CLI took it back
        # without showing it, and the table has "-" for the unknown roles.
        L.eq(cp.returncode, 1, "create --role viewer on a server without roles")
        L.eq(cp.stdout, "", "no secret printed")
        L.check("did not confirm the role viewer" in cp.stderr, "says why: %r" % cp.stderr)
        L.check("dash" not in listed, "the admin-rights token was left: %r" % (listed,))
        L.check(re.search(r"^admin\s+-\s", table, re.M), "ROLE '-': %r" % table)


@t.test
def test_revoking_admin_removes_admin_token_file():
    srv = L.Server().start()
    try:
        path = os.path.join(srv.data_dir, "admin.token")
        other = srv.mgmt("POST", "/1.0/auth/tokens", {"name": "ops"}).metadata["token"]
        # Revoking another token leaves the file alone.
        extra = srv.mgmt("POST", "/1.0/auth/tokens", {"name": "extra"}).metadata["token"]
        L.eq(srv.mgmt("DELETE", "/1.0/auth/tokens/extra", token=other).status, 200, "revoke extra")
        L.check(os.path.exists(path), "admin.token removed when another token was revoked")
        L.eq(srv.mgmt("DELETE", "/1.0/auth/tokens/admin", token=other).status, 200,
             "revoke admin")
        L.check(not os.path.exists(path), "admin.token still holds the revoked admin token")
        # A new token called admin is not written to a file.
        new = srv.mgmt("POST", "/1.0/auth/tokens", {"name": "admin"}, token=other)
        L.eq(new.status, 200, "a new token called admin")
        L.check(not os.path.exists(path), "a new admin token was written to admin.token")
        L.eq(srv.mgmt("GET", "/1.0/remote-cluster", token=new.metadata["token"]).status, 200,
             "the new admin token works")
    finally:
        srv.stop()


if __name__ == "__main__":
    t.main()
