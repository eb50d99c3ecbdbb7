"""Identity-disjoint train / val / test splits, with two unpaired training domains.

Seed 000 (Sections 4.1-4.2) trains an unpaired CycleGAN on masked faces and clean faces of *different*
people, and tests on paired images (occluded input, clean original). So identities -- not images -- are
assigned to splits, and the train identities are further divided between the masked domain and the
clean domain. Val and test rows are paired (occluded, clean, mask).

Identities are the ones the source gave (sub-folder names, dataset labels), except where a folder only
named photos by their file: there dlib face descriptors (computed by the align stage) group the photos
into people first, so one person -- or one photo saved twice -- cannot be on both sides of a split.
``summary.json`` says which method gave the identities and, where descriptors exist, the share of test
faces that have a train face closer than the same-person threshold.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from unmask.config import SplitConfig
from unmask.data.identities import (IDENTITY_FROM_KEY, METHOD_SOURCE, SAME_PERSON_DISTANCE, Face,
                                    face_from_attrs, resolve_identities, share_near)
from unmask.data.schema import SPLIT
from unmask.errors import UnmaskError
from unmask.io.atomic import atomic_dir
from unmask.io.shards import ShardWriter, iter_rows, read_table

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# a clustered identity this small only warns when over split.max_identity_share (a folder of a few
# dozen photos of a few people is legitimately lumpy)
SMALL_IDENTITY_PHOTOS = 20


@dataclass
class SplitAssignment:
    """Which split (and, for train, which domain) every identity belongs to."""

    split: dict[str, str]   # identity -> "train" | "val" | "test"
    domain: dict[str, str]  # identity -> "masked" | "clean" | "paired"


def assign_identities(identities: list[str], cfg: SplitConfig, seed: int) -> SplitAssignment:
    """Shuffle identities deterministically (by seed, independent of input order) and cut them up."""
    ids = sorted(set(identities))
    n = len(ids)
    n_test = int(round(cfg.test * n)) if cfg.test > 0 else 0
    n_val = int(round(cfg.val * n)) if cfg.val > 0 else 0
    n_test = max(n_test, 1 if cfg.test > 0 else 0)
    n_val = max(n_val, 1 if cfg.val > 0 else 0)
    n_train = n - n_test - n_val
    if n_train < 2:
        raise UnmaskError(
            f"split: {n} identities are too few for val={cfg.val}, test={cfg.test} and two train domains "
            f"(need at least {n_test + n_val + 2}); add identities or lower split.val / split.test")
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [ids[i] for i in order]
    split = {}
    for i, ident in enumerate(shuffled):
        split[ident] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    train_ids = [i for i in shuffled if split[i] == "train"]
    n_clean = min(max(1, int(round(cfg.clean_domain * len(train_ids)))), len(train_ids) - 1)
    domain = {ident: "paired" for ident in ids}
    for i, ident in enumerate(train_ids):
        domain[ident] = "clean" if i < n_clean else "masked"
    return SplitAssignment(split, domain)


@dataclass
class SplitReport:
    rows: dict[str, int] = field(default_factory=dict)
    identities: dict[str, int] = field(default_factory=dict)
    train_domains: dict[str, dict[str, int]] = field(default_factory=dict)
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    identity_overlap: dict[str, int] = field(default_factory=dict)
    # how identities were decided (unmask.data.identities.METHOD_*, several joined by " + "); overlap is
    # counted in these identities, so it is only as good as they are
    identity_method: str = METHOD_SOURCE
    photos_regrouped_by_face: int = 0           # photos whose identity came from embedding clusters
    faces_with_embedding: int = 0               # aligned photos with a dlib face descriptor
    # photos in the largest identity, and its share of all photos (split.max_identity_share bounds it
    # for identities found by face clustering)
    largest_identity_photos: int = 0
    largest_identity_share: float = 0.0
    # share of test photos whose nearest train photo is closer than the same-person threshold
    # (null without descriptors): the leakage the identity labels did not prevent
    test_faces_near_a_train_face: Optional[float] = None
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _faces(in_dir: str | Path) -> tuple[list[str], list[Face]]:
    """Each row's source photo, and one :class:`Face` per source photo (first row's attrs)."""
    table = read_table(in_dir, columns=["source_id", "identity", "attrs"])
    source_ids = table.column("source_id").to_pylist()
    faces: dict[str, Face] = {}
    for sid, ident, attrs in zip(source_ids, table.column("identity").to_pylist(),
                                 table.column("attrs").to_pylist()):
        if sid in faces:
            continue
        parsed = json.loads(attrs) if attrs and IDENTITY_FROM_KEY in attrs else {}
        faces[sid] = face_from_attrs(sid, ident, parsed)
    return source_ids, list(faces.values())


def _near_share(faces: list[Face], ident: dict[str, str], split: dict[str, str]) -> Optional[float]:
    by = {s: [f.embedding for f in faces if f.embedding is not None and split[ident[f.key]] == s]
          for s in ("train", "test")}
    if not by["train"] or not by["test"]:
        return None
    return round(share_near(np.stack(by["test"]), np.stack(by["train"]), SAME_PERSON_DISTANCE), 4)


def _check_share(resolved, n_photos: int, cfg: SplitConfig, source: str) -> None:
    share = resolved.largest_clustered / max(n_photos, 1)
    if share <= cfg.max_identity_share:
        return
    msg = (f"{source}: split.max_identity_share: face-embedding clustering put {resolved.largest_clustered} "
           f"of {n_photos} photos ({share:.1%}) into one identity, more than the {cfg.max_identity_share:g} "
           "allowed")
    if resolved.largest_clustered <= SMALL_IDENTITY_PHOTOS:
        log.warning("%s (kept: %d photos or fewer only warn)", msg, SMALL_IDENTITY_PHOTOS)
        return
    raise UnmaskError(f"{msg}; give identities by sub-folder (one per person) or raise the share")


def split_dataset(in_dir: str | Path, out_dir: str | Path, cfg: SplitConfig, seed: int,
                  progress: bool = True, source: str = "params.yaml") -> SplitReport:
    """Read SYNTH shards from ``in_dir`` and write ``out_dir/{train,val,test}/`` (SPLIT schema) and
    ``out_dir/summary.json``.

    A row's identity is the one its source gave, except for folder photos named only by their file:
    those are grouped by face descriptor (:func:`unmask.data.identities.resolve_identities`) and
    written with the group's identity. An identity that clustering made larger than
    ``cfg.max_identity_share`` of the photos is refused (``source`` is the params file, for the
    message); nothing is written then."""
    source_ids, faces = _faces(in_dir)
    if not source_ids:
        raise UnmaskError(f"{in_dir}: no images to split (the synthesize stage produced none)")
    resolved = resolve_identities(faces)
    _check_share(resolved, len(faces), cfg, source)
    ident = resolved.identity
    identities = [ident[s] for s in source_ids]
    try:
        assignment = assign_identities(identities, cfg, seed)
    except UnmaskError as e:
        if resolved.method == METHOD_SOURCE:
            raise
        raise UnmaskError(f"{e} (identities: {resolved.method}, {len(faces)} photos)") from None

    ids_by = {s: set() for s in SPLITS}
    dom_ids = {"masked": set(), "clean": set()}
    rows = Counter()
    kinds = {s: Counter() for s in SPLITS}
    with atomic_dir(out_dir) as tmp:
        writers = {s: ShardWriter(tmp / s, SPLIT) for s in SPLITS}
        for row in tqdm(iter_rows(in_dir), total=len(identities), desc="split", unit="img",
                        disable=not progress):
            row["identity"] = ident_ = ident[row["source_id"]]
            s = assignment.split[ident_]
            row["split"] = s
            row["domain"] = assignment.domain[ident_]
            writers[s].write(row)
            ids_by[s].add(ident_)
            rows[s] += 1
            kinds[s][row["kind"]] += 1
            if s == "train":
                dom_ids[row["domain"]].add(ident_)
        for w in writers.values():
            w.close()
        report = SplitReport(
            rows={s: rows[s] for s in SPLITS},
            identities={s: len(ids_by[s]) for s in SPLITS},
            train_domains={d: {"identities": len(v),
                               "rows": sum(1 for i in identities if i in v)} for d, v in dom_ids.items()},
            kinds={s: dict(sorted(kinds[s].items())) for s in SPLITS},
            identity_overlap={
                "train_val": len(ids_by["train"] & ids_by["val"]),
                "train_test": len(ids_by["train"] & ids_by["test"]),
                "val_test": len(ids_by["val"] & ids_by["test"]),
                "train_masked_clean": len(dom_ids["masked"] & dom_ids["clean"]),
            },
            identity_method=resolved.method,
            photos_regrouped_by_face=resolved.n_merged,
            faces_with_embedding=sum(f.embedding is not None for f in faces),
            largest_identity_photos=(largest := max(Counter(ident.values()).values())),
            largest_identity_share=round(largest / len(faces), 4),
            test_faces_near_a_train_face=_near_share(faces, ident, assignment.split),
            seed=seed,
        )
        (tmp / "summary.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if any(report.identity_overlap.values()):  # cannot happen by construction; never ship it silently
        raise UnmaskError(f"{out_dir}: identity overlap between splits {report.identity_overlap}")
    return report
