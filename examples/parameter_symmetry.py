# %% [markdown]
# # Parameter symmetry: the census of a network and SGD's collapse
#
# "Parameter Symmetry and Noise Equilibrium of SGD", "Stochastic Collapse" (Chen, Kunin et al.):
# weight decay and SGD noise pull a network onto symmetric states: dead neurons, identical ones,
# low rank. `neuron_census` counts them in any model; the exact Lyapunov exponent of the linearised
# dynamics says when SGD noise alone collapses a product onto its symmetric state.

# %%
import torch
from torch import nn

import goldstone
from goldstone.theory.stochastic_collapse import collapse_boundary, lyapunov_exponent

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
with torch.no_grad():
    model[0].weight[8:16] = model[0].weight[:8]          # eight duplicated neurons
    model[2].weight[:, 16:20] = 0                          # and four whose output is cut
    model[0].weight[16:20] = 0
    model[0].bias[16:20] = 0
print(goldstone.neuron_census(model).table().T)

# %%
for batch in (1, 2, 8):
    eta = collapse_boundary(beta=0.1, noise=2.0, batch=batch)
    print(f"B = {batch}: SGD collapses u w above eta* = {eta:.4f}; "
          f"lambda(1.2 eta*) = {float(lyapunov_exponent(1.2 * eta, 0.1, 2.0, batch)[0]):+.2e} per step")
run = goldstone.run("sgd_collapse", out="runs/example-collapse", lr=0.2, batch_size=2, steps=5000)
print(run.manifest["headline"])
