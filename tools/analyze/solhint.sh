#!/usr/bin/env bash
# Lints contracts/ and interfaces/ with solhint (pinned in package.json) and .solhint.json.
# Every warning fails: one line per problem, then one line saying where the rules are explained.
set -uo pipefail
cd "$(dirname "$0")/../.."
SOLHINT=node_modules/.bin/solhint
[ -x "$SOLHINT" ] || { echo "solhint: $SOLHINT is missing; run \`make setup\` (or \`npm ci\`)" >&2; exit 1; }
# --disc: no update check over the network; --noPoster: no advertisement.
if out=$("$SOLHINT" --disc --noPoster -f unix --max-warnings 0 'contracts/**/*.sol' 'interfaces/**/*.sol' 2>&1); then
  echo "analyze: solhint clean (contracts/, interfaces/; rules in .solhint.json)"
  exit 0
fi
problems=$(printf '%s\n' "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: ')
if [ -n "$problems" ]; then
  printf '%s\n' "$problems" | sed 's/^/solhint: /' >&2
  echo "solhint: $(printf '%s\n' "$problems" | wc -l) problem(s); fix them (each rule and why it is set: .solhint.json, docs/static-analysis.md)" >&2
else
  echo "solhint: failed: $(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 1)" >&2
fi
exit 1
