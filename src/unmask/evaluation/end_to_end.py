"""End to end (seed 001): inpaint with the mask a segmenter predicts instead of the true mask.

A study with ``mask_from: <segmentation study>`` gets, in the ``evaluate_across`` stage, every finished
trial whose model takes a mask and every classical baseline measured again on the same test images,
this time given ``p > 0.5`` of that study's champion segmenter (what ``unmask infer`` does on a real
photo). The trained inpainters are the same checkpoints: they were trained on true masks, so the
difference between a cell and its ``mask=predicted`` twin is what the segmentation step costs. The
metrics compare with the clean face as always, and the masked metrics still average over the *true*
occluded pixels (a missed mask pixel that the model leaves masked counts against it).

It also gives seed 001's Figs. 7-11 for each configuration: target, the input with the predicted mask
drawn on it, the coarse (stage I) and refined (stage II) raw outputs and the composite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Subset

from unmask.catalog.status import TrialStatus
from unmask.data.torch_datasets import PAIRED_FIELDS, batches, test_set
from unmask.io.remote import local_copy
from unmask.metrics import MetricSuite, aggregate, build_baseline
from unmask.metrics.segmentation import segmentation_metrics
from unmask.evaluation.champions import load_champion
from unmask.evaluation.evaluate import means_by_kind, resolve_location, to_uint8
from unmask.training import load_trainer

PREDICTED = "mask=predicted"
THRESHOLD = 0.5


@dataclass
class EndToEnd:
    rows: pd.DataFrame                 # eval.parquet rows (role trial / baseline), labels "<label> mask=predicted",
    # trial_id "<id>:mask=predicted" and ``twin_of`` the trial_id of the row measured with the true mask
    segmenter: str                     # "<study>: <cell label> seed <seed>"
    segmentation: dict[str, float]     # the segmenter's pixel_acc / iou / dice on these test images
    stages: list[tuple[str, np.ndarray]] = field(default_factory=list)   # figure columns (label, uint8 images)


def predicted_label(label: str) -> str:
    return f"{label} {PREDICTED}"


def measure_end_to_end(eval_df: pd.DataFrame, mask_from: str, results_dir: str | os.PathLike,
                       test_dir: str | os.PathLike, kinds: Sequence[str] | None, root: str | os.PathLike = ".",
                       metrics: MetricSuite | None = None, n_samples: int = 4,
                       batch_size: int = 16) -> EndToEnd:
    """The ``mask=predicted`` twin of every finished mask-taking trial and every baseline of ``eval_df``
    (a study's ``eval.parquet``), with the champion of study ``mask_from`` predicting the mask."""
    segmenter, best = load_champion(mask_from, results_dir, root)
    seg_size = int(best.get("image_size") or segmenter.cfg.image_size)
    suite = metrics if metrics is not None else MetricSuite()
    trials = eval_df[(eval_df["role"] == "trial") & (eval_df["status"] == TrialStatus.FINISHED)]
    sizes = sorted({int(s) for s in trials["image_size"].dropna()}) or [seg_size]
    cache: dict[tuple[int, tuple[str, ...]], tuple[Subset, list[torch.Tensor]]] = {}

    def data(size: int, fields: Sequence[str] = PAIRED_FIELDS) -> tuple[Subset, list[torch.Tensor]]:
        """The test set (``fields``) in evaluate's order and the predicted mask of each batch at ``size``."""
        fields = tuple(dict.fromkeys([*PAIRED_FIELDS, *fields]))
        if (size, fields) not in cache:
            ds = test_set(test_dir, kinds, size, fields)
            masks = []
            for b in batches(ds, batch_size):
                x = b["occluded"]
                if seg_size != size:
                    x = torch.nn.functional.interpolate(x, size=(seg_size, seg_size), mode="bilinear",
                                                        antialias=True, align_corners=False)
                prob = segmenter.predict_mask(x)
                if seg_size != size:
                    prob = torch.nn.functional.interpolate(prob, size=(size, size), mode="bilinear", align_corners=False)
                masks.append((prob > THRESHOLD).float())
            cache[(size, fields)] = (ds, masks)
        return cache[(size, fields)]

    ds, masks = data(sizes[0])
    seg = aggregate([segmentation_metrics(m, b["mask"]) for m, b in zip(masks, batches(ds, batch_size))])
    rows, stages, shown = [], [], set()
    for _, t in trials.iterrows():
        with local_copy(resolve_location(str(t["checkpoint"]), root)) as ckpt:
            trainer = load_trainer(ckpt, device="cpu")
        if trainer.model_input != "image+mask":
            continue          # an image-only model (CycleGAN) never sees a mask: nothing changes
        ds, masks = data(int(t["image_size"]), trainer.FIELDS)   # what its measure reads (a map, landmarks)

        def outputs():
            for m, b in zip(masks, batches(ds, batch_size)):
                yield trainer.measure(b, suite, model_mask=m), lambda: torch.zeros(0)
        means, _ = means_by_kind(outputs(), ds, 0)
        cell = {**json.loads(t["cell"]), "mask": "predicted"}
        rows.append({**t.to_dict(), "cell": json.dumps(cell), "cell_label": predicted_label(t["cell_label"]),
                     "trial_id": f"{t['trial_id']}:{PREDICTED}", "twin_of": str(t["trial_id"]),
                     **{f"test_{k}": v for k, v in means.items()}})
        if t["cell_label"] not in shown and hasattr(trainer, "translate_stages"):
            shown.add(t["cell_label"])
            stages += _stage_columns(trainer, ds, masks[0], n_samples, t["cell_label"])

    ds, masks = data(sizes[0])
    for _, base in eval_df[eval_df["role"] == "baseline"].iterrows():
        fn = build_baseline(str(base["cell_label"]), key="studies.<study>.baselines")
        per_batch = [suite(fn((b["occluded"] + 1) / 2, m), (b["clean"] + 1) / 2, mask=b["mask"])
                     for m, b in zip(masks, batches(ds, batch_size))]
        rows.append({**base.to_dict(), "cell_label": predicted_label(base["cell_label"]),
                     "trial_id": f"{base['trial_id']}:{PREDICTED}", "twin_of": str(base["trial_id"]),
                     **{f"test_{k}": v for k, v in aggregate(per_batch).items()}})
    first = next(iter(batches(ds, n_samples)))
    stages = [("target", to_uint8(first["clean"])),
              ("input + predicted mask", _outline(first["occluded"], masks[0][:n_samples]))] + stages
    return EndToEnd(pd.DataFrame(rows), f"{mask_from}: {best['cell_label']} seed {best['seed']}", seg, stages)


def _stage_columns(trainer, ds: Subset, mask: torch.Tensor, n: int, label: str) -> list[tuple[str, np.ndarray]]:
    """Coarse, refined (each stage's raw output) and composite of the first ``n`` faces, given ``mask``."""
    b = next(iter(batches(ds, n)))
    outs = trainer.translate_stages(b["occluded"], mask[:n])
    names = ["coarse", "refined"] if len(outs) == 3 else [f"stage {i + 1}" for i in range(len(outs) - 1)]
    return [(f"{label}: {name}", to_uint8(o)) for name, o in zip([*names, "composite"], outs)]


def _outline(occluded: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """The occluded faces (uint8) with the predicted mask's pixels tinted green (seed 001's Fig. 7 column 2)."""
    img = to_uint8(occluded).astype(np.float32)
    m = mask[:, 0].numpy().astype(bool)
    img[m] = 0.5 * img[m] + 0.5 * np.array([0, 255, 0], np.float32)
    return img.round().astype(np.uint8)
