"""``unmask`` command line: one sub-command per pipeline stage (the same code ``dvc repro`` runs),
plus ``unmask ui``."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from unmask.config import load_params
from unmask.errors import WRITE_ERRNOS, UnmaskError
from unmask.io.atomic import output_name


ACROSS_STAGE = "evaluate_across"   # a study stage with a second, optional argument: the study it reads


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
        stage = sub.add_parser(name, help=help_text, description=help_text)
        stage.add_argument("study", help="a study in `leaderboard.champions`, or 'baselines'" if name == "leaderboard"
                           else "a study name under `studies:` in params.yaml")
        if name == ACROSS_STAGE:
            stage.add_argument("other", nargs="?", default=None,
                               help="the study it reads (default: each one its champions and mask_from name)")
    ui = sub.add_parser("ui", help="MLflow UI over the project's tracking store, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    inf = sub.add_parser("infer", help="restore the faces in your own photos of masked people",
                         description="Detect, align, unmask and blend back every face of a photo or a folder "
                                     "of photos; unreadable photos and photos without a face are listed in "
                                     "OUT/rejected.csv and the run goes on.")
    inf.add_argument("photos", help="a photo or a folder of photos")
    inf.add_argument("--out", required=True, help="folder for the restored photos (PNG, same names)")
    inf.add_argument("--model", default=None,
                     help="a trial checkpoint (.pt) or STUDY:champion (default: the best champion under "
                          "results/ that takes what you give: with --mask a paired inpainter may be chosen)")
    inf.add_argument("--mask", default=None, help="the occlusion mask of the one photo (white = occluded)")
    inf.add_argument("--segmenter", default=None,
                     help="the mask segmenter, STUDY:champion or a checkpoint (default: seed001_segmentation's "
                          "champion when it has results; 'none': the lower face from the landmarks)")
    inf.add_argument("--side-by-side", action="store_true", help="write input | region | output")
    inf.add_argument("--face-crop", action="store_true",
                     help="each photo is a crop of one face: where no detector finds it, take the crop as the face")
    br = sub.add_parser("benchmark-real", help="the leaderboard on a folder of your real unmasked face photos",
                        description="Align the photos (face mesh), draw the project's masks on them with their "
                                    "exact binary masks, and score every leaderboard champion and baseline on "
                                    "them -> reports/leaderboard_real.md (working files in "
                                    "results/benchmark_real/). The folder is only read.")
    br.add_argument("folder", help="a folder of real, unmasked face photos (one face each)")
    br.add_argument("--limit", type=int, default=None, help="use at most this many photos")
    ed = sub.add_parser("edit", help="edit a face by its parsing map (seed 003: mask-to-face, one component's "
                                     "style, a painted map)",
                        description="Seed 003's editor on one aligned face: a test face (test:N) or a photo "
                                    "(its largest face, aligned as infer does, its map from the face parser). "
                                    "A component swap or a painted map changes only the edited region (grown "
                                    "by 2 px); every other pixel is the input's.")
    ed.add_argument("face", help="test:N (the N-th test face) or a photo")
    ed.add_argument("--out", required=True, help="the PNG to write (never one of the inputs)")
    how = ed.add_mutually_exclusive_group()
    how.add_argument("--swap-mask", metavar="OTHER", default=None,
                     help="this face's appearance generated on OTHER's map and background (mask-to-face)")
    how.add_argument("--component", choices=("eyes", "mouth", "skin", "hair"), default=None,
                     help="take this component's appearance from --from OTHER")
    how.add_argument("--edit-map", metavar="MAP.png", default=None,
                     help="generate the face on this painted map (grey levels 0-10 or --save-map's colours)")
    ed.add_argument("--from", dest="source", metavar="OTHER", default=None, help="the face --component takes from")
    ed.add_argument("--save-map", metavar="MAP.png", default=None,
                    help="also write the face's label map in colour (to paint and give back as --edit-map)")
    ed.add_argument("--model", default=None, help="the editor, STUDY:champion or a checkpoint "
                                                  "(default: seed003_variants:champion)")
    ed.add_argument("--parser", default=None, help="the face parser for photos (default: seed003_parser:champion)")
    ed.add_argument("--whole", action="store_true", help="write the generated face whole, not blended into the input")
    ed.add_argument("--side-by-side", action="store_true", help="write the inputs, maps and output in one row")
    ed.add_argument("--face-crop", action="store_true",
                    help="a photo is a crop of one face: where no detector finds it, take the crop as the face")
    return p


def run_stage(name: str, args: list[str] | None = None) -> int:
    """Entry point of ``stages/<name>.py``: run one stage with params.yaml, one-line errors;
    ``args`` are the stage's own (the study name for per-study stages)."""
    return main([name, *(args or [])])


# set in a sweep re-run by _sweep_in_own_session: the driver runs here, in-process
SWEEP_DRIVER_FLAG = "UNMASK_SWEEP_DRIVER"


def _sweep_in_loopback_netns(params, argv: list[str]) -> int | None:
    """A sweep that starts its own Ray cluster re-runs itself in a loopback-only network namespace."""
    from unmask.studies import netns, parse_study_params

    sweep = parse_study_params(params).sweep
    if not sweep.isolate_network or sweep.address or os.environ.get("RAY_ADDRESS"):
        return None
    return netns.rerun_isolated(argv)


def _rerun_sweep(params, argv: list[str]) -> int | None:
    """The exit status of the sweep re-run in a loopback-only network namespace or, failing that, in a
    session of its own; None in such a re-run (the driver runs here)."""
    if os.environ.get(SWEEP_DRIVER_FLAG) == "1":
        return None
    rc = _sweep_in_loopback_netns(params, argv)
    return rc if rc is not None else _sweep_in_own_session(argv)


def _sweep_in_own_session(argv: list[str]) -> int | None:
    """A sweep not isolated in a network namespace (which has its own session already) re-runs itself in
    a session of its own, so that SIGTERM to the process group (a scheduler, ``kill -TERM -- -PGID``)
    stops it as gracefully as Ctrl-C: see :func:`run_in_own_session`. (In-process, a SIGTERM handler
    would not do: ``ray.init`` replaces it with one that exits at once, without Tune saving its state.)"""
    from unmask.studies import netns

    if netns.inside() or os.environ.get(SWEEP_DRIVER_FLAG) == "1":
        return None
    return run_in_own_session([sys.executable, "-m", "unmask.cli", *argv],
                              env={**os.environ, SWEEP_DRIVER_FLAG: "1"})


def run_in_own_session(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` in a new session and return its exit status (128 + N when signal N killed it).

    SIGINT and SIGTERM to this process (a Ctrl-C, or a signal to the process group from a script or a
    scheduler) reach the child once, as SIGINT: the signal on which Tune saves the sweep's state and
    returns early, so the next run resumes. The child's own children (Ray's processes) get nothing
    from the terminal or the group."""
    child: list[subprocess.Popen] = []
    pending: list[int] = []

    def forward(signum, frame) -> None:
        if not child:
            pending.append(signum)
            return
        try:
            os.kill(child[0].pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        child.append(subprocess.Popen(cmd, env=env, start_new_session=True))
        if pending:
            forward(pending[0], None)
        rc = child[0].wait()
        return 128 - rc if rc < 0 else rc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def os_error_line(err: OSError) -> str:
    """One line for an OSError with a file name: ``cannot write data/aligned: Permission denied``
    (the output an atomic write was making, not its temporary file), ``<path>: <reason>`` otherwise."""
    name = err.filename2 if err.filename2 is not None else err.filename
    path = Path(os.fsdecode(name))
    output = output_name(path.name)   # an atomic write's temporary sibling (unmask.io.atomic)
    if output:
        path = path.with_name(output)
    reason = err.strerror or str(err)
    if err.errno in WRITE_ERRNOS:
        return f"cannot write {path}: {reason}"
    if err.errno in (errno.EACCES, errno.EPERM):
        if not os.path.lexists(path) or os.access(path, os.R_OK):
            return f"cannot write {path}: {reason}"
        return f"cannot access {path}: {reason}"
    return f"{path}: {reason}"


def main(argv: list[str] | None = None) -> int:
    from unmask.pipeline import STAGES, STUDY_STAGES

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = Path(args.root)
    try:
        # infer with --model needs no params file: it can run on a photo anywhere
        needs_params = not (args.command == "infer" and args.model) and args.command != "edit"
        params = load_params(args.params) if needs_params else None
        if args.command == "ui":
            from unmask.studies import parse_study_params
            from unmask.tracking import check_store, resolve_artifact_root, resolve_uri
            from unmask.ui import serve_ui

            tracking = parse_study_params(params).tracking
            uri = resolve_uri(tracking, root.resolve())
            check_store(uri)
            return serve_ui(uri, resolve_artifact_root(tracking, root.resolve()), port=args.port)
        if args.command == "infer":
            from unmask.infer import default_model, default_segmenter, infer, load_unmasker
            from unmask.studies import parse_study_params

            seg_spec = None if args.mask else (args.segmenter or default_segmenter(root))
            segmenter = load_unmasker(seg_spec, root, role="segmenter") if seg_spec and seg_spec != "none" else None
            spec = args.model or default_model(root, {n: s.kinds for n, s in parse_study_params(params).studies.items()},
                                               need_mask_free=args.mask is None and segmenter is None)
            model = load_unmasker(spec, root, role="model")
            if segmenter is not None:
                print(f"unmask infer: masks predicted by {segmenter.name}", file=sys.stderr)
            print(f"unmask infer: model {model.name} ({model.size} px, input "
                  f"{model.trainer.model_input})", file=sys.stderr)
            written, rejected = infer(args.photos, args.out, model, mask=args.mask, side=args.side_by_side,
                                      progress=not args.quiet, segmenter=segmenter, face_crop=args.face_crop)
            listed = Path(args.out) / "rejected.csv"
            if written == 0 and rejected:
                first = rejected[0]
                raise UnmaskError(f"{first[0]}: {first[1]}" if len(rejected) == 1 else
                                  f"no photo restored: {len(rejected)} rejected (first: {first[0]}: {first[1]}; "
                                  f"see {listed})")
            print(f"unmask infer: {written} photo(s) written to {args.out}; {len(rejected)} rejected "
                  f"(see {listed})", file=sys.stderr)
            return 0
        if args.command == "benchmark-real":
            from unmask.pipeline import run_benchmark_real

            for p in run_benchmark_real(params, args.folder, root, progress=not args.quiet, limit=args.limit):
                print(f"unmask benchmark-real: wrote {p}", file=sys.stderr)
            return 0
        if args.command == "edit":
            from unmask.edit import run_edit

            for line in run_edit(args.face, args.out, root, model=args.model, parser=args.parser,
                                 swap_mask=args.swap_mask, component=args.component, source=args.source,
                                 edit_map=args.edit_map, save_map=args.save_map, side=args.side_by_side,
                                 whole=args.whole, face_crop=args.face_crop):
                print(line, file=sys.stderr)
            return 0
        if args.command == "sweep":
            rc = _rerun_sweep(params, argv if argv is not None else sys.argv[1:])
            if rc is not None:
                return rc
        if args.command == ACROSS_STAGE:
            fn, _ = STUDY_STAGES[args.command]
            fn(params, args.study, args.other, root, progress=not args.quiet)
        elif args.command in STUDY_STAGES:
            fn, _ = STUDY_STAGES[args.command]
            fn(params, args.study, root, progress=not args.quiet)
        else:
            fn, _ = STAGES[args.command]
            fn(params, root, progress=not args.quiet)
    except UnmaskError as e:
        print(f"unmask {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:
            raise
        print(f"unmask {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unmask {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
