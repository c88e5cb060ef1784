"""A loss that turns NaN or infinite stops training at that step, before any measurement or
checkpoint sees the non-finite weights; `goldstone run` says so in one line, a sweep records the
point as diverged and finishes the others."""

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from goldstone.cli import app
from goldstone.core.errors import DivergedError
from goldstone.lab.run import RunContext
from goldstone.lab.views import DIVERGED, Sweep
from goldstone.training.loop import CHECK_EVERY, train_loop

runner = CliRunner()


@pytest.mark.parametrize("bad_step,value", [(7, float("nan")), (CHECK_EVERY + 3, float("inf"))])
def test_training_stops_at_the_first_non_finite_loss(tmp_path, bad_step, value):
    ctx = RunContext(tmp_path, "test", None, 0, torch.device("cpu"), quiet=True)
    model = nn.Linear(3, 1)
    measured = []

    def loss_fn(step: int) -> torch.Tensor:
        loss = model(torch.ones(1, 3)).pow(2).sum()
        return loss * value if step >= bad_step else loss

    with pytest.raises(DivergedError, match=f"at step {bad_step} ") as caught:
        train_loop(ctx, model, torch.optim.SGD(model.parameters(), lr=0.01), 200, loss_fn, checkpoint=5,
                   measurements=[(1, lambda done: measured.append(bool(torch.isfinite(model.weight).all())))])
    assert caught.value.step == bad_step
    assert all(measured) and len(measured) == bad_step + 1  # step 0, then after each good step
    assert int(ctx._checkpoints()[-1].name.split("_")[1]) <= bad_step  # weights after good steps only


def test_the_command_line_names_the_step_and_a_sweep_finishes_the_other_points(tmp_path):
    small = ["--set", "batch_norm=false", "--set", "steps=200", "--set", "eval_every=50"]
    result = runner.invoke(app, ["run", "noether", *small, "--set", "lr=10", "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "became NaN or infinite at step" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["sweep", "noether", *small, "--grid", "lr=0.1,10", "--out", str(tmp_path / "s"),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    sweep = Sweep(tmp_path / "s")
    (good, good_folder), (bad, bad_folder) = sweep.point_folders()
    assert (bad_folder / DIVERGED).exists() and not (good_folder / DIVERGED).exists()
    summary = sweep.summary
    diverged = summary[summary.metric == "diverged_at_step"]
    assert list(diverged.lr) == [10.0] and diverged.value.iloc[0] > 0
    assert isinstance(summary, pd.DataFrame) and (summary[summary.lr == 0.1].metric == "test_accuracy").any()
