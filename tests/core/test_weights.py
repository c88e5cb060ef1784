"""read_weights from every place weights are saved, and load_weights with tied weights."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import goldstone
from goldstone.core.errors import RunFolderError
from goldstone.core.weights import load_weights, read_weights


def test_safetensors_file_run_checkpoint_and_run_folder(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    newest = sorted((run.folder / "checkpoints").glob("step_*"))[-1]
    from_checkpoint, from_run = read_weights(newest), read_weights(run.folder)
    assert set(from_checkpoint) == set(from_run) and "readout.weight" in from_run
    save_file(from_run, str(tmp_path / "w.safetensors"))
    torch.testing.assert_close(read_weights(tmp_path / "w.safetensors"), from_run)
    with pytest.raises(RunFolderError, match="holds no weights"):
        read_weights(tmp_path)


def test_sharded_hugging_face_folder(tmp_path):
    weights = {"a.weight": torch.randn(3, 2), "b.weight": torch.randn(2)}
    save_file({"a.weight": weights["a.weight"]}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b.weight": weights["b.weight"]}, str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}))
    torch.testing.assert_close(read_weights(tmp_path), weights)


def test_peft_lora_adapter_comes_out_merged_as_peft_merges_it(tmp_path):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    config = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=8)
    torch.manual_seed(0)
    base = transformers.BertModel(config)
    base.save_pretrained(tmp_path / "base")
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"]))
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p)  # B starts at zero; make the update visible
    lora.save_pretrained(tmp_path / "adapter")
    merged = read_weights(tmp_path / "adapter", base=tmp_path / "base")
    expected = lora.merge_and_unload().state_dict()
    assert set(merged) >= {"encoder.layer.0.attention.self.query.weight"}
    for key in ("encoder.layer.0.attention.self.query.weight", "encoder.layer.0.attention.self.value.weight",
                "encoder.layer.0.attention.self.key.weight"):
        torch.testing.assert_close(merged[key], expected[key])
    assert not torch.equal(merged["encoder.layer.0.attention.self.query.weight"],
                           read_weights(tmp_path / "base")["encoder.layer.0.attention.self.query.weight"])


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight


def test_tied_weights_may_be_saved_once_and_other_gaps_are_named(tmp_path):
    source, target = Tied(), Tied()
    save_file({"embed.weight": source.embed.weight.detach().clone()}, str(tmp_path / "t.safetensors"))
    load_weights(target, tmp_path / "t.safetensors")
    torch.testing.assert_close(target.out.weight, source.embed.weight)
    save_file({"other.weight": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(RunFolderError, match=r"missing embed\.weight, out\.weight; unexpected other\.weight"):
        load_weights(target, tmp_path / "bad.safetensors")
