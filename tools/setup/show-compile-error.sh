#!/usr/bin/env bash
# Turns brownie's compile output into one clear line plus the compiler's own message.
log=$1
msg=$(grep -m1 -E "Error|error" "$log")
echo "build: the contracts did not compile: ${msg:-see $log}" >&2
grep -A4 -E "^[a-zA-Z/_.]+\.sol:[0-9]+:[0-9]+:|ParserError|TypeError|DeclarationError" "$log" | head -n 12 >&2
echo "build: full compiler output in $log" >&2
