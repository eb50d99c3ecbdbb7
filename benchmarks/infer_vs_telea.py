"""The whole `unmask infer` path on real faces, scored at the photo's own resolution against OpenCV's
Telea on the same photo and mask.

    python benchmarks/infer_vs_telea.py [--n 60] [--seed 0] [--model STUDY:champion ...] [--sheet OUT.png]

Real unmasked photos (``../shared/data/faces/unmasked-crops``) get one of the project's masks drawn on
them at photo resolution (surgical, cloth, N95, KN95 in turn; the exact binary mask kept). Each masked
photo then goes through infer as a user's would: the face finder on the masked photo, alignment, the
region (the true mask given as ``--mask``, and the segmenter's prediction as without it), the model,
colour match and Poisson blend. Masked PSNR and SSIM are measured inside the true mask against the
unmasked photo; Telea fills the same photo inside the same true mask. Differences with Telea come with
a 95 % bootstrap interval over photos. ``--sheet`` writes a contact sheet (masked photo | found region
| output | original) of the first 8 photos, predicted-mask path. Run it after ``dvc repro`` (it needs
trained models under ``results/``); it prints the CPU. Skips when ``../shared`` is absent.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
FACES = ROOT.parent / "shared" / "data" / "faces" / "unmasked-crops"
KINDS = ("surgical", "cloth", "n95", "kn95")


def _masked_scores(out, clean, mask):
    import numpy as np
    import torch

    from unmask.evaluation.leaderboard import masked_ssim

    d = (out.astype(np.float64) - clean.astype(np.float64)) / 255.0
    mse = float((d[mask] ** 2).mean())
    psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    ssim = float(masked_ssim(t(out), t(clean), torch.from_numpy(mask)[None, None].double())[0])
    return psnr, ssim


def _ci(diffs, rng, draws=2000):
    import numpy as np

    d = np.asarray(diffs)
    means = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    return d.mean(), np.quantile(means, 0.025), np.quantile(means, 0.975)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--model", action="append", default=None, help="STUDY:champion or a checkpoint (repeatable)")
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args()
    if not args.faces.is_dir():
        print(f"skipped: {args.faces} is absent (the shared real photos are not part of a clone)")
        return 0

    import cv2
    import numpy as np

    from unmask.config import SynthesizeConfig, load_params
    from unmask.data.occlusions import OCCLUDERS
    from unmask.errors import UnmaskError
    from unmask.infer import (default_model, default_segmenter, find_faces, leaderboard_choice, load_unmasker,
                              restore_photo, write_png)
    from unmask.io.images import load_rgb
    from unmask.studies import parse_study_params
    from unmask.sysinfo import cpu_description

    root = args.root
    studies = {n: s.kinds for n, s in parse_study_params(load_params(str(root / "params.yaml"))).studies.items()}
    specs = args.model or [default_model(root, studies, need_mask_free=False)]
    why = leaderboard_choice(root, False)
    seg_spec = default_segmenter(root)
    segmenter = load_unmasker(seg_spec, root, role="segmenter") if seg_spec else None
    models = {spec: load_unmasker(spec, root, role="model") for spec in specs}
    print(f"CPU: {cpu_description()}")
    print(f"models: {', '.join(f'{s} ({m.name}, {m.size} px)' for s, m in models.items())}"
          + (f"; default chosen by {why[1]}" if why and not args.model else "")
          + f"; segmenter: {segmenter.name if segmenter else 'none'}")
    photos = sorted(p for p in args.faces.iterdir() if p.is_file())
    photos = random.Random(args.seed).sample(photos, min(args.n, len(photos)))
    synth = SynthesizeConfig()
    rows = {"telea": []}
    sheet, skipped, seconds = [], 0, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(photos):
            clean = load_rgb(path)
            faces = find_faces(clean)
            if len(faces) != 1:
                skipped += 1
                continue
            kind = KINDS[i % len(KINDS)]
            occ = OCCLUDERS[kind].from_config(synth)(clean, faces[0], np.random.default_rng(args.seed * 1000 + i))
            if not occ.mask.any():
                skipped += 1
                continue
            masked = Path(tmp) / f"{i}.png"
            write_png(masked, occ.image)
            telea = cv2.inpaint(occ.image, occ.mask.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
            rows["telea"].append(_masked_scores(telea, clean, occ.mask))
            for spec, model in models.items():
                for label, kw in (("true mask", {"user_mask": occ.mask, "segmenter": None}),
                                  ("predicted mask", {"user_mask": None, "segmenter": segmenter})):
                    if label == "predicted mask" and (segmenter is None or not model.takes_mask):
                        continue
                    key = f"{spec} ({label})"
                    t0 = time.perf_counter()
                    try:
                        _, region, out = restore_photo(masked, model, kw["user_mask"], kw["segmenter"], False)
                    except UnmaskError as e:      # the masked photo's face was not found: scored as the input
                        region, out = np.zeros(clean.shape[:2], bool), occ.image
                        print(f"  {path.name}: {e}")
                    seconds.setdefault(key, []).append(time.perf_counter() - t0)
                    rows.setdefault(key, []).append(_masked_scores(out, clean, occ.mask))
                    if label == "predicted mask" and spec == specs[0] and len(sheet) < 8:
                        sheet.append((occ.image, region, out, clean))
    n = len(rows["telea"])
    print(f"{n} photos ({skipped} skipped: not exactly one face found on the unmasked photo); masks: "
          f"{', '.join(KINDS)} in turn; scored inside the true mask at each photo's own resolution")
    print("| method | masked PSNR (dB) | masked SSIM | Δ PSNR vs Telea (95 % CI) | Δ SSIM vs Telea (95 % CI) | "
          "photos better than Telea (PSNR) | s / photo |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    tel = np.array(rows["telea"])
    for key, vals in rows.items():
        v = np.array(vals)
        if key == "telea":
            print(f"| OpenCV Telea (true mask) | {v[:, 0].mean():.2f} | {v[:, 1].mean():.4f} | – | – | – | – |")
            continue
        dp, lp, hp = _ci(v[:, 0] - tel[:, 0], rng)
        ds, ls, hs = _ci(v[:, 1] - tel[:, 1], rng)
        print(f"| {key} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.4f} | {dp:+.2f} ({lp:+.2f}, {hp:+.2f}) | "
              f"{ds:+.4f} ({ls:+.4f}, {hs:+.4f}) | {int((v[:, 0] > tel[:, 0]).sum())}/{n} | "
              f"{np.median(seconds[key]):.3f} |")
    if args.sheet and sheet:
        tiles = []
        for occluded, region, out, clean in sheet:
            cells = [occluded, np.repeat((region * 255).astype(np.uint8)[..., None], 3, 2), out, clean]
            cells = [cv2.resize(c, (128, 128), interpolation=cv2.INTER_AREA if c.shape[0] > 128 else cv2.INTER_CUBIC)
                     for c in cells]
            tiles.append(np.concatenate(cells, axis=1))
        write_png(args.sheet, np.concatenate(tiles, axis=0))
        print(f"contact sheet: {args.sheet} (masked photo | found region | output | original; predicted mask, "
              f"{specs[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
