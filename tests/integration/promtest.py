"""A real Prometheus (Debian's package) for the metrics tests, and a small
parser of the text exposition to read counters in tests.

Prometheus runs on a free loopback port with its data in a temporary
directory, and is stopped at exit like every process lxcmtest starts.
"""

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import lxcmtest as L


def prometheus_binary():
    p = shutil.which("prometheus")
    if p is None:
        raise L.TestFailure("prometheus is not installed (scripts/install-deps.sh)")
    return p


def promtool_check(text):
    """Runs `promtool check metrics` on text; fails the test on any complaint."""
    tool = shutil.which("promtool")
    if tool is None:
        raise L.TestFailure("promtool is not installed (scripts/install-deps.sh)")
    cp = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                        text=True, timeout=60)
    L.check(cp.returncode == 0 and not cp.stdout.strip() and not cp.stderr.strip(),
            "promtool check metrics complains (exit %d):\n%s%s" % (
                cp.returncode, cp.stdout, cp.stderr))


class Prometheus:
    def __init__(self, scrape_target=None, remote_write_receiver=False, interval="1s"):
        self.dir = L.tmpdir("prom")
        self.port = L.free_port()
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None
        cfg = ["global:", "  scrape_interval: %s" % interval,
               "  evaluation_interval: %s" % interval, "scrape_configs:"]
        if scrape_target:
            cfg += ["  - job_name: lxcm", "    static_configs:",
                    "      - targets: ['%s']" % scrape_target]
        self.cfg_path = os.path.join(self.dir, "prometheus.yml")
        with open(self.cfg_path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.args = [prometheus_binary(), "--config.file=" + self.cfg_path,
                     "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                     "--web.listen-address=127.0.0.1:%d" % self.port]
        if remote_write_receiver:
            self.args.append("--web.enable-remote-write-receiver")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def write_url(self):
        return self.url + "/api/v1/write"

    def start(self, timeout=60):
        logf = open(self.log_path, "ab")
        self.proc = L.spawn(self.args, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
        logf.close()
        L.wait_for(self.ready, timeout=timeout, interval=0.3, what="prometheus to be ready")
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise L.TestFailure("prometheus exited; log:\n" + self.log_tail())
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            L._stop_proc(self.proc)
            L.forget(self.proc)
            self.proc = None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def query(self, promql):
        """Instant query through the HTTP API; returns the result vector."""
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(self.url + "/api/v1/query?" + q, timeout=10) as r:
            body = json.loads(r.read())
        L.eq(body.get("status"), "success", "query %s" % promql)
        return body["data"]["result"]

    def wait_query(self, promql, pred=lambda res: len(res) > 0, timeout=60):
        got = []

        def attempt():
            got[:] = self.query(promql)
            return pred(got)
        L.wait_for(attempt, timeout=timeout, interval=0.5,
                   what="prometheus query %s (last result %r)" % (promql, got))
        return list(got)

    def targets_health(self):
        with urllib.request.urlopen(self.url + "/api/v1/targets", timeout=10) as r:
            body = json.loads(r.read())
        return [(t["scrapeUrl"], t["health"], t.get("lastError", ""))
                for t in body["data"]["activeTargets"]]


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """{(name, frozenset(labels.items())): value} of a 0.0.4 exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        L.check(m is not None, "unparsable exposition line %r" % line)
        labels = dict(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out


def value(samples, name, **labels):
    """The sample's value, 0 when absent (a counter that never moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def sum_of(samples, name, **labels):
    """Sum over every series of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))
