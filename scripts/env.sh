# Sourced by scripts/*.sh and .ci/run: the project's runtime environment (offline-safe defaults).
export PATH="$PWD/.venv/bin:$PATH"
export MLFLOW_DISABLE_TELEMETRY=true
export RAY_USAGE_STATS_ENABLED=0
export DO_NOT_TRACK=1
export DVC_NO_ANALYTICS=1
