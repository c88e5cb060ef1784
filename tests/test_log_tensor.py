"""`RunContext.log_tensor` logs what `log(step, ..., t.item())` logs, rows in the same order,
while copying the values to the host in batches."""

import pandas as pd
import torch

from goldstone.lab.run import SYNC_EVERY, RunContext
from goldstone.lab.views import METRICS


def context(folder) -> RunContext:
    return RunContext(folder, "test", None, 0, torch.device("cpu"), quiet=True)


def fill(ctx: RunContext, deferred: bool) -> None:
    """Losses of two dtypes every step, interleaved with plain rows and frames."""
    generator = torch.Generator().manual_seed(0)
    for step in range(2 * SYNC_EVERY + 7):
        for dtype in (torch.float32, torch.bfloat16):
            loss = torch.rand((), generator=generator).to(dtype).requires_grad_()
            if deferred:
                ctx.log_tensor(step + 1, "train", loss, str(dtype))
            else:
                ctx.log(step + 1, "train", loss.item(), str(dtype))
        if step % 10 == 0:
            ctx.log(step, "test", step / 10, "accuracy")
        if step % 45 == 0:
            ctx.log_frame(pd.DataFrame({"step": [step], "observable": "probe", "metric": "c", "value": [1.0]}))


def test_deferred_rows_equal_immediate_ones(tmp_path):
    deferred, immediate = context(tmp_path / "a"), context(tmp_path / "b")
    fill(deferred, True)
    fill(immediate, False)
    pd.testing.assert_frame_equal(deferred.metrics, immediate.metrics, check_exact=True)


def test_a_checkpoint_stores_every_held_value(tmp_path):
    ctx = context(tmp_path)
    for step in range(SYNC_EVERY // 2):
        ctx.log_tensor(step, "train", torch.tensor(step / 3), "loss")
    ctx.checkpoint(SYNC_EVERY // 2)
    stored = pd.read_parquet(tmp_path / METRICS)
    assert stored.value.tolist() == [torch.tensor(step / 3).item() for step in range(SYNC_EVERY // 2)]
