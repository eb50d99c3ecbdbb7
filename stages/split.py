"""DVC stage `split`: see `unmask.pipeline.run_split`."""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("split"))
