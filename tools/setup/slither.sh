#!/usr/bin/env bash
# Creates .venv-slither with the pinned static-analysis toolchain (slither-analyzer, crytic-compile).
# Its own venv: slither's web3 stack is newer than the one eth-brownie pins in .venv.
# Prints one line on failure, never a traceback.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-slither
LOG=$VENV-install.log
REQUIREMENTS=tools/setup/slither-requirements.txt

die() { echo "setup: $*" >&2; exit 1; }

PY=""
for candidate in ${PYTHON:-} python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PY=$candidate; break
  fi
done
[ -n "$PY" ] || die "Python 3.11 is required but was not found (tried \$PYTHON, python3.11, python3); install it or set PYTHON=/path/to/python3.11"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >"$LOG" 2>&1 || die "could not create $VENV with $PY (see $LOG); on Debian install python3.11-venv"
fi
echo "setup: installing slither into $VENV"
{
  "$VENV/bin/python" -m pip install --upgrade "pip==26.3" &&
  "$VENV/bin/python" -m pip install -r "$REQUIREMENTS" &&
  "$VENV/bin/python" -m pip check
} >>"$LOG" 2>&1 || die "pip install of $REQUIREMENTS failed (last lines of $LOG below); check that PyPI is reachable$(echo; tail -n 3 "$LOG")"
"$VENV/bin/slither" --version >/dev/null 2>&1 || die "slither does not run in $VENV (see $LOG)"
touch "$VENV/.setup-done"
echo "setup: slither ready"
