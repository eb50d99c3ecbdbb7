"""Search studies (tune rather than tabulate): the ``search`` section, sampled trials, the Tune pieces,
and how trials a scheduler stopped are told from trials an interruption stopped."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from unmask.config import parse_params
from unmask.errors import ConfigError
from unmask.studies import expand_study, parse_study_params
from unmask.studies.grid import apply_sample, resolve_trial

BASE = {"train": {"image_size": 32, "steps": 300, "val_every": 100,
                  "generator": {"base_channels": 4, "n_blocks": 1}}}
SEARCH = {"space": {"lr_g": {"loguniform": [1e-4, 3e-3]}, "generator.approach": {"choice": ["normal", "mask"]}},
          "num_samples": 5}


def _parse(study: dict, train: dict | None = None):
    return parse_study_params(parse_params({"train": {**BASE["train"], **(train or {})},
                                            "studies": {"s": study}}))


def test_search_study_is_one_base_trial():
    p = _parse({"train": {"framework": "cyclegan"}, "search": SEARCH, "seeds": [7]})
    trials = expand_study(p, "s")
    assert len(trials) == 1
    assert trials[0]["cell"] == {} and trials[0]["seed"] == 7 and trials[0]["train"]["seed"] == 7
    s = p.study("s").search
    assert s.resolved_mode == "max" and s.scheduler == "asha" and s.algorithm == "random"


@pytest.mark.parametrize("search, extra, key", [
    ({**SEARCH, "space": {"lr_gg": {"uniform": [0, 1]}}}, {}, "studies.s.search.space.lr_gg: unknown key"),
    ({**SEARCH, "space": {"adv_loss": {"choice": ["hinge", "hing"]}}}, {}, "studies.s.search.space.adv_loss: unknown 'hing'"),
    ({**SEARCH, "space": {"lr_g": {"uniform": [-1, 1]}}}, {}, "studies.s.search.space.lr_g: must be a finite number > 0"),
    ({**SEARCH, "space": {"lr_g": {"loguniform": [0, 1]}}}, {}, "studies.s.search.space.lr_g: loguniform: low must be > 0"),
    ({**SEARCH, "space": {"lr_g": {"uniform": [2, 1]}}}, {}, "studies.s.search.space.lr_g: uniform: low must be below"),
    ({**SEARCH, "space": {"lr_g": {"uniform": [1, 2], "choice": [1]}}}, {}, "studies.s.search.space.lr_g: give exactly one"),
    ({**SEARCH, "space": {"lr_g": {"normal": [1, 2]}}}, {}, "studies.s.search.space.lr_g.normal: unknown key"),
    ({**SEARCH, "space": {"image_size": {"choice": [32, 64]}}}, {}, "studies.s.search.space: image_size cannot be searched"),
    ({**SEARCH, "space": {}}, {}, "studies.s.search.space:"),
    ({**SEARCH, "metric": "test_psnr"}, {}, "studies.s.search.metric: 'test_psnr' is not a validation metric"),
    ({**SEARCH, "scheduler": "pbt"}, {}, "studies.s.search.scheduler:"),
    ({**SEARCH, "num_samples": 0}, {}, "studies.s.search.num_samples:"),
    ({**SEARCH, "grace_period": 301}, {}, "studies.s.search.grace_period: 301 is beyond the trials' 300 steps"),
    (SEARCH, {"grid": {"adv_loss": ["hinge"]}}, "studies.s: a study has either a grid"),
    (SEARCH, {"seeds": [0, 1]}, "studies.s: a search study takes one seed"),
])
def test_search_errors_name_the_dotted_key(search, extra, key):
    with pytest.raises(ConfigError) as e:
        _parse({"search": search, **extra})
    msg = str(e.value)
    assert msg.startswith(f"params.yaml: {key}"), msg
    assert "\n" not in msg


def test_apply_sample_sets_dotted_values_and_names_the_cell():
    p = _parse({"search": SEARCH})
    base = expand_study(p, "s")[0]
    trial = apply_sample(base, {"lr_g": 0.000123456, "generator.approach": "mask"})
    assert trial["train"]["lr_g"] == pytest.approx(0.000123456)
    assert trial["train"]["generator"]["approach"] == "mask"
    assert trial["cell"] == {"lr_g": 0.000123456, "generator.approach": "mask"}
    assert trial["cell_label"] == "lr_g=0.000123 generator.approach=mask"
    assert base["train"]["lr_g"] != trial["train"]["lr_g"]          # the base trial is not changed
    assert resolve_trial({"trial": base, "sample": {"lr_g": 0.001}})["train"]["lr_g"] == 0.001
    assert resolve_trial({"trial": base}) is base
    json.dumps(trial)                                                 # plain data: Tune can store it


def test_apply_sample_converts_numpy_scalars():
    np = pytest.importorskip("numpy")
    base = expand_study(_parse({"search": SEARCH}), "s")[0]
    trial = apply_sample(base, {"lr_g": np.float64(0.002), "generator.approach": np.str_("mask")})
    assert type(trial["train"]["lr_g"]) is float and type(trial["cell"]["lr_g"]) is float


def test_search_setup_builds_sampler_scheduler_and_metric():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.sample import Categorical, Float

    from unmask.studies.tune_setup import search_setup

    p = _parse({"search": {**SEARCH, "metric": "val_l1"}})
    setup = search_setup(p.study("s").search, expand_study(p, "s")[0], max_concurrent=3)
    assert isinstance(setup["sample"]["lr_g"], Float) and isinstance(setup["sample"]["generator.approach"], Categorical)
    tc = setup["tune_config"]
    assert tc["metric"] == "val_l1" and tc["mode"] == "min" and tc["num_samples"] == 5
    assert isinstance(tc["search_alg"], BasicVariantGenerator) and "max_concurrent_trials" not in tc
    asha = tc["scheduler"]
    assert isinstance(asha, ASHAScheduler)
    # rungs at the grace period (default: train.val_every) times powers of the reduction factor
    assert asha.debug_string().endswith("Bracket: Iter 300.000: None | Iter 100.000: None")

    p = _parse({"search": {**SEARCH, "scheduler": "fifo", "algorithm": "optuna"}})
    tc = search_setup(p.study("s").search, expand_study(p, "s")[0], max_concurrent=3)["tune_config"]
    assert isinstance(tc["scheduler"], FIFOScheduler) and tc["max_concurrent_trials"] == 3
    assert type(tc["search_alg"]).__name__ == "OptunaSearch"


def _result(base, sample, step, done, error=None):
    metrics = {"step": step, "done": done, "trial_id": f"t{step}{done}", "val_psnr": 10.0 + step / 100,
               "mlflow_run_id": "r", "train_time_s": 1.0}
    return SimpleNamespace(config={"trial": base, "sample": sample}, metrics=metrics, error=error,
                           path=f"/x/trial_t{step}", checkpoint=None, metrics_dataframe=None)


def test_scheduler_stops_are_not_interruptions():
    from unmask.studies.results import trial_rows, unfinished_trials

    base = expand_study(_parse({"search": SEARCH}), "s")[0]
    sample = {"lr_g": 0.001, "generator.approach": "mask"}
    finished, stopped = _result(base, sample, 300, True), _result(base, sample, 100, True)
    interrupted = _result(base, sample, 200, False)
    failed = _result(base, sample, 100, False, error=RuntimeError("boom\nlast line"))
    assert unfinished_trials([finished, stopped, failed]) == 0
    assert unfinished_trials([finished, stopped, interrupted]) == 1
    table, _ = trial_rows([finished, stopped, failed], [base], "synthetic")
    by_step = dict(zip(table["steps_done"], table["status"]))
    assert sorted(table["status"]) == ["ERROR", "STOPPED_EARLY", "TERMINATED"]
    assert by_step[300] == "TERMINATED"
    assert table.loc[table["status"] == "ERROR", "error"].item() == "last line"
    assert set(table["cell_label"]) == {"lr_g=0.001 generator.approach=mask"}
    assert math.isnan(table.loc[table["status"] == "STOPPED_EARLY", "test_psnr"].item())


def test_study_metrics_counts_stopped_early_apart_from_failed():
    import pandas as pd

    from unmask.studies.results import study_metrics

    table = pd.DataFrame({"cell_label": ["a", "b", "c"], "status": ["TERMINATED", "STOPPED_EARLY", "ERROR"],
                          "val_psnr": [10.0, 9.0, math.nan], "test_psnr": [11.0, math.nan, math.nan]})
    m = study_metrics("s", table)
    assert m["failed"] == 1 and m["stopped_early"] == 1 and m["trials"] == 3
    assert m["best"]["val_psnr"]["cell"] == "a" and list(m["cells"]) == ["a"]
