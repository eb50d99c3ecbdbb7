"""One trial of a study: the Ray Tune trainable (function API) and what it logs to MLflow.

``train_trial(config)`` gets ``config["trial"]`` (a :class:`~unmask.studies.grid.Trial`) and
``config["context"]`` (data root, tracking URI, experiment and parent run ids, CPUs per trial), and in a
search study ``config["sample"]`` (the values Tune drew for this trial, applied to the trial). It
resumes from ``tune.get_checkpoint()`` when Tune restarts it, trains with ``Trainer.fit``, and at every
validation point reports the metrics and the Ray node id with a checkpoint (``last.pt`` plus
``trial_state.json``: the MLflow run id and the training time so far). At the last step it also
evaluates the test split, logs the model and sample images, and reports the ``test_`` metrics. The
MLflow child run (tag ``mlflow.parentRunId``) is ended FINISHED, or FAILED when the trial raises; a
retried trial reopens it. When Tune stops the trial at a report (a scheduler's early stop, or the end
of an interrupted sweep) before its last step, the run is ended KILLED and the driver settles it: FINISHED
with the tag ``unmask.stopped_early``, or FAILED when the sweep was interrupted.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unmask.data.torch_datasets import (PAIRED_FIELDS, PairedDataset, UnpairedDataset, batches, infinite_batches,
                                        test_set)
from unmask.io.locations import resolve_location
from unmask.metrics import MetricSuite
from unmask.studies.grid import resolve_trial
from unmask.sysinfo import cpu_description
from unmask.tracking import PARENT_TAG, flat_params
from unmask.training import Trainer, TrainConfig, build_trainer, trainer_class
from unmask.training.base import CHECKPOINT_NAME
from unmask.training.config import location_fields

STATE_NAME = "trial_state.json"
CPU = cpu_description()          # the CPU this worker trains on (float results differ across CPUs)
N_SAMPLES = 4


class Unmasker(nn.Module):
    """The trained translation as one module for MLflow: input (B, 3, H, W) in [-1, 1] -- for a
    trainer whose ``model_input`` is "image+mask", (B, 4, H, W), the fourth channel the occlusion mask
    in {0, 1}, and any further channels the trainer's :meth:`~Trainer.inputs` adds (a label map) -- output the clean estimate (B, 3, H, W) in [-1, 1]."""

    def __init__(self, trainer: Trainer):
        super().__init__()
        slim = copy.copy(trainer)   # the trainer's translate logic without optimisers or critics
        for attr in ("discriminators", "optimizers", "scaler", "_params"):
            setattr(slim, attr, None)
        self.generators = trainer.generators
        self.takes_map = trainer.model_input != "image"
        self.__dict__["_trainer"] = slim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cond = x[:, 3:] if self.takes_map else None
        return self._trainer.translate(x[:, :3], cond)


def model_input(batch: dict[str, torch.Tensor], trainer: Trainer) -> torch.Tensor:
    """The :class:`Unmasker` input of a paired batch, as the trainer declares it (:meth:`Trainer.inputs`):
    the image, and its map (the mask, or a label map) as a fourth channel."""
    image, cond = trainer.inputs(batch)
    if cond is None:
        return image
    return torch.cat([image, (cond if cond.dim() == 4 else cond[:, None]).to(image.dtype)], 1)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (H, B*W, 3) uint8, images side by side."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return torch.cat(list(x), dim=2).permute(1, 2, 0).numpy()


def sample_grid(trainer: Trainer, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """Rows: occluded input, output, clean target (uint8 RGB)."""
    image, cond = trainer.inputs(batch)
    out = trainer.translate(image, cond)
    return np.concatenate([_to_uint8(image), _to_uint8(out), _to_uint8(batch["clean"])], 0)


def trial_datasets(trial: dict[str, Any], cfg: TrainConfig, data_root: Path):
    """Train, val and test sets: the training batches hold the fields the trainer declares; val and
    test also hold what every measurement needs (the true mask)."""
    size, kinds, cls = trial["image_size"], trial["kinds"], trainer_class(cfg)
    if cls.pairing == "paired":
        train = PairedDataset(data_root / "train", kinds=kinds, size=size, fields=cls.FIELDS)
    else:
        train = UnpairedDataset(data_root / "train", kinds=kinds, size=size, seed=cfg.seed, fields=cls.FIELDS)
    measured = (*PAIRED_FIELDS, *cls.FIELDS)
    return (train, PairedDataset(data_root / "val", kinds=kinds, size=size, fields=measured),
            test_set(data_root / "test", trial.get("test_kinds") or kinds, size, measured))


def _log_model(trainer: Trainer, example: torch.Tensor) -> str:
    """Log :class:`Unmasker` as an exported graph (MLflow's ``pt2`` format: no pickle, no unmask code
    needed to load it) with its signature; returns the model URI."""
    import mlflow
    from mlflow.models import infer_signature

    model = Unmasker(trainer)
    x = example.float()
    signature = infer_signature(x.numpy(), model(x).cpu().numpy())
    info = mlflow.pytorch.log_model(pytorch_model=model, name="model", signature=signature,
                                    input_example=x.numpy(), serialization_format="pt2",
                                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
    return info.model_uri


def _last_logged_step(run_id: str, metrics: dict[str, float]) -> int:
    """The last step at which run ``run_id`` logged any of ``metrics`` (-1 when none)."""
    import mlflow

    client = mlflow.MlflowClient()
    return max((m.step for key in metrics for m in client.get_metric_history(run_id, key)), default=-1)


def train_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable."""
    import mlflow
    import ray
    from ray import tune

    # one line per checkpoint from every worker would drown the progress table
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    trial, ctx = resolve_trial(config), config["context"]
    cfg = TrainConfig.from_dict(trial["train"])
    if ctx.get("root"):   # folder options, when relative: from the project root, not the trial's folder
        cfg = dataclasses.replace(cfg, options=dataclasses.replace(cfg.options, **{
            k: resolve_location(getattr(cfg.options, k), ctx["root"])
            for k in location_fields(cfg.options) if getattr(cfg.options, k)}))
    if cfg.threads is None:
        torch.set_num_threads(max(1, int(ctx["cpus"])))
    train_ds, val_ds, test_ds = trial_datasets(trial, cfg, Path(ctx["data_root"]))
    trainer = build_trainer(cfg)
    state: dict[str, Any] = {"mlflow_run_id": None, "train_time_s": 0.0}
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trainer.load_checkpoint(Path(d) / CHECKPOINT_NAME)
            state = json.loads((Path(d) / STATE_NAME).read_text())
    suite = MetricSuite(ctx.get("lpips_weights"), image_size=trial["image_size"])

    mlflow.set_tracking_uri(ctx["tracking_uri"])
    logged_up_to = -1     # a retried trial re-trains steps its failed attempt already logged: not again
    if state["mlflow_run_id"]:
        run = mlflow.start_run(run_id=state["mlflow_run_id"])
        logged_up_to = _last_logged_step(run.info.run_id, run.data.metrics)
    else:
        run = mlflow.start_run(experiment_id=ctx["experiment_id"],
                               run_name=f"{trial['cell_label']} seed={trial['seed']}",
                               tags={PARENT_TAG: ctx["parent_run_id"], "unmask.study": trial["study"],
                                     "unmask.cell": trial["cell_label"], "unmask.cpu": CPU})
        mlflow.log_params({**flat_params(trial["train"]), "image_size": trial["image_size"],
                           "kinds": json.dumps(trial["kinds"]), "cell": trial["cell_label"]})
        state["mlflow_run_id"] = run.info.run_id
    node_id = ray.get_runtime_context().get_node_id()    # the Ray node this attempt runs on
    started = time.perf_counter()
    train_means: dict[str, float] = {}

    def elapsed() -> float:
        return state["train_time_s"] + time.perf_counter() - started

    def finish() -> dict[str, Any]:
        test = trainer.evaluate(batches(test_ds, cfg.batch_size), suite)
        final = {f"test_{k}": v for k, v in test.items()}
        for m in suite.asked:
            final.setdefault(f"test_{m}", math.nan)
        mlflow.log_metrics({k: v for k, v in final.items() if not math.isnan(v)}, step=trainer.step)
        first = next(iter(batches(test_ds, min(N_SAMPLES, len(test_ds)))))
        mlflow.log_image(sample_grid(trainer, first), artifact_file="samples.png")
        final["model_uri"] = _log_model(trainer, model_input(first, trainer)[:2])
        return final

    def callback(step: int, metrics: dict[str, float]) -> None:
        if step > logged_up_to:
            mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)}, step=step)
        if not any(k.startswith("val_") for k in metrics):
            train_means.clear()
            train_means.update(metrics)
            return
        report: dict[str, Any] = {**train_means, **metrics, "step": step, "train_time_s": elapsed(),
                                  "mlflow_run_id": state["mlflow_run_id"], **suite.notes(),
                                  "node_id": node_id, "cpu": CPU}
        for m in suite.asked:
            report.setdefault(f"val_{m}", math.nan)
        if step >= cfg.steps:
            report.update(finish())
        with tempfile.TemporaryDirectory() as d:
            trainer.save_checkpoint(Path(d) / CHECKPOINT_NAME)
            (Path(d) / STATE_NAME).write_text(json.dumps({**state, "train_time_s": report["train_time_s"]}))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))

    try:
        stream = infinite_batches(train_ds, cfg.batch_size, seed=cfg.seed)
        trainer.fit(itertools.islice(stream, trainer.step, None), lambda: batches(val_ds, cfg.batch_size),
                    callback=callback, metrics=suite)
    except SystemExit:   # Tune stopped the trial at a report (see the module docstring)
        mlflow.end_run("FINISHED" if trainer.step >= cfg.steps else "KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
