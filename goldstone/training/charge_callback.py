"""Track Noether charges in a Hugging Face `Trainer` run: detect, then track.

>>> groups = detect_symmetries(model, batches, loss_fn)
>>> charges = NoetherCharges(groups)
>>> trainer.add_callback(noether_trainer_callback(charges))
>>> trainer.train(); result = charges.compute()

The callback updates `charges` after the gradients are final (clipped) and before every optimiser
step, with the optimiser the Trainer built (Accelerate's wrapper removed), and once more when
training ends, so that the last step's momentum is recorded too.
"""

from __future__ import annotations

from typing import Any

from goldstone.core.extras import optional_import
from goldstone.core.observable import Probe
from goldstone.observables.noether_charges import NoetherCharges


def _inner(optimizer: Any) -> Any:
    """The torch optimiser under Accelerate's `AcceleratedOptimizer` (or the optimiser itself)."""
    return getattr(optimizer, "optimizer", optimizer)


def noether_trainer_callback(charges: NoetherCharges):
    """A `transformers.TrainerCallback` that feeds `charges` every optimiser step."""
    TrainerCallback = optional_import("transformers", "hf", "the Hugging Face Trainer callback").TrainerCallback

    class NoetherCallback(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
            charges.update(Probe(model, step=state.global_step, optimizer=_inner(optimizer)))
            return control

        def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            charges.update(Probe(model, step=state.global_step, optimizer=_inner(optimizer)))
            return control

    return NoetherCallback()
