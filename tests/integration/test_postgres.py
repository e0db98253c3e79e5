#!/usr/bin/env python3
"""lxcm-server on a real PostgreSQL 15, as an operator moving off SQLite would.

PostgreSQL is started in a temporary directory by scripts/pg-test-env.sh
(not a system service); this file makes its own database. lxcm-server runs
with --db postgres://..., a cluster "pg1" joins with lxcm-agent and the real
LXD of scripts/lxd-test-env.sh behind it, and:

- the cluster, its heartbeat status, API tokens and audit rows land in
  PostgreSQL (read back with psql), and requests go through the tunnel;
- a restarted server finds everything again;
- a password file others may read is refused at startup with a clear
  message, and a URL's password never reaches the log;
- PostgreSQL stopped under a running server: requests that need the store
  fail with a 5xx in the LXD envelope, the server stays up, and once
  PostgreSQL is back the same server answers again without a restart.

Needs root and Debian's lxd and postgresql-15. LXCM_SKIP_LXD=1 skips this file.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_postgres")

SRC = os.environ.get("LXCM_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
PGENV = os.path.join(SRC, "scripts", "pg-test-env.sh")
ADMIN_URL = None
DB = "lxcm_it_%d" % os.getpid()
DB_URL = None
S = None
LXD_SOCKET = None


def pg_env(cmd):
    r = subprocess.run(["sh", PGENV, cmd], capture_output=True, text=True, timeout=120)
    L.eq(r.returncode, 0, "pg-test-env.sh %s: %s" % (cmd, r.stderr))
    for line in r.stdout.splitlines():
        if line.startswith("LXCM_TEST_PG_URL="):
            return line.split("=", 1)[1]
    return None


def psql(sql, url=None):
    r = subprocess.run(["psql", url or DB_URL, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    L.eq(r.returncode, 0, "psql %s: %s" % (sql, r.stderr))
    return r.stdout.strip()


def with_db(url, name):
    return "%s%sdbname=%s" % (url, "&" if "?" in url else "?", name)


def drop_db():
    try:
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB, ADMIN_URL)
    except Exception:
        pass


@t.setup
def setup():
    global ADMIN_URL, DB_URL, S, LXD_SOCKET
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    ADMIN_URL = pg_env("start")
    psql("CREATE DATABASE %s" % DB, ADMIN_URL)
    L.at_exit(drop_db)
    DB_URL = with_db(ADMIN_URL, DB)
    LXD_SOCKET = L.lxd_start()
    S = L.Server("--db", DB_URL).start()
    d = os.path.join(L.tmpdir("agent"), "pg1")
    L.agent("join", S.create_token("pg1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/pg1").metadata["tunnel_registered"],
               timeout=30, interval=0.1, what="the tunnel of pg1 to come up")


@t.test
def test_state_lands_in_postgres():
    L.eq(psql("SELECT name FROM clusters"), "pg1", "the cluster row")
    L.eq(psql("SELECT count(*) FROM join_tokens WHERE cluster_name = 'pg1'"), "0",
         "the join token is used up")
    L.eq(psql("SELECT max(version) FROM schema_migrations"),
         str(max(int(f.split("_")[0])
                 for f in os.listdir(os.path.join(SRC, "src", "store", "migrations")))),
         "every migration recorded")
    L.wait_for(lambda: psql("SELECT count(*) FROM cluster_status") == "1", timeout=60,
               what="the first heartbeat's status in PostgreSQL")
    r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "pg-viewer", "role": "viewer"})
    L.eq(r.status, 200, "create an API token: %r" % r)
    viewer = r.metadata["token"]
    L.eq(psql("SELECT role FROM api_tokens WHERE name = 'pg-viewer'"), "viewer", "token row")
    before = int(psql("SELECT count(*) FROM audit_log"))
    r = S.mgmt("GET", "/1.0/remote-cluster/pg1/tunnel/1.0/instances", token=viewer, timeout=60)
    L.eq(r.status, 200, "GET through the tunnel: %r" % r)
    r = S.mgmt("POST", "/1.0/remote-cluster/pg1/tunnel/1.0/instances", {}, token=viewer)
    L.eq(r.status, 403, "a viewer's POST")
    L.wait_for(lambda: int(psql("SELECT count(*) FROM audit_log")) >= before + 2, timeout=30,
               what="two audit rows in PostgreSQL")
    L.eq(psql("SELECT status FROM audit_log WHERE method = 'POST' ORDER BY id DESC LIMIT 1"),
         "403", "the refusal's audit row")


@t.test
def test_restart_keeps_everything():
    S.restart()
    r = S.mgmt("GET", "/1.0/remote-cluster/pg1")
    L.eq(r.status, 200, "the cluster after a restart: %r" % r)
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/pg1").metadata["tunnel_registered"],
               timeout=60, interval=0.2, what="the agent to reconnect")
    r = S.mgmt("GET", "/1.0/auth/tokens")
    L.check("pg-viewer" in [x["name"] for x in r.metadata], "API tokens after a restart")


@t.test
def test_password_file_rules():
    pw = os.path.join(L.tmpdir("pw"), "db.password")
    with open(pw, "w") as f:
        f.write("not-used-with-trust\n")
    os.chmod(pw, 0o644)
    r = L.run([L.binary("lxcm-server"), "--data-dir", L.tmpdir("srv"), "--db", DB_URL,
               "--db-password-file", pw, "--management-addr", "127.0.0.1:%d" % L.free_port(),
               "--connector-addr", "127.0.0.1:%d" % L.free_port()], timeout=30)
    L.check(r.returncode != 0, "a world-readable password file is refused")
    L.check("chmod 600" in r.stderr, "the message says what to do: %r" % r.stderr)
    os.chmod(pw, 0o600)
    # A second server on the same database: the admin token lives in the
    # database, its file comes from the first server's data directory.
    d2 = L.tmpdir("srv2")
    with open(S.token_file) as f, open(os.path.join(d2, "admin.token"), "w") as g:
        g.write(f.read())
    s2 = L.Server("--db", DB_URL, "--db-password-file", pw, data_dir=d2).start()
    L.eq(s2.mgmt("GET", "/1.0/remote-cluster/pg1").status, 200, "a second server, same database")
    s2.stop()
    # A URL with a password: the log never shows it.
    bad = "postgresql://lxcm:sekrit-pw@127.0.0.1:1/nodb"
    r = L.run([L.binary("lxcm-server"), "--data-dir", L.tmpdir("srv"), "--db", bad,
               "--management-addr", "127.0.0.1:%d" % L.free_port(),
               "--connector-addr", "127.0.0.1:%d" % L.free_port()], timeout=30)
    L.check(r.returncode != 0, "an unreachable database fails the start")
    L.check("sekrit-pw" not in r.stdout + r.stderr, "the password stays out of the log")
    L.check("cannot open the store" in r.stderr, "a clear message: %r" % r.stderr[-400:])


@t.test
def test_two_servers_hear_each_other():
    """A second server on the same database, as a second replica: a token
    revoked on one is refused (403) on the other at once (its cache hears the
    change through LISTEN/NOTIFY, well before the cache's own 5 s expiry),
    and a cluster removed on one loses its tunnel on the other."""
    d2 = L.tmpdir("srv2")
    with open(S.token_file) as f, open(os.path.join(d2, "admin.token"), "w") as g:
        g.write(f.read())
    s2 = L.Server("--db", DB_URL, data_dir=d2).start()
    try:
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "pg-shared", "role": "viewer"})
        L.eq(r.status, 200, "create a token on the first server")
        tok = r.metadata["token"]
        L.eq(s2.mgmt("GET", "/1.0/remote-cluster", token=tok).status, 200,
             "the token works on the second server (and is in its cache now)")
        L.eq(S.mgmt("DELETE", "/1.0/auth/tokens/pg-shared").status, 200, "revoke on the first")
        # Less than the cache's own expiry (PRINCIPAL_CACHE_TTL_MS, 5 s): only
        # the change feed can make the second server refuse it this soon.
        L.wait_for(lambda: s2.mgmt("GET", "/1.0/remote-cluster", token=tok).status == 403,
                   timeout=3, interval=0.1, what="the second server to refuse the revoked token")
        down = "closing the tunnel of removed cluster pg1"
        before = open(S.log_path).read().count(down)
        L.eq(s2.mgmt("DELETE", "/1.0/remote-cluster/pg1").status, 200,
             "remove the cluster on the second server")
        L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/pg1").status == 404,
                   timeout=10, what="the cluster gone on the first server")
        L.wait_for(lambda: open(S.log_path).read().count(down) > before,
                   timeout=10, what="the first server to drop pg1's tunnel")
    finally:
        s2.stop()


@t.test
def test_migrate_db_from_sqlite():
    """An operator moves a single SQLite server to PostgreSQL: stop it,
    migrate-db, start it on PostgreSQL: the same tokens, API tokens and
    audit rows are there, and the admin token still works."""
    sq = L.Server()
    sq.start()
    L.eq(sq.mgmt("POST", "/1.0/remote-cluster-join-token", {"cluster_name": "later"}).status,
         200, "a join token on SQLite")
    r = sq.mgmt("POST", "/1.0/auth/tokens", {"name": "ops", "role": "operator"})
    L.eq(r.status, 200, "an API token on SQLite")
    ops = r.metadata["token"]
    sq.mgmt("GET", "/1.0/remote-cluster/nowhere/tunnel/1.0")   # an audit row
    sq.stop()
    db = "lxcm_mig_%d" % os.getpid()
    psql("CREATE DATABASE %s" % db, ADMIN_URL)
    try:
        to = with_db(ADMIN_URL, db)
        src = "sqlite:" + os.path.join(sq.data_dir, "lxcm.db")
        r = L.run([L.binary("lxcm-server"), "migrate-db", "--from", src, "--to", to], timeout=120)
        L.eq(r.returncode, 0, "migrate-db: %s" % r.stderr[-600:])
        L.check("migrated 0 clusters, 1 join tokens, 2 API tokens" in r.stderr,
                "migrate-db says what it moved: %r" % r.stderr[-400:])
        L.eq(psql("SELECT count(*) FROM audit_log", to),
             subprocess.run(["python3", "-c", "import sqlite3,sys;print(sqlite3.connect(sys.argv[1])"
                             ".execute('select count(*) from audit_log').fetchone()[0])",
                             src[len("sqlite:"):]], capture_output=True, text=True).stdout.strip(),
             "every audit row")
        # Again into the now full database: refused, nothing changes.
        r = L.run([L.binary("lxcm-server"), "migrate-db", "--from", src, "--to", to], timeout=120)
        L.check(r.returncode != 0 and "not empty" in r.stderr, "a second migration is refused")
        pg = L.Server("--db", to, data_dir=sq.data_dir).start()
        try:
            L.eq(pg.mgmt("GET", "/1.0/remote-cluster-join-token").metadata[0]["cluster_name"],
                 "later", "the join token on PostgreSQL")
            L.eq(pg.mgmt("GET", "/1.0/remote-cluster", token=ops).status, 200,
                 "the operator token works on PostgreSQL")
            r = pg.mgmt("POST", "/1.0/auth/tokens", {"name": "new", "role": "viewer"})
            L.eq(r.status, 200, "new rows after the copied ones: %r" % r)
        finally:
            pg.stop()
    finally:
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db, ADMIN_URL)
    r = L.run([L.binary("lxcm-server"), "migrate-db", "--from", "sqlite:/x.db"], timeout=30)
    L.eq(r.returncode, 2, "migrate-db without --to is a usage error")


@t.test
def test_database_restart_under_load():
    pg_env("stop")
    try:
        r = S.mgmt("GET", "/1.0/remote-cluster", timeout=60)
        L.check(500 <= r.status < 600, "store down: a 5xx, got %r" % r)
        L.check_envelope_error(r.json, r.status, "store down")
        L.check(S.alive(), "the server stays up without its database")
    finally:
        pg_env("start")
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster", timeout=30).status == 200,
               timeout=60, interval=0.5, what="the same server to answer once PostgreSQL is back")
    r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "pg-after", "role": "viewer"})
    L.eq(r.status, 200, "a write after the database came back: %r" % r)


if __name__ == "__main__":
    t.main()
