"""Builders for small on-disk datasets used across tests, and probes of what this machine allows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unmask.data.schema import SYNTH
from unmask.io.images import encode_png
from unmask.io.shards import write_rows


def synth_rows(n_identities: int, per_identity: int, size: int = 32, seed: int = 0,
               kinds: tuple[str, ...] = ("surgical", "cloth"), with_parsing: bool = False) -> list[dict]:
    """SYNTH rows with random clean faces, a lower-half mask and the occluded image it implies (and,
    ``with_parsing``, a label map: background, skin in the centre square, hair along the top rows)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_identities):
        for k in range(per_identity):
            clean = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            mask[size // 2:, :] = 255
            occ = clean.copy()
            occ[mask > 0] = (200, 200, 255)
            rows.append({
                "image_id": f"id{i:03d}-{k}#0", "source_id": f"id{i:03d}-{k}", "identity": f"id{i:03d}",
                "kind": kinds[(i + k) % len(kinds)], "occluded": encode_png(occ), "clean": encode_png(clean),
                "mask": encode_png(mask), "landmarks": [0.0] * 136,
                "parsing": encode_png(_parsing(size)) if with_parsing else None,
                "attrs": json.dumps({}),
            })
    return rows


def _parsing(size: int) -> np.ndarray:
    labels = np.zeros((size, size), np.uint8)
    labels[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1    # skin
    labels[: size // 8] = 10                                        # hair
    return labels


def write_synth(directory: Path, **kw) -> Path:
    write_rows(directory, SYNTH, synth_rows(**kw))
    return directory


MICRO_PARAMS = {
    "train": {"image_size": 16, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1},
              "discriminator": {"base_channels": 4}},
    "sweep": {"storage_path": "ray"}, "tracking": {"uri": "sqlite:///mlflow.db", "artifact_root": "mlartifacts"},
    "studies": {"s": {"grid": {"adv_loss": ["lsgan", "hinge"]}}}}


def micro_grid_study(work: Path):
    """Split data of 12 random identities under ``work/splits`` and the parsed params of a two-cell grid
    study ``s`` (16 px, 4 steps): enough for ``run_study`` with its Tune part replaced by a stand-in."""
    from unmask.config import SplitConfig, parse_params
    from unmask.data.split import split_dataset
    from unmask.studies import parse_study_params

    write_synth(work / "synth", n_identities=12, per_identity=2, size=16)
    split_dataset(work / "synth", work / "splits", SplitConfig(val=0.1, test=0.15), seed=0, progress=False)
    return parse_study_params(parse_params(MICRO_PARAMS))


def can_mount_tmpfs() -> bool:
    """Whether an unprivileged mount namespace can mount a (small) tmpfs here -- the full-disk tests need one."""
    import subprocess
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
