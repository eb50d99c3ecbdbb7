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
