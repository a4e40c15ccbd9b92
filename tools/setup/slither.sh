#!/usr/bin/env bash
# Creates .venv-slither with the pinned static-analysis toolchain (slither-analyzer, crytic-compile).
# Its own venv: slither's web3 stack is newer than the one eth-brownie pins in .venv.
# Prints one line on failure, never a traceback.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-slither
LOG=$VENV-install.log
REQUIREMENTS=tools/setup/slither-requirements.txt

. tools/setup/venv.sh
make_venv
echo "setup: installing slither into $VENV"
{
  "$VENV/bin/python" -m pip install --upgrade "pip==26.3" &&
  "$VENV/bin/python" -m pip install -r "$REQUIREMENTS" &&
  "$VENV/bin/python" -m pip check
} >>"$LOG" 2>&1 || die "pip install of $REQUIREMENTS failed (last lines of $LOG below); check that PyPI is reachable$(echo; tail -n 3 "$LOG")"
"$VENV/bin/slither" --version >/dev/null 2>&1 || die "slither does not run in $VENV (see $LOG)"
touch "$VENV/.setup-done"
echo "setup: slither ready"
