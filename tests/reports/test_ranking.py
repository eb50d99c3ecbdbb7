"""Leaderboard rank intervals: the bootstrap orders two methods only when their intervals say so."""

from __future__ import annotations

import numpy as np
import pytest

from unmask.reports.ranking import ahead, ordered_pairs, rank_intervals, rule_text, tied_with


def _faces(rng, n=60):
    return rng.normal(25.0, 2.0, size=n)  # each face's own difficulty, shared by every method


def test_two_methods_whose_intervals_overlap_are_not_ordered():
    rng = np.random.default_rng(0)
    face = _faces(rng)
    # a's two seeds land 1 dB either side of b's: its mean is ahead by 0.05 dB, its seeds disagree
    a = face + np.array([[1.05], [-0.95]]) + rng.normal(0, 0.05, size=(2, 60))
    b = face + np.array([[0.02], [-0.02]]) + rng.normal(0, 0.05, size=(2, 60))
    ri = {r.method: r for r in rank_intervals({"a": a, "b": b}, higher_is_better=True)}
    assert ri["a"].low <= ri["b"].high and ri["b"].low <= ri["a"].high  # they overlap ...
    assert not ahead(ri["a"], ri["b"]) and not ahead(ri["b"], ri["a"])   # ... so neither leads
    assert ordered_pairs(list(ri.values())) == []
    assert tied_with(ri["a"], list(ri.values())) == ["b"]


def test_a_clear_lead_is_ordered_and_a_middle_method_ties_with_neither_end_only_when_close():
    rng = np.random.default_rng(1)
    face = _faces(rng)
    scores = {"strong": face + 3.0 + rng.normal(0, 0.1, size=(3, 60)),
              "input": face[None, :],                                  # a baseline: one "seed"
              "weak": face - 3.0 + rng.normal(0, 0.1, size=(2, 60))}
    ri = rank_intervals(scores, higher_is_better=True)
    assert [r.method for r in ri] == ["strong", "input", "weak"]
    assert [(r.low, r.high) for r in ri] == [(1, 1), (2, 2), (3, 3)]
    assert set(ordered_pairs(ri)) == {("strong", "input"), ("strong", "weak"), ("input", "weak")}
    assert [r.seeds for r in ri] == [3, 1, 2]


def test_lower_is_better_flips_the_order():
    rng = np.random.default_rng(2)
    face = np.abs(_faces(rng)) / 100
    ri = rank_intervals({"low_error": face * 0.5, "high_error": face * 2.0}, higher_is_better=False)
    assert ri[0].method == "low_error" and ahead(ri[0], ri[1])


def test_grouped_draws_widen_intervals_when_identities_differ():
    """Faces of one person move together: redrawing identities (not faces) is the honest unit."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(6), 10)
    person = rng.normal(0, 2.0, size=6)[groups]           # a's lead depends on who is in the test set
    a = 25.0 + 0.4 + person + rng.normal(0, 0.05, size=60)
    b = np.full(60, 25.0) + rng.normal(0, 0.05, size=60)
    by_face = {r.method: r for r in rank_intervals({"a": a, "b": b}, True)}
    by_person = {r.method: r for r in rank_intervals({"a": a, "b": b}, True, groups=groups)}
    assert (by_person["a"].high - by_person["a"].low) >= (by_face["a"].high - by_face["a"].low)
    assert not ahead(by_person["a"], by_person["b"])


def test_methods_on_different_faces_or_with_nan_are_refused():
    with pytest.raises(ValueError, match="different numbers of faces"):
        rank_intervals({"a": np.zeros(5), "b": np.zeros(6)}, True)
    with pytest.raises(ValueError, match="b: scores hold NaN"):
        rank_intervals({"a": np.zeros(5), "b": np.array([0, 1, np.nan, 0, 0])}, True)
    assert "overlapping intervals are tied" in rule_text()
