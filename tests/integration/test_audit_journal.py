#!/usr/bin/env python3
"""No audit row is lost when the server is killed.

Audit rows are written to the database in batches; each is first appended
to a journal file in the data directory (src/server/audit_journal.c). These
tests SIGKILL the server right after responses came back and check, after a
restart, that the database holds a row for every request that was answered:

- a burst of concurrent proxied requests, then SIGKILL at once;
- the journal files are emptied once their rows are in the database, and a
  clean stop leaves them empty;
- a torn record at the end of a journal (a crash in the middle of a write)
  costs only that record;
- rows replayed twice (killed after the batch committed but before the file
  was emptied) are written once.

Server and agent only (no LXD). Python standard library only.
"""

import os
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import upstream_fake as U  # noqa: E402

t = L.Tests("test_audit_journal")

S = None
UP = None
AGENT = None
AUDIT_SQL = "SELECT request_id, cluster, method, path, status FROM audit_log ORDER BY id"


def db_path():
    return os.path.join(S.data_dir, "lxcm.db")


def journal_paths():
    return [os.path.join(S.data_dir, "audit-journal.%d" % i) for i in (0, 1)]


def db_rows(sql=AUDIT_SQL):
    con = sqlite3.connect("file:%s?mode=ro" % db_path(), uri=True, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def sigkill():
    S.proc.send_signal(signal.SIGKILL)
    S.proc.wait(timeout=15)
    L.forget(S.proc)
    S.proc = None


def cluster_tunnel(name):
    r = S.mgmt("GET", "/1.0/remote-cluster/" + name)
    return r.metadata.get("tunnel") if r.status == 200 and \
        r.metadata.get("tunnel_registered") else None


def wait_tunnel(name, timeout=60):
    L.wait_for(lambda: cluster_tunnel(name), timeout=timeout, what="the tunnel of " + name)


def echo(what):
    r = S.mgmt("GET", "/1.0/remote-cluster/k/tunnel/1.0/echo?what=" + what, timeout=30)
    L.eq(r.status, 200, "proxied echo %s: %r" % (what, r))
    return r


def paths_in_db(prefix):
    return sorted(r[3] for r in db_rows() if r[3].startswith(prefix))


@t.setup
def setup():
    global S, UP, AGENT
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    S = L.Server().start()
    UP = U.FakeUpstream("k").start()
    adir = os.path.join(L.tmpdir("agent"), "k")
    L.agent("join", S.create_token("k"), "--data-dir", adir, "--upstream", UP.url,
            check_rc=0, timeout=60)
    AGENT = L.spawn_agent("run", "--data-dir", adir, log_path=adir + ".log")
    wait_tunnel("k")
    echo("setup")


@t.test
def test_burst_then_sigkill():
    for p in journal_paths():
        L.check(os.path.exists(p), "journal file %s exists" % p)
        L.eq(os.stat(p).st_mode & 0o777, 0o600, "mode of %s" % p)
    answered = []
    lock = threading.Lock()

    def worker(k):
        for i in range(25):
            what = "burst-%d-%d" % (k, i)
            echo(what)
            with lock:
                answered.append("/1.0/echo?what=" + what)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    L.eq(len(answered), 200, "requests answered")
    sigkill()   # at once: rows of the last ~20 ms are not in the database yet
    before = paths_in_db("/1.0/echo?what=burst-")
    L.log("  rows in the database at the kill: %d of 200" % len(before))
    S.start()
    got = paths_in_db("/1.0/echo?what=burst-")
    L.eq(got, sorted(answered), "a row for every answered request after the restart")
    L.check(all(r[4] == 200 and r[1] == "k" and r[2] == "GET"
                for r in db_rows() if r[3].startswith("/1.0/echo?what=burst-")),
            "rows carry cluster, method and status")
    ids = [r[0] for r in db_rows()]
    L.eq(len(ids), len(set(ids)), "request ids are unique")
    L.check(all(i and len(i) == 32 for i in ids), "every row has a 32-digit request id")
    for p in journal_paths():
        L.eq(os.path.getsize(p), 0, "%s emptied by the replay" % p)
    wait_tunnel("k")


@t.test
def test_journal_emptied_while_running_and_at_stop():
    for i in range(5):
        echo("steady-%d" % i)
    # Each batch empties the file it came from; one file may still hold the
    # rows of the last batch until the next rotation.
    L.wait_for(lambda: len(paths_in_db("/1.0/echo?what=steady-")) == 5, timeout=15,
               what="5 rows written")
    for i in range(5):
        echo("steady2-%d" % i)
    L.wait_for(lambda: len(paths_in_db("/1.0/echo?what=steady2-")) == 5, timeout=15,
               what="5 more rows written")
    sizes = [os.path.getsize(p) for p in journal_paths()]
    L.check(min(sizes) == 0, "at most one journal file holds rows while idle: %r" % sizes)
    L.eq(S.stop(), 0, "exit status after SIGTERM")
    for p in journal_paths():
        L.eq(os.path.getsize(p), 0, "%s is empty after a clean stop" % p)
    S.start()
    wait_tunnel("k")


@t.test
def test_torn_tail_and_double_replay():
    n0 = len(db_rows())
    for i in range(10):
        echo("torn-%d" % i)
    sigkill()
    # Make the journal look like a crash after the batch was committed but
    # before the file was emptied: the rows are in the database and the file.
    total = sum(os.path.getsize(p) for p in journal_paths())
    L.check(total > 0, "the journal holds the rows after SIGKILL")
    first = None
    for p in journal_paths():
        if os.path.getsize(p):
            first = p
    with open(first, "rb") as f:
        data = f.read()
    # Replay once (the server writes the rows), then restore the file plus a
    # torn record and replay again.
    S.start()
    after_first = db_rows()
    L.eq(len(paths_in_db("/1.0/echo?what=torn-")), 10, "10 rows after the first replay")
    S.stop()
    with open(first, "wb") as f:
        f.write(data + data[:37])   # a torn copy of the first record at the end
    S.start()
    L.eq(db_rows(), after_first, "replaying rows already written adds nothing")
    L.check(len(after_first) >= n0 + 10, "rows: %d" % len(after_first))
    for p in journal_paths():
        L.eq(os.path.getsize(p), 0, "%s emptied after the replay" % p)
    log = S.log_tail(200)
    L.check("damaged record" in log, "the torn record is reported in the log")
    wait_tunnel("k")
    echo("after-torn")
    L.eq(S.stop(), 0, "exit status after SIGTERM")
    L.eq(len(paths_in_db("/1.0/echo?what=after-torn")), 1, "new rows still written")
    con = sqlite3.connect(db_path(), timeout=30)
    try:
        L.eq(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)], "integrity_check")
    finally:
        con.close()


if __name__ == "__main__":
    t.main()
