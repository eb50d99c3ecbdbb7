"""A tiny trained study on disk for the report tests: a split and one 2-step CycleGAN checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from unmask.config import SplitConfig
from unmask.data.split import split_dataset
from unmask.data.torch_datasets import UnpairedDataset, infinite_batches
from unmask.training import TrainConfig, build_trainer

from tests.helpers import write_synth

SIZE = 32


def make_splits(root: Path) -> Path:
    synth = write_synth(root / "synth", n_identities=12, per_identity=2, size=SIZE)
    split_dataset(synth, root / "splits", SplitConfig(val=0.1, test=0.25), seed=0, progress=False)
    return root / "splits"


def train_tiny(splits: Path, out: Path, seed: int = 0, **overrides) -> tuple[TrainConfig, Path]:
    cfg = TrainConfig.from_dict(dict(framework="cyclegan", threads=1, device="cpu", batch_size=2, steps=2,
                                     val_every=0, checkpoint_every=0, log_every=1, seed=seed, image_size=SIZE,
                                     generator={"base_channels": 4, "n_blocks": 1},
                                     discriminator={"base_channels": 4}, **overrides))
    trainer = build_trainer(cfg)
    trainer.fit(infinite_batches(UnpairedDataset(splits / "train", size=SIZE, seed=seed), cfg.batch_size, seed=seed),
                checkpoint_dir=out)
    return cfg, out / "last.pt"


def trial_row(trial_id: str, cell: dict, seed: int, checkpoint: Path, status: str = "TERMINATED") -> dict:
    return {"study": "micro", "trial_id": trial_id, "cell": json.dumps(cell),
            "cell_label": " ".join(f"{k}={v}" for k, v in cell.items()), "seed": seed, "status": status,
            "checkpoint": str(checkpoint), "steps": 2, "image_size": SIZE, "data_source": "synthetic"}


def trials_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
