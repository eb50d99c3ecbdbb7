"""Column layout of each data stage's Parquet shards -- the contract between stages.

Images are PNG bytes (``unmask.io.images.encode_png``): RGB for photos, single-channel uint8 for
``mask`` (0 = keep, 255 = occluded) and ``parsing`` (the 11 labels of seed 003, Table 3.1).
Landmarks are the 68 iBUG points as 136 float32 values, x0, y0, x1, y1, ... in pixel coordinates of
the image in the same row. ``attrs`` is a JSON object string for source-specific extras.
"""

from __future__ import annotations

import pyarrow as pa

# The 11 parsing labels (seed 003, Table 3.1); CelebAMask-HQ's 19 labels map onto these.
from unmask.catalog.parsing import PARSING_LABELS  # noqa: E402  (the labels' one definition)
N_LANDMARKS = 68

_LANDMARKS = pa.list_(pa.float32())

RAW = pa.schema([
    ("image_id", pa.string()),      # unique within the dataset
    ("identity", pa.string()),      # person id; splits are identity-disjoint
    ("source", pa.string()),        # e.g. "synthetic", "folder", "ffhq"
    ("image", pa.binary()),         # clean photo, PNG
    ("occluded", pa.binary()),      # nullable: a source's own occluded version (CMFD), PNG
    ("landmarks", _LANDMARKS),      # nullable: 68 points if the source has them
    ("parsing", pa.binary()),       # nullable: 11-label map, PNG (L)
    ("attrs", pa.string()),         # JSON object
])

ALIGNED = RAW  # same columns; images are aligned crops and landmarks are always present

SYNTH = pa.schema([
    ("image_id", pa.string()),      # unique per occluded variant: "<source image_id>#<k>"
    ("source_id", pa.string()),     # image_id of the aligned image it came from
    ("identity", pa.string()),
    ("kind", pa.string()),          # occlusion kind, e.g. "surgical", "template:KN95", "centre_hole"
    ("occluded", pa.binary()),      # PNG RGB: the network's input
    ("clean", pa.binary()),         # PNG RGB: the target
    ("mask", pa.binary()),          # PNG L: 255 where occluded
    ("landmarks", _LANDMARKS),
    ("parsing", pa.binary()),       # nullable
    ("attrs", pa.string()),
])

SPLIT = SYNTH.append(pa.field("split", pa.string())).append(pa.field("domain", pa.string()))
# split: "train" | "val" | "test"; domain (train only): "masked" or "clean" -- the two unpaired
# domains, drawn from disjoint identities; val/test rows have domain "paired".
