#!/usr/bin/env bash
# First run of the paper-scale path on a CUDA machine, in under 8 minutes:
#   bash benchmarks/gpu_check.sh
# 1. a Python: .venv (made by scripts/setup.sh when missing -- that needs PyPI, or a wheelhouse via
#    PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR; without either it falls back to python3 + PYTHONPATH=src and says so);
# 2. no CUDA device -> one line and exit 0 (CI, CPU machines);
# 3. step: benchmarks/gpu_step.py -- paper-scale CycleGAN (256 px, base 64, 6 blocks, WGAN-GP, batch 4)
#    images/s and peak GPU memory with AMP off and on;
# 4. study: benchmarks/gpu_study.py -- 4 trials x 0.25 GPU swept by Ray Tune (64 px, 50 steps), tracked in
#    MLflow, then evaluate_study on the GPU;
# 5. one summary block; exit status 0 only when every part passed.
# Each part runs under `timeout` inside a total budget (GPU_CHECK_BUDGET_S, default 470 s). Part logs go
# to GPU_CHECK_LOG_DIR (default a new /tmp/gpu_check.* folder). GPU_CHECK_DEVICE=cpu with
# GPU_CHECK_STEP_ARGS / GPU_CHECK_STUDY_ARGS (extra flags for the two modules) runs the parts on a CPU;
# GPU_CHECK_PYTHON=PATH uses that interpreter instead of .venv (no set-up).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
export RAY_USAGE_STATS_ENABLED=0 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1
left() { echo $((BUDGET - ($(date +%s) - T0))); }
say() { echo "gpu_check: $*"; }
NO_CUDA="gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing to check"

# ---------------------------------------------------------------- a Python with unmask's dependencies
SETUP=".venv present"
if [ -n "${GPU_CHECK_PYTHON:-}" ]; then
  PY=$GPU_CHECK_PYTHON SETUP="GPU_CHECK_PYTHON=$GPU_CHECK_PYTHON (no set-up)"
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
elif [ -x .venv/bin/python ] && [ -f .venv/.unmask-installed ]; then
  PY=.venv/bin/python
else
  if [ "$DEVICE" != cpu ] && ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
    echo "gpu_check: no CUDA device (no NVIDIA driver: no nvidia-smi, no /dev/nvidia*); nothing to check"
    exit 0
  fi
  index=${PIP_INDEX_URL:-https://pypi.org/simple}
  reach=$(python3 - "$index" <<'EOF' 2>&1
import os, socket, sys, urllib.parse
if os.environ.get("PIP_NO_INDEX") and os.environ.get("PIP_FIND_LINKS"):
    sys.exit(0)                                   # a local wheelhouse: no index needed
u = urllib.parse.urlsplit(os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or sys.argv[1])
try:
    socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout=5).close()
except OSError as e:
    print(f"{u.hostname}: {e}")
    sys.exit(1)
EOF
  )
  if [ $? -eq 0 ]; then
    say "no .venv: running scripts/setup.sh (installs from $index; several minutes)"
    t=$(date +%s)
    lim=$(($(left) - 120)); [ "$lim" -lt 60 ] && lim=60
    if timeout -k 10 "$lim" bash scripts/setup.sh; then
      PY=.venv/bin/python SETUP="installed by scripts/setup.sh in $(($(date +%s) - t)) s"
    else
      PY=python3 SETUP="FAILED: scripts/setup.sh (exit $?) after $(($(date +%s) - t)) s; fell back to python3"
    fi
  else
    PY=python3
    SETUP="FAILED: no .venv and the package index is unreachable ($reach), so scripts/setup.sh cannot install;
              fell back to $(command -v python3) with PYTHONPATH=src (parts fail on missing modules).
              Bring the dependencies: a wheelhouse (PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR) or a network."
    say "no .venv and $index is unreachable ($reach): cannot run scripts/setup.sh; trying python3 with PYTHONPATH=src"
  fi
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi

# ---------------------------------------------------------------- is there a CUDA device?
probe=$(timeout 120 "$PY" -c "
import torch
ok = torch.cuda.is_available()
print(torch.__version__, ok, torch.cuda.get_device_name(0) if ok else '-', sep='|')
print(round(torch.cuda.get_device_properties(0).total_memory / 2**30) if ok else 0)" 2>&1)
if [ $? -ne 0 ]; then
  say "FAILED: $PY cannot import torch: $(echo "$probe" | tail -n 1)"
  [ "$SETUP" = ".venv present" ] || echo "gpu_check: setup: $SETUP"
  exit 1
fi
IFS='|' read -r TORCH HAS_CUDA GPU_NAME <<<"$(echo "$probe" | head -n 1)"
GPU_GIB=$(echo "$probe" | sed -n 2p)
if [ "$HAS_CUDA" != True ] && [ "$DEVICE" != cpu ]; then
  echo "$NO_CUDA"
  exit 0
fi
CPU_NAME=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
LOG=${GPU_CHECK_LOG_DIR:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
mkdir -p "$LOG"
say "torch $TORCH on ${GPU_NAME} (${GPU_GIB} GiB), ${CPU_NAME:-CPU} x $(nproc); budget ${BUDGET} s; logs in $LOG"

# ---------------------------------------------------------------- the parts
# part NAME MAX_S CMD...: runs CMD under timeout (MAX_S, or what is left of the budget), output in
# $LOG/NAME.log; sets RC_NAME and SECS_NAME (RC 124/137: timed out, 200: skipped for lack of time)
part() {
  local name=$1 max=$2 t rc
  shift 2
  local lim=$(($(left) - 15))
  [ "$lim" -gt "$max" ] && lim=$max
  if [ "$lim" -lt 30 ]; then
    say "$name: skipped, only $(left) s of the budget left"
    eval "RC_$name=200 SECS_$name=0 LIM_$name=$lim"
    return
  fi
  say "$name: running (timeout ${lim} s): $*"
  t=$(date +%s)
  # SIGINT first: Tune then stops its trials and run_study shuts its Ray cluster down; SIGKILL 20 s later
  timeout -s INT -k 20 "$lim" "$@" >"$LOG/$name.log" 2>&1
  rc=$?
  eval "RC_$name=$rc SECS_$name=$(($(date +%s) - t)) LIM_$name=$lim"
  if [ "$rc" -ne 0 ]; then
    say "$name: exit $rc; last lines of $LOG/$name.log:"
    tail -n 25 "$LOG/$name.log" | sed 's/^/    /'
  fi
}

# shellcheck disable=SC2086  # the extra args are meant to split
part step 150 "$PY" benchmarks/gpu_step.py --device "$DEVICE" ${GPU_CHECK_STEP_ARGS:-}
if [ "$DEVICE" = cpu ]; then study_dev=(--device cpu --gpu 0); else study_dev=(--device "$DEVICE"); fi
# shellcheck disable=SC2086
part study 300 "$PY" benchmarks/gpu_study.py "${study_dev[@]}" ${GPU_CHECK_STUDY_ARGS:-}

# ---------------------------------------------------------------- one summary block
export LOG SETUP TORCH GPU_NAME GPU_GIB CPU_NAME PY RC_step SECS_step LIM_step RC_study SECS_study LIM_study
export NCPU=$(nproc) TOTAL=$(($(date +%s) - T0))
"$PY" - <<'EOF'
import json, math, os

env = os.environ
def result(name):
    """(parsed JSON of the part's last line, status text, passed)."""
    rc, secs, lim = int(env[f"RC_{name}"]), env[f"SECS_{name}"], env[f"LIM_{name}"]
    path = os.path.join(env["LOG"], f"{name}.log")
    lines = open(path, errors="replace").read().splitlines() if os.path.exists(path) else []
    data = next((json.loads(ln.split(": ", 1)[1]) for ln in reversed(lines)
                 if ln.startswith(f"gpu_{name}: {{")), None)
    if rc == 200:
        return data, "SKIPPED (no time left in the budget)", False
    if rc in (124, 137):
        return data, f"FAILED: timed out after {lim} s", False
    if rc != 0:
        why = "; ".join((data or {}).get("problems", [])) or next((ln.strip() for ln in reversed(lines) if ln.strip()), "")
        return data, f"FAILED (exit {rc}, {secs} s): {why[:300]}", False
    return data, f"ok ({secs} s)", True

def f(x, fmt="{:.2f}"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)

step, step_status, step_ok = result("step")
study, study_status, study_ok = result("study")
setup_ok = not env["SETUP"].startswith("FAILED")
print("=" * 28 + " gpu_check summary " + "=" * 28)
gpu = env["GPU_NAME"] if env["GPU_NAME"] != "-" else "none"
print(f"GPU      {gpu} ({env['GPU_GIB']} GiB); torch {env['TORCH']}; python {env['PY']}")
print(f"CPU      {env['CPU_NAME'] or 'unknown'} x {env['NCPU']}")
print(f"setup    {env['SETUP']}")
print(f"step     {step_status}")
if step:
    runs = step["runs"]
    off, on = runs.get("amp_off", {}), runs.get("amp_on", {})
    mib = lambda r: f(r.get("peak_mem_mib"), "{:.0f} MiB")
    print(f"         CycleGAN {step['adv_loss']}, {step['size']} px, base {step['base']} x {step['blocks']} blocks, "
          f"batch {step['batch']} on {step['device_name']}")
    print(f"         AMP off: {f(off.get('images_per_s'))} images/s, peak {mib(off)}"
          f"{'' if off.get('finite', True) else ', LOSSES NOT FINITE'}")
    print(f"         AMP on:  {f(on.get('images_per_s'))} images/s, peak {mib(on)}"
          f"{'' if on.get('finite', True) else ', LOSSES NOT FINITE'}")
    print(f"         AMP speed-up {f(step.get('amp_speedup'), '{:.2f}x')}")
print(f"study    {study_status}")
if study:
    print(f"         {study.get('finished', 0)}/{study['trials']} trials finished, {study['gpu_per_trial']:g} GPU + "
          f"{study['cpu_per_trial']:g} CPU each; Ray saw {f(study.get('ray_gpus'), '{:g}')} GPU(s), trials held up to "
          f"{f(study.get('max_gpu_held'), '{:g}')} GPU ({f(study.get('max_concurrent_trials'), '{:g}')} at once); "
          f"nvidia-smi peak {f(study.get('smi_max_mem_used_mib'), '{:.0f} MiB')}, {f(study.get('smi_max_util_pct'), '{:.0f}%')} util")
    best = study.get("best_trial") or {}
    print(f"         sweep {f(study.get('sweep_s'), '{:.0f}')} s, evaluate {f(study.get('evaluate_s'), '{:.0f}')} s, "
          f"wall {f(study.get('wall_s'), '{:.0f}')} s; evaluate PSNR of the best trial "
          f"{f(best.get('test_psnr'))} dB ({best.get('cell', 'n/a')}; input baseline "
          f"{f(study.get('eval_psnr_input_baseline'))} dB)")
failed = [n for n, ok in (("setup", setup_ok), ("step", step_ok), ("study", study_ok)) if not ok]
print(f"total    {env['TOTAL']} s; {'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}; logs in {env['LOG']}")
print("=" * 75)
raise SystemExit(1 if failed else 0)
EOF
