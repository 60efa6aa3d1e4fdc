"""LoRA by hand against peft, merging, trainable shares, atomic adapter saves, peak memory (lesson 11)."""

import pytest
import torch
from torch import nn

peft = pytest.importorskip("peft")

from transfer_utils.methods import parameter_efficient as pe  # noqa: E402


def tiny_bert(seed: int = 0) -> nn.Module:
    """A 2-layer BERT classifier with random weights (no files needed)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, num_labels=2)
    return BertForSequenceClassification(config).eval()


def randomize_lora_b(model: nn.Module, seed: int = 1) -> None:
    """peft starts B at zero (the adapter is then a no-op): give it values so the checks can fail."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)


class OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(12, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.query(x)


def test_hand_lora_matches_peft_lora_layer():
    torch.manual_seed(0)
    model = OneLayer()
    base_out = model(torch.ones(1, 12)).detach()
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query"]))
    randomize_lora_b(wrapped)
    wrapped.eval()
    layer = wrapped.base_model.model.query
    hand = pe.LoRALinear.from_peft(layer).eval()
    x = torch.randn(5, 3, 12)
    assert torch.allclose(hand(x), layer(x), atol=1e-6)
    assert not torch.allclose(hand(torch.ones(1, 12)), base_out, atol=1e-3), "the adapter must change the output"
    assert hand.scaling == 2.0 and [n for n, p in hand.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def test_new_hand_lora_starts_as_the_base_layer_and_merges_to_the_same_function():
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    hand = pe.LoRALinear(base, r=2, alpha=4)
    x = torch.randn(8, 10)
    assert torch.equal(hand(x), base(x))  # B = 0 at the start
    with torch.no_grad():
        hand.lora_B.normal_()
    merged = hand.merged()
    assert torch.allclose(merged(x), hand(x), atol=1e-5) and not torch.allclose(merged(x), base(x), atol=1e-3)
    assert torch.linalg.matrix_rank(hand.delta_weight()) <= 2


def test_hand_merge_equals_peft_merge_and_logits_survive_merge_and_unload():
    model = pe.lora_classifier(tiny_bert(), r=4, alpha=8, dropout=0.0)
    randomize_lora_b(model)
    model.eval()
    query = model.base_model.model.bert.encoder.layer[0].attention.self.query
    hand_weight = pe.LoRALinear.from_peft(query).merged().weight
    ids = torch.randint(0, 100, (3, 9))
    before = model(input_ids=ids).logits.detach()
    merged = model.merge_and_unload()
    assert type(merged).__name__ == "BertForSequenceClassification"
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert torch.allclose(merged.bert.encoder.layer[0].attention.self.query.weight, hand_weight, atol=1e-6)
    assert torch.allclose(merged(input_ids=ids).logits, before, atol=1e-5)


def test_trainable_share_agrees_with_peft_and_head_only_trains_the_head():
    model = pe.lora_classifier(tiny_bert(), r=4, alpha=8)
    trainable, total, share = pe.trainable_share(model)
    assert (trainable, total) == model.get_nb_trainable_parameters()
    per_layer = 4 * (32 + 32)  # A: r × d_in, B: d_out × r, on query and value of 2 layers
    assert trainable == 2 * 2 * per_layer + 32 * 2 + 2  # plus the head (32 → 2)
    assert share == pytest.approx(trainable / total)
    ia3 = pe.ia3_classifier(tiny_bert())
    assert pe.trainable_share(ia3)[:2] == ia3.get_nb_trainable_parameters()
    head = pe.train_head_only(tiny_bert())
    assert [n for n, p in head.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]


def test_save_pretrained_atomic_writes_reloadable_adapters_and_replaces_old_ones(tmp_path):
    model = pe.lora_classifier(tiny_bert(), r=4, alpha=8, dropout=0.0)
    randomize_lora_b(model)
    model.eval()
    folder = tmp_path / "adapter"
    pe.save_pretrained_atomic(model, folder)
    sizes = pe.save_pretrained_atomic(model, folder)  # a second save replaces the first
    assert "adapter_model.safetensors" in sizes and "adapter_config.json" in sizes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"], "no temporary folders left behind"
    reloaded = peft.PeftModel.from_pretrained(tiny_bert(), folder).eval()
    ids = torch.randint(0, 100, (2, 7))
    assert torch.allclose(reloaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)


def test_peak_memory_sees_a_large_allocation():
    with pe.PeakMemory() as small:
        torch.ones(10)
    with pe.PeakMemory() as large:
        block = torch.ones(50_000_000)  # 200 MB
        block += 1
        del block
    assert large.peak_bytes > 150e6 > small.peak_bytes
