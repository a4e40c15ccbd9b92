#!/usr/bin/env bash
# Turns brownie's compile output into one clear line plus the compiler's own message.
log=$1
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
last=$(printf '%s\n' "$plain" | grep -v '^\s*$' | tail -n 1)
echo "build: the contracts did not compile: ${last:-see $log}" >&2
printf '%s\n' "$plain" | grep -A4 -E "^[A-Za-z0-9/_.@-]+\.sol:[0-9]+:[0-9]+:" | head -n 12 >&2
echo "build: full output in $log" >&2
