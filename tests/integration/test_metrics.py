#!/usr/bin/env python3
"""The manager's own metrics (issue 14, "Metrics of the manager").

lxcm-server with --metrics-addr on a free loopback port; the real LXD of
scripts/lxd-test-env.sh joined by lxcm-agent as cluster "lxd1".

- GET /metrics is clean for `promtool check metrics` (any complaint fails);
  OpenMetrics when the Accept header asks; /healthz and /readyz answer.
- GET /1.0/metrics on the management listener: operator and admin yes,
  viewer 403, no token 401/403.
- Counters move as a scripted sequence says: a join (and a refused one and
  a rate-limited one), N proxied requests through the real tunnel to the
  real LXD, a refused (403) request, a tunnel drop.
- A real Prometheus started here scrapes --metrics-addr, and a query on its
  HTTP API returns the manager's own series.

Needs root and Debian's lxd and prometheus. LXCM_SKIP_LXD=1 skips this file.
"""

import os
import signal
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import promtest as P  # noqa: E402

t = L.Tests("test_metrics")

LXD_SOCKET = None
S = None
METRICS_PORT = None
AGENT = {}
TOK = {}
N_PROXIED = 7


def metrics_url(path="/metrics"):
    return "http://127.0.0.1:%d%s" % (METRICS_PORT, path)


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def scrape():
    status, headers, body = http_get(metrics_url())
    L.eq(status, 200, "GET /metrics")
    return P.parse_samples(body)


def start_agent():
    AGENT["proc"] = L.spawn_agent("run", "--data-dir", AGENT["dir"], log_path=AGENT["log"])
    L.wait_for(lambda: S.mgmt("GET", "/1.0/remote-cluster/lxd1").metadata["tunnel_registered"],
               timeout=30, interval=0.1, what="the tunnel of lxd1 to come up")


@t.setup
def setup():
    global LXD_SOCKET, S, METRICS_PORT
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    P.prometheus_binary()
    LXD_SOCKET = L.lxd_start()
    L.lxd_get(LXD_SOCKET, "/1.0")
    METRICS_PORT = L.free_port()
    S = L.Server("--metrics-addr", "127.0.0.1:%d" % METRICS_PORT, "--heartbeat-interval", "1",
                 "--join-burst", "4", "--join-rate", "0.001").start()
    for role in ("viewer", "operator"):
        r = S.mgmt("POST", "/1.0/auth/tokens", {"name": "m-" + role, "role": role})
        L.eq(r.status, 200, "create the %s token" % role)
        TOK[role] = r.metadata["token"]


@t.test
def promtool_clean_and_formats():
    status, headers, body = http_get(metrics_url())
    L.eq(status, 200, "GET /metrics")
    L.check(headers["Content-Type"].startswith("text/plain; version=0.0.4"),
            "content type %r" % headers["Content-Type"])
    P.promtool_check(body)
    for name in ("lxcm_build_info", "lxcm_http_requests_total", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "lxcm_tunnels_up", "lxcm_audit_rows_pending",
                 "lxcm_tls_handshakes_total", "lxcm_store_operation_duration_seconds"):
        L.check("# TYPE %s " % name in body, "%s is exposed" % name)
    status, headers, om = http_get(metrics_url(), {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    L.eq(status, 200, "GET /metrics (OpenMetrics)")
    L.check(headers["Content-Type"].startswith("application/openmetrics-text"),
            "OpenMetrics content type %r" % headers["Content-Type"])
    L.check(om.endswith("# EOF\n"), "OpenMetrics ends with # EOF")
    L.check("# TYPE lxcm_http_requests counter" in om, "OpenMetrics family name of a counter")
    L.eq(http_get(metrics_url("/healthz"))[0], 200, "GET /healthz")
    status, _, body = http_get(metrics_url("/readyz"))
    L.eq((status, body), (200, "ok\n"), "GET /readyz")
    L.eq(http_get(metrics_url("/nothing"))[0], 404, "unknown path on the metrics listener")


@t.test
def management_metrics_by_role():
    r = S.mgmt("GET", "/1.0/metrics")
    L.eq(r.status, 200, "admin GET /1.0/metrics")
    L.check(b"lxcm_build_info{" in r.raw, "the metrics come back on /1.0/metrics")
    L.eq(S.mgmt("GET", "/1.0/metrics", token=TOK["operator"]).status, 200, "operator")
    L.eq(S.mgmt("GET", "/1.0/metrics", token=TOK["viewer"]).status, 403, "viewer")
    L.check(S.mgmt("GET", "/1.0/metrics", token=None).status in (401, 403), "no token")


@t.test
def counters_follow_a_scripted_sequence():
    before = scrape()
    # A join that works (the agent), one with a wrong token, then the limit.
    d = os.path.join(L.tmpdir("agent"), "lxd1")
    L.agent("join", S.create_token("lxd1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    AGENT.update(dir=d, log=d + ".log")
    start_agent()
    cert = L.Cert("other")
    tok = S.create_token("other")
    bad = L.decode_join_token(tok)
    bad["secret"] = "0" * len(bad["secret"])
    answers = [S.join("other", L.encode_join_token(bad), cert).status for _ in range(6)]
    refused, limited = answers.count(403), answers.count(429)
    L.eq(refused + limited, 6, "joins with a wrong secret: 403 or 429 (%r)" % answers)
    L.check(refused >= 1 and limited >= 1, "some refused, then rate limited: %r" % answers)
    # N proxied requests through the real tunnel to the real LXD.
    for _ in range(N_PROXIED):
        r = S.mgmt("GET", "/1.0/remote-cluster/lxd1/tunnel/1.0", timeout=60)
        L.eq(r.status, 200, "proxied GET /1.0")
    # A refused request: a viewer may not POST through a tunnel.
    r = S.mgmt("POST", "/1.0/remote-cluster/lxd1/tunnel/1.0/instances", {"name": "x"},
               token=TOK["viewer"])
    L.eq(r.status, 403, "viewer POST through the tunnel")
    L.wait_for(lambda: P.value(scrape(), "lxcm_heartbeats_total", result="ok") >= 1,
               timeout=30, what="a heartbeat to be counted")
    after = scrape()

    def delta(name, **labels):
        return P.value(after, name, **labels) - P.value(before, name, **labels)

    L.eq(delta("lxcm_joins_total", result="ok"), 1, "joins ok")
    L.eq(delta("lxcm_joins_total", result="bad_token"), refused, "joins with a wrong token")
    L.eq(delta("lxcm_joins_total", result="rate_limited"), limited, "rate-limited joins")
    L.eq(delta("lxcm_rate_limited_total", limit="join"), limited, "rate-limit refusals")
    L.eq(delta("lxcm_proxied_requests_total", protocol="v2", code="2xx"), N_PROXIED,
         "proxied requests")
    L.check(delta("lxcm_proxied_response_bytes_total", protocol="v2") > 0, "bytes out moved")
    L.eq(delta("lxcm_proxied_request_duration_seconds_count", protocol="v2"), N_PROXIED,
         "proxied request durations observed")
    tunnel_route = "/1.0/remote-cluster/{name}/tunnel/{*}"
    L.eq(delta("lxcm_http_requests_total", listener="management", route=tunnel_route,
               code="2xx"), N_PROXIED, "management requests on the tunnel route, 2xx")
    L.eq(delta("lxcm_http_requests_total", listener="management", route=tunnel_route,
               code="4xx"), 1, "the refused request")
    L.eq(delta("lxcm_tunnel_connects_total", protocol="v2"), 1, "tunnel connects")
    L.eq(P.value(after, "lxcm_tunnels_up", protocol="v2"), 1, "tunnels up")
    L.check(delta("lxcm_tls_handshakes_total", result="ok") >= 1, "TLS handshakes counted")
    L.check(P.sum_of(after, "lxcm_store_operation_duration_seconds_count",
                     operation="store_cluster_join") >= 2, "store_cluster_join timed")
    L.check(P.sum_of(after, "lxcm_heartbeat_ingest_duration_seconds_count") >= 1,
            "heartbeat ingest latency observed")
    L.wait_for(lambda: P.value(scrape(), "lxcm_audit_rows_written_total") >= N_PROXIED + 1,
               timeout=10, what="the audit rows to be counted as written")
    # A tunnel drop: the agent is killed; its tunnel goes down.
    AGENT["proc"].send_signal(signal.SIGKILL)
    AGENT["proc"].wait(timeout=10)
    L.wait_for(lambda: P.value(scrape(), "lxcm_tunnels_up", protocol="v2") == 0, timeout=60,
               what="the tunnel to be counted down")
    final = scrape()
    L.eq(P.sum_of(final, "lxcm_tunnel_disconnects_total", protocol="v2") -
         P.sum_of(before, "lxcm_tunnel_disconnects_total", protocol="v2"), 1,
         "tunnel disconnects")
    L.eq(P.value(final, "lxcm_tunnel_streams_open"), 0, "no stream left open")
    P.promtool_check(http_get(metrics_url())[2])
    start_agent()


@t.test
def per_cluster_label_only_when_asked():
    body = http_get(metrics_url())[2]
    L.check('cluster="' not in body, "no series names a cluster without --metrics-per-cluster")
    port = L.free_port()
    s2 = L.Server("--metrics-addr", "127.0.0.1:%d" % port, "--metrics-per-cluster").start()
    d = os.path.join(L.tmpdir("agent"), "pc1")
    L.agent("join", s2.create_token("pc1"), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    proc = L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    try:
        L.wait_for(lambda: s2.mgmt("GET", "/1.0/remote-cluster/pc1").metadata[
            "tunnel_registered"], timeout=30, interval=0.1, what="the tunnel of pc1")
        L.eq(s2.mgmt("GET", "/1.0/remote-cluster/pc1/tunnel/1.0", timeout=60).status, 200,
             "proxied GET /1.0 to pc1")
        text = http_get("http://127.0.0.1:%d/metrics" % port)[2]
        P.promtool_check(text)
        L.eq(P.value(P.parse_samples(text), "lxcm_cluster_proxied_requests_total",
                     cluster="pc1", code="2xx"), 1, "per-cluster count")
    finally:
        L._stop_proc(proc)
        s2.stop()


@t.test
def real_prometheus_scrapes():
    prom = P.Prometheus(scrape_target="127.0.0.1:%d" % METRICS_PORT).start()
    try:
        res = prom.wait_query('lxcm_build_info{job="lxcm"}')
        L.eq(res[0]["value"][1], "1", "lxcm_build_info")
        L.check(res[0]["metric"].get("version"), "build info has a version")
        res = prom.wait_query('lxcm_joins_total{result="ok"}')
        L.check(float(res[0]["value"][1]) >= 1, "joins counted in prometheus: %r" % res)
        prom.wait_query('lxcm_tunnels_up{protocol="v2"} == 1')
        prom.wait_query('process_resident_memory_bytes{job="lxcm"} > 0')
        health = prom.targets_health()
        L.check(all(h == "up" for _, h, _ in health), "scrape targets healthy: %r" % health)
    finally:
        prom.stop()


if __name__ == "__main__":
    t.main()
