import re

import pytest

from unmask.config import load_params, parse_params
from unmask.errors import ConfigError

from tests.conftest import ROOT


def test_shipped_params_file_is_valid():
    p = load_params(ROOT / "params.yaml")
    assert p.data.source == "synthetic" and p.align.size > 0


@pytest.mark.parametrize("raw, key", [
    ({"synthesize": {"kinds": {"surgicl": 1.0}}}, "synthesize.kinds.surgicl"),
    ({"align": {"size": "big"}}, "align.size"),
    ({"align": {"sise": 64}}, "align.sise"),
    ({"data": {"source": "imagenet"}}, "data.source"),
    ({"split": {"val": 0.5, "test": 0.6}}, "split"),
    ({"synthesize": {"kinds": {"surgical": -1}}}, "synthesize.kinds"),
    ({"synthesize": {"kinds": {"template": 1}}}, "synthesize"),
    ({"data": {"synthetic": {"n_identities": 0}}}, "data.synthetic.n_identities"),
])
def test_bad_params_name_the_key_in_one_line(raw, key):
    with pytest.raises(ConfigError) as e:
        parse_params(raw)
    msg = str(e.value)
    assert f"params.yaml: {key}" in msg and "\n" not in msg


def test_unreadable_params_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_params(lst)


def _shipped() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _write(tmp_path, raw) -> str:
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.parametrize("typo, right", [("trian", "train"), ("dta", "data")])
def test_misspelt_section_is_refused_naming_it_and_the_valid_ones(tmp_path, typo, right):
    raw = _shipped()
    raw[typo] = raw.pop(right)
    with pytest.raises(ConfigError) as e:
        load_params(_write(tmp_path, raw))
    msg = str(e.value)
    assert f"{typo}: unknown section" in msg and "train" in msg and "data" in msg and "\n" not in msg


def test_empty_params_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="an empty file"):
        load_params(_write(tmp_path, ""))


def test_missing_section_is_refused(tmp_path):
    raw = _shipped()
    del raw["data"]
    with pytest.raises(ConfigError, match=r"missing section data \(a params.yaml needs"):
        load_params(_write(tmp_path, raw))


@pytest.mark.parametrize("section", ["train", "data", "studies"])
def test_null_section_is_refused(tmp_path, section):
    raw = _shipped()
    raw[section] = None
    with pytest.raises(ConfigError, match=rf"params.yaml: {section}: empty section"):
        load_params(_write(tmp_path, raw))


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = _write(tmp_path, "seed: 0\ndata:\n  source: [synthetic\nalign: {size: 64}\n")
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert str(e.value).startswith(f"{path}:4:") and "not valid YAML" in str(e.value)


@pytest.mark.parametrize("raw, line", [
    ({"data": {"limit": True}}, "data.limit: Input should be a valid integer (got True)"),
    ({"split": {"val": 0, "test": 0}}, "split.val: Input should be greater than 0 (got 0)"),
    ({"split": {"test": 0}}, "split.test: Input should be greater than 0 (got 0)"),
], ids=["data_limit_true", "split_val_0_test_0", "split_test_0"])
def test_data_values_that_leave_nothing_to_train_or_test_on_are_refused(raw, line):
    with pytest.raises(ConfigError) as e:
        parse_params(raw)
    assert str(e.value).startswith(f"params.yaml: {line}"), str(e.value)


def _alias_bomb(levels: int = 9) -> str:
    """A few hundred bytes of nested aliases that expand to 9 ** levels values."""
    lines = ["        - &a0 [normal, normal, normal, normal, normal, normal, normal, normal, normal]"]
    lines += [f"        - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "  bomb:\n    grid:\n      generator.approach:\n" + "\n".join(lines) + "\n"


def test_yaml_alias_bomb_in_grid_generator_approach_is_refused_before_expanding(tmp_path):
    import resource
    import time

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + _alias_bomb())
    before, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: studies.bomb.grid.generator.approach: expands to 4\d{{8}} values "
                        "with its YAML aliases, more than the 100000 a params file may hold", str(e.value)), str(e.value)
    assert time.monotonic() - t0 < 2 and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_a_few_aliases_are_still_fine(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + _alias_bomb(levels=2).replace("bomb:", "bomb:\n    seeds: [0]"))
    assert load_params(path).model_extra["studies"]["bomb"]["grid"]["generator.approach"][1][0][0] == "normal"


def test_study_errors_name_the_params_file_given_with_dash_dash_params(tmp_path, capsys):
    from unmask.cli import main

    raw = _shipped()
    raw["studies"]["table3_adv_loss"]["seeds"] = [0, 0]
    path = tmp_path / "other.yaml"
    path.write_text(__import__("yaml").safe_dump(raw, sort_keys=False))
    assert main(["--params", str(path), "sweep", "table3_adv_loss"]) == 2
    assert capsys.readouterr().err == (f"unmask sweep: error: {path}: studies.table3_adv_loss.seeds: seed 0 is "
                                       "listed twice; each seed is one trial of every cell\n")
