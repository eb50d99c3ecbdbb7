"""Other studies' champions on this study's test set (seed 004's Table 1: FD-StackGAN against the
seed-000 and seed-002 models), measured by the ``evaluate_across`` stage (:mod:`.across`).

A study lists ``champions: [other_study, ...]`` in params.yaml. The champion of a study is the one
rule's (:mod:`unmask.studies.champion`: its search metric and mode, else its trainer's validation
metric, never a test one), the trial the sweep registers as the MLflow alias ``champion``. It is loaded from its checkpoint (``results/<other>/trials.parquet``) and measured on
this study's test images (its occlusion kinds) exactly as ``evaluate`` measures a trial, beside this
study's own configurations and the baselines. A model trained on other occlusions (seed 002's centre
holes) is still given the true mask: the comparison says how well each transfers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from unmask.catalog.status import TrialStatus
from unmask.data.torch_datasets import batches, test_set
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
        size = int(best.get("image_size") or trainer.cfg.image_size)
        ds = test_set(test_dir, kinds, size)
        means = trainer.evaluate(batches(ds, batch_size), suite)   # the trainer's own test metrics
        rows.append({"study": name, "cell_label": str(best["cell_label"]), "seed": int(best["seed"]),
                     "framework": trainer.framework, "model_input": trainer.model_input,
                     "image_size": size, "n_test": len(ds),
                     **{f"test_{k}": float(v) for k, v in means.items()}})
    return pd.DataFrame(rows)
