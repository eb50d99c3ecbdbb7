"""Images per second of each data stage, on the embedded default and on real photos.

    python benchmarks/stages.py [--n-identities 40] [--real ../shared/data/faces/unmasked-crops]

Runs download → align → synthesize → split in a temporary directory with params.yaml's settings
(only the dataset size is changed), then the same on a folder of real photos (dlib finds the faces),
then measures how fast the torch Datasets deliver training batches.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from unmask.config import load_params
from unmask.data.torch_datasets import PairedDataset, UnpairedDataset, infinite_batches
from unmask.io.shards import count_rows
from unmask.pipeline import ALIGNED_DIR, DATA_STAGES, RAW_DIR, SPLITS_DIR, STAGES, SYNTH_DIR

ROOT = Path(__file__).resolve().parents[1]
# images counted for each stage's rate: its input (download: its output)
COUNTED = {"download": RAW_DIR, "align": RAW_DIR, "synthesize": ALIGNED_DIR, "split": SYNTH_DIR}


def run_stages(params, root: Path, label: str) -> None:
    for name in DATA_STAGES:
        fn, _ = STAGES[name]
        t0 = time.perf_counter()
        fn(params, root, progress=False)
        dt = time.perf_counter() - t0
        n = count_rows(root / COUNTED[name])
        print(f"{label:10s} {name:11s} {n:6d} images in {dt:7.2f} s = {n / dt:8.1f} images/s")


def loader_speed(splits: Path, batch_size: int = 4, n_batches: int = 200) -> None:
    for cls in (PairedDataset, UnpairedDataset):
        ds = cls(splits / ("train" if cls is UnpairedDataset else "test"))
        it = infinite_batches(ds, batch_size)
        next(it)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            next(it)
        dt = time.perf_counter() - t0
        print(f"loader     {cls.__name__:15s} batch {batch_size}: {n_batches / dt:8.1f} batches/s "
              f"({n_batches * batch_size / dt:.0f} images/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-identities", type=int, default=40)
    ap.add_argument("--real", default=str(ROOT.parent / "shared/data/faces/unmasked-crops"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    base = load_params(ROOT / "params.yaml")
    default = base.model_copy(update={"data": base.data.model_copy(update={
        "synthetic": base.data.synthetic.model_copy(update={"n_identities": args.n_identities})})})
    with tempfile.TemporaryDirectory() as tmp:
        run_stages(default, Path(tmp), "synthetic")
        loader_speed(Path(tmp) / SPLITS_DIR)
    real = Path(args.real)
    if real.is_dir():
        p = base.model_copy(update={"data": base.data.model_copy(update={
            "source": "folder", "folder": base.data.folder.model_copy(update={
                "path": str(real), "identity_from_subfolders": False})})})
        with tempfile.TemporaryDirectory() as tmp:
            run_stages(p, Path(tmp), "real")
    else:
        print(f"real photos: {real} not found, skipped")


if __name__ == "__main__":
    main()
