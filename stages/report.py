"""DVC stage `report`: see `unmask.pipeline.run_report`."""

import sys

from unmask.cli import run_stage

if __name__ == "__main__":
    sys.exit(run_stage("report"))
