# Sourced by python.sh and slither.sh: one-line failures, and a venv made with Python 3.11.
# Expects VENV and LOG to be set by the caller.

die() { echo "setup: $*" >&2; exit 1; }

# Creates $VENV with Python 3.11 ($PYTHON, python3.11 or python3) unless it exists.
make_venv() {
  local py="" candidate
  for candidate in ${PYTHON:-} python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      py=$candidate; break
    fi
  done
  [ -n "$py" ] || die "Python 3.11 is required but was not found (tried \$PYTHON, python3.11, python3); install it or set PYTHON=/path/to/python3.11"
  if [ ! -x "$VENV/bin/python" ]; then
    "$py" -m venv "$VENV" >"$LOG" 2>&1 || die "could not create $VENV with $py (see $LOG); on Debian install python3.11-venv"
  fi
}
