"""Other studies' champions on this study's test set (seed 004's Table 1: FD-StackGAN against the
seed-000 and seed-002 models), measured when the report is written.

A study lists ``champions: [other_study, ...]`` in params.yaml. The champion of a study is the one
rule's (:mod:`unmask.studies.champion`: its search metric and mode, else its trainer's validation
metric, never a test one), the trial the sweep registers as the MLflow alias ``champion``. It is loaded from its checkpoint (``results/<other>/trials.parquet``) and measured on
this study's test images (its occlusion kinds) exactly as ``evaluate`` measures a trial, beside this
study's own configurations and the baselines. A model trained on other occlusions (seed 002's centre
holes) is still given the true mask: the comparison says how well each transfers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from unmask.catalog.status import TrialStatus
from unmask.data.torch_datasets import PairedDataset, batches
from unmask.errors import UnmaskError
from unmask.io.remote import local_copy
from unmask.metrics import MetricSuite
from unmask.evaluation.evaluate import read_trials, resolve_location
from unmask.studies.champion import ChampionRule, champion, champion_rule, recorded_rule
from unmask.training import Trainer, load_trainer


def champion_row(trials: pd.DataFrame, where: str, rule: ChampionRule | None = None) -> dict[str, Any]:
    """The study's champion (:mod:`unmask.studies.champion`) under ``rule``: when ``where`` is a
    ``results/<study>/trials.parquet`` and no rule is given, the one its sweep recorded beside it (else
    the trainers' metric in its direction); UnmaskError naming ``where`` when there is none."""
    if rule is None:
        rule = (recorded_rule(Path(where).parent, trials) if Path(where).name == "trials.parquet"
                else champion_rule(trials))
    return champion(trials, rule, where)


def load_champion(name: str, results_dir: str | os.PathLike, root: str | os.PathLike = "."
                  ) -> tuple[Trainer, dict[str, Any]]:
    """Study ``name``'s champion trainer (from its checkpoint, on the CPU) and its trials-table row;
    UnmaskError naming ``results/<name>/trials.parquet`` when the study has not been swept."""
    path = Path(results_dir) / name / "trials.parquet"
    if not path.is_file():
        raise UnmaskError(f"{path}: missing; the champion of study {name!r} needs its sweep first")
    best = champion_row(read_trials(path), str(path))
    with local_copy(resolve_location(str(best["checkpoint"]), root)) as ckpt:
        return load_trainer(ckpt, device="cpu"), best


def measure_champions(names: Sequence[str], results_dir: str | os.PathLike, test_dir: str | os.PathLike,
                      kinds: Sequence[str] | None, root: str | os.PathLike = ".", metrics: MetricSuite | None = None,
                      batch_size: int = 16) -> pd.DataFrame:
    """One row per named study: ``study``, ``cell_label``, ``seed``, ``test_<metric>``... (``metrics``; None:
    every catalogue metric whose weights are in their default places)."""
    root = Path(root)
    suite = metrics if metrics is not None else MetricSuite()
    rows = []
    for name in names:
        trainer, best = load_champion(name, results_dir, root)
        size = int(best.get("image_size") or trainer.cfg.discriminator.image_size)
        ds = PairedDataset(test_dir, kinds=list(kinds) if kinds else None, size=size)
        means = trainer.evaluate(batches(ds, batch_size), suite)   # the trainer's own test metrics
        rows.append({"study": name, "cell_label": str(best["cell_label"]), "seed": int(best["seed"]),
                     "framework": trainer.framework, "model_input": trainer.model_input,
                     "image_size": size, "n_test": len(ds),
                     **{f"test_{k}": float(v) for k, v in means.items()}})
    return pd.DataFrame(rows)


def champions_section(champions: pd.DataFrame, eval_df: pd.DataFrame, metrics: Sequence[str],
                      labels: Mapping[str, tuple[str, bool]], fmt) -> list[str]:
    """Markdown: this study's best configuration per metric, each champion, the baselines."""
    if champions.empty:
        return []
    trials = eval_df[eval_df["role"] == "trial"]
    base = eval_df[eval_df["role"] == "baseline"].drop_duplicates("cell_label")
    cols = ["this study's best (mean over seeds)"] + [f"champion of {r.study}: {r.cell_label} seed {r.seed}"
                                                      for r in champions.itertuples()]
    cols += [f"baseline: {b}" for b in base["cell_label"]]
    lines = ["", "## Against other studies' champions (same test images)", "",
             "| metric | " + " | ".join(c.replace("|", "\\|") for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for m in metrics:
        col = f"test_{m}"
        name, higher = labels[m]
        means = trials.groupby("cell_label", sort=False)[col].mean().dropna() if col in trials else pd.Series([])
        best = (means.max() if higher else means.min()) if len(means) else math.nan
        row = [f"{name} {'↑' if higher else '↓'}", "–" if math.isnan(best) else fmt(m, best)]
        row += ["–" if pd.isna(v) else fmt(m, float(v)) for v in champions.get(col, [math.nan] * len(champions))]
        row += ["–" if pd.isna(v) else fmt(m, float(v)) for v in base.get(col, [math.nan] * len(base))]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "A champion is its study's trial best on the validation metric it is chosen on (a search's "
                  "own metric and mode, else its trainer's: PSNR for an image trainer; the registered `champion` "
                  "model), measured here on this study's test images and occlusion kinds with the true mask "
                  "where its model takes one; a CycleGAN champion sees the image only. One trial, one seed: "
                  "no spread is known for it, so a difference to it is not called beyond noise."]
    return lines
