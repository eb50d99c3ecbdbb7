"""Measuring a study's models when it is evaluated and reported: every trial re-measured from its
checkpoint beside the baselines (:mod:`.evaluate`), other studies' champions on its test images
(:mod:`.champions`), and inpainting with a segmenter's predicted mask (:mod:`.end_to_end`), the last
two run by the ``evaluate_across`` stages (:mod:`.across`); the comparison rules and the
``metrics.json`` summary (:mod:`.summary`). Only these stages measure: the report renders their files.

Below the reports, which lay these numbers out (:mod:`unmask.reports`); above the studies, whose
trials tables and champion rule it reads.
"""

from unmask.evaluation.evaluate import evaluate_study, load_samples

__all__ = ["evaluate_study", "load_samples"]
