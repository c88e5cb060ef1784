"""`goldstone.plotting` draws from the frames a user has: a sweep's summary and results, a run's
metrics, an observable's result, hand-made tidy frames; what it draws is the data given (means,
bands, theory values), labelled, and a frame it cannot draw is one clear error."""

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

import goldstone
from goldstone import plotting
from goldstone.observables.head_uas import HeadUASResult

TINY = {"width": 16, "steps": 8, "eval_every": 4, "observe_every": 4, "checkpoint_every": 8, "batch_size": 32,
        "probe_size": 4}
"""The smallest deep_mlp that trains (well under a second a run)."""

LABELS = {"sigma_w": "weight scale σ_W", "depth": "depth L (layers)", "group": "symmetry group",
          "group=ok": "O({k})", "group=u1": "U(1)", "acc": "test accuracy"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5], "depth": [2]}, out=tmp_path_factory.mktemp("s") / "s",
                           **TINY)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return goldstone.run("deep_mlp", out=tmp_path_factory.mktemp("r") / "r", depth=3, quiet=True, **TINY)


@pytest.fixture
def summary():
    """A hand-made sweep summary: group x sigma_w x depth, 3 seeds, values known."""
    rng = np.random.default_rng(0)
    rows = [{"group": g, "sigma_w": s, "depth": d, "seed": seed, "metric": "acc", "value": rng.uniform()}
            for g in ["u1", "ok", "generic"] for s in [0.5, 1.0, 2.0] for d in [10, 100] for seed in range(3)]
    return pd.DataFrame(rows)


def panels(fig):
    """The data panels of a figure (not colour bars, not right-hand axes of theory curves)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()
            and ax.yaxis.get_label_position() == "left"]


def rendered(fig: Figure) -> Figure:
    """`fig`, after drawing it as a PNG (the layout and legends are placed then)."""
    fig.savefig(io.BytesIO(), format="png")
    return fig


def mesh(ax) -> np.ndarray:
    """The cell values of a heat map panel."""
    (quad,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    return np.asarray(quad.get_array())


def test_phase_diagram_of_a_sweep_summary_shows_the_mean_of_every_point(sweep):
    summary = sweep.summary
    fig = rendered(plotting.phase_diagram(summary, "sigma_w", "depth", "final_test_accuracy",
                                          critical={"sigma_w": 1.0}, labels=sweep.presentation.labels))
    assert isinstance(fig, Figure)
    (ax,) = panels(fig)
    expected = summary[summary.metric == "final_test_accuracy"].pivot_table(index="depth", columns="sigma_w",
                                                                               values="value", aggfunc="mean")
    np.testing.assert_array_equal(mesh(ax), expected.to_numpy())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("weight scale σ_W", "depth L (layers)")
    (colorbar,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert colorbar.get_ylabel() == "final test accuracy (1 seed)"
    (critical,) = ax.get_lines()
    assert critical.get_xdata()[0] == 1.0 and critical.get_label() == "critical weight scale σ_W = 1"


def test_phase_diagram_has_one_panel_per_value_of_the_other_keys(summary):
    fig = plotting.phase_diagram(summary, "sigma_w", "depth", "acc", labels=LABELS, fixed={"k": 4},
                                 title="fixed: block size k = 4")
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == ["symmetry group = generic", "symmetry group = O(4)",
                                                "symmetry group = U(1)"]
    means = summary.groupby(["group", "depth", "sigma_w"]).value.mean()
    for ax, group in zip(drawn, ["generic", "ok", "u1"]):
        np.testing.assert_allclose(mesh(ax), means[group].unstack("sigma_w").to_numpy(), rtol=1e-15)
    quad = [c for c in drawn[0].collections if isinstance(c, QuadMesh)][0]
    assert quad.get_clim() == pytest.approx((means.min(), means.max()))  # one colour scale for every panel
    assert fig.get_suptitle() == "fixed: block size k = 4"
    # a category on an axis: one cell per value, its label on the tick
    fig = plotting.phase_diagram(summary, "sigma_w", "group", "acc", panels=["depth"], labels=LABELS, fixed={"k": 4})
    assert [t.get_text() for t in panels(fig)[0].get_yticklabels()] == ["generic", "O(4)", "U(1)"]
    assert len(panels(fig)) == 2


def test_a_phase_diagram_with_a_cell_per_seed_claims_no_spread_over_seeds(summary):
    fig = plotting.phase_diagram(summary, "sigma_w", "seed", "acc", where={"depth": 10, "group": "u1"})
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"] == ["acc"]


def test_phase_diagram_draws_decades_on_a_log_axis_with_cells_around_each_value():
    frame = pd.DataFrame([{"lr": lr, "batch": b, "acc": lr * b} for lr in [1e-3, 1e-2, 1e-1] for b in [8, 32]])
    fig = plotting.phase_diagram(frame, "lr", "batch", "acc")  # wide form: the metric is a column
    (ax,) = panels(fig)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    edges = [c for c in ax.collections if isinstance(c, QuadMesh)][0].get_coordinates()[0, :, 0]
    np.testing.assert_allclose(np.log10(edges), [-3.5, -2.5, -1.5, -0.5])


def test_curves_show_the_mean_over_seeds_with_a_band_of_one_std(summary):
    fig = plotting.curves(summary, "sigma_w", "acc", hue="group", labels=LABELS, fixed={"k": 4},
                          critical={"sigma_w": 1.0})
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == ["depth L (layers) = 10", "depth L (layers) = 100"]
    ax = drawn[0]
    assert ax.get_xlabel() == "weight scale σ_W" and ax.get_ylabel() == "test accuracy (mean ± std over 3 seeds)"
    rows = summary[summary.depth == 10]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["generic", "O(4)", "U(1)", "critical weight scale σ_W = 1"]
    for (group, name), band in zip([("generic", "generic"), ("ok", "O(4)"), ("u1", "U(1)")], ax.collections):
        stats = rows[rows.group == group].groupby("sigma_w").value.agg(["mean", "std", "min", "max"])
        np.testing.assert_allclose(lines[name].get_ydata(), stats["mean"])
        low, high = plotting.seed_band(stats)
        vertices = band.get_paths()[0].vertices
        for x, lo, hi in zip(stats.index, low, high):
            at = vertices[np.isclose(vertices[:, 0], x), 1]
            assert at.min() == pytest.approx(lo) and at.max() == pytest.approx(hi)
        assert (low >= stats["mean"] - stats["std"] - 1e-12).all()
        assert (high <= stats["mean"] + stats["std"] + 1e-12).all()
    assert fig.legends[0].get_title().get_text() == "symmetry group"  # one legend, beside the panels


def test_curves_over_categories_draw_points_with_error_bars_and_values_in_words(summary):
    fig = rendered(plotting.curves(summary[summary.depth == 10], "group", "acc", hue="sigma_w", labels=LABELS,
                                   fixed={"k": 4}))
    (ax,) = panels(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["generic", "O(4)", "U(1)"]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert list(lines) == ["0.5", "1", "2"] and all(line.get_linestyle() == "None" for line in lines.values())
    for offset, (sigma, line) in zip([-0.1, 0.0, 0.1], lines.items()):
        rows = summary[(summary.depth == 10) & (summary.sigma_w == float(sigma))]
        stats = rows.groupby("group").value.agg(["mean", "std", "min", "max"]).loc[["generic", "ok", "u1"]]
        np.testing.assert_allclose(line.get_xdata(), np.arange(3) + offset)  # side by side, not on top
        np.testing.assert_allclose(line.get_ydata(), stats["mean"])
        bars = [c for c in ax.collections if np.allclose(c.get_segments()[0][0, 0], offset)][0]
        low, high = plotting.seed_band(stats)
        np.testing.assert_allclose([seg[:, 1].min() for seg in bars.get_segments()], low)
        np.testing.assert_allclose([seg[:, 1].max() for seg in bars.get_segments()], high)


def test_a_key_missing_from_some_rows_makes_no_panels_that_would_leave_rows_out(summary):
    summary = summary[summary.group == "u1"]
    first = summary[summary.depth == 10].drop(columns="depth").assign(sweep="a")  # two sweeps put together,
    second = summary[summary.depth == 100].assign(sweep="b")                      # one without the depth key
    fig = plotting.curves(pd.concat([first, second]), "sigma_w", "acc", hue="sweep")
    (ax,) = panels(fig)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), second.groupby("sigma_w").value.mean())


def test_curves_draw_the_theory_beside_the_measurement(summary):
    x = np.linspace(0.5, 2, 7)
    theory = pd.concat([pd.DataFrame({"group": g, "name": f"c*, {g}", "x": x, "y": x * i})
                        for i, g in enumerate(["u1", "ok", "generic"])])
    fig = rendered(plotting.curves(summary, "sigma_w", "acc", hue="group", panels=["depth"], labels=LABELS,
                                   fixed={"k": 4}, theory=theory, theory_label="order parameter c*",
                                   theory_axis="right"))
    right = [ax for ax in fig.axes if ax.get_ylabel() == "order parameter c*"]
    assert len(right) == 2  # one right-hand axis per panel
    drawn = {line.get_label(): line for line in right[0].get_lines()}
    for i, g in enumerate(["u1", "ok", "generic"]):
        np.testing.assert_array_equal(drawn[f"c*, {g}"].get_xdata(), x)
        np.testing.assert_array_equal(drawn[f"c*, {g}"].get_ydata(), x * i)
    measured = {line.get_label(): line.get_color() for line in panels(fig)[0].get_lines()}
    assert drawn["c*, ok"].get_color() == measured["O(4)"] and drawn["c*, ok"].get_linestyle() == "--"
    # a callable, on the measurement's own axis, given the line's group
    fig = plotting.curves(summary, "sigma_w", "acc", hue="group", where={"depth": 10}, labels=LABELS, fixed={"k": 4},
                          theory=lambda x, group: x ** 2 if group == "ok" else x, theory_label="theory")
    (ax,) = panels(fig)
    lines = {line.get_label(): line for line in ax.get_lines()}
    curve = lines["theory, symmetry group = O(4)"]
    np.testing.assert_allclose(curve.get_ydata(), curve.get_xdata() ** 2)
    assert curve.get_xdata().min() == 0.5 and curve.get_xdata().max() == 2.0
    # a frame of one curve per line without names: each line keeps its own curve
    unnamed = theory.drop(columns="name")
    fig = plotting.curves(summary, "sigma_w", "acc", hue="group", where={"depth": 10}, labels=LABELS, fixed={"k": 4},
                          theory=unnamed)
    (ax,) = panels(fig)
    curves = {line.get_label(): line for line in ax.get_lines() if line.get_label().startswith("theory")}
    assert len(curves) == 3
    np.testing.assert_array_equal(curves["theory, symmetry group = U(1)"].get_ydata(), x * 0)
    np.testing.assert_array_equal(curves["theory, symmetry group = O(4)"].get_ydata(), x * 1)


def test_curves_of_a_real_run_and_sweep(run, sweep):
    metrics = run.metrics
    fig = plotting.curves(metrics, "step", "c", hue="layer", observable="order_parameter",
                          labels={"step": "training step", "c": "order parameter c"})
    (ax,) = panels(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("training step", "order parameter c")
    c = goldstone.series(metrics, "order_parameter", "c")
    assert len(ax.get_lines()) == c.layer.nunique() > 1
    for line, (layer, rows) in zip(ax.get_lines(), c.groupby("layer")):
        assert line.get_label() == f"{layer:g}"
        np.testing.assert_array_equal(line.get_ydata(), rows.value)
    assert fig.legends[0].get_title().get_text() == "layer"
    # a sweep's results: one thin line per seed and point; its summary with its stored theory curve
    fig = plotting.curves(sweep.results, "step", "accuracy", hue="sigma_w", observable="test", seeds="lines")
    (ax,) = panels(fig)
    assert [line.get_label() for line in ax.get_lines()] == ["0.5", "1.5"]
    pres = sweep.presentation
    fig = plotting.curves(sweep.summary, "sigma_w", "final_test_accuracy", theory=sweep.theory,
                          theory_label=pres.theory["label"], theory_axis="right", labels=pres.labels)
    (right,) = [a for a in fig.axes if a.get_ylabel() == pres.theory["label"]]
    np.testing.assert_array_equal(right.get_lines()[0].get_ydata(), sweep.theory.y)


def test_accuracies_stay_on_a_linear_axis_and_errors_spanning_decades_go_logarithmic():
    def yscale(values):
        frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "metric": "m", "value": values})
        return plotting.curves(frame, "x", "m").axes[0].get_yscale()

    assert yscale([0.0026, 0.86, 0.862]) == "linear"  # one run below chance does not make accuracy logarithmic
    assert yscale([1e-15, 1e-9, 1e-3]) == "log" and yscale([0.2, 0.25, 0.3]) == "linear"


def test_curves_draw_into_your_own_axes():
    fig = Figure()
    ax = fig.subplots()
    frame = pd.DataFrame({"step": [0, 1, 2], "observable": "train", "metric": "loss", "value": [3.0, 2.0, 1.5]})
    assert rendered(plotting.curves(frame, "step", "loss", ax=ax)) is fig
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [3.0, 2.0, 1.5])
    empty = rendered(plotting.curves(frame.assign(value=np.nan), "step", "loss"))  # a metric never measured
    assert np.isnan(panels(empty)[0].get_lines()[0].get_ydata()).all()
    two = pd.concat([frame.assign(seed=0, lr=0.1), frame.assign(seed=0, lr=0.2)])
    with pytest.raises(ValueError, match="ax= draws one panel, and this frame makes 2"):
        plotting.curves(two, "step", "loss", ax=Figure().subplots())


def head_uas(layers: int, heads: int, relations: list[str], seed: int) -> HeadUASResult:
    """A `HeadUAS` result as `measure` returns it, with random accuracies."""
    g = torch.Generator().manual_seed(seed)
    r = len(relations) + 1
    return HeadUASResult(accuracy=torch.rand(layers, heads, 2, r, generator=g), mass=torch.rand(layers, heads, 2, r),
                         count=torch.ones(r), offset_accuracy=torch.rand(5, r), best_accuracy=torch.rand(r),
                         best_layer=torch.zeros(r), best_head=torch.zeros(r), best_direction=torch.zeros(r),
                         heldout_accuracy=torch.rand(r), relations=relations)


def test_head_heatmap_is_the_layer_by_head_grid_of_the_last_step():
    early, late = head_uas(3, 4, ["nsubj", "obj"], 0), head_uas(3, 4, ["nsubj", "obj"], 1)
    frame = pd.concat([early.to_frame(step=100), late.to_frame(step=200)], ignore_index=True)
    fig = rendered(plotting.head_heatmap(frame, "accuracy", where={"relation": "all"}, reduce="max"))
    (ax,) = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    np.testing.assert_allclose(ax.get_images()[0].get_array(), late.accuracy[..., -1].amax(2).double().numpy())
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("head", "layer", "step 200")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    (colorbar,) = [a for a in fig.axes if a.get_label() == "<colorbar>"]
    assert colorbar.get_ylabel() == "accuracy (max over direction)"
    assert len(ax.texts) == 12  # every cell's value written in it
    fig = plotting.head_heatmap(frame, "accuracy", where={"step": 100, "direction": "dependent->parent"},
                                panels=["relation"])
    drawn = [a for a in fig.axes if a.get_label() != "<colorbar>" and a.get_visible()]
    assert [a.get_title() for a in drawn] == ["relation = all", "relation = nsubj", "relation = obj"]
    np.testing.assert_allclose(drawn[1].get_images()[0].get_array(), early.accuracy[:, :, 0, 0].double().numpy())
    with pytest.raises(ValueError, match="give the metric to draw"):
        plotting.head_heatmap(frame)


def timeline_frame() -> pd.DataFrame:
    """The dead neurons of layer 2 jump from 0 to 40 at step 1200; a norm only wobbles."""
    rng = np.random.default_rng(0)
    rows = []
    for step in range(0, 2100, 100):
        rows.append({"step": step, "observable": "neuron_census", "metric": "dead", "layer": 2,
                     "value": 40.0 if step >= 1200 else 0.0})
        rows.append({"step": step, "observable": "weight_statistics", "metric": "norm", "layer": 2,
                     "value": 10 + rng.normal(0, 0.1)})
    return pd.DataFrame(rows)


def test_audit_timeline_from_a_tidy_frame_and_from_its_transitions(run):
    pytest.importorskip("ruptures")
    from goldstone.analysis.timeline import transitions

    frame = timeline_frame()
    for fig in (plotting.audit_timeline(frame), plotting.audit_timeline(transitions(frame), steps=frame.step)):
        (ax,) = fig.axes
        assert [t.get_text() for t in ax.get_yticklabels()] == ["neuron_census dead 2"]
        window, dot = ax.get_lines()
        assert dot.get_xdata()[0] == 1200 and window.get_xdata()[0] < 1200 <= window.get_xdata()[1]
        assert ax.get_xlim() == (0, 2000) and ax.get_xlabel().startswith("training step")
    fig = rendered(plotting.audit_timeline(run.metrics))  # three checkpoints: too few for a transition
    assert fig.axes[0].texts[0].get_text() == "no transition found"


@pytest.mark.parametrize("draw, missing", [
    (lambda f: plotting.phase_diagram(f, "sigma_w", "width", "acc"), "width"),
    (lambda f: plotting.curves(f, "sigma_w", "acc", hue="activation"), "activation"),
    (lambda f: plotting.curves(f, "sigma_w", "acc", seeds="lines", unit="run"), "run"),
    (lambda f: plotting.head_heatmap(f, "acc"), "layer"),
    (lambda f: plotting.audit_timeline(timeline_frame().drop(columns="metric")), "metric"),
])
def test_a_missing_column_is_a_value_error_naming_it(summary, draw, missing):
    with pytest.raises(ValueError, match=f"the frame has no column '{missing}'"):
        draw(summary)


def test_a_missing_metric_is_a_value_error_naming_it(summary):
    with pytest.raises(ValueError, match="no metric 'loss' in the frame .*it has acc"):
        plotting.curves(summary, "sigma_w", "loss")
    with pytest.raises(ValueError, match="the column 'layer' holds no value in the rows of metric 'acc'"):
        plotting.curves(summary.assign(layer=np.nan), "sigma_w", "acc", hue="layer")
    with pytest.raises(ValueError, match="has rows of metric 'acc' but no value column"):
        plotting.curves(summary.drop(columns="value"), "sigma_w", "acc")
    two = pd.concat([summary.assign(observable="weight_norms"), summary.assign(observable="gradient_norms")])
    with pytest.raises(ValueError, match=r"metric 'acc' belongs to several observables \(gradient_norms, "
                                         r"weight_norms\); give observable="):
        plotting.curves(two, "sigma_w", "acc", hue="group")
    assert plotting.curves(two, "sigma_w", "acc", hue="group", observable="weight_norms")


def test_plotting_is_lazy_and_leaves_pyplot_alone():
    code = ("import sys, goldstone; f = goldstone.plotting.curves; "
            "print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules, 'plotting' in dir(goldstone))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_tiny_values_a_decade_apart_are_not_evenly_spaced():
    assert plotting._scale([1e-10, 1e-9, 1e-8], None) == "log"
    assert plotting._scale([0.1, 0.2, 0.3], None) == "linear"
