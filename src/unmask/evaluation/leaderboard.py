"""One leaderboard of every paper's methods on the same test faces (``params.yaml``'s ``leaderboard``).

Rows: each listed study's champion -- every seed of the champion's configuration, so seed noise is
known -- the same models given a segmenter's predicted mask (end to end, what ``unmask infer`` does),
and the classical baselines. Every model runs at its own trained size; its output is resized to the
common scoring size (bicubic), and a model that takes a mask has its fill pasted into the input at that
size (what a deployed inpainter does); an image-only model (CycleGAN) is scored on its whole output.
Every face is scored on its own (PSNR, SSIM, L1, each on the whole image and inside the true mask),
so :mod:`unmask.reports.ranking` can redraw faces and seeds for rank intervals.

A champion is its study's (:mod:`unmask.studies.champion`) among the configurations that run on a photo
(:meth:`~unmask.training.Trainer.deployable`): seed 003's oracle map, which only a test set has, is not
a method a user can run. The same functions score a folder of real photos (``unmask benchmark-real``):
one code path, only the test folder differs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from unmask.catalog.status import TrialStatus
from unmask.data.torch_datasets import PAIRED_FIELDS, batches, test_set
from unmask.errors import UnmaskError
from unmask.evaluation.champions import champion_row
from unmask.evaluation.evaluate import read_trials, resolve_location
from unmask.io.atomic import atomic_path, write_text
from unmask.io.remote import local_copy
from unmask.metrics import build_baseline
from unmask.metrics.image import compute_metrics
from unmask.models.unet import count_parameters
from unmask.sysinfo import cpu_description
from unmask.training import Trainer, load_trainer

LEADERBOARD_DIR = "leaderboard"
SCORES_FILE = "scores.parquet"
INFO_FILE = "info.json"
METRICS = ("psnr_masked", "ssim_masked", "l1_masked", "psnr", "ssim", "l1")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "psnr_masked": True, "ssim_masked": True,
                    "l1_masked": False}
PREDICTED = "mask=predicted"
THRESHOLD = 0.5
TIMING_FACES = 8      # faces restored in one timed call (one core), best of TIMING_REPEATS
TIMING_REPEATS = 3


@dataclass
class Method:
    """One leaderboard row, as :func:`measure_leaderboard` measured it."""
    name: str                       # row label: "<study>" / "<study> mask=predicted" / a baseline's name
    kind: str                       # "champion" | "end_to_end" | "baseline"
    study: Optional[str] = None
    cell_label: str = ""
    seeds: list[int] = field(default_factory=list)
    trained_size: Optional[int] = None
    model_input: str = "image+mask"
    parameters: int = 0             # the networks that restore a face (plus the segmenter end to end)
    seconds_per_face: float = float("nan")   # one core, at its trained size

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def masked_ssim(pred01: torch.Tensor, target01: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SSIM (Gaussian window, sigma 1.5, data range 1) averaged over the masked pixels only, per image:
    skimage's full SSIM map, mean over channels, then over the pixels where ``mask`` > 0.5."""
    from skimage.metrics import structural_similarity

    p = pred01.detach().double().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    t = target01.detach().double().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    m = (mask.detach().cpu()[:, 0] > 0.5).numpy()
    out = []
    for pi, ti, mi in zip(p, t, m):
        _, smap = structural_similarity(pi, ti, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False, full=True)
        out.append(float(smap.mean(axis=-1)[mi].mean()) if mi.any() else float("nan"))
    return torch.tensor(out, dtype=torch.float64)


def score_faces(pred01: torch.Tensor, clean01: torch.Tensor, mask: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-face :data:`METRICS` of restorations against the clean faces, inside the true ``mask``."""
    m = compute_metrics(pred01.float(), clean01.float(), mask.float())
    m["ssim_masked"] = masked_ssim(pred01, clean01, mask)
    return {k: m[k].double().cpu().numpy() for k in METRICS}


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Images (B, C, H, W) in [0, 1] to ``size`` px: area-like (antialiased) down, bicubic up."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _mask_at(prob: torch.Tensor, size: int) -> torch.Tensor:
    return (F.interpolate(prob, size=(size, size), mode="bilinear", align_corners=False) > THRESHOLD).float()


def deployable_champion(study: str, results_dir: str | os.PathLike, root: str | os.PathLike = "."
                        ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Study ``study``'s champion among its trials that run on a photo, and the finished trials of the
    champion's configuration (one per seed)."""
    from unmask.training import TrainConfig, trainer_class
    from unmask.training.checkpoint import load_state

    path = Path(results_dir) / study / "trials.parquet"
    if not path.is_file():
        raise UnmaskError(f"{path}: missing; the leaderboard needs the sweep of study {study!r} first")
    trials = read_trials(path)
    done = trials[(trials["status"] == TrialStatus.FINISHED) & trials["checkpoint"].notna()]
    ok = []
    for _, t in done.iterrows():
        cfg = TrainConfig.from_dict(load_state(resolve_location(str(t["checkpoint"]), root))["config"])
        ok.append(trainer_class(cfg).deployable(cfg))
    usable = done[np.array(ok, bool)] if len(done) else done
    if usable.empty:
        raise UnmaskError(f"{path}: no finished trial of study {study!r} runs on a photo")
    best = champion_row(usable, str(path))
    cell = usable[usable["cell_label"] == best["cell_label"]].sort_values("seed")
    return best, cell


def _time_per_face(fn: Callable[[], Any], n: int) -> float:
    """Seconds per face of ``fn`` (restoring ``n`` faces) on one core: best of a few calls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fn()   # warm-up (first-call allocations)
        best = float("inf")
        for _ in range(TIMING_REPEATS):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return best / n


@dataclass
class _Reference:
    """The test faces at the scoring size, and what every row is scored against."""
    image_ids: list[str]
    identities: list[str]
    kinds: list[str]
    occluded: torch.Tensor    # (N, 3, S, S) in [0, 1]
    clean: torch.Tensor
    mask: torch.Tensor        # (N, 1, S, S), the true mask
    prob: Optional[torch.Tensor] = None   # the segmenter's occlusion probability, at its own size


def _reference(test_dir, kinds, size: int) -> _Reference:
    ds = test_set(test_dir, kinds, size)
    items = [ds[i] for i in range(len(ds))]
    base = ds.dataset
    return _Reference([base.image_ids[i] for i in ds.indices], [base.identities[i] for i in ds.indices],
                      [base.kinds[i] for i in ds.indices],
                      (torch.stack([it["occluded"] for it in items]).float() + 1) / 2,
                      (torch.stack([it["clean"] for it in items]).float() + 1) / 2,
                      torch.stack([it["mask"] for it in items]).float())


def _test_faces(trainer: Trainer, test_dir, kinds, size: int):
    """The test faces with the fields ``trainer`` trains on; where the data has none of some (real photos
    carry no parsing map), the paired fields alone: a configuration that runs on a photo restores from
    the image and the mask."""
    try:
        return test_set(test_dir, kinds, size, tuple(dict.fromkeys([*PAIRED_FIELDS, *trainer.FIELDS])))
    except UnmaskError:
        return test_set(test_dir, kinds, size, PAIRED_FIELDS)


def _outputs(trainer: Trainer, test_dir, kinds, size: int, ref: _Reference, model_mask: Optional[torch.Tensor],
             batch_size: int) -> torch.Tensor:
    """``trainer``'s restorations of the test faces at its ``size``, resized to the scoring size and,
    for a mask-taking model, pasted into the input inside the mask it was given."""
    ds = _test_faces(trainer, test_dir, kinds, size)
    ids = [ds.dataset.image_ids[i] for i in ds.indices]
    if ids != ref.image_ids:
        raise UnmaskError(f"{test_dir}: the test faces differ between {size} px and the scoring size")
    outs, start = [], 0
    for b in batches(ds, batch_size):
        n = len(b["occluded"])
        if model_mask is not None:
            b = {**b, "mask": _mask_at(model_mask[start:start + n], size)}
        out01 = (trainer.translate(*trainer.inputs(b)).float() + 1) / 2
        outs.append(resize(out01, ref.clean.shape[-1]))
        start += n
    out = torch.cat(outs)
    if trainer.model_input != "image":
        given = ref.mask if model_mask is None else _mask_at(model_mask, ref.clean.shape[-1])
        out = given * out + (1 - given) * ref.occluded
    return out


def _rows(method: str, seed: int, ref: _Reference, scores: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [{"method": method, "seed": seed, "face": i, "image_id": ref.image_ids[i],
             "identity": ref.identities[i], "kind": ref.kinds[i], **{k: float(v[i]) for k, v in scores.items()}}
            for i in range(len(ref.image_ids))]


def measure_leaderboard(champions: Sequence[str], baselines: Sequence[str], mask_from: Optional[str],
                        end_to_end_baselines: Sequence[str], results_dir: str | os.PathLike,
                        test_dir: str | os.PathLike, kinds: Sequence[str] | None, size: int,
                        root: str | os.PathLike = ".", batch_size: int = 16,
                        log: Callable[[str], None] = lambda s: None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-face scores of every row (one DataFrame row per method, seed and face) and the info the
    report needs (each :class:`Method`, the scoring size, the data, the CPU)."""
    root = Path(root)
    ref = _reference(test_dir, kinds, size)
    methods: list[Method] = []
    rows: list[dict[str, Any]] = []
    seg_label, seg_params, seg_seconds = None, 0, 0.0
    if mask_from:
        seg_best, _ = deployable_champion(mask_from, results_dir, root)
        with local_copy(resolve_location(str(seg_best["checkpoint"]), root)) as ckpt:
            seg = load_trainer(ckpt, device="cpu")
        seg_size = int(seg_best.get("image_size") or seg.cfg.image_size)
        x = resize(ref.occluded, seg_size) * 2 - 1
        ref.prob = torch.cat([seg.predict_mask(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        seg_label = f"{mask_from}: {seg_best['cell_label']} seed {seg_best['seed']}"
        seg_params = count_parameters(seg.generators)
        seg_seconds = _time_per_face(lambda: seg.predict_mask(x[:TIMING_FACES]), min(TIMING_FACES, len(x)))
    for study in champions:
        best, cell = deployable_champion(study, results_dir, root)
        main = Method(study, "champion", study, str(best["cell_label"]))
        e2e = Method(f"{study} {PREDICTED}", "end_to_end", study, str(best["cell_label"]))
        for _, t in cell.iterrows():
            with local_copy(resolve_location(str(t["checkpoint"]), root)) as ckpt:
                trainer = load_trainer(ckpt, device="cpu")
            tsize = int(t.get("image_size") or trainer.cfg.image_size)
            log(f"leaderboard: {study} {t['cell_label']} seed {int(t['seed'])} ({tsize} px)")
            for m, given in ((main, None), (e2e, ref.prob)):
                if m is e2e and (given is None or trainer.model_input == "image"):
                    continue
                out = _outputs(trainer, test_dir, kinds, tsize, ref, given, batch_size)
                rows += _rows(m.name, int(t["seed"]), ref, score_faces(out, ref.clean, ref.mask))
                m.seeds.append(int(t["seed"]))
            if main.trained_size is None:
                main.trained_size = e2e.trained_size = tsize
                main.model_input = e2e.model_input = trainer.model_input
                main.parameters = count_parameters(trainer.generators)
                e2e.parameters = main.parameters + seg_params
                sample = next(iter(batches(_test_faces(trainer, test_dir, kinds, tsize), TIMING_FACES)))
                inputs = trainer.inputs(sample)
                main.seconds_per_face = _time_per_face(lambda: trainer.translate(*inputs), len(sample["occluded"]))
                e2e.seconds_per_face = main.seconds_per_face + seg_seconds
        methods.append(main)
        if e2e.seeds:
            methods.append(e2e)
    for name in baselines:
        fn = build_baseline(name, key="leaderboard.baselines")
        for given, label in ((ref.mask, name), (None, f"{name} {PREDICTED}")):
            if given is None:
                if name not in end_to_end_baselines or ref.prob is None:
                    continue
                given = _mask_at(ref.prob, size)
            log(f"leaderboard: baseline {label}")
            out = torch.cat([fn(ref.occluded[i:i + batch_size], given[i:i + batch_size])
                             for i in range(0, len(ref.clean), batch_size)]).float()
            rows += _rows(label, 0, ref, score_faces(out, ref.clean, ref.mask))
            seconds = _time_per_face(lambda: fn(ref.occluded[:TIMING_FACES], given[:TIMING_FACES]),
                                     min(TIMING_FACES, len(ref.clean)))
            methods.append(Method(label, "baseline" if label == name else "end_to_end", None, "", [0], None,
                                  "image+mask", seg_params if label != name else 0,
                                  seconds + (seg_seconds if label != name else 0.0)))
    info = {"scoring_size": size, "n_faces": len(ref.image_ids), "n_identities": len(set(ref.identities)),
            "kinds": sorted(set(ref.kinds)), "segmenter": seg_label, "cpu": cpu_description(),
            "test_dir": str(test_dir), "methods": [m.to_dict() for m in methods]}
    return pd.DataFrame(rows), info


def write_leaderboard(scores: pd.DataFrame, info: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / SCORES_FILE) as tmp:
        scores.to_parquet(tmp, index=False)
    write_text(out_dir / INFO_FILE, json.dumps(info, indent=2) + "\n")
    return [out_dir / SCORES_FILE, out_dir / INFO_FILE]


def load_leaderboard(out_dir: str | os.PathLike, parts: Sequence[str] | None = None
                     ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What :func:`write_leaderboard` wrote in ``out_dir``, or, with ``parts``, in each
    ``out_dir/<part>/`` (one per leaderboard stage) joined in that order: the scores concatenated, the
    methods listed part by part. The parts must have measured the same test faces."""
    out_dir = Path(out_dir)
    dirs = [out_dir] if parts is None else [out_dir / p for p in parts]
    frames, info = [], None
    for d in dirs:
        for p in (d / SCORES_FILE, d / INFO_FILE):
            if not p.is_file():
                raise UnmaskError(f"{p}: missing; run the leaderboard stages first (dvc repro)")
        try:
            scores, part = pd.read_parquet(d / SCORES_FILE), json.loads((d / INFO_FILE).read_text())
        except (OSError, ValueError) as err:
            raise UnmaskError(f"{d}: not a leaderboard ({str(err).splitlines()[0]})") from None
        if info is None:
            info = {**part, "methods": list(part["methods"])}
        else:
            same = ("scoring_size", "n_faces", "kinds", "test_dir")
            if any(part.get(k) != info.get(k) for k in same):
                raise UnmaskError(f"{d}: measured on other test faces than {dirs[0]} "
                                  f"({', '.join(k for k in same if part.get(k) != info.get(k))} differ); "
                                  "re-run the leaderboard stages")
            info["methods"] += part["methods"]
            info["segmenter"] = info.get("segmenter") or part.get("segmenter")
        frames.append(scores)
    return pd.concat(frames, ignore_index=True), info
