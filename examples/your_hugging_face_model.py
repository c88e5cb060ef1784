# %% [markdown]
# # Bring your own Hugging Face model
#
# Attach observables to a `Trainer` with one callback, then audit its saved checkpoints across all
# findings with one call. A tiny BERT classifier stands in for yours: put your model, data and
# `TrainingArguments` in its place.

# %%
import torch
import transformers

import goldstone

config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, num_labels=3)
model = transformers.BertForSequenceClassification(config)
ids = torch.randint(5, 64, (64, 12), generator=torch.Generator().manual_seed(0))
data = [{"input_ids": ids[i], "labels": int(ids[i, 0] % 3)} for i in range(64)]
probe = {"input_ids": ids[:8]}

# %% [markdown]
# During training: weight norms and gradient norms every 5 steps, through the Trainer's own loop.

# %%
monitor = goldstone.Monitor(model, [goldstone.WeightNorms(roles=["query", "value"]), goldstone.GradientNorms()],
                            probe, schedule=5)
args = transformers.TrainingArguments("runs/example-trainer", max_steps=20, per_device_train_batch_size=16,
                                      learning_rate=5e-3, save_strategy="steps", save_steps=5, report_to=[],
                                      logging_strategy="no", use_cpu=True, seed=0)
trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
trainer.add_callback(goldstone.trainer_callback(monitor, trainer))
trainer.train()
frame = monitor.frame()
print(goldstone.series(frame, "weight_norms", "norm").groupby("step").value.mean())

# %% [markdown]
# After training: every finding that applies, on every checkpoint (`goldstone audit
# runs/example-trainer` does the same from the command line).

# %%
audit = goldstone.audit("runs/example-trainer", out="runs/example-audit", quiet=True)
print(audit.plan[["observable", "applies"]].to_string(index=False))
print(audit.transitions if len(audit.transitions) else "no transition in 20 steps of this tiny model")
