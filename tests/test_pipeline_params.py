"""What the evaluate stages build for every study of the shipped params.yaml, before any data exists."""

from pathlib import Path

from unmask.config import load_params
from unmask.pipeline import metric_suite, study_trainer
from unmask.studies import parse_study_params

ROOT = Path(__file__).resolve().parents[1]


def test_every_shipped_study_gets_its_metric_suite_and_trainer():
    # a study whose bare train is not a valid configuration (seed004_losses sets its weights per cell)
    # once failed its evaluate stage here, after its sweep had run
    sp = parse_study_params(load_params(ROOT / "params.yaml"))
    for name in sp.studies:
        suite = metric_suite(sp, ROOT, name)
        assert study_trainer(sp, name).framework
        assert all(m in suite.asked or m not in ("lpips", "fid") for m in (sp.study(name).metrics or []))
    assert study_trainer(sp, "seed003_variants").output == "portrait"
    assert study_trainer(sp, "seed004_losses").framework == "paired"
