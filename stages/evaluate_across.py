"""DVC stage `evaluate_across` (one per entry of params.yaml's `across`, `foreach` in dvc.yaml): see
`unmask.pipeline.run_evaluate_across`.

Usage: python stages/evaluate_across.py STUDY OTHER
"""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("evaluate_across", sys.argv[1:]))
