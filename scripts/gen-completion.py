#!/usr/bin/env python3
"""Writes the bash completion of lxcm from the binary's own --help texts.

Usage: gen-completion.py LXCM_BINARY OUTPUT

`lxcm --help` gives the commands and the global options, `lxcm COMMAND
--help` each command's options, so the completion follows the command table
without being edited. It completes command words (groups, then their
commands, also after `lxcm help`), options (global and the command's own),
file names after --token-file, and the values of an option whose help
lists them as a|b|c (--format). Nothing is asked of the server.
tests/integration/test_install.py runs it in bash against every command.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helptext import command_names, options, parse, run_help, write_atomic  # noqa: E402

FILE_OPTIONS = ["--token-file"]

TEMPLATE = r'''# bash completion for lxcm                                      -*- shell-script -*-
# Generated from `lxcm --help` by scripts/gen-completion.py; do not edit.

# The command names of lxcm's command table, one or two words each.
_lxcm_commands=(@COMMANDS@)

# The options of a command ("" for the global ones, valid after any command).
_lxcm_options_of()
{
    case $1 in
@CASES@
    esac
}

# Options that take a value as the next word.
_lxcm_value_options=" @VALUE_OPTIONS@ "

_lxcm()
{
    local cur prev words cword i w typed="" cmd="" c next=""

    if declare -F _get_comp_words_by_ref >/dev/null; then
        # bash-completion: keep "https://host:8443" one word.
        _get_comp_words_by_ref -n =: cur prev words cword
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${words[cword]}
        prev=${words[cword - 1]}
    fi
    COMPREPLY=()
    case $prev in
    @FILE_OPTIONS@)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
@CHOICES@
    esac
    [[ $prev == -* && $_lxcm_value_options == *" $prev "* ]] && return
    # The words typed before this one that are not options or their values.
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ $w == -* ]]; then
            [[ $_lxcm_value_options == *" $w "* ]] && ((i++))
            continue
        fi
        typed="${typed:+$typed }$w"
    done
    if [[ $typed == help || $typed == "help "* ]]; then
        typed=${typed#help}
        typed=${typed# }
        next="help" # not offered again
    fi
    # The command they name, if they name one.
    for c in "${_lxcm_commands[@]}"; do
        [[ $typed == "$c" || $typed == "$c "* ]] && cmd=$c
    done
    if [[ $cur == -* ]]; then
        next=$(_lxcm_options_of "")
        [[ -z $typed ]] && next="$next --version"
        [[ -n $cmd ]] && next="$next $(_lxcm_options_of "$cmd")"
        COMPREPLY=($(compgen -W "$next" -- "$cur"))
        return
    fi
    [[ -n $cmd ]] && return # only the command's own NAME and such are left
    # The next command word: of the group typed, or the first words.
    [[ -z $typed && -z $next ]] && w="help" || w=""
    for c in "${_lxcm_commands[@]}"; do
        if [[ -z $typed ]]; then
            c=${c%% *}
        elif [[ $c == "$typed "* ]]; then
            c=${c#"$typed "}
        else
            continue
        fi
        [[ " $w " == *" $c "* ]] || w="$w $c"
    done
    COMPREPLY=($(compgen -W "$w" -- "$cur"))
}
complete -F _lxcm lxcm
'''


# "  --format FORMAT   how to print: table|compact|csv|json|yaml. ..."
CHOICE_LINE = re.compile(r"^\s+(--[\w-]+) [A-Z]+\s.*?\b([a-z]+(?:\|[a-z]+)+)\b")


def choices(help_text):
    """{option: [values]} for options whose help lists their values as a|b|c."""
    out = {}
    for line in help_text.splitlines():
        m = CHOICE_LINE.match(line)
        if m:
            out.setdefault(m.group(1), m.group(2).split("|"))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    binary, output = sys.argv[1:]
    top = run_help(binary, [])
    _, _, lists = parse(top)
    picks = choices(top)
    global_opts = options(lists)
    global_opts.pop("--version", None)  # before a command only: added by _lxcm
    names = command_names(lists)
    cases = ['    "") echo "%s" ;;' % " ".join(sorted(global_opts))]
    value_opts = {o for o, v in global_opts.items() if v}
    for name in names:
        sub_text = run_help(binary, name.split(" "))
        _, _, sub = parse(sub_text)
        for o, v in choices(sub_text).items():
            picks.setdefault(o, v)
        own = {o: v for o, v in options(sub).items() if o not in global_opts}
        value_opts |= {o for o, v in own.items() if v}
        cases.append('    "%s") echo "%s" ;;' % (name, " ".join(sorted(own))))
    text = (TEMPLATE.replace("@COMMANDS@", " ".join('"%s"' % n for n in names))
            .replace("@CASES@", "\n".join(cases))
            .replace("@VALUE_OPTIONS@", " ".join(sorted(value_opts)))
            .replace("@FILE_OPTIONS@", "|".join(FILE_OPTIONS))
            .replace("@CHOICES@", "\n".join(
                '    %s)\n        COMPREPLY=($(compgen -W "%s" -- "$cur"))\n        return\n        ;;'
                % (o, " ".join(v)) for o, v in sorted(picks.items()))))
    write_atomic(output, text)


if __name__ == "__main__":
    main()
