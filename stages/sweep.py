"""DVC stage `sweep` (one per study, `foreach` in dvc.yaml): see `unmask.pipeline.run_sweep`.

Usage: python stages/sweep.py STUDY
"""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("sweep", sys.argv[1:]))
