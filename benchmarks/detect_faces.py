"""How many real faces the face finder finds, before (dlib's cascade alone) and after (MediaPipe's face
mesh first, dlib as the fallback), and at what cost, on the shared real photos: unmasked tight crops and
photos of people wearing masks.

    python benchmarks/detect_faces.py [--n 400] [--n-before 40] [--seed 0] [--sheet OUT.png]

For ``--n`` photos of each folder (``--n-before`` for the slow dlib-only "before", the same photos'
first ones): the share found, by which step, the share that passes the align stage's checks (eyes and
mouth inside the photo, eye distance), and the median seconds per photo on this CPU (printed).
``--sheet OUT.png`` writes a contact sheet of the first 30 masked faces found (eyes, mouth corners and
the alignment square drawn on each) to count misplaced ones by eye, and ``OUT_before.png`` of dlib's. Skips with a reason when ``../shared/data/faces``
is absent (a clone has no ``../shared``).
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


def _measure(photos, mesh: bool):
    import numpy as np

    from unmask.data.align import _Reject, _check_face
    from unmask.data.landmarks import find_faces
    from unmask.errors import UnmaskError
    from unmask.io.images import load_rgb

    how: Counter[str] = Counter()
    ok, times, found = 0, [], []
    for path in photos:
        try:
            img = load_rgb(path)
        except UnmaskError:
            how["unreadable"] += 1
            continue
        t0 = time.perf_counter()
        faces, step = find_faces(img, 1, cnn=True, pad=0.25, mesh=mesh)
        times.append(time.perf_counter() - t0)
        how[step or "none"] += 1
        if faces:
            found.append((path, img, faces[0]))
            try:
                _check_face(faces[0].astype(np.float64), img.shape, path.name, 8.0)
                ok += 1
            except _Reject:
                pass
    return how, ok, times, found


def _sheet(found, out: Path, n: int = 30) -> None:
    import cv2
    import numpy as np

    from unmask.data.align import ffhq_quad
    from PIL import Image

    tiles = []
    for path, img, lm in found[:n]:
        scale = 160.0 / max(img.shape[:2])
        tile = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
        canvas = np.full((160, 160, 3), 255, np.uint8)
        canvas[:tile.shape[0], :tile.shape[1]] = tile
        p = lambda q: (int(round((q[0] + 0.5) * scale)), int(round((q[1] + 0.5) * scale)))   # noqa: E731
        quad = np.asarray(ffhq_quad(lm.astype(np.float64)))
        cv2.polylines(canvas, [np.array([p(q) for q in quad], np.int32)], True, (0, 200, 255), 1)
        for q, colour in ((lm[36:42].mean(0), (0, 255, 0)), (lm[42:48].mean(0), (0, 255, 0)),
                          (lm[48], (255, 0, 0)), (lm[54], (255, 0, 0))):
            cv2.circle(canvas, p(q), 3, colour, -1)
        cv2.putText(canvas, path.stem[:10], (2, 156), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        tiles.append(canvas)
    while len(tiles) % 6:
        tiles.append(np.full((160, 160, 3), 255, np.uint8))
    rows = [np.concatenate(tiles[i:i + 6], axis=1) for i in range(0, len(tiles), 6)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    print(f"contact sheet: {out} ({min(n, len(found))} faces: green eyes, red mouth corners, "
          "orange the alignment square)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--n-before", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    if not args.faces.is_dir():
        print(f"skipped: {args.faces} is absent (the shared real photos are not part of a clone)")
        return 0

    import numpy as np

    from unmask.data import mesh_faces
    from unmask.sysinfo import cpu_description

    if not mesh_faces.available():
        print("mediapipe is not installed: run bash scripts/setup.sh")
        return 1
    print(f"CPU: {cpu_description()}; mediapipe {mesh_faces.version()}; dlib upsample 1, CNN and 25 % "
          "padded retries")
    print("| photos | finder | n | found | by step | passes align checks | median s/photo |")
    print("|---|---|---:|---:|---|---:|---:|")
    pct = lambda k, n: f"{k} ({100 * k / max(n, 1):.1f} %)"   # noqa: E731
    for folder in sorted(p for p in args.faces.iterdir() if p.is_dir()):
        photos = sorted(p for p in folder.iterdir() if p.is_file())
        photos = random.Random(args.seed).sample(photos, min(args.n, len(photos)))
        for name, mesh, subset in (("before: dlib cascade", False, photos[:args.n_before]),
                                   ("after: face mesh, dlib fallback", True, photos)):
            how, ok, times, found = _measure(subset, mesh)
            n = len(subset)
            steps = ", ".join(f"{k} {v}" for k, v in sorted(how.items()) if k != "none")
            print(f"| {folder.name} | {name} | {n} | {pct(n - how['none'] - how['unreadable'], n)} | {steps} | "
                  f"{pct(ok, n)} | {np.median(times):.3f} |", flush=True)
            if args.sheet and folder.name.startswith("masked"):
                _sheet(found, args.sheet if mesh else args.sheet.with_name(args.sheet.stem + "_before.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
