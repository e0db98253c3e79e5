"""Reads a program's --help text: usage lines, prose paragraphs and lists.

Shared by gen-man.py and gen-completion.py, which build the man pages and
the bash completion from the binaries' own --help at build time. A list is
a paragraph whose first line is a heading ending in ':' ("Options:",
"Commands:"), then items "  TERM  description" whose deeper-indented lines
continue the description.
"""

import os
import re
import subprocess

ITEM = re.compile(r"^  (\S.*?)(?:\s{2,}(\S.*))?$")
COMMAND_WORDS = re.compile(r"^[a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*")


def run_help(binary, words):
    out = subprocess.run([binary] + words + ["--help"], check=True,
                         stdout=subprocess.PIPE, env=dict(os.environ, LC_ALL="C"))
    return out.stdout.decode()


def paragraphs(text):
    paras, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def is_heading(line):
    return line.endswith(":") and not line.startswith(" ")


def parse(text):
    """Splits a --help text into its usage lines, prose paragraphs and lists."""
    usage, prose, lists = [], [], []
    for para in paragraphs(text):
        if para[0].lower().startswith("usage:"):
            usage = [re.sub(r"^(?:[Uu]sage:)?\s*", "", l) for l in para]
        elif is_heading(para[0]):
            lists.append((para[0][:-1], items(para[1:])))
        else:
            prose.append(para)
    return usage, prose, lists


def items(lines):
    """(term, description) pairs; deeper-indented lines continue the description."""
    out = []
    for line in lines:
        m = ITEM.match(line)
        if m and not line.startswith("   "):
            out.append([m.group(1).strip(), m.group(2) or ""])
        elif out:
            out[-1][1] = (out[-1][1] + " " + line.strip()).strip()
    return out


def command_names(lists):
    for heading, entries in lists:
        if heading.lower() == "commands":
            return [COMMAND_WORDS.match(t).group(0) for t, _ in entries
                    if COMMAND_WORDS.match(t)]
    return []


def options(lists):
    """The long options of a help text's lists: {"--name": takes_a_value}."""
    out = {}
    for _, entries in lists:
        for t, _ in entries:
            for m in re.finditer(r"(--[a-z][a-z0-9-]*)(?:[ =]([A-Z][A-Z_]*|[a-z]+\|\S+))?", t):
                out[m.group(1)] = out.get(m.group(1), False) or bool(m.group(2))
    return out


def write_atomic(path, text):
    """Writes text to path through a temporary file, so make never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
