"""Attention by hand, checked against PyTorch's own attention and against a real pretrained BERT."""

import math

import pytest
import torch
import torch.nn.functional as F

from transfer_utils import attention

SHAPES = [  # (batch dims, L_q, L_k, d_k, d_v)
    ((), 1, 1, 1, 1),
    ((2,), 5, 5, 8, 8),
    ((2, 3), 4, 7, 16, 5),
    ((1, 12), 33, 33, 32, 32),
]


def _qkv(lead, lq, lk, dk, dv, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, lq, dk, generator=g), torch.randn(*lead, lk, dk, generator=g),
            torch.randn(*lead, lk, dv, generator=g))


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_without_mask(shape):
    q, k, v = _qkv(*shape)
    out, probs = attention.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5)
    assert probs.shape == (*shape[0], shape[1], shape[2])
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_matches_torch_with_boolean_and_additive_masks(shape):
    q, k, v = _qkv(*shape, seed=1)
    g = torch.Generator().manual_seed(2)
    mask = torch.rand(*shape[0], shape[1], shape[2], generator=g) > 0.4
    mask[..., 0] = True  # every query keeps at least one key (fully blocked rows are undefined in torch)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out, probs = attention.scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(out, expected, atol=1e-5)
    assert probs.masked_select(~mask).abs().max() == 0  # blocked keys get exactly zero weight
    additive = torch.randn(*shape[0], shape[1], shape[2], generator=g)  # any float bias is added
    out, _ = attention.scaled_dot_product_attention(q, k, v, additive)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=additive), atol=1e-5)


def test_custom_scale_and_broadcast_padding_mask():
    q, k, v = _qkv((2, 4), 6, 6, 8, 8, seed=3)
    tokens = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    mask = attention.padding_mask(tokens)
    assert mask.shape == (2, 1, 1, 6) and mask.dtype == torch.bool
    out, probs = attention.scaled_dot_product_attention(q, k, v, mask, scale=1.0)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0), atol=1e-5)
    assert probs[0, :, :, 4:].abs().max() == 0


def test_fully_masked_row_is_uniform_not_nan():
    q, k, v = _qkv((1,), 2, 3, 4, 4)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    _, probs = attention.scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(probs[0, 1], torch.full((3,), 1 / 3))


def test_bad_inputs_fail_early_with_a_clear_message():
    q, k, v = _qkv((), 3, 4, 8, 5)
    with pytest.raises(ValueError, match="same last dimension"):
        attention.scaled_dot_product_attention(q, k[:, :4], v)
    with pytest.raises(ValueError, match="same length"):
        attention.scaled_dot_product_attention(q, k, v[:3])
    with pytest.raises(TypeError, match="bool"):
        attention.scaled_dot_product_attention(q, k, v, torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        attention.split_heads(torch.zeros(1, 2, 10), 3)
    with pytest.raises(ValueError, match="batch, length"):
        attention.padding_mask(torch.ones(5))


def test_split_and_merge_heads_are_inverse():
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).view(2, 3, 12)
    heads = attention.split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 3)
    assert torch.equal(heads[0, 1, 2], x[0, 2, 3:6])  # head 1 holds features 3..5 of every token
    assert torch.equal(attention.merge_heads(heads), x)


@pytest.mark.parametrize("dim, heads, masked", [(8, 1, False), (12, 3, True), (64, 8, True)])
def test_multi_head_module_matches_torch_multihead_attention(dim, heads, masked):
    torch.manual_seed(0)
    ours = attention.MultiHeadAttention(dim, heads)
    theirs = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():  # copy our four projections into torch's packed layout
        theirs.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        theirs.out_proj.weight.copy_(ours.out.weight)
        theirs.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(2, 5, dim)
    tokens = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]) if masked else torch.ones(2, 5, dtype=torch.long)
    with torch.no_grad():
        out, probs = ours(x, mask=attention.padding_mask(tokens))
        expected, expected_probs = theirs(x, x, x, key_padding_mask=tokens == 0, average_attn_weights=False)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(probs, expected_probs, atol=1e-6)


def test_cross_attention_uses_context_for_keys_and_values():
    torch.manual_seed(0)
    layer = attention.MultiHeadAttention(8, 2)
    out, probs = layer(torch.randn(1, 3, 8), torch.randn(1, 7, 8))
    assert out.shape == (1, 3, 8) and probs.shape == (1, 2, 3, 7)


def test_entropy_of_uniform_and_one_hot():
    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(attention.softmax_entropy(probs), torch.tensor([math.log(4), 0.0]))


def test_memory_meter_counts_live_tensors_only():
    x = torch.ones(1000)  # allocated before the block: not counted
    with attention.TensorMemoryMeter() as meter:
        a = x * 2  # 4,000 bytes
        b = a + 1  # 4,000 more, both alive
        del a, b
        c = x.view(10, 100)  # a view of an outside tensor: no new memory
        d = torch.zeros(250)  # 1,000 bytes after a and b died
    assert meter.peak_bytes == 8000 and c.shape == (10, 100) and d.numel() == 250


def test_attention_costs_memory_grows_with_the_score_matrix():
    small, large = attention.attention_costs([64, 128], dim=32, n_heads=2, rounds=1, progress=False)
    assert (small["n"], large["n"]) == (64, 128)
    assert large["score_matrix_mib"] == 4 * small["score_matrix_mib"]
    assert large["peak_mib"] >= large["score_matrix_mib"]  # the n×n probabilities exist at once
    assert 3.0 < large["peak_mib"] / small["peak_mib"] < 4.5
    assert small["attention_s"] > 0 and small["projections_s"] > 0


def test_fit_power_law_recovers_the_exponent():
    n = [64, 128, 256, 512]
    exponent, coef = attention.fit_power_law(n, [3e-9 * v**2 for v in n])
    assert exponent == pytest.approx(2.0) and coef == pytest.approx(3e-9)
    with pytest.raises(ValueError):
        attention.fit_power_law([1], [1])


@pytest.mark.slow
def test_reproduces_every_head_of_a_real_pretrained_bert():
    from transfer_utils.models.pretrained import load_text_encoder

    tokenizer, model = load_text_encoder("minilm", attn_implementation="eager")
    sentences = ["A warm, funny and surprisingly moving film.", "Dull.", "The plot never quite comes together."]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # padding is part of the test
    rows = attention.compare_with_bert(model, batch)
    assert len(rows) == model.config.num_hidden_layers
    assert max(r["max_abs_diff"] for r in rows) <= 1e-5
    # the context vectors (what the heads pass on) agree too: compare with a hook on layer 1
    captured = {}
    block = attention.bert_self_attention_module(model, 1)
    handle = block.register_forward_hook(lambda module, args, output: captured.update(out=output[0]))
    with torch.no_grad():
        hidden = model(**batch, output_hidden_states=True).hidden_states
    handle.remove()
    context, _ = attention.bert_attention(model, 1, hidden[1], batch["attention_mask"])
    assert torch.allclose(context, captured["out"], atol=1e-5)


def test_compare_with_bert_needs_eager_attention():
    from transfer_utils.models.pretrained import load_text_encoder

    tokenizer, model = load_text_encoder("minilm")  # default sdpa: no probabilities come back
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        attention.compare_with_bert(model, tokenizer(["hi"], return_tensors="pt"))
    with pytest.raises(ValueError, match="out of range"):
        attention.bert_self_attention_module(model, 6)
