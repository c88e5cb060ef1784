"""Detect, then track: Noether charges of a small BERT classifier trained by the Hugging Face Trainer."""

import pytest
import torch

from goldstone.core.monitor import Monitor, trainer_callback
from goldstone.observables.noether_charges import NoetherCharges
from goldstone.observables.symmetry_detection import detect_symmetries

transformers = pytest.importorskip("transformers")


class Examples(torch.utils.data.Dataset):
    def __init__(self, n=64, length=8, vocab=50):
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(5, vocab, (n, length), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def test_trainer_run_tracks_attention_charges_against_the_exact_recursion(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=3,
                                     attn_implementation="eager")
    model = transformers.BertForSequenceClassification(config).train()
    data = Examples()
    batch = {k: torch.stack([data[i][k] for i in range(16)]) for k in ("input_ids", "attention_mask", "labels")}
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    groups = detect_symmetries(model, [(inputs, batch["labels"])],
                               lambda out, y: torch.nn.functional.cross_entropy(out.logits, y))
    assert {g.family.name for g in groups} >= {"layer 0 query ↔ key", "layer 1 value ↔ output"}
    charges = NoetherCharges(groups)
    args = transformers.TrainingArguments(str(tmp_path), per_device_train_batch_size=16, max_steps=12,
                                          learning_rate=0.05, optim="sgd", weight_decay=0.01, report_to=[],
                                          save_strategy="no", logging_strategy="no", use_cpu=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.add_callback(trainer_callback(Monitor(model, [charges], schedule=4)))
    trainer.train()
    result = charges.compute()
    assert result.charge.shape[0] == 13  # step 0 .. 12
    rescale = [i for i, k in enumerate(result.kinds) if k == "rescale"]
    assert all("measured" in result.theory[i] for i in rescale)  # the Trainer does not decay biases
    assert float(result.relative_error("exact")[:, rescale].max()) < 1e-4
    assert len(set(result.lr[:-1, 0].tolist())) > 1  # the Trainer's linear schedule, followed step by step
