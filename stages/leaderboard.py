"""DVC stage `leaderboard`: see `unmask.pipeline.run_leaderboard`.

Usage: python stages/leaderboard.py
"""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("leaderboard"))
