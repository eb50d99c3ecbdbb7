"""The data stages as functions: where each stage reads, where it writes, what it logs.

``stages/*.py`` (what ``dvc.yaml`` runs) and the ``unmask`` CLI both call these, so a stage behaves the
same whichever way it is started. Library code below takes typed config sections, never params.yaml.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from unmask.config import Params
from unmask.io.atomic import write_text

log = logging.getLogger("unmask")

RAW_DIR = Path("data/raw")
ALIGNED_DIR = Path("data/aligned")
SYNTH_DIR = Path("data/synth")
SPLITS_DIR = Path("data/splits")


def _write_summary(path: Path, report) -> dict:
    summary = report.to_dict()
    write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def run_download(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.sources import download_source

    out = root / RAW_DIR
    report = download_source(params.data, params.seed, out)
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
    report = synthesize_dataset(root / ALIGNED_DIR, out, params.synthesize, params.seed, progress=progress)
    summary = _write_summary(out / "summary.json", report)
    log.info("synthesize: %s", summary)
    return summary


def run_split(params: Params, root: Path = Path("."), progress: bool = True) -> dict:
    from unmask.data.split import split_dataset

    report = split_dataset(root / SYNTH_DIR, root / SPLITS_DIR, params.split, params.seed, progress=progress)
    summary = report.to_dict()
    log.info("split: rows %s, identities %s, identity overlap %s",
             summary["rows"], summary["identities"], summary["identity_overlap"])
    return summary


STAGES = {
    "download": (run_download, "fetch or generate face photos -> data/raw/"),
    "align": (run_align, "FFHQ-style alignment from 68 landmarks -> data/aligned/"),
    "synthesize": (run_synthesize, "draw occlusions with exact masks -> data/synth/"),
    "split": (run_split, "identity-disjoint train/val/test and unpaired domains -> data/splits/"),
}
