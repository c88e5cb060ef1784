"""The config keys of a ReLU MLP trained by SGD on a small data set (`noether`, `ksb`), and the
data, model, batches and test accuracy they give."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from goldstone.core.config import param
from goldstone.core.device import DTYPES, resolve_dtype
from goldstone.core.errors import ConfigError
from goldstone.core.memory import MOST_EXAMPLES, training_state
from goldstone.data.classification import Dataset, batch_indices, load_dataset, noisy_labels
from goldstone.models.relu_mlp import relu_mlp


@dataclasses.dataclass
class SGDTrainingConfig:
    """A ReLU MLP on a small data set, trained by SGD (the keys `noether` and `ksb` share)."""
    dataset: str = param("digits", "data set", choices=("digits", "mnist1d"))
    batch_norm: bool = param(True, "BatchNorm after every hidden Linear (scale groups), else none (rescale "
                                   "groups per hidden unit)")
    bn_eps: float = param(1e-5, "BatchNorm eps; it breaks the scale symmetry at order eps / sigma^2", gt=0, le=1)
    width: int = param(128, "hidden units per layer", ge=1)
    depth: int = param(2, "hidden layers", ge=1, le=16)
    label_noise: float = param(0.0, "share of training labels replaced by random ones (keeps the gradients alive, "
                                    "so the charges reach an equilibrium)", ge=0, le=1)
    lr: float = param(0.1, "learning rate eta", label="learning rate η", gt=0, le=10)
    momentum: float = param(0.9, "heavy-ball momentum beta", label="momentum β", ge=0, le=0.999)
    weight_decay: float = param(5e-4, "weight decay lambda (L2, on every parameter)", label="weight decay λ", ge=0,
                                le=1)
    steps: int = param(3000, "optimiser steps", label="steps n", ge=1)
    batch_size: int = param(64, "batch size", ge=1)
    eval_every: int = param(250, "steps between test evaluations", ge=1)
    checkpoint_every: int = param(1000, "steps between checkpoints", ge=1)
    dtype: str = param("float32", "precision of model and data (also --dtype)", choices=tuple(DTYPES))

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): depth x width^2 weights with SGD's momentum, four
        (batch, width) activations per layer."""
        itemsize = DTYPES[self.dtype].itemsize
        return {"weights and momentum (keys width, depth)": training_state(self.depth * self.width ** 2, itemsize, 1),
                "activations (keys batch_size, width, depth)":
                4 * min(self.batch_size, MOST_EXAMPLES) * self.width * self.depth * itemsize}


def prepared_data(cfg: SGDTrainingConfig, device: torch.device) -> Dataset:
    """The config's data set on `device` in its dtype, with its share of noisy training labels."""
    data = load_dataset(cfg.dataset).to(device, resolve_dtype(cfg.dtype))
    if cfg.batch_size > len(data.x_train):
        raise ConfigError(f"key 'batch_size'={cfg.batch_size} is more than the {len(data.x_train)} training examples "
                          f"of {cfg.dataset}")
    if cfg.label_noise:
        noisy = noisy_labels(data.y_train.cpu(), cfg.label_noise, data.num_classes, 0)
        data = dataclasses.replace(data, y_train=noisy.to(device))
    return data


def model_for(cfg: SGDTrainingConfig, data: Dataset, seed: int, device: torch.device) -> nn.Module:
    """The config's ReLU MLP for `data`, initialised from `seed`, in training mode."""
    torch.manual_seed(seed)
    model = relu_mlp(data.num_features, cfg.width, cfg.depth, data.num_classes, cfg.batch_norm, cfg.bn_eps)
    return model.to(device, resolve_dtype(cfg.dtype)).train()


def batch(cfg: SGDTrainingConfig, data: Dataset, step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training batch of `step` (`batch_indices`)."""
    idx = batch_indices(len(data.x_train), cfg.batch_size, step, seed).to(data.x_train.device)
    return data.x_train[idx], data.y_train[idx]


def batch_loss(cfg: SGDTrainingConfig, data: Dataset, model: nn.Module, seed: int,
               log: Callable[..., None]) -> Callable[[int], torch.Tensor]:
    """The `train_loop` loss of these experiments: cross-entropy on the batch of `step`, logged with
    ``log(step + 1, "train", loss, "loss")`` (a run's `log_tensor`)."""
    def loss_fn(step: int) -> torch.Tensor:
        x, y = batch(cfg, data, step, seed)
        loss = F.cross_entropy(model(x), y)
        log(step + 1, "train", loss, "loss")
        return loss
    return loss_fn


def evaluate(model: nn.Module, data: Dataset) -> float:
    """Test accuracy, in eval mode."""
    model.eval()
    with torch.no_grad():
        accuracy = (model(data.x_test).argmax(-1) == data.y_test).double().mean().item()
    model.train()
    return accuracy
