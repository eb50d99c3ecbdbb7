"""``unmask`` command line: one sub-command per pipeline stage (the same code ``dvc repro`` runs),
plus ``unmask ui``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from unmask.config import load_params
from unmask.errors import UnmaskError


def _parser() -> argparse.ArgumentParser:
    from unmask.pipeline import STAGES, STUDY_STAGES

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
    for name, (_, help_text) in STUDY_STAGES.items():
        sub.add_parser(name, help=help_text, description=help_text).add_argument(
            "study", help="a study name under `studies:` in params.yaml")
    ui = sub.add_parser("ui", help="MLflow UI over the project's tracking store, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    return p


def run_stage(name: str, args: list[str] | None = None) -> int:
    """Entry point of ``stages/<name>.py``: run one stage with params.yaml, one-line errors;
    ``args`` are the stage's own (the study name for per-study stages)."""
    return main([name, *(args or [])])


def _sweep_in_loopback_netns(params, argv: list[str]) -> int | None:
    """A sweep that starts its own Ray cluster re-runs itself in a loopback-only network namespace."""
    from unmask.studies import netns, parse_study_params

    sweep = parse_study_params(params).sweep
    if not sweep.isolate_network or sweep.address or os.environ.get("RAY_ADDRESS"):
        return None
    return netns.rerun_isolated(argv)


def main(argv: list[str] | None = None) -> int:
    from unmask.pipeline import STAGES, STUDY_STAGES

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = Path(args.root)
    try:
        params = load_params(args.params)
        if args.command == "ui":
            from unmask.studies import parse_study_params
            from unmask.tracking import resolve_artifact_root, resolve_uri
            from unmask.ui import serve_ui

            tracking = parse_study_params(params).tracking
            return serve_ui(resolve_uri(tracking, root.resolve()), resolve_artifact_root(tracking, root.resolve()),
                            port=args.port)
        if args.command == "sweep":
            rc = _sweep_in_loopback_netns(params, argv if argv is not None else sys.argv[1:])
            if rc is not None:
                return rc
        if args.command in STUDY_STAGES:
            fn, _ = STUDY_STAGES[args.command]
            fn(params, args.study, root, progress=not args.quiet)
        else:
            fn, _ = STAGES[args.command]
            fn(params, root, progress=not args.quiet)
    except UnmaskError as e:
        print(f"unmask {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
