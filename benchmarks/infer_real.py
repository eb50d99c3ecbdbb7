"""`unmask infer` on real photos of masked people: share processed, rejection reasons, seconds per photo,
and a contact sheet (input | region | output) of 16 photos.

    python benchmarks/infer_real.py ../shared/data/faces/masked-real --out /tmp/infer_real \\
        [--model STUDY:champion] [--limit 100] [--seed 0]

The photos are research-only: the contact sheet and outputs go to ``--out`` (keep them out of the
repository). Prints the CPU it ran on; timings are wall seconds per photo on this machine (the face
finder: MediaPipe's face mesh, dlib's detectors where it finds nothing; alignment; segmenter; model;
colour match and Poisson blend). ``benchmarks/infer_vs_telea.py`` measures the same path against
Telea on real faces with drawn masks.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photos", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default=None, help="checkpoint or STUDY:champion (default: best image-only champion)")
    ap.add_argument("--limit", type=int, default=None, help="a random sample of this many photos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--face-crop", action="store_true", help="photos are face crops: fall back to the whole crop")
    args = ap.parse_args()
    if not args.photos.is_dir():
        print(f"skipped: {args.photos} is absent (the shared real photos are not part of a clone)")
        return 0

    import cv2
    import numpy as np
    from tqdm import tqdm

    from unmask.config import load_params
    from unmask.errors import UnmaskError
    from unmask.infer import (default_model, default_segmenter, find_faces_how, list_photos, load_unmasker,
                              side_by_side, unmask_face)
    from unmask.io.images import load_rgb
    from unmask.studies import parse_study_params
    from unmask.sysinfo import cpu_description

    studies = {n: s.kinds for n, s in parse_study_params(load_params(ROOT / "params.yaml")).studies.items()}
    seg_spec = default_segmenter(ROOT)
    segmenter = load_unmasker(seg_spec, ROOT, role="segmenter") if seg_spec else None
    model = load_unmasker(args.model or default_model(ROOT, studies, need_mask_free=segmenter is None), ROOT)
    photos, _ = list_photos(args.photos)
    if args.limit:
        photos = sorted(random.Random(args.seed).sample(photos, min(args.limit, len(photos))))
    args.out.mkdir(parents=True, exist_ok=True)
    reasons: Counter[str] = Counter()
    found_by: Counter[str] = Counter()
    sheet, times, n_faces = [], [], 0
    for path in tqdm(photos, desc="infer", unit="photo", disable=None):
        t0 = time.perf_counter()
        try:
            photo = load_rgb(path)
            faces, how = find_faces_how(photo, args.face_crop)
            if not faces:
                raise UnmaskError("no face found")
            found_by[how] += 1
            out, region = photo, np.zeros(photo.shape[:2], bool)
            for lm in faces:
                res = unmask_face(out, lm, model, segmenter=segmenter)
                out, region = res.output, region | res.region
            n_faces += len(faces)
        except UnmaskError as e:
            reasons[str(e).split(": ")[-1].split(" (")[0]] += 1
            continue
        finally:
            times.append(time.perf_counter() - t0)
        if len(sheet) < 16:
            tile = side_by_side(photo, region, out)
            sheet.append(cv2.resize(tile, (3 * 160, 160), interpolation=cv2.INTER_AREA))
    done = len(photos) - sum(reasons.values())
    if sheet:
        rows = [np.concatenate(sheet[i:i + 2], 1) if i + 1 < len(sheet) else
                np.concatenate([sheet[i], np.zeros_like(sheet[i])], 1) for i in range(0, len(sheet), 2)]
        cv2.imwrite(str(args.out / "contact_sheet.png"), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    print(f"CPU: {cpu_description()}")
    print(f"model: {model.name} ({model.size} px, input {model.trainer.model_input}); region: "
          f"{segmenter.name if segmenter else 'lower face from the landmarks'}")
    print(f"photos: {len(photos)}; processed {done} ({100 * done / max(len(photos), 1):.1f} %), faces {n_faces}")
    print("found by: " + ", ".join(f"{k}: {v}" for k, v in found_by.most_common()))
    print("rejected: " + (", ".join(f"{k}: {v}" for k, v in reasons.most_common()) or "none"))
    print(f"seconds per photo: median {np.median(times):.2f}, mean {np.mean(times):.2f}")
    print(f"contact sheet: {args.out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
