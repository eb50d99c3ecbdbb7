"""Rank intervals for a leaderboard: a hierarchical bootstrap over test faces and training seeds.

Every method is scored on the same test faces (paired), each trained method with one or more seeds, a
deterministic baseline with one. A bootstrap draw

1. redraws the test faces with replacement -- the same draw for every method, so their pairing is kept;
   given ``groups`` (a face's identity), it redraws identities and takes all their faces, since faces of
   one person are not independent;
2. redraws each method's seeds with replacement (its training noise);
3. scores each method by its mean over those faces and seeds, and ranks the methods (1 = best).

A method's rank interval is the central ``LEVEL`` share of its ranks over ``DRAWS`` draws. Method A is
ordered ahead of B only when A's whole interval lies above B's (:func:`ahead`): overlapping intervals
say the data do not tell them apart, and the leaderboard lists them as tied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

DRAWS = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class RankInterval:
    method: str
    mean: float    # the method's mean score over all its seeds and faces
    rank: int      # its rank by that mean (1 = best)
    low: int       # best rank of its interval
    high: int      # worst rank of its interval
    seeds: int


def _as_matrix(name: str, values) -> np.ndarray:
    a = np.asarray(values, np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name}: scores must be (seeds, faces), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: scores hold NaN or infinite values")
    return a


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Ranks 1..M along the last axis (ties share the best rank they span)."""
    v = -values if higher_is_better else values
    return (v[..., :, None] > v[..., None, :]).sum(-1) + 1


def rank_intervals(scores: Mapping[str, Sequence], higher_is_better: bool,
                   groups: Optional[Sequence] = None, draws: int = DRAWS, level: float = LEVEL,
                   seed: int = 0) -> list[RankInterval]:
    """One :class:`RankInterval` per method, best mean first. ``scores[method]`` is ``(seeds, faces)``
    (or ``(faces,)`` for one seed); every method must have the same faces in the same order. ``groups``
    (one label per face) makes the face redraw a redraw of groups."""
    if not scores:
        return []
    names = list(scores)
    mats = {n: _as_matrix(n, scores[n]) for n in names}
    n_faces = {m.shape[1] for m in mats.values()}
    if len(n_faces) != 1:
        raise ValueError(f"methods are scored on different numbers of faces: "
                         f"{ {n: m.shape[1] for n, m in mats.items()} }")
    f = n_faces.pop()
    rng = np.random.default_rng(seed)
    if groups is None:
        weights = rng.multinomial(f, np.full(f, 1.0 / f), size=draws).astype(np.float64)   # (D, F)
    else:
        if len(groups) != f:
            raise ValueError(f"groups has {len(groups)} labels for {f} faces")
        _, of_face = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        g = int(of_face.max()) + 1
        weights = rng.multinomial(g, np.full(g, 1.0 / g), size=draws)[:, of_face].astype(np.float64)
    total = weights.sum(axis=1)
    total[total == 0] = 1.0
    drawn = np.empty((draws, len(names)))
    for j, n in enumerate(names):
        per_seed = weights @ mats[n].T / total[:, None]                           # (D, S)
        s = per_seed.shape[1]
        pick = rng.integers(0, s, size=(draws, s))
        drawn[:, j] = np.take_along_axis(per_seed, pick, axis=1).mean(axis=1)
    ranks = _ranks(drawn, higher_is_better)                                       # (D, M)
    tail = (1.0 - level) / 2.0
    lows = np.floor(np.quantile(ranks, tail, axis=0, method="lower")).astype(int)
    highs = np.ceil(np.quantile(ranks, 1.0 - tail, axis=0, method="higher")).astype(int)
    means = np.array([mats[n].mean() for n in names])
    point = _ranks(means, higher_is_better)
    out = [RankInterval(n, float(means[j]), int(point[j]), int(lows[j]), int(highs[j]), mats[n].shape[0])
           for j, n in enumerate(names)]
    return sorted(out, key=lambda r: (r.rank, r.method))


def ahead(a: RankInterval, b: RankInterval) -> bool:
    """Whether ``a`` is ordered ahead of ``b``: its worst rank is better than ``b``'s best."""
    return a.high < b.low


def ordered_pairs(intervals: Sequence[RankInterval]) -> list[tuple[str, str]]:
    """Every ``(ahead, behind)`` pair the intervals order."""
    return [(a.method, b.method) for a in intervals for b in intervals if ahead(a, b)]


def tied_with(r: RankInterval, intervals: Sequence[RankInterval]) -> list[str]:
    """The methods ``r`` is not ordered against (its tied group, itself left out)."""
    return [o.method for o in intervals if o.method != r.method and not ahead(r, o) and not ahead(o, r)]


def rule_text(draws: int = DRAWS, level: float = LEVEL, grouped: bool = False) -> str:
    """The ordering rule, to print under a leaderboard."""
    unit = "test identities (all their faces)" if grouped else "test faces"
    return (f"Rank intervals: {level:.0%} of {draws} bootstrap draws, each redrawing the {unit} (the same "
            "draw for every method: paired) and each method's seeds; a method's rank is 1 for the best mean. "
            "A method is ordered ahead of another only when its whole interval is above the other's "
            "(worst rank better than the other's best); overlapping intervals are tied.")
