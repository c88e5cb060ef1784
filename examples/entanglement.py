# %% [markdown]
# # The entanglement of a weight matrix
#
# Read a matrix as a pure state over its row and column sites (the prime factors of its sides):
# the entropy of each cut says how far it is from a product. A random matrix follows Page's curve;
# a rank-r update (a LoRA) is an MPS of bond r at the centre cut, so its entropy there is at most
# ln r. `entanglement_profile` computes every cut exactly, in float64, from two Gram matrices.

# %%
import math

import torch

import goldstone
from goldstone.observables.entanglement import prime_factors
from goldstone.theory.entanglement import page_curve

torch.manual_seed(0)
random = torch.randn(384, 384, dtype=torch.float64)
low_rank = torch.randn(384, 8, dtype=torch.float64) @ torch.randn(8, 384, dtype=torch.float64)

# %%
sites = prime_factors(384)
profile, lora = goldstone.entanglement_profile(random), goldstone.entanglement_profile(low_rank)
page = page_curve(sites + sites[::-1])
centre = len(sites) - 1
print(f"random matrix, centre cut: {float(profile[centre]):.3f} nats (Page: {float(page[centre]):.3f})")
print(f"rank-8 update, centre cut: {float(lora[centre]):.3f} nats (bound ln 8 = {math.log(8):.3f})")
