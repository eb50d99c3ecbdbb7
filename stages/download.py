"""DVC stage `download`: see `unmask.pipeline.run_download`."""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("download"))
