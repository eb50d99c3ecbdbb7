"""How many real faces each step of the face finder finds (unmask.data.landmarks.find_faces), and at
what cost, on the shared real photos: unmasked tight crops and photos of people wearing masks.

    python benchmarks/detect_faces.py [--n 60] [--seed 0] [--upsample 1]

For a random ``--n`` photos of each folder: the share found by HOG alone, then cumulatively with the CNN
detector, with both on the padded photo, and with the face-crop fallback (which always "finds" a face,
so it is reported separately), plus the median seconds per photo of the cascade and the share of found
faces that pass the align stage's checks (eyes and mouth inside the photo, eye distance). Prints the
CPU. Skips with a reason when ``../shared/data/faces`` is absent (a clone has no ``../shared``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
FACES = ROOT.parent / "shared" / "data" / "faces"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--faces", type=Path, default=FACES)
    args = ap.parse_args()
    if not args.faces.is_dir():
        print(f"skipped: {args.faces} is absent (the shared real photos are not part of a clone)")
        return 0

    import numpy as np

    from unmask.data.align import _Reject, _check_face
    from unmask.data.landmarks import find_faces
    from unmask.errors import UnmaskError
    from unmask.io.images import load_rgb
    from unmask.sysinfo import cpu_description

    print(f"CPU: {cpu_description()}; HOG and CNN upsample {args.upsample}")
    print("| photos | n | HOG | + CNN | + padded | passes align checks | face-crop fallback used | median s/photo |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for folder in sorted(p for p in args.faces.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.is_file())
        photos = random.Random(args.seed).sample(photos, min(args.n, len(photos)))
        how: Counter[str] = Counter()
        ok, times = 0, []
        for path in photos:
            try:
                img = load_rgb(path)
            except UnmaskError:
                how["unreadable"] += 1
                continue
            t0 = time.perf_counter()
            faces, step = find_faces(img, args.upsample, cnn=True, pad=0.25, face_crop=True)
            times.append(time.perf_counter() - t0)
            how[step] += 1
            try:
                _check_face(faces[0].astype(np.float64), img.shape, path.name, 8.0)
                ok += 1
            except _Reject:
                pass
        n = len(photos)
        hog = how["hog"]
        cnn = hog + how["cnn"]
        padded = cnn + how["hog padded"] + how["cnn padded"]
        pct = lambda k: f"{k} ({100 * k / max(n, 1):.0f} %)"   # noqa: E731
        print(f"| {folder.name} | {n} | {pct(hog)} | {pct(cnn)} | {pct(padded)} | {pct(ok)} | "
              f"{pct(how['face crop'])} | {np.median(times):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
