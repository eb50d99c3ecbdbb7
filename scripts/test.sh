#!/usr/bin/env bash
# One command on a fresh machine: install (if needed), then run the test suite (slow tests excluded;
# `bash scripts/test.sh -m slow` runs only those, `-m ''` runs everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
set +e
python -m pytest "$@"
rc=$?
set -e
[ "$rc" -eq 5 ] && { echo "no tests collected" >&2; exit 1; }
exit "$rc"
