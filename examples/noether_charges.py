# %% [markdown]
# # Noether charges in your own training loop
#
# "Noether's Learning Dynamics" (Tanaka, Kunin) and "Neural Mechanics" (Kunin et al.): every
# continuous symmetry of the loss gives a charge that gradient flow conserves and that SGD with
# weight decay and momentum moves along an exact recursion. `detect_symmetries` finds the groups
# of any `nn.Module`; `NoetherCharges` in a `Monitor` tracks them every step against the recursion.

# %%
import torch
from torch import nn

import goldstone

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5)).double()
x, y = torch.randn(256, 20, dtype=torch.float64), torch.randint(0, 5, (256,))
loss_fn = nn.functional.cross_entropy
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)

groups = goldstone.detect_symmetries(model, [(x[:64], y[:64])], loss_fn)
for family in groups.families():
    print(f"{family.kind:12s} {family.name:12s} {family.count} groups")

# %%
charges = goldstone.NoetherCharges(groups)
monitor = goldstone.Monitor(model, [charges], schedule=50, total_steps=200, optimizer=optimizer)
for step in range(201):
    batch = torch.randint(0, 256, (32,))
    loss = loss_fn(model(x[batch]), y[batch])
    optimizer.zero_grad()
    loss.backward()
    monitor(step)
    optimizer.step()

result = charges.compute()
print(result.summary())
print("largest relative error against the exact recursion:", float(result.relative_error().max()))
