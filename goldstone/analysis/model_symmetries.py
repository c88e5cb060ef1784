"""The symmetry table of a Hugging Face model folder (`goldstone symmetries`).

The model is loaded with the head its config names: a sequence classifier is checked with
cross-entropy on random labels, a masked LM with its MLM loss, a bare encoder (such as MiniLM)
with a smooth loss of its last hidden states (the squared projection on a fixed random
direction): the network's scale and rescale symmetries hold for any loss of its outputs, while
translation needs the softmax head, so a bare encoder has none. The batches are a few built-in
English sentences, or the lines of a text file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import
from goldstone.core.weights import check_finite, read_weights
from goldstone.data.masking import mask_tokens
from goldstone.models.pretrained import minilm_path
from goldstone.observables.symmetry_detection import Symmetries, detect_symmetries

SENTENCES = ("The cat sat on the mat while the dog slept.", "Symmetry breaking shapes how networks learn.",
             "She gave him the book that he had asked for.", "Prices rose sharply after the announcement.",
             "Where did you put the keys yesterday?", "A small boat drifted slowly towards the harbour.",
             "They will finish the report before Friday.", "Nobody expected the results to be so clear.")


def read_sentences(text_file: Path | None) -> list[str]:
    """The non-empty lines of a UTF-8 text file, or a few built-in English sentences."""
    if text_file is None:
        return list(SENTENCES)
    try:
        lines = [line.strip() for line in Path(text_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise GoldstoneError(f"--text {text_file}: cannot read it as UTF-8 text ({err})") from err
    if not lines:
        raise GoldstoneError(f"--text {text_file}: no non-empty line")
    return lines


def load_for_symmetries(source: str | Path, tokenizer_source: str | Path | None = None):
    """(model, tokenizer, kind) for a folder or "minilm" (the tokenizer from `tokenizer_source` if
    given); kind is classifier, masked_lm or encoder."""
    transformers = optional_import("transformers", "hf", "goldstone symmetries on a Hugging Face model")
    folder = minilm_path() if str(source) == "minilm" else Path(source)
    if not (folder / "config.json").is_file():
        raise GoldstoneError(f"{folder}: not a Hugging Face model folder (no config.json); give a folder saved with "
                             "save_pretrained() or 'minilm'")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    config_values = check_config(folder / "config.json")
    check_finite(read_weights(folder), folder)  # unreadable or non-finite weights: one line naming the file or tensor
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder))
    except Exception as err:  # noqa: BLE001 - whatever transformers raises on a config it cannot use
        raise GoldstoneError(f"{folder / 'config.json'}: transformers cannot use this config "
                             f"({_first_line(err)})") from None
    architectures = config.architectures or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        kind, cls = "classifier", transformers.AutoModelForSequenceClassification
    elif any(a.endswith("ForMaskedLM") for a in architectures):
        kind, cls = "masked_lm", transformers.AutoModelForMaskedLM
    else:
        kind, cls = "encoder", transformers.AutoModel
    try:
        model, info = cls.from_pretrained(str(folder), attn_implementation="eager", ignore_mismatched_sizes=True,
                                          output_loading_info=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_source or folder))
    except Exception as err:  # noqa: BLE001 - weights that disagree with the config, a broken tokenizer, ...
        raise GoldstoneError(f"{folder}: cannot load the model or its tokenizer ({_first_line(err)})") from None
    _check_fit(folder / "config.json", config_values, model, info)
    return model, tokenizer, kind


SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
         "max_position_embeddings", "n_embd", "n_layer", "n_head", "dim", "n_heads", "n_layers")
"""Config entries that, where present, must be positive whole numbers."""

HEADS = (("hidden_size", "num_attention_heads"), ("n_embd", "n_head"), ("dim", "n_heads"))
"""(width, heads) entries: the width must be a multiple of the number of heads."""


def check_config(path: Path) -> dict:
    """A Hugging Face config.json as a dict, refused in one line naming it when it is not JSON, not an
    object, gives a size that is not a positive whole number, or a width that the heads do not divide."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GoldstoneError(f"{path}: not a readable JSON config ({_first_line(err)})") from None
    if not isinstance(config, dict):
        raise GoldstoneError(f"{path}: a config must be a JSON object, got {type(config).__name__}")
    bad = [key for key in SIZES if key in config and not (isinstance(config[key], int)
                                                           and not isinstance(config[key], bool) and config[key] > 0)]
    if bad:
        raise GoldstoneError(f"{path}: {bad[0]} = {config[bad[0]]!r}; it must be a positive whole number")
    for width, heads in HEADS:
        if width in config and heads in config and config[width] % config[heads]:
            raise GoldstoneError(f"{path}: {width} = {config[width]} is not a multiple of {heads} = {config[heads]}")
    return config


def _check_fit(path: Path, config: dict, model, info: dict) -> None:
    """Refuse, in one line naming config.json (`path`), a config whose model has tensors of other shapes
    than the weights (naming the entries whose value the wrong dimension is) or tensors of its body
    that the weights lack (`info`: from_pretrained's loading info)."""
    if info["mismatched_keys"]:
        order = {name: i for i, name in enumerate(model.state_dict())}
        name, saved, wanted = min(info["mismatched_keys"], key=lambda m: order.get(m[0], len(order)))
        size = next((w for s, w in zip(saved, wanted) if s != w), None) if len(saved) == len(wanted) else None
        keys = [k for k in (*SIZES, *sorted(config.keys() - set(SIZES)))
                if type(config.get(k)) is int and config[k] == size]
        raise GoldstoneError(f"{path}: {' / '.join(keys) + f' = {size}' if keys else 'it'} disagrees with the weights: "
                             f"{name!r} is {tuple(saved)} in {path.parent}, the config implies {tuple(wanted)}")
    prefix = "" if model.base_model is model else model.base_model_prefix + "."
    missing = sorted(k for k in info["missing_keys"] if k.startswith(prefix))
    if missing:
        raise GoldstoneError(f"{path}: the weights in {path.parent} lack {len(missing)} tensors this config's model "
                             f"needs, e.g. {missing[0]!r}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def model_symmetries(source: str | Path, text_file: Path | None = None, batch_size: int = 4, seed: int = 0,
                     tolerance: float = 1e-3) -> tuple[Symmetries, object]:
    """Detect the symmetries of a Hugging Face model folder on a few batches of text; returns them
    and the loaded model."""
    model, tokenizer, kind = load_for_symmetries(source)
    return symmetries_of(model, tokenizer, kind, text_file, batch_size, seed, tolerance), model


def probe_batches(tokenizer, kind: str, sentences: list[str], batch_size: int = 4, count: int = 4, seed: int = 0,
                  num_labels: int = 2) -> list[tuple[dict, torch.Tensor | None]]:
    """Up to `count` batches ``(inputs, targets)`` of `sentences` for a model of `kind`: random
    labels for a classifier, 15 % of the tokens masked and their ids as targets for a masked LM,
    none for an encoder."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for start in range(0, min(len(sentences), count * batch_size), batch_size):
        inputs = dict(tokenizer(sentences[start:start + batch_size], padding=True, truncation=True, max_length=64,
                                return_tensors="pt", return_special_tokens_mask=True))
        special = inputs.pop("special_tokens_mask").bool() | (inputs["attention_mask"] == 0)
        targets = None
        if kind == "classifier":
            targets = torch.randint(0, num_labels, (len(inputs["input_ids"]),), generator=g)
        elif kind == "masked_lm":  # BERT's 15 % (80 / 10 / 10), seeded: the model's own loss
            inputs["input_ids"], targets = mask_tokens(inputs["input_ids"], special, tokenizer.mask_token_id,
                                                       len(tokenizer), seed, start)
        batches.append((inputs, targets))
    return batches


class KindLoss:
    """The loss `loss_fn(outputs, targets)` a model's `kind` implies: cross-entropy of a classifier
    or of a masked LM's predictions of its masked tokens, or for a bare encoder the mean squared
    projection of its last hidden states on a fixed random direction (a class, so that it pickles
    into worker processes)."""

    def __init__(self, kind: str, hidden_size: int, seed: int = 0):
        direction = torch.randn(hidden_size, generator=torch.Generator().manual_seed(seed + 1))
        self.kind, self.direction = kind, direction / direction.norm()

    @property
    def description(self) -> str:
        """The loss in words, for reports."""
        return {"classifier": "cross-entropy on random labels",
                "masked_lm": "the masked-LM loss, 15 % of the tokens masked (seeded)",
                "encoder": "mean squared projection of the last hidden states on a fixed random direction (a bare "
                           "encoder has no head)"}[self.kind]

    def __call__(self, outputs, targets):
        if self.kind == "classifier":
            return torch.nn.functional.cross_entropy(outputs.logits, targets)
        if self.kind == "masked_lm":
            return torch.nn.functional.cross_entropy(outputs.logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        hidden = outputs.last_hidden_state
        return (hidden @ self.direction.to(hidden)).pow(2).mean()


def kind_loss(model, kind: str, seed: int = 0) -> KindLoss:
    """The `KindLoss` of a loaded Hugging Face model of `kind`."""
    return KindLoss(kind, model.config.hidden_size, seed)


def symmetries_of(model, tokenizer, kind: str, text_file: Path | None = None, batch_size: int = 4, seed: int = 0,
                  tolerance: float = 1e-3) -> Symmetries:
    """`detect_symmetries` on a loaded Hugging Face model with the loss its `kind` implies."""
    model.train()
    batches = probe_batches(tokenizer, kind, read_sentences(text_file), batch_size, 4, seed,
                            getattr(model.config, "num_labels", 2))
    return detect_symmetries(model, batches, kind_loss(model, kind, seed), tolerance, seed)


def symmetry_rows(symmetries: Symmetries, model: torch.nn.Module) -> pd.DataFrame:
    """One row per group: group, family, kind, index, parameters, size, quality, note."""
    shapes = {n: p.shape for n, p in model.named_parameters()}
    sizes = {id(f): f.group_size(shapes) for f in symmetries.families()}
    return pd.DataFrame([{"group": g.name, "family": g.family.name, "kind": g.kind, "index": g.index,
                          "parameters": ", ".join(g.parameters), "size": sizes[id(g.family)], "quality": g.quality,
                          "note": g.note} for g in symmetries],
                        columns=["group", "family", "kind", "index", "parameters", "size", "quality", "note"])
