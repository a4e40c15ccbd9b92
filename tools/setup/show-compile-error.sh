#!/usr/bin/env bash
# Turns brownie's compile output into one clear line, then the compiler's own message.
log=$1
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
# solc's first diagnostic ("ParserError: ...", "TypeError: ...") and where it is.
first=$(printf '%s\n' "$plain" | grep -E '^[A-Za-z]+Error: ' | grep -v '^CompilerError' | head -n 1)
where=$(printf '%s\n' "$plain" | grep -m1 -E '^ *--> ' | sed 's/^ *--> //')
if [ -n "$first" ]; then
  echo "build: the contracts did not compile: $first${where:+ at $where}" >&2
  printf '%s\n' "$plain" | grep -A4 -E '^ *--> ' | head -n 6 >&2
else
  echo "build: brownie compile failed: $(printf '%s\n' "$plain" | grep -v '^\s*$' | tail -n 1)" >&2
fi
echo "build: full output in $log" >&2
