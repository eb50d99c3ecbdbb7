#!/usr/bin/env bash
# Create .venv and install unmask with its test extras. Idempotent: re-installs only when
# pyproject.toml changed. Needs Python 3.11 and the package registry (torch comes from pip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.unmask-installed
MEDIAPIPE="mediapipe==0.10.21"   # the face finder (unmask.data.mesh_faces); see pyproject.toml for why --no-deps
want=$( (cat pyproject.toml; echo "$MEDIAPIPE") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing unmask and its dependencies into .venv (first time: several minutes)"
  # pip's notes about absent local index folders are noise here; real errors still fail the script
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -m pip install -q --no-deps "$MEDIAPIPE" 2>&1 | grep -v "is ignored: it is neither" || true
  # torch, mlflow, one OpenCV and mediapipe's face mesh must import together
  .venv/bin/python -c "import unmask, torch, dvc, dlib, mlflow, cv2
from unmask.data.mesh_faces import available
assert available(), 'mediapipe face mesh does not import'" || { echo "setup: install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
