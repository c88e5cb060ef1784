"""Broken model folders given to `goldstone census`, `symmetries` and `entanglement`: pickled weights
that are not a state dict, sharded indexes that lie, a config.json that disagrees with the weights,
LoRA adapters that do not fit their base, degenerate and non-finite matrices. Each ends in exit code
2 and one line naming the file (and the tensor or key at fault), never a traceback; the classes are
checked one by one, then mixed by hypothesis."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from goldstone.cli import app

pytest.importorskip("transformers")

runner = CliRunner()
COMMANDS = ("census", "symmetries", "entanglement")
MODULE = "bert.encoder.layer.0.attention.self.query"
QUERY = MODULE + ".weight"
LORA = "base_model.model." + MODULE
RANK = 2


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny BERT classifier folder (hidden 32, 4 heads, 1 layer, intermediate 64) with its tokenizer."""
    from tests.test_cli import tiny_classifier_folder

    return tiny_classifier_folder(tmp_path_factory.mktemp("base") / "model")


def invoke(command: str, folder: Path):
    extra = ["--out", str(folder.parent / f"{folder.name}.parquet")] if command == "entanglement" else []
    return runner.invoke(app, [command, str(folder), *extra])


def refused(result, *names: str) -> str:
    """The one line of a refusal (exit code 2, no traceback) that names every one of `names`."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(name in lines[0] for name in names), (names, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- folder builders


def copy(base: Path, folder: Path) -> Path:
    shutil.copytree(base, folder)
    return folder


def pickled(folder: Path, content) -> None:
    """pytorch_model.bin in place of model.safetensors: `content` pickled with torch.save, or raw bytes."""
    (folder / "model.safetensors").unlink()
    if isinstance(content, bytes):
        (folder / "pytorch_model.bin").write_bytes(content)
    else:
        torch.save(content, folder / "pytorch_model.bin")


def sharded(folder: Path, index, drop: str | None = None) -> None:
    """Two shards (the query weight alone in the second, minus `drop`) and `index` as the index file."""
    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    save_file({k: v for k, v in weights.items() if k != QUERY}, str(folder / "a.safetensors"))
    save_file({k: v for k, v in weights.items() if k == QUERY and k != drop} or {"other": torch.zeros(1)},
              str(folder / "b.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def good_index(folder: Path) -> dict:
    """The index of the two shards `sharded` writes."""
    weights = load_file(str(folder / "model.safetensors"))
    return {"weight_map": {k: "b.safetensors" if k == QUERY else "a.safetensors" for k in weights}}


def configured(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


def with_query(folder: Path, query: torch.Tensor) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    save_file({**weights, QUERY: query}, str(folder / "model.safetensors"))


def adapter(folder: Path, base: Path, config: dict | None = None, tensors: dict | None = None) -> Path:
    """A PEFT LoRA adapter (r = 2 on the query) over `base`, with `config` and `tensors` changed
    (a tensor given as None is left out)."""
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    pair = {f"{LORA}.lora_A.weight": torch.randn(RANK, 32, generator=g),
            f"{LORA}.lora_B.weight": torch.randn(32, RANK, generator=g)}
    pair.update(tensors or {})
    save_file({k: v for k, v in pair.items() if v is not None}, str(folder / "adapter_model.safetensors"))
    settings_ = {"peft_type": "LORA", "r": RANK, "lora_alpha": 4, "base_model_name_or_path": str(base)}
    (folder / "adapter_config.json").write_text(json.dumps({**settings_, **(config or {})}))
    return folder


# --------------------------------------------------------------------------- one class at a time


def test_an_intact_folder_and_adapter_pass(base, tmp_path):
    for command in COMMANDS:
        assert invoke(command, base).exit_code == 0
    assert invoke("entanglement", adapter(tmp_path / "adapter", base)).exit_code == 0


class Payload:
    """Unpickling it would create a file: torch.load(weights_only=True) must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("content,message", [
    ([1, 2], "holds a list, not a state dict"),
    ({QUERY: 3}, f"entry {QUERY!r} (int) is not a tensor"),
    ({QUERY: "a"}, f"entry {QUERY!r} (str) is not a tensor"),
    ({7: torch.zeros(2)}, "entry 7 (Tensor) is not a tensor under a name"),
    (b"garbage" * 9, "cannot be read as a PyTorch weights file"),
    ("payload", "cannot be read as a PyTorch weights file"),
])
@pytest.mark.parametrize("command", COMMANDS)
def test_pickled_weights_that_are_not_a_state_dict(base, tmp_path, command, content, message):
    folder = copy(base, tmp_path / "model")
    marker = tmp_path / "unpickled"
    pickled(folder, Payload(marker) if content == "payload" else content)
    refused(invoke(command, folder), "pytorch_model.bin", message)
    assert not marker.exists()  # weights_only=True: nothing but tensors is ever unpickled


@pytest.mark.parametrize("index,drop,message", [
    ([1], None, "model.safetensors.index.json: must hold a JSON object, got list"),
    ({"weight_map": [1]}, None, "weight_map must map tensor names to shard files in the same folder"),
    ({"weight_map": {QUERY: 1}}, None, "weight_map must map tensor names to shard files in the same folder"),
    ({"weight_map": {QUERY: "../b.safetensors"}}, None, "in the same folder"),
    ({"weight_map": {QUERY: "c.safetensors"}}, None, "names the shard 'c.safetensors', which is missing"),
    ("good", QUERY, f"b.safetensors: lacks {QUERY!r}, which model.safetensors.index.json puts there"),
])
@pytest.mark.parametrize("command", COMMANDS)
def test_sharded_indexes_that_lie(base, tmp_path, command, index, drop, message):
    folder = copy(base, tmp_path / "model")
    sharded(folder, good_index(folder) if index == "good" else index, drop)
    refused(invoke(command, folder), "model.safetensors.index.json", message)


@pytest.mark.parametrize("changes,message", [
    ({"hidden_size": 48}, "hidden_size = 48 disagrees with the weights: 'bert.embeddings.word_embeddings.weight' is "
                          "(200, 32) in"),
    ({"intermediate_size": 16}, "intermediate_size = 16 disagrees with the weights"),
    ({"vocab_size": 300}, "vocab_size = 300 disagrees with the weights"),
    ({"max_position_embeddings": 32}, "hidden_size / max_position_embeddings = 32 disagrees with the weights"),
    ({"num_attention_heads": 5}, "hidden_size = 32 is not a multiple of num_attention_heads = 5"),
    ({"num_attention_heads": 0}, "num_attention_heads = 0; it must be a positive whole number"),
    ({"hidden_size": -32}, "hidden_size = -32; it must be a positive whole number"),
    ({"num_hidden_layers": 2}, "lack 16 tensors this config's model needs, e.g. 'bert.encoder.layer.1."),
])
@pytest.mark.parametrize("command", ["census", "symmetries"])
def test_a_config_that_disagrees_with_the_weights(base, tmp_path, command, changes, message):
    folder = copy(base, tmp_path / "model")
    configured(folder, **changes)
    refused(invoke(command, folder), "config.json", message)


@pytest.mark.parametrize("config,tensors,names", [
    ({"r": 0}, None, ["adapter_config.json", "r = 0; the LoRA rank must be a whole number >= 1"]),
    ({"r": 2.5}, None, ["adapter_config.json", "r = 2.5"]),
    ({"r": "8"}, None, ["adapter_config.json", "r = '8'"]),
    ({"lora_alpha": -1}, None, ["adapter_config.json", "lora_alpha = -1; it must be a finite number >= 0"]),
    ({"lora_alpha": math.nan}, None, ["adapter_config.json", "lora_alpha = nan"]),
    ({"rank_pattern": {"query": 4}}, None, ["adapter_config.json", "rank_pattern"]),
    ({}, {f"{LORA}.lora_B.weight": None}, ["adapter_model.safetensors", f"'{LORA}.lora_A.weight' has no",
                                          "lora_B"]),
    ({}, {f"{LORA}.lora_A.weight": None}, ["adapter_model.safetensors", f"'{LORA}.lora_B.weight' has no"]),
    ({}, {f"{LORA}.lora_A.weight": torch.ones(3, 32)},
     ["adapter_model.safetensors", f"'{LORA}.lora_A.weight' is (3, 32), not (2, 32)", QUERY]),
    ({}, {f"{LORA}.lora_A.weight": torch.ones(2, 16)}, ["adapter_model.safetensors", "is (2, 16), not (2, 32)"]),
    ({}, {f"{LORA}.lora_B.weight": torch.ones(16, 2)}, ["adapter_model.safetensors", "is (16, 2), not (32, 2)"]),
    ({"fan_in_fan_out": True}, {f"{LORA}.lora_A.weight": torch.ones(2, 16)},
     ["adapter_model.safetensors", "is (2, 16), not (2, 32)"]),
])
def test_lora_adapters_that_do_not_fit_their_base(base, tmp_path, config, tensors, names):
    refused(invoke("entanglement", adapter(tmp_path / "adapter", base, config, tensors)), *names)


@pytest.mark.parametrize("query,message", [
    (torch.full((32, 32), math.nan), f"{QUERY!r} holds 1024 NaN or infinite values"),
    (torch.eye(32).index_fill(0, torch.tensor([3]), math.inf), f"{QUERY!r} holds 32 NaN or infinite values"),
    (torch.ones(0, 32), QUERY),
    (torch.ones(1, 32), QUERY),
    (torch.ones(32, 1), QUERY),
])
@pytest.mark.parametrize("command", COMMANDS)
def test_degenerate_and_non_finite_matrices(base, tmp_path, command, query, message):
    folder = copy(base, tmp_path / "model")
    with_query(folder, query)
    refused(invoke(command, folder), message)


def test_entanglement_of_a_vector_or_an_empty_matrix_says_why(base, tmp_path):
    folder = copy(base, tmp_path / "model")
    with_query(folder, torch.ones(1, 32))
    refused(invoke("entanglement", folder), f"{QUERY!r} is 1 x 32: a profile needs both sides >= 2")
    with_query(folder, torch.ones(0, 32))
    refused(invoke("entanglement", folder), f"{QUERY!r} is 0 x 32: a profile needs both sides >= 2")


# --------------------------------------------------------------------------- all classes, mixed


@st.composite
def broken(draw):
    """(build, the commands that read it, what the refusal must name): build(base, folder) -> the
    folder to give the command."""
    kind = draw(st.sampled_from(["pickled", "sharded", "config", "adapter", "matrix"]))
    if kind == "pickled":
        content = draw(st.one_of(
            st.binary(max_size=64), st.lists(st.integers(), max_size=3),
            st.dictionaries(st.sampled_from([QUERY, "x", "7"]), st.one_of(st.integers(), st.text(max_size=3),
                                                                           st.just([1])), min_size=1),
            st.just({1: torch.zeros(2)}), st.just({"state_dict": {QUERY: torch.zeros(2)}})))
        return (lambda base, folder: pickled(copy(base, folder), content) or folder), COMMANDS, ["pytorch_model.bin"]
    if kind == "sharded":
        index = draw(st.one_of(
            st.just("drop"),
            st.builds(lambda v: {"weight_map": v}, st.one_of(st.lists(st.text(max_size=3), max_size=2),
                                                             st.dictionaries(st.just(QUERY), st.integers(), min_size=1),
                                                             st.just({QUERY: "missing.safetensors"}),
                                                             st.just({QUERY: "../b.safetensors"}), st.none())),
            st.lists(st.integers(), max_size=2), st.integers()))

        def build(base, folder):
            copy(base, folder)
            sharded(folder, good_index(folder) if index == "drop" else index, QUERY if index == "drop" else None)
            return folder
        return build, COMMANDS, ["model.safetensors.index.json"]
    if kind == "config":
        key, value = draw(st.sampled_from([
            ("hidden_size", st.sampled_from([8, 16, 48, 64])), ("intermediate_size", st.integers(1, 200)),
            ("vocab_size", st.integers(1, 400)), ("max_position_embeddings", st.integers(1, 200)),
            ("num_attention_heads", st.sampled_from([0, 3, 5, 7, -4])), ("hidden_size", st.integers(-40, 0)),
            ("type_vocab_size", st.integers(3, 9))]).flatmap(lambda kv: st.tuples(st.just(kv[0]), kv[1])))
        if {"intermediate_size": 64, "vocab_size": 200, "max_position_embeddings": 64}.get(key) == value:
            value += 1  # the folder's own value: nothing to disagree with
        return (lambda base, folder: configured(copy(base, folder), **{key: value}) or folder), \
            ("census", "symmetries"), ["config.json", key]
    if kind == "adapter":
        config = draw(st.one_of(st.just({}), st.fixed_dictionaries({"r": st.one_of(
            st.integers(-3, 0), st.floats(allow_nan=True), st.text(max_size=2), st.none(), st.booleans())}),
            st.fixed_dictionaries({"lora_alpha": st.one_of(st.floats(max_value=-1e-9), st.just(math.nan),
                                                           st.just(math.inf), st.text(max_size=2))})))
        shapes = st.tuples(st.integers(0, 40), st.integers(0, 40)).filter(lambda s: s not in ((RANK, 32), (32, RANK)))
        tensors = {} if config else draw(st.one_of(
            st.builds(lambda which: {f"{LORA}.lora_{which}.weight": None}, st.sampled_from("AB")),
            st.builds(lambda which, shape: {f"{LORA}.lora_{which}.weight": torch.ones(shape)},
                      st.sampled_from("AB"), shapes)))
        name = "adapter_config.json" if config else "adapter_model.safetensors"
        return (lambda base, folder: adapter(folder, base, config, tensors)), ("entanglement",), [name]
    query = draw(st.one_of(
        st.tuples(st.integers(0, 1), st.integers(0, 40)), st.tuples(st.integers(0, 40), st.integers(0, 1)),
        st.sampled_from([math.nan, math.inf, -math.inf])))
    query = torch.ones(query) if isinstance(query, tuple) else torch.eye(32).index_fill(1, torch.tensor([5]), query)
    return (lambda base, folder: with_query(copy(base, folder), query) or folder), COMMANDS, [QUERY]


@settings(max_examples=60, deadline=None)
@given(case=broken(), data=st.data())
def test_every_broken_folder_is_one_line_naming_the_file(base, tmp_path_factory, case, data):
    build, commands, names = case
    folder = build(base, tmp_path_factory.mktemp("fuzz") / "model")
    refused(invoke(data.draw(st.sampled_from(commands)), folder), *names)
