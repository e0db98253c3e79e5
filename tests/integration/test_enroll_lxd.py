#!/usr/bin/env python3
"""The whole enrollment and heartbeat flow against a real LXD.

lxcm-server on free loopback ports; `lxcm token create` through the CLI;
`lxcm-agent join` and `lxcm-agent run` against the LXD that
scripts/lxd-test-env.sh starts (or reuses); then what the CLI and the REST
API show is compared with what LXD itself reports. Also: cluster set,
cluster remove (the agent's heartbeat is then refused with 403), token
list/revoke through the CLI, and a server restart that keeps the cluster.

Needs root and Debian's lxd. LXCM_SKIP_LXD=1 skips this file (exit 0);
without it, an LXD that cannot be started is a failure.
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_enroll_lxd")

LXD_SOCKET = None
S = None            # the server
CLI = None          # lxcm against S
AGENT1 = None       # data dir of cluster c1's agent
TOKENS = {}


@t.setup
def setup():
    global LXD_SOCKET, S, CLI
    for name in ("lxcm-server", "lxcm", "lxcm-agent"):
        L.binary(name)
    LXD_SOCKET = L.lxd_start()
    L.lxd_get(LXD_SOCKET, "/1.0")
    S = L.Server("--heartbeat-interval", "5").start()
    CLI = L.Cli(S)


def upstream():
    return "unix://" + LXD_SOCKET


def token_from_output(out):
    m = re.search(r"lxcm-agent join (\S+)", out)
    L.check(m is not None, "no `lxcm-agent join TOKEN` in:\n" + out)
    return m.group(1)


def lxd_instance_statuses():
    insts = L.lxd_get(LXD_SOCKET, "/1.0/instances?recursion=1&all-projects=true")
    return dict(collections.Counter(i["status"] for i in insts))


def statuses(lst):
    return {x["status"]: x["count"] for x in lst}


def rest_cluster(name):
    r = S.mgmt("GET", "/1.0/remote-cluster/" + name)
    L.eq(r.status, 200, "GET /1.0/remote-cluster/" + name)
    return r.metadata


def agent_once(data_dir, check_rc=0):
    return L.agent("run", "--data-dir", data_dir, "--once", check_rc=check_rc, timeout=90)


def show_json(name):
    c = CLI.json("cluster", "show", name)
    if isinstance(c, dict) and "metadata" in c and "name" not in c:
        c = c["metadata"]   # tolerate the whole envelope
    L.check(isinstance(c, dict), "cluster show --json: %r" % (c,))
    return c


def list_json():
    lst = CLI.json("cluster", "list")
    if isinstance(lst, dict) and "metadata" in lst:
        lst = lst["metadata"]
    L.check(isinstance(lst, list), "cluster list --json: %r" % (lst,))
    return {c["name"]: c for c in lst}


def token_list_json():
    lst = CLI.json("token", "list")
    if isinstance(lst, dict) and "metadata" in lst:
        lst = lst["metadata"]
    L.check(isinstance(lst, list), "token list --json: %r" % (lst,))
    return [x["cluster_name"] for x in lst]


@t.test
def test_token_create_cli():
    cp = CLI("token", "create", "c1", "--description", "first cluster")
    out = cp.stdout
    L.check("lxcm-agent join" in out, "no lxcm-agent join command in:\n" + out)
    L.check("microcloud cluster-manager join" in out,
            "no microcloud cluster-manager join command in:\n" + out)
    tok = token_from_output(out)
    m = re.search(r"microcloud cluster-manager join (\S+)", out)
    L.eq(m.group(1), tok, "the same token in both join commands")
    d = L.decode_join_token(tok)
    L.eq(d["server_name"], "c1", "token server_name")
    L.eq(d["fingerprint"], L.server_fingerprint(S.conn_port), "token fingerprint")
    TOKENS["c1"] = tok
    L.check("c1" in token_list_json(), "c1 not in token list")
    cp = CLI("token", "list")
    L.check(re.search(r"^c1\b", cp.stdout, re.M), "c1 not in the token table:\n" + cp.stdout)
    # The server's certificate is now pinned in our config dir.
    ks = os.path.join(CLI.config_home, "lxcm", "known_servers")
    L.check(os.path.exists(ks), "no %s after the first use" % ks)


@t.test
def test_agent_join():
    global AGENT1
    AGENT1 = os.path.join(L.tmpdir("agent"), "c1")
    cp = L.agent("join", TOKENS["c1"], "--data-dir", AGENT1, "--upstream", upstream(),
                 check_rc=0, timeout=90)
    L.check(os.path.isdir(AGENT1), "no agent data dir")
    for name in os.listdir(AGENT1):
        p = os.path.join(AGENT1, name)
        if os.path.isfile(p) and (name.endswith(".key") or name.endswith(".json")):
            L.eq(os.stat(p).st_mode & 0o077, 0, "group/other permissions of " + p)
    L.check("c1" in list_json(), "c1 not listed after join; agent said: %s %s" % (
        cp.stdout, cp.stderr))
    L.check("c1" not in token_list_json(), "a used token is still listed")
    # The token is single use.
    other = os.path.join(L.tmpdir("agent"), "again")
    cp = L.agent("join", TOKENS["c1"], "--data-dir", other, "--upstream", upstream(),
                 timeout=90)
    L.check(cp.returncode != 0, "a second join with the same token succeeded")
    # A second token for an enrolled name is refused by the CLI.
    cp = CLI("token", "create", "c1", check_rc=None)
    L.check(cp.returncode != 0, "token create for an enrolled cluster succeeded")


def check_against_lxd(c, since):
    """c (a cluster object) agrees with what LXD reports now."""
    L.check(c["member_count"] >= 1, "member_count %r" % c["member_count"])
    L.eq(sum(statuses(c["member_statuses"]).values()), c["member_count"],
         "member_count is the sum of member_statuses")
    L.eq(statuses(c["member_statuses"]).get("Online"), 1, "one Online member (standalone LXD)")
    L.check(isinstance(c["memory_total_amount"], int) and c["memory_total_amount"] > 0,
            "memory_total_amount %r" % c["memory_total_amount"])
    L.check(0 <= c["memory_usage"] <= c["memory_total_amount"],
            "memory_usage %r of %r" % (c["memory_usage"], c["memory_total_amount"]))
    res = L.lxd_get(LXD_SOCKET, "/1.0/resources")
    L.eq(c["cpu_total_count"], res["cpu"]["total"], "cpu_total_count vs LXD resources")
    L.eq(c["memory_total_amount"], res["memory"]["total"], "memory_total_amount vs LXD")
    for k in ("cpu_load_1", "cpu_load_5", "cpu_load_15"):
        L.check(isinstance(c[k], str) and re.fullmatch(r"\d+(\.\d+)?", c[k]),
                "%s %r" % (k, c[k]))
    pools = [p for p in c["storage_pool_usages"] if p["name"] == "default"]
    L.check(pools, "no storage pool 'default' in %r" % (c["storage_pool_usages"],))
    pool_res = L.lxd_get(LXD_SOCKET, "/1.0/storage-pools/default/resources")
    L.eq(pools[0]["total"], pool_res["space"]["total"], "pool default total vs LXD")
    L.check(0 <= pools[0]["usage"] <= pools[0]["total"], "pool usage %r" % (pools[0],))
    last = L.parse_rfc3339(c["last_status_update_at"])
    L.check(last >= int(since) - 1, "last_status_update_at %s is older than the heartbeat "
            "(sent after %s)" % (c["last_status_update_at"], L.rfc3339(since)))
    L.check(last <= time.time() + 5, "last_status_update_at %s is in the future" %
            c["last_status_update_at"])


@t.test
def test_heartbeat_once():
    # Instance states can change under us (another test sharing the LXD);
    # heartbeat again until one snapshot agrees with LXD before and after.
    def attempt():
        before = lxd_instance_statuses()
        since = time.time()
        agent_once(AGENT1)
        c = show_json("c1")
        after = lxd_instance_statuses()
        if before != after:
            return None
        L.eq(statuses(c["instance_statuses"]), before, "instance_statuses vs LXD")
        L.eq(c["instance_count"], sum(before.values()), "instance_count vs LXD")
        return (c, since)
    c, since = L.wait_for(attempt, timeout=60, interval=1, what="a heartbeat matching LXD")
    check_against_lxd(c, since)
    L.eq(c["status"], "ACTIVE", "status")
    # The REST API says the same as the CLI.
    r = rest_cluster("c1")
    for k in ("name", "member_count", "instance_count", "memory_total_amount",
              "cpu_total_count", "storage_pool_usages", "last_status_update_at",
              "cluster_certificate", "disk_threshold", "memory_threshold"):
        L.eq(r[k], c[k], "REST vs CLI " + k)


@t.test
def test_cluster_list_cli():
    cp = CLI("cluster", "list")
    lines = [ln for ln in cp.stdout.splitlines() if re.match(r"^c1\s", ln)]
    L.eq(len(lines), 1, "c1 rows in the cluster table:\n" + cp.stdout)
    L.check("ACTIVE" in lines[0], "c1 row has no ACTIVE: %r" % lines[0])
    c = list_json()["c1"]
    L.check(c["member_count"] >= 1, "member_count in list --json")
    L.eq(c["instance_count"], sum(lxd_instance_statuses().values()),
         "instance_count in list --json vs LXD")
    L.check(c["memory_total_amount"] > 0, "memory_total_amount in list --json")
    L.check(any(p["name"] == "default" for p in c["storage_pool_usages"]),
            "pool default in list --json")
    # Human show output names the cluster.
    cp = CLI("cluster", "show", "c1")
    L.check("c1" in cp.stdout, "cluster show without the name:\n" + cp.stdout)


def wait_heartbeats(name, n, timeout=45):
    """Waits until last_status_update_at of name has advanced n times."""
    seen = [rest_cluster(name)["last_status_update_at"]]

    def advanced():
        v = rest_cluster(name)["last_status_update_at"]
        if L.parse_rfc3339(v) > L.parse_rfc3339(seen[-1]):
            seen.append(v)
        return len(seen) > n
    L.wait_for(advanced, timeout=timeout, interval=0.5,
               what="%d more heartbeats of %s (seen %s)" % (n, name, seen))
    return seen


def stop_agent(p, what):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
        raise L.TestFailure("%s did not stop within 20 s of SIGTERM" % what)
    finally:
        L.forget(p)
    return rc


@t.test
def test_background_run():
    log_path = os.path.join(L.tmpdir("log"), "agent-run.log")
    p = L.spawn_agent("run", "--data-dir", AGENT1, "--interval", "2", log_path=log_path)
    try:
        wait_heartbeats("c1", 2)
        L.check(p.poll() is None, "the agent exited: %s" % open(log_path).read())
    finally:
        rc = stop_agent(p, "lxcm-agent run")
    L.eq(rc, 0, "exit status of lxcm-agent run after SIGTERM (log: %s)" %
         open(log_path).read()[-2000:])


@t.test
def test_cluster_set_cli():
    CLI("cluster", "set", "c1", "--description", "set by test", "--disk-threshold", "55",
        "--memory-threshold", "65")
    c = show_json("c1")
    L.eq((c["description"], c["disk_threshold"], c["memory_threshold"]),
         ("set by test", 55, 65), "after cluster set")
    for bad in (("--disk-threshold", "101"), ("--memory-threshold", "-1"),
                ("--disk-threshold", "abc")):
        cp = CLI("cluster", "set", "c1", *bad, check_rc=None)
        L.check(cp.returncode != 0, "cluster set %s succeeded" % " ".join(bad))
    c = rest_cluster("c1")
    L.eq((c["description"], c["disk_threshold"], c["memory_threshold"]),
         ("set by test", 55, 65), "after refused cluster set")
    cp = CLI("cluster", "set", "nosuch", "--disk-threshold", "50", check_rc=None)
    L.check(cp.returncode != 0, "cluster set of an unknown cluster succeeded")


@t.test
def test_cluster_remove_cli():
    tok = token_from_output(CLI("token", "create", "c2").stdout)
    d2 = os.path.join(L.tmpdir("agent"), "c2")
    L.agent("join", tok, "--data-dir", d2, "--upstream", upstream(), check_rc=0, timeout=90)
    agent_once(d2)
    L.check("c2" in list_json(), "c2 not listed")
    log_path = os.path.join(L.tmpdir("log"), "agent-c2.log")
    p = L.spawn_agent("run", "--data-dir", d2, "--interval", "2", log_path=log_path)
    try:
        wait_heartbeats("c2", 1)
        CLI("cluster", "remove", "c2")
        L.check("c2" not in list_json(), "c2 still listed after remove")
        L.eq(S.mgmt("GET", "/1.0/remote-cluster/c2").status, 404, "REST GET after remove")
        cp = CLI("cluster", "show", "c2", check_rc=None)
        L.check(cp.returncode != 0, "cluster show of a removed cluster succeeded")
        L.wait_for(lambda: "403" in open(log_path).read(), timeout=45,
                   what="the running agent's heartbeat to be refused with 403")
    finally:
        if p.poll() is None:
            stop_agent(p, "lxcm-agent run (removed cluster)")
        L.forget(p)
    cp = agent_once(d2, check_rc=None)
    L.check(cp.returncode != 0, "run --once of a removed cluster exited 0")
    L.check("403" in cp.stdout + cp.stderr, "run --once did not report the 403:\n%s%s" % (
        cp.stdout, cp.stderr))
    cp = CLI("cluster", "remove", "c2", check_rc=None)
    L.check(cp.returncode != 0, "removing an unknown cluster succeeded")
    # c1 is untouched.
    L.check("c1" in list_json(), "c1 disappeared")


@t.test
def test_token_list_revoke_cli():
    tok = token_from_output(CLI("token", "create", "c3", "--description", "to revoke").stdout)
    CLI("token", "create", "c4")
    names = token_list_json()
    L.check("c3" in names and "c4" in names, "token list %r" % (names,))
    cp = CLI("token", "list")
    L.check(re.search(r"^c3\b", cp.stdout, re.M) and re.search(r"^c4\b", cp.stdout, re.M),
            "token table:\n" + cp.stdout)
    CLI("token", "revoke", "c3")
    names = token_list_json()
    L.check("c3" not in names and "c4" in names, "token list after revoke %r" % (names,))
    d3 = os.path.join(L.tmpdir("agent"), "c3")
    cp = L.agent("join", tok, "--data-dir", d3, "--upstream", upstream(), timeout=90)
    L.check(cp.returncode != 0, "join with a revoked token succeeded")
    L.check("c3" not in list_json(), "c3 enrolled with a revoked token")
    cp = CLI("token", "revoke", "c3", check_rc=None)
    L.check(cp.returncode != 0, "revoking a revoked token succeeded")


@t.test
def test_rest_api_flow():
    # The same flow with the REST API instead of the CLI.
    tok = S.create_token("c5", description="via REST")
    d5 = os.path.join(L.tmpdir("agent"), "c5")
    L.agent("join", tok, "--data-dir", d5, "--upstream", upstream(), check_rc=0, timeout=90)
    names = [c["name"] for c in S.mgmt("GET", "/1.0/remote-cluster").metadata]
    L.check("c5" in names, "c5 not in the REST cluster list %r" % (names,))

    def attempt():
        before = lxd_instance_statuses()
        since = time.time()
        agent_once(d5)
        c = rest_cluster("c5")
        if lxd_instance_statuses() != before:
            return None
        L.eq(statuses(c["instance_statuses"]), before, "REST instance_statuses vs LXD")
        L.eq(c["instance_count"], sum(before.values()), "REST instance_count vs LXD")
        return (c, since)
    c, since = L.wait_for(attempt, timeout=60, interval=1, what="a heartbeat matching LXD")
    check_against_lxd(c, since)
    r = S.mgmt("PATCH", "/1.0/remote-cluster/c5", {"disk_threshold": 90})
    L.eq(r.status, 200, "REST PATCH")
    L.eq(show_json("c5")["disk_threshold"], 90, "CLI sees the REST PATCH")
    L.eq(S.mgmt("DELETE", "/1.0/remote-cluster/c5").status, 200, "REST DELETE")
    cp = agent_once(d5, check_rc=None)
    L.check(cp.returncode != 0, "run --once after REST DELETE exited 0")
    L.check("403" in cp.stdout + cp.stderr, "no 403 reported:\n%s%s" % (cp.stdout, cp.stderr))


@t.test
def test_agent_pins_token_fingerprint():
    # A token whose fingerprint is not the connector's: the agent must refuse
    # to talk to that server, so the (valid) secret never reaches it.
    d = L.decode_join_token(S.create_token("c6"))
    bad = dict(d, fingerprint="00" * 32)
    d6 = os.path.join(L.tmpdir("agent"), "c6")
    cp = L.agent("join", L.encode_join_token(bad), "--data-dir", d6, "--upstream", upstream(),
                 timeout=90)
    L.check(cp.returncode != 0, "join with a wrong fingerprint in the token succeeded")
    L.check("c6" not in list_json(), "c6 enrolled through an unpinned certificate")
    L.check("c6" in token_list_json(), "the token was used despite the wrong fingerprint")
    # The agent tries each address in turn: a dead one first is fine, and an
    # upper-case fingerprint matches too.
    dead = L.free_port()
    good = dict(d, addresses=["127.0.0.1:%d" % dead] + d["addresses"],
                fingerprint=d["fingerprint"].upper())
    d6b = os.path.join(L.tmpdir("agent"), "c6b")
    L.agent("join", L.encode_join_token(good), "--data-dir", d6b, "--upstream", upstream(),
            check_rc=0, timeout=90)
    L.check("c6" in list_json(), "c6 not enrolled through its second address")
    agent_once(d6b)
    CLI("cluster", "remove", "c6")


@t.test
def test_cli_pinning():
    # The CLI remembered S's certificate on first use; a different server
    # (new certificate) on the same port must be refused, unless its
    # fingerprint is given explicitly.
    port = S.mgmt_port
    S.stop()
    imp = L.Server()
    imp.mgmt_port, imp.conn_port = port, L.free_port()
    try:
        imp.start()
        fake = L.Cli(imp, config_home=CLI.config_home)
        cp = fake("token", "list", check_rc=None)
        L.check(cp.returncode != 0, "the CLI accepted a changed server certificate")
        fp = L.server_fingerprint(imp.mgmt_port)
        fake("--server-fingerprint", fp, "token", "list")
        cp = fake("--server-fingerprint", "00" * 32, "token", "list", check_rc=None)
        L.check(cp.returncode != 0, "the CLI accepted a wrong --server-fingerprint")
    finally:
        imp.stop()
        S.start()
    CLI("token", "list")


@t.test
def test_restart_keeps_cluster():
    before = rest_cluster("c1")
    L.eq(S.stop(), 0, "server exit status after SIGTERM")
    S.start()
    c = show_json("c1")     # the CLI's pinned certificate still matches
    for k in ("name", "description", "disk_threshold", "memory_threshold",
              "cluster_certificate", "joined_at", "member_count", "instance_count",
              "memory_total_amount", "last_status_update_at"):
        L.eq(c[k], before[k], "after restart: " + k)
    L.check("c4" in token_list_json(), "pending token c4 lost in the restart")
    lines = [ln for ln in CLI("cluster", "list").stdout.splitlines() if re.match(r"^c1\s", ln)]
    L.eq(len(lines), 1, "c1 in the cluster table after restart")
    since = time.time()
    agent_once(AGENT1)
    c = rest_cluster("c1")
    L.check(L.parse_rfc3339(c["last_status_update_at"]) >= int(since) - 1,
            "heartbeat after restart not recorded: %r" % c["last_status_update_at"])


if __name__ == "__main__":
    t.main()
