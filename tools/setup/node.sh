#!/usr/bin/env bash
# Installs the pinned npm toolchain (solc-js, Anvil, Ganache, OpenZeppelin) into node_modules.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=node_modules-install.log

die() { echo "setup: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is required but \`node\` was not found; install Node 20"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] 2>/dev/null || die "Node.js 20 or newer is required, found $(node --version)"
command -v npm >/dev/null 2>&1 || die "npm was not found; it ships with Node.js 20"

echo "setup: installing npm packages (solc-js, anvil, ganache, OpenZeppelin)"
npm ci --no-audit --no-fund >"$LOG" 2>&1 || die "npm ci failed (last lines of $LOG below); check that the npm registry is reachable$(echo; tail -n 3 "$LOG")"
node_modules/.bin/anvil --version >/dev/null 2>&1 || die "anvil from @foundry-rs/anvil does not run on this machine ($(uname -sm))"
touch node_modules/.setup-done
echo "setup: npm packages ready"
