#!/usr/bin/env bash
# Creates .venv with the pinned Python toolchain. Prints one line on failure, never a traceback.
set -uo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv
LOG=$VENV-install.log

. tools/setup/venv.sh
make_venv
echo "setup: installing Python packages into $VENV (first run builds eth-brownie from source: a few minutes)"
{
  "$VENV/bin/python" -m pip install --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.47.0" &&
  BROWNIE_NOCOMPILE=1 "$VENV/bin/python" -m pip install -c requirements.lock -r requirements-dev.txt
} >>"$LOG" 2>&1 || die "pip install failed (last lines of $LOG below); check that PyPI is reachable$(echo; tail -n 3 "$LOG")"

# Register the offline compiler bridge for every process of this venv (brownie, pytest, scripts),
# also when a user runs `brownie compile` by hand in the activated venv.
"$VENV/bin/python" - "$PWD/tools/solc" <<'PY' || die "could not register the compiler bridge in $VENV"
import pathlib, sys, sysconfig
pth = pathlib.Path(sysconfig.get_paths()["purelib"]) / "medchain-solc.pth"
pth.write_text(f"import os; os.environ.setdefault('SOLCX_BINARY_PATH', {sys.argv[1]!r})\n")
PY
touch "$VENV/.setup-done"
echo "setup: Python environment ready"
