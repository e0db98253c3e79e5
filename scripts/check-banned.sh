#!/bin/sh
# Fails when our C code calls a function STYLE.md bans (curl does the same).
set -eu
cd "$(dirname "$0")/.."
banned='\b(strcpy|sprintf|vsprintf|strcat|atoi|atol|atoll|strtok|sscanf|gets)\s*\('
if grep -rnE "$banned" src tests/unit fuzz bench --include='*.c' --include='*.h' 2>/dev/null; then
	echo "check-banned: banned functions found (see STYLE.md rule 6)" >&2
	exit 1
fi
echo "check-banned: no banned functions"
