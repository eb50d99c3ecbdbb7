#!/usr/bin/env bash
# Compare the results of two runs of the pipeline (two project folders after `dvc repro`): every
# results/*/metrics.json byte for byte, and every table row (lines starting with "|") of every
# reports/*.md. Prose (wording, footnotes) is not compared. Prints the differences; exit 0 when none.
# Usage: bash scripts/compare_runs.sh RUN_A RUN_B
set -uo pipefail
a=${1:?usage: compare_runs.sh RUN_A RUN_B}; b=${2:?usage: compare_runs.sh RUN_A RUN_B}
rc=0
for f in "$a"/results/*/metrics.json "$b"/results/*/metrics.json; do
  rel=${f#"$a"/}; rel=${rel#"$b"/}
  [ -e "$a/$rel" ] && [ -e "$b/$rel" ] || { echo "only in one run: $rel"; rc=1; }
done
for f in "$a"/results/*/metrics.json; do
  rel=${f#"$a"/}
  [ -e "$b/$rel" ] && { diff -u --label "A/$rel" --label "B/$rel" "$f" "$b/$rel" || rc=1; }
done
for f in "$a"/reports/*.md; do
  rel=${f#"$a"/}
  case "$rel" in reports/convergence.md) continue ;; esac   # a benchmark's page, not the pipeline's
  [ -e "$b/$rel" ] || { echo "only in A: $rel"; rc=1; continue; }
  diff -u --label "A/$rel (tables)" --label "B/$rel (tables)" <(grep '^|' "$f") <(grep '^|' "$b/$rel") || rc=1
done
exit $rc
