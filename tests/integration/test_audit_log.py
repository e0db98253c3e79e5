#!/usr/bin/env python3
"""The audit log read through the API and the CLI, and the request's log lines.

lxcm-server (--log-format json) on free loopback ports; cluster "lxd1" joined
by lxcm-agent with the LXD of scripts/lxd-test-env.sh as its upstream, and
`lxcm-agent run --log-format json` holding the tunnel (as in test_roles.py).
Rows come from real requests through the tunnel to the real LXD, by the
admin token and three role tokens, and from refusals.

- GET /1.0/audit: rows newest first with every column, each filter (cluster,
  actor by id and by name, status code and class, since/until, limit), 400
  in the LXD envelope for every malformed filter;
- paging through more than two pages with the cursor while new rows arrive:
  no row twice, none missing;
- a viewer sees only its own rows, whatever it asks for; an operator all;
- `lxcm audit` with its options, as a table and as JSON;
- every log line of the server and the agent is a JSON object; each proxied
  request has one server line whose request id is its audit row's, the
  X-Request-Id of the answer, and the id on the agent's line for it;
- --audit-retention 2s: old rows are pruned, new ones are there.

Needs root and Debian's lxd. LXCM_SKIP_LXD=1 skips this file (exit 0).
"""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_audit_log")

S = None
AGENT_LOG = None
TOK = {}            # role -> secret
ACTOR = {}          # role -> audit actor ("token:" + 12 hex digits)
TOKFILE = {}        # role -> a file holding the token, for the CLI


@t.setup
def setup():
    global S, AGENT_LOG
    for name in ("lxcm-server", "lxcm-agent", "lxcm"):
        L.binary(name)
    sock = L.lxd_start()
    L.lxd_get(sock, "/1.0")
    S = L.Server("--log-format", "json").start()
    d = os.path.join(L.tmpdir("agent"), "lxd1")
    L.agent("join", S.create_token("lxd1"), "--data-dir", d, "--upstream", "unix://" + sock,
            check_rc=0, timeout=90)
    AGENT_LOG = d + ".log"
    L.spawn_agent("run", "--data-dir", d, "--log-format", "json", log_path=AGENT_LOG)
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"],
               timeout=30, interval=0.1, what="the tunnel of lxd1 to come up")
    ACTOR["admin"] = "token:" + L.sha256_hex(S.token.encode())[:12]
    TOK["admin"] = S.token
    for role in ("viewer", "operator"):
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "audit-" + role, "role": role})
        L.eq(r.status, 200, "create the %s token: %r" % (role, r))
        TOK[role] = r.metadata["token"]
        ACTOR[role] = "token:" + L.sha256_hex(TOK[role].encode())[:12]
    for role, tok in TOK.items():
        TOKFILE[role] = os.path.join(L.tmpdir("tok"), role)
        with open(TOKFILE[role], "w") as f:
            f.write(tok + "\n")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tunnel(role, method, path, body=None):
    return S.mgmt(method, "/1.0/remote-cluster/lxd1/tunnel" + path, body=body, token=TOK[role],
                  timeout=60)


def audit(role="admin", **params):
    """GET /1.0/audit with params; the Response."""
    q = urllib.parse.urlencode(params)
    return S.mgmt("GET", "/1.0/audit" + ("?" + q if q else ""), token=TOK[role])


def entries(role="admin", **params):
    r = audit(role, **params)
    L.eq(r.status, 200, "GET /1.0/audit %r as %s: %r" % (params, role, r))
    L.check_envelope_sync(r.json)
    return r.metadata["entries"]


def wait_row(request_id, role="admin"):
    """The row of a request (rows are written within milliseconds, in batches)."""
    def find():
        for e in entries(role, limit=1000):
            if e["request_id"] == request_id:
                return e
        return None
    return L.wait_for(find, timeout=10, interval=0.05, what="the audit row of %s" % request_id)


def all_rows(role="admin"):
    """Every row, through the cursor."""
    out, cursor = [], None
    while True:
        params = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = audit(role, **params)
        L.eq(r.status, 200, "a page: %r" % (r,))
        out += r.metadata["entries"]
        cursor = r.metadata["next"]
        if cursor is None:
            return out


def json_lines(path):
    """Every log line of a file (the harness's own "=== argv" lines aside), parsed."""
    out = []
    with open(path, "rb") as f:
        for raw in f.read().decode("utf-8").splitlines():
            if not raw.strip() or raw.startswith("=== "):
                continue
            try:
                o = json.loads(raw)
            except ValueError:
                raise L.TestFailure("%s: not a JSON line: %r" % (path, raw))
            L.check(isinstance(o, dict), "%s: not a JSON object: %r" % (path, raw))
            for k in ("ts", "level", "msg"):
                L.check(isinstance(o.get(k), str), "%s: no %s in %r" % (path, k, raw))
            out.append(o)
    return out


def cli(role, *args, check_rc=0, json_out=False):
    argv = [L.binary("lxcm"), "--server", S.url, "--token-file", TOKFILE[role]]
    if json_out:
        argv.append("--json")
    xdg = os.path.join(S.data_dir, "xdg")
    os.makedirs(xdg, exist_ok=True)
    return L.run(argv + list(args), check_rc=check_rc,
                 env={"XDG_CONFIG_HOME": xdg, "HOME": xdg, "LXCM_SERVER": "", "LXCM_TOKEN": ""})


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------

@t.test
def test_rows_of_proxied_requests():
    r = tunnel("operator", "GET", "/1.0/instances?recursion=0")
    L.eq(r.status, 200, "operator GET through the tunnel: %r" % (r,))
    rid = r.headers.get("x-request-id", "")
    L.eq(len(rid), 32, "X-Request-Id of the answer: %r" % (r.headers,))
    e = wait_row(rid)
    L.eq(e["actor"], ACTOR["operator"], "actor")
    L.eq(e["actor_name"], "api-token:audit-operator", "actor_name")
    L.eq(e["client"], "127.0.0.1", "client")
    L.eq(e["cluster"], "lxd1", "cluster")
    L.eq(e["method"], "GET", "method")
    L.eq(e["path"], "/1.0/instances?recursion=0", "path")
    L.eq(e["status"], 200, "status")
    L.check(e["bytes_out"] > 0 and e["bytes_in"] == 0, "bytes: %r" % (e,))
    L.check(isinstance(e["duration_ms"], int) and e["duration_ms"] >= 0, "duration: %r" % (e,))
    L.check(abs(L.parse_rfc3339(e["timestamp"]) - time.time()) < 60, "timestamp: %r" % (e,))
    # Newest first.
    r2 = tunnel("admin", "GET", "/1.0/nosuch-endpoint")
    wait_row(r2.headers["x-request-id"])
    got = entries(limit=2)
    L.eq([x["request_id"] for x in got], [r2.headers["x-request-id"], rid], "newest first")
    L.eq(got[0]["status"], r2.status, "the 404-ish status of LXD")


def seed_rows():
    """Rows of each kind: 200s and a 404 by admin and operator, a viewer's
    GET, its refused POST, and a refusal on another cluster's path."""
    ids = {}
    ids["admin_200"] = tunnel("admin", "GET", "/1.0").headers["x-request-id"]
    ids["admin_404"] = tunnel("admin", "GET", "/1.0/instances/lxcm-no-such-one").headers[
        "x-request-id"]
    L.eq(tunnel("admin", "GET", "/1.0/instances/lxcm-no-such-one").status, 404, "LXD's 404")
    ids["op_200"] = tunnel("operator", "GET", "/1.0/instances").headers["x-request-id"]
    ids["viewer_200"] = tunnel("viewer", "GET", "/1.0").headers["x-request-id"]
    r = tunnel("viewer", "POST", "/1.0/instances", {"name": "lxcm-audit-x"})
    L.eq(r.status, 403, "viewer POST: %r" % (r,))
    r = S.mgmt("DELETE", "/1.0/remote-cluster/ghost/tunnel/1.0/instances/x", token=TOK["viewer"])
    L.eq(r.status, 403, "viewer DELETE on ghost: %r" % (r,))
    for k in ("admin_200", "admin_404", "op_200", "viewer_200"):
        wait_row(ids[k])
    return ids


@t.test
def test_filters():
    t0 = int(time.time())
    ids = seed_rows()
    every = entries(limit=1000)
    L.check(all(x["cluster"] == "lxd1" for x in entries(cluster="lxd1", limit=1000)),
            "cluster=lxd1 returned another cluster's rows")
    ghost = entries(cluster="ghost")
    L.eq(len(ghost), 1, "rows of cluster ghost: %r" % (ghost,))
    L.eq((ghost[0]["status"], ghost[0]["method"], ghost[0]["actor"]),
         (403, "DELETE", ACTOR["viewer"]), "the refusal on ghost")
    L.eq(entries(cluster="nosuch"), [], "a cluster without rows")
    # actor, by id and by name
    op = entries(actor=ACTOR["operator"], limit=1000)
    L.check(op and all(x["actor"] == ACTOR["operator"] for x in op), "actor=id: %r" % (op,))
    L.check(ids["op_200"] in [x["request_id"] for x in op], "the operator's GET by id")
    by_name = entries(actor="api-token:audit-operator", limit=1000)
    L.eq([x["request_id"] for x in by_name], [x["request_id"] for x in op], "actor by name")
    L.eq(len(op), len([x for x in every if x["actor"] == ACTOR["operator"]]), "actor count")
    # status: a code and classes
    s404 = entries(status="404", limit=1000)
    L.check(s404 and all(x["status"] == 404 for x in s404), "status=404: %r" % (s404,))
    L.check(ids["admin_404"] in [x["request_id"] for x in s404], "the 404 by status")
    s4xx = entries(status="4xx", limit=1000)
    L.check(all(400 <= x["status"] <= 499 for x in s4xx), "status=4xx")
    L.check({403, 404} <= {x["status"] for x in s4xx}, "403 and 404 in 4xx: %r" % (s4xx,))
    s2xx = entries(status="2xx", limit=1000)
    L.check(all(200 <= x["status"] <= 299 for x in s2xx) and s2xx, "status=2xx")
    # since / until (whole seconds, inclusive)
    late = entries(since=L.rfc3339(t0), limit=1000)
    L.check({ids[k] for k in ids} <= {x["request_id"] for x in late}, "since t0")
    L.check(all(L.parse_rfc3339(x["timestamp"]) >= t0 for x in late), "since: older rows")
    early = entries(until=L.rfc3339(t0 - 1), limit=1000)
    L.check(not {ids[k] for k in ids} & {x["request_id"] for x in early}, "until t0-1")
    L.check(all(L.parse_rfc3339(x["timestamp"]) <= t0 - 1 for x in early), "until: newer rows")
    both = entries(since=L.rfc3339(t0), until=L.rfc3339(time.time() + 60), status="404",
                   actor=ACTOR["admin"], cluster="lxd1")
    L.check(ids["admin_404"] in [x["request_id"] for x in both], "all filters together")
    # limit
    L.eq(len(entries(limit=1)), 1, "limit=1")
    L.eq(len(entries(limit=3)), 3, "limit=3")
    L.eq(entries(), entries(limit=100), "the default limit is 100")


@t.test
def test_bad_filters():
    for params in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"status": "6xx"},
                   {"status": "99"}, {"status": "abc"}, {"since": "yesterday"},
                   {"until": "2026-01-01"}, {"cursor": "zzz"}, {"cursor": "0" * 32},
                   {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                   {"nosuch": "1"}, {"cluster": ""}):
        r = audit(**params)
        L.eq(r.status, 400, "GET /1.0/audit %r: %r" % (params, r))
        L.check_envelope_error(r.json, 400, "400 of %r" % (params,))
    for raw in ("limit=5&limit=5", "cluster=a%zz", "cluster=a%00"):
        r = S.mgmt("GET", "/1.0/audit?" + raw)
        L.eq(r.status, 400, "GET /1.0/audit?%s: %r" % (raw, r))
        L.check_envelope_error(r.json, 400, raw)
    r = S.mgmt("GET", "/1.0/audit", token=None)
    L.check(r.status in (401, 403), "no token: %r" % (r,))


@t.test
def test_paging():
    # At least 250 rows through the real tunnel, then pages of 100 while rows arrive.
    mine = set()
    for i in range(250):
        r = tunnel("operator", "GET", "/1.0?page=%d" % i)
        L.eq(r.status, 200, "request %d: %r" % (i, r))
        mine.add(r.headers["x-request-id"])
    wait_row(r.headers["x-request-id"])
    before = {x["request_id"] for x in entries(actor=ACTOR["operator"], limit=1000)}
    L.check(mine <= before, "every request of the run has a row")
    seen, pages, cursor, newer = [], 0, None, set()
    while True:
        params = {"actor": ACTOR["operator"], "limit": 100}
        if cursor:
            params["cursor"] = cursor
        r = audit(**params)
        L.eq(r.status, 200, "page %d: %r" % (pages, r))
        md = r.metadata
        seen += [x["request_id"] for x in md["entries"]]
        pages += 1
        # Rows keep arriving while we page; they are newer and never show up.
        newer.add(tunnel("operator", "GET", "/1.0?while-paging").headers["x-request-id"])
        cursor = md["next"]
        if cursor is None:
            break
        L.check(len(md["entries"]) == 100, "a page with a cursor must be full")
        L.check(pages < 50, "too many pages")
    L.check(pages > 2, "only %d pages" % pages)
    L.eq(len(seen), len(set(seen)), "a row came twice")
    L.eq(set(seen), before, "rows missing or extra across the pages")
    L.check(not newer & set(seen), "a row made while paging showed in a later page")
    stamps = [L.parse_rfc3339(x["timestamp"]) for x in entries(actor=ACTOR["operator"],
                                                                limit=1000)]
    L.eq(stamps, sorted(stamps, reverse=True), "newest first")


@t.test
def test_viewer_sees_own_rows():
    seed_rows()
    mine = entries("viewer", limit=1000)
    L.check(mine, "the viewer has rows")
    L.check(all(x["actor"] == ACTOR["viewer"] for x in mine),
            "a viewer saw someone else's rows: %r" % ({x["actor"] for x in mine},))
    L.eq(len(mine), len([x for x in entries(limit=1000) if x["actor"] == ACTOR["viewer"]]),
         "the viewer sees all its own rows")
    # Asking for another actor's rows gives nothing; its own name works.
    L.eq(entries("viewer", actor=ACTOR["admin"]), [], "viewer asking for the admin's rows")
    L.eq(entries("viewer", actor=ACTOR["operator"], status="2xx"), [], "viewer, operator's rows")
    L.check(entries("viewer", actor="api-token:audit-viewer"), "viewer by its own name")
    L.check(all(x["actor"] == ACTOR["viewer"] for x in entries("viewer", cluster="ghost")),
            "viewer, cluster filter")
    # An operator reads everything, like an admin.
    L.eq({x["actor"] for x in entries("operator", limit=1000)},
         {x["actor"] for x in entries(limit=1000)}, "an operator's view")
    L.check({ACTOR["admin"], ACTOR["operator"], ACTOR["viewer"]} <=
            {x["actor"] for x in entries("operator", limit=1000)}, "every actor")


@t.test
def test_cli():
    rid = tunnel("admin", "GET", "/1.0/instances/lxcm-no-such-one").headers["x-request-id"]
    wait_row(rid)
    out = cli("admin", "audit", "--json", "--limit", "5")
    rows = json.loads(out.stdout)
    L.eq(len(rows), 5, "lxcm audit --limit 5 --json")
    L.eq(rows[0]["request_id"], rid, "newest first in the CLI")
    # More than a server page: the CLI follows the cursor.
    total = all_rows()
    rows = json.loads(cli("admin", "audit", "--json", "--limit", "1200").stdout)
    L.eq(len(rows), len({x["request_id"] for x in rows}), "the CLI gave a row twice")
    L.eq(len(rows), min(1200, len(total)), "lxcm audit --limit 1200")
    rows = json.loads(cli("admin", "audit", "--json", "--cluster", "lxd1", "--status", "404",
                          "--user", "admin-token:admin", "--since", "1h").stdout)
    L.check(rows and all(x["status"] == 404 and x["cluster"] == "lxd1" and
                         x["actor"] == ACTOR["admin"] for x in rows), "CLI filters: %r" % rows)
    L.eq(rows[0]["request_id"], rid, "the 404 through the CLI filters")
    rows = json.loads(cli("admin", "audit", "--json", "--until", "2000-01-01T00:00:00Z").stdout)
    L.eq(rows, [], "--until in 2000")
    table = cli("admin", "audit", "--cluster", "lxd1", "--limit", "3").stdout.splitlines()
    L.eq(len(table), 4, "a header and 3 rows: %r" % (table,))
    for h in ("TIME", "ACTOR", "CLUSTER", "METHOD", "PATH", "STATUS"):
        L.check(h in table[0], "column %s in %r" % (h, table[0]))
    L.check("api-token:" in table[1] or "admin-token:" in table[1], "actor name: %r" % table[1])
    # A viewer through the CLI: its own rows only.
    rows = json.loads(cli("viewer", "audit", "--json", "--limit", "1000").stdout)
    L.check(rows and all(x["actor"] == ACTOR["viewer"] for x in rows), "viewer via the CLI")
    # Usage errors, and the server's 400 passed on.
    for bad in (["--limit", "0"], ["--since", "soon"], ["--status", "6xx"]):
        cp = cli("admin", "audit", *bad, check_rc=None)
        L.check(cp.returncode in (1, 2) and cp.stderr, "lxcm audit %r: %r" % (bad, cp))


@t.test
def test_log_lines():
    r = tunnel("operator", "GET", "/1.0/instances?log-line")
    rid = r.headers["x-request-id"]
    row = wait_row(rid)

    def server_line():
        return [o for o in json_lines(S.log_path) if o.get("request_id") == rid]
    lines = L.wait_for(server_line, timeout=10, what="the server's log line of " + rid)
    L.eq(len(lines), 1, "one server line per request: %r" % (lines,))
    o = lines[0]
    for k in ("actor", "actor_name", "client", "cluster", "method", "status",
              "bytes_in", "bytes_out", "duration_ms"):
        L.eq(o.get(k), row[k], "server log line field %s" % k)
    # The query may hold secrets (LXD's operation secrets): logs have the path only.
    L.eq(o["path"], "/1.0/instances", "the path of the log line")
    L.eq(row["path"], "/1.0/instances?log-line", "the path of the row")
    L.check("log-line" not in json.dumps(o), "the query is in the log line")
    L.eq(o["level"], "info", "level")
    L.check(isinstance(o["status"], int), "numbers are JSON numbers")

    def agent_line():
        return [a for a in json_lines(AGENT_LOG) if a.get("request_id") == rid]
    lines = L.wait_for(agent_line, timeout=10, what="the agent's log line of " + rid)
    L.eq(len(lines), 1, "one agent line per request: %r" % (lines,))
    a = lines[0]
    L.eq((a["method"], a["path"], a["status"]), ("GET", "/1.0/instances", 200),
         "the agent's line")
    L.check("log-line" not in json.dumps(a), "the query is in the agent's line")
    L.eq(a["bytes_out"], row["bytes_out"], "bytes the agent sent = bytes in the row")
    # Every request of the tests has its line, on both sides, with its row's id.
    ids = {x["request_id"] for x in entries(actor=ACTOR["operator"], limit=1000)}
    logged = {x.get("request_id") for x in json_lines(S.log_path)}
    L.check(ids <= logged, "rows without a server log line: %d" % len(ids - logged))
    agent_ids = {x.get("request_id") for x in json_lines(AGENT_LOG)}
    L.check(ids <= agent_ids, "requests the agent did not log: %d" % len(ids - agent_ids))


@t.test
def test_retention():
    before = entries(limit=1000)
    L.check(len(before) > 10, "rows to prune")
    S.extra += ["--audit-retention", "2s"]
    S.restart()
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"],
               timeout=60, interval=0.2, what="the tunnel of lxd1 after the restart")
    L.wait_for(lambda: len(entries(limit=1000)) == 0, timeout=20, interval=0.2,
               what="the old rows to be pruned")
    # New rows are kept (younger than 2 s) ...
    rid = tunnel("admin", "GET", "/1.0").headers["x-request-id"]
    e = wait_row(rid)
    L.eq(e["status"], 200, "the new row")
    # ... until they are older than the retention.
    L.wait_for(lambda: rid not in {x["request_id"] for x in entries(limit=1000)}, timeout=20,
               interval=0.2, what="the new row to be pruned in turn")
    pruned = [o for o in json_lines(S.log_path) if "pruned" in o["msg"]]
    L.check(pruned, "a log line of the prune")


if __name__ == "__main__":
    t.main()
