#!/usr/bin/env bash
# Create .venv and install unmask with its test extras. Idempotent: re-installs only when
# pyproject.toml changed. Needs Python 3.11 and the package registry (torch comes from pip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.unmask-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing unmask and its dependencies into .venv (first time: several minutes)"
  # pip's notes about absent local index folders are noise here; real errors still fail the script
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -c "import unmask, torch, dvc, dlib" || { echo "setup: install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
