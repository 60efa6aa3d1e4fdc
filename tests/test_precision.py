"""bf16 mixed precision: the 'auto' rule, autocast steps that stay close to float32, fine-tuning under bf16."""

import numpy as np
import pytest
import torch

from conftest import build_tiny_bert
from transfer_utils import fine_tuning as tc
from transfer_utils import training
from transfer_utils.models.pretrained import load_text_classifier
from transfer_utils.training import precision

TEXTS = ["a good film", "a bad film", "good", "bad", "the movie is good .", "the movie is bad ."] * 2
LABELS = [1, 0] * 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
    return str(folder), *load_text_classifier(str(folder), num_labels=2)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "with").write_text("flags : fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    (tmp_path / "without").write_text("flags : fpu avx2 avx512f\n")
    assert precision.cpu_bf16_flags(tmp_path / "with") == ["amx_bf16", "avx512_bf16"]
    assert precision.cpu_bf16_flags(tmp_path / "without") == []
    assert precision.cpu_bf16_flags(tmp_path / "missing") == []


def test_resolve_precision_rules():
    assert precision.resolve_precision("no", "cpu") == "no"
    assert precision.resolve_precision("bf16", "cpu") == "bf16"  # asked for: honoured even where slow
    expected = "bf16" if precision.cpu_bf16_flags() else "no"
    assert precision.resolve_precision("auto", "cpu") == expected
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        precision.resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        precision.autocast("auto", "cpu")


def test_autocast_step_is_close_to_float32_and_returns_float32_logits():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    batch = (torch.randn(8, 16), torch.randint(0, 3, (8,)))
    assert precision.autocast_step("no", "cpu") is training.supervised_step
    full = training.supervised_step(model, batch)
    mixed = precision.autocast_step("bf16", "cpu")(model, batch)
    assert mixed.logits.dtype == torch.float32
    assert not torch.equal(mixed.logits, full.logits)  # bf16 really ran: products rounded to 8 mantissa bits
    assert torch.allclose(mixed.logits, full.logits, atol=0.05) and abs(mixed.loss.item() - full.loss.item()) < 0.02
    mixed.loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_fine_tune_in_bf16_learns_and_reports_its_precision(tiny):
    folder, tokenizer, _ = tiny
    _, model = load_text_classifier(folder, num_labels=2)
    data = tc.TokenizedTexts(TEXTS, LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-2, batch_size=4, epochs=10, patience=10, mixed_precision="bf16")
    result = tc.fine_tune(model, tokenizer, data, data, config, progress=False)
    assert result.precision == "bf16" and result.history.best_score == 1.0
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    full = tc.text_logits(model, tokenizer, TEXTS)
    mixed = tc.text_logits(model, tokenizer, TEXTS, mixed_precision="bf16")
    assert mixed.dtype == torch.float32 and torch.allclose(mixed, full, atol=0.1)
    assert (mixed.argmax(-1).numpy() == np.array(LABELS)).all()
    assert tc.fine_tune(model, tokenizer, data, None, tc.FineTuneConfig(epochs=1), progress=False).precision == "no"


def test_trainer_takes_the_same_precision(tiny, tmp_path):
    folder, tokenizer, _ = tiny
    _, model = load_text_classifier(folder, num_labels=2)
    data = tc.TokenizedTexts(TEXTS, LABELS, tokenizer)
    config = tc.FineTuneConfig(lr=1e-2, batch_size=4, epochs=2, mixed_precision="bf16")
    result = tc.trainer_fine_tune(model, tokenizer, data, None, config, str(tmp_path / "trainer"))
    assert result.precision == "bf16" and result.history.steps == 6
