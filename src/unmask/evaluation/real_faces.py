"""Test faces made from a folder of real, unmasked photos (``unmask benchmark-real FOLDER``): the same
download (folder source), align (face mesh first) and synthesize steps as the pipeline, the project's
masks drawn on the real faces with their exact binary masks, and every face kept as a paired test
face. :func:`unmask.evaluation.leaderboard.measure_leaderboard` then scores them exactly as it scores
the synthetic test split: one code path, only the faces differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from unmask.config import AlignConfig, DataConfig, SynthesizeConfig
from unmask.data.align import align_dataset
from unmask.data.schema import SPLIT
from unmask.data.sources import download_source
from unmask.data.synthesize import synthesize_dataset
from unmask.errors import UnmaskError
from unmask.io.images import decode_png
from unmask.io.shards import ShardWriter, iter_rows


@dataclass
class RealTestFaces:
    test_dir: Path
    photos: int          # readable, distinct photos in the folder
    aligned: int         # of them, faces found and aligned
    faces: int           # occluded test faces made
    rejected: dict[str, int]


def prepare_real_test(folder: str | os.PathLike, work: str | os.PathLike, align: AlignConfig,
                      synthesize: SynthesizeConfig, seed: int, limit: Optional[int] = None,
                      progress: bool = True) -> RealTestFaces:
    """``work/raw``, ``work/aligned``, ``work/synth`` and ``work/test`` (SPLIT shards, every face a paired
    test face) from the photos in ``folder``; the user's folder is only read."""
    folder, work = Path(folder), Path(work)
    if not folder.is_dir():
        raise UnmaskError(f"{folder}: not a folder of photos")
    cfg = DataConfig.model_validate({"source": "folder", "limit": limit,
                                     "folder": {"path": str(folder.resolve())}})
    src = download_source(cfg, seed, work / "raw")
    rep = align_dataset(work / "raw", work / "aligned", align, progress=progress)
    synthesize_dataset(work / "aligned", work / "synth", synthesize, seed, progress=progress)
    writer = ShardWriter(work / "test", SPLIT)
    n, empty = 0, 0
    for row in iter_rows(work / "synth"):
        if not decode_png(row["mask"]).any():     # nothing drawn (a face turned away): no masked metric
            empty += 1
            continue
        row["split"], row["domain"] = "test", "paired"
        writer.write(row)
        n += 1
    writer.close()
    rejected = dict(rep.reasons)
    if empty:
        rejected["empty mask"] = empty
    return RealTestFaces(work / "test", src.n_images, rep.n_aligned, n, rejected)
