"""Attention-matrix entanglement profiles and the area-law fits."""

import math

import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.analysis.area_law import area_law_fits

transformers = pytest.importorskip("transformers")


def test_calabrese_cardy_fit_recovers_its_central_charge_and_wins_by_aic():
    n = 14
    cut = torch.arange(1, n, dtype=torch.float64)
    profile = 0.3 + (2.0 / 6) * torch.log(2 * n / math.pi * torch.sin(math.pi * cut / n))
    fits = area_law_fits(profile)
    assert fits["calabrese_cardy"]["slope"] == pytest.approx(2.0, abs=1e-10)
    assert min(fits, key=lambda k: fits[k]["aic"]) == "calabrese_cardy"
    volume = area_law_fits(0.7 * torch.minimum(cut, n - cut))
    assert min(volume, key=lambda k: volume[k]["aic"]) == "volume"


def test_profiles_of_every_head_on_unpadded_chunks():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from goldstone.analysis.attention_entanglement import attention_profiles, text_chunks

    words = "[PAD] [UNK] [CLS] [SEP] [MASK] the cat sat on a mat and dog ran".split()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                                     cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    model.config._attn_implementation = "eager"
    texts = ["the cat sat on a mat and the dog ran"] * 10
    chunks = text_chunks(tokenizer, texts, length=16, count=3)
    assert chunks.shape == (3, 16) and (chunks[:, 0] == tokenizer.cls_token_id).all()
    profiles = attention_profiles(model, chunks)
    assert profiles.shape == (2, 3, 2, 7)  # layers, chunks, heads, cuts of 4 + 4 qubits
    bound = math.log(2) * torch.minimum(torch.arange(1, 8), 8 - torch.arange(1, 8))
    assert (profiles >= -1e-12).all() and (profiles <= bound + 1e-9).all()
    with pytest.raises(GoldstoneError, match="power of two"):
        text_chunks(tokenizer, texts, length=12)
    with pytest.raises(GoldstoneError, match="are needed"):
        text_chunks(tokenizer, texts[:1], length=16, count=3)
