"""DVC stage `synthesize`: see `unmask.pipeline.run_synthesize`."""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("synthesize"))
