"""DVC stage `evaluate` (one per study, `foreach` in dvc.yaml): see `unmask.pipeline.run_evaluate`.

Usage: python stages/evaluate.py STUDY
"""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("evaluate", sys.argv[1:]))
