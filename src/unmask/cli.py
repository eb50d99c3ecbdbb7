"""``unmask`` command line: one sub-command per pipeline stage (the same code ``dvc repro`` runs)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from unmask.config import load_params
from unmask.errors import UnmaskError


def _parser() -> argparse.ArgumentParser:
    from unmask.pipeline import STAGES

    p = argparse.ArgumentParser(
        prog="unmask",
        description="Face-mask removal research pipeline. `dvc repro` runs every stage in order; "
                    "these commands run one stage by hand.")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    p.add_argument("--root", default=".", help="project root holding data/ (default: .)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in STAGES.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return p


def run_stage(name: str, argv: list[str] | None = None) -> int:
    """Entry point of ``stages/<name>.py``: run one stage with params.yaml, one-line errors."""
    return main([*(argv if argv is not None else sys.argv[1:]), name])


def main(argv: list[str] | None = None) -> int:
    from unmask.pipeline import STAGES

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(args.params)
        fn, _ = STAGES[args.command]
        fn(params, Path(args.root), progress=not args.quiet)
    except UnmaskError as e:
        print(f"unmask {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
