#!/usr/bin/env python3
"""`lxcm-server --config FILE` and `lxcm-agent run --config FILE` (issue 15).

- A server started from a config file applies its settings (a JSON body cap,
  the log level); flags on the command line override the file's (the
  listener addresses the harness passes win over the file's, a cap given
  on the command line wins over the file's).
- Unknown keys, malformed lines and bad values are usage errors (exit 2)
  that name the file and the line, on both binaries; a missing file too.
- The agent takes --data-dir from the file (and the command line's wins).

Server and agent only (no LXD). Python standard library only.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

t = L.Tests("test_config_file")

TOKEN_PATH = "/1.0/remote-cluster-join-token"


def write(name, text):
    path = os.path.join(L.tmpdir("cf"), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def token_create(srv, name, pad):
    body = json.dumps({"cluster_name": name, "description": "x" * pad})
    return srv.mgmt("POST", TOKEN_PATH, body=json.loads(body)).status


def usage_error(args, want):
    cp = L.run(args)
    L.eq(cp.returncode, 2, "exit status of %s (stderr %r)" % (" ".join(args), cp.stderr))
    L.check(want in cp.stderr, "%r not in the error of %s: %r" % (want, " ".join(args),
                                                                  cp.stderr))


@t.test
def test_server_applies_the_file():
    conf = write("server.conf", "# from a file\n"
                                "max-json-body = 2048\n"
                                "\n"
                                "log-level = warn\n"
                                "management-addr = 127.0.0.1:1\n"
                                "heartbeat-interval = \"30\"\n")
    srv = L.Server("--config", conf).start()
    try:
        L.eq(token_create(srv, "small", 100), 200, "a small body")
        L.eq(token_create(srv, "big", 3000), 413, "a 3000-byte body over the file's cap")
        L.check(" info " not in srv.log_tail(400), "info lines with log-level = warn")
    finally:
        srv.stop()
    # The command line wins over the file.
    srv = L.Server("--config", conf, "--max-json-body", "8192", "--log-level", "info").start()
    try:
        L.eq(token_create(srv, "big", 3000), 200, "a 3000-byte body under the flag's cap")
        L.check(" info " in srv.log_tail(400), "no info line with --log-level info")
    finally:
        srv.stop()


@t.test
def test_server_errors_name_the_line():
    server = L.binary("lxcm-server")
    conf = write("unknown.conf", "data-dir = /tmp/x\n# fine\nnope = 1\n")
    usage_error([server, "--config", conf], conf + ":3: unknown key 'nope'")
    conf = write("value.conf", "data-dir = /tmp/x\nmax-json-body = 12\n")
    usage_error([server, "--config", conf], conf + ":2: invalid value for --max-json-body: 12")
    conf = write("addr.conf", "\n\nmanagement-addr = nowhere\ndata-dir = /tmp/x\n")
    usage_error([server, "--config", conf], conf + ":3: invalid --management-addr nowhere")
    conf = write("line.conf", "data-dir\n")
    usage_error([server, "--config", conf], conf + ":1: expected 'key = value'")
    conf = write("nul.conf", "data-dir = /tmp/x\nlog-level = info\0\n")
    usage_error([server, "--config", conf], conf + ":2: NUL byte")
    conf = write("big.conf", "#" * (300 * 1024))
    usage_error([server, "--config", conf], conf + ": larger than 262144 bytes")
    usage_error([server, "--config", "/nonexistent/lxcm.conf"],
                "/nonexistent/lxcm.conf: cannot read the config file")
    # The same bad value on the command line is not blamed on the file.
    conf = write("ok.conf", "data-dir = /tmp/x\n")
    cp = L.run([server, "--config", conf, "--max-json-body", "12"])
    L.eq((cp.returncode, cp.stderr.strip()),
         (2, "lxcm-server: invalid value for --max-json-body: 12"), "command-line error")


@t.test
def test_agent_run_config():
    agent = L.binary("lxcm-agent")
    conf = write("agent.conf", "# agent\ninterval = 0\n")
    usage_error([agent, "run", "--config", conf], conf + ":2: --interval takes 1 to 86400")
    conf = write("agent2.conf", "allow-path = relative\n")
    usage_error([agent, "run", "--config", conf], conf + ":1: --allow-path takes")
    conf = write("agent3.conf", "once = maybe\n")
    usage_error([agent, "run", "--config", conf], conf + ":1: 'once' takes true or false")
    conf = write("agent4.conf", "upstream = unix:///x\n")
    usage_error([agent, "run", "--config", conf], conf + ":1: unknown key 'upstream'")
    # data-dir from the file: `run` gets as far as reading its state.
    empty = L.tmpdir("agentdir")
    conf = write("agent5.conf", "data-dir = %s\nonce = true\ndebug = true\n" % empty)
    cp = L.run([agent, "run", "--config", conf], timeout=30)
    L.eq(cp.returncode, 1, "run without a joined state: %r" % cp.stderr)
    L.check("cannot load the agent state" in cp.stderr and empty in cp.stderr, cp.stderr)
    other = L.tmpdir("agentdir2")
    cp = L.run([agent, "run", "--config", conf, "--data-dir", other], timeout=30)
    L.eq(cp.returncode, 1, "run with --data-dir over the file's")
    L.check(other in cp.stderr and empty not in cp.stderr, cp.stderr)


t.main()
