#!/usr/bin/env bash
# One command on a fresh machine: install (if needed), then run the whole pipeline with `dvc repro`.
# Extra arguments go to `dvc repro` (e.g. a stage name, or --force).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
dvc repro "$@"
