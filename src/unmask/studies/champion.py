"""The one rule that picks a study's champion, used by the MLflow alias ``champion`` (the sweep),
``STUDY:champion`` (reports, ``unmask infer --model``) and ``unmask infer``'s default model.

The champion is the finished trial (with a checkpoint) best on the study's selection metric, never a
test one: a search study's ``search.metric`` in its ``search.mode`` (the metric's own direction when
no mode is set); else the metric its trainers choose on (``Trainer.SELECT_BY``: ``val_psnr``, a
segmenter's ``val_dice``) in that metric's direction (:mod:`unmask.catalog.metrics`). Ties go to
the first such trial in the table's order. The sweep records the rule it used in
``results/<study>/sweep.json`` (``champion``), so readers of the results that have no params
(``unmask infer --model STUDY:champion``) apply the same one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import pandas as pd

from unmask.catalog.metrics import mode as metric_mode
from unmask.catalog.status import TrialStatus
from unmask.errors import UnmaskError

RECORD_FILE = "sweep.json"   # results/<study>/sweep.json: its "champion" entry is the rule the sweep used


@dataclass(frozen=True)
class ChampionRule:
    metric: str                        # a val_ column of the trials table
    mode: Literal["max", "min"]

    def to_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "mode": self.mode}


def champion_rule(table: pd.DataFrame, study: Any = None) -> ChampionRule:
    """The rule for a study (a :class:`~unmask.studies.config.StudyConfig`, or None when only its
    table is known): its search's metric and mode, else its trainers' metric in its direction."""
    search = getattr(study, "search", None)
    if search is not None:
        return ChampionRule(search.metric, search.resolved_mode)
    from unmask.studies.store import select_by

    metric = select_by(table)   # tables without a framework column: val_psnr
    return ChampionRule(metric, metric_mode(metric))


def recorded_rule(study_dir: str | os.PathLike, table: pd.DataFrame) -> ChampionRule:
    """The rule the sweep recorded in ``<study_dir>/sweep.json``; results swept before it recorded
    one (or without that file): the trainers' rule, :func:`champion_rule` without a study."""
    path = Path(study_dir) / RECORD_FILE
    try:
        entry = json.loads(path.read_text()).get("champion") or {}
        return ChampionRule(str(entry["metric"]), "min" if entry["mode"] == "min" else "max")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return champion_rule(table)


def champion(table: pd.DataFrame, rule: ChampionRule, where: str = "trials table") -> dict[str, Any]:
    """The champion row of ``table`` under ``rule``; UnmaskError naming ``where`` when no finished
    trial with a checkpoint has a value of the rule's metric."""
    found = find_champion(table, rule)
    if found is None:
        raise UnmaskError(f"{where}: no finished trial with {rule.metric} to take as the champion")
    return found


def find_champion(table: pd.DataFrame, rule: ChampionRule) -> Optional[dict[str, Any]]:
    """:func:`champion`, or None when there is none."""
    if rule.metric not in table.columns or "status" not in table.columns:
        return None
    done = table[(table["status"] == TrialStatus.FINISHED)]
    if "checkpoint" in done.columns:
        done = done[done["checkpoint"].fillna("").astype(str).ne("")]
    values = done[rule.metric].astype(float).dropna()
    if values.empty:
        return None
    return done.loc[values.idxmax() if rule.mode == "max" else values.idxmin()].to_dict()
