"""Noether charges: per-step cost of tracking every detected group, and detection time on MiniLM.

1. Tracking: the MNIST-1D BatchNorm MLP of the `ksb` experiment (40-256-BN-ReLU-256-BN-ReLU-10,
   batch 128, SGD with momentum and weight decay), 300 steps, with and without `NoetherCharges`
   updated every step (all 1281 groups: 512 scale, 512 rescale, 256 + 1 translation) and computed
   at the end: with a full measurement every 10 steps (the update energy, which drives the exact
   recursions, every step; goal: tracked / plain <= 1.05), and with everything every step
   (reported). Baseline: the plain loop (what a peer's training costs). Reported beside them, the
   floor: the plain loop plus one `torch._foreach_norm` over the parameters, gradients and
   momentum buffers per step (reading everything the update energy needs once, which no
   tracking can undercut).
2. Detection on MiniLM (6 layers, 12 heads): `detect_symmetries` on 4 batches of 4 sentences,
   against one forward + backward of one such batch. Goal: <= 200 such steps.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from benchmarks.common import interleaved, pin_threads, report
from goldstone.core.observable import Probe
from goldstone.data.classification import load_mnist1d
from goldstone.models.relu_mlp import relu_mlp
from goldstone.observables.noether_charges import NoetherCharges
from goldstone.observables.symmetry_detection import detect_symmetries


def tracking_loop(steps: int, tracked: bool, data, every: int = 1, floor: bool = False):
    """`steps` SGD steps of a fresh model, with every group's charges updated each step (and
    computed at the end) when `tracked`; detection runs once, before (it is not per-step work).
    With `floor` (and not `tracked`), one `_foreach_norm` over parameters, gradients and momentum
    buffers per step instead, where the update would run."""
    batches = [(data.x_train[i:i + 128], data.y_train[i:i + 128]) for i in range(0, 3840, 128)]
    torch.manual_seed(0)
    groups = detect_symmetries(relu_mlp(40, 256, 2, 10), batches[:1], F.cross_entropy)

    def train() -> None:
        torch.manual_seed(0)
        model = relu_mlp(40, 256, 2, 10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        charges = NoetherCharges(groups, every) if tracked else None
        params = list(model.parameters())
        for step in range(steps):
            x, y = batches[step % len(batches)]
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            if tracked:
                charges.update(Probe(model, step=step, optimizer=optimizer))
            elif floor:
                buffers = [optimizer.state[p]["momentum_buffer"] for p in params if p in optimizer.state]
                torch._foreach_norm(params + [p.grad for p in params] + buffers)
            optimizer.step()
        if tracked:
            charges.update(Probe(model, step=steps, optimizer=optimizer))
            charges.compute()
    return train


def detection_on_minilm(rounds: int) -> dict:
    from goldstone.analysis.model_symmetries import load_for_symmetries, symmetries_of

    model, tokenizer, kind = load_for_symmetries("minilm")
    model.train()
    inputs = dict(tokenizer(["The cat sat on the mat while the dog slept."] * 4, return_tensors="pt"))

    def step() -> None:
        model.zero_grad()
        model(**inputs).last_hidden_state.pow(2).mean().backward()

    def detect() -> None:
        symmetries_of(model, tokenizer, kind)

    timings = interleaved({"detect": detect, "step": step}, rounds=rounds, warmup=1, clock=time.process_time)
    ratio = timings["detect"].median / timings["step"].median
    return report("symmetry detection on MiniLM / one train step", ratio, "<= 200", ratio <= 200,
                  f"min / median / max of {rounds}: {timings['detect'].summary()}, "
                  f"{timings['step'].summary('ms', 1e3)}; detection: proposals, then 4 batches x (1 gradient + 1 forward per candidate family)")


def main(steps: int = 300, rounds: int = 5) -> list[dict]:
    pin_threads(1)
    data = load_mnist1d()
    timings = interleaved({"every 10": tracking_loop(steps, True, data, 10), "every step": tracking_loop(steps, True, data),
                           "floor": tracking_loop(steps, False, data, floor=True),
                           "plain": tracking_loop(steps, False, data)}, rounds=rounds, warmup=1)
    results = []
    floor = timings["floor"].median / timings["plain"].median
    for name, goal in (("every 10", 1.05), ("every step", None)):
        ratio = timings[name].median / timings["plain"].median
        results.append(report(f"Noether charges, full every {name.split()[-1]}: tracked / plain", ratio,
                              f"<= {goal}" if goal else "reported", goal is None or ratio <= goal,
                              f"min / median / max of {rounds}: {timings[name].summary()}, "
                              f"{timings['plain'].summary()}; {steps} steps of the MNIST-1D BN MLP (width 256, "
                              f"batch 128), 1281 groups, the update energy every step; floor (one _foreach_norm "
                              f"over params, grads and momentum buffers per step) / plain {floor:.3f} "
                              f"({timings['floor'].summary()})"))
    try:
        results.append(detection_on_minilm(3))
    except Exception as err:  # noqa: BLE001 - the hf extra or the MiniLM package may be missing
        print(f"symmetry detection on MiniLM: skipped ({err})")
    return results


if __name__ == "__main__":
    main()
