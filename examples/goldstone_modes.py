# %% [markdown]
# # Goldstone modes in a deep MLP
#
# "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation": an
# O(k)-equivariant MLP stays trainable at depth in the broken phase (sigma_W > 1), where the
# order parameter c* (the mean squared block norm) is nonzero, while a generic MLP of the same
# gain does not. This example trains both for a few steps, then measures the order parameter of
# its own network layer by layer against the mean-field fixed point.

# %%
import torch

import goldstone
from goldstone.theory import fixed_point

STEPS = 80  # the paper's data and length: steps=1500, dataset="fashion_mnist" (README)

# %%
for group in ("ok", "generic"):
    run = goldstone.run("deep_mlp", out=f"runs/example-{group}", group=group, depth=100, steps=STEPS, eval_every=40,
                        observe_every=40, checkpoint_every=80)
    print(f"{group:8s} test accuracy after {STEPS} steps: {run.manifest['headline']['final_test_accuracy']:.3f}")

# %% [markdown]
# The order parameter of any network with `features()` / `trunk()`: here an O(4) trunk at random
# initialisation, 40 layers, against the mean-field c*.

# %%
from goldstone.models import DeepMLP

torch.manual_seed(0)
for sigma_w in (0.8, 1.5, 3.0):
    model = DeepMLP(64, 10, "ok", 4, 256, 40, sigma_w).double()
    x = torch.randn(16, 256, dtype=torch.float64) / 2
    (result,) = goldstone.measure(model, [goldstone.OrderParameter(4)], x, forward=model.trunk)
    print(f"sigma_W = {sigma_w}: c at the last layer {float(result.c[-1]):.4f}, mean-field c* {fixed_point(sigma_w, 4):.4f}")
