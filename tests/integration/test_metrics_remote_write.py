#!/usr/bin/env python3
"""Cluster metrics by Prometheus remote write (issue 14).

A real Prometheus (Debian's) started with --web.enable-remote-write-receiver;
lxcm-server with --metrics-remote-write-url pointing at it and heartbeats
every second; the real LXD of scripts/lxd-test-env.sh joined by lxcm-agent
as cluster "lxd1" (its heartbeats carry LXD's /1.0/metrics text).

- A PromQL query through Prometheus' HTTP API returns the LXD metric of the
  enrolled LXD with cluster="lxd1" and its member label.
- The receiver stopped and restarted: heartbeats keep flowing meanwhile
  (counted, acknowledged at once), the batches wait in the queue, and after
  the restart the samples of the outage arrive (nothing lost under the
  queue bound; no batch dropped).
- A second server with a queue of 2 batches and a dead receiver: heartbeats
  still flow, and the drop counter counts what went past the bound.
- Malformed exposition text in a heartbeat is counted and skipped; the
  heartbeat is still acknowledged.

Needs root and Debian's lxd and prometheus. LXCM_SKIP_LXD=1 skips this file.
"""

import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402
import promtest as P  # noqa: E402

t = L.Tests("test_metrics_remote_write")

LXD_SOCKET = None
PROM = None
S = None
METRICS_PORT = None
AGENT = {}
LXD_METRIC = None


def scrape(port=None):
    url = "http://127.0.0.1:%d/metrics" % (port or METRICS_PORT)
    with urllib.request.urlopen(url, timeout=15) as r:
        return P.parse_samples(r.read().decode())


def lxd_metric_name():
    """The name of one sample LXD itself exposes (with an instance running)."""
    r = L.lxd_request(LXD_SOCKET, "GET", "/1.0/metrics")
    L.eq(r.status, 200, "LXD GET /1.0/metrics")
    text = r.raw.decode() if isinstance(r.raw, bytes) else r.raw
    for line in text.splitlines():
        if line and not line.startswith("#"):
            return line.split("{")[0].split(" ")[0]
    raise L.TestFailure("LXD exposes no sample at /1.0/metrics:\n" + text[:500])


def join_agent(server, name):
    d = os.path.join(L.tmpdir("agent"), name)
    L.agent("join", server.create_token(name), "--data-dir", d, "--upstream",
            "unix://" + LXD_SOCKET, check_rc=0, timeout=90)
    proc = L.spawn_agent("run", "--data-dir", d, log_path=d + ".log")
    return d, proc


@t.setup
def setup():
    global LXD_SOCKET, PROM, S, METRICS_PORT, LXD_METRIC
    for name in ("lxcm-server", "lxcm-agent"):
        L.binary(name)
    LXD_SOCKET = L.lxd_start()
    LXD_METRIC = lxd_metric_name()
    PROM = P.Prometheus(remote_write_receiver=True).start()
    METRICS_PORT = L.free_port()
    S = L.Server("--metrics-addr", "127.0.0.1:%d" % METRICS_PORT, "--heartbeat-interval", "1",
                 "--metrics-remote-write-url", PROM.write_url).start()
    AGENT["dir"], AGENT["proc"] = join_agent(S, "lxd1")


@t.test
def lxd_metric_reaches_prometheus_with_cluster_label():
    q = '%s{cluster="lxd1"}' % LXD_METRIC
    res = PROM.wait_query(q, timeout=90)
    m = res[0]["metric"]
    L.eq(m.get("cluster"), "lxd1", "cluster label")
    L.check(m.get("member"), "member label present: %r" % m)
    L.check("job" not in m and "instance" not in m, "no scrape labels: %r" % m)
    s = scrape()
    L.check(P.value(s, "lxcm_remote_write_samples_total", result="sent") > 0,
            "sent samples counted")
    L.eq(P.value(s, "lxcm_remote_write_samples_total", result="rejected"), 0,
         "nothing rejected by the receiver")
    L.eq(P.value(s, "lxcm_cluster_metrics_malformed_total"), 0, "LXD's text is not malformed")


@t.test
def receiver_down_and_back_loses_nothing_under_the_bound():
    before = scrape()
    PROM.stop()
    down_at = time.time()
    # Heartbeats go on while the receiver is down, and batches wait.
    L.wait_for(lambda: P.value(scrape(), "lxcm_heartbeats_total", result="ok") >=
               P.value(before, "lxcm_heartbeats_total", result="ok") + 5,
               timeout=30, what="five more heartbeats with the receiver down")
    L.wait_for(lambda: P.value(scrape(), "lxcm_remote_write_queue_batches") >= 3,
               timeout=30, what="batches to wait in the queue")
    up_at = time.time()
    PROM.start()
    L.wait_for(lambda: P.value(scrape(), "lxcm_remote_write_queue_batches") == 0, timeout=90,
               what="the queue to drain after the restart")
    after = scrape()
    L.eq(P.value(after, "lxcm_remote_write_samples_total", result="dropped") -
         P.value(before, "lxcm_remote_write_samples_total", result="dropped"), 0,
         "no sample dropped under the queue bound")
    # Samples stamped during the outage are in Prometheus now.
    mid = (down_at + up_at) / 2
    span = max(2, int(up_at - down_at))
    q = 'count_over_time(%s{cluster="lxd1"}[%ds])' % (LXD_METRIC, span)
    url_q = "&time=%.3f" % mid

    def outage_samples():
        import json
        import urllib.parse
        u = PROM.url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}) + url_q
        with urllib.request.urlopen(u, timeout=10) as r:
            res = json.loads(r.read())["data"]["result"]
        return res and max(float(x["value"][1]) for x in res) >= 2
    L.wait_for(outage_samples, timeout=30, what="samples from the outage in Prometheus")


@t.test
def bounded_queue_drops_and_counts():
    port = L.free_port()
    dead = "http://127.0.0.1:%d/api/v1/write" % L.free_port()
    s2 = L.Server("--metrics-addr", "127.0.0.1:%d" % port, "--heartbeat-interval", "1",
                  "--metrics-remote-write-url", dead, "--metrics-remote-write-queue", "2").start()
    d, proc = join_agent(s2, "lxd2")
    try:
        L.wait_for(lambda: P.value(scrape(port), "lxcm_remote_write_batches_dropped_total",
                                   reason="queue_full") >= 2,
                   timeout=60, what="batches dropped past the bound of 2")
        s = scrape(port)
        L.check(P.value(s, "lxcm_remote_write_queue_batches") <= 2, "queue within its bound")
        L.check(P.value(s, "lxcm_remote_write_samples_total", result="dropped") > 0,
                "dropped samples counted")
        L.check(P.value(s, "lxcm_heartbeats_total", result="ok") >= 4,
                "heartbeats flow with a dead receiver")
        L.check(P.sum_of(s, "lxcm_remote_write_requests_total", code="error") >= 1,
                "failed requests counted")
    finally:
        L._stop_proc(proc)
        s2.stop()


@t.test
def malformed_text_is_counted_and_skipped():
    cert = S.enroll("fake")
    before = scrape()
    body = {"cpu_total_count": 1, "server_metrics": [
        {"member": "m1", "service": "LXD", "metrics": "lxd_ok_metric 1\nbad line here\n"},
        {"member": "m2", "service": "LXD", "metrics": "lxcm_fake_metric{a=\"b\"} 42\n"},
        {"member": "m3", "service": "LXD", "metrics": 17}]}
    r = S.conn("POST", "/1.0/remote-cluster/status", body, cert=cert)
    L.eq(r.status, 200, "heartbeat with malformed metrics is acknowledged")
    L.wait_for(lambda: P.value(scrape(), "lxcm_cluster_metrics_malformed_total") -
               P.value(before, "lxcm_cluster_metrics_malformed_total") == 2,
               timeout=20, what="two malformed texts counted")
    res = PROM.wait_query('lxcm_fake_metric{cluster="fake",member="m2",a="b"}', timeout=60)
    L.eq(res[0]["value"][1], "42", "the good text of the same heartbeat went through")
    L.eq(PROM.query('lxd_ok_metric{cluster="fake"}'), [], "the malformed text was skipped whole")


if __name__ == "__main__":
    t.main()
