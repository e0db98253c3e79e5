#!/usr/bin/env python3
"""Writes a man page from a template and the --help texts of a binary.

Usage: gen-man.py BINARY TEMPLATE OUTPUT [VERSION [CONFDIR]]

The prose of a man page (NAME, configuration, files, exit status, see also)
is written by hand in packaging/man/NAME.in; what the program itself says in
--help is pasted in at build time, so options never go missing or stale:

  @VERSION@   the version given on the command line
  @CONFDIR@   the directory of the config files (default /etc/lxcm)
  @DATE@      SOURCE_DATE_EPOCH as YYYY-MM-DD (empty without it)
  @USAGE@     the "Usage:" lines of `BINARY --help`
  @PROSE@     its other paragraphs
  @LISTS@     its lists ("Options:", "Commands:", ...), each as a .SS with
              one .TP per item
  @COMMANDS@  for each item of its "Commands:" list, a .SS with the whole
              `BINARY COMMAND --help` (usage, prose and lists)

tests/integration/test_install.py checks that every flag of every --help
is in the installed pages.
"""

import datetime
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helptext import command_names, parse, run_help, write_atomic  # noqa: E402


def esc(text):
    """Text for roff: backslashes, minus signs, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def term(text):
    """An option or command name in bold, its arguments (with capitals) in italics."""
    words = []
    for w in text.split(" "):
        if not w:
            continue
        if (re.search(r"[A-Z]", w) or w.startswith("[") and w[1:2] != "-") \
                and not w.startswith("-"):
            words.append("\\fI" + esc(w) + "\\fR")
        else:
            words.append("\\fB" + esc(w.rstrip(",")) + "\\fR" + ("," if w.endswith(",") else ""))
    return " ".join(words)


def render_usage(usage):
    return "\n.br\n".join(term(u) for u in usage)


def render_prose(prose):
    out = []
    for para in prose:
        if all(l.startswith("  ") for l in para):
            out += [".PP", ".RS 4", ".nf"] + [esc(l.strip()) for l in para] + [".fi", ".RE"]
        else:
            out += [".PP"] + [esc(l.strip()) for l in para]
    return "\n".join(out)


def render_list(heading, entries, level):
    head = heading[0].upper() + heading[1:]
    out = ['.SS "%s"' % esc(head)] if level == "SS" else [".PP", "\\fI%s:\\fR" % esc(head)]
    for t, desc in entries:
        out += [".TP", term(t)]
        if desc:
            out.append(esc(desc))
    return "\n".join(out)


def render_lists(lists, level="SS"):
    if level == "SS" and len(lists) == 1 and lists[0][0].lower() == "options":
        # The only list, under .SH OPTIONS: no subsection of the same name.
        return "\n".join(render_list(h, e, level)[len('.SS "Options"\n'):] for h, e in lists)
    return "\n".join(render_list(h, e, level) for h, e in lists)


def render_commands(binary, lists):
    out = []
    prog = os.path.basename(binary)
    for name in command_names(lists):
        usage, prose, sub = parse(run_help(binary, name.split(" ")))
        out += ['.SS "%s %s"' % (esc(prog), esc(name)), ".PP", render_usage(usage)]
        if prose:
            out.append(render_prose(prose))
        if sub:
            out.append(render_lists(sub, level="PP"))
    return "\n".join(out)


def main():
    if len(sys.argv) not in (4, 5, 6):
        sys.exit(__doc__.split("\n\n")[1])
    binary, template, output = sys.argv[1:4]
    version = sys.argv[4] if len(sys.argv) >= 5 else ""
    confdir = sys.argv[5] if len(sys.argv) == 6 else "/etc/lxcm"
    usage, prose, lists = parse(run_help(binary, []))
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime(
        "%Y-%m-%d") if epoch else ""
    with open(template) as f:
        page = f.read()
    parts = {"@VERSION@": version, "@DATE@": date, "@CONFDIR@": esc(confdir)}
    for key, fn in (("@USAGE@", lambda: render_usage(usage)),
                    ("@PROSE@", lambda: render_prose(prose)),
                    ("@LISTS@", lambda: render_lists(lists)),
                    ("@COMMANDS@", lambda: render_commands(binary, lists))):
        if key in page:
            parts[key] = fn()
    for key, value in parts.items():
        page = page.replace(key, value)
    write_atomic(output, page)


if __name__ == "__main__":
    main()
