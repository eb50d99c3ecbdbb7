"""The pipeline stages as functions: where each stage reads, where it writes, what it logs.

``stages/*.py`` (what ``dvc.yaml`` runs) and the ``unmask`` CLI both call these, so a stage behaves the
same whichever way it is started. Library code below takes typed config sections, never params.yaml.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from unmask.config import Params
from unmask.errors import UnmaskError
from unmask.io.atomic import atomic_dir, write_text

log = logging.getLogger("unmask")

RAW_DIR = Path("data/raw")
ALIGNED_DIR = Path("data/aligned")
SYNTH_DIR = Path("data/synth")
SPLITS_DIR = Path("data/splits")
RESULTS_DIR = Path("results")
REPORTS_DIR = Path("reports")
# files in reports/ that benchmarks write (benchmarks/convergence.py); the report stage keeps them
# written by commands other than the report stage (benchmarks, `unmask benchmark-real`): kept as they are
BENCHMARK_REPORTS = ("convergence.md", "convergence.png", "convergence.json", "leaderboard_real.md",
                     "leaderboard_real.png")
LEADERBOARD_PAGE = "leaderboard"


def _under_root(path: str | None, root: Path) -> str | None:
    """A path params.yaml gives, as the stages read it: relative to the project root (``--root``), not
    to the working folder; an absolute path or a URI is the user's own and kept."""
    from unmask.io.locations import resolve_location

    return resolve_location(path, root) if path else path


def _data_config(params: Params, root: Path):
    """``params.data`` with its folders (cache_dir, dataset_root, folder.path) under ``root``."""
    d = params.data
    return d.model_copy(update={"cache_dir": _under_root(d.cache_dir, root),
                                "dataset_root": _under_root(d.dataset_root, root),
                                "folder": d.folder.model_copy(update={"path": _under_root(d.folder.path, root)})})


def _write_summary(path: Path, report) -> dict:
    summary = report.to_dict()
    write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def run_download(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.sources import download_source

    out = root / RAW_DIR
    report = download_source(_data_config(params, root), params.seed, out)
    summary = _write_summary(out / "summary.json", report)
    log.info("download: %s", summary)
    return summary


def run_align(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.align import align_dataset

    out = root / ALIGNED_DIR
    report = align_dataset(root / RAW_DIR, out, params.align, progress=progress)
    summary = _write_summary(out / "summary.json", report)
    log.info("align: %s, %.1f images/s (rejected images and reasons: %s)", summary,
             report.images_per_second, out / "rejected.csv")
    return summary


def run_synthesize(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.synthesize import synthesize_dataset

    out = root / SYNTH_DIR
    cfg = params.synthesize.model_copy(update={"templates": _under_root(params.synthesize.templates, root)})
    report = synthesize_dataset(root / ALIGNED_DIR, out, cfg, params.seed, progress=progress)
    summary = _write_summary(out / "summary.json", report)
    log.info("synthesize: %s", summary)
    return summary


def run_split(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.split import split_dataset

    report = split_dataset(root / SYNTH_DIR, root / SPLITS_DIR, params.split, params.seed, progress=progress,
                           source=params.source)
    summary = report.to_dict()
    log.info("split: rows %s, identities %s (%s), largest identity %d photos (%.1f %%), identity overlap %s",
             summary["rows"], summary["identities"], summary["identity_method"],
             summary["largest_identity_photos"], 100 * summary["largest_identity_share"],
             summary["identity_overlap"])
    return summary


def run_sweep(params: Params, study: str, root: Path = Path("."), progress: bool = True) -> Path:
    from unmask.studies import parse_study_params
    from unmask.studies.sweep import run_study

    return run_study(study, parse_study_params(params), root / SPLITS_DIR, root / RESULTS_DIR,
                     progress=progress, root=root, data_source=params.data.source)


def _first_trial(sp, study: str):
    """The first trial of ``study`` as its sweep expands it (a grid cell's train, not the study's bare
    ``train``, which may not be a valid configuration alone: seed004_losses sets its weights per cell)."""
    from unmask.studies.grid import expand_study

    return expand_study(sp, study)[0]


def metric_suite(sp, root: Path, study: str):
    """The metrics the evaluate stages compute for ``study``: those that need no weights, plus the
    weighted ones shown by default and those its ``metrics`` list names, with weights from
    ``reports.lpips_weights_dir`` (relative to the project root) or their default places, at the
    study's image size."""
    from unmask.catalog.metrics import DEFAULT_SHOWN
    from unmask.metrics import MetricSuite

    weights = _under_root(sp.reports.lpips_weights_dir, root)
    cfg = sp.study(study)
    size = _first_trial(sp, study)["image_size"]
    names = [*DEFAULT_SHOWN, *(cfg.metrics or [])]   # every study measures the default ones (LPIPS)
    return MetricSuite(str(weights) if weights else None, names=names, image_size=size)


def study_trainer(sp, study: str):
    """The trainer class of ``study``'s trials (its resolved ``train.framework``)."""
    from unmask.training import trainer_class

    return trainer_class(_first_trial(sp, study)["train"]["framework"])


def run_evaluate(params: Params, study: str, root: Path = Path("."), progress: bool = True) -> Path:
    import torch

    from unmask.evaluation.summary import METRICS_FILE, write_metrics_json
    from unmask.evaluation.evaluate import evaluate_study, read_trials
    from unmask.studies import parse_study_params

    sp = parse_study_params(params)
    cfg = sp.study(study)
    out = root / RESULTS_DIR / study
    trials = out / "trials.parquet"
    if not trials.is_file():
        raise UnmaskError(f"{trials}: missing; run the sweep of study {study!r} first (unmask sweep {study})")
    # read_trials: a damaged table is one line naming it. Paths in the table (checkpoint) and in
    # params.yaml (lpips_weights_dir) are relative to the project root, not to the working directory.
    table = evaluate_study(read_trials(trials), root / SPLITS_DIR / "test", cfg.test_kinds or cfg.kinds, cfg.baselines,
                           metric_suite(sp, root, study), out, n_samples=sp.reports.n_samples,
                           device="cuda" if torch.cuda.is_available() else "cpu", progress=progress, root=root,
                           trainer=study_trainer(sp, study))
    write_metrics_json(table, out / METRICS_FILE, study)
    log.info("evaluate: %s -> %s, %s", study, out / "eval.parquet", out / METRICS_FILE)
    return out


def run_evaluate_across(params: Params, study: str, other: str | None = None, root: Path = Path("."),
                        progress: bool = True) -> list[Path]:
    """Measure what ``study`` reads of study ``other``'s models (each study it reads when None) into
    ``results/across/<study>/<other>/``: replaced whole, or left as it was when the measuring fails."""
    from unmask.evaluation.across import across_dir, measure_across
    from unmask.studies import parse_study_params

    sp = parse_study_params(params)
    cfg = sp.study(study)
    reads = cfg.reads()
    if other is not None and other not in reads:
        raise UnmaskError(f"{params.source}: studies.{study} does not read study {other!r} (its champions and "
                          f"mask_from: {', '.join(reads) or 'none'})")
    suite = metric_suite(sp, root, study)
    outs = []
    for name in [other] if other is not None else reads:
        out = across_dir(root / RESULTS_DIR, study, name)
        log.info("evaluate_across: %s reads %s", study, name)
        with atomic_dir(out) as tmp:
            measure_across(study, cfg, name, root / RESULTS_DIR, root / SPLITS_DIR / "test", tmp, root, suite,
                           n_samples=sp.reports.n_samples)
        outs.append(out)
    log.info("evaluate_across: -> %s", ", ".join(map(str, outs)))
    return outs


def _evaluated(sp, results: Path) -> tuple[dict, list[str]]:
    """The studies whose results the report can render (evaluated, with what they read of others) and
    the names of the others."""
    from unmask.evaluation.across import across_dir
    from unmask.evaluation.evaluate import EVAL_FILE

    ready, missing = {}, []
    for name, study in sp.studies.items():
        if (results / name / EVAL_FILE).is_file() and all(
                across_dir(results, name, other).is_dir() for other in study.reads()):
            ready[name] = study
        else:
            missing.append(name)
    return ready, missing


BASELINES_PART = "baselines"   # the leaderboard part that measures the classical baselines


def run_leaderboard(params: Params, part: str, root: Path = Path("."), progress: bool = True) -> Path:
    """Measure one part of ``params.yaml``'s ``leaderboard`` on the test faces into
    ``results/leaderboard/<part>/`` (replaced whole, or left as it was on failure): a champion study
    (its champion's seeds, and end to end with ``mask_from``'s segmenter), or ``baselines`` (the
    classical baselines, Telea end to end too). One DVC stage per part, so a re-trained champion
    re-measures its own row alone."""
    from unmask.evaluation.leaderboard import LEADERBOARD_DIR, measure_leaderboard, write_leaderboard
    from unmask.studies import parse_study_params

    sp = parse_study_params(params)
    lb = sp.leaderboard
    if lb is None:
        raise UnmaskError(f"{params.source}: no `leaderboard` section (which champions to rank)")
    if part != BASELINES_PART and part not in lb.champions:
        raise UnmaskError(f"{params.source}: leaderboard.champions has no study {part!r} (have: "
                          f"{', '.join(lb.champions)}; or {BASELINES_PART!r})")
    champions = [] if part == BASELINES_PART else [part]
    baselines = lb.baselines if part == BASELINES_PART else []
    out = root / RESULTS_DIR / LEADERBOARD_DIR / part
    scores, info = measure_leaderboard(champions, baselines, lb.mask_from, lb.end_to_end_baselines,
                                       root / RESULTS_DIR, root / SPLITS_DIR / "test", lb.kinds, lb.image_size,
                                       root, log=log.info if progress else (lambda s: None))
    info["data_source"] = params.data.source
    with atomic_dir(out) as tmp:
        write_leaderboard(scores, info, tmp)
    log.info("leaderboard: %s: %d rows on %d faces -> %s", part, len(info["methods"]), info["n_faces"], out)
    return out


BENCHMARK_REAL_DIR = RESULTS_DIR / "benchmark_real"
REAL_PAGE = "leaderboard_real"


def run_benchmark_real(params: Params, folder: str | Path, root: Path = Path("."), progress: bool = True,
                       limit: int | None = None) -> list[Path]:
    """The leaderboard on real faces: the unmasked photos of ``folder`` aligned, the project's masks drawn
    on them (``synthesize`` of params, the leaderboard's kinds), every champion and baseline scored as on
    the synthetic split. Working files in ``results/benchmark_real/`` (replaced whole); the page in
    ``reports/leaderboard_real.md`` and ``.png``. ``folder`` is only read."""
    import tempfile

    from unmask.evaluation.leaderboard import measure_leaderboard, write_leaderboard
    from unmask.evaluation.real_faces import prepare_real_test
    from unmask.reports.leaderboard import render_leaderboard
    from unmask.studies import parse_study_params

    sp = parse_study_params(params)
    lb = sp.leaderboard
    if lb is None:
        raise UnmaskError(f"{params.source}: no `leaderboard` section (which champions to rank)")
    kinds = {k: w for k, w in params.synthesize.kinds.items() if not lb.kinds or k in lb.kinds}
    synth = params.synthesize.model_copy(update={"kinds": kinds or params.synthesize.kinds})
    out = root / BENCHMARK_REAL_DIR
    src = Path(folder).resolve()
    for mine in (out.resolve(), (root / REPORTS_DIR).resolve()):
        if src == mine or mine in src.parents or src in mine.parents:
            raise UnmaskError(f"{folder}: overlaps {mine}, which benchmark-real replaces; give a folder of "
                              "photos elsewhere")
    # the data steps replace their own folders atomically, which cannot happen inside another atomic
    # folder (both lock it): they run in a plain working folder, moved into place whole at the end
    (root / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".benchmark_real-work-", dir=root / RESULTS_DIR))
    try:
        faces = prepare_real_test(folder, work, params.align, synth, params.seed, limit, progress)
        log.info("benchmark-real: %d photos, %d aligned, %d test faces (rejected: %s)", faces.photos,
                 faces.aligned, faces.faces, faces.rejected or "none")
        scores, info = measure_leaderboard(lb.champions, lb.baselines, lb.mask_from, lb.end_to_end_baselines,
                                           root / RESULTS_DIR, faces.test_dir, lb.kinds, lb.image_size, root,
                                           log=log.info if progress else (lambda s: None))   # every part
        info.update({"folder": str(folder), "photos": faces.photos, "aligned": faces.aligned,
                     "rejected": faces.rejected})
        write_leaderboard(scores, info, work / "leaderboard")
        with atomic_dir(out) as tmp:
            for child in work.iterdir():
                os.replace(child, tmp / child.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reports = root / REPORTS_DIR
    reports.mkdir(parents=True, exist_ok=True)
    line = (f"{faces.photos} real unmasked photos of `{Path(folder).name}/` ({faces.aligned} aligned at "
            f"{params.align.size} px by the face finder; rejected: "
            + (", ".join(f"{k} {v}" for k, v in sorted(faces.rejected.items())) or "none")
            + f"), the project's masks drawn on each with their exact binary masks (seed {params.seed}); "
            "every model was trained on synthetic faces only")
    with tempfile.TemporaryDirectory(dir=reports, prefix=".real-") as tmp_reports:
        written = render_leaderboard(scores, info, Path(tmp_reports), REAL_PAGE,
                                     "Leaderboard on real faces: does training on synthetic faces transfer?",
                                     line, {n: s.title for n, s in sp.studies.items()})
        final = []
        for p in written:
            os.replace(p, reports / p.name)
            final.append(reports / p.name)
    log.info("benchmark-real: -> %s", ", ".join(map(str, final)))
    return final


def _data_line(params: Params, info: dict) -> str:
    kinds = ", ".join(info.get("kinds", []))
    return (f"the pipeline's test split (`data.source: {params.data.source}`, aligned at "
            f"{params.align.size} px; occlusion kinds: {kinds}), identities disjoint from every study's training")


def run_report(params: Params, root: Path = Path("."), progress: bool = True) -> list[Path]:
    """Render the tables and figures of every evaluated study (and the leaderboard, when measured) from
    results/ into reports/ (measures nothing). Studies not evaluated yet are listed, and their earlier
    pages kept; with none evaluated it is an error."""
    from unmask.evaluation.leaderboard import LEADERBOARD_DIR, load_leaderboard
    from unmask.reports.figures import write_reports
    from unmask.reports.leaderboard import render_leaderboard
    from unmask.studies import parse_study_params
    from unmask.tracking import log_reports_to_parents

    sp = parse_study_params(params)
    results = root / RESULTS_DIR
    ready, missing = _evaluated(sp, results)
    if not ready:
        raise UnmaskError(f"{results}: no study of {params.source} is evaluated yet (run `dvc repro`, or "
                          f"`unmask sweep STUDY` then `unmask evaluate STUDY`)")
    if missing:
        log.warning("report: %d of %d studies are not evaluated yet, left out: %s", len(missing),
                    len(sp.studies), ", ".join(missing))
    reports = root / REPORTS_DIR
    with atomic_dir(reports) as tmp:   # reports/ is replaced whole, or left as it was when a study fails
        for name in BENCHMARK_REPORTS:   # written by benchmarks, not by this stage: kept
            if (reports / name).is_file():
                shutil.copy2(reports / name, tmp / name)
        written = write_reports(results, tmp, ready)
        if sp.leaderboard is not None and (results / LEADERBOARD_DIR).is_dir():
            scores, info = load_leaderboard(results / LEADERBOARD_DIR,
                                            [*sp.leaderboard.champions, BASELINES_PART])
            written += render_leaderboard(scores, info, tmp, LEADERBOARD_PAGE,
                                          "Leaderboard: every paper's methods on the same synthetic test faces",
                                          _data_line(params, info), {n: s.title for n, s in sp.studies.items()})
        if missing:
            _note_missing(tmp, missing, params.source)
        kept = _keep_other_studies(reports, tmp, ready, params.source)
    written = [reports / p.relative_to(tmp) for p in written]
    log_reports_to_parents(sp, root, results, reports)
    log.info("report: %d files in %s", len(written), root / REPORTS_DIR)
    return written


def _note_missing(tmp: Path, missing: list[str], source: str) -> None:
    index = tmp / "README.md"
    text = index.read_text() if index.is_file() else ""
    text += ("\n## Not evaluated yet\n\nIn " + Path(source).name + " but without results to render (run their "
             "sweep and evaluate stages): " + ", ".join(f"`{n}`" for n in missing) + ".\n")
    write_text(index, text)


STUDY_FIGURES = ("{}.png", "{}_curves.png", "{}_search.png", "{}_stages.png")


def _keep_other_studies(reports: Path, tmp: Path, studies, source: str) -> list[str]:
    """Carry the pages (and figures) of studies that this params file does not list -- a report run with
    ``--params other.yaml`` never deletes the others' -- say so, and list them in the index."""
    if not reports.is_dir():
        return []
    kept = []
    for page in sorted(reports.glob("*.md")):
        name = page.stem
        if (page.name == "README.md" or page.name in BENCHMARK_REPORTS or name in studies
                or name == LEADERBOARD_PAGE or not page.is_file()):
            continue
        for f in [page.name, *(pattern.format(name) for pattern in STUDY_FIGURES)]:
            if (reports / f).is_file() and not (tmp / f).exists():
                shutil.copy2(reports / f, tmp / f)
        kept.append(name)
    if kept:
        log.warning("report: kept %d page(s) of studies not in %s, as they were: %s (delete reports/NAME.md "
                    "and its figures to drop one)", len(kept), source, ", ".join(kept))
        index = tmp / "README.md"
        text = index.read_text() if index.is_file() else ""
        text += ("\n## Kept from an earlier report\n\nNot rendered by this run (not in " + Path(source).name + ", or not evaluated yet), kept as they were: "
                 + ", ".join(f"[{n}]({n}.md)" for n in kept) + ".\n")
        write_text(index, text)
    return kept


STAGES = {
    "download": (run_download, "fetch or generate face photos -> data/raw/"),
    "align": (run_align, "FFHQ-style alignment from 68 landmarks -> data/aligned/"),
    "synthesize": (run_synthesize, "draw occlusions with exact masks -> data/synth/"),
    "split": (run_split, "identity-disjoint train/val/test and unpaired domains -> data/splits/"),
    "report": (run_report, "comparison tables and figures of every study from results/ -> reports/"),
}
DATA_STAGES = ("download", "align", "synthesize", "split")
# stages run once per study: `unmask sweep STUDY`
STUDY_STAGES = {
    "sweep": (run_sweep, "run one study as a Ray Tune sweep tracked in MLflow -> results/STUDY/"),
    "evaluate": (run_evaluate, "re-compute a study's test metrics from its checkpoints, with baselines"),
    "leaderboard": (run_leaderboard, "one part of the leaderboard (a champion study, end to end too, or "
                    "'baselines') on the same test faces -> results/leaderboard/PART/"),
    "evaluate_across": (run_evaluate_across, "measure what a study reads of other studies' models (their "
                        "champions, its mask_from) on its test faces -> results/across/STUDY/OTHER/"),
}
