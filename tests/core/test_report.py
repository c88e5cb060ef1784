import html
import re

import pandas as pd
import pytest

import goldstone
from goldstone.core.errors import GoldstoneError
from goldstone.plotting import seed_band


def test_report_is_self_contained_and_escaped(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "<script>alert(1)</script>", **tiny_overrides)
    text = run.report().read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert re.findall(r'src="([^"]+)"', text) and all(s.startswith("data:image/png;base64,")
                                                     for s in re.findall(r'src="([^"]+)"', text))
    assert "http://" not in text and "https://" not in text
    for caption in ("Training of the 4-layer ok MLP", "Order parameter per layer"):
        assert caption in text
    assert "final test accuracy" in text


def test_run_report_shows_only_the_keys_that_apply(tmp_path, tiny_overrides):
    def config_keys(run):
        table = re.search(r"<h3>Config</h3>(.*?)</table>", run.report().read_text(), re.S).group(1)
        return set(re.findall(r"<td>(\w+)</td>", table))

    u1 = config_keys(goldstone.run("deep_mlp", out=tmp_path / "u1", group="u1", **tiny_overrides))
    ok = config_keys(goldstone.run("deep_mlp", out=tmp_path / "ok", group="ok", **tiny_overrides))
    generic = config_keys(goldstone.run("deep_mlp", out=tmp_path / "g", group="generic", **tiny_overrides))
    assert "k" not in u1 and "k" in ok and "k" in generic
    assert "generic_scale" in generic and "generic_scale" not in ok
    assert "data_dir" not in ok and {"sigma_w", "depth", "width"} <= u1


def test_sweep_report_has_phase_diagram_with_critical_line(tmp_path, tiny_overrides):
    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5], "depth": [2, 3]}, out=tmp_path / "s",
                            **{k: v for k, v in tiny_overrides.items() if k != "depth"})
    text = html.unescape(sweep.report().read_text())
    assert ("final test accuracy (1 seed) against weight scale σ_W, one line per depth L (layers); dashed: the "
            "theory's critical weight scale σ_W = 1; black: mean-field order parameter c* (right axis)") in text
    assert (sweep.folder / "figures" / "phase_diagram.svg").exists()
    headline = re.search(r"<h3>Headline metrics</h3>(.*?)</table>", text, re.S).group(1)
    assert headline.count("<tr") == 1 + 4  # one row per point, wide
    assert "(std)" not in headline and "final test accuracy</th>" in headline
    fixed = re.search(r"<h3>Fixed settings</h3>(.*?)</table>", text, re.S).group(1)
    assert "width" in fixed and "steps" in fixed and "sigma_w" not in fixed and "data_dir" not in fixed
    before = (sweep.folder / "report.html").read_bytes()
    with pytest.raises(GoldstoneError, match="--metric 'nonsense': the sweep has no such headline metric; it has "):
        sweep.report(metric="nonsense")
    assert (sweep.folder / "report.html").read_bytes() == before


def test_headline_table_has_std_columns_with_several_seeds(tmp_path, tiny_overrides):
    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [1.5]}, seeds=2, out=tmp_path / "s", **tiny_overrides)
    text = sweep.report().read_text()
    headline = re.search(r"<h3>Headline metrics</h3>(.*?)</table>", text, re.S).group(1)
    assert "final test accuracy (mean)</th>" in headline and "final test accuracy (std)</th>" in headline
    assert headline.count("<tr") == 2 and "mean ± std over 2 seeds" in text


def test_seed_bands_stay_within_the_values_the_seeds_reached():
    """Two seeds at 0 and one at 1: mean 1/3, std 0.58; the band is [0, 0.91], not [-0.24, 0.91]."""
    values = pd.Series([0.0, 0.0, 1.0, 0.5, 0.5, 0.5])
    stats = pd.DataFrame({"x": [1, 1, 1, 2, 2, 2], "value": values}).groupby("x").value.agg(
        ["mean", "std", "min", "max"])
    low, high = seed_band(stats)
    assert low.tolist() == [0.0, 0.5] and high.tolist() == pytest.approx([1 / 3 + 0.57735, 0.5], abs=1e-5)


def test_facet_titles_format_labels_with_the_fixed_keys():
    """A panel of group=ok where k was not swept reads O(4) (its fixed value), not the template O({k})."""
    from goldstone.lab.presentation import Presentation
    from goldstone.plotting import _facet_title

    pres = Presentation(labels={"group": "symmetry group", "group=ok": "O({k})"})
    assert _facet_title(pres.labels, ["group"], ("ok",), {"k": 4}) == "symmetry group = O(4)"
    assert _facet_title(pres.labels, ["group", "k"], ("ok", 8), {"k": 4}) == "symmetry group = O(8), k = 8"
