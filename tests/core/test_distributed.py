"""Declared state syncs across processes: one observable in 2 CPU processes (gloo) on split data
gives the single-process result."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from goldstone.core.observable import measure
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, Overlap

WORKER = """
import sys
import torch
import torch.distributed as dist
from goldstone.core.observable import measure
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, Overlap

rank, world, store, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
torch.manual_seed(0)
model = DeepMLP(6, 2, "u1", width=8, depth=3, sigma_w=1.5).double()
x = torch.randn(8, 6, dtype=torch.float64)
order, overlap = measure(model, [OrderParameter(2), Overlap(2)], list(x.chunk(world)[rank].split(2)))
torch.save({"c": order.c, "magnitude": overlap.magnitude, "rank": rank}, out)
dist.destroy_process_group()
"""


def test_two_gloo_processes_on_split_data_give_the_single_process_result(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(rank), "2", str(tmp_path / "store"),
                               str(tmp_path / f"out{rank}.pt")], stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    torch.manual_seed(0)
    model = DeepMLP(6, 2, "u1", width=8, depth=3, sigma_w=1.5).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    order, overlap = measure(model, [OrderParameter(2), Overlap(2)], list(x.split(2)))
    for rank in (0, 1):
        synced = torch.load(tmp_path / f"out{rank}.pt")
        torch.testing.assert_close(synced["c"], order.c, rtol=1e-12, atol=0)
        assert torch.equal(synced["magnitude"], overlap.magnitude)  # pairs gathered in rank order


TRAINING = """
import sys
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
sys.path.insert(0, {tests!r})
from test_distributed import monitored_training

rank, world, store, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"file://{{store}}", rank=rank, world_size=world)
monitored_training(rank, world, DistributedDataParallel).to_parquet(out)
dist.destroy_process_group()
"""


def monitored_training(rank: int, world: int, wrap=None):
    """Six SGD steps of a ReLU net on this process's share of 32 examples, monitored at every
    step by a gradient, a parameter, an activation observable (on this share of the probe) and the
    `NoetherCharges` stream; returns the monitor's frame."""
    from torch import nn

    from goldstone.core.monitor import Monitor
    from goldstone.observables import GradientNorms, NoetherCharges, OrderParameter, WeightNorms
    from goldstone.observables.symmetry_detection import detect_symmetries

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4)).double()
    x, y = torch.randn(32, 6, dtype=torch.float64), torch.randint(0, 4, (32,))
    groups = detect_symmetries(model, [(x, y)], nn.functional.cross_entropy)
    trained = wrap(model) if wrap else model
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
    mine = slice(rank * 32 // world, (rank + 1) * 32 // world)
    probe = x[:16].chunk(world)[rank]
    monitor = Monitor(model, [GradientNorms(), WeightNorms(), OrderParameter(2, layers=["1"]), NoetherCharges(groups)],
                      probe, schedule=1, optimizer=optimizer)
    for step in range(6):
        optimizer.zero_grad()
        nn.functional.cross_entropy(trained(x[mine]), y[mine]).backward()
        monitor(step)
        optimizer.step()
    return monitor.frame()


def test_every_kind_in_a_monitor_under_ddp_gives_the_single_process_result(tmp_path):
    """Gradients averaged by DDP over two halves are the full batch's; parameters and the stream are
    replicated, not doubled; the activation observable gathers both halves of the probe."""
    import pandas as pd

    tests = str(Path(__file__).parent)
    (tmp_path / "worker.py").write_text(TRAINING.format(tests=tests))
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(rank), "2", str(tmp_path / "store"),
                               str(tmp_path / f"frame{rank}.parquet")], stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    single = monitored_training(0, 1)
    assert set(single.observable) == {"gradient_norms", "weight_norms", "order_parameter", "noether_charges"}
    assert sorted(single.step.unique()) == list(range(6))
    for rank in (0, 1):
        synced = pd.read_parquet(tmp_path / f"frame{rank}.parquet")
        assert synced.drop(columns="value").equals(single.drop(columns="value"))
        both = synced.value.notna() | single.value.notna()
        assert synced.value[both].to_numpy() == pytest.approx(single.value[both].to_numpy(), rel=1e-9, abs=1e-12)
