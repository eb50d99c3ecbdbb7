"""The study sections of params.yaml: defaults, one-line errors naming the dotted key, grid expansion."""

from __future__ import annotations

import re

import pytest

from unmask.config import parse_params
from unmask.errors import ConfigError
from unmask.studies import expand_study, parse_study_params

BASE = {"train": {"image_size": 32, "steps": 4, "generator": {"base_channels": 4, "n_blocks": 1}}}


def _parse(extra: dict):
    return parse_study_params(parse_params({**BASE, **extra}))


def test_defaults_without_sections():
    p = parse_study_params(parse_params({}))
    assert p.studies == {}
    assert p.sweep.storage_path == "results/ray" and p.sweep.resources.cpu == 1
    assert p.tracking.uri == "sqlite:///mlflow.db"


@pytest.mark.parametrize("extra, key", [
    ({"studies": {"t3": {"grid": {"adv_los": ["hinge"]}}}}, "studies.t3.grid.adv_los: unknown key"),
    ({"studies": {"t3": {"grid": {"adv_loss": ["hing"]}}}}, "studies.t3.grid.adv_loss: unknown 'hing'"),
    ({"studies": {"t3": {"grid": {"generator.approach": ["x"]}}}}, "studies.t3.grid.generator.approach:"),
    ({"studies": {"t3": {"grid": {"generator.widht": [1]}}}}, "studies.t3.grid.generator.widht: unknown key"),
    ({"studies": {"t3": {"grid": {"adv_loss": []}}}}, "studies.t3.grid.adv_loss:"),
    ({"studies": {"t3": {"train": {"weights": {"adv": -1}}}}}, "studies.t3.train.weights.adv:"),
    ({"studies": {"t3": {"train": {"framework": "pix2pix"}}}}, "studies.t3.train.framework: unknown"),
    ({"studies": {"t3": {"seeds": []}}}, "studies.t3.seeds:"),
    ({"studies": {"t3": {"titel": "x"}}}, "studies.t3.titel: unknown key"),
    ({"studies": {"t3": {"metrics": ["psnr", "kid"]}}}, "studies.t3.metrics: unknown metric 'kid'"),
    ({"studies": {"t3": {"metrics": []}}}, "studies.t3.metrics: list at least one metric"),
    ({"sweep": {"max_concurent": 2}}, "sweep.max_concurent: unknown key"),
    ({"sweep": {"resources": {"cpu": 0}}}, "sweep.resources.cpu:"),
    ({"tracking": {"url": "x"}}, "tracking.url: unknown key"),
])
def test_errors_name_the_dotted_key(extra, key):
    with pytest.raises(ConfigError) as e:
        _parse(extra)
    msg = str(e.value)
    assert msg.startswith(f"params.yaml: {key}"), msg
    assert "\n" not in msg


def test_base_train_error_names_train_key():
    with pytest.raises(ConfigError, match=r"^params.yaml: train.steps: must be an integer >= 1"):
        parse_study_params(parse_params({"train": {"steps": -1}, "studies": {"s": {}}}))


def test_unknown_study_is_named():
    p = _parse({"studies": {"t3": {}}})
    with pytest.raises(ConfigError, match=r"studies.t5: no such study \(have: t3\)"):
        expand_study(p, "t5")


def test_grid_is_cartesian_product_times_seeds():
    p = _parse({"studies": {"t3": {"train": {"framework": "stargan", "n_discriminators": 2},
                                   "grid": {"adv_loss": ["hinge", "lsgan", "wgan_gp"],
                                            "generator.approach": ["mask", "residual"]},
                                   "seeds": [0, 1], "kinds": ["surgical"]}}})
    trials = expand_study(p, "t3")
    assert len(trials) == 3 * 2 * 2
    assert [t["cell_label"] for t in trials[:4]] == [
        "adv_loss=hinge generator.approach=mask"] * 2 + ["adv_loss=hinge generator.approach=residual"] * 2
    assert [t["seed"] for t in trials[:4]] == [0, 1, 0, 1]
    t = trials[-1]
    assert t["cell"] == {"adv_loss": "wgan_gp", "generator.approach": "residual"}
    train = t["train"]
    assert (train["adv_loss"], train["generator"]["approach"], train["seed"]) == ("wgan_gp", "residual", 1)
    # base train, study overrides and image size all reach the TrainConfig
    assert train["framework"] == "stargan" and train["n_discriminators"] == 2 and train["steps"] == 4
    assert train["generator"]["base_channels"] == 4 and train["generator"]["n_blocks"] == 1
    assert train["image_size"] == 32 and t["image_size"] == 32 and "image_size" not in train["discriminator"]
    assert t["kinds"] == ["surgical"]
    # trials are independent copies
    trials[0]["train"]["generator"]["base_channels"] = 99
    assert trials[1]["train"]["generator"]["base_channels"] == 4


def test_empty_grid_is_one_default_cell():
    trials = expand_study(_parse({"studies": {"s": {"seeds": [3]}}}), "s")
    assert [(t["cell"], t["cell_label"], t["seed"]) for t in trials] == [({}, "default", 3)]


@pytest.mark.parametrize("name", ["../../data", "a/b", "x.y", "", "1st"])
def test_study_name_must_be_a_plain_identifier(name):
    with pytest.raises(ConfigError, match=r"^params.yaml: studies: .*not a plain identifier"):
        _parse({"studies": {name: {}}})


@pytest.mark.parametrize("extra, match", [
    ({"baselines": ["foo"]}, r"studies.s.baselines: unknown baseline 'foo'"),
    ({"reference": "foo"}, r"studies.s.reference: unknown paper table 'foo'"),
    ({"kinds": ["foo"]}, r"studies.s.kinds: unknown occlusion kind 'foo'"),
])
def test_baselines_reference_and_kinds_are_checked_when_params_are_read(extra, match):
    with pytest.raises(ConfigError, match=match):
        _parse({"studies": {"s": extra}})


SEG = {"train": {"framework": "segmenter", "generator": {"name": "unet", "out_channels": 1}}}


@pytest.mark.parametrize("studies, match", [
    ({"s": {**SEG, "baselines": ["telea"]}}, r"studies.s.baselines: unknown baseline 'telea' for a segmentation "
                                             r"study; choose from lower_face"),
    ({"s": {"baselines": ["lower_face"]}}, r"studies.s.baselines: unknown baseline 'lower_face' for an inpainting"),
    ({"s": {"mask_from": "t"}, "t": {}}, r"studies.s.mask_from: 't' is not a segmentation study \(have: none\)"),
    ({"s": {"mask_from": "nope"}, "seg": SEG}, r"studies.s.mask_from: 'nope' is not a segmentation study \(have: seg\)"),
])
def test_baselines_fit_the_trainers_output_and_mask_from_names_a_segmentation_study(studies, match):
    with pytest.raises(ConfigError, match=match):
        _parse({"studies": studies})
    ok = _parse({"studies": {"s": {"mask_from": "seg"}, "seg": {**SEG, "baselines": ["lower_face"]}}})
    assert ok.studies["s"].mask_from == "seg" and ok.studies["seg"].finds_masks()


@pytest.mark.parametrize("train, key", [({"steps": 0}, "train.steps"), ({"lr_g": float("inf")}, "train.lr_g"),
                                        ({"lr_d": float("nan")}, "train.lr_d"),
                                        ({"weights": {"adv": float("inf")}}, "train.weights.adv")])
def test_values_that_can_never_train_are_refused(train, key):
    with pytest.raises(ConfigError, match=rf"^params.yaml: {key}: must be"):
        parse_study_params(parse_params({"train": train, "studies": {"s": {}}}))


def test_champions_must_name_another_study():
    from unmask.config import parse_params
    from unmask.studies import parse_study_params
    from unmask.errors import ConfigError

    raw = {"studies": {"a": {"grid": {"adv_loss": ["hinge"]}, "champions": ["b"]},
                       "b": {"grid": {"adv_loss": ["lsgan"]}, "champions": ["b"]}}}
    with pytest.raises(ConfigError, match=r"^params\.yaml: studies\.a\.champions: 'b' is not another study|"
                                          r"^params\.yaml: studies\.b\.champions: 'b' is not another study"):
        parse_study_params(parse_params(raw))


# ------------------------------------------------------------------ bad inputs of issue 16: one line naming the key
@pytest.mark.parametrize("study, line", [
    ({"seeds": [0, 0]}, "studies.s.seeds: seed 0 is listed twice"),
    ({"seeds": [True]}, "studies.s.seeds[0]: Input should be a valid integer"),
    ({"seeds": [-1]}, "studies.s.seeds[0]: Input should be greater than or equal to 0"),
    ({"train": {"weights": {1: 1.0}}}, "studies.s.train.weights: must be keyed by loss term names, got 1"),
    ({"grid": {"weights": [{1: 1.0}]}}, "studies.s.grid.weights: must be keyed by loss term names, got 1"),
    ({"train": {"image_size": 17}}, "studies.s.train.image_size: 17 is not divisible"),
    ({"extra_cells": [{"adv_loss": "hinge"}, {"adv_los": "hinge"}]}, "studies.s.extra_cells[1].adv_los: unknown key"),
    ({"kinds": ["freeform"]}, "studies.s.kinds: 'freeform' is never drawn"),
    ({"test_kinds": ["template"]}, "studies.s.test_kinds: 'template' is never drawn"),
    ({"grid": {f"k{i}": list(range(10)) for i in range(6)}},
     "studies.s.grid: 10 x 10 x 10 x 10 x 10 x 10 cells (+0 extra) x 1 seeds = 1000000 trials, more than the 10000"),
], ids=["seeds_0_0", "seeds_true", "seeds_minus_1", "weights_int_key", "grid_weights_int_key", "study_image_size_17",
        "extra_cells_misspelt_key", "kinds_freeform_not_drawn", "test_kinds_template_not_drawn", "grid_of_a_million"])
def test_bad_study_input_is_one_line_naming_the_key_written(study, line):
    with pytest.raises(ConfigError) as e:
        _parse({"studies": {"s": study}})
    assert str(e.value).startswith(f"params.yaml: {line}"), str(e.value)


def test_train_image_size_18_names_train_image_size_not_the_discriminator():
    with pytest.raises(ConfigError, match=r"^params.yaml: train.image_size: 18 is not divisible"):
        parse_study_params(parse_params({"train": {"image_size": 18}, "studies": {"s": {}}}))


def test_kinds_freeform_is_accepted_when_every_image_draws_it():
    p = parse_study_params(parse_params({**BASE, "synthesize": {"every_image": ["freeform"]},
                                         "studies": {"s": {"kinds": ["freeform"]}}}))
    assert p.studies["s"].kinds == ["freeform"]


def test_steps_1000000000_is_refused_above_the_stated_cap():
    with pytest.raises(ConfigError, match=r"^params.yaml: train.steps: must be at most 10000000"):
        parse_study_params(parse_params({"train": {"steps": 1_000_000_000}, "studies": {"s": {}}}))


def test_study_name_of_301_characters_is_refused():
    with pytest.raises(ConfigError, match=r"^params.yaml: studies: study name s+\.\.\. is 301 characters long"):
        _parse({"studies": {"s" * 301: {}}})


@pytest.mark.parametrize("path", ["results", "./results/", ".", "data/ray", "results/s", "results/trial_store",
                                  "reports"])
def test_storage_path_overlapping_results_or_data_is_refused(path):
    with pytest.raises(ConfigError, match=rf"^params.yaml: sweep.storage_path: '{re.escape(path)}': it "):
        _parse({"sweep": {"storage_path": path}, "studies": {"s": {}}})
    assert _parse({"sweep": {"storage_path": "results/ray"}, "studies": {"s": {}}}).sweep.storage_path == "results/ray"


def test_errors_of_study_sections_name_the_params_file_given():
    with pytest.raises(ConfigError, match=r"^other.yaml: studies.s.seeds: seed 0 is listed twice"):
        parse_study_params(parse_params({**BASE, "studies": {"s": {"seeds": [0, 0]}}}, "other.yaml"))
    with pytest.raises(ConfigError, match=r"^other.yaml: sweep.max_concurrent:"):
        parse_study_params(parse_params({"sweep": {"max_concurrent": 0}}, "other.yaml"))


def test_a_typo_in_the_top_level_train_is_named_not_dropped():
    with pytest.raises(ConfigError, match=r"train\.stpes: unknown key for framework 'cyclegan'"):
        expand_study(_parse({"train": {"stpes": 4}, "studies": {"t": {"grid": {"adv_loss": ["lsgan"]}}}}), "t")
