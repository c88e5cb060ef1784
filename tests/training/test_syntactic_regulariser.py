import os

import pytest
import torch

from goldstone.core.errors import ConfigError
from goldstone.data.masking import mask_tokens
from goldstone.training.syntactic_regulariser import SyntacticRegulariser

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORD_INDEX = torch.tensor([[-1, 0, 1, 1, 2, -1]])
HEADS = torch.tensor([[1, -1, 1]])  # w0 -> w1, w1 root, w2 -> w1


def attention(value: float) -> torch.Tensor:
    """(B=1, H=2, T=6, T=6) with every token attending `value` to every other token."""
    return torch.full((1, 2, 6, 6), value)


def test_uniform_and_max_forms_by_hand():
    layers = (attention(0.1), attention(0.2))
    # word attention: column sums over subwords: to w1 (2 tokens) = 2 * a; from w1 rows averaged
    # arcs w0->w1, w2->w1: to-parent 2a each, from-parent a each; both directions: 3a per arc
    uniform = SyntacticRegulariser(1.0).syntactic_attention(layers, WORD_INDEX, HEADS)
    assert float(uniform) == pytest.approx(2 * 3 * (0.1 + 0.2) * 2)  # 2 arcs, 2 heads per layer
    biggest = SyntacticRegulariser(1.0, form="max").syntactic_attention(layers, WORD_INDEX, HEADS)
    assert float(biggest) == pytest.approx(2 * 3 * 0.2)
    one_way = SyntacticRegulariser(1.0, directions="dependent->parent").syntactic_attention(layers, WORD_INDEX, HEADS)
    assert float(one_way) == pytest.approx(2 * 2 * (0.1 + 0.2) * 2)


def test_sign_and_transient_release():
    layers = (attention(0.1).requires_grad_(),)
    sas_minus = SyntacticRegulariser(0.5, release_step=10)
    assert float(sas_minus(layers, WORD_INDEX, HEADS, step=3).detach()) > 0
    assert float(sas_minus(layers, WORD_INDEX, HEADS, step=10)) == 0.0
    sas_plus = SyntacticRegulariser(-0.5)
    loss = sas_plus(layers, WORD_INDEX, HEADS, step=100)
    loss.backward()
    assert float(loss.detach()) < 0 and layers[0].grad.abs().sum() > 0


def test_bad_form_is_named():
    with pytest.raises(ConfigError, match="form must be one of uniform, max"):
        SyntacticRegulariser(1.0, form="mean")


def test_masking_is_a_function_of_seed_and_step():
    ids = torch.randint(5, 100, (64, 32))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    a, labels = mask_tokens(ids, special, mask_id=4, vocab_size=100, seed=1, step=7)
    b, _ = mask_tokens(ids, special, mask_id=4, vocab_size=100, seed=1, step=7)
    assert torch.equal(a, b)
    chosen = labels != -100
    assert 0.12 < chosen.float().mean() < 0.18 and not chosen[:, 0].any()
    assert 0.7 < (a[chosen] == 4).float().mean() < 0.9
    assert torch.equal(labels[chosen], ids[chosen])


def test_regulariser_in_a_hugging_face_trainer(tmp_path):
    transformers = pytest.importorskip("transformers")
    from goldstone.training.hf_trainer import SyntacticCollator, syntactic_trainer

    config = transformers.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16)
    torch.manual_seed(0)
    model = transformers.BertForMaskedLM(config)
    model.set_attn_implementation("eager")

    class Tok:
        pad_token_id, mask_token_id = 0, 1

        def __len__(self):
            return 60

    data = [{"input_ids": torch.tensor([2, 10 + i, 20 + i, 30, 3]), "attention_mask": torch.ones(5, dtype=torch.long),
             "word_index": torch.tensor([-1, 0, 1, 2, -1]), "heads": torch.tensor([1, -1, 1])} for i in range(8)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4,
                                          report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no",
                                          remove_unused_columns=False)
    regulariser = SyntacticRegulariser(10.0)
    trainer = syntactic_trainer(regulariser, model=model, args=args, train_dataset=data,
                                data_collator=SyntacticCollator(Tok()))
    batch = SyntacticCollator(Tok())(data[:4])
    word_index, heads = batch.pop("word_index"), batch.pop("heads")
    before = float(regulariser.syntactic_attention(model(**batch, output_attentions=True).attentions, word_index, heads))
    trainer.train()
    after = float(regulariser.syntactic_attention(model(**batch, output_attentions=True).attentions, word_index, heads))
    assert after < before  # SAS- pushed syntactic attention down
    with pytest.raises(ConfigError, match="remove_unused_columns=False"):
        syntactic_trainer(regulariser, model=model, args=transformers.TrainingArguments(
            output_dir=str(tmp_path), report_to=[], use_cpu=True), train_dataset=data)
