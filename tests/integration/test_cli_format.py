"""`--format table|compact|csv|json|yaml` and `-c COLUMNS` on every list
command of lxcm (issue 15, CLI conventions), against a real server holding
real data: two enrolled clusters (one with a heartbeat), pending join tokens
and API tokens of every role. Each format is parsed back and compared with
what the management API answers; `-c` ordering, long names, the unknown
column error, `--json` as the alias of `--format json`, YAML of a single
reply, and the default (table on a terminal, compact through a pipe)."""
import csv
import io
import json
import os
import pty
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
from microcloud_client import MicroCloud  # noqa: E402

t = L.Tests("test_cli_format")
S = {}

# Each list command, the API path it reads, and its default columns: the
# JSON field each shows, None where the cell is computed (sizes, ages).
LISTS = {
    ("cluster", "list"): ("/1.0/remote-cluster",
                          ["name", "status", None, None, None, None, None, None, None]),
    ("token", "list"): ("/1.0/remote-cluster-join-token",
                        ["cluster_name", "description", None, None]),
    ("api-token", "list"): ("/1.0/auth/tokens", ["name", "role", None, "audit_actor"]),
}
HEADERS = {
    ("cluster", "list"): ["NAME", "STATUS", "MEMBERS", "INSTANCES", "CPU", "MEMORY", "STORAGE",
                          "TUNNEL", "LAST HEARTBEAT"],
    ("token", "list"): ["NAME", "DESCRIPTION", "EXPIRES", "CREATED"],
    ("api-token", "list"): ["NAME", "ROLE", "CREATED", "AUDIT ACTOR"],
}
# A description that needs CSV quoting and YAML quoting.
TRICKY = 'east, "main" site: été #1'


@t.setup
def setup():
    srv = L.Server().start()
    S["srv"] = srv
    S["cli"] = L.Cli(srv)
    # Two enrolled clusters; c1 reports its status as MicroCloud would.
    mc = MicroCloud(srv.create_token("c1"))
    L.eq(mc.join()[0], 200, "c1 joins")
    L.eq(mc.post_status(MicroCloud.sample_status())[0], 200, "c1 heartbeat")
    srv.enroll("c2")
    S["cli"]("cluster", "set", "c1", "--description", TRICKY)
    # Pending join tokens, one with the tricky description.
    S["cli"]("token", "create", "p1", "--description", TRICKY)
    S["cli"]("token", "create", "p2", "--expiry", "2h")
    # API tokens of each role (a server with roles is this one).
    S["cli"]("api-token", "create", "ops", "--role", "operator")
    S["cli"]("api-token", "create", "dash", "--role", "viewer")


def api(path):
    r = S["srv"].mgmt("GET", path)
    L.eq(r.status, 200, "GET " + path)
    return r.metadata


def out(*args, check_rc=0):
    return S["cli"](*args, check_rc=check_rc).stdout


def expected_cells(obj, fields):
    """The cells of the columns that are a JSON field as they are ("" when unset)."""
    return [None if f is None else (obj.get(f) or "") for f in fields]


def check_rows(rows, cmd, what):
    """rows: the cells of each object, in the API's order; checks the plain fields."""
    path, fields = LISTS[cmd]
    objs = api(path)
    L.eq(len(rows), len(objs), "%s: rows of %s" % (what, " ".join(cmd)))
    for row, obj in zip(rows, objs):
        L.eq(len(row), len(fields), "%s: cells of a row %r" % (what, row))
        for cell, want in zip(row, expected_cells(obj, fields)):
            if want is None:
                continue
            if want == "" and what != "csv":
                want = "-"   # tables show "-" for no value, CSV an empty field
            L.eq(cell, want, "%s: %s cell" % (what, " ".join(cmd)))
    return objs


@t.test
def test_json_and_alias():
    for cmd, (path, _) in LISTS.items():
        want = api(path)
        L.check(len(want) >= 2, "%s: too little data to compare: %r" % (path, want))
        got = json.loads(out(*cmd, "--format", "json"))
        L.eq(got, want, "--format json of " + " ".join(cmd))
        L.eq(json.loads(out("--json", *cmd)), want, "--json before " + " ".join(cmd))
        L.eq(json.loads(out(*cmd, "--json")), want, "--json after " + " ".join(cmd))
        # -c does not change the objects (as lxc list --format json).
        L.eq(json.loads(out(*cmd, "-c", "n", "--format", "json")), want, "json with -c")


@t.test
def test_yaml():
    for cmd, (path, _) in LISTS.items():
        text = out(*cmd, "--format", "yaml")
        L.eq(yaml.safe_load(text), api(path), "--format yaml of %s:\n%s" % (" ".join(cmd), text))
    # Nested objects, a multi-line PEM and numbers survive, and the text
    # is block style, as lxc prints YAML.
    text = out("cluster", "list", "--format", "yaml")
    L.check(text.startswith("- name: c1\n") or text.startswith("- name: c2\n"),
            "block style: %r" % text[:80])
    L.check("storage_pool_usages:\n  - name: local\n" in text, "nested list: %r" % text)
    # A single reply in YAML too.
    text = out("cluster", "show", "c1", "--format", "yaml")
    L.eq(yaml.safe_load(text), api("/1.0/remote-cluster/c1"), "cluster show --format yaml")
    # The PEM certificate is a literal block, as lxc prints certificates.
    L.check("\ncluster_certificate: |\n  -----BEGIN CERTIFICATE-----\n" in text,
            "certificate as a literal block:\n" + text)


@t.test
def test_csv():
    for cmd in LISTS:
        text = out(*cmd, "--format", "csv")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        L.check(not rows or rows[0][0] != "NAME", "csv has no header, as lxc's: %r" % text)
        check_rows(rows, cmd, "csv")
    # The description with a comma, quotes and UTF-8 comes back whole.
    text = out("cluster", "list", "-c", "nd", "--format", "csv")
    L.check('"east, ""main"" site: été #1"' in text, "RFC 4180 quoting: %r" % text)
    rows = dict(csv.reader(io.StringIO(text, newline="")))
    L.eq(rows["c1"], TRICKY, "quoted field read back")
    L.eq(rows["c2"], "", "no description is an empty field")


def untimed(text):
    """text with relative times made alike, for two runs a second apart."""
    text = re.sub(r"\b(\d+[smhdw] ago|in \d+[smhdw]|just now)", "T", text)
    return re.sub(r" {2,}", "  ", text)   # and the widths they gave their column


def split_compact(text):
    lines = text.rstrip("\n").split("\n")
    return [re.split(r"\s{2,}", line) for line in lines]


def check_tabular(fmt, split):
    """Each list in fmt, split into rows: the header, then a row per object.
    Returns {command: text}."""
    texts = {}
    for cmd in LISTS:
        texts[cmd] = out(*cmd, "--format", fmt)
        rows = split(texts[cmd])
        L.eq(rows[0], HEADERS[cmd], "%s header of %s" % (fmt, " ".join(cmd)))
        check_rows(rows[1:], cmd, fmt)
    return texts


@t.test
def test_compact():
    for cmd, text in check_tabular("compact", split_compact).items():
        L.check(all(line == line.rstrip() for line in text.split("\n")), "trailing blanks")
        # Through a pipe the default is compact: the same text.
        L.eq(untimed(out(*cmd)), untimed(text), "default through a pipe of " + " ".join(cmd))


def split_table(text):
    """The cells of a bordered table; checks the borders on the way."""
    lines = text.rstrip("\n").split("\n")
    border = lines[0]
    L.check(re.fullmatch(r"(\+-+)+\+", border), "top border: %r" % border)
    rows = []
    for i, line in enumerate(lines):
        if i % 2 == 0:
            L.eq(line, border, "border line %d" % i)
            continue
        L.check(line.startswith("| ") and line.endswith(" |"), "row %r" % line)
        L.eq(len(line), len(border), "row width of %r" % line)
        rows.append([c.strip() for c in line[1:-1].split(" | ")])
    return rows


@t.test
def test_table():
    check_tabular("table", split_table)
    # Headers centred, cells left-aligned, as lxc's tables.
    text = out("token", "list", "-c", "nd", "--format", "table")
    L.check(re.search(r"^\|\s+NAME\s+\|\s+DESCRIPTION\s+\|$", text, re.M), text)
    L.check(re.search(r"^\| p1 +\| east, \"main\" site: été #1 \|$", text, re.M), text)


def run_on_terminal(*args):
    """Runs lxcm with its stdout on a pseudo-terminal; returns what it wrote."""
    cli = S["cli"]
    argv = [L.binary("lxcm"), "--server", cli.server.url, "--token-file",
            cli.server.token_file] + list(args)
    master, slave = pty.openpty()
    env = dict(os.environ, XDG_CONFIG_HOME=cli.config_home, HOME=cli.config_home,
               LXCM_SERVER="", LXCM_TOKEN="")
    p = subprocess.Popen(argv, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:   # EIO: the child closed the terminal
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    L.eq(p.wait(timeout=60), 0, "lxcm on a terminal: %s" % p.stderr.read())
    p.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


@t.test
def test_default_on_terminal_is_table():
    # Columns without ages, which could move on between the two runs.
    got = run_on_terminal("api-token", "list", "-c", "nra")
    L.eq(got, out("api-token", "list", "-c", "nra", "--format", "table"), "default on a terminal")
    L.check(got.startswith("+-"), "a bordered table: %r" % got)
    # --format wins over the terminal.
    L.eq(run_on_terminal("api-token", "list", "-c", "nra", "--format", "compact"),
         out("api-token", "list", "-c", "nra"), "compact on a terminal")


@t.test
def test_columns():
    clusters = api("/1.0/remote-cluster")
    by_name = {c["name"]: c for c in clusters}
    # Letters, in the order given.
    rows = list(csv.reader(io.StringIO(out("cluster", "list", "-c", "tsn", "--format", "csv"))))
    L.eq([r[2] for r in rows], [c["name"] for c in clusters], "-c tsn: names last")
    for tunnel, status, name in rows:
        L.eq(status, by_name[name]["status"], "status of " + name)
        L.eq(tunnel, "yes" if by_name[name]["tunnel_registered"] else "no", "tunnel of " + name)
    # Long names and letters mixed, separated by commas; a long name alone.
    text = out("cluster", "list", "-c", "description,n,members", "--format", "compact")
    L.eq(split_compact(text)[0], ["DESCRIPTION", "NAME", "MEMBERS"], "-c by names")
    L.eq(split_compact(out("cluster", "list", "-c", "status"))[0], ["STATUS"], "-c status")
    L.eq(split_compact(out("cluster", "list", "--columns", "l"))[0], ["LAST HEARTBEAT"],
         "--columns")
    # Every documented column of cluster list works.
    text = out("cluster", "list", "-c", "ndsmicMDtlju")
    L.eq(split_compact(text)[0], ["NAME", "DESCRIPTION", "STATUS", "MEMBERS", "INSTANCES", "CPU",
                                  "MEMORY", "STORAGE", "TUNNEL", "LAST HEARTBEAT", "JOINED",
                                  "UI URL"], "all columns")
    c1 = [r for r in split_compact(text)[1:] if r[0] == "c1"][0]
    L.eq((c1[3], c1[4], c1[11]), ("2", "4", "https://10.0.0.1:8443"), "c1's reported values")
    # The other lists have -c too.
    rows = list(csv.reader(io.StringIO(out("api-token", "list", "-c", "rn", "--format", "csv"))))
    L.eq(sorted(rows), sorted([x.get("role", ""), x["name"]] for x in api("/1.0/auth/tokens")),
         "api-token list -c rn")
    rows = list(csv.reader(io.StringIO(out("token", "list", "-c", "dn", "--format", "csv"))))
    L.eq(sorted(rows), sorted([x.get("description", ""), x["cluster_name"]]
                              for x in api("/1.0/remote-cluster-join-token")),
         "token list -c dn")


@t.test
def test_column_and_format_errors():
    cp = S["cli"]("cluster", "list", "-c", "nxs", check_rc=2)
    L.eq(cp.stdout, "", "nothing printed for an unknown column")
    L.check("unknown column 'x' in 'nxs'" in cp.stderr and "n (name)" in cp.stderr,
            "says which column and lists them: %r" % cp.stderr)
    cp = S["cli"]("token", "list", "-c", "name,bogus", check_rc=2)
    L.check("unknown column 'b' in 'bogus'" in cp.stderr, "unknown long name: %r" % cp.stderr)
    cp = S["cli"]("token", "list", "-c", "n,x", check_rc=2)
    L.check("unknown column 'x';" in cp.stderr, "unknown letter: %r" % cp.stderr)
    cp = S["cli"]("api-token", "list", "-c", "", check_rc=2)
    L.check("no columns" in cp.stderr, "empty -c: %r" % cp.stderr)
    cp = S["cli"]("cluster", "list", "--format", "xml", check_rc=2)
    L.check("--format must be table, compact, csv, json or yaml, not 'xml'" in cp.stderr,
            "bad format: %r" % cp.stderr)
    cp = S["cli"]("--format", "xml", "cluster", "list", check_rc=2)
    L.check("not 'xml'" in cp.stderr, "bad format before the command: %r" % cp.stderr)
    # -c belongs to list commands only.
    S["cli"]("cluster", "show", "c1", "-c", "n", check_rc=2)


@t.test
def test_help_documents_columns():
    for cmd in LISTS:
        text = out(*cmd, "--help")
        L.check("--format FORMAT" in text and "-c, --columns COLUMNS" in text,
                "options in the help of %s:\n%s" % (" ".join(cmd), text))
        L.check("\nColumns (-c; the default is " in text, "columns listed:\n" + text)
        for h in HEADERS[cmd]:
            L.check(h + ":" in text, "%s documented in %s --help" % (h, " ".join(cmd)))


if __name__ == "__main__":
    t.main()
