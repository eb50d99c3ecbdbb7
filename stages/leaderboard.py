"""DVC stages `leaderboard` (one per entry of params.yaml's `leaderboard.champions`, `foreach` in
dvc.yaml) and `leaderboard_baselines`: see `unmask.pipeline.run_leaderboard`.

Usage: python stages/leaderboard.py STUDY|baselines
"""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("leaderboard", sys.argv[1:]))
