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
