"""Declared state syncs across processes: one observable in 2 CPU processes (gloo) on split data
gives the single-process result."""

import subprocess
import sys

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
