#!/usr/bin/env python3
"""`make install`, the systemd units, man pages, bash completion, example
config files and the Debian package (issue 15, "Install and run as a
service").

- `make install DESTDIR=tmp PREFIX=/usr` (on $LXCM_BUILD) installs exactly
  the expected files; a second install keeps an edited config file.
- `systemd-analyze verify` is clean on both units and `systemd-analyze
  security --offline` rates them "OK" (scripts/verify-units.sh, on a copy
  of the DESTDIR tree with the host's units added; no running systemd).
- Every long option and command of every `--help` of the three binaries is
  in the installed man pages, which `man` renders without warnings.
- The bash completion offers every command word and, for every command,
  exactly the global options and the command's own from its --help.
- The example config files name every option of the binaries, and with all
  their commented lines uncommented they pass the binaries' own checks.
- With LXCM_TEST_DEB=1 (it takes minutes: a full build), `make deb`, lintian
  without errors and the file list of `dpkg -c`. The package is never
  installed here.

No LXD, no server: only the build tree and the tools. Python standard
library only.
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lxcmtest as L  # noqa: E402

sys.path.insert(0, os.path.join(L.SRC, "scripts"))
import helptext  # noqa: E402

t = L.Tests("test_install")

DEST = None

EXPECTED = {
    "usr/sbin/lxcm-server", "usr/sbin/lxcm-agent", "usr/bin/lxcm",
    "usr/share/man/man8/lxcm-server.8", "usr/share/man/man8/lxcm-agent.8",
    "usr/share/man/man1/lxcm.1",
    "usr/share/bash-completion/completions/lxcm",
    "usr/lib/systemd/system/lxcm-server.service",
    "usr/lib/systemd/system/lxcm-agent.service",
    "etc/lxcm/lxcm-server.conf", "etc/lxcm/lxcm-agent.conf",
    "usr/share/doc/lxcm/examples/lxcm-server.conf",
    "usr/share/doc/lxcm/examples/lxcm-agent.conf",
    "usr/share/doc/lxcm/README.md", "usr/share/doc/lxcm/architecture.md",
    "usr/share/doc/lxcm/configuration.md", "usr/share/doc/lxcm/operations.md",
    "usr/share/doc/lxcm/protocol.md", "usr/share/doc/lxcm/protocol-v1.md",
    "usr/share/doc/lxcm/security.md",
}

# Every binary with its man page, the words before its subcommands' --help.
PAGES = [("usr/sbin/lxcm-server", "usr/share/man/man8/lxcm-server.8"),
         ("usr/sbin/lxcm-agent", "usr/share/man/man8/lxcm-agent.8"),
         ("usr/bin/lxcm", "usr/share/man/man1/lxcm.1")]


def make_install(dest):
    return L.run(["make", "-C", L.SRC, "--no-print-directory", "install",
                  "BUILD=" + L.BUILD, "DESTDIR=" + dest, "PREFIX=/usr", "JOBS=2"],
                 timeout=900, check_rc=0)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def all_helps(binary):
    """{words: help text} for the binary and each command of its Commands list."""
    helps = {(): helptext.run_help(binary, [])}
    _, _, lists = helptext.parse(helps[()])
    for name in helptext.command_names(lists):
        helps[tuple(name.split(" "))] = helptext.run_help(binary, name.split(" "))
    return helps


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def rendered_man(path):
    cp = L.run(["man", "--warnings", "-E", "UTF-8", "-l", path], check_rc=0,
               env={"MANWIDTH": "100", "MAN_KEEP_FORMATTING": "", "LC_ALL": "C.UTF-8"})
    # Warnings of groff (lines too long to break, bad requests) fail the page.
    L.check(cp.stderr.strip() == "", "man %s warns: %s" % (path, cp.stderr))
    # Unhyphenate words broken at the line end and drop hyphenation marks.
    return re.sub(r"\u2010\n\s*", "", cp.stdout).replace("\u2010", "-").replace("\u2212", "-")


@t.setup
def setup():
    global DEST
    for tool in ("make", "cmake", "man", "bash", "systemd-analyze"):
        if shutil.which(tool) is None:
            raise L.TestFailure("%s is missing (scripts/install-deps.sh)" % tool)
    DEST = os.path.join(L.tmpdir("inst"), "root")
    make_install(DEST)


@t.test
def test_file_list():
    got = files_under(DEST)
    L.eq(sorted(got - EXPECTED), [], "unexpected files installed")
    L.eq(sorted(EXPECTED - got), [], "files missing from the install")
    for f in ("usr/sbin/lxcm-server", "usr/sbin/lxcm-agent", "usr/bin/lxcm"):
        L.check(os.access(os.path.join(DEST, f), os.X_OK), f + " not executable")
    for f in ("etc/lxcm/lxcm-server.conf", "usr/lib/systemd/system/lxcm-agent.service"):
        L.eq(oct(os.stat(os.path.join(DEST, f)).st_mode & 0o777), "0o644", f + " mode")
    # The units name the installed paths, without DESTDIR.
    with open(os.path.join(DEST, "usr/lib/systemd/system/lxcm-server.service")) as f:
        unit = f.read()
    L.check("ExecStart=/usr/sbin/lxcm-server --config /etc/lxcm/lxcm-server.conf\n" in unit,
            "server unit ExecStart:\n" + unit)
    L.check(DEST not in unit, "DESTDIR leaked into the unit")


@t.test
def test_reinstall_keeps_edited_config():
    conf = os.path.join(DEST, "etc/lxcm/lxcm-agent.conf")
    with open(conf, "a") as f:
        f.write("interval = 17\n")
    cp = make_install(DEST)
    with open(conf) as f:
        L.check(f.read().endswith("interval = 17\n"), "the edited config was replaced")
    L.check("Keeping: " + conf in cp.stdout, "no 'Keeping' line:\n" + cp.stdout[-2000:])
    L.eq(sorted(files_under(DEST) ^ EXPECTED), [], "file list after a reinstall")


@t.test
def test_units_verify():
    cp = L.run(["sh", os.path.join(L.SRC, "scripts/verify-units.sh"), DEST], timeout=120)
    L.log(cp.stdout.strip())
    L.eq(cp.returncode, 0, "verify-units.sh exit status (stderr: %s)" % cp.stderr)
    L.eq(cp.stdout.count("verify clean"), 2, "units verified clean")


@t.test
def test_units_sandbox():
    """The settings the issue asks for, read from the installed units."""
    for name in ("lxcm-server", "lxcm-agent"):
        with open(os.path.join(DEST, "usr/lib/systemd/system/%s.service" % name)) as f:
            unit = f.read()
        for line in ("DynamicUser=yes", "StateDirectory=" + name, "ProtectSystem=strict",
                     "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                     "CapabilityBoundingSet=\n", "Restart=on-failure",
                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                     "SystemCallFilter=@system-service",
                     "Documentation=man:%s(8)" % name):
            L.check("\n" + line in unit, "%s.service lacks %r" % (name, line))
        if name == "lxcm-agent":
            L.check("\nSupplementaryGroups=lxd\n" in unit, "the agent cannot reach LXD")
            # No bind mount of LXD's socket: LXD makes a new one at each start.
            settings = [l for l in unit.splitlines() if l and not l.startswith("#")]
            L.eq([l for l in settings if "unix.socket" in l], [], "lines naming the socket")


@t.test
def test_man_pages_have_every_option():
    for rel_bin, rel_man in PAGES:
        binary = os.path.join(DEST, rel_bin)
        page = rendered_man(os.path.join(DEST, rel_man))
        words = set(re.findall(r"--[a-z][a-z0-9-]*", page))
        for cmd, text in all_helps(binary).items():
            missing = sorted(long_options(text) - words)
            L.eq(missing, [], "options of `%s %s --help` missing from %s" % (
                rel_bin, " ".join(cmd), rel_man))
            if cmd:
                prog = os.path.basename(rel_bin)
                L.check("%s %s" % (prog, " ".join(cmd)) in page,
                        "%s lacks a section for %s" % (rel_man, " ".join(cmd)))
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "SEE ALSO"):
            L.check("\n" + section in page, "%s lacks %s" % (rel_man, section))
    # The test can fail: a page without one of the options is caught.
    src = os.path.join(DEST, "usr/share/man/man8/lxcm-server.8")
    broken = os.path.join(L.tmpdir("man"), "broken.8")
    with open(src) as f, open(broken, "w") as g:
        g.write(f.read().replace("\\-\\-proxy\\-fin\\-timeout", "\\-\\-proxy\\-fin"))
    L.check("--proxy-fin-timeout" not in rendered_man(broken), "the broken page is not broken")


def complete(script, *words):
    """What the completion offers after `lxcm WORDS...` (last word: being typed)."""
    quoted = " ".join("'%s'" % w for w in ("lxcm",) + words)
    prog = ("source '%s'; COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); _lxcm; "
            "printf '%%s\\n' \"${COMPREPLY[@]}\"" % (script, quoted, len(words)))
    cp = L.run(["bash", "--norc", "--noprofile", "-c", prog], check_rc=0)
    return set(cp.stdout.split())


@t.test
def test_bash_completion_follows_the_command_table():
    script = os.path.join(DEST, "usr/share/bash-completion/completions/lxcm")
    binary = os.path.join(DEST, "usr/bin/lxcm")
    L.run(["bash", "-n", script], check_rc=0)
    helps = all_helps(binary)
    global_opts = long_options(helps[()]) - {"--version"}
    # Options named in the main help's prose (lxcm COMMAND --help) are global too.
    commands = [c for c in helps if c]
    L.check(len(commands) >= 10, "too few commands found in lxcm --help: %r" % commands)
    L.eq(complete(script, ""), {c[0] for c in commands} | {"help"}, "first words")
    L.eq(complete(script, "help", ""), {c[0] for c in commands}, "words after help")
    for cmd in commands:
        if len(cmd) == 2:
            L.eq(complete(script, cmd[0], ""), {c[1] for c in commands if c[0] == cmd[0]},
                 "commands of group %s" % cmd[0])
            L.check(cmd[1] in complete(script, cmd[0], cmd[1][:1]), "prefix of " + cmd[1])
        own = long_options(helps[cmd]) - global_opts
        want = own | global_opts
        L.eq(complete(script, *cmd, "--"), want, "options of lxcm %s" % " ".join(cmd))
        # Also after a positional argument and a global option with its value.
        L.eq(complete(script, "--server", "https://h", *cmd, "NAME", "--"), want,
             "options of lxcm %s after other words" % " ".join(cmd))
    L.eq(complete(script, "--"), global_opts | {"--version"}, "options before a command")
    L.eq(complete(script, "token", "create", "x", "--expiry", ""), set(), "after --expiry")
    L.eq(complete(script, "--format", "c"), {"compact", "csv"}, "values of --format")
    L.eq(complete(script, "cluster", "list", "--format", ""),
         {"table", "compact", "csv", "json", "yaml"}, "values of --format after a command")
    tmp = L.tmpdir("compl")
    open(os.path.join(tmp, "tok.txt"), "w").close()
    L.eq(complete(script, "--token-file", os.path.join(tmp, "to")),
         {os.path.join(tmp, "tok.txt")}, "files after --token-file")


def uncommented(path, out_dir):
    """The example with every `# key = value` line of a known key made active."""
    with open(path) as f:
        text = f.read()
    out = os.path.join(out_dir, os.path.basename(path))
    with open(out, "w") as f:
        f.write(re.sub(r"(?m)^# ([a-z][a-z0-9-]*) = ", r"\1 = ", text))
    return out, text


@t.test
def test_example_configs():
    tmp = L.tmpdir("conf")
    server = os.path.join(DEST, "usr/sbin/lxcm-server")
    agent = os.path.join(DEST, "usr/sbin/lxcm-agent")
    cases = [(server, [], "etc/lxcm/lxcm-server.conf", ["--version"]),
             (agent, ["run"], "etc/lxcm/lxcm-agent.conf", ["--help"])]
    for binary, words, rel, stop in cases:
        keys = {o[2:] for o in long_options(helptext.run_help(binary, words))}
        keys -= {"config", "help", "version"}
        path, text = uncommented(os.path.join(DEST, rel), tmp)
        named = set(re.findall(r"(?m)^#? ?([a-z][a-z0-9-]*) = ", text))
        L.eq(sorted(keys - named), [], "options missing from " + rel)
        L.eq(sorted(named - keys), [], "keys of %s that are no option" % rel)
        # The file's lines are checked before the flag that stops the program.
        cp = L.run([binary] + words + ["--config", path] + stop)
        L.eq((cp.returncode, cp.stderr), (0, ""), "%s with every line active" % rel)
        with open(path, "a") as f:
            f.write("\n# a bad line last\n%s = \n" % sorted(keys)[0])
        nlines = text.count("\n") + 3
        cp = L.run([binary] + words + ["--config", path] + stop)
        L.eq(cp.returncode, 2, "exit status for a bad line")
        L.check("%s:%d: no value for" % (path, nlines) in cp.stderr, cp.stderr)


@t.test
def test_deb():
    if os.environ.get("LXCM_TEST_DEB") != "1":
        L.log("test_deb: skipped (LXCM_TEST_DEB=1 builds the package: a few minutes)")
        return
    out = L.tmpdir("deb")
    cp = L.run(["make", "-C", L.SRC, "--no-print-directory", "deb", "DEB_BUILD=" + out],
               timeout=1800, env={"DEB_BUILD_OPTIONS": "nocheck parallel=2"})
    L.eq(cp.returncode, 0, "make deb:\n%s\n%s" % (cp.stdout[-3000:], cp.stderr[-2000:]))
    debs = [f for f in os.listdir(out) if f.startswith("lxcm_") and f.endswith(".deb")]
    L.eq(len(debs), 1, "the .deb in %s" % out)
    deb = os.path.join(out, debs[0])
    lint = L.run(["lintian", "--fail-on", "error", deb], timeout=600)
    L.eq(lint.returncode, 0, "lintian errors:\n" + lint.stdout)
    L.log("lintian: " + (lint.stdout.strip() or "no tags"))
    listing = L.run(["dpkg", "-c", deb], check_rc=0).stdout
    got = {line.split()[-1].lstrip("./") for line in listing.splitlines()
           if not line.startswith("d")}
    want = set()
    for f in EXPECTED:
        f = f.replace("usr/lib/systemd/", "lib/systemd/")   # Debian 12's place
        if f.startswith("usr/share/man/") or f.startswith("usr/share/doc/lxcm/") and \
                f.endswith(".md"):
            f += ".gz"
        want.add(f)
    want |= {"usr/share/doc/lxcm/changelog.gz", "usr/share/doc/lxcm/copyright"}
    L.eq(sorted(got ^ want), [], "files of the .deb (symmetric difference)")
    conffiles = L.run(["dpkg-deb", "-I", deb, "conffiles"], check_rc=0).stdout.split()
    L.eq(sorted(conffiles), ["/etc/lxcm/lxcm-agent.conf", "/etc/lxcm/lxcm-server.conf"],
         "conffiles")


t.main()
