"""DVC stage `align`: see `unmask.pipeline.run_align`."""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("align"))
