"""Whether seed 003's outputs follow the map they were generated on, judged by a parser that was never a
loss: the champion of the study a portrait study names as ``scored_by`` (measured by the
``evaluate_across`` stage, :mod:`.across`; the report merges the columns into the study's table).

For every finished trial (from its checkpoint) and every portrait baseline, on the study's test faces
(the source of a swap is the next face):

* ``parse_self_miou``: the self-reconstruction parsed, against the face's own map;
* ``parse_swap_miou``: every component from the source, on the target's map, against the target map
  (mask equivariance, the thesis's 4.4.1);
* ``parse_edit_miou``: the target's map with the source's mouth and eyes placed at the target's centres
  (:func:`unmask.data.components.edit_map`), against that edited map (4.4.2).

For a study whose models restore images (an inpainter: seed003_unmask), every finished trial's and image
baseline's restoration of the occluded test faces (given the true mask) is parsed instead:

* ``parse_hole_miou`` (semantic fidelity): the scorer's labels of the restoration against the true clean
  map, counted inside the mask only (where the restoration put something).

The scorer's own mIoU on the real test faces is the ceiling (``real_miou`` in ``parsing.json``; for an
inpainting study also inside the masks, ``real_hole_miou``).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import pandas as pd
import torch

from unmask.catalog.status import TrialStatus
from unmask.data.components import BY_NAME, COMPONENTS, edit_map
from unmask.data.torch_datasets import batches, test_set
from unmask.evaluation.champions import load_champion
from unmask.io.locations import resolve_location
from unmask.io.remote import local_copy
from unmask.metrics import aggregate
from unmask.metrics.parsing import parsing_metrics
from unmask.metrics.portrait_baselines import PORTRAIT_BASELINES
from unmask.training import load_trainer

COLUMNS = ("parse_self_miou", "parse_swap_miou", "parse_edit_miou")
HOLE_COLUMNS = ("parse_hole_miou",)
RESTORE_FIELDS = ("occluded", "clean", "mask", "parsing", "landmarks")


def _edited(lab: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
    out = edit_map(lab, donor, BY_NAME["mouth"])
    out = edit_map(out, donor, BY_NAME["left_eye"])
    return edit_map(out, donor, BY_NAME["right_eye"])


def _scores(composer: Any, parser: Any, ds, batch_size: int) -> dict[str, float]:
    per = []
    for b in batches(ds, batch_size):
        x, lab = b["clean"], b["parsing"]
        src = torch.roll(torch.arange(len(x)), 1)
        edited = _edited(lab, lab[src])
        swap = composer.compose(x, lab, {c.name: (x[src], lab[src]) for c in COMPONENTS})
        per.append({
            "parse_self_miou": parsing_metrics(parser.predict(composer.compose(x, lab)), lab)["parse_miou"],
            "parse_swap_miou": parsing_metrics(parser.predict(swap), lab)["parse_miou"],
            "parse_edit_miou": parsing_metrics(parser.predict(composer.compose(x, edited)), edited)["parse_miou"]})
    return aggregate(per)


def _hole_scores(restore, parser: Any, ds, batch_size: int) -> dict[str, float]:
    """``restore(batch)`` -> restorations in [-1, 1], parsed, against the true map inside the true mask."""
    per = [parsing_metrics(parser.predict(restore(b)), b["parsing"], region=b["mask"], prefix="parse_hole")
           for b in batches(ds, batch_size)]
    return {"parse_hole_miou": aggregate(per)["parse_hole_miou"]}


def _scorer_on_real(eval_df: pd.DataFrame, scorer: str, results_dir, test_dir, kinds, root, fields,
                    batch_size: int):
    """The scorer (study ``scorer``'s champion parser) and its row, the test faces (``fields``) at the
    study's size, and the scorer's parsing metrics on the real (clean) faces."""
    parser, best = load_champion(scorer, results_dir, root)
    sizes = eval_df["image_size"].dropna()
    size = int(sizes.iloc[0]) if len(sizes) else int(parser.cfg.image_size)
    ds = test_set(test_dir, kinds, size, fields)
    real = aggregate([parsing_metrics(parser.predict(b["clean"]), b["parsing"]) for b in batches(ds, batch_size)])
    return parser, best, ds, real


def _finished_trainer(trial, root):
    """A finished trial's trainer from its checkpoint (on the CPU), else None."""
    if trial["status"] != TrialStatus.FINISHED:
        return None
    with local_copy(resolve_location(trial["checkpoint"], root)) as ckpt:
        return load_trainer(ckpt, device="cpu")


def measure_semantic_fidelity(eval_df: pd.DataFrame, scorer: str, results_dir: str | os.PathLike,
                              test_dir: str | os.PathLike, kinds: Sequence[str] | None, root: str | os.PathLike = ".",
                              batch_size: int = 16) -> tuple[pd.DataFrame, dict[str, Any]]:
    """An inpainting study's rows (``trial_id``, ``test_parse_hole_miou``) for every finished trial and
    image baseline of ``eval_df``, and the summary (the scorer, its mIoU on the clean test faces, in all
    and inside the masks)."""
    from unmask.metrics.baselines import build_baseline

    parser, best, ds, real = _scorer_on_real(eval_df, scorer, results_dir, test_dir, kinds, root, RESTORE_FIELDS,
                                             batch_size)
    real_hole = _hole_scores(lambda b: b["clean"], parser, ds, batch_size)
    rows = []
    for _, t in eval_df.iterrows():
        if t["role"] == "trial":
            trainer = _finished_trainer(t, root)
            if trainer is None:
                continue
            restore = lambda b, tr=trainer: tr.translate(*tr.inputs(b))  # noqa: E731
        elif t["role"] == "baseline":
            fn = build_baseline(str(t["cell_label"]), key="studies.<study>.baselines")
            restore = lambda b, fn=fn: fn((b["occluded"] + 1) / 2, b["mask"]) * 2 - 1  # noqa: E731
        else:
            continue
        rows.append({"trial_id": str(t["trial_id"]),
                     **{f"test_{k}": v for k, v in _hole_scores(restore, parser, ds, batch_size).items()}})
    summary = {"scorer": f"{scorer}: {best['cell_label']} seed {int(best['seed'])}", "real_miou": real["parse_miou"],
               "real_acc": real["parse_acc"], "real_hole_miou": real_hole["parse_hole_miou"], "n_test": len(ds)}
    return pd.DataFrame(rows, columns=["trial_id", *(f"test_{c}" for c in HOLE_COLUMNS)]), summary


def measure_parsing_consistency(eval_df: pd.DataFrame, scorer: str, results_dir: str | os.PathLike,
                                test_dir: str | os.PathLike, kinds: Sequence[str] | None, root: str | os.PathLike = ".",
                                batch_size: int = 16) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(rows: ``trial_id`` and ``test_<column>`` for every finished trial and portrait baseline of
    ``eval_df``; summary: the scorer's label and its mIoU on the real test faces)."""
    parser, best, ds, real = _scorer_on_real(eval_df, scorer, results_dir, test_dir, kinds, root,
                                             ("clean", "parsing"), batch_size)
    rows = []
    for _, t in eval_df.iterrows():
        if t["role"] == "trial":
            composer = _finished_trainer(t, root)
            if composer is None:
                continue
        elif t["cell_label"] in PORTRAIT_BASELINES:
            composer = PORTRAIT_BASELINES[t["cell_label"]]()
        else:
            continue
        rows.append({"trial_id": str(t["trial_id"]), **{f"test_{k}": v for k, v in _scores(composer, parser, ds, batch_size).items()}})
    summary = {"scorer": f"{scorer}: {best['cell_label']} seed {int(best['seed'])}", "real_miou": real["parse_miou"],
               "real_acc": real["parse_acc"], "n_test": len(ds)}
    return pd.DataFrame(rows, columns=["trial_id", *(f"test_{c}" for c in COLUMNS)]), summary

