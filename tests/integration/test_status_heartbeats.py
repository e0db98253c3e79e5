#!/usr/bin/env python3
"""Status heartbeats at the connector: group commit and TLS resumption.

Server only: clusters are enrolled here with their own certificates and post
POST /1.0/remote-cluster/status over raw TLS sockets, as the agent does (a
new connection per post, resuming the last TLS session).

- Many posts at once from many clusters are all answered 200 and each
  cluster's last status is what the management API shows.
- A database that refuses the writes answers every post 503 and changes
  nothing; once it accepts again, posts succeed.
- A resumed TLS session still identifies its cluster by the certificate
  from the full handshake: two clusters resuming their own sessions are
  never confused.
"""

import json
import os
import socket
import sqlite3
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_status_heartbeats")

S = None
CERTS = {}
N = 12


def post(name, body, ctx=None, session=None):
    """One heartbeat on a new TLS connection: (Response, session, reused)."""
    ctx = ctx or L.tls_context(CERTS[name])
    raw = socket.create_connection(("127.0.0.1", S.conn_port), timeout=15)
    s = ctx.wrap_socket(raw, server_hostname=None, session=session)
    try:
        data = json.dumps(body).encode()
        s.sendall(b"POST /1.0/remote-cluster/status HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        r = L.read_http_response(s)
        return r, s.session, s.session_reused
    finally:
        s.close()


def cpu_of(name):
    r = S.mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET " + name)
    return r.metadata.get("cpu_total_count")


def db():
    c = sqlite3.connect(os.path.join(S.data_dir, "lxcm.db"), timeout=10)
    c.isolation_level = None
    return c


@t.setup
def setup():
    global S
    S = L.Server("--join-rate", "1000", "--join-burst", "1000").start()
    for i in range(N):
        name = "hb%d" % i
        CERTS[name] = S.enroll(name)


def burst(posts):
    """Sends (name, body) posts all at once; returns the statuses in order."""
    out = [None] * len(posts)

    def one(i, name, body):
        try:
            out[i] = post(name, body)[0].status
        except Exception as e:  # reported as a status
            out[i] = repr(e)

    th = [threading.Thread(target=one, args=(i, n, b)) for i, (n, b) in enumerate(posts)]
    for x in th:
        x.start()
    for x in th:
        x.join(60)
    return out


@t.test
def many_at_once():
    posts = [("hb%d" % (i % N), {"cpu_total_count": 100 + i}) for i in range(4 * N)]
    # Every cluster's posts go in order, one round after another.
    for rnd in range(4):
        got = burst(posts[rnd * N:(rnd + 1) * N])
        L.eq(got, [200] * N, "round %d" % rnd)
    for i in range(N):
        L.eq(cpu_of("hb%d" % i), 100 + 3 * N + i, "last status of hb%d" % i)


@t.test
def refused_writes_answer_503_and_change_nothing():
    c = db()
    c.execute("CREATE TRIGGER t_ro_i BEFORE INSERT ON cluster_status"
              " BEGIN SELECT RAISE(ABORT, 'read-only'); END")
    c.execute("CREATE TRIGGER t_ro_u BEFORE UPDATE ON cluster_status"
              " BEGIN SELECT RAISE(ABORT, 'read-only'); END")
    try:
        before = c.execute("SELECT cluster_id, body FROM cluster_status ORDER BY 1").fetchall()
        got = burst([("hb%d" % i, {"cpu_total_count": 7}) for i in range(N)])
        L.eq(got, [503] * N, "posts while the database refuses")
        after = c.execute("SELECT cluster_id, body FROM cluster_status ORDER BY 1").fetchall()
        L.eq(after, before, "status rows")
    finally:
        c.execute("DROP TRIGGER t_ro_i")
        c.execute("DROP TRIGGER t_ro_u")
        c.close()
    L.eq(burst([("hb0", {"cpu_total_count": 8})]), [200], "post after the database is back")
    L.eq(cpu_of("hb0"), 8, "hb0 after recovery")


@t.test
def resumed_sessions_keep_their_identity():
    ca, cb = L.tls_context(CERTS["hb1"]), L.tls_context(CERTS["hb2"])
    r, sa, _ = post("hb1", {"cpu_total_count": 11}, ctx=ca)
    L.eq(r.status, 200, "hb1 full handshake")
    r, sb, _ = post("hb2", {"cpu_total_count": 22}, ctx=cb)
    L.eq(r.status, 200, "hb2 full handshake")
    for k in range(3):
        r, sa, reused = post("hb1", {"cpu_total_count": 110 + k}, ctx=ca, session=sa)
        L.eq((r.status, reused), (200, True), "hb1 resumed post %d" % k)
        r, sb, reused = post("hb2", {"cpu_total_count": 220 + k}, ctx=cb, session=sb)
        L.eq((r.status, reused), (200, True), "hb2 resumed post %d" % k)
        L.eq(cpu_of("hb1"), 110 + k, "hb1 after resumed post %d" % k)
        L.eq(cpu_of("hb2"), 220 + k, "hb2 after resumed post %d" % k)


@t.test
def removed_cluster_cannot_resume_into_a_post():
    cert = L.Cert("gone")
    S.enroll("gone", cert)
    ctx = L.tls_context(cert)
    r, sess, _ = post("gone", {"cpu_total_count": 1}, ctx=ctx)
    L.eq(r.status, 200, "first post")
    L.eq(S.mgmt("DELETE", "/1.0/remote-cluster/gone").status, 200, "remove gone")
    r, _, reused = post("gone", {"cpu_total_count": 2}, ctx=ctx, session=sess)
    L.eq((r.status, reused), (403, True), "post of a removed cluster on a resumed session")


@t.test
def strangers_sessions_are_not_kept():
    # Sessions are kept for enrolled clusters only: a certificate that is
    # not enrolled cannot fill the session store (src/server/enrolled.c).
    cert = L.Cert("stranger")
    CERTS["stranger"] = cert
    ctx = L.tls_context(cert)
    r, sess, _ = post("stranger", {"cpu_total_count": 1}, ctx=ctx)
    L.eq(r.status, 403, "a post with a certificate that is not enrolled")
    for k in range(3):
        r, sess, reused = post("stranger", {"cpu_total_count": 1}, ctx=ctx, session=sess)
        L.eq((r.status, reused), (403, False), "the stranger's session was kept (%d)" % k)
    # Enrolled now: its sessions are kept from the next full handshake on.
    S.enroll("stranger", cert)
    r, sess, _ = post("stranger", {"cpu_total_count": 5}, ctx=ctx)
    L.eq(r.status, 200, "post after the join")
    r, sess, reused = post("stranger", {"cpu_total_count": 6}, ctx=ctx, session=sess)
    L.eq((r.status, reused), (200, True), "resumed post once enrolled")


@t.test
def clusters_enrolled_before_a_restart_resume():
    S.restart()
    ctx = L.tls_context(CERTS["hb1"])
    r, sess, _ = post("hb1", {"cpu_total_count": 31}, ctx=ctx)
    L.eq(r.status, 200, "full handshake after the restart")
    r, sess, reused = post("hb1", {"cpu_total_count": 32}, ctx=ctx, session=sess)
    L.eq((r.status, reused), (200, True), "resumed post after the restart (set loaded from the store)")
    L.eq(cpu_of("hb1"), 32, "hb1 after the restart")


if __name__ == "__main__":
    t.main()
