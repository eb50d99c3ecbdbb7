"""Make docs/infer_example.png: a synthetic masked face on a larger canvas through `unmask infer`
(input | region | output). Run after `dvc repro`:

    python docs/make_infer_example.py [--model table4_approach:champion]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    from unmask.config import SynthesizeConfig
    from unmask.data.occlusions import OCCLUDERS
    from unmask.data.synthetic import render_face, sample_identity

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="table4_approach:champion")
    ap.add_argument("--face", type=int, default=101, help="synthetic identity / variation (101: dlib finds it)")
    args = ap.parse_args()
    face = render_face(sample_identity(1000 + args.face), args.face, 128, glasses_prob=0.0)
    occ = OCCLUDERS["surgical"].from_config(SynthesizeConfig())(face.image, face.landmarks,
                                                               np.random.default_rng(args.face))
    photo = np.full((200, 280, 3), 90, np.uint8)
    photo[40:168, 120:248] = occ.image
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[40:168, 120:248] = occ.mask.astype(np.uint8) * 255
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        cv2.imwrite(str(d / "photo.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(d / "mask.png"), mask)
        subprocess.run([sys.executable, "-m", "unmask.cli", "--root", str(ROOT), "--params", str(ROOT / "params.yaml"),
                        "infer", str(d / "photo.png"), "--mask", str(d / "mask.png"), "--model", args.model,
                        "--out", str(d / "out"), "--side-by-side"], check=True)
        out = cv2.imread(str(d / "out" / "photo.png"))
    target = ROOT / "docs" / "infer_example.png"
    cv2.imwrite(str(target), out)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
