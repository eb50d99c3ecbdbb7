import numpy as np
import pandas as pd
import pytest
from PIL import Image

from unmask.errors import UnmaskError
from unmask.reports.figures import CELL_PX, LABEL_PX, comparison_figure, learning_curves, write_reports

from tests.reports.test_tables import _eval_df


def _samples(path, n=3, size=16, labels=("adv_loss=hinge", "baseline: telea")):
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)  # noqa: E731
    arrays = {"input": img(), "target": img(), "mask": np.zeros((n, size, size), np.uint8),
              "labels": np.array(labels), **{f"out_{i}": img() for i in range(len(labels))}}
    np.savez(path, **arrays)
    return path


def _curves(path):
    rows = [{"study": "s", "trial_id": t, "step": s, "metric": m, "value": float(s)}
            for t in ("a", "b") for s in (1, 2, 3) for m in ("g_total", "val_l1")]
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_comparison_figure_has_a_cell_per_face_and_column(tmp_path):
    out = comparison_figure(_samples(tmp_path / "s.npz"), tmp_path / "fig.png")
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (4 * CELL_PX, 3 * CELL_PX + LABEL_PX)   # input, target, 2 outputs; 3 faces


def test_learning_curves_png(tmp_path):
    out = learning_curves(_curves(tmp_path / "c.parquet"), tmp_path / "c.png", {"a": "cell a seed=0"})
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 400
    with pytest.raises(UnmaskError, match="not a curves table"):
        learning_curves(tmp_path / "missing.parquet", tmp_path / "x.png")


def test_write_reports_pages_pictures_and_index(tmp_path):
    study_dir = tmp_path / "results" / "t3"
    study_dir.mkdir(parents=True)
    _eval_df().to_parquet(study_dir / "eval.parquet")
    _samples(study_dir / "samples.npz")
    _curves(study_dir / "curves.parquet")
    studies = {"t3": {"title": "Adversarial loss", "reference": "paper_table3"}}
    write_reports(tmp_path / "results", tmp_path / "reports", studies)
    rep = tmp_path / "reports"
    assert {p.name for p in rep.iterdir()} == {"t3.md", "t3.png", "t3_curves.png", "README.md"}
    page = (rep / "t3.md").read_text()
    assert "paper: W λ0.1" in page and "(t3.png)" in page and "(t3_curves.png)" in page
    index = (rep / "README.md").read_text()
    assert "[Adversarial loss](t3.md)" in index and "best L1: adv_loss=wgan_gp (0.06)" in index
    assert "best PSNR (dB): adv_loss=hinge (21)" in index and "LPIPS: n/a: weights missing" in index
    with pytest.raises(UnmaskError, match="missing; run the evaluate stage"):
        write_reports(tmp_path / "results", rep, {"other": {}})


def test_column_labels_drop_section_prefixes_but_keep_values():
    from unmask.reports.figures import _short

    assert _short("generator.approach=mask generator.blocks=dmfb") == "approach=mask blocks=dmfb"
    assert _short("adv_loss=hinge weights.adv=0.1") == "adv_loss=hinge adv=0.1"
    assert _short("baseline: input") == "baseline: input"


def _panel_titles(monkeypatch) -> list[str]:
    """The titles the next figures give their panels, in order (a spy on plt.subplots)."""
    import unmask.reports.figures as figures

    titles: list[str] = []
    real = figures.plt.subplots

    def spy(*a, **k):
        fig, axes = real(*a, **k)
        for ax in axes.flat:
            orig = ax.set_title
            ax.set_title = lambda t, *x, _o=orig, **y: (titles.append(t), _o(t, *x, **y))[1]
        return fig, axes
    monkeypatch.setattr(figures.plt, "subplots", spy)
    return titles


def test_learning_curves_plot_only_metrics_with_a_curve(tmp_path, monkeypatch):
    rows = [{"study": "s", "trial_id": "a", "step": s, "metric": m, "value": 1.0}
            for s in (1, 2) for m in ("g_total", "val_l1", "should_checkpoint")]
    rows += [{"study": "s", "trial_id": "a", "step": 2, "metric": "test_l1", "value": 1.0}]
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    titles = _panel_titles(monkeypatch)
    learning_curves(tmp_path / "c.parquet", tmp_path / "c.png")
    assert titles == ["val_l1", "g_total"]


def test_a_study_validated_once_has_a_one_point_curve(tmp_path, monkeypatch):
    """steps <= val_every: a single validation point is a curve; a train loss logged once is not."""
    pd.DataFrame([{"study": "s", "trial_id": "a", "step": 4, "metric": m, "value": 1.0}
                  for m in ("val_psnr", "g_total")]).to_parquet(tmp_path / "c.parquet")
    titles = _panel_titles(monkeypatch)
    assert learning_curves(tmp_path / "c.parquet", tmp_path / "c.png").stat().st_size > 0
    assert titles == ["val_psnr"]


def test_report_stage_replaces_reports_whole_or_leaves_it_as_it_was(tmp_path):
    """Study a is complete, study b's eval.parquet is damaged: the stage fails naming b, and reports/
    keeps exactly its old files (none of a's new pages, no temporaries beside it)."""
    from unmask.config import parse_params
    from unmask.pipeline import run_report

    (tmp_path / "results" / "a_ok").mkdir(parents=True)
    _eval_df().to_parquet(tmp_path / "results" / "a_ok" / "eval.parquet")
    (tmp_path / "results" / "b_broken").mkdir(parents=True)
    (tmp_path / "results" / "b_broken" / "eval.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "old.md").write_text("old report\n")
    params = parse_params({"tracking": {"uri": "sqlite:///mlflow.db"},
                           "studies": {"a_ok": {}, "b_broken": {}}})
    with pytest.raises(UnmaskError, match=r"results/b_broken/eval.parquet: not a table"):
        run_report(params, root=tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["old.md"]
    assert (tmp_path / "reports" / "old.md").read_text() == "old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports", "results"]


def test_report_renders_the_studies_that_were_run_and_lists_the_others(tmp_path, caplog):
    """A researcher who ran one study of params.yaml gets its page; the others are named as not
    evaluated yet (in a warning and in the index), and their earlier pages are kept."""
    from unmask.config import parse_params
    from unmask.pipeline import run_report

    (tmp_path / "results" / "a_ok").mkdir(parents=True)
    _eval_df().to_parquet(tmp_path / "results" / "a_ok" / "eval.parquet")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "b_missing.md").write_text("b, from an earlier run\n")
    params = parse_params({"tracking": {"uri": "sqlite:///mlflow.db"},
                           "studies": {"a_ok": {}, "b_missing": {}}})
    with caplog.at_level("WARNING"):
        run_report(params, root=tmp_path, progress=False)
    assert (tmp_path / "reports" / "a_ok.md").is_file()
    assert (tmp_path / "reports" / "b_missing.md").read_text() == "b, from an earlier run\n"
    index = (tmp_path / "reports" / "README.md").read_text()
    assert "## Not evaluated yet" in index and "`b_missing`" in index
    assert "1 of 2 studies are not evaluated yet, left out: b_missing" in caplog.text
    empty = parse_params({"tracking": {"uri": "sqlite:///mlflow.db"}, "studies": {"b_missing": {}}})
    with pytest.raises(UnmaskError, match=r"no study of params.yaml is evaluated yet"):
        run_report(empty, root=tmp_path, progress=False)


def test_report_with_other_params_keeps_pages_of_studies_it_does_not_list(tmp_path, caplog):
    """`unmask --params other.yaml report` re-writes the studies other.yaml lists and keeps the others'
    pages and figures byte for byte, naming them (and other.yaml) in a warning and in the index."""
    from unmask.config import parse_params
    from unmask.pipeline import run_report

    (tmp_path / "results" / "a_ok").mkdir(parents=True)
    _eval_df().to_parquet(tmp_path / "results" / "a_ok" / "eval.parquet")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "seed_other.md").write_text("# seed_other, from the full run\n")
    (reports / "seed_other_curves.png").write_bytes(b"\x89PNG old curves")
    (reports / "README.md").write_text("old index\n")
    params = parse_params({"tracking": {"uri": "sqlite:///mlflow.db"}, "studies": {"a_ok": {}}},
                          source="other.yaml")
    with caplog.at_level("WARNING"):
        run_report(params, root=tmp_path, progress=False)
    assert (reports / "a_ok.md").is_file()
    assert (reports / "seed_other.md").read_text() == "# seed_other, from the full run\n"
    assert (reports / "seed_other_curves.png").read_bytes() == b"\x89PNG old curves"
    assert "seed_other" in caplog.text and "other.yaml" in caplog.text
    index = (reports / "README.md").read_text()
    assert "Kept from an earlier report" in index and "[seed_other](seed_other.md)" in index


def test_learning_curves_draw_the_same_picture_whatever_ray_named_the_trials(tmp_path):
    """Ray's trial ids are random: lines (and colours) follow the labels' order, not the ids."""
    import pandas as pd

    from unmask.reports.figures import learning_curves

    def curves(ids):
        return pd.DataFrame([{"trial_id": t, "step": s, "metric": "val_psnr", "value": v + s}
                             for t, v in zip(ids, (10.0, 20.0)) for s in (1, 2)])

    pngs = []
    for i, ids in enumerate((["zz_1", "aa_2"], ["aa_1", "zz_2"])):
        path = tmp_path / f"c{i}.parquet"
        curves(ids).to_parquet(path)
        labels = {ids[0]: "cell=a seed=0", ids[1]: "cell=b seed=0"}
        pngs.append(learning_curves(path, tmp_path / f"c{i}.png", labels).read_bytes())
    assert pngs[0] == pngs[1]


def test_the_index_names_a_best_only_when_it_is_ahead_beyond_noise():
    from unmask.reports.figures import _headline

    def df(cells):
        return pd.DataFrame([{"role": "trial", "cell_label": c, "test_psnr": v} for c, vs in cells.items() for v in vs])

    clear = df({"a": [25.0, 25.2], "b": [20.0, 20.5], "c": [19.0, 19.1]})
    assert _headline("psnr", (["a"], 25.1), clear) == ("- best PSNR (dB): a (25.1), ahead of every other beyond "
                                                       "seed noise")
    close = df({"a": [25.0, 25.2], "b": [24.9, 25.1], "c": [19.0, 19.1]})
    assert _headline("psnr", (["a"], 25.1), close) == ("- PSNR (dB): no best beyond seed noise; the best mean a "
                                                       "(25.1) is tied with b")
    one_seed = df({"a": [25.0], "b": [20.0]})
    assert "no best beyond seed noise" in _headline("psnr", (["a"], 25.0), one_seed)   # one seed cannot call
